"""What every protocol file shares: the cell a paper must report, the simulated cell's
section, and the one analysis entry the application calls (:meth:`ProtocolBase.results`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labctl.store import RunFile


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CellInfo(_Model):
    """Cell metadata the seeds say must be reported with a CCD or cycling result.

    "As the CCD depends on plating capacity and cell stack pressure, precise data
    interpretation requires the reporting of specific experimental conditions (such as
    Li-metal thickness and stack pressure)" [003 L156].
    """

    area_cm2: float = Field(gt=0)
    electrolyte: str = Field(min_length=1)
    electrolyte_thickness_um: float = Field(gt=0)
    li_thickness_um: float = Field(gt=0)
    stack_pressure_MPa: float = Field(ge=0)
    temperature_C: float = Field(ge=-80, le=400)
    notes: str = ""


class SimulatedCell(_Model):
    """The cell behind the simulated instrument when a protocol runs with ``--simulate``.

    ``preset`` names a simulated cell preset (``labctl run --help`` lists them); any other
    key sets one of its parameters (e.g. ``ccd_mA_cm2: 1.2``, ``noise_V: 0.001``). Area,
    electrolyte thickness and temperature are taken from the protocol's ``cell``. The
    schema keeps the section as plain data: the simulated station
    (:mod:`labctl.app.simulated`) parses and checks it when a run is simulated, and
    ``labctl validate`` checks it too.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    preset: str = Field(default="hl_llzo", min_length=1, max_length=64)
    model: str = Field(default="symmetric", min_length=1, max_length=64)
    """``symmetric`` (the Li | SSE | Li cell, whose presets ``preset`` names) or another
    simulated cell model (``lfp_half_cell``, ``nmc811_half_cell``, ``li_cu``,
    ``plating_to_short``, ``ctta``, ``soft_short``), ``preset`` then naming one of that model's
    presets (default its first). ``labctl validate`` lists what each accepts."""

    def as_dict(self) -> dict[str, Any]:
        """The section as written: ``preset`` and the parameter overrides (not ``model``)."""
        return {"preset": self.preset, **(self.model_extra or {})}


class ProtocolBase(_Model):
    """Fields common to all protocol kinds."""

    name: str = Field(min_length=1)
    description: str = ""
    operator: str = ""
    instrument: str = Field(default="smu", description="instrument name in the station file")
    cell: CellInfo
    simulated_cell: SimulatedCell = SimulatedCell()

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """The run's results for the run file's ``results`` group, from the finished run file
        (the one entry the application calls). By default the kind's ``analyse`` of the
        channel's step rows; kinds that need the readings override this."""
        return self.analyse([row for row in run.steps() if row["channel"] == channel])

    def metadata(self) -> dict[str, Any]:
        """Root attributes of the run file describing the cell (``cell_*``) and the run."""
        attrs = {f"cell_{k}": v for k, v in self.cell.model_dump().items()}
        attrs.update(protocol_kind=self.kind, protocol_name=self.name, operator=self.operator)
        return attrs
