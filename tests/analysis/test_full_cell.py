"""Full-cell cycles, dQ/dV, Li | Cu CE, capacity to short, CTTA and soft-short spikes on
synthetic records whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.analysis import (
    LI_UM_PER_MAH_CM2,
    adams_reservoir_efficiency,
    adams_reservoir_from_record,
    capacity_to_short,
    ctta,
    cycle_dqdv,
    cycles_from_current,
    full_cell_cycles,
    li_cu_efficiency,
    soft_short_spikes,
)


class Builder:
    """Builds a cycler record segment by segment at a fixed interval (s): constant current
    (A) with a voltage profile, or rest; charge counted exactly (rectangles)."""

    def __init__(self, dt: float = 10.0) -> None:
        self.dt = dt
        self.t, self.v, self.i, self.cyc, self.q = [0.0], [3.0], [0.0], [1], [0.0]

    def segment(self, current_A: float, duration_s: float, voltage, cycle: int) -> float:
        """Appends the segment; returns the charge it passed (mAh, magnitude)."""
        n = max(int(round(duration_s / self.dt)), 1)
        for k in range(1, n + 1):
            frac = k / n
            self.t.append(self.t[-1] + self.dt)
            self.i.append(current_A)
            self.v.append(float(voltage(frac)))
            self.cyc.append(cycle)
            self.q.append(self.q[-1] + current_A * self.dt)
        return abs(current_A) * n * self.dt / 3.6

    def arrays(self):
        return (np.array(self.t), np.array(self.v), np.array(self.i), np.array(self.cyc), np.array(self.q))


def lfp_cell(n_cycles=12, mass_g=0.010, fade_per_cycle=0.002, ce=0.999, formation=2):
    """LFP | Li: 0.1C × 2 formation then 1C; discharge capacity 150 mAh g⁻¹ × (1 − fade)^(k−ref)."""
    b = Builder(dt=20.0)
    nominal = 170.0 * mass_g  # mAh
    truth = []
    for c in range(1, n_cycles + 1):
        rate = 0.1 if c <= formation else 1.0
        i = rate * nominal * 1e-3
        q_dis = 150.0 * mass_g * (1 - fade_per_cycle) ** max(c - formation - 1, 0)
        q_ch = q_dis / ce
        q_ch = b.segment(i, q_ch / (i * 1e3) * 3600, lambda x: 3.40 + 0.05 * x + 0.4 * x ** 20, c)
        b.segment(0.0, 600, lambda x: 3.45, c)
        q_dis = b.segment(-i, q_dis / (i * 1e3) * 3600, lambda x: 3.38 - 0.05 * x - 0.8 * x ** 20, c)
        b.segment(0.0, 600, lambda x: 3.3, c)
        truth.append((q_ch, q_dis))
    return b.arrays(), truth, nominal


def test_full_cell_cycles_capacity_ce_retention():
    (t, v, i, cyc, q), truth, nominal = lfp_cell()
    mass, area = 0.010, 1.13
    res = full_cell_cycles(t, v, i, cyc, charge_C=q, active_mass_g=mass, area_cm2=area,
                           nominal_capacity_mAh_g=170.0, formation_cycles=2)
    cols = res.columns
    assert cols["cycle"] == list(range(1, 13)) and all(cols["complete"])
    # With the cycler's counter, capacities are its sums exactly; CE and retention within the
    # 20 s grid's quantisation of the planned capacities.
    for k, (q_ch, q_dis) in enumerate(truth):
        assert cols["charge_capacity_mAh"][k] == pytest.approx(q_ch, rel=1e-9)
        assert cols["discharge_capacity_mAh"][k] == pytest.approx(q_dis, rel=1e-9)
        assert cols["coulombic_efficiency_pct"][k] == pytest.approx(99.9, abs=0.2)
    assert res.reference_cycle == 3 and res.last_cycle == 12
    summary = res.as_results()
    assert summary["discharge_capacity_mAh_g"] == pytest.approx(150.0, rel=2e-3)
    retention = 100 * truth[11][1] / truth[2][1]
    assert retention == pytest.approx(100 * 0.998 ** 9, rel=2e-3)
    assert summary["capacity_retention_pct"] == pytest.approx(retention, rel=1e-9)
    assert summary["capacity_decay_pct_per_cycle"] == pytest.approx((100 - retention) / 9, rel=1e-9)
    assert summary["coulombic_efficiency_pct"] == pytest.approx(99.9, abs=0.1)
    assert cols["discharge_capacity_mAh_cm2"][2] == pytest.approx(150 * mass / area, rel=2e-3)
    assert cols["discharge_c_rate"][0] == pytest.approx(0.1, rel=1e-6) and cols["discharge_c_rate"][5] == pytest.approx(1.0)
    # Mean voltages: between the profiles' ends, discharge below charge.
    assert 3.40 < cols["mean_charge_voltage_V"][4] < 3.60 and 3.0 < cols["mean_discharge_voltage_V"][4] < 3.38
    assert cols["discharge_energy_Wh"][4] == pytest.approx(cols["discharge_capacity_mAh"][4]
                                                          * cols["mean_discharge_voltage_V"][4] * 1e-3)
    # Integrating the current instead of the counter gives the same capacities here.
    integrated = full_cell_cycles(t, v, i, cyc, active_mass_g=mass, formation_cycles=2)
    np.testing.assert_allclose(integrated.columns["discharge_capacity_mAh"], cols["discharge_capacity_mAh"], rtol=3e-3)


def test_an_incomplete_last_cycle_is_not_in_the_summary():
    (t, v, i, cyc, q), truth, _ = lfp_cell(n_cycles=4, formation=0)
    cut = len(t) - 40  # into the last discharge
    res = full_cell_cycles(t[:cut], v[:cut], i[:cut], cyc[:cut], charge_C=q[:cut])
    assert res.columns["complete"] == [True, True, True, True]
    cut = np.flatnonzero(cyc == 4)[5]  # only the start of cycle 4's charge
    res = full_cell_cycles(t[:cut], v[:cut], i[:cut], cyc[:cut], charge_C=q[:cut])
    assert res.columns["complete"] == [True, True, True, False] and res.last_cycle == 3


def test_cycles_from_current_and_dqdv_peak_of_a_plateau():
    (t, v, i, cyc, q), _, _ = lfp_cell(n_cycles=3, formation=0)
    np.testing.assert_array_equal(cycles_from_current(i)[1:], cyc[1:])
    # A sharp plateau at 3.42 V in charge: dQ/dV peaks there.
    # Q(V) (fraction of the charge) with 60 % of it on a plateau at 3.42 V, 10 mV wide.
    grid = np.linspace(3.3, 3.6, 3001)
    q_of_v = 0.4 * (grid - 3.3) / 0.3 + 0.6 * (np.arctan((grid - 3.42) / 0.005) / math.pi + 0.5)
    q_of_v = (q_of_v - q_of_v[0]) / (q_of_v[-1] - q_of_v[0])
    b = Builder(dt=5.0)
    b.segment(1e-3, 3600, lambda x: np.interp(x, q_of_v, grid), 1)
    t2, v2, i2, c2, q2 = b.arrays()
    d = cycle_dqdv(t2, v2, i2, c2, 1, direction="charge", charge_C=q2, voltage_step_V=0.002)
    assert d.voltage_V[np.argmax(d.dqdv_mAh_V)] == pytest.approx(3.42, abs=0.004)
    assert np.trapezoid(d.dqdv_mAh_V, d.voltage_V) == pytest.approx(1.0, rel=0.05)  # ≈ 1 mAh passed
    with pytest.raises(ValueError, match="no discharge"):
        cycle_dqdv(t2, v2, i2, c2, 1, direction="discharge")


def test_full_cell_rejects_non_finite_input():
    (t, v, i, cyc, q), _, _ = lfp_cell(n_cycles=2)
    bad = v.copy()
    bad[7] = np.inf
    with pytest.raises(ValueError, match="voltage_V: 1 non-finite value"):
        full_cell_cycles(t, bad, i, cyc)
    with pytest.raises(ValueError, match="arrays of different lengths"):
        full_cell_cycles(t[:-1], v, i, cyc)


# -- Li | Cu -----------------------------------------------------------------------------------

def li_cu_record(ce_pct, n=20, q_mAh=0.5, i_A=0.2e-3):
    """Li | Cu with Cu as working electrode: plate (negative current) q_mAh, strip back ce × q."""
    b = Builder(dt=5.0)
    for c in range(1, n + 1):
        ce = ce_pct(c) / 100.0
        b.segment(-i_A, q_mAh / (i_A * 1e3) * 3600, lambda x: -0.02, c)
        b.segment(i_A, ce * q_mAh / (i_A * 1e3) * 3600, lambda x: 0.02 + 0.9 * x ** 30, c)
    return b.arrays()


def test_li_cu_plain_cycling_ce_mean_over_a_range():
    t, v, i, cyc, q = li_cu_record(lambda c: 80 + c, n=20)  # 81 … 100 %
    res = li_cu_efficiency(t, v, i, cyc, charge_C=q, cycle_range=(11, 15))
    assert res.method == "plain cycling"
    assert res.coulombic_efficiency_pct == pytest.approx(np.mean([91, 92, 93, 94, 95]), abs=0.05)
    assert res.columns["coulombic_efficiency_pct"][0] == pytest.approx(81, abs=0.05)
    assert res.as_results()["coulombic_efficiency_first_cycle"] == 11
    with pytest.raises(ValueError, match="no cycle with both plating and stripping in 30..40"):
        li_cu_efficiency(t, v, i, cyc, cycle_range=(30, 40))


def test_adams_reservoir_protocol():
    """Adams et al. 2018: Q_T = 5, Q_C = 1 mAh cm⁻² × 10 cycles, Q_S recovered at the end."""
    assert adams_reservoir_efficiency(5.0, 1.0, 10, 4.0) == pytest.approx(14.0 / 15.0 * 100)
    b = Builder(dt=5.0)
    i = 0.5e-3
    hours = lambda mAh: mAh / (i * 1e3) * 3600  # noqa: E731
    b.segment(-i, hours(5.0), lambda x: -0.02, 0)  # conditioning plate
    b.segment(i, hours(4.6), lambda x: 0.05 + x ** 20, 0)  # conditioning strip to the cut-off
    b.segment(-i, hours(5.0), lambda x: -0.02, 0)  # reservoir Q_T
    for _ in range(10):
        b.segment(i, hours(1.0), lambda x: 0.02, 0)
        b.segment(-i, hours(1.0), lambda x: -0.02, 0)
    b.segment(i, hours(4.2), lambda x: 0.05 + x ** 20, 0)  # final strip Q_S
    t, v, cur, _, q = b.arrays()
    res = adams_reservoir_from_record(t, v, cur, charge_C=q)
    assert res.method == "Adams reservoir"
    assert res.coulombic_efficiency_pct == pytest.approx((10 + 4.2) / (5 + 10) * 100, rel=1e-3)
    last_plate = np.flatnonzero(cur < 0)[-1] + 1  # cut before the final strip
    with pytest.raises(ValueError, match="expected a reservoir plate"):
        adams_reservoir_from_record(t[:last_plate], v[:last_plate], cur[:last_plate], charge_C=q[:last_plate])


# -- capacity to short ---------------------------------------------------------------------------

def test_capacity_to_short_and_li_thickness():
    """LPSCl shorted at 1.2 mAh cm⁻² at 0.2 mA cm⁻² [000 L87]: 6 h of plating."""
    area = 1.13
    t = np.arange(0, 10 * 3600 + 1, 30.0)
    i = np.full(len(t), -0.2e-3 * area)
    res = capacity_to_short(t, i, area_cm2=area, short_time_s=6 * 3600)
    assert res.capacity_to_short_mAh_cm2 == pytest.approx(1.2, rel=1e-9)
    assert res.li_thickness_um == pytest.approx(1.2 * 4.85, rel=1e-3)
    assert LI_UM_PER_MAH_CM2 == pytest.approx(4.85, abs=0.005)
    assert not res.is_lower_bound
    none = capacity_to_short(t, i, area_cm2=area)
    assert none.is_lower_bound and none.capacity_to_short_mAh_cm2 == pytest.approx(2.0)
    with pytest.raises(ValueError, match="outside the record"):
        capacity_to_short(t, i, area_cm2=area, short_time_s=11 * 3600)


# -- CTTA ----------------------------------------------------------------------------------------

def ctta_record(k_uAh_cm2_h05=2.0, q_step_uAh_cm2=1.0, area=1.0, n=25, dt=4.0):
    """Titrations of q_step onto SS; side reactions consume Li as q_Σ(t) = k·√t, so titration i's
    Li is used up at t_i = (i·q_step / k)² h; then V rises to 0.05 V and the next titration starts."""
    b = Builder(dt=dt)
    b.v[0] = 0.8
    i_A = 50e-6 * area  # 50 µA cm⁻²
    pulse_s = q_step_uAh_cm2 / 50.0 * 3600
    consumed = []
    for k in range(1, n + 1):
        b.segment(-i_A, pulse_s, lambda x: -0.01, 0)
        t_used = (k * q_step_uAh_cm2 / k_uAh_cm2_h05) ** 2 * 3600 + (k * pulse_s)  # plus the titration time
        wait = max(t_used - b.t[-1], 2 * dt)
        b.segment(0.0, wait, lambda x: 0.0 if x < 1 else 0.06, 0)
        consumed.append(b.t[-1])
    return b.arrays(), consumed


def test_ctta_sqrt_time_slope_and_sei_thickness():
    (t, v, i, _, q), consumed = ctta_record()
    res = ctta(t, v, i, area_cm2=1.0, charge_C=q)
    assert res.titration_count == 25
    assert res.titration_charge_uAh_cm2[0] == pytest.approx(1.0, rel=0.01)
    np.testing.assert_allclose(res.consumed_time_s, consumed, atol=1e-9)
    assert res.sei_charge_uAh_cm2 == pytest.approx(25.0, rel=0.01)
    assert res.sei_thickness_nm == pytest.approx(25.0 * 9, rel=0.01)
    assert res.sqrt_time_slope_uAh_cm2_h05 == pytest.approx(2.0, rel=0.03)
    assert res.r_squared > 0.99
    out = res.as_results()
    assert {"sei_charge_uAh_cm2", "sqrt_time_slope_uAh_cm2_h05"} <= set(out)


def test_ctta_needs_three_consumed_titrations():
    (t, v, i, _, q), consumed = ctta_record(n=2)
    with pytest.raises(ValueError, match="2 titration\\(s\\) consumed"):
        ctta(t, v, i, area_cm2=1.0)


# -- soft short ---------------------------------------------------------------------------------

def soft_short_trace(seed=12):
    """[001]-like: 0.5 nA noise at 0.2 nA for 300 s; at 300 s the level rises to 5 nA and spikes
    with growing amplitude (≈ 1/s, 10 → 300 nA) until a hard short at 600 s (10 µA), then a fuse
    burn-out at 620 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 700.0, 0.1)
    i = 0.2e-9 + 0.5e-9 * rng.standard_normal(len(t))
    rise = (t >= 300) & (t < 600)
    i[rise] += 5e-9
    spike_times = np.arange(305.0, 596.0, 1.0) + rng.uniform(-0.2, 0.2, 291)
    amps = 10e-9 + (300e-9 - 10e-9) * (spike_times - 305) / 290
    for ts, a in zip(spike_times, amps):
        k = int(round(ts / 0.1))
        i[k] += a
        i[k + 1] += 0.3 * a
    i[(t >= 600) & (t < 620)] = 10e-6
    i[t >= 620] = 0.1e-9 + 0.5e-9 * rng.standard_normal(int(np.sum(t >= 620)))
    return t, i, spike_times, amps


