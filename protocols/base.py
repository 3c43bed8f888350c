"""What every protocol file shares: the cell a paper must report, the simulated cell's
section, and the one analysis entry the application calls (:meth:`ProtocolBase.results`)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from labctl.steps import MAX_LOOP_COUNT, MAX_STEP_DURATION_S, MIN_RECORD_INTERVAL_S
from labctl.store import RunFile

# Bounded quantities of protocol files (every number finite: ``allow_inf_nan=False``). The
# bounds are what a bench can do or a run can last, so a file that validates can be expanded,
# printed and run in bounded time and memory.
#: A current density (mA cm⁻²): a 2400 sources ≤ 1.05 A; 1 A cm⁻² is beyond any solid electrolyte.
CurrentDensity = Annotated[float, Field(gt=0, le=1000)]
#: A step or half-cycle duration (s): at most ten years.
Seconds = Annotated[float, Field(gt=0, le=MAX_STEP_DURATION_S)]
#: A run's length in hours: at most ten years.
Hours = Annotated[float, Field(gt=0, le=MAX_STEP_DURATION_S / 3600)]
#: A record interval (s): no faster than the instrument can read (labctl.steps.MIN_RECORD_INTERVAL_S).
RecordInterval = Annotated[float, Field(ge=MIN_RECORD_INTERVAL_S, le=86400)]
#: A count of cycles or repeats.
Count = Annotated[int, Field(ge=1, le=MAX_LOOP_COUNT)]
#: An areal capacity (mAh cm⁻²): 100 mAh cm⁻² is ~500 µm of lithium.
ArealCapacity = Annotated[float, Field(gt=0, le=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CellInfo(_Model):
    """Cell metadata the seeds say must be reported with a CCD or cycling result.

    "As the CCD depends on plating capacity and cell stack pressure, precise data
    interpretation requires the reporting of specific experimental conditions (such as
    Li-metal thickness and stack pressure)" [003 L156].
    """

    area_cm2: float = Field(gt=0, le=1e4)
    electrolyte: str = Field(min_length=1, max_length=200)
    electrolyte_thickness_um: float = Field(gt=0, le=1e5)
    li_thickness_um: float = Field(gt=0, le=1e5)
    stack_pressure_MPa: float = Field(ge=0, le=1000)
    temperature_C: float = Field(ge=-80, le=400)
    ionic_conductivity_S_cm: float | None = Field(default=None, gt=0, le=10)
    """The electrolyte's bulk ionic conductivity as measured (EIS, σ = d/(R·S) [000 L187]); with
    it the analyses give the per-interface ASR, (cell − d/σ)/2."""
    notes: str = Field(default="", max_length=10_000)

    @property
    def bulk_asr_ohm_cm2(self) -> float | None:
        """d/σ in Ω cm² when the conductivity is given."""
        if self.ionic_conductivity_S_cm is None:
            return None
        return self.electrolyte_thickness_um * 1e-4 / self.ionic_conductivity_S_cm


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

    #: The kind's cell is Li | SSE | Li: under a current its voltage is the overpotential of
    #: plating on one electrode and stripping from the other (what the window plots per step).
    #: False for a full cell, Li | Cu or SS | SSE | Li, whose voltage is a cell voltage.
    symmetric_cell: ClassVar[bool] = True

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    operator: str = ""
    instrument: str = Field(default="smu", min_length=1, max_length=100,
                            description="instrument name in the station file")
    cell: CellInfo
    simulated_cell: SimulatedCell = SimulatedCell()

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """The run's results for the run file's ``results`` group, from the finished run file
        (the one entry the application calls). By default the kind's
        ``analyse_run(columns, steps)`` of the channel's readings and step rows where the kind
        has one, else its ``analyse`` of the step rows; kinds that need more (spectra, events)
        override this."""
        steps = [row for row in run.steps() if row["channel"] == channel]
        analyse_run = getattr(self, "analyse_run", None)
        if analyse_run is not None:
            return analyse_run(run.columns(channel), steps)
        return self.analyse(steps)

    @staticmethod
    def headline(results: dict[str, Any]) -> str | None:
        """The run's key result in a few words (the window shows it in large type), or None for
        the first line of the kind's ``summary``. ``results`` as :meth:`results` returns them."""
        return None

    def metadata(self) -> dict[str, Any]:
        """Root attributes of the run file describing the cell (``cell_*``) and the run."""
        attrs = {f"cell_{k}": v for k, v in self.cell.model_dump().items()}
        attrs.update(protocol_kind=self.kind, protocol_name=self.name, operator=self.operator)
        return attrs
