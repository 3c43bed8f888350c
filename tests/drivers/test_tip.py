"""The c-AFM tip junction physics (drivers/sim/tip.py) against seed 004's numbers."""

from __future__ import annotations

import pytest

from drivers.sim.physics.tip import Electrode, SampleParameters, TipJunction, hertz_contact_radius_nm
from labctl.analysis.cafm import hertz_contact_area_nm2


def test_hertz_contact_area_from_the_seeds_inputs_is_68_not_30_nm2():
    # r = 20 nm, P = 400 nN, E* = 60 GPa [004 L129]: a = 4.64 nm, A = 67.7 nm² (stated: 30)
    assert hertz_contact_radius_nm(20, 400, 60) == pytest.approx(4.6416, rel=1e-4)
    assert hertz_contact_area_nm2(20, 400, 60) == pytest.approx(67.68, rel=1e-3)
    assert Electrode().area_cm2() == pytest.approx(67.68e-14, rel=1e-3)
    with pytest.raises(ValueError, match="force_nN"):
        hertz_contact_area_nm2(20, 0, 60)


def test_grain_boundaries_and_interiors_of_the_sample_map():
    junction = TipJunction(SampleParameters(seed=4))
    sample = junction.sample
    (x, y), _direction = sample.transect(23, 16)
    assert sample.distance_to_boundary_nm(x, y) == pytest.approx(0, abs=1e-6)
    assert sample.site_class(x, y) == "GB"
    gx, gy = sample.seeds_nm[23]
    assert sample.site_class(gx, gy) == "GI" and sample.distance_to_boundary_nm(gx, gy) > 20
    assert junction.triggering_bias_V(x, y) == pytest.approx(-0.12, rel=0.07)  # [004 L54]
    assert junction.triggering_bias_V(gx, gy) < -9.0  # [004 L56]


def test_triggering_bias_rises_with_distance_and_is_uniform_on_the_layer():
    junction = TipJunction()
    (x, y), direction = junction.sample.transect(23, 16)
    import math

    biases = [junction.triggering_bias_V(x + d * math.cos(math.radians(direction)), y + d * math.sin(math.radians(direction)))
              for d in (0, 5, 10, 20, 50)]
    assert biases == sorted(biases, reverse=True)
    layer = TipJunction(SampleParameters(homogenising_layer=True))
    assert layer.triggering_bias_V(x, y) == pytest.approx(layer.triggering_bias_V(500, 500), rel=0.15)
    assert layer.triggering_bias_V(x, y) < -1.0  # larger than at the LLZO boundaries [004 L72]


def _cycle(junction: TipJunction) -> float:
    """read, set to -0.2 V, read, reset to +1 V; returns R_HRS / R_LRS at +0.05 V."""
    hrs = 0.05 / junction.current_A(0.05)
    for k in range(21):
        junction.current_A(-0.01 * k)
    lrs = 0.05 / junction.current_A(0.05)
    for k in range(101):
        junction.current_A(0.01 * k)
    junction.current_A(0.0)
    return hrs / lrs


def test_memristor_on_off_tip_about_1e5_pad_at_most_10():
    tip = TipJunction(seed=1)
    (x, y), _ = tip.sample.transect(23, 16)
    tip.move_to(x, y)
    tip.set_contact(True)
    ratios = [_cycle(tip) for _ in range(50)]
    assert all(5e4 < r < 2e5 for r in ratios)  # ~1e5 [004 L107]
    pad = TipJunction(electrode=Electrode(kind="pad"), seed=1)
    ratios = [_cycle(pad) for _ in range(20)]
    assert all(r <= 10 for r in ratios)  # [004 L105-L107]
    assert pad.log.failed_resets >= 15  # hardly resettable


def test_out_of_contact_the_junction_is_open_and_the_model_is_seeded():
    junction = TipJunction(seed=3)
    junction.set_contact(False)
    assert junction.current_A(-5.0) == 0.0
    a, b = TipJunction(seed=7), TipJunction(seed=7)
    for j in (a, b):
        j.set_contact(True)
    assert [a.current_A(-0.05) for _ in range(5)] == [b.current_A(-0.05) for _ in range(5)]
