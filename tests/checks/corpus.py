"""A labelled corpus for short detection, made from real instrument files.

Every time-series file in ``tests/data/real/`` and ``tests/data/vendor/`` is imported
the way ``labctl import`` does it (:func:`labctl.store.importers.import_vendor_file`); its
constant-current steps are the *healthy traces*. Labelled cases are made by splicing into one
step of a healthy trace, from a known reading on:

positives (a short: must be flagged in that step, at or after the splice):

* ``hard_short`` — the simulator's own filament (:class:`drivers.sim.physics.cell.SymmetricCell`,
  ``filament_fraction`` rising from the soft-short onset to 1 over 6 readings): the polarity-
  corrected voltage u is multiplied by V_shorting / V_healthy of two simulated twins, so it
  flickers, then collapses to I·R_short;
* ``soft_short`` — the same filament held at 0.6 (flickering, never bridging);
* ``shorted_from_start`` — the whole step at I·R_short, with the instrument's noise;

negatives (not a short: nothing may be flagged in that step or the next):

* ``noise_burst_2x``, ``noise_burst_3x`` — 60 readings with extra Gaussian noise of 2× / 3× the
  step's own noise σ; ``noise_burst_5x`` is reported, not required (at 5× a burst looks like the
  "high-frequency stochastic spikes" of a soft short [001 L64]);
* ``glitches`` — three single readings 30 σ off, 25 readings apart;
* ``level_up``, ``level_down`` — u × 1.2 / × 0.8 from the splice on (a temperature step);
* ``drift`` — u falling linearly to 0.7 × by the step's end (an interface evolving);
  these three on symmetric cells only, where u is all overpotential (a full cell's u is mostly
  its open-circuit voltage);
* ``healthy`` — the step unchanged.

Splices go at 30 %, 50 % and 80 % of the step's readings. Everything is seeded: the corpus
and its rates are exact. The step's noise σ is robust (1.4826 × median |d²V| / √6), at least
20 µV. The detection replayed is the importer's: one :class:`labctl.checks.ShortDetector` for
the file (``full_cell`` as :func:`labctl.checks.looks_like_full_cell` says), reset at each
step, fed (V, I, t) — its state at the spliced step's start is the healthy replay's.

Used by ``tests/checks/test_real_data.py`` and ``benchmarks/bench_detection.py`` (the rates in
``docs/detection.md``).
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drivers.sim.physics.cell import CellParameters, SymmetricCell
from labctl.checks import ShortDetection, ShortDetector, first_short, looks_like_full_cell
from labctl.store import RunFile
from labctl.store.importers import VendorFileError, import_vendor_file

DATA = Path(__file__).resolve().parents[1] / "data"  # tests/data: the real files shipped with the tests
SUFFIXES = (".mpr", ".ndax", ".nda", ".nda.zip")
POSITIVE = ("hard_short", "soft_short", "shorted_from_start")
NEGATIVE = ("healthy", "noise_burst_2x", "noise_burst_3x", "glitches", "level_up", "level_down", "drift")
REPORTED = ("noise_burst_5x",)
SYMMETRIC_ONLY = ("level_up", "level_down", "drift")
KINDS = POSITIVE + NEGATIVE + REPORTED
POSITIONS = (0.3, 0.5, 0.8)
MIN_READINGS = 60
BURST_READINGS = 60


def real_files() -> list[Path]:
    """The real and vendor instrument files (sorted); impedance spectra and files without a
    current are among them and are refused by the importer."""
    return sorted(p for p in DATA.glob("*/*/*") if p.name.endswith(SUFFIXES))


@dataclass
class Trace:
    """One imported file: its readings (1-D arrays), its steps' rows, the judged steps (constant
    current, ≥ ``MIN_READINGS`` readings) and the detector state at each step's start."""

    name: str
    n_shorts: int
    voltage_V: np.ndarray
    current_A: np.ndarray
    t_s: np.ndarray
    rows: list[np.ndarray]
    judged: list[int]
    detection: ShortDetection
    flags: list[tuple[int, int, str]] = field(default_factory=list)
    """(step, row, kind) of every flag of the healthy replay (must be empty)."""
    _states: dict[int, ShortDetector] = field(default_factory=dict)

    def noise_V(self, step: int) -> float:
        v = self.voltage_V[self.rows[step]]
        return max(1.4826 * float(np.median(np.abs(np.diff(v, 2)))) / math.sqrt(6.0), 20e-6)

    def replay(self, step: int, voltage_V: np.ndarray) -> tuple[int, str] | None:
        """First flag (row within the step, kind) of ``voltage_V`` over ``step``, from the
        healthy replay's detector state; None if nothing is flagged."""
        detector = copy.deepcopy(self._states[step])
        return _judge(detector, self, step, voltage_V)


