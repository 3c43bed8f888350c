"""The guardian: a small separate process that makes a run's instruments safe when the run
process dies without having done so (SIGKILL, a crash, an output-off that failed).

The run process starts it (:class:`Guardian`) in a session of its own — a closed terminal,
Ctrl-C or ``kill`` of the run's process group does not reach it — with a pipe on its
standard input, and tells it over that pipe, as JSON lines, which instruments to watch
(their station configuration) and, once the run has made them safe itself, that they are
safe. The kernel closes the pipe when the run process ends, however it ends, so the
guardian learns of a death at once, without polling. At end of file it makes safe every
watched instrument not reported safe:

* a sourcemeter: output off, confirmed by the driver reading ``:OUTP?`` back (a 2400's
  output-off state is HIMP: the cell is left open circuit); a BioLogic channel run as a
  potentiostat: its channel stopped, confirmed by its state;
* an AFM controller: the tip withdrawn.

It retries each with a reconnect and exponential back-off until its budget (default 10 min)
is spent; then it notifies (the station's ``notify:`` section: event log, desktop, e-mail)
that the cell may still be under current. It records what it did in the run file's
``events`` once the run process has gone (finishing a file its dead writer left open, as
``labctl close`` does). Cycler channels are not watched: a cycler runs its test in its own
firmware, and a run whose PC side dies leaves the channel running by design
(``labctl resume`` reattaches).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, IO

from tenacity import Retrying, stop_after_delay, wait_exponential

#: Default time the guardian keeps retrying to make an instrument safe (s).
DEFAULT_BUDGET_S = 600.0

logger = logging.getLogger("labctl.app.guardian")


class Guardian:
    """The run process's side of the guardian: spawns it on the first :meth:`watch`.

    Args:
        run_file: the run whose instruments it guards; its log is ``<run file>.guardian.log``.
        budget_s: how long the guardian retries to make an instrument safe.

    Use as a context manager: leaving it closes the pipe (the guardian then exits at once if
    every watched instrument was reported safe).
    """

    def __init__(self, run_file: str | Path, *, budget_s: float = DEFAULT_BUDGET_S) -> None:
        self.run_file = Path(run_file).absolute()
        self.budget_s = budget_s
        self._process: subprocess.Popen | None = None
        self._pipe: IO[str] | None = None

    def __enter__(self) -> Guardian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The guardian process's id, once spawned."""
        return None if self._process is None else self._process.pid

    def _spawn(self) -> None:
        self.run_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.run_file.with_name(self.run_file.name + ".guardian.log"), "ab")  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "labctl.app.guardian", "--parent", str(os.getpid()), "--run-file",
                 str(self.run_file), "--budget-s", repr(self.budget_s)],
                stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True, close_fds=True, text=True)
        finally:
            log.close()
        self._pipe = self._process.stdin

    def _send(self, message: dict[str, Any]) -> None:
        if self._pipe is None:
            self._spawn()
        self._pipe.write(json.dumps(message) + "\n")
        self._pipe.flush()

    def watch(self, name: str, config: Any, *, role: str, notify: Any = None) -> None:
        """Guard instrument ``name`` (its :class:`labctl.station.InstrumentConfig`) as a
        ``sourcemeter``, a ``potentiostat`` or an ``afm``; ``notify`` (a NotifyConfig) says whom to tell when it
        cannot be made safe."""
        self._send({"watch": name, "role": role, "config": config.model_dump(mode="json"),
                    "notify": None if notify is None else notify.model_dump(mode="json", by_alias=True)})

    def safe(self, *names: str) -> None:
        """The run made these instruments safe itself (output off confirmed, tip withdrawn)."""
        for name in names:
            self._send({"safe": name})

    def close(self) -> None:
        """Close the pipe (as the kernel does when this process dies). Never raises."""
        if self._pipe is not None:
            try:
                self._pipe.close()
            except OSError:
                pass  # the guardian is gone already
            self._pipe = None