def test_soft_short_spikes_onset_and_hard_short():
    t, i, spike_times, amps = soft_short_trace()
    res = soft_short_spikes(t, i, hard_short_A=1e-6)
    assert res.noise_sigma_A == pytest.approx(0.5e-9, rel=0.15)
    assert res.soft_short_onset_s == pytest.approx(300.0, abs=1.0)
    assert res.hard_short_s == pytest.approx(600.0, abs=0.11)
    assert res.burnout_s == pytest.approx(620.0, abs=0.11)
    assert res.spike_count == pytest.approx(len(spike_times), abs=3)
    assert res.spike_rate_per_min == pytest.approx(60.0, rel=0.05)
    assert res.amplitude_growth_spearman > 0.9
    assert res.amplitude_growth_A_per_s == pytest.approx(290e-9 / 290, rel=0.1)
    out = res.as_results()
    assert (out["spike_count"], out["soft_short_onset_s"], out["hard_short_s"]) == (
        res.spike_count, res.soft_short_onset_s, res.hard_short_s)


def test_a_healthy_trace_has_no_spikes_and_no_short():
    """The hybrid electrolyte of [001 L112]: the current stays at the noise floor."""
    rng = np.random.default_rng(13)
    t = np.arange(0.0, 600.0, 0.1)
    i = 0.2e-9 + 0.5e-9 * rng.standard_normal(len(t))
    res = soft_short_spikes(t, i, hard_short_A=1e-6)
    assert res.spike_count == 0 and res.soft_short_onset_s is None and res.hard_short_s is None
    assert res.as_results()["soft_short_onset_s"] == ""
    with pytest.raises(ValueError, match="current_A: 1 non-finite"):
        soft_short_spikes(t, np.r_[np.nan, i[1:]], hard_short_A=1e-6)
