"""The NEWARE step-file compiler and our BTS client, against the simulated BTS on 127.0.0.1."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from drivers.base import InstrumentError, InstrumentLost
from drivers.neware import (
    ConstantCurrent,
    CursorState,
    Cycle,
    DownloadCursor,
    NewareClient,
    Protection,
    Rest,
    StepFile,
    StepFileError,
    compile_program,
    fold_repeats,
)
from drivers.sim.neware import BtsServer, NewareBtsSimulator
from drivers.sim.physics.cell import CellParameters
from labctl import steps as lab

pytestmark = pytest.mark.timeout(10)


class ManualClock:
    """Simulated seconds that move only when a test sets them."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def value(el: ET.Element, path: str) -> str:
    found = el.find(path)
    assert found is not None, path
    return found.get("Value")


# -- step-file writer ------------------------------------------------------------------------

def test_step_file_units_types_and_protect() -> None:
    sf = StepFile(
        [Rest(time_s=60, record_interval_s=5),
         ConstantCurrent(current_mA=1.13, time_s=900, stop_voltage_V=4.5, stop_capacity_mAs=1017, protect_voltage_lower_V=0.001),
         ConstantCurrent(current_mA=-1.13, time_s=900, stop_voltage_V=-4.5, protect_voltage_upper_V=-0.001)],
        protection=Protection(voltage_upper_V=5, voltage_lower_V=-5, current_upper_mA=2.5, current_lower_mA=-2.5,
                              capacity_upper_mAs=3600, delay_s=2),
        record_interval_s=1, remark="cell 7")
    text = sf.to_xml(date=datetime(2026, 1, 2, 3, 4, 5), guid="g")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<root>')
    config = ET.fromstring(text).find("config")
    assert config.attrib == {"type": "Step File", "version": "17", "client_version": "BTS Client 8.0.0.478(2024.06.24)(R3)",
                             "date": "20260102030405", "Guid": "g"}
    assert value(config, "Head_Info/Remark") == "cell 7" and value(config, "Head_Info/RateType") == "103"
    protect = "Whole_Prt/Protect/Main/"
    assert value(config, protect + "Volt/Upper") == "50000"       # 0.1 mV
    assert value(config, protect + "Volt/Lower") == "-50000"
    assert value(config, protect + "Curr/Upper") == "2.5"         # mA
    assert value(config, protect + "Curr/Lower") == "-2.5"
    assert value(config, protect + "Cap/Upper") == "3600"         # mA·s
    assert value(config, protect + "Delay_Time") == "2000"        # ms
    assert value(config, "Whole_Prt/Record/Main/Time") == "1000"
    info = config.find("Step_Info")
    assert info.get("Num") == "4" and [s.tag for s in info] == ["Step1", "Step2", "Step3", "Step4"]
    assert [(s.get("Step_ID"), s.get("Step_Type")) for s in info] == [("1", "4"), ("2", "1"), ("3", "2"), ("4", "6")]
    rest, charge, discharge, _end = list(info)
    assert value(rest, "Limit/Main/Time") == "60000" and value(rest, "Record/Main/Time") == "5000"
    assert value(charge, "Limit/Main/Curr") == "1.13" and value(discharge, "Limit/Main/Curr") == "1.13"
    assert value(charge, "Limit/Main/Time") == "900000"
    assert value(charge, "Limit/Main/Stop_Volt") == "45000" and value(discharge, "Limit/Main/Stop_Volt") == "-45000"
    assert value(charge, "Limit/Main/Cap") == "1017"
    assert value(charge, "Protect/Main/Volt/Lower") == "10" and value(discharge, "Protect/Main/Volt/Upper") == "-10"
    assert charge.find("Record") is None  # the file's interval applies