# -- the guardian process ------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped by its parent) counts as gone
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def _make_safe(name: str, role: str, config: Any, budget_s: float) -> tuple[bool, str]:
    """Output off (sourcemeter) or tip withdrawn (AFM), retried until ``budget_s`` is spent:
    (done, what happened)."""
    from labctl.station import open_instrument, open_potentiostat

    began = time.monotonic()
    tries = 0

    def attempt() -> None:
        nonlocal tries
        tries += 1
        instrument = open_potentiostat(config) if role == "potentiostat" else open_instrument(config)
        try:
            if role == "afm":
                instrument.withdraw()
            else:
                instrument.output_off()  # the driver reads :OUTP? back and raises if it is still on
        finally:
            instrument.close()

    try:
        for trial in Retrying(stop=stop_after_delay(budget_s), reraise=True, wait=wait_exponential(0.2, max=10.0)):
            with trial:
                attempt()
    except Exception as exc:  # noqa: BLE001 - every failure is reported, the guardian never dies of it
        return False, (f"guardian: making {name} at {config.address} safe FAILED after {tries} tries over "
                       f"{time.monotonic() - began:.0f} s ({exc}); THE CELL MAY STILL BE UNDER CURRENT")
    what = "tip withdrawn" if role == "afm" else "output off, confirmed by :OUTP? = 0"
    return True, f"guardian: {name} at {config.address}: {what}, {time.monotonic() - began:.2f} s after the run ended"


def _record(run_file: Path, messages: list[tuple[str, str]], parent: int, wait_s: float = 60.0) -> None:
    """Put the guardian's messages in the run file's events once the run process is gone."""
    from labctl.store import record_events

    deadline = time.monotonic() + wait_s
    while _alive(parent) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        record_events(run_file, messages, writer_died_reason="the run process ended without making its "
                                                             "instruments safe; the guardian did")
    except Exception as exc:  # noqa: BLE001 - the instruments are what matters; log and go on
        logger.error("could not record in %s: %s", run_file, exc)


def _notify(notify: dict | None, run_file: Path, message: str) -> None:
    from labctl.app.notify import NotifyConfig, notifiers_for
    from labctl.events import Detected

    config = NotifyConfig.model_validate(notify) if notify else None
    notifiers = notifiers_for(config, run_file)
    for notifier in notifiers:
        try:
            notifier(Detected(0.0, "guardian", "error", message))
        finally:
            notifier.close()


def serve(stream: IO[str], *, parent: int, run_file: Path, budget_s: float,
          make_safe: Callable[[str, str, Any, float], tuple[bool, str]] = _make_safe) -> int:
    """The guardian's work: read watch/safe messages until end of file, then make safe what was
    not reported safe. Returns the exit code (0: nothing to do or all made safe, 1: some
    instrument could not be)."""
    from labctl.station import InstrumentConfig

    watched: dict[str, tuple[str, InstrumentConfig, dict | None]] = {}
    safe: set[str] = set()
    for line in stream:
        try:
            message = json.loads(line)
            if "watch" in message:
                watched[message["watch"]] = (message["role"], InstrumentConfig.model_validate(message["config"]),
                                             message.get("notify"))
                safe.discard(message["watch"])
            elif "safe" in message:
                safe.add(message["safe"])
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("unreadable message %r: %s", line[:200], exc)
    pending = [name for name in watched if name not in safe]
    if not pending:
        logger.info("the run made %s safe itself: nothing to do", ", ".join(watched) or "nothing")
        return 0
    logger.warning("the run process ended with %s not safe: making them safe", ", ".join(pending))
    # sourcemeters first: a cell under current is what matters
    pending.sort(key=lambda name: watched[name][0] == "afm")
    results = [(name, *make_safe(name, watched[name][0], watched[name][1], budget_s)) for name in pending]
    for name, done, message in results:
        (logger.info if done else logger.error)("%s", message)
        if not done:
            _notify(watched[name][2], run_file, message)
    _record(run_file, [("guardian" if done else "guardian_failed", message) for _name, done, message in results],
            parent)
    return 0 if all(done for _name, done, _message in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labctl.app.guardian", description=__doc__.split("\n")[0])
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--run-file", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s guardian[{os.getpid()}] %(levelname)s %(message)s")
    # Load the drivers now, while the run goes on: after a death, every second counts.
    import labctl.station  # noqa: F401
    import drivers.keithley2400  # noqa: F401
    import pyvisa_py  # noqa: F401

    return serve(sys.stdin, parent=args.parent, run_file=args.run_file, budget_s=args.budget_s)


if __name__ == "__main__":
    sys.exit(main())
