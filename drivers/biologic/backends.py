"""How the BioLogic driver reaches an instrument: the :class:`BiologicBackend` protocol (the
Development Package calls it makes, in the DLL's shapes) and the real backend.

Access path (``anchors-and-wire-protocols.md`` §3.2 (a)): the EC-Lab Development Package
(``EClib64.dll``, the ``BL_*`` functions). A backend mirrors the calls the driver needs —
``BL_Connect``, ``BL_Disconnect``, ``BL_GetChannelInfos``, ``BL_LoadTechnique``,
``BL_StartChannel``, ``BL_StopChannel``, ``BL_GetCurrentValues``, ``BL_GetData`` — with the
DLL's argument order and record shapes (:mod:`drivers.biologic.records`). Backends:

* :class:`drivers.sim.biologic.SimulatedBackend`: channels running the technique list on a
  simulated Li | SSE | Li cell in simulated time; every test uses it.
* :class:`EasyBiologicBackend`: the real instrument through easy-biologic's ``lib/ec_lib.py``
  (PyPI ``easy-biologic``, the ``labctl[biologic]`` extra, Windows with the Development
  Package installed). Chosen over the vendor's ``kbio`` because it is installable from PyPI;
  both wrap the same DLL. It cannot run here and is untested.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from drivers.biologic.records import BLError, ChannelInfo, CurrentValues, DataInfo, DeviceInfo, EccParam, ParamType
from drivers.biologic.techniques import ChannelSafetyLimits

log = logging.getLogger(__name__)

__all__ = ["BiologicBackend", "BiologicBackendMissing", "EasyBiologicBackend"]


class BiologicBackend(Protocol):
    """The Development Package calls the driver makes, in the DLL's shapes (§3.2 (a)).

    ``channel`` is 0-based, as in the DLL. Every call raises :class:`BLError` with the DLL's
    code on failure. ``set_safety_limits``, ``pause_channel`` and ``resume_channel`` are not
    among the DLL functions in §3.2 (a): EC-Lab's safety limits and pause; a backend without
    pause raises BLError(-6), one without safety limits logs that they are not held.
    """

    def connect(self, address: str, timeout_s: float) -> tuple[int, DeviceInfo]:
        """``BL_Connect(address, timeout, &id, &DeviceInfo)``: the connection id and device."""
        ...

    def disconnect(self, connection_id: int) -> None:
        """``BL_Disconnect``: running channels carry on."""
        ...

    def get_channel_infos(self, connection_id: int, channel: int) -> ChannelInfo: ...

    def load_technique(self, connection_id: int, channel: int, ecc_file: str, params: Sequence[EccParam],
                       first: bool, last: bool) -> None:
        """``BL_LoadTechnique(id, ch, file, EccParams, first, last, verbose)``: ``first``
        begins a new list, ``last`` completes it."""
        ...

    def start_channel(self, connection_id: int, channel: int) -> None: ...

    def stop_channel(self, connection_id: int, channel: int) -> None: ...

    def get_current_values(self, connection_id: int, channel: int) -> CurrentValues: ...

    def get_data(self, connection_id: int, channel: int) -> tuple[np.ndarray, DataInfo, CurrentValues]:
        """``BL_GetData(id, ch, &buffer, &DataInfo, &CurrentValues)``: ``buffer`` is a
        uint32 array of :data:`DATA_BUFFER_WORDS` words whose first NbRows × NbCols hold one
        technique run's rows; they are removed from the channel's memory."""
        ...

    def set_safety_limits(self, connection_id: int, channel: int, limits: ChannelSafetyLimits | None) -> None: ...

    def pause_channel(self, connection_id: int, channel: int) -> None: ...

    def resume_channel(self, connection_id: int, channel: int) -> None: ...


class BiologicBackendMissing(RuntimeError):
    """The vendor library for the real backend is not installed or cannot load."""


class EasyBiologicBackend:
    """The real instrument through easy-biologic (PyPI ``easy-biologic``, module
    ``easy_biologic.lib.ec_lib``), which loads ``EClib64.dll`` of the EC-Lab Development
    Package (Windows only). Install with ``pip install 'labctl[biologic]'``.

    Raises BiologicBackendMissing (one line) when easy-biologic or its DLL cannot be loaded.
    Not tested here (no instrument, no DLL): each method is the matching ``ec_lib`` call
    (``connect``, ``disconnect``, ``channel_info``, ``load_technique``, ``start_channel``,
    ``stop_channel``, ``get_values``, ``get_data``). The Development Package offers neither
    safety limits nor pause among the functions we know: safety limits are logged and left to
    the engine, pause/resume raise BLError -6.
    """

    def __init__(self, technique_dir: str | Path | None = None) -> None:
        """``technique_dir``: the folder of the ``.ecc`` files (the Development Package's
        ``EC-Lab Development Package/Examples/…`` or easy-biologic's ``include/techniques/<version>``);
        None passes bare file names to the DLL."""
        self.technique_dir = Path(technique_dir) if technique_dir is not None else None
        try:
            from easy_biologic.lib import ec_lib  # noqa: PLC0415 - optional, Windows-only
        except Exception as exc:  # ImportError, or OSError/AttributeError when the DLL cannot load
            raise BiologicBackendMissing(
                "the real Biologic backend needs easy-biologic and the EC-Lab Development Package DLL "
                f"(Windows): pip install 'labctl[biologic]' ({type(exc).__name__}: {exc})".replace("\n", " ")
            ) from None
        self._ec = ec_lib

    def _call(self, function: str, call, *args):
        try:
            return call(*args)
        except Exception as exc:  # easy-biologic's EcError: "ERR_NAME (code): message" (lib/ec_errors.py)
            found = re.search(r"\((-\d+)\)", str(exc))
            raise BLError(function, int(found.group(1)) if found else -6, str(exc)) from None

    def connect(self, address: str, timeout_s: float) -> tuple[int, DeviceInfo]:
        idn, info = self._call("BL_Connect", self._ec.connect, address, max(1, int(timeout_s)))
        return idn, DeviceInfo(*(getattr(info, name) for name in DeviceInfo.__dataclass_fields__))

    def disconnect(self, connection_id: int) -> None:
        self._call("BL_Disconnect", self._ec.disconnect, connection_id)

    def get_channel_infos(self, connection_id: int, channel: int) -> ChannelInfo:
        info = self._call("BL_GetChannelInfos", self._ec.channel_info, connection_id, channel)
        return ChannelInfo(*(getattr(info, f, 0) for f in ChannelInfo.__dataclass_fields__))

    def load_technique(self, connection_id: int, channel: int, ecc_file: str, params: Sequence[EccParam],
                       first: bool, last: bool) -> None:
        kinds = {ParamType.INT: "int", ParamType.BOOL: "bool", ParamType.SINGLE: "single"}
        built = [self._ec.create_parameter(p.ParamStr, p.ParamVal, p.ParamIndex, kinds[p.ParamType]) for p in params]
        path = str(self.technique_dir / ecc_file) if self.technique_dir is not None else ecc_file
        self._call("BL_LoadTechnique", self._ec.load_technique, connection_id, channel, path,
                   self._ec.combine_parameters(built), first, last)

    def start_channel(self, connection_id: int, channel: int) -> None:
        self._call("BL_StartChannel", self._ec.start_channel, connection_id, channel)

    def stop_channel(self, connection_id: int, channel: int) -> None:
        self._call("BL_StopChannel", self._ec.stop_channel, connection_id, channel)

    def get_current_values(self, connection_id: int, channel: int) -> CurrentValues:
        values = self._call("BL_GetCurrentValues", self._ec.get_values, connection_id, channel)
        return CurrentValues(*(getattr(values, f) for f in CurrentValues.__dataclass_fields__))

    def get_data(self, connection_id: int, channel: int) -> tuple[np.ndarray, DataInfo, CurrentValues]:
        data, info, values = self._call("BL_GetData", self._ec.get_data, connection_id, channel)
        return (np.ctypeslib.as_array(data).astype(np.uint32),
                DataInfo(*(getattr(info, f) for f in DataInfo.__dataclass_fields__)),
                CurrentValues(*(getattr(values, f) for f in CurrentValues.__dataclass_fields__)))

    def set_safety_limits(self, connection_id: int, channel: int, limits: ChannelSafetyLimits | None) -> None:
        """Not pushed: the Development Package has no safety-limit call (§3.2 (a)); the
        engine's software limits are what holds. Logged once per call."""
        if limits is not None:
            log.warning("channel %d: the Development Package cannot hold safety limits; only the engine's apply", channel + 1)

    def pause_channel(self, connection_id: int, channel: int) -> None:
        raise BLError("pause", -6, "the Development Package has no pause call")

    def resume_channel(self, connection_id: int, channel: int) -> None:
        raise BLError("resume", -6, "the Development Package has no pause call")
