"""BioLogic techniques (OCV, CP, CA, Loop) with their limit tests, and a channel's safety
limits: pydantic models that know their ECC parameters (``anchors-and-wire-protocols.md``
§3.2: names, units, ``TestN_Config`` bitfield) and the firmware file they load as.

Units: V, A, s, C. Bad parameters raise pydantic's ``ValidationError``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.biologic.records import (
    E_RANGE_V,
    SP300_FAMILY,
    EccParam,
    ERange,
    ExitCondition,
    IRange,
    LimitVariable,
    ParamType,
    SafetyCode,
    TechniqueId,
)

__all__ = [
    "LimitTest", "OCV", "CPStep", "CP", "CAStep", "CA", "Loop", "Technique", "ChannelSafetyLimits",
    "ecc_file", "check_sequence", "execution_runs", "i_range_for", "e_range_for",
]


def _single(value: float) -> float:
    """``value`` as the DLL stores a ``single`` (IEEE float32), back as a Python float."""
    return float(np.float32(value))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LimitTest(_Model):
    """One limit test of a CPLIMIT/CALIMIT step: ``variable comparison value``, e.g.
    ``Ewe > 4.2``. Several tests of a step combine left to right, each with its own ``logic``
    (OR/AND) against the result so far.

    ``TestN_Config`` bitfield (§3.2, as easy-biologic quotes the OEM documentation): bit 0
    active, bit 1 logic (0 OR, 1 AND), bits 2–4 comparison (0 <, 1 >), bits 5+ variable
    (:class:`LimitVariable`). Check: a CPLimit class derived from CINF PyExpLabSys
    ``drivers/bio_logic.py`` documents ``Test1_Config`` 1 as "E < value" and 5 as "E > value".
    """

    variable: Literal["Ewe", "Aux1", "Aux2", "I"] = "Ewe"
    comparison: Literal["<", ">"]
    value: float
    logic: Literal["or", "and"] = "or"
    active: bool = True

    @property
    def config(self) -> int:
        """The ``TestN_Config`` integer."""
        return (int(self.active) | (int(self.logic == "and") << 1) | (int(self.comparison == ">") << 2)
                | (int(LimitVariable[self.variable]) << 5))

    @classmethod
    def from_config(cls, config: int, value: float) -> LimitTest:
        """The test a ``TestN_Config``/``TestN_Value`` pair describes. Raises ValueError for
        an unknown comparison or variable."""
        comparison = (config >> 2) & 0b111
        if comparison > 1:
            raise ValueError(f"TestN_Config {config}: comparison {comparison} is not < (0) or > (1)")
        return cls(variable=LimitVariable(config >> 5).name, comparison=">" if comparison else "<", value=value,
                   logic="and" if config & 0b10 else "or", active=bool(config & 1))

    def holds(self, Ewe_V: float, I_A: float) -> bool:  # noqa: N803 - the DLL's names
        """True if the test is met at ``Ewe_V``/``I_A`` (Aux inputs read 0 V)."""
        x = {"Ewe": Ewe_V, "I": I_A}.get(self.variable, 0.0)
        return x > self.value if self.comparison == ">" else x < self.value

    @staticmethod
    def any_met(tests: Sequence[LimitTest], Ewe_V: float, I_A: float) -> bool:  # noqa: N803
        """The combined result of ``tests`` (inactive ones skipped; none active → False)."""
        result: bool | None = None
        for test in tests:
            if not test.active:
                continue
            met = test.holds(Ewe_V, I_A)
            result = met if result is None else (result and met if test.logic == "and" else result or met)
        return bool(result)


class OCV(_Model):
    """Open-circuit voltage (``ocv.ecc``, TechniqueId 100): no current for ``rest_time_s``,
    recording every ``record_every_dT_s`` and/or every ``record_every_dE_V`` change (0 = off).
    ECC names (§3.2): ``Rest_time_T``, ``Record_every_dE``, ``Record_every_dT``, ``E_Range``."""

    kind: Literal["ocv"] = "ocv"
    rest_time_s: float = Field(alias="Rest_time_T", ge=0)
    record_every_dT_s: float = Field(alias="Record_every_dT", gt=0)
    record_every_dE_V: float = Field(default=0.0, alias="Record_every_dE", ge=0)
    e_range: ERange = Field(default=ERange.E_10V, alias="E_Range")

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.OCV

    @property
    def ecc_name(self) -> str:
        return "ocv"

    def ecc_params(self) -> list[EccParam]:
        return [EccParam("Rest_time_T", ParamType.SINGLE, _single(self.rest_time_s)),
                EccParam("Record_every_dE", ParamType.SINGLE, _single(self.record_every_dE_V)),
                EccParam("Record_every_dT", ParamType.SINGLE, _single(self.record_every_dT_s)),
                EccParam("E_Range", ParamType.INT, int(self.e_range))]


class _LimitedStep(_Model):
    """What CP and CA steps share: duration, ``vs_initial`` and the limit tests with their
    exit condition (CPLIMIT/CALIMIT: at most three tests, ``Test1..3_Config/Value``)."""

    duration_s: float = Field(alias="Duration_step", ge=0)
    vs_initial: bool = False
    limits: tuple[LimitTest, ...] = Field(default=(), max_length=3)
    exit_condition: ExitCondition = Field(default=ExitCondition.NEXT_TECHNIQUE, alias="Exit_Cond")


class CPStep(_LimitedStep):
    """One step of a CP technique: ``current_A`` (``Current_step``) for ``duration_s``."""

    current_A: float = Field(alias="Current_step")


class CAStep(_LimitedStep):
    """One step of a CA technique: ``voltage_V`` (``Voltage_step``) for ``duration_s``."""

    voltage_V: float = Field(alias="Voltage_step")


class _StepTechnique(_Model):
    """CP and CA: 1–20 steps (``Step_number`` = steps − 1), repeated ``n_cycles`` more times
    (``N_Cycles``). With any limit test it loads as CPLIMIT/CALIMIT (``cplimit.ecc``)."""

    record_every_dT_s: float = Field(alias="Record_every_dT", gt=0)
    n_cycles: int = Field(default=0, alias="N_Cycles", ge=0)
    i_range: IRange = Field(alias="I_Range")
    e_range: ERange = Field(default=ERange.E_10V, alias="E_Range")
    bandwidth: int = Field(default=5, alias="Bandwidth", ge=1, le=9)

    _base: ClassVar[str]
    _value_name: ClassVar[str]
    _record_name: ClassVar[str]

    @property
    def step_number(self) -> int:
        """``Step_number``: steps − 1 (§3.2)."""
        return len(self.steps) - 1  # type: ignore[attr-defined]

    @property
    def limited(self) -> bool:
        """True when a step has limit tests: the technique is CPLIMIT/CALIMIT."""
        return any(step.limits for step in self.steps)  # type: ignore[attr-defined]

    @property
    def ecc_name(self) -> str:
        return self._base + ("limit" if self.limited else "")

    @abc.abstractmethod
    def _record_value(self) -> float:
        """The technique's record threshold (CP: ``Record_every_dE`` in V; CA: ``Record_every_dI`` in A)."""

    def ecc_params(self) -> list[EccParam]:
        out: list[EccParam] = []
        for k, step in enumerate(self.steps):  # type: ignore[attr-defined]
            out += [EccParam(self._value_name, ParamType.SINGLE, _single(self._step_value(step)), k),
                    EccParam("vs_initial", ParamType.BOOL, step.vs_initial, k),
                    EccParam("Duration_step", ParamType.SINGLE, _single(step.duration_s), k)]
            if self.limited:
                for n in range(3):
                    test = step.limits[n] if n < len(step.limits) else None
                    out += [EccParam(f"Test{n + 1}_Config", ParamType.INT, test.config if test else 0, k),
                            EccParam(f"Test{n + 1}_Value", ParamType.SINGLE, _single(test.value) if test else 0.0, k)]
                out.append(EccParam("Exit_Cond", ParamType.INT, int(step.exit_condition), k))
        out += [EccParam("Step_number", ParamType.INT, self.step_number),
                EccParam("Record_every_dT", ParamType.SINGLE, _single(self.record_every_dT_s)),
                EccParam(self._record_name, ParamType.SINGLE, _single(self._record_value())),
                EccParam("N_Cycles", ParamType.INT, self.n_cycles),
                EccParam("I_Range", ParamType.INT, int(self.i_range)),
                EccParam("E_Range", ParamType.INT, int(self.e_range)),
                EccParam("Bandwidth", ParamType.INT, self.bandwidth)]
        return out

    @model_validator(mode="after")
    def _ranges(self) -> _StepTechnique:
        if self.i_range == IRange.AUTO and self.limited:
            raise ValueError("I_Range AUTO is not accepted with limit tests (pyeclab refuses it for CPLIMIT)")
        return self


