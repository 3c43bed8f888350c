"""What each simulated cell preset produces, measured on the simulator the way a bench measures it.

For every preset of :data:`drivers.sim.physics.cell.CELL_PRESETS` (noise off, so the numbers
are exact): the cell's ASR from a galvanostatic half-cycle, the CCD a staircase finds, the
median time to failure over 10 seeds, and — where the seeds report one — the EIS resistances,
the Arrhenius activation energy, the electronic conductivity by DC polarisation, the
transference number by Bruce–Vincent, the evolved interface and the LSV oxidation onset.
Prints Markdown tables; ``docs/cell-presets.md`` quotes them.

Run: ``python scripts/cell_presets.py`` (a few seconds).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from drivers.sim.physics.cell import BOLTZMANN_EV_K, CELL_PRESETS, CellParameters, SymmetricCell


def quiet(name: str, **changes) -> CellParameters:
    return replace(CELL_PRESETS[name], noise_V=0.0, **changes)


def half_cycle_asr(p: CellParameters, j_mA_cm2: float, seconds: float = 900.0) -> float:
    """|V| / |j| (Ω cm²) at the end of a plating half-cycle: labctl's ``cell_asr_ohm_cm2``."""
    cell = SymmetricCell(p)
    i = j_mA_cm2 * 1e-3 * p.area_cm2
    for _ in range(int(seconds / 10)):
        cell.advance(10.0, i)
    return abs(cell.voltage_V(i)) / j_mA_cm2 * 1e3


def staircase_ccd(p: CellParameters) -> float:
    """Plate then strip at 0.05 × the preset's CCD, then 0.1 ×, … (≤ 0.5 mAh cm⁻² or 15 min per
    half-cycle): the last density both half-cycles of which end without a soft short."""
    step = p.ccd_mA_cm2 / 10
    cell = SymmetricCell(replace(p, lifetime_h=None))
    j = step
    while j < 3 * p.ccd_mA_cm2:
        seconds = min(900.0, 0.5 / j * 3600)
        for sign in (1, -1):
            for _ in range(60):
                cell.advance(seconds / 60, sign * j * 1e-3 * p.area_cm2)
            if cell.soft_shorted:
                return j - step
        j += step
    return math.inf