def test_cycle_step_and_folding() -> None:
    plate, strip = ConstantCurrent(0.5, time_s=3600), ConstantCurrent(-0.5, time_s=3600)
    rest = Rest(600)
    folded = fold_repeats([rest] + [plate, strip] * 50 + [rest])
    assert folded == [rest, plate, strip, Cycle(start_step=2, cycle_count=50), rest]
    assert fold_repeats([plate, plate]) == [plate, plate]  # a cycle step would save nothing
    info = ET.fromstring(StepFile(folded).to_xml()).find("config/Step_Info")
    cycle = info.find("Step4")
    assert cycle.get("Step_Type") == "5"
    assert value(cycle, "Limit/Other/Start_Step") == "2" and value(cycle, "Limit/Other/Cycle_Count") == "50"
    assert info.find("Step6").get("Step_Type") == "6"


def test_step_file_refuses_what_neware_cannot_run() -> None:
    with pytest.raises(StepFileError, match="current_mA must not be 0"):
        ConstantCurrent(0.0, time_s=1)
    with pytest.raises(StepFileError, match="needs time_s"):
        ConstantCurrent(1.0)
    with pytest.raises(StepFileError, match="step 1: cycle start_step 1 must be an earlier step"):
        StepFile([Cycle(1, 2)])
    with pytest.raises(StepFileError, match="voltage lower limit 5 must be below upper -5"):
        Protection(voltage_upper_V=-5, voltage_lower_V=5)


# -- labctl step program → step file -----------------------------------------------------------

def _program(**changes) -> lab.StepProgram:
    cc = dict(record_interval_s=10.0)
    steps = [lab.Rest(duration_s=600, record_interval_s=60)]
    for _ in range(3):
        steps += [lab.ConstantCurrent(current_A=2e-4, duration_s=1800, stop_voltage_above_V=4.0, **cc),
                  lab.ConstantCurrent(current_A=-2e-4, stop_charge_C=0.36, stop_voltage_below_V=-4.0, **cc)]
    fields = dict(steps=steps, area_cm2=1.0, safety=lab.SafetyLimits(max_abs_voltage_V=5.0, max_abs_current_A=1e-3))
    fields.update(changes)
    return lab.StepProgram(**fields)


def test_compile_program() -> None:
    sf = compile_program(_program(), remark="Li|LLZO|Li #3")
    # the delay (the detection's settle_s) keeps the reversal transient from tripping the floor
    assert sf.protection == Protection(voltage_upper_V=5.0, voltage_lower_V=-5.0, current_upper_mA=1.0,
                                       current_lower_mA=-1.0, delay_s=1.0)
    assert sf.record_interval_s == 10.0 and sf.remark == "Li|LLZO|Li #3"
    rest, charge, discharge, cycle = sf.steps
    assert rest == Rest(time_s=600, record_interval_s=60)
    assert charge == ConstantCurrent(current_mA=0.2, time_s=1800, stop_voltage_V=4.0, record_interval_s=10.0,
                                     protect_voltage_lower_V=1e-3)
    assert discharge == ConstantCurrent(current_mA=-0.2, stop_voltage_V=-4.0, stop_capacity_mAs=360.0,
                                        record_interval_s=10.0, protect_voltage_upper_V=-1e-3)
    assert cycle == Cycle(start_step=2, cycle_count=3)
    assert len(compile_program(_program(), fold=False).steps) == 7
    off = compile_program(_program(short_detection=lab.ShortDetection(enabled=False)))
    assert off.steps[1].protect_voltage_lower_V is None and off.steps[2].protect_voltage_upper_V is None


def test_compile_loops_to_cycle_steps(bts, tmp_path: Path) -> None:
    """A Loop becomes its steps and a cycle step; the executed order is the program's."""
    clock, sim, server = bts
    cc = dict(record_interval_s=10.0)
    plate = lab.ConstantCurrent(current_A=2e-4, duration_s=600, **cc)
    strip = lab.ConstantCurrent(current_A=-2e-4, duration_s=600, **cc)
    program = _program(steps=[lab.Rest(duration_s=60, record_interval_s=10.0), lab.Loop(steps=[plate, strip], count=4),
                              plate, strip, plate, strip])
    sf = compile_program(program)
    assert [type(s).__name__ for s in sf.steps] == ["Rest", "ConstantCurrent", "ConstantCurrent", "Cycle",
                                                     "ConstantCurrent", "ConstantCurrent", "Cycle"]
    assert sf.steps[3] == Cycle(start_step=2, cycle_count=4) and sf.steps[6] == Cycle(start_step=5, cycle_count=2)
    with connect(server) as client:
        client.start("21-1-4", write(tmp_path, sf), "loops")
        clock.t = 1e5
        layer = client.steps("21-1-4")
    executed = [(i, s.current_A if isinstance(s, lab.ConstantCurrent) else 0.0) for i, s, _c in program.iter_steps()]
    assert [(s.step_index - 1, s.end_current_A) for s in layer] == executed


