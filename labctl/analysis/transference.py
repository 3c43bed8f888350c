"""Li⁺ transference number by the Bruce–Vincent method.

Procedure [002 L39–L43]: impedance of a Li | electrolyte | Li cell, a small potentiostatic
step ΔV (10 mV) held until the current is steady, impedance again. Eq. S3 of seed 002:

    t_Li+ = I_ss·(ΔV − I_0·R_0) / (I_0·(ΔV − I_ss·R_ss))

with I_0 the initial and I_ss the steady-state current, R_0 and R_ss the interface resistance
before and after the polarisation ([002 L43]: "interface impedance"), here the R_ct of the
fitted spectra (:attr:`~labctl.analysis.impedance.ImpedanceFit.interfacial_resistance_ohm`).
[000 L87] reports 0.69 (FSE) and 0.31 (PolyEA-IL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from labctl.analysis._inputs import finite, finite_array, positive
from labctl.analysis.conductivity import SteadyState, steady_state_current
from labctl.analysis.impedance import ImpedanceFit


def bruce_vincent(delta_V: float, initial_current_A: float, steady_current_A: float,
                  initial_interface_resistance_ohm: float, steady_interface_resistance_ohm: float) -> float:
    """t_Li+ by Eq. S3 of seed 002 [002 L41–L43] (dimensionless).

    Args:
        delta_V: the polarisation step ΔV (V; sign ignored).
        initial_current_A, steady_current_A: I_0 and I_ss (A; same sign, magnitudes used).
        initial_interface_resistance_ohm, steady_interface_resistance_ohm: R_0 and R_ss (Ω, ≥ 0).

    Raises:
        ValueError: non-finite input, ΔV or a current of 0, currents of opposite sign,
            ΔV − I·R ≤ 0 (the interface alone would take more than the step: R or I is wrong),
            or a result outside [0, 1].
    """
    dv = abs(finite("delta_V", delta_V))
    i0 = finite("initial_current_A", initial_current_A)
    iss = finite("steady_current_A", steady_current_A)
    r0 = finite("initial_interface_resistance_ohm", initial_interface_resistance_ohm)
    rss = finite("steady_interface_resistance_ohm", steady_interface_resistance_ohm)
    if dv == 0 or i0 == 0 or iss == 0:
        raise ValueError("delta_V, initial_current_A and steady_current_A must not be 0")
    if (i0 > 0) != (iss > 0):
        raise ValueError(f"initial_current_A {i0:g} A and steady_current_A {iss:g} A have opposite signs")
    if r0 < 0 or rss < 0:
        raise ValueError("interface resistances must be ≥ 0")
    i0, iss = abs(i0), abs(iss)
    numerator = dv - i0 * r0
    denominator = dv - iss * rss
    if numerator <= 0 or denominator <= 0:
        raise ValueError(f"ΔV − I·R ≤ 0 (ΔV {dv * 1e3:.4g} mV, I_0·R_0 {i0 * r0 * 1e3:.4g} mV, "
                         f"I_ss·R_ss {iss * rss * 1e3:.4g} mV): the interface resistances or currents are inconsistent")
    t = iss * numerator / (i0 * denominator)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"transference number {t:.4g} outside [0, 1]: check I_0 (the first reading may miss "
                         f"the true initial current), I_ss and the fitted interface resistances")
    return t


@dataclass(frozen=True)
class TransferenceResult:
    """t_Li+ with its inputs: currents in A, resistances in Ω, ΔV in V; ``steady_state`` as
    found in the I–t record; ``initial_current`` how I_0 was taken."""

    transference_number: float
    delta_V: float
    initial_current_A: float
    steady_current_A: float
    initial_interface_resistance_ohm: float
    steady_interface_resistance_ohm: float
    initial_current: str
    steady_state: SteadyState

    def as_results(self) -> dict[str, Any]:
        return {"transference_number": self.transference_number,
                "transference_initial_current_A": self.initial_current_A,
                "transference_steady_current_A": self.steady_current_A,
                "transference_steady_state_reached": self.steady_state.reached,
                "transference_R0_ohm": self.initial_interface_resistance_ohm,
                "transference_Rss_ohm": self.steady_interface_resistance_ohm}


def interface_resistance_ohm(fit: ImpedanceFit, interface: Literal["charge_transfer", "all_arcs"]) -> float:
    """R_0 / R_ss of Eq. S3 from a fit: ``charge_transfer`` — the R_ct arc alone;
    ``all_arcs`` — every arc after the bulk intercept (R_gb + R_ct), the reading of "interface
    impedance" [002 L43] for polymer and composite electrolytes whose mid-frequency arc is not
    the electrolyte's own (Ω).

    Raises:
        ValueError: the fit has no charge-transfer arc, or an unknown ``interface``.
    """
    if interface == "charge_transfer":
        return fit.interfacial_resistance_ohm
    if interface == "all_arcs":
        return fit.interfacial_resistance_ohm + (fit.grain_boundary_resistance_ohm or 0.0)
    raise ValueError(f"interface must be 'charge_transfer' or 'all_arcs', got {interface!r}")


def transference_number(time_s: Any, current_A: Any, *, delta_V: float, fit_before: ImpedanceFit,
                        fit_after: ImpedanceFit, initial_current: Literal["first", "ohmic"] = "first",
                        max_relative_change_per_h: float = 0.01, window_s: float = 600.0,
                        interface: Literal["charge_transfer", "all_arcs"] = "charge_transfer") -> TransferenceResult:
    """Bruce–Vincent t_Li+ from the polarisation's I–t record and the spectra around it.

    Args:
        time_s, current_A: the potentiostatic step's record (s, A), from its start.
        delta_V: the step (V), 10 mV in [002 L43].
        fit_before, fit_after: fits with a charge-transfer arc, before and after the step;
            R_0 and R_ss are their R_ct.
        initial_current: ``"first"``: I_0 is the first reading of the step; ``"ohmic"``:
            I_0 = ΔV / (R_b + R_gb + R_0) from ``fit_before`` (Evans–Vincent–Bruce, for records
            whose first reading comes after the double layers charged).
        max_relative_change_per_h, window_s: steady state, see
            :func:`~labctl.analysis.conductivity.steady_state_current`.
        interface: which arcs R_0 and R_ss are (:func:`interface_resistance_ohm`); with
            ``"ohmic"``, I_0 = ΔV / (R_b + R_gb + R_ct) either way.

    Raises:
        ValueError: bad input (named), a fit without a charge-transfer arc, or an
            inconsistent result (see :func:`bruce_vincent`).
    """
    i = finite_array("current_A", current_A)
    dv = positive("|delta_V|", abs(finite("delta_V", delta_V)))
    ss = steady_state_current(time_s, i, max_relative_change_per_h=max_relative_change_per_h, window_s=window_s)
    r0 = interface_resistance_ohm(fit_before, interface)
    rss = interface_resistance_ohm(fit_after, interface)
    if initial_current == "first":
        i0 = float(i[0])
    elif initial_current == "ohmic":
        total = fit_before.electrolyte_resistance_ohm + fit_before.interfacial_resistance_ohm
        i0 = float(np.copysign(dv / total, ss.current_A))
    else:
        raise ValueError(f"initial_current must be 'first' or 'ohmic', got {initial_current!r}")
    t = bruce_vincent(dv, i0, ss.current_A, r0, rss)
    return TransferenceResult(t, dv, i0, ss.current_A, r0, rss, initial_current, ss)
