"""Experiment kinds: each turns a protocol file into a step program and analyses the run.

:func:`load_protocol` reads a YAML protocol file and returns the model of its ``kind``.
"""

from __future__ import annotations

from pathlib import Path

from labctl.yamlfile import FileError, line_of, load_model, parse_yaml, read_yaml
from protocols.base import CellInfo, ProtocolBase, SimulatedCell
from protocols.ccd_staircase import CCDStaircase
from protocols.cafm_trigger_sweep import CafmTriggerSweep
from protocols.continuous_plating import ContinuousPlating
from protocols.ctta import CTTA
from protocols.full_cell_cycling import FullCellCycling
from protocols.li_cu_efficiency import LiCuEfficiency
from protocols.memristor_cycling import MemristorCycling
from protocols.soft_short_amperometry import SoftShortAmperometry
from protocols.symmetric_cycling import SymmetricCycling
from protocols.arrhenius import Arrhenius
from protocols.dc_polarisation import DCPolarisation
from protocols.eis import EIS
from protocols.lsv import LSV
from protocols.sequence import Sequence
from protocols.transference_number import TransferenceNumber

#: Protocol kinds by the value of their ``kind:`` field.
KINDS: dict[str, type[ProtocolBase]] = {"ccd_staircase": CCDStaircase, "symmetric_cycling": SymmetricCycling,
                                         "cafm_trigger_sweep": CafmTriggerSweep, "memristor_cycling": MemristorCycling}
# The characterisation kinds (issue 12).
KINDS.update({"eis": EIS, "arrhenius": Arrhenius, "dc_polarisation": DCPolarisation,
              "transference_number": TransferenceNumber, "lsv": LSV, "sequence": Sequence})
# Full cells and lithium inventory (issue 13).
KINDS.update({"full_cell_cycling": FullCellCycling, "li_cu_efficiency": LiCuEfficiency,
              "continuous_plating": ContinuousPlating, "ctta": CTTA,
              "soft_short_amperometry": SoftShortAmperometry})


def load_protocol(path: str | Path) -> ProtocolBase:
    """Read and validate a protocol file.

    Raises:
        FileError: one line per problem, ``<file>:<line>: <field>: <problem>``.
    """
    data, node, _ = read_yaml(path)
    return _validate(path, data, node)


def load_protocol_text(text: str, name: str | Path) -> ProtocolBase:
    """Validate protocol YAML held in memory (e.g. the copy stored in a run file), named ``name``.

    Raises:
        FileError: as :func:`load_protocol`.
    """
    data, node = parse_yaml(text, name)
    return _validate(name, data, node)


def _validate(path: str | Path, data: dict, node) -> ProtocolBase:
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        got = "missing" if kind is None else f"{kind!r} is not known"
        raise FileError([f"{Path(path).name}:{line_of(node, ['kind'])}: kind: {got}; one of {', '.join(KINDS)}"])
    return load_model(path, KINDS[kind], data, node)


__all__ = ["Arrhenius", "DCPolarisation", "EIS", "LSV", "Sequence", "TransferenceNumber", "KINDS", "CafmTriggerSweep", "CCDStaircase", "MemristorCycling", "CellInfo", "FileError", "ProtocolBase", "SimulatedCell", "SymmetricCycling",
           "load_protocol", "load_protocol_text",
           "CTTA", "ContinuousPlating", "FullCellCycling", "LiCuEfficiency", "SoftShortAmperometry"]
