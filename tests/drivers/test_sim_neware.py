"""The simulated NEWARE BTS: its replies byte for byte, aurora-neware's NewareAPI as an independent
client, step files written by aurora-unicycler, protection, shorts and 16 channels at once.

Real sockets on 127.0.0.1; simulated time moved by hand.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from aurora_neware import NewareAPI
from aurora_unicycler import ConstantCurrent as UniCC
from aurora_unicycler import CyclingProtocol, Loop, OpenCircuitVoltage, RecordParams, SafetyParams, Tag

from drivers.neware import ConstantCurrent, DownloadCursor, NewareClient, Protection, StepFile
from drivers.sim.neware import TERMINATOR, BtsServer, NewareBtsSimulator, split_frames
from drivers.sim.neware_stepfile import read_step_file
from drivers.sim.physics.cell import CELL_PRESETS, CellParameters

pytestmark = pytest.mark.timeout(10)

REQUEST = b'<?xml version="1.0" encoding="UTF-8" ?><bts version="1.0">%s</bts>'


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def step_file(tmp_path: Path, sf: StepFile, name: str = "p.xml") -> str:
    path = tmp_path / name
    path.write_text(sf.to_xml(), encoding="utf-8")
    return str(path)


def cycling(current_mA: float = 0.2, half_cycle_s: float = 600, cycles: int = 2, record_s: float = 10) -> StepFile:
    return StepFile([ConstantCurrent(current_mA, time_s=half_cycle_s), ConstantCurrent(-current_mA, time_s=half_cycle_s)] * cycles,
                    protection=Protection(voltage_upper_V=5, voltage_lower_V=-5), record_interval_s=record_s)


# -- the wire, byte for byte ---------------------------------------------------------------------

def test_replies_match_the_captured_bts_bytes(clock) -> None:
    """Lines as aurora-neware captured them from a real BTS 8.0 (tests/mocks.py)."""
    sim = NewareBtsSimulator(16, now=clock.now, devid=21)
    assert sim.handle(REQUEST % b"<cmd>connect</cmd><username>a</username><password>b</password><type>bfgs</type>") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<bts version="1.0">\r\n  <cmd>connect_resp</cmd>\r\n'
        b"  <result>ok</result>\r\n</bts>" + TERMINATOR)
    info = sim.handle(REQUEST % b"<cmd>getdevinfo</cmd>")
    assert info.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\r\n<bts version="1.0">\r\n  <cmd>getdevinfo_resp</cmd>\r\n'
                           b'  <serverip count="1">\r\n    <server ip="127.0.0.1" port="3306" />\r\n  </serverip>\r\n'
                           b'  <middle count="16">\r\n'
                           b'    <channel ip="127.0.0.1" devtype="27" devid="21" subdevid="1" Channelid="1">true</channel>\r\n')
    assert info.endswith(b'    <channel ip="127.0.0.1" devtype="27" devid="21" subdevid="2" Channelid="8">true</channel>\r\n'
                         b'</middle>\r\n</bts>' + TERMINATOR)
    status = sim.handle(REQUEST % b'<cmd>getchlstatus</cmd><list count = "1"><status ip="127.0.0.1" devtype="27" devid="21" '
                                  b'subdevid="1" chlid="1">true</status></list>')
    assert status.endswith(b'  <list count="1">\r\n    <status ip="127.0.0.1" devtype="27" devid="21" subdevid="1" chlid="1" '
                           b'reservepause="1">stop</status>\r\n  </list>\r\n</bts>' + TERMINATOR)
    empty = sim.handle(REQUEST % b'<cmd>download</cmd><download devtype="27" devid="21" subdevid="1" chlid="2" auxid="0" '
                                 b'testid="0" startpos="0" count="0"/>')
    assert empty == (b'<?xml version="1.0" encoding="UTF-8"?>\r\n<bts version="1.0">\r\n  <cmd>donwload_resp</cmd>\r\n'
                     b'  <download devtype="27" devid="21" subdevid="1" chlid="2" testid="0" startpos="0" count="0" auxid="0" />\r\n'
                     b'  <list count="0" />\r\n</bts>' + TERMINATOR)
    idle = sim.handle(REQUEST % b'<cmd>inquire</cmd><list count = "1"><inquire ip="127.0.0.1" devtype="27" devid="21" subdevid="1" '
                                b'chlid="4" aux="0" barcode="1">true</inquire></list>')
    assert b'    <inquire dev="27-21-1-4-0" cycle_id="1" step_type="--" workstatus="stop" barcode="" current="0" voltage="0" ' \
           b'capacity="0" energy="0" totaltime="0" relativetime="0" open_or_close="0" log_code="0" />\r\n' in idle
    log = sim.handle(REQUEST % b'<cmd>downloadlog</cmd><download devtype="27" devid="21" subdevid="1" chlid="1" testid="0"/>')
    assert b"<cmd>donwloadlog_resp</cmd>" in log and b'log_lever="0"' in log


def test_request_framing_accepts_both_public_clients_terminators() -> None:
    buffer = bytearray(REQUEST % b"<cmd>a</cmd>" + b"\n\n#\r\n" + REQUEST % b"<cmd>b</cmd>" + b"#\r\n" + b"<?xml ver")
    assert split_frames(buffer) == [REQUEST % b"<cmd>a</cmd>", REQUEST % b"<cmd>b</cmd>"]
    assert buffer == b"<?xml ver"


def test_a_client_sending_only_hash_crlf_is_answered(clock) -> None:
    """The second public client (v1.19 document) ends requests with '#\\r\\n' and frames replies at </bts>."""
    with BtsServer(NewareBtsSimulator(2, now=clock.now)) as server, socket.create_connection(server.address, timeout=2) as sock:
        sock.sendall(REQUEST % b"<cmd>getdevinfo</cmd>" + b"#\r\n")
        data = b""
        while not data.endswith(TERMINATOR):
            data += sock.recv(4096)
        assert b"<cmd>getdevinfo_resp</cmd>" in data and b'<middle count="2">' in data


# -- aurora-neware's NewareAPI, an independent client ------------------------------------------------

def test_aurora_neware_drives_the_simulator(clock, tmp_path: Path) -> None:
    path = step_file(tmp_path, cycling())
    with BtsServer(NewareBtsSimulator(16, now=clock.now, devid=21)) as server:
        api = NewareAPI(*server.address)
        api.connect()
        try:
            assert len(api.channel_map) == 16 and "21-2-8" in api.channel_map
            assert api.getchlstatus("21-1-1")["21-1-1"]["status"] == "stop"
            assert api.start("21-1-1", "LiLi_01", path) == [
                {"ip": "127.0.0.1", "devtype": 27, "devid": 21, "subdevid": 1, "chlid": 1, "start": "ok"}]
            clock.t = 900.0
            live = api.inquire("21-1-1")["21-1-1"]
            assert (live["workstatus"], live["step_id"], live["step_type"], live["barcode"]) == ("working", 2, "dc", "LiLi_01")
            assert live["current"] == -0.0002 and live["totaltime"] == 900 and live["relativetime"] == 300
            assert api.getchlstatus()["21-1-1"]["status"] == "working"
            df = api.inquiredf("21-1-1")["21-1-1"]
            assert (df["testid"], df["count"], df["chl"]) == (1, 61 + 31, "false")
            data = api.download("21-1-1", last_n_points=0)
            assert data["seqid"] == list(range(1, 93))
            assert set(data["steptype"]) == {"cc", "dc"} and data["testtime"][:3] == [0, 10000, 20000]
            # the discharge's start point still has the charge's sign (the reversal transient)
            assert all(v > 0 for v in data["volt"][:61]) and all(v < 0 for v in data["volt"][62:])
            assert api.get_testid("21-1-1")["21-1-1"]["full_test_id"] == "21-1-1-1"
            assert api.stop("21-1-2")[0]["stop"] == "false"  # not running
            assert api.light("21-1-1")[0]["light"] == "ok"
            clock.t = 1000.0
            assert api.stop("21-1-1")[0]["stop"] == "ok"
            assert api.getchlstatus("21-1-1")["21-1-1"]["status"] == "stop"
            layer = api.get_steps("21-1-1")
            assert [(s["stepid"], s["steptype"], s["steptime"]) for s in layer] == [(1, "cc", 600000), (2, "dc", 400000)]
            assert [entry["log_code"] for entry in api.downloadlog("21-1-1")] == [100000]
            assert api.start("21-1-1", "LiLi_01b", path)[0]["start"] == "ok"  # allowed from stop
        finally:
            api.disconnect()


def test_step_files_written_by_aurora_unicycler_run(clock, tmp_path: Path) -> None:
    """An independent writer's file: OCV, then a tagged loop of ±0.2 mA (unicycler's cycle_count
    is the total number of passes), with unicycler's '10000.000000'-style numbers."""
    protocol = CyclingProtocol(
        record=RecordParams(time_s=10), safety=SafetyParams(max_voltage_V=5, min_voltage_V=-5),
        method=[OpenCircuitVoltage(until_time_s=60), Tag(tag="cycle"),
                UniCC(current_mA=0.2, until_time_s=300), UniCC(current_mA=-0.2, until_time_s=300),
                Loop(loop_to="cycle", cycle_count=3)])
    path = tmp_path / "unicycler.xml"
    protocol.to_neware_xml(save_path=path, sample_name="LiLi_02")
    with BtsServer(NewareBtsSimulator(1, now=clock.now)) as server, \
            NewareClient(*server.address, username="u", password="p", timeout_s=2) as client:
        client.start("1-1-1", str(path), "LiLi_02")
        clock.t = 10_000.0
        assert client.status("1-1-1") == {"1-1-1": "finish"}
        layer = client.steps("1-1-1")
        assert [(s.step_id, s.cycle_id, s.step_type) for s in layer] == [
            (1, 1, "rest"), (2, 1, "cc"), (3, 1, "dc"), (2, 2, "cc"), (3, 2, "dc"), (2, 3, "cc"), (3, 3, "dc")]
        assert layer[-1].end_datetime and sum(s.step_time_s for s in layer) == pytest.approx(60 + 6 * 300)