class CP(_StepTechnique):
    """Chronopotentiometry (``cp.ecc``, 102; ``cplimit.ecc``, 155, with limit tests).
    ECC names (§3.2): ``Current_step[]``, ``vs_initial[]``, ``Duration_step[]``,
    ``Step_number``, ``Record_every_dT``, ``Record_every_dE``, ``N_Cycles``, ``I_Range``,
    ``E_Range``, ``Bandwidth``; with limits ``Test1..3_Config[]``, ``Test1..3_Value[]``,
    ``Exit_Cond[]``."""

    kind: Literal["cp"] = "cp"
    steps: tuple[CPStep, ...] = Field(min_length=1, max_length=20)
    record_every_dE_V: float = Field(default=0.0, alias="Record_every_dE", ge=0)

    _base: ClassVar[str] = "cp"
    _value_name: ClassVar[str] = "Current_step"
    _record_name: ClassVar[str] = "Record_every_dE"

    @staticmethod
    def _step_value(step: CPStep) -> float:
        return step.current_A

    def _record_value(self) -> float:
        return self.record_every_dE_V

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.CPLIMIT if self.limited else TechniqueId.CP


class CA(_StepTechnique):
    """Chronoamperometry (``ca.ecc``, 101; ``calimit.ecc``, 157): as :class:`CP` with
    ``Voltage_step[]`` and ``Record_every_dI`` (§3.2)."""

    kind: Literal["ca"] = "ca"
    steps: tuple[CAStep, ...] = Field(min_length=1, max_length=20)
    record_every_dI_A: float = Field(default=0.0, alias="Record_every_dI", ge=0)

    _base: ClassVar[str] = "ca"
    _value_name: ClassVar[str] = "Voltage_step"
    _record_name: ClassVar[str] = "Record_every_dI"

    @staticmethod
    def _step_value(step: CAStep) -> float:
        return step.voltage_V

    def _record_value(self) -> float:
        return self.record_every_dI_A

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.CALIMIT if self.limited else TechniqueId.CA