def _judge(detector: ShortDetector, trace: Trace, step: int, voltage_V: np.ndarray) -> tuple[int, str] | None:
    rows = trace.rows[step]
    detector.reset()
    found = first_short(detector, voltage_V[rows], trace.current_A[rows], trace.t_s[rows])
    return None if found is None else (found[0], found[1])


def load_trace(path: Path, workdir: Path) -> Trace | None:
    """Import ``path`` as ``labctl import`` does; None if the importer refuses it (not a time
    series with a current)."""
    try:
        result = import_vendor_file(path, workdir / f"{path.name}.h5")
    except VendorFileError:
        return None
    with RunFile(result.path) as run:
        (channel,) = run.channels
        cols = run.columns(channel)
        steps = run.steps()
    v, i, t = (np.asarray(cols[k], dtype=float) for k in ("voltage_V", "current_A", "test_time_s"))
    index = np.asarray(cols["step_index"])
    rows = [np.flatnonzero(index == s["step_index"]) for s in steps]
    judged = [k for k, s in enumerate(steps)
              if s["kind"] == "constant_current" and s["current_A"] != 0 and len(rows[k]) >= MIN_READINGS]
    detection = ShortDetection(full_cell=looks_like_full_cell(v, i))
    trace = Trace(path.name, result.n_shorts, v, i, t, rows, judged, detection)
    detector = ShortDetector(detection)
    for k, s in enumerate(steps):
        trace._states[k] = copy.deepcopy(detector)
        if s["kind"] == "constant_current" and s["current_A"] != 0:
            found = _judge(detector, trace, k, v)
            if found is not None:
                trace.flags.append((k, int(rows[k][found[0]]), found[1]))
    return trace


def load_corpus(workdir: Path | None = None) -> list[Trace]:
    """Every importable real file as a :class:`Trace` (imported into ``workdir`` or a temporary
    folder)."""
    with tempfile.TemporaryDirectory(prefix="labctl-corpus-") as tmp:
        folder = Path(workdir or tmp)
        return [t for t in (load_trace(p, folder) for p in real_files()) if t is not None]


# -- the simulated collapse ----------------------------------------------------------------------

def filament_ratio(fractions: np.ndarray, seed: int) -> np.ndarray:
    """V of a simulated cell with its filament at ``fractions`` (one per reading) over V of its
    healthy twin, same state, same current: the simulator's soft short (flicker of the parallel
    path, log-normal) and hard short (I·R_short). Default Li | H.L.-LLZO | Li cell at 1 mA, no
    noise."""
    p = CellParameters(noise_V=0.0, seed=seed)
    shorting, healthy = SymmetricCell(p), SymmetricCell(p)
    for cell in (shorting, healthy):
        cell.advance(60.0, 1e-3)
    out = np.empty(len(fractions))
    for k, f in enumerate(fractions):
        shorting.filament_fraction = float(f)
        out[k] = shorting.voltage_V(1e-3) / healthy.voltage_V(1e-3)
    return out