# -- protection, shorts and many channels -----------------------------------------------------------

def test_voltage_protection_trips(clock, tmp_path: Path) -> None:
    """Bare LLZO (1000 Ω cm² per interface) at 0.05 mA, under its CCD, polarises to ~90 mV: a
    50 mV Protect ends the test. (At 5 mA, as this test once ran, the Butler–Volmer interfaces
    counted once give < 1 V and the cell shorts long before any limit.)"""
    sf = cycling(current_mA=0.05)
    sf = StepFile(sf.steps, protection=Protection(voltage_upper_V=0.05, voltage_lower_V=-0.05),
                  record_interval_s=sf.record_interval_s)
    path = step_file(tmp_path, sf)
    sim = NewareBtsSimulator(1, cell=CELL_PRESETS["bare_llzo"], now=clock.now)
    with BtsServer(sim) as server, NewareClient(*server.address, username="u", password="p", timeout_s=2) as client:
        client.start("1-1-1", path, "bare")
        clock.t = 600.0
        assert client.status("1-1-1") == {"1-1-1": "protect"}
        points = DownloadCursor.latest(client, "1-1-1").fetch()
        # the start point is the ohmic drop (1.5 mV); the next, with the interfaces charged, trips
        assert len(points) == 2 and points[0].point.voltage_V < 0.05 < points[-1].point.voltage_V
        assert sim.channel("1-1-1").test.end_reason.startswith("protection at step 1")


