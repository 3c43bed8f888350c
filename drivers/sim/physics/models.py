"""The simulated cells other than the Li | SSE | Li symmetric cell, by name: what a protocol's
``simulated_cell: {model: NAME, …}`` selects (read by ``labctl.app.simulated``).

Each model has a parameter dataclass (frozen, with ``as_dict``/``from_dict``), named presets
with the seeds' numbers, and a cell class with the :class:`drivers.sim.smu.Load` interface
(``advance(dt_s, current_A)``, ``voltage_V(current_A)``, ``current_A(voltage_V)``) that the
2400, NEWARE and BioLogic simulators all run:

========================  =============================================  ===========================
model                     cell                                            presets
========================  =============================================  ===========================
``lfp_half_cell``         :class:`~.cathode.CathodeHalfCell` (LFP)        ``lfp_fse``, ``lfp_hl_llzo``
``nmc811_half_cell``      :class:`~.cathode.CathodeHalfCell` (NMC811)     ``nmc811_fse``
``li_cu``                 :class:`~.licu.LiCuCell`                        ``fse``, ``lpscl``
``plating_to_short``      :class:`~.plating.PlatingToShortCell` around a  ``lpscl``, ``polyea_il``,
                          :class:`~.cell.SymmetricCell`                   ``fse``
``ctta``                  :class:`~.sei.SEICell`                          ``lpscl``
``soft_short``            :class:`~.softshort.SoftShortJunction`          ``latp``, ``latp_polymer``
========================  =============================================  ===========================

A :class:`ModelledCell` is one model's parameters (plus, for ``plating_to_short``, the symmetric
cell it wraps): plain data a run file records and a resumed run rebuilds, and
:meth:`ModelledCell.build` makes a fresh cell for each simulated instrument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from drivers.sim.physics.cathode import CATHODE_PRESETS, CathodeHalfCell, CathodeParameters
from drivers.sim.physics.cell import CellParameters, SymmetricCell
from drivers.sim.physics.licu import LICU_PRESETS, LiCuCell, LiCuParameters
from drivers.sim.physics.plating import PLATING_PRESETS, PlatingParameters, PlatingToShortCell
from drivers.sim.physics.sei import SEI_PRESETS, SEICell, SEIParameters
from drivers.sim.physics.softshort import SOFT_SHORT_PRESETS, SoftShortJunction, SoftShortParameters

__all__ = ["CELL_MODELS", "CellModel", "ModelledCell", "modelled_cell"]


@dataclass(frozen=True)
class CellModel:
    """A simulated cell model: its parameter class, presets (the first is the default), the
    cell class (called with the parameters, and the base cell for a wrapping model) and whether
    it wraps a symmetric cell."""

    parameters: type
    presets: Mapping[str, Any]
    cell: Callable[..., Any]
    wraps_symmetric: bool = False

    @property
    def default_preset(self) -> str:
        return next(iter(self.presets))

    def field_names(self) -> set[str]:
        return {f.name for f in fields(self.parameters) if f.init}


def _material(material: str) -> dict[str, CathodeParameters]:
    return {k: v for k, v in CATHODE_PRESETS.items() if v.material == material}


#: The models by the name ``simulated_cell.model`` takes.
CELL_MODELS: dict[str, CellModel] = {
    "lfp_half_cell": CellModel(CathodeParameters, _material("LFP"), CathodeHalfCell),
    "nmc811_half_cell": CellModel(CathodeParameters, _material("NMC811"), CathodeHalfCell),
    "li_cu": CellModel(LiCuParameters, LICU_PRESETS, LiCuCell),
    "plating_to_short": CellModel(PlatingParameters, PLATING_PRESETS, PlatingToShortCell, wraps_symmetric=True),
    "ctta": CellModel(SEIParameters, SEI_PRESETS, SEICell),
    "soft_short": CellModel(SoftShortParameters, SOFT_SHORT_PRESETS, SoftShortJunction),
}


@dataclass(frozen=True)
class ModelledCell:
    """One simulated cell: ``model`` (a key of :data:`CELL_MODELS`), its ``params`` and, for a
    wrapping model, the ``base`` symmetric cell's parameters."""

    model: str
    params: Any
    base: CellParameters | None = None

    def build(self) -> Any:
        """A fresh cell (a :class:`drivers.sim.smu.Load`)."""
        entry = CELL_MODELS[self.model]
        if entry.wraps_symmetric:
            return entry.cell(SymmetricCell(self.base), self.params)
        return entry.cell(self.params)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for a run file: ``model``, ``params`` (and ``base``)."""
        out: dict[str, Any] = {"model": self.model, "params": self.params.as_dict()}
        if self.base is not None:
            out["base"] = self.base.as_dict()
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelledCell:
        """:meth:`as_dict`'s data back. Raises ValueError (one line) if it is not that."""
        try:
            entry = CELL_MODELS[values["model"]]
            params = entry.parameters.from_dict(dict(values["params"]))
            base = values.get("base")
            if base is not None:
                base = (CellParameters.from_dict(base) if hasattr(CellParameters, "from_dict")
                        else CellParameters(**base))
            return cls(values["model"], params, base)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a recorded simulated cell ({exc})") from None


def modelled_cell(model: str, preset: str | None, values: Mapping[str, Any],
              base: CellParameters | None = None) -> ModelledCell:
    """The cell of ``model`` from its ``preset`` (default: the model's first) with ``values``
    (parameter name → value) replacing the preset's.

    Raises:
        KeyError: an unknown model or preset (the message lists the known ones).
        TypeError: an unknown parameter name. ValueError: an invalid value.
    """
    if model not in CELL_MODELS:
        raise KeyError(f"unknown model {model!r}; known: symmetric, {', '.join(CELL_MODELS)}")
    entry = CELL_MODELS[model]
    name = preset or entry.default_preset
    if name not in entry.presets:
        raise KeyError(f"model {model}: unknown preset {name!r}; known: {', '.join(entry.presets)}")
    unknown = sorted(set(values) - entry.field_names())
    if unknown:
        raise TypeError(f"model {model}: unknown parameter(s) {', '.join(unknown)}; known: "
                        f"{', '.join(sorted(entry.field_names()))}")
    params = replace(entry.presets[name], **values)
    if entry.wraps_symmetric and base is None:
        base = CellParameters()
    return ModelledCell(model, params, base if entry.wraps_symmetric else None)