@dataclass(frozen=True)
class Case:
    """One labelled case: ``kind`` spliced into ``trace``'s step ``step`` from row ``splice``."""

    trace: Trace
    step: int
    kind: str
    splice: int
    seed: int

    @property
    def positive(self) -> bool:
        return self.kind in POSITIVE

    def voltage_V(self) -> np.ndarray:
        """The file's voltages with the case spliced in."""
        tr, rows = self.trace, self.trace.rows[self.step]
        rng = np.random.default_rng(self.seed)
        v = tr.voltage_V.copy()
        seg = rows[self.splice:]
        n = len(seg)
        sigma = tr.noise_V(self.step)
        # u is what the detector judges: V·sign(I), or |V| for a full cell
        sign = np.sign(v[seg]) if tr.detection.full_cell else np.sign(tr.current_A[seg])
        u = v[seg] * sign
        if self.kind in ("hard_short", "soft_short", "shorted_from_start"):
            if self.kind == "hard_short":
                fractions = np.minimum(0.5 + 0.5 * np.arange(1, n + 1) / 6, 1.0)
            elif self.kind == "soft_short":
                fractions = np.full(n, 0.6)
            else:
                fractions = np.ones(n)
            r = filament_ratio(fractions, self.seed)
            u = u * r + (1 - r) * rng.normal(0.0, sigma, n)
        elif self.kind.startswith("noise_burst"):
            k = min(BURST_READINGS, n)
            u[:k] += rng.normal(0.0, int(self.kind[-2]) * sigma, k)
        elif self.kind == "glitches":
            for j in (0, 25, 50):
                if j < n:
                    u[j] += 30 * sigma * rng.choice((-1.0, 1.0))
        elif self.kind == "level_up":
            u = u * 1.2
        elif self.kind == "level_down":
            u = u * 0.8
        elif self.kind == "drift":
            u = u * np.linspace(1.0, 0.7, n)
        v[seg] = u * sign
        return v

    def judge(self) -> tuple[bool, int | None, str | None]:
        """(correct, latency in readings after the splice or None, flagged kind or None).

        A positive is correct when flagged in its step at or after the splice; a negative when
        neither its step nor the next judged one is flagged."""
        v = self.voltage_V()
        tr = self.trace
        found = tr.replay(self.step, v)
        if self.positive:
            if found is None or found[0] < self.splice:
                return False, None, None if found is None else found[1]
            return True, found[0] - self.splice, found[1]
        if found is not None:
            return False, found[0] - self.splice, found[1]
        later = [k for k in tr.judged if k > self.step][:1]
        if later:
            detector = copy.deepcopy(tr._states[self.step])
            _judge(detector, tr, self.step, v)
            nxt = _judge(detector, tr, later[0], v)
            if nxt is not None:
                return False, None, nxt[1]
        return True, None, None


def cases(corpus: list[Trace], kinds: tuple[str, ...] = KINDS) -> Iterator[Case]:
    """Every labelled case of the corpus: each judged step × kind × splice position (a short
    from the start: once per step, at row 0)."""
    seed = 0
    for trace in corpus:
        for step in trace.judged:
            n = len(trace.rows[step])
            for kind in kinds:
                if trace.detection.full_cell and kind in SYMMETRIC_ONLY:
                    continue
                positions = (0.0,) if kind in ("shorted_from_start", "healthy") else POSITIONS
                for pos in positions:
                    seed += 1
                    yield Case(trace, step, kind, int(pos * n), seed)


@dataclass
class Rates:
    """Outcome counts of one kind of case."""

    kind: str
    n: int = 0
    wrong: int = 0
    latencies: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.wrong / self.n if self.n else 0.0


def evaluate(corpus: list[Trace], kinds: tuple[str, ...] = KINDS) -> dict[str, Rates]:
    """Per kind: how many cases, how many judged wrongly (a missed positive, a flagged
    negative), and the positives' detection latencies (readings after the splice)."""
    out = {k: Rates(k) for k in kinds}
    for case in cases(corpus, kinds):
        ok, latency, _kind = case.judge()
        r = out[case.kind]
        r.n += 1
        r.wrong += not ok
        if ok and latency is not None:
            r.latencies.append(latency)
    return out
