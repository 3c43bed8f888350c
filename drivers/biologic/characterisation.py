"""BioLogic characterisation techniques — PEIS, GEIS and a linear sweep (the CV technique with
one sweep) — with their ECC parameters, and the decoding of their ``BL_GetData`` rows.

ECC parameter names (EC-Lab Development Package, as the OEM examples and public clients load
them: ``peis.ecc``/``peis4.ecc``, ``geis.ecc``, ``cv.ecc``):

* PEIS: ``vs_initial``, ``vs_final``, ``Initial_Voltage_step``, ``Final_Voltage_step``,
  ``Duration_step``, ``Step_number``, ``Record_every_dT``, ``Record_every_dI``,
  ``Final_frequency``, ``Initial_frequency``, ``sweep`` (True: linear spacing, False: log),
  ``Amplitude_Voltage``, ``Frequency_number``, ``Average_N_times``, ``Correction``,
  ``Wait_for_steady`` (periods), ``I_Range``, ``E_Range``, ``Bandwidth``;
* GEIS: the same with ``Initial_Current_step``, ``Final_Current_step``, ``Record_every_dE``,
  ``Amplitude_Current``;
* CV: ``vs_initial[5]``, ``Voltage_step[5]`` (Ei, E1, E2, Ei, Ef), ``Scan_Rate[5]`` (V s⁻¹),
  ``Scan_number`` (2), ``Record_every_dE``, ``Average_over_dE``, ``N_Cycles``,
  ``Begin_measuring_I``, ``End_measuring_I``, ``I_Range``, ``E_Range``, ``Bandwidth``.
  A linear sweep Ei → E1 is the profile (Ei, E1, E1, E1, E1): the later segments have no length,
  so the channel stops at E1. ``vs_initial[0]`` makes Ei relative to the open-circuit potential
  at the start (seed 002: "from OCV to 6.0 V" [002 L39]).

Rows (``BL_GetData``, VMP3 family): the impedance techniques' process 1 (``DataInfo.ProcessIndex``
= 1, one row per frequency) is ``freq, abs_Ewe, abs_I, Phase_Zwe, Ewe, I, Blank0, abs_Ece, abs_Ice,
Phase_Zce, Ece, Blank1, Blank2, t, Irange`` (singles; ``t`` in s from the technique's start; the
phase in radians; the SP-300 family has no ``Irange``), as the Development Package's PEIS example
and PyExpLabSys ``bio_logic.py`` (SPEIS) list them; CV rows are ``t_high, t_low, Ec, I, Ewe, cycle``
(PyExpLabSys CV, easy-biologic ``data_parser``). Z = |Ewe|/|I| · e^(j·Phase_Zwe).

Units: V, A, s, Hz. Bad parameters raise pydantic's ``ValidationError``.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from drivers.biologic.records import SP300_FAMILY, DataInfo, EccParam, ERange, IRange, ParamType, TechniqueId

__all__ = ["PEIS", "GEIS", "LinearSweepCV", "IMPEDANCE_COLUMNS", "impedance_columns", "decode_impedance_rows"]

#: Process-1 columns of PEIS/GEIS rows (VMP3 family; the SP-300 family lacks ``Irange``).
IMPEDANCE_COLUMNS = ("freq", "abs_Ewe", "abs_I", "Phase_Zwe", "Ewe", "I", "Blank0", "abs_Ece", "abs_Ice",
                     "Phase_Zce", "Ece", "Blank1", "Blank2", "t", "Irange")


def _single(value: float) -> float:
    return float(np.float32(value))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class _Impedance(_Model):
    """What PEIS and GEIS share: a log (or linear) frequency sweep at open circuit."""

    initial_frequency_Hz: float = Field(alias="Initial_frequency", gt=0, le=7e6)
    final_frequency_Hz: float = Field(alias="Final_frequency", gt=0, le=7e6)
    frequency_number: int = Field(alias="Frequency_number", ge=1, le=10_000)
    linear: bool = Field(default=False, alias="sweep")
    average_n: int = Field(default=1, alias="Average_N_times", ge=1, le=100)
    wait_for_steady: float = Field(default=0.1, alias="Wait_for_steady", ge=0, le=100)
    correction: bool = Field(default=False, alias="Correction")
    record_every_dT_s: float = Field(default=0.0, alias="Record_every_dT", ge=0)
    i_range: IRange = Field(default=IRange.AUTO, alias="I_Range")
    e_range: ERange = Field(default=ERange.E_10V, alias="E_Range")
    bandwidth: int = Field(default=8, alias="Bandwidth", ge=1, le=9)

    _dc_name: ClassVar[str]
    _amplitude_name: ClassVar[str]
    _record_name: ClassVar[str]

    @abc.abstractmethod
    def _amplitude(self) -> float:
        """The excitation amplitude (PEIS: V; GEIS: A)."""

    def frequencies_Hz(self) -> np.ndarray:
        """The frequencies in measuring order (Hz)."""
        space = np.linspace if self.linear else np.geomspace
        return space(self.initial_frequency_Hz, self.final_frequency_Hz, self.frequency_number)

    def ecc_params(self) -> list[EccParam]:
        """At open circuit: the DC step is 0 vs the initial (open-circuit) state and lasts 0 s."""
        return [EccParam("vs_initial", ParamType.BOOL, True), EccParam("vs_final", ParamType.BOOL, True),
                EccParam(f"Initial_{self._dc_name}_step", ParamType.SINGLE, 0.0),
                EccParam(f"Final_{self._dc_name}_step", ParamType.SINGLE, 0.0),
                EccParam("Duration_step", ParamType.SINGLE, 0.0), EccParam("Step_number", ParamType.INT, 0),
                EccParam("Record_every_dT", ParamType.SINGLE, _single(self.record_every_dT_s)),
                EccParam(self._record_name, ParamType.SINGLE, 0.0),
                EccParam("Final_frequency", ParamType.SINGLE, _single(self.final_frequency_Hz)),
                EccParam("Initial_frequency", ParamType.SINGLE, _single(self.initial_frequency_Hz)),
                EccParam("sweep", ParamType.BOOL, self.linear),
                EccParam(self._amplitude_name, ParamType.SINGLE, _single(self._amplitude())),
                EccParam("Frequency_number", ParamType.INT, self.frequency_number),
                EccParam("Average_N_times", ParamType.INT, self.average_n),
                EccParam("Correction", ParamType.BOOL, self.correction),
                EccParam("Wait_for_steady", ParamType.SINGLE, _single(self.wait_for_steady)),
                EccParam("I_Range", ParamType.INT, int(self.i_range)),
                EccParam("E_Range", ParamType.INT, int(self.e_range)),
                EccParam("Bandwidth", ParamType.INT, self.bandwidth)]


class PEIS(_Impedance):
    """Potentio electrochemical impedance spectroscopy (``peis.ecc``, TechniqueId 104): a sine of
    ``amplitude_V`` (``Amplitude_Voltage``, V) around the open-circuit voltage."""

    kind: Literal["peis"] = "peis"
    amplitude_V: float = Field(alias="Amplitude_Voltage", gt=0, le=1.0)

    _dc_name: ClassVar[str] = "Voltage"
    _amplitude_name: ClassVar[str] = "Amplitude_Voltage"
    _record_name: ClassVar[str] = "Record_every_dI"

    def _amplitude(self) -> float:
        return self.amplitude_V

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.PEIS

    @property
    def ecc_name(self) -> str:
        return "peis"


class GEIS(_Impedance):
    """Galvano electrochemical impedance spectroscopy (``geis.ecc``, TechniqueId 107): a sine of
    ``amplitude_A`` (``Amplitude_Current``, A) around 0 A; ``I_Range`` must be fixed."""

    kind: Literal["geis"] = "geis"
    amplitude_A: float = Field(alias="Amplitude_Current", gt=0, le=1.0)

    _dc_name: ClassVar[str] = "Current"
    _amplitude_name: ClassVar[str] = "Amplitude_Current"
    _record_name: ClassVar[str] = "Record_every_dE"

    def _amplitude(self) -> float:
        return self.amplitude_A

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.GEIS

    @property
    def ecc_name(self) -> str:
        return "geis"


class LinearSweepCV(_Model):
    """A linear sweep as the CV technique (``cv.ecc``, TechniqueId 103) with the profile
    (Ei, E1, E1, E1, E1): Ei → E1 at ``scan_rate_V_s``, one point every ``record_every_dE_V``.
    ``start_at_ocv``: Ei is ``start_V`` relative to the open-circuit potential."""

    kind: Literal["lsv"] = "lsv"
    start_V: float = Field(ge=-10, le=10)
    end_V: float = Field(ge=-10, le=10)
    start_at_ocv: bool = False
    scan_rate_V_s: float = Field(gt=0, le=10)
    record_every_dE_V: float = Field(gt=0, le=1)
    i_range: IRange = Field(alias="I_Range")
    e_range: ERange = Field(default=ERange.E_10V, alias="E_Range")
    bandwidth: int = Field(default=5, alias="Bandwidth", ge=1, le=9)

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.CV

    @property
    def ecc_name(self) -> str:
        return "cv"

    def ecc_params(self) -> list[EccParam]:
        out: list[EccParam] = []
        profile = (self.start_V, self.end_V, self.end_V, self.end_V, self.end_V)
        for k, volts in enumerate(profile):
            out += [EccParam("vs_initial", ParamType.BOOL, self.start_at_ocv and k == 0, k),
                    EccParam("Voltage_step", ParamType.SINGLE, _single(volts), k),
                    EccParam("Scan_Rate", ParamType.SINGLE, _single(self.scan_rate_V_s), k)]
        return out + [EccParam("Scan_number", ParamType.INT, 2),
                      EccParam("Record_every_dE", ParamType.SINGLE, _single(self.record_every_dE_V)),
                      EccParam("Average_over_dE", ParamType.BOOL, False),
                      EccParam("N_Cycles", ParamType.INT, 0),
                      EccParam("Begin_measuring_I", ParamType.SINGLE, 0.5),
                      EccParam("End_measuring_I", ParamType.SINGLE, 1.0),
                      EccParam("I_Range", ParamType.INT, int(self.i_range)),
                      EccParam("E_Range", ParamType.INT, int(self.e_range)),
                      EccParam("Bandwidth", ParamType.INT, self.bandwidth)]


def impedance_columns(device_code: int) -> tuple[str, ...]:
    """The process-1 columns of a PEIS/GEIS row on a device (see the module docstring)."""
    return IMPEDANCE_COLUMNS[:-1] if device_code in SP300_FAMILY else IMPEDANCE_COLUMNS


def decode_impedance_rows(words: np.ndarray, info: DataInfo, device_code: int) -> dict[str, np.ndarray]:
    """The process-1 rows of one ``BL_GetData`` buffer of a PEIS/GEIS run: ``frequency_Hz``,
    ``z_real_ohm``, ``z_imag_neg_ohm``, ``time_s`` (from the technique's start), ``Ewe_V``,
    ``I_A`` (the DC values), as float64 arrays of NbRows.

    Raises:
        ValueError: not process 1 of an impedance technique, or ``NbCols`` does not match.
    """
    if info.TechniqueID not in (TechniqueId.PEIS, TechniqueId.GEIS) or info.ProcessIndex != 1:
        raise ValueError(f"technique id {info.TechniqueID} process {info.ProcessIndex}: not impedance rows")
    layout = impedance_columns(device_code)
    if info.NbCols != len(layout):
        raise ValueError(f"impedance rows: {info.NbCols} columns, expected {len(layout)}")
    table = np.asarray(words, dtype=np.uint32)[: info.NbRows * info.NbCols].reshape(info.NbRows, info.NbCols)
    col = {name: table[:, k].view(np.float32).astype(np.float64) for k, name in enumerate(layout)}
    with np.errstate(divide="ignore", invalid="ignore"):
        modulus = col["abs_Ewe"] / col["abs_I"]
    z = modulus * np.exp(1j * col["Phase_Zwe"])
    return {"frequency_Hz": col["freq"], "z_real_ohm": z.real, "z_imag_neg_ohm": -z.imag, "time_s": col["t"],
            "Ewe_V": col["Ewe"], "I_A": col["I"]}