class Loop(_Model):
    """Loop (``loop.ecc``, 150): go back to technique ``target_index`` (0-based,
    ``protocol_number``) ``repeat_count`` times (``loop_N_times``), then carry on: the body
    runs ``repeat_count + 1`` times in all (ECC names: pyeclab ``techniques/loop.py``; the
    count is "cycles − 1" like Modulo Bat's ``ctrl_repeat``, cyclers-data-formats.md §1.3).
    Each jump back adds 1 to the channel's loop count (``DataInfo.loop``)."""

    kind: Literal["loop"] = "loop"
    repeat_count: int = Field(alias="loop_N_times", ge=0)
    target_index: int = Field(alias="protocol_number", ge=0)

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.LOOP

    @property
    def ecc_name(self) -> str:
        return "loop"

    def ecc_params(self) -> list[EccParam]:
        return [EccParam("loop_N_times", ParamType.INT, self.repeat_count),
                EccParam("protocol_number", ParamType.INT, self.target_index)]


Technique = Annotated[OCV | CP | CA | Loop, Field(discriminator="kind")]


def ecc_file(technique: OCV | CP | CA | Loop, device_code: int) -> str:
    """The technique's firmware file for a device: ``<name>.ecc`` on the VMP3 family,
    ``<name>4.ecc`` on the SP-300 family (§3.2 "Technique firmware files")."""
    return technique.ecc_name + ("4" if device_code in SP300_FAMILY else "") + ".ecc"


