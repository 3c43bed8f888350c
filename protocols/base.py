"""What every protocol file shares: the cell a paper must report, and the simulated cell."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.sim.physics.cell import CELL_PRESETS, CellParameters


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    ionic_conductivity_S_cm: float | None = Field(default=None, gt=0)
    """The electrolyte's bulk ionic conductivity as measured (EIS, σ = d/(R·S) [000 L187]); with
    it the analyses give the per-interface ASR, (cell − d/σ)/2."""
    notes: str = ""

    @property
    def bulk_asr_ohm_cm2(self) -> float | None:
        """d/σ in Ω cm² when the conductivity is given."""
        if self.ionic_conductivity_S_cm is None:
            return None
        return self.electrolyte_thickness_um * 1e-4 / self.ionic_conductivity_S_cm


class SimulatedCell(_Model):
    """The cell behind the simulated instrument when a protocol runs with ``--simulate``.

    ``preset`` names a cell of :data:`drivers.sim.physics.cell.CELL_PRESETS`; any other key overrides
    one :class:`drivers.sim.physics.cell.CellParameters` field (e.g. ``ccd_mA_cm2: 1.2``). Area,
    electrolyte thickness and temperature are taken from the protocol's ``cell``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    preset: str = "hl_llzo"

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in CELL_PRESETS:
            raise ValueError(f"unknown preset {value!r}; known: {', '.join(CELL_PRESETS)}")
        return value

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ProtocolBase(_Model):
    """Fields common to all protocol kinds."""

    name: str = Field(min_length=1)
    description: str = ""
    operator: str = ""
    instrument: str = Field(default="smu", description="instrument name in the station file")
    cell: CellInfo
    simulated_cell: SimulatedCell = SimulatedCell()

    def simulated_cell_parameters(self, **overrides: Any) -> CellParameters:
        """Parameters of the simulated cell: preset, then the protocol's cell, then overrides.

        Raises:
            ValueError: an override names no :class:`CellParameters` field or is invalid.
        """
        from dataclasses import fields, replace

        known = {f.name for f in fields(CellParameters)}
        changes: dict[str, Any] = {
            "area_cm2": self.cell.area_cm2,
            "electrolyte_thickness_um": self.cell.electrolyte_thickness_um,
            "li_thickness_um": self.cell.li_thickness_um,
            "stack_pressure_MPa": self.cell.stack_pressure_MPa,
            "temperature_C": self.cell.temperature_C,
        }
        changes.update(self.simulated_cell.overrides())
        changes.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"simulated_cell: unknown cell parameter(s) {', '.join(unknown)}")
        return replace(CELL_PRESETS[self.simulated_cell.preset], **changes)

    def metadata(self) -> dict[str, Any]:
        """Root attributes of the run file describing the cell (``cell_*``) and the run."""
        attrs = {f"cell_{k}": v for k, v in self.cell.model_dump().items()}
        attrs.update(protocol_kind=self.kind, protocol_name=self.name, operator=self.operator)
        return attrs