def test_a_short_does_not_stop_a_cycler_without_a_limit(clock, tmp_path: Path) -> None:
    """A cycler cannot tell a shorted cell from a healthy one: without a per-step protection the
    test runs on with V = I·R_short (the engine's detection must catch it from the points)."""
    path = step_file(tmp_path, cycling(current_mA=1.0, half_cycle_s=600, cycles=1, record_s=10))
    sim = NewareBtsSimulator(1, cell=CellParameters(ccd_mA_cm2=0.5), now=clock.now)
    with BtsServer(sim) as server, NewareClient(*server.address, username="u", password="p", timeout_s=2) as client:
        client.start("1-1-1", path, "shorted")
        clock.t = 1300.0
        assert client.status("1-1-1") == {"1-1-1": "finish"}
        points = DownloadCursor.latest(client, "1-1-1").fetch()
        assert sim.channel("1-1-1").cell.shorted
        assert abs(points[30].point.voltage_V) < 1e-3 < abs(points[0].point.voltage_V)


def test_sixteen_channels_run_concurrently(clock, tmp_path: Path) -> None:
    """16 channels, each its own cell and step file, started at different times; every point kept."""
    sim = NewareBtsSimulator(16, now=clock.now)
    with BtsServer(sim) as server, NewareClient(*server.address, username="u", password="p", timeout_s=2) as client:
        ids = list(client.channels)
        assert len(ids) == 16 and ids[8] == "1-2-1"
        for k, pid in enumerate(ids):
            clock.t = 60.0 * k
            client.start(pid, step_file(tmp_path, cycling(current_mA=0.1 * (k + 1), half_cycle_s=1800), f"{pid}.xml"), f"cell{k}")
        cursors = {pid: DownloadCursor.latest(client, pid) for pid in ids}
        clock.t = 3000.0
        live = client.inquire()
        assert all(v.workstatus == "working" for v in live.values())
        mid = {pid: cursors[pid].fetch() for pid in ids}
        clock.t = 60.0 * 16 + 4 * 1800
        assert set(client.status().values()) == {"finish"}
        for k, pid in enumerate(ids):
            points = mid[pid] + cursors[pid].fetch()
            assert [p.point.seq_id for p in points] == list(range(1, len(points) + 1))
            assert len(points) == 4 * (1 + 180)  # start point + 180 ten-second points per step
            assert points[-1].test_time_s == pytest.approx(4 * 1800)
            assert abs(points[10].point.current_A) == pytest.approx(1e-4 * (k + 1))
        volts = {round(mid[pid][5].point.voltage_V, 6) for pid in ids}
        assert len(volts) == 16  # different currents and cells


