"""``labctl sim chamber``: a user starts it, reads the address it prints, and the BINDER driver
talks to it."""

from __future__ import annotations

import subprocess

import pytest

from drivers.chamber import BinderChamber
from tests.cli.test_cli import LABCTL, labctl

pytestmark = pytest.mark.timeout(60)


def test_sim_chamber_prints_an_address_the_driver_opens():
    proc = subprocess.Popen([*LABCTL, "sim", "chamber", "--start-C", "30", "--speed", "60"],
                            stdout=subprocess.PIPE, text=True)
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("127.0.0.1:")
        with BinderChamber(address, timeout_s=5.0) as chamber:
            assert chamber.setpoint_C() == 30.0
            assert abs(chamber.temperature_C() - 30.0) < 0.5
            chamber.set_temperature_C(35.0)
            assert chamber.state()["mode"] == "manual" and chamber.setpoint_C() == 35.0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_chamber_refuses_a_start_outside_its_range_in_one_line():
    proc = labctl("sim", "chamber", "--start-C", "500")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: --start-C: chamber start_C 500 °C is outside its set point range -40 … 180 °C"]