def test_compile_refuses_a_stop_against_the_current() -> None:
    bad = _program(steps=[lab.ConstantCurrent(current_A=1e-3, stop_voltage_below_V=-1.0, record_interval_s=1.0)])
    with pytest.raises(StepFileError, match="step 0: a NEWARE CC charge cannot stop on stop_voltage_below_V"):
        compile_program(bad)


# -- our client against the simulator ------------------------------------------------------------

@pytest.fixture
def bts():
    clock = ManualClock()
    sim = NewareBtsSimulator(8, cell=CellParameters(ccd_mA_cm2=0.5), now=clock.now, devid=21)
    with BtsServer(sim) as server:
        yield clock, sim, server


def connect(server: BtsServer) -> NewareClient:
    host, port = server.address
    client = NewareClient(host, port, username="operator", password="secret", timeout_s=2.0)
    client.connect()
    return client


def write(tmp_path: Path, sf: StepFile, name: str = "program.xml") -> str:
    path = tmp_path / name
    path.write_text(sf.to_xml(), encoding="utf-8")
    return str(path)


def test_client_runs_a_compiled_program(bts, tmp_path: Path) -> None:
    clock, sim, server = bts
    path = write(tmp_path, compile_program(_program()))
    with connect(server) as client:
        assert list(client.channels)[:2] == ["21-1-1", "21-1-2"] and len(client.channels) == 8
        assert client.status() == {pid: "stop" for pid in client.channels}
        client.start("21-1-3", path, "Li-LLZO-3")
        cursor = DownloadCursor.latest(client, "21-1-3")
        assert cursor.state.test_id == 1
        clock.t = 1200.0
        live = client.inquire("21-1-3")["21-1-3"]
        assert (live.workstatus, live.step_id, live.step_type, live.cycle_id, live.barcode) == ("working", 2, "cc", 1, "Li-LLZO-3")
        assert live.current_A == pytest.approx(2e-4, abs=1e-4) and live.total_time_s == pytest.approx(1200.0)
        first = cursor.fetch()
        # rest: points at 0, 60 … 600 s (11); charge: its start point and 10 s points up to 1200 s
        assert len(first) == 11 + 61
        assert [p.point.seq_id for p in first] == list(range(1, 73))
        assert first[10].test_time_s == pytest.approx(600.0) and first[11].point.step_time_s == 0.0
        assert first[-1].test_time_s == pytest.approx(1200.0)
        # 0.2 mA × 30 Ω bulk + 2 Butler–Volmer η, I₀ = RT/(F·50 Ω cm²)
        assert first[-1].point.voltage_V == pytest.approx(0.026, abs=0.003)
        clock.t = 1e5
        assert client.status("21-1-3") == {"21-1-3": "finish"}
        rest_of_it = cursor.fetch()
        times = [p.test_time_s for p in first + rest_of_it]
        assert times == sorted(times)
        # 600 s rest + 3 × (1800 s charge + 1800 s discharge to 0.36 C at 0.2 mA)
        assert times[-1] == pytest.approx(600 + 3 * 3600)
        assert cursor.fetch() == []
        layer = client.steps("21-1-3")
        assert [(s.step_index, s.step_id, s.cycle_id, s.step_type) for s in layer] == [
            (1, 1, 1, "rest"), (2, 2, 1, "cc"), (3, 3, 1, "dc"), (4, 2, 2, "cc"), (5, 3, 2, "dc"), (6, 2, 3, "cc"), (7, 3, 3, "dc")]
        assert layer[2].capacity_Ah == pytest.approx(0.36 / 3600)
        assert layer[-1].end_seq_id == rest_of_it[-1].point.seq_id
        assert client.test_info("21-1-3").count == rest_of_it[-1].point.seq_id