def test_results_do_not_depend_on_how_often_the_bts_is_asked(tmp_path: Path) -> None:
    path = step_file(tmp_path, cycling())
    runs = []
    for polls in (1, 37):
        clock = ManualClock()
        sim = NewareBtsSimulator(1, now=clock.now)
        sim.channel("1-1-1").start(read_step_file(path), 1, "x", 0.0)
        for k in range(1, polls + 1):
            clock.t = 2400.0 * k / polls
            sim.advance()
        runs.append([(p.seq_id, p.test_time_s, p.voltage_V) for p in sim.channel("1-1-1").test.points])
    # the channel integrates its cell from point to point, whenever it is asked: exactly equal
    assert runs[0] == runs[1]


def test_the_cycler_runs_on_in_accelerated_time_while_nobody_asks(tmp_path: Path) -> None:
    """×36000: 2 × 40 min of cycling take 0.13 s of wall time, advanced by the server's own thread."""
    import time

    from labctl.engine.clock import ScaledClock

    clock = ScaledClock(36_000.0)
    sim = NewareBtsSimulator(2, now=clock.now)
    with BtsServer(sim) as server, NewareClient(*server.address, username="u", password="p", timeout_s=2) as client:
        client.start("1-1-2", step_file(tmp_path, cycling(half_cycle_s=1200)), "fast")
        time.sleep(0.5)
        assert sim.channel("1-1-2").status == "finish"  # no request in between
        assert client.status() == {"1-1-1": "stop", "1-1-2": "finish"}
        assert client.test_info("1-1-2").count == 4 * 121