def check_sequence(techniques: Sequence[OCV | CP | CA | Loop]) -> None:
    """Raise ValueError unless the list is not empty and every Loop jumps back to an earlier
    technique that is not a Loop."""
    if not techniques:
        raise ValueError("the technique list is empty")
    for k, t in enumerate(techniques):
        if isinstance(t, Loop):
            if t.target_index >= k:
                raise ValueError(f"technique {k} (Loop): protocol_number {t.target_index} must be an earlier technique")
            if isinstance(techniques[t.target_index], Loop):
                raise ValueError(f"technique {k} (Loop): protocol_number {t.target_index} is itself a Loop")


def execution_runs(techniques: Sequence[OCV | CP | CA | Loop]) -> Iterator[tuple[int, int]]:
    """(technique index, loop count) of every technique run, in execution order, when no
    limit test stops the channel early. A Loop that is finished rearms, so an outer loop
    runs an inner one again. O(runs)."""
    remaining: dict[int, int] = {}
    loop = index = 0
    while index < len(techniques):
        t = techniques[index]
        if isinstance(t, Loop):
            left = remaining.get(index, t.repeat_count)
            if left > 0:
                remaining[index] = left - 1
                loop += 1
                index = t.target_index
            else:
                remaining.pop(index, None)
                index += 1
            continue
        yield index, loop
        index += 1


def i_range_for(current_A: float) -> IRange:
    """The smallest fixed I_Range holding ``|current_A|`` (range k: 100 pA × 10^k, §3.2).
    Raises ValueError above 1 A (the booster is not modelled)."""
    magnitude = abs(current_A)
    for k in range(IRange.I_1A + 1):
        if magnitude <= 1e-10 * 10**k * (1 + 1e-9):
            return IRange(k)
    raise ValueError(f"|current| {magnitude:g} A exceeds the 1 A range (I_Range 10)")


def e_range_for(max_abs_voltage_V: float) -> ERange:
    """The smallest fixed E_Range holding ±``max_abs_voltage_V``. Raises ValueError above 10 V."""
    for e_range, half_V in E_RANGE_V.items():
        if abs(max_abs_voltage_V) <= half_V:
            return e_range
    raise ValueError(f"{max_abs_voltage_V:g} V exceeds the ±10 V E_Range")


class ChannelSafetyLimits(_Model):
    """The channel's safety limits: crossing one for ``delay_s`` stops the channel with the
    current off (a "safety stop"). EC-Lab's experiment ``Safety Limits`` block: ``Ewe min``,
    ``Ewe max``, one symmetric ``|I|``, ``Q−Q0`` and ``for t > … ms`` capped at 1000 ms
    (cyclers-data-formats.md §1.3, anchors §3.2 (c)); codes as :class:`SafetyCode`.

    The Development Package has no call for them among the functions in §3.2 (a):
    :class:`drivers.sim.biologic.SimulatedBackend` enforces them, the real backend does not
    (the engine's software limits still hold there)."""

    ewe_max_V: float | None = None
    ewe_min_V: float | None = None
    abs_current_max_A: float | None = Field(default=None, gt=0)
    charge_max_C: float | None = Field(default=None, gt=0)
    """On |Q − Q0|: the charge passed since the start, signed, in C."""
    delay_s: float = Field(default=0.0, ge=0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> ChannelSafetyLimits:
        if self.ewe_max_V is not None and self.ewe_min_V is not None and not self.ewe_min_V < self.ewe_max_V:
            raise ValueError("ewe_min_V must be below ewe_max_V")
        return self

    def check(self, Ewe_V: float, I_A: float, charge_C: float, *, rel_tol: float = 0.0) -> SafetyCode:  # noqa: N803
        """The first limit exceeded at this operating point (:attr:`SafetyCode.OK` if none).
        ``rel_tol`` widens the limits' reach (a point *at* a limit within it counts)."""
        if self.ewe_max_V is not None and Ewe_V > self.ewe_max_V - rel_tol * abs(self.ewe_max_V):
            return SafetyCode.EWE_MAX
        if self.ewe_min_V is not None and Ewe_V < self.ewe_min_V + rel_tol * abs(self.ewe_min_V):
            return SafetyCode.EWE_MIN
        if self.abs_current_max_A is not None and abs(I_A) > self.abs_current_max_A * (1 - rel_tol):
            return SafetyCode.ABS_I
        if self.charge_max_C is not None and abs(charge_C) > self.charge_max_C * (1 - rel_tol):
            return SafetyCode.CHARGE
        return SafetyCode.OK