def test_cursor_resumes_from_its_state(bts, tmp_path: Path) -> None:
    clock, sim, server = bts
    path = write(tmp_path, compile_program(_program()))
    with connect(server) as client:
        client.start("21-1-1", path, "a")
        clock.t = 2000.0
        cursor = DownloadCursor.latest(client, "21-1-1")
        part = cursor.fetch(max_points=50)
        saved = cursor.state
    clock.t = 9000.0
    with connect(server) as client:
        resumed = DownloadCursor(client, "21-1-1", saved).fetch()
        whole = DownloadCursor(client, "21-1-1", CursorState(test_id=saved.test_id)).fetch()
    assert [p.point.seq_id for p in part + resumed] == [p.point.seq_id for p in whole]
    assert [p.test_time_s for p in part + resumed] == [p.test_time_s for p in whole]


def test_a_short_ends_the_test_in_the_cycler(bts, tmp_path: Path) -> None:
    """1 mA cm⁻² on a cell with a CCD of 0.5: the filament bridges within ~72 s, V collapses to
    I·R_short, and the per-step protection compiled from floor_V ends the test: protect."""
    clock, sim, server = bts
    program = _program(steps=[lab.ConstantCurrent(current_A=1e-3, duration_s=3600, record_interval_s=1.0),
                              lab.ConstantCurrent(current_A=-1e-3, duration_s=3600, record_interval_s=1.0)])
    path = write(tmp_path, compile_program(program))
    with connect(server) as client:
        client.start("21-1-2", path, "doomed")
        clock.t = 7200.0
        assert client.status("21-1-2") == {"21-1-2": "protect"}
        points = DownloadCursor.latest(client, "21-1-2").fetch()
        assert 36 < points[-1].test_time_s < 80 and points[-1].point.step_id == 1
        assert abs(points[-1].point.voltage_V) < 1e-3 < abs(points[0].point.voltage_V)
        assert client.clear_flag("21-1-2") is True
        assert client.clear_flag("21-1-2") is False
        client.start("21-1-2", path, "next")  # a protected channel can start again
        assert client.test_info("21-1-2").test_id == 2


def test_stop_and_refusals_name_the_address(bts, tmp_path: Path) -> None:
    clock, sim, server = bts
    path = write(tmp_path, compile_program(_program()))
    host, port = server.address
    with connect(server) as client:
        with pytest.raises(InstrumentError, match=rf"{host}:{port}: no channel '9-9-9'"):
            client.channel("9-9-9")
        with pytest.raises(InstrumentError, match=rf"{host}:{port}: channel 21-1-1: the BTS refused to start"):
            client.start("21-1-1", str(tmp_path / "missing.xml"), "x")
        client.start("21-1-1", path, "x")
        with pytest.raises(InstrumentError, match="refused to start"):
            client.start("21-1-1", path, "again")  # already working
        clock.t = 100.0
        client.stop("21-1-1")
        assert client.status("21-1-1") == {"21-1-1": "stop"}
        with pytest.raises(InstrumentError, match="refused to stop channel"):
            client.stop(["21-1-1"])
        last = client.steps("21-1-1")[-1]
        assert last.step_time_s == pytest.approx(100.0)


def test_lost_and_unreachable_bts() -> None:
    sim = NewareBtsSimulator(1, now=ManualClock().now)
    server = BtsServer(sim)
    host, port = server.address
    client = connect(server)
    server.close()
    with pytest.raises(InstrumentLost, match=rf"{host}:{port}: "):
        client.status()
    with pytest.raises(InstrumentLost, match=rf"{host}:{port}: cannot connect"):
        NewareClient(host, port, username="u", password="p", timeout_s=1.0).connect()
