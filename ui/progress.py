"""Where a run is in its program, in numbers an operator reads: step n / N with its label and
cycle, time left in the step, elapsed and remaining for the run — pauses excluded.

Plain Python (no Qt): the readout panel, the status bar and the tests use it alike.

* :class:`ProgramTimeline` knows the planned start and duration of every executed step of a
  :class:`~labctl.steps.StepProgram` without unrolling its loops (a memristor run has 100 000
  sweeps, a cycling run tens of thousands of steps): per program entry its first step index,
  planned start, body durations and pass count, so a look-up costs O(entries).
* :class:`PauseSpans` collects the run's pauses from its ``paused`` / ``resumed`` events (test
  time, s). In real time a pause is test time the cell spent at 0 A; on a simulated clock the
  run's time stands still while paused (:mod:`labctl.engine.software_timed`) and the spans have
  no length. Either way the spans are no part of a step's progress.
* :class:`RunProgress` puts the two together with the run's step starts and ended steps:
  :meth:`RunProgress.at` gives a :class:`Progress` for a test time.

Remaining time: the planned time of what is left, at the pace the run has kept so far per step
kind — the program's estimate of an instrument's own sweeps, tip moves and current maps leaves
out the bus and the AFM (a c-AFM run with "2.9 min" planned took 3.5 min on the simulator at
×20, most of it in the maps, planned at 0 s), so a kind whose steps took longer than planned
has its remaining steps scaled by the ratio seen (and a kind planned at 0 s counts its mean
duration so far). Before any step of a kind has ended, the plan is all there is.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from labctl.steps import Loop, StepProgram


@dataclass(frozen=True)
class _Entry:
    first: int  # first executed step index
    count: int  # passes (1 for a plain step)
    start_s: float  # planned start of its first step
    kinds: tuple[str, ...]  # body step kinds
    durations: tuple[float, ...]  # body step planned durations (0 if none)
    prefix: tuple[float, ...]  # planned start of each body step within a pass

    @property
    def body(self) -> int:
        return len(self.durations)

    @property
    def pass_s(self) -> float:
        return self.prefix[-1] + self.durations[-1]

    @property
    def n_steps(self) -> int:
        return self.body * self.count


class ProgramTimeline:
    """Planned times of a program's executed steps (loops not unrolled).

    Args:
        program: the run's step program.

    Attributes:
        n_steps: executed steps, loops unrolled.
        planned_s: planned duration of the whole program (s) — as
            :attr:`~labctl.steps.StepProgram.planned_duration_s`.
    """

    def __init__(self, program: StepProgram) -> None:
        self.program = program
        entries: list[_Entry] = []
        index, t = 0, 0.0
        for entry in program.steps:
            body = entry.steps if isinstance(entry, Loop) else [entry]
            count = entry.count if isinstance(entry, Loop) else 1
            durations = tuple(float(s.duration_s or 0.0) for s in body)
            prefix, acc = [], 0.0
            for d in durations:
                prefix.append(acc)
                acc += d
            e = _Entry(index, count, t, tuple(s.kind for s in body), durations, tuple(prefix))
            entries.append(e)
            index += e.n_steps
            t += e.pass_s * count
        self._entries = entries
        self._firsts = [e.first for e in entries]
        self.n_steps = index
        self.planned_s = t

    def _locate(self, index: int) -> tuple[_Entry, int, int]:
        """(entry, pass, position in the body) of executed step ``index``."""
        k = bisect.bisect_right(self._firsts, index) - 1
        e = self._entries[max(k, 0)]
        within = index - e.first
        return e, within // e.body, within % e.body

    def planned_start_s(self, index: int) -> float:
        """Planned test time at which step ``index`` starts (s); ``n_steps`` → the planned end."""
        if index >= self.n_steps:
            return self.planned_s
        e, n, pos = self._locate(max(index, 0))
        return e.start_s + n * e.pass_s + e.prefix[pos]

    def planned_duration_s(self, index: int) -> float:
        """Planned duration of step ``index`` (s; 0 for a step ending on another condition)."""
        if not 0 <= index < self.n_steps:
            return 0.0
        e, _n, pos = self._locate(index)
        return e.durations[pos]

    def kind(self, index: int) -> str:
        e, _n, pos = self._locate(index)
        return e.kinds[pos]

    def remaining_by_kind(self, after: int) -> dict[str, tuple[float, int]]:
        """Per step kind, (planned seconds, number of steps) of the steps after ``after``."""
        out: dict[str, list[float]] = {}
        start = after + 1
        for e in self._entries:
            end = e.first + e.n_steps
            if end <= start:
                continue
            first = max(start, e.first)
            n_steps = end - first
            full, head = divmod(n_steps, e.body)  # whole passes left, and the tail of the current pass
            for pos, (kind, d) in enumerate(zip(e.kinds, e.durations)):
                k = full + (1 if pos >= e.body - head else 0)
                acc = out.setdefault(kind, [0.0, 0])
                acc[0] += k * d
                acc[1] += k
        return {kind: (s, int(n)) for kind, (s, n) in out.items()}


@dataclass
class PauseSpans:
    """The run's pauses, (start, end) in test time (s); the last one open (``end`` None) while
    the run is paused."""

    spans: list[list[float | None]] = field(default_factory=list)

    def add_events(self, events: list[dict[str, Any]]) -> bool:
        """Take ``paused`` / ``resumed`` events (rows of the run file's ``events``); whether
        anything changed."""
        changed = False
        for event in events:
            if event["kind"] == "paused" and (not self.spans or self.spans[-1][1] is not None):
                self.spans.append([float(event["t_s"]), None])
                changed = True
            elif event["kind"] == "resumed" and self.spans and self.spans[-1][1] is None:
                self.spans[-1][1] = float(event["t_s"])
                changed = True
        return changed

    @property
    def paused(self) -> bool:
        return bool(self.spans) and self.spans[-1][1] is None

    def overlap_s(self, t0: float, t1: float) -> float:
        """Paused seconds within [t0, t1] (an open pause runs to ``t1``)."""
        total = 0.0
        for start, end in self.spans:
            end = t1 if end is None else end
            total += max(0.0, min(end, t1) - max(start, t0))
        return total

    def closed(self, now_s: float) -> list[tuple[float, float]]:
        """Every span as (start, end); an open one ends at ``now_s``."""
        return [(s, now_s if e is None else e) for s, e in self.spans]


@dataclass(frozen=True)
class Progress:
    """Where the run is at test time ``t_s`` (all durations in s, pauses excluded)."""

    t_s: float
    step_index: int  # -1 before the first step
    n_steps: int
    label: str
    kind: str
    cycle: int
    step_elapsed_s: float
    step_left_s: float | None  # None: the step ends on another condition (no planned duration)
    elapsed_s: float  # test time spent running (pauses excluded)
    paused_s: float
    remaining_s: float | None  # None: no program
    paused: bool


class RunProgress:
    """What the window knows of a run's progress.

    Args:
        program: the run's step program (None: unknown — only elapsed time is given).
    """

    def __init__(self, program: StepProgram | None) -> None:
        self.timeline = ProgramTimeline(program) if program is not None else None
        self.pauses = PauseSpans()
        self.step_starts: list[tuple[float, int]] = []  # (test time s, step index)
        self._done: dict[str, list[float]] = {}  # kind → [actual s, planned s, steps]
        self._ended: set[int] = set()
        self._last_row: tuple[float, int] | None = None  # (start s, index) of the newest ended step

    @property
    def planned_s(self) -> float | None:
        return None if self.timeline is None else self.timeline.planned_s

    def add_step_starts(self, starts: list[tuple[float, int]]) -> None:
        self.step_starts.extend(starts)

    def add_steps(self, rows: list[dict[str, Any]]) -> None:
        """Ended steps (rows of the ``steps`` table): their actual durations, pauses excluded."""
        for row in rows:
            index = int(row["step_index"])
            if index in self._ended:
                continue
            self._ended.add(index)
            if self._last_row is None or index > self._last_row[1]:
                self._last_row = (float(row["start_s"]), index)
            kind = str(row.get("kind", ""))
            actual = max(0.0, float(row["end_s"]) - float(row["start_s"])
                         - self.pauses.overlap_s(float(row["start_s"]), float(row["end_s"])))
            planned = self.timeline.planned_duration_s(index) if self.timeline is not None and \
                index < self.timeline.n_steps else 0.0
            acc = self._done.setdefault(kind, [0.0, 0.0, 0])
            acc[0] += actual
            acc[1] += planned
            acc[2] += 1

    def add_events(self, events: list[dict[str, Any]]) -> bool:
        return self.pauses.add_events(events)

    def _pace(self, kind: str, planned_s: float, n: int) -> float:
        """Estimated seconds for ``n`` steps of ``kind`` planned at ``planned_s`` in all."""
        done = self._done.get(kind)
        if done is None or done[2] == 0:
            return planned_s
        actual, planned, count = done
        if planned > 0:
            return planned_s * max(1.0, actual / planned)  # never sooner than planned: a bound, not a hope
        return actual / count * n

    def at(self, t_s: float) -> Progress:
        """The progress at test time ``t_s`` (the newest reading's, usually)."""
        paused_s = self.pauses.overlap_s(-math.inf, t_s)
        elapsed = max(0.0, t_s - paused_s)
        tl = self.timeline
        current = self.step_starts[-1] if self.step_starts else None
        if self._last_row is not None and (current is None or self._last_row[1] > current[1]):
            current = self._last_row  # a step without readings of its own (an impedance spectrum)
        if current is None:
            return Progress(t_s, -1, tl.n_steps if tl else 0, "", "", 0, 0.0, None, elapsed, paused_s,
                            None if tl is None else tl.planned_s, self.pauses.paused)
        start_s, index = current
        in_step = max(0.0, t_s - start_s - self.pauses.overlap_s(start_s, t_s))
        if tl is None or index >= tl.n_steps:
            return Progress(t_s, index, tl.n_steps if tl else 0, "", "", 0, in_step, None, elapsed, paused_s, None,
                            self.pauses.paused)
        step, cycle = tl.program.step_at(index)
        planned = tl.planned_duration_s(index)
        left = max(0.0, planned - in_step) if planned > 0 else None
        remaining = sum(self._pace(kind, s, n) for kind, (s, n) in tl.remaining_by_kind(index).items())
        if left is not None:
            remaining += self._pace(step.kind, left, 1) if step.kind not in _TIMED else left
        return Progress(t_s, index, tl.n_steps, step.label or step.kind.replace("_", " "), step.kind, cycle, in_step,
                        left, elapsed, paused_s, remaining, self.pauses.paused)


#: Step kinds timed by the engine itself: their planned durations are exact in test time.
_TIMED = frozenset({"rest", "constant_current", "constant_voltage"})


def format_duration(seconds: float | None, *, signed: bool = False) -> str:
    """A duration as an operator reads it: ``42 s``, ``12.5 min``, ``7.71 h``, ``12.3 d``
    (days from two days on); ``—`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    sign = "-" if seconds < 0 and signed else ""
    seconds = abs(seconds)
    if seconds >= 2 * 86400:
        return f"{sign}{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{sign}{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{sign}{seconds / 60:.1f} min"
    return f"{sign}{seconds:.0f} s"


def format_clock(seconds: float | None) -> str:
    """``5400`` → ``1:30:00`` (h:mm:ss); from two days on ``3 d 04:05``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(max(0.0, seconds)))
    if seconds >= 2 * 86400:
        days, rest = divmod(seconds, 86400)
        return f"{days} d {rest // 3600:02d}:{rest // 60 % 60:02d}"
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


__all__ = ["PauseSpans", "ProgramTimeline", "Progress", "RunProgress", "format_clock", "format_duration"]
