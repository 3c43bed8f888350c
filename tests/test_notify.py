"""Notifications: event log, desktop (notify-send) and e-mail to an SMTP server on loopback."""

from __future__ import annotations

import email
import logging
import math
import os
import socket
import sys
import time
from email import policy
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from labctl.events import Detected, Readings, RunEnded, StepEnded, StepStarted
from labctl.app.notify import (
    DesktopNotifier,
    EmailConfig,
    EmailNotifier,
    EventLogNotifier,
    Notification,
    Notifier,
    NotifyConfig,
    load_notify_config,
    notifiers_for,
)
from labctl.app.run import resume_run, run_protocol
from labctl.station import Station, load_station
from labctl.yamlfile import FileError
from tests.cli.test_cli import labctl
from tests.conftest import EXAMPLES

CCD_LLZO = EXAMPLES / "ccd_llzo.yaml"
SHORTING_CELL = {"ccd_mA_cm2": 0.2}  # shorts on the 0.3 mA cm-2 step of ccd_llzo.yaml
SHORT_STAIRCASE = """
kind: ccd_staircase
name: three short steps
start_mA_cm2: 0.1
step_mA_cm2: 0.1
stop_mA_cm2: 0.3
half_cycle_s: 60
voltage_limit_V: 5.0
record_interval_s: 1.0
cell: {area_cm2: 1.0, electrolyte: LLZO, electrolyte_thickness_um: 300, li_thickness_um: 100,
       stack_pressure_MPa: 0, temperature_C: 25}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server():
    """An SMTP server on 127.0.0.1; yields (inbox, port)."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def no_desktop(monkeypatch, tmp_path):
    """PATH without notify-send (the desktop notifier is then silently unavailable)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _notify_file(tmp_path: Path, port: int, **email_extra) -> Path:
    config = {"desktop": {"enabled": False},
              "email": {"host": "127.0.0.1", "port": port, "from": "labctl@lab.example",
                        "to": ["operator@lab.example", "pi@lab.example"], "timeout_s": 5, **email_extra}}
    path = tmp_path / "notify.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _log_lines(run_file: Path) -> list[str]:
    return run_file.with_name(run_file.name + ".log").read_text(encoding="utf-8").splitlines()


def test_a_short_mails_the_run_end_once_with_reason_test_time_and_channel(tmp_path, smtp_server):
    inbox, port = smtp_server
    out = tmp_path / "short.h5"
    result = run_protocol(CCD_LLZO, simulate=True, speed=math.inf, output=out, cell_overrides=SHORTING_CELL,
                          notify_path=_notify_file(tmp_path, port))
    assert result.outcome.status == "short"
    assert len(inbox.messages) == 1  # the short and the run end it causes: one message
    message = inbox.messages[0]
    assert message["Subject"] == "[labctl] short.h5: run ended: short"
    assert message["From"] == "labctl@lab.example"
    assert sorted(inbox.envelopes[0].rcpt_tos) == ["operator@lab.example", "pi@lab.example"]
    body = message.get_content().replace("\r\n", "\n")
    assert f"reason: {result.outcome.reason}\n" in body and "short circuit at 0.3 mA cm-2" in body
    assert f"test time: {result.outcome.end_s:.1f} s" in body
    assert "channel: smu\n" in body and f"run file: {out.resolve()}\n" in body
    lines = _log_lines(out)
    assert len(lines) == 1
    stamp, channel, kind, text = lines[0].split("\t")
    assert stamp.endswith("Z") and channel == "smu" and kind == "run_ended"
    assert text.startswith("short: short circuit at 0.3 mA cm-2")


def test_a_completed_run_mails_completed(tmp_path, smtp_server):
    inbox, port = smtp_server
    protocol = tmp_path / "staircase.yaml"
    protocol.write_text(SHORT_STAIRCASE)
    out = tmp_path / "done.h5"
    result = run_protocol(protocol, simulate=True, speed=math.inf, output=out,
                          notify_path=_notify_file(tmp_path, port))
    assert result.outcome.status == "completed"
    assert [m["Subject"] for m in inbox.messages] == ["[labctl] done.h5: run ended: completed"]
    body = inbox.messages[0].get_content().replace("\r\n", "\n")
    assert "reason: all steps completed" in body and "test time: 360.0 s (0.100 h)" in body
    assert "channel: smu" in body
    assert [line.split("\t")[2] for line in _log_lines(out)] == ["run_ended"]


def test_an_unreachable_smtp_server_neither_breaks_nor_delays_the_run(tmp_path, caplog):
    protocol = tmp_path / "staircase.yaml"
    protocol.write_text(SHORT_STAIRCASE)
    t0 = time.perf_counter()
    run_protocol(protocol, simulate=True, speed=math.inf, output=tmp_path / "base.h5")
    baseline_s = time.perf_counter() - t0
    closed_port = _free_port()  # nothing listens there: connection refused
    with caplog.at_level(logging.WARNING, logger="labctl.app.notify"):
        t0 = time.perf_counter()
        result = run_protocol(protocol, simulate=True, speed=math.inf, output=tmp_path / "run.h5",
                              notify_path=_notify_file(tmp_path, closed_port))
        wall_s = time.perf_counter() - t0
    assert result.outcome.status == "completed"
    assert wall_s < baseline_s + 1.0
    assert any("e-mail via 127.0.0.1" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
    assert len(_log_lines(tmp_path / "run.h5")) == 1  # the event log still has its line


def test_a_hanging_smtp_server_never_blocks_the_engine_and_close_is_bounded(tmp_path, caplog):
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = EmailConfig.model_validate({"host": "127.0.0.1", "port": silent.getsockname()[1],
                                             "from": "a@b.example", "to": "c@d.example", "timeout_s": 5})
        notifier = EmailNotifier(tmp_path / "run.h5", config)
        t0 = time.perf_counter()
        for k in range(3):
            notifier(Detected(float(k), "smu", "instrument_error", "timeout; reconnecting", 2))
        notifier(RunEnded(9.0, "smu", "completed", "all steps completed", time.time()))
        assert time.perf_counter() - t0 < 0.1
        with caplog.at_level(logging.WARNING, logger="labctl.app.notify"):
            t0 = time.perf_counter()
            notifier.close(timeout_s=0.5)
            assert time.perf_counter() - t0 < 1.0
        assert any("still unsent" in r.getMessage() for r in caplog.records)


def test_smtp_login_reads_the_password_from_the_environment(tmp_path, monkeypatch):
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append(auth_data)
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        monkeypatch.setenv("LABCTL_TEST_SMTP_PASSWORD", "s3cret")
        config = NotifyConfig.model_validate({
            "log": {"enabled": False}, "desktop": {"enabled": False},
            "email": {"host": "127.0.0.1", "port": controller.port, "from": "labctl@lab.example",
                      "to": "operator@lab.example", "username": "bench3",
                      "password_env": "LABCTL_TEST_SMTP_PASSWORD"}})
        [notifier] = notifiers_for(config, tmp_path / "run.h5")
        notifier(RunEnded(1.0, "smu", "instrument_lost", "GPIB0::24::INSTR unreachable for 600 s", time.time()))
        notifier.close()
    finally:
        controller.stop()
    assert [a.login for a in seen] == [b"bench3"]
    assert [m["Subject"] for m in inbox.messages] == ["[labctl] run.h5: run ended: instrument_lost"]
    station = Station.model_validate({"instruments": {"smu": {"driver": "keithley2400", "address": "GPIB0::24::INSTR"}},
                                      "notify": config.model_dump(by_alias=True)})
    assert "s3cret" not in station.to_yaml() and "LABCTL_TEST_SMTP_PASSWORD" in station.to_yaml()


def test_desktop_notifier_runs_notify_send_when_it_is_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "notify-send.args"
    script = bin_dir / "notify-send"
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    protocol = tmp_path / "staircase.yaml"
    protocol.write_text(SHORT_STAIRCASE)
    notify = tmp_path / "notify.yaml"
    notify.write_text("log: {enabled: false}\n")
    run_protocol(protocol, simulate=True, speed=math.inf, output=tmp_path / "run.h5", notify_path=notify)
    calls = [yaml.safe_load(line) for line in record.read_text().splitlines()]
    assert len(calls) == 1
    args = calls[0]
    assert "--urgency=normal" in args and "--app-name=labctl" in args
    assert args[-2] == "labctl: run.h5: run ended: completed"
    assert "reason: all steps completed" in args[-1] and "channel: smu" in args[-1]


def test_without_notify_send_the_desktop_notifier_does_nothing(tmp_path, no_desktop):
    notifier = DesktopNotifier(tmp_path / "run.h5")
    assert not notifier.available
    notifier(RunEnded(1.0, "smu", "short", "short circuit", time.time()))
    notifier.close()


class _Recorder(Notifier):
    def __init__(self, **kwargs) -> None:
        super().__init__("run.h5", **kwargs)
        self.seen: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.seen.append(notification)


def _step_ended() -> StepEnded:
    from labctl.events import StepSummary

    return StepEnded(5.0, "smu", StepSummary(3, "constant_current", "plate", 1, 1e-3, 1.0, 0.0, 5.0, "short",
                                             5, 0.01, 0.1, 0.2, 5e-3, 5e-3))


def test_a_failure_that_ends_the_run_is_one_notification_and_others_go_out_at_once():
    recorder = _Recorder()
    recorder(Detected(1.0, "smu", "instrument_error", "VISA timeout; reconnecting", 2))
    assert [n.kind for n in recorder.seen] == ["instrument_error"]  # not held back
    recorder(Detected(5.0, "smu", "short", "short circuit at 1 mA cm-2", 3))
    recorder(Readings("smu", {"test_time_s": []}))
    recorder(_step_ended())
    recorder(RunEnded(5.0, "smu", "short", "short circuit at 1 mA cm-2", time.time()))
    assert [(n.kind, n.status, n.step_index) for n in recorder.seen[1:]] == [("run_ended", "short", 3)]


def test_a_short_that_does_not_end_the_run_is_notified_when_the_next_step_starts():
    recorder = _Recorder()
    recorder(Detected(5.0, "smu", "short", "short circuit at 1 mA cm-2", 3))
    assert recorder.seen == []
    recorder(StepStarted(5.0, "smu", 4, "constant_current", "strip", 1, -1e-3))
    recorder(RunEnded(9.0, "smu", "completed", "all steps completed", time.time()))
    assert [(n.kind, n.status) for n in recorder.seen] == [("short", ""), ("run_ended", "completed")]


def test_configured_kinds_select_the_events():
    recorder = _Recorder(kinds=["short"])
    recorder(Detected(1.0, "smu", "instrument_error", "VISA timeout", 2))
    recorder(Detected(5.0, "smu", "short", "short circuit", 3))
    recorder(RunEnded(5.0, "smu", "short", "short circuit", time.time()))
    assert [(n.kind, n.message) for n in recorder.seen] == [("short", "short circuit")]


def test_the_event_log_goes_to_a_configured_path(tmp_path):
    log = tmp_path / "bench.log"
    notifier = EventLogNotifier(tmp_path / "a.h5", log)
    notifier(Detected(1.0, "smu", "instrument_error", "VISA timeout", 2))
    notifier(RunEnded(2.0, "smu", "error", "boom", time.time()))
    notifier.close()
    second = EventLogNotifier(tmp_path / "b.h5", log)  # appends
    second(RunEnded(3.0, "smu", "completed", "all steps completed", time.time()))
    second.close()
    assert [line.split("\t")[1:3] for line in log.read_text().splitlines()] == [
        ["smu", "instrument_error"], ["smu", "run_ended"], ["smu", "run_ended"]]
    with pytest.raises(FileError, match="does not exist"):
        EventLogNotifier(tmp_path / "a.h5", tmp_path / "no" / "such.log")


def test_resume_notifies_too(tmp_path, smtp_server):
    inbox, port = smtp_server
    protocol = tmp_path / "staircase.yaml"
    protocol.write_text(SHORT_STAIRCASE)
    out = tmp_path / "run.h5"
    notify = _notify_file(tmp_path, port)

    def stop_soon(engine):
        def stop(event):
            if isinstance(event, StepStarted) and event.step_index == 2:
                engine.request_stop("stopped by the test")
        engine.subscribe(stop)

    first = run_protocol(protocol, simulate=True, speed=math.inf, output=out, on_engine=stop_soon, notify_path=notify)
    assert first.outcome.status == "stopped"
    second = resume_run(out, notify_path=notify)
    assert second.outcome.status == "completed"
    assert [m["Subject"] for m in inbox.messages] == ["[labctl] run.h5: run ended: stopped",
                                                      "[labctl] run.h5: run ended: completed"]
    assert [line.split("\t")[2] for line in _log_lines(out)] == ["run_ended", "run_ended"]


@pytest.mark.parametrize(("text", "expected"), [
    ("email:\n  host: smtp.lab.example\n  port: 70000\n  from: a@b.example\n  to: [c@d.example]\n",
     "notify.yaml:3: email.port: must be < 65536"),
    ("email:\n  host: smtp.lab.example\n  from: a@b.example\n",
     "notify.yaml:1: email.to: required field is missing"),
    ("desktop: {enabled: true}\nevents: [run_ended, meltdown]\n",
     "notify.yaml:2: events.1: must be 'run_ended', 'short', 'soft_short', 'polarisation', 'compliance', "
     "'safety', 'instrument_error', 'instrument_lost', 'error', 'stopped', 'interrupted', 'paused', "
     "'resumed' or 'reconnected'"),
    ("log: {enabled: true, colour: red}\n", "notify.yaml:1: log.colour: unknown field"),
    ("email:\n  host: h\n  from: a@b.example\n  to: c@d.example\n  username: me\n",
     "notify.yaml:1: email: username needs password_env, the environment variable holding the password"),
])
def test_bad_notify_yaml_is_one_line_naming_file_line_and_field(tmp_path, text, expected):
    path = tmp_path / "notify.yaml"
    path.write_text(text)
    with pytest.raises(FileError) as info:
        load_notify_config(path)
    assert info.value.lines == [expected]


def test_a_station_file_may_carry_a_notify_section(tmp_path):
    path = tmp_path / "station.yaml"
    path.write_text("instruments:\n  smu: {driver: keithley2400, address: 'GPIB0::24::INSTR'}\n"
                    "notify:\n  email:\n    host: smtp.lab.example\n    from: labctl@lab.example\n"
                    "    to: operator\n")
    with pytest.raises(FileError) as info:
        load_station(path)
    assert info.value.lines == ["station.yaml:7: notify.email.to: not e-mail addresses: 'operator'"]
    path.write_text(path.read_text().replace("to: operator", "to: operator@lab.example"))
    station = load_station(path)
    assert station.notify.email.to == ["operator@lab.example"]
    assert Station.model_validate(yaml.safe_load(station.to_yaml())) == station  # as stored in a run file


def test_cli_run_with_bad_notify_file_fails_with_one_line(tmp_path):
    bad = tmp_path / "notify.yaml"
    bad.write_text("email:\n  host: smtp.lab.example\n  port: zero\n  from: a@b.example\n  to: [c@d.example]\n")
    proc = labctl("run", str(CCD_LLZO), "--simulate", "--speed", "max", "-o", str(tmp_path / "run.h5"),
                  "--quiet", "--notify", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: notify.yaml:3: email.port: must be a whole number, got 'zero'"]
    assert not (tmp_path / "run.h5").exists()


def test_cli_run_notifies_through_the_event_log(tmp_path):
    notify = tmp_path / "notify.yaml"
    notify.write_text(f"log: {{path: {tmp_path / 'events.log'}}}\ndesktop: {{enabled: false}}\n")
    proc = labctl("run", str(CCD_LLZO), "--simulate", "--speed", "max", "-o", str(tmp_path / "run.h5"),
                  "--quiet", "--cell-ccd-mA-cm2", "0.2", "--notify", str(notify))
    assert proc.returncode == 0, proc.stderr
    [line] = (tmp_path / "events.log").read_text().splitlines()
    assert line.split("\t")[1:3] == ["smu", "run_ended"] and "\tshort: short circuit" in line


def test_a_sweep_run_notifies_its_ending_too(tmp_path):
    """Sweep kinds (memristor, c-AFM) go through the same notifiers as constant-current runs."""
    notify = tmp_path / "notify.yaml"
    notify.write_text(f"log: {{path: {tmp_path / 'events.log'}}}\ndesktop: {{enabled: false}}\n")
    result = run_protocol(EXAMPLES / "memristor_pad.yaml", simulate=True, speed=math.inf,
                          output=tmp_path / "pad.h5", notify_path=notify)
    assert result.outcome.status == "reset_failures"
    lines = (tmp_path / "events.log").read_text().splitlines()
    assert any(line.split("\t")[2] == "run_ended" and "reset_failures" in line for line in lines), lines