def median_life_h(name: str, limit_h: float = 3000.0) -> float:
    """Median hours under current to a soft short over seeds 0–9, in the seed's own cycling:
    seed 000's cells 0.1 mA cm⁻² for 20 h, then 0.2 mA cm⁻², 1 h half-cycles [000 L58, L183];
    LATP 0.2 mA cm⁻², 0.5 mAh cm⁻² (2.5 h) half-cycles [001 L30]."""
    half_s, activation = (9000.0, False) if name.startswith("latp") else (3600.0, True)
    lives = []
    for seed in range(10):
        p = quiet(name, seed=seed)
        cell, t = SymmetricCell(p), 0.0
        while t < limit_h * 3600 and not cell.soft_shorted:
            j = 0.1 if activation and t < 20 * 3600 else 0.2
            for _ in range(6):
                cell.advance(half_s / 6, (1 if int(t // half_s) % 2 == 0 else -1) * j * 1e-3 * p.area_cm2)
                t += half_s / 6
        lives.append(t / 3600 if cell.soft_shorted else math.inf)
    return float(np.median(lives))


def eis(p: CellParameters) -> tuple[float, float]:
    """Re Z × area at 3 MHz (the bulk intercept) and at 1 Hz (after the arcs) [000 L185]."""
    z = SymmetricCell(p).impedance_ohm([3e6, 1.0]).real * p.area_cm2
    return float(z[0]), float(z[1])


def activation_energy_eV(name: str) -> float:
    temps = np.array([25.0, 40.0, 60.0, 80.0])
    sigma = [quiet(name, temperature_C=t).ionic_conductivity_at_temperature_S_cm for t in temps]
    return float(-np.polyfit(1.0 / (BOLTZMANN_EV_K * (temps + 273.15)), np.log(sigma), 1)[0])


def dc_polarisation_S_cm(name: str, bias_V: float) -> float:
    """σ_e from the steady current of a blocking cell under ``bias_V`` [000 L185, 003 L386]."""
    p = quiet(name)
    cell = SymmetricCell(p)
    i = cell.current_A(bias_V)
    for _ in range(600):
        cell.advance(1.0, i)
        i = cell.current_A(bias_V)
    return i * p.electrolyte_thickness_um * 1e-4 / (bias_V * p.area_cm2)


def bruce_vincent(name: str) -> float:
    """t₊ = I_ss(ΔV − I₀R₀) / (I₀(ΔV − I_ss R₀)), ΔV 10 mV, R₀ the interfacial part of the EIS
    fit [002 L41–L43]."""
    p = quiet(name, electronic_conductivity_S_cm=1e-30, lifetime_h=None)
    cell, dv = SymmetricCell(p), 0.010
    i = cell.current_A(dv)
    for _ in range(10):
        cell.advance(0.1, i)
        i = cell.current_A(dv)
    i0 = i
    for _ in range(int(20 * p.diffusion_time_constant_s / 100)):
        cell.advance(100.0, i)
        i = cell.current_A(dv)
    r0 = (p.grain_boundary_asr_ohm_cm2 + p.charge_transfer_asr_ohm_cm2) / p.area_cm2
    return i * (dv - i0 * r0) / (i0 * (dv - i * r0))


def interface_after_cycling(name: str) -> float:
    """R_int after 100 h at 0.8 mA cm⁻², 0.5 h half-cycles [004 L89]."""
    cell = SymmetricCell(quiet(name))
    for k in range(200):
        cell.advance(1800.0, (-1) ** k * 0.8e-3 * cell.params.area_cm2)
    return cell.interfacial_asr_ohm_cm2


def lsv_onset_V(name: str) -> float:
    """The voltage at which a 5 mV / 10 s sweep's current passes twice the onset current."""
    p = quiet(name)
    cell = SymmetricCell(p)
    v, threshold = cell.voltage_V(0.0), p.oxidation_onset_current_density_mA_cm2 * 1e-3 * p.area_cm2
    while v < 6.5:
        v += 0.005
        cell.advance(10.0, cell.current_A(v))
        if cell.current_A(v) > 2 * threshold:
            return v
    return math.nan


def main() -> None:
    print("| preset | T °C | R_b | R_gb | R_CT (2 interfaces) | total | DC ASR | cell ASR at 0.1 × CCD | "
          "CCD input → staircase | lifetime input → median life |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for name, p in CELL_PRESETS.items():
        q = quiet(name)
        li = p.electrodes == "li"
        asr = f"{half_cycle_asr(replace(q, lifetime_h=None), 0.1 * p.ccd_mA_cm2):.1f}" if li else ""
        ccd = f"{p.ccd_mA_cm2:.3g} → {staircase_ccd(q):.3g}" if li else ""
        life = f"{p.lifetime_h:g} h → {median_life_h(name):.0f} h" if p.lifetime_h is not None else ""
        print(f"| `{name}` | {p.temperature_C:g} | {q.bulk_asr_ohm_cm2:.1f} | {q.grain_boundary_asr_ohm_cm2:.1f} | "
              f"{q.charge_transfer_asr_ohm_cm2:.1f} | {q.total_resistance_ohm_cm2:.1f} | {q.dc_asr_ohm_cm2:.1f} | "
              f"{asr} | {ccd} | {life} |")
    print("\nFSE (`fse`) at 30 / 50 / 70 °C [000 L183]: total, R_CT, EIS Re Z at 3 MHz and 1 Hz (Ω cm²)")
    for t in (30.0, 50.0, 70.0):
        q = quiet("fse", temperature_C=t)
        hi, lo = eis(q)
        print(f"  {t:.0f} °C: total {q.total_resistance_ohm_cm2:.1f}, R_CT {q.charge_transfer_asr_ohm_cm2:.1f}, "
              f"EIS {hi:.1f} / {lo:.1f}")
    print(f"\nE_a from ln σ vs 1/T over 25–80 °C: lpscl_ss {activation_energy_eV('lpscl_ss'):.3f} eV, "
          f"lpscl_ald10_ss {activation_energy_eV('lpscl_ald10_ss'):.3f} eV, fse {activation_energy_eV('fse'):.3f} eV")
    print(f"σ_e by DC polarisation: fse_ss (150 mV) {dc_polarisation_S_cm('fse_ss', 0.150):.3g} S/cm, "
          f"lpscl_ss (200 mV) {dc_polarisation_S_cm('lpscl_ss', 0.200):.3g} S/cm, "
          f"lpscl_ald10_ss (200 mV) {dc_polarisation_S_cm('lpscl_ald10_ss', 0.200):.3g} S/cm")
    print(f"t+ by Bruce–Vincent: fse {bruce_vincent('fse'):.3f}, polyea_il {bruce_vincent('polyea_il'):.3f}")
    print(f"hl_llzo interface after 100 h at 0.8 mA cm⁻²: {interface_after_cycling('hl_llzo'):.1f} Ω cm² (from 50)")
    print(f"cse_li_ss LSV onset: {lsv_onset_V('cse_li_ss'):.2f} V (input {CELL_PRESETS['cse_li_ss'].oxidation_onset_V:g} V)")


if __name__ == "__main__":
    main()
