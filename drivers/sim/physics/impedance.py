"""Impedance elements of the simulated cell, in the notation of the seeds' equivalent circuits.

Seed 003 fits Li | argyrodite | Li spectra with R1 + (R2‖CPE2) + (R3‖CPE3) + (R4‖CPE4) + Ws
[003 L80–L82]; seed 000 reports R_b, R_gb and R_CT from such a fit [000 L87, L183]. The
elements here are the textbook ones (Orazem & Tribollet, *Electrochemical Impedance
Spectroscopy*, 2nd ed., §13.1 CPE, §11.3 finite-length diffusion) and the same as the
``impedance`` package's ``CPE`` and ``Ws``, so a fit with that package recovers the inputs.

All functions take angular frequency ``omega_rad_s`` (ω = 2πf, rad s⁻¹, any shape) and
return complex impedance in Ω of the same shape. Resistances in Ω, CPE parameters Q in
F s^(α−1), α in (0, 1], time constants in s.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["cpe", "parallel", "r_cpe", "finite_warburg", "warburg_foster_terms", "effective_capacitance_F"]


def cpe(omega_rad_s: np.ndarray, q: float, alpha: float) -> np.ndarray:
    """Constant-phase element Z = 1 / (Q (jω)^α)."""
    return 1.0 / (q * (1j * np.asarray(omega_rad_s, dtype=float)) ** alpha)


def parallel(*impedances: np.ndarray) -> np.ndarray:
    """Impedances in parallel: 1 / Σ 1/Z (an infinite Z, e.g. ``np.inf``, is an open branch)."""
    admittance = sum(1.0 / np.asarray(z, dtype=complex) for z in impedances)
    return 1.0 / admittance


def r_cpe(omega_rad_s: np.ndarray, r_ohm: float, q: float, alpha: float) -> np.ndarray:
    """R ‖ CPE: Z = R / (1 + R Q (jω)^α) (a depressed semicircle of diameter R)."""
    return r_ohm / (1.0 + r_ohm * q * (1j * np.asarray(omega_rad_s, dtype=float)) ** alpha)


def finite_warburg(omega_rad_s: np.ndarray, r_ohm: float, tau_s: float) -> np.ndarray:
    """Finite-length ("transmissive", short-circuit terminus) Warburg element, ``Ws``:
    Z = R tanh(√(jωτ)) / √(jωτ); Z → R as ω → 0, and −45° at high frequency."""
    s = np.sqrt(1j * np.asarray(omega_rad_s, dtype=float) * tau_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = r_ohm * np.tanh(s) / s
    return np.where(s == 0, r_ohm + 0j, z)


def warburg_foster_terms(r_ohm: float, tau_s: float, n_terms: int) -> tuple[list[float], list[float], float]:
    """The finite Warburg as a series of R‖C terms (its exact partial-fraction expansion),
    for the time-domain model: tanh(√z)/√z = Σ_k 2 / (z + λ_k), λ_k = ((2k+1)π/2)².

    Returns ``(resistances_ohm, time_constants_s, remainder_ohm)``: term k has
    R_k = 8R / ((2k+1)²π²) and τ_k = 4τ / ((2k+1)²π²); the terms beyond ``n_terms`` are
    lumped into ``remainder_ohm`` (their time constants are < τ/(n²·2.5), i.e. instantaneous
    at the sampling intervals used), so Σ R_k + remainder = R exactly.
    """
    rs, taus = [], []
    for k in range(n_terms):
        m = (2 * k + 1) ** 2 * math.pi ** 2
        rs.append(8.0 * r_ohm / m)
        taus.append(4.0 * tau_s / m)
    return rs, taus, max(0.0, r_ohm - sum(rs))


def effective_capacitance_F(r_ohm: float, q: float, alpha: float) -> float:
    """Capacitance of the ideal R‖C with the same time constant as R‖CPE:
    C = (R Q)^(1/α) / R (Hsu & Mansfeld, *Corrosion* 57 (2001) 747; Brug et al. 1984)."""
    if not (r_ohm > 0 and math.isfinite(r_ohm)):
        return q
    return (r_ohm * q) ** (1.0 / alpha) / r_ohm
