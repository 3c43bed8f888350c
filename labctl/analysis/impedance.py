"""Equivalent-circuit fits of impedance spectra with impedance.py (``impedance`` on PyPI).

The seeds fit Li | SSE | Li and SS | SSE | SS spectra with a series bulk resistance R_b, a
grain-boundary arc (R_gb ‖ CPE) and an interfacial charge-transfer arc (R_ct ‖ CPE), plus a
Warburg tail where diffusion shows ([000 L87]: FSE R_b / R_gb / R_CT = 16 / 14 / 46 Ω cm² at
30 °C; [000 L183, L185]: 3 MHz – 1 Hz, 5 mV; [002 L31–L37]; [004 L87]; the review's
R1 + (R2‖CPE2) + (R3‖CPE3) + … + Ws with bulk/GB CPEs ~10⁻⁶ and interface CPEs ~10⁻⁴–10⁻²
F s^(a−1) [003 L70, L80–L82]). :data:`CIRCUITS` names the circuits offered; each arc has a
role, and arcs are labelled by their characteristic frequency after the fit (the
grain-boundary arc is the faster one), so a fit cannot swap R_gb and R_ct.

Method:

* initial guesses from the spectrum itself: R_b from the high-frequency intercept (where −Im Z
  crosses zero, else the real part at the highest frequency); each arc from an apex of −Im Z
  (``scipy.signal.find_peaks``): for R ‖ CPE the apex sits at ω = 1/(R·Q)^(1/n) with
  −Im Z = (R/2)·tan(nπ/4), so R = 2·(−Im Z)/tan(nπ/4) and Q = 1/(R·ωⁿ) with n = 0.85; an arc
  without a visible apex gets the low-frequency remainder of Re Z; the Warburg coefficient
  from −Im Z·√ω at the lowest frequency (semi-infinite W: Z = A_W(1 − j)/√ω);
* a bounded least-squares fit (``impedance.models.circuits.CustomCircuit.fit`` →
  ``scipy.optimize.curve_fit``, trust-region reflective) weighted by |Z| ("the standard
  weighting when experimental variances are unavailable", impedance.py docs), started from
  the guess and from three variations of it (n = 0.7, Q × 10, Q / 10); the start with the
  lowest weighted residual wins;
* fit quality: the relative residual rms √(mean(|Z − Z_fit|² / |Z|²)) and each parameter's
  standard error (√ of the covariance diagonal from curve_fit, scaled by the residual
  variance); a standard error curve_fit cannot estimate is ``None``.

Areal resistances are R × electrode area (Ω cm²); whether the seeds' Li | SSE | Li values are
per interface is not stated (seed-protocols.md §8), so :meth:`ImpedanceFit.as_results` takes
the number of interfaces the arc stands for (default 1: the whole cell's value).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis._inputs import finite_array, positive, same_length

#: Exponent n of the CPEs in the initial guess (a typical depressed arc).
_N_GUESS = 0.85
#: Bounds: CPE exponent n, CPE Q (F s^(n−1)).
_N_BOUNDS = (0.3, 1.0)
_Q_BOUNDS = (1e-15, 1e3)


@dataclass(frozen=True)
class CircuitSpec:
    """A circuit offered for fitting.

    ``string`` is the impedance.py circuit; ``arcs`` the roles of its R ‖ CPE arcs in order of
    decreasing characteristic frequency ("grain_boundary", "charge_transfer");
    ``warburg`` whether a semi-infinite Warburg element ends it; ``blocking`` whether a series
    CPE (the blocking-electrode spike of an SS | SSE | SS cell) ends it.
    """

    string: str
    arcs: tuple[str, ...]
    warburg: bool = False
    blocking: bool = False


#: The circuits (name → spec). Names read as the seeds write them: R_b + (R_gb‖CPE) + (R_ct‖CPE) [+ W].
CIRCUITS: dict[str, CircuitSpec] = {
    "Rb-(Rgb|CPE)": CircuitSpec("R0-p(R1,CPE1)", ("grain_boundary",)),
    "Rb-(Rct|CPE)": CircuitSpec("R0-p(R1,CPE1)", ("charge_transfer",)),
    "Rb-(Rgb|CPE)-(Rct|CPE)": CircuitSpec("R0-p(R1,CPE1)-p(R2,CPE2)", ("grain_boundary", "charge_transfer")),
    "Rb-(Rgb|CPE)-(Rct|CPE)-W": CircuitSpec("R0-p(R1,CPE1)-p(R2,CPE2)-W3", ("grain_boundary", "charge_transfer"),
                                            warburg=True),
    "Rb-(Rct|CPE)-W": CircuitSpec("R0-p(R1,CPE1)-W2", ("charge_transfer",), warburg=True),
    "Rb-(Rgb|CPE)-CPE": CircuitSpec("R0-p(R1,CPE1)-CPE2", ("grain_boundary",), blocking=True),
    # SS | SSE | SS whose bulk (and grain-boundary) arc lies above the highest frequency: the
    # intercept and the blocking electrodes' spike only (R_b is then R_b + R_gb).
    "Rb-CPE": CircuitSpec("R0-CPE1", (), blocking=True),
}


@dataclass(frozen=True)
class Spectrum:
    """One impedance spectrum, sorted by decreasing frequency.

    ``frequency_Hz`` (Hz), ``z_real_ohm`` (Re Z, Ω), ``z_imag_neg_ohm`` (−Im Z, Ω): 1-D arrays of
    equal length.
    """

    frequency_Hz: np.ndarray
    z_real_ohm: np.ndarray
    z_imag_neg_ohm: np.ndarray

    @property
    def z(self) -> np.ndarray:
        """Complex impedance Re Z + j Im Z (Ω)."""
        return self.z_real_ohm - 1j * self.z_imag_neg_ohm


def spectrum(frequency_Hz: Any, z_real_ohm: Any, z_imag_neg_ohm: Any, *, f_min_Hz: float | None = None,
             f_max_Hz: float | None = None, drop_inductive: bool = True) -> Spectrum:
    """Check and select the points of a spectrum to fit.

    Args:
        frequency_Hz, z_real_ohm, z_imag_neg_ohm: 1-D arrays (Hz, Ω, Ω; −Im Z is positive for a
            capacitive arc, as EC-Lab's ``-Im(Z)/Ohm``).
        f_min_Hz, f_max_Hz: keep only points within [f_min_Hz, f_max_Hz] (e.g. to leave out a
            noisy low-frequency end).
        drop_inductive: drop the high-frequency points with −Im Z < 0 (cable inductance above
            the first capacitive point), which none of the circuits models.

    Returns:
        :class:`Spectrum` sorted by decreasing frequency.

    Raises:
        ValueError: non-finite values, different lengths, a frequency ≤ 0, or fewer points left
            than a fit needs (5).
    """
    f = finite_array("frequency_Hz", frequency_Hz)
    zr = finite_array("z_real_ohm", z_real_ohm)
    zi = finite_array("z_imag_neg_ohm", z_imag_neg_ohm)
    same_length(frequency_Hz=f, z_real_ohm=zr, z_imag_neg_ohm=zi)
    if np.any(f <= 0):
        raise ValueError(f"frequency_Hz: {int(np.sum(f <= 0))} value(s) ≤ 0 (not impedance points)")
    keep = np.ones(len(f), dtype=bool)
    if f_min_Hz is not None:
        keep &= f >= positive("f_min_Hz", f_min_Hz)
    if f_max_Hz is not None:
        keep &= f <= positive("f_max_Hz", f_max_Hz)
    order = np.argsort(-f[keep], kind="stable")
    f, zr, zi = f[keep][order], zr[keep][order], zi[keep][order]
    if drop_inductive and len(zi) and np.any(zi >= 0):
        first_capacitive = int(np.argmax(zi >= 0))
        f, zr, zi = f[first_capacitive:], zr[first_capacitive:], zi[first_capacitive:]
    if len(f) < 5:
        raise ValueError(f"spectrum: {len(f)} point(s) left to fit (at least 5 needed)")
    return Spectrum(f, zr, zi)


def high_frequency_intercept_ohm(spec: Spectrum) -> float:
    """Re Z where −Im Z crosses zero at the high-frequency end (linear interpolation), else the
    real part at the highest frequency (Ω)."""
    zr, zi = spec.z_real_ohm, spec.z_imag_neg_ohm
    if zi[0] <= 0 and np.any(zi > 0):
        k = int(np.argmax(zi > 0))
        a, b = zi[k - 1], zi[k]
        return float(zr[k - 1] + (zr[k] - zr[k - 1]) * (0 - a) / (b - a)) if b != a else float(zr[k])
    return float(zr[0])


def _arc_guesses(spec: Spectrum, n_arcs: int, r_hf: float) -> list[tuple[float, float, float]]:
    """(R Ω, Q F s^(n−1), n) per arc, in order of decreasing frequency."""
    from scipy.signal import find_peaks

    w = 2 * np.pi * spec.frequency_Hz
    zi = spec.z_imag_neg_ohm
    span = max(float(np.max(zi)), 1e-12)
    peaks, props = find_peaks(np.r_[0.0, zi, 0.0], prominence=0.02 * span)
    peaks = peaks - 1
    best = peaks[np.argsort(-props["prominences"])][:n_arcs]
    best = np.sort(best)
    tan = math.tan(_N_GUESS * math.pi / 4)
    arcs = []
    for p in best:
        r = max(2 * float(zi[p]) / tan, 1e-9)
        arcs.append((r, 1.0 / (r * w[p] ** _N_GUESS), _N_GUESS))
    while len(arcs) < n_arcs:  # an arc without an apex: the low-frequency rest of Re Z
        rest = float(spec.z_real_ohm[-1]) - r_hf - sum(a[0] for a in arcs)
        r = rest if rest > 0 else 0.1 * max(abs(float(spec.z_real_ohm[-1])), 1e-6)
        w_arc = 3.0 * w[-1] if arcs else math.sqrt(w[0] * w[-1])
        arcs.append((r, 1.0 / (r * w_arc ** _N_GUESS), _N_GUESS))
    return arcs


def initial_guess(spec: Spectrum, circuit: str) -> list[float]:
    """Initial parameters for ``circuit`` (see :data:`CIRCUITS`), in impedance.py's order."""
    cspec = _circuit(circuit)
    r_hf = max(high_frequency_intercept_ohm(spec), 0.0)
    guess = [r_hf]
    for r, q, n in _arc_guesses(spec, len(cspec.arcs), r_hf):
        guess += [r, q, n]
    w_low = 2 * np.pi * spec.frequency_Hz[-1]
    zi_low = max(float(spec.z_imag_neg_ohm[-1]), 1e-6 * max(float(np.max(np.abs(spec.z))), 1e-12))
    if cspec.warburg:
        guess.append(zi_low * math.sqrt(w_low))
    if cspec.blocking:
        guess += [math.sin(_N_GUESS * math.pi / 2) / (zi_low * w_low ** _N_GUESS), _N_GUESS]
    return guess


def _circuit(name: str) -> CircuitSpec:
    try:
        return CIRCUITS[name]
    except KeyError:
        raise ValueError(f"circuit: unknown {name!r}; known: {', '.join(CIRCUITS)}") from None


def _bounds(cspec: CircuitSpec, spec: Spectrum) -> tuple[list[float], list[float]]:
    r_max = 100.0 * float(np.max(np.abs(spec.z))) + 1.0
    lower, upper = [0.0], [r_max]
    for _ in cspec.arcs:
        lower += [0.0, _Q_BOUNDS[0], _N_BOUNDS[0]]
        upper += [r_max, _Q_BOUNDS[1], _N_BOUNDS[1]]
    if cspec.warburg:
        lower.append(0.0)
        upper.append(r_max * 1e3)
    if cspec.blocking:
        lower += [_Q_BOUNDS[0], _N_BOUNDS[0]]
        upper += [_Q_BOUNDS[1], _N_BOUNDS[1]]
    return lower, upper


@dataclass(frozen=True)
class ImpedanceFit:
    """A fitted equivalent circuit.

    Resistances in Ω (``None`` where the circuit has no such element), their standard errors
    in Ω (``None`` when the covariance could not be estimated); ``parameters`` and
    ``standard_errors`` by impedance.py name (``R0``, ``R1``, ``CPE1_0`` = Q in F s^(n−1),
    ``CPE1_1`` = n, ``W3`` = A_W in Ω s^-0.5 …), after the arcs were ordered by characteristic
    frequency. ``relative_residual_rms`` is √(mean(|Z − Z_fit|²/|Z|²)), dimensionless.
    ``area_cm2`` is the electrode area the areal values use (``None``: none given).
    """

    circuit: str
    circuit_string: str
    parameters: dict[str, float]
    standard_errors: dict[str, float | None]
    bulk_resistance_ohm: float
    grain_boundary_resistance_ohm: float | None
    charge_transfer_resistance_ohm: float | None
    relative_residual_rms: float
    n_points: int
    frequency_min_Hz: float
    frequency_max_Hz: float
    area_cm2: float | None = None

    @property
    def electrolyte_resistance_ohm(self) -> float:
        """R_b + R_gb (Ω): the electrolyte's total resistance (R_b alone without a GB arc)."""
        return self.bulk_resistance_ohm + (self.grain_boundary_resistance_ohm or 0.0)

    @property
    def interfacial_resistance_ohm(self) -> float:
        """R_ct (Ω), the interface arc ([002 L43]: "interface impedance"; [003 L82] R_int).

        Raises:
            ValueError: the circuit has no charge-transfer arc.
        """
        if self.charge_transfer_resistance_ohm is None:
            raise ValueError(f"circuit {self.circuit} has no charge-transfer (interface) arc")
        return self.charge_transfer_resistance_ohm

    def predict(self, frequency_Hz: Any) -> np.ndarray:
        """The fitted circuit's impedance (complex, Ω) at ``frequency_Hz`` (1-D, Hz)."""
        from impedance.models.circuits.fitting import wrapCircuit

        f = finite_array("frequency_Hz", frequency_Hz)
        values = wrapCircuit(self.circuit_string, {})(f, *self.parameters.values())
        return values[: len(f)] + 1j * values[len(f):]

    def as_results(self, *, interfaces: int = 1) -> dict[str, Any]:
        """Run-file results: ``bulk_resistance_ohm_cm2``, ``grain_boundary_resistance_ohm_cm2``,
        ``charge_transfer_resistance_ohm_cm2`` (R × area; R_ct divided by ``interfaces``, e.g. 2
        for the two identical interfaces of a symmetric Li | SSE | Li cell) where the circuit has
        them and an area is known, plus the Ω values, the circuit and the fit quality.
        """
        if interfaces < 1:
            raise ValueError(f"interfaces must be ≥ 1, got {interfaces}")
        out: dict[str, Any] = {"impedance_circuit": self.circuit,
                               "impedance_fit_relative_residual_rms": self.relative_residual_rms}
        pairs = [("bulk_resistance", self.bulk_resistance_ohm, 1),
                 ("grain_boundary_resistance", self.grain_boundary_resistance_ohm, 1),
                 ("charge_transfer_resistance", self.charge_transfer_resistance_ohm, interfaces)]
        for name, value, share in pairs:
            if value is None:
                continue
            out[f"{name}_ohm"] = value
            if self.area_cm2 is not None:
                out[f"{name}_ohm_cm2"] = value * self.area_cm2 / share
        if interfaces != 1:
            out["charge_transfer_resistance_interfaces"] = interfaces
        return out


def fit_spectrum(frequency_Hz: Any, z_real_ohm: Any, z_imag_neg_ohm: Any, *, circuit: str = "Rb-(Rgb|CPE)-(Rct|CPE)",
                 area_cm2: float | None = None, f_min_Hz: float | None = None, f_max_Hz: float | None = None,
                 drop_inductive: bool = True, guess: list[float] | None = None) -> ImpedanceFit:
    """Fit an equivalent circuit to one spectrum (method in the module docstring).

    Args:
        frequency_Hz, z_real_ohm, z_imag_neg_ohm: the spectrum, 1-D arrays of equal length
            (Hz, Ω, −Im Z in Ω), in any order.
        circuit: a name from :data:`CIRCUITS`.
        area_cm2: electrode area (cm²) for the areal values (model input).
        f_min_Hz, f_max_Hz, drop_inductive: point selection, see :func:`spectrum`.
        guess: initial parameters in impedance.py's order (default :func:`initial_guess`).

    Returns:
        :class:`ImpedanceFit`.

    Raises:
        ValueError: bad input (named), an unknown circuit, or no start converged.
    """
    from impedance.models.circuits import CustomCircuit

    cspec = _circuit(circuit)
    area = positive("area_cm2", area_cm2) if area_cm2 is not None else None
    spec = spectrum(frequency_Hz, z_real_ohm, z_imag_neg_ohm, f_min_Hz=f_min_Hz, f_max_Hz=f_max_Hz,
                    drop_inductive=drop_inductive)
    lower, upper = _bounds(cspec, spec)
    base = list(guess) if guess is not None else initial_guess(spec, circuit)
    if len(base) != len(lower):
        raise ValueError(f"guess: {len(base)} values for circuit {circuit}, which has {len(lower)} parameters")
    starts = [base]
    if guess is None:
        for change in ("n", "q_up", "q_down"):
            starts.append(_varied(base, cspec, change))
    z = spec.z
    best: tuple[float, Any] | None = None
    for start in starts:
        start = [min(max(v, lo), hi) for v, lo, hi in zip(start, lower, upper)]
        model = CustomCircuit(cspec.string, initial_guess=start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model.fit(spec.frequency_Hz, z, bounds=(lower, upper), weight_by_modulus=True)
            except (RuntimeError, ValueError, np.linalg.LinAlgError):
                continue
        predicted = model.predict(spec.frequency_Hz)
        cost = float(np.sum(np.abs(z - predicted) ** 2 / np.abs(z) ** 2))
        if math.isfinite(cost) and (best is None or cost < best[0]):
            best = (cost, model)
    if best is None:
        raise ValueError(f"circuit {circuit}: the fit did not converge from any start")
    model = best[1]
    names = [n for n in model.get_param_names()[0]]
    values = [float(v) for v in model.parameters_]
    errors = [float(e) if e is not None and math.isfinite(float(e)) else None for e in (
        model.conf_ if model.conf_ is not None else [None] * len(values))]
    values, errors = _order_arcs(cspec, values, errors)
    params = dict(zip(names, values))
    stderr = dict(zip(names, errors))
    roles = {role: params[f"R{k + 1}"] for k, role in enumerate(cspec.arcs)}
    rel = math.sqrt(best[0] / len(z))
    return ImpedanceFit(
        circuit=circuit, circuit_string=cspec.string, parameters=params, standard_errors=stderr,
        bulk_resistance_ohm=params["R0"], grain_boundary_resistance_ohm=roles.get("grain_boundary"),
        charge_transfer_resistance_ohm=roles.get("charge_transfer"), relative_residual_rms=rel,
        n_points=len(z), frequency_min_Hz=float(spec.frequency_Hz[-1]), frequency_max_Hz=float(spec.frequency_Hz[0]),
        area_cm2=area,
    )


def _varied(base: list[float], cspec: CircuitSpec, change: str) -> list[float]:
    out = list(base)
    for k in range(len(cspec.arcs)):
        i = 1 + 3 * k
        r, q, n = out[i], out[i + 1], out[i + 2]
        if change == "n":
            w_apex = (1.0 / (r * q)) ** (1.0 / n) if r > 0 and q > 0 else 1.0
            out[i + 1], out[i + 2] = 1.0 / (max(r, 1e-12) * w_apex ** 0.7), 0.7
        else:
            out[i + 1] = q * (10.0 if change == "q_up" else 0.1)
    return out


def _order_arcs(cspec: CircuitSpec, values: list[float], errors: list[float | None]
                ) -> tuple[list[float], list[float | None]]:
    """Two arcs ordered so the first has the higher characteristic frequency 1/(R·Q)^(1/n)."""
    if len(cspec.arcs) != 2:
        return values, errors

    def omega(k: int) -> float:
        r, q, n = values[1 + 3 * k: 4 + 3 * k]
        return math.inf if r * q <= 0 else (1.0 / (r * q)) ** (1.0 / n)

    if omega(0) >= omega(1):
        return values, errors
    swap = list(range(len(values)))
    swap[1:4], swap[4:7] = [4, 5, 6], [1, 2, 3]
    return [values[i] for i in swap], [errors[i] for i in swap]
