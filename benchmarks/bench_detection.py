"""False-positive and false-negative rates of labctl's short detection on real instrument files.

The corpus (``tests/checks/corpus.py``): every time-series file of ``tests/data/real/`` and
``tests/data/vendor/`` imported as ``labctl import`` does, and labelled cases spliced into
its constant-current steps — a simulated collapse (hard short, soft short, a step shorted from
its start) that must be caught in that step, and noise bursts, glitches, level changes and drifts
that must not be flagged. Prints one row per kind of case: how many, how many judged wrongly
(missed or flagged), the rate, and for positives the detection latency in readings after the
splice. Seeded: the numbers are exact.

Run: ``python benchmarks/bench_detection.py`` (about 15 s). The table is in ``docs/detection.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.checks.corpus import KINDS, NEGATIVE, POSITIVE, REPORTED, evaluate, load_corpus  # noqa: E402


def main() -> None:
    wall = time.perf_counter()
    corpus = load_corpus()
    judged = [t for t in corpus if t.judged]
    print(f"{len(corpus)} files imported, {sum(len(t.judged) for t in judged)} constant-current steps judged in "
          f"{len(judged)} of them ({', '.join(f'{t.name} {len(t.judged)}' for t in judged)})")
    healthy_flags = sum(len(t.flags) for t in corpus)
    print(f"healthy files as imported: {healthy_flags} steps flagged")
    rates = evaluate(corpus, KINDS)
    print(f"\n| case | label | cases | wrong | rate | latency (readings: median, max) |")
    print("|---|---|---:|---:|---:|---|")
    for kind in KINDS:
        r = rates[kind]
        label = "short" if kind in POSITIVE else ("not a short" if kind in NEGATIVE else "reported")
        lat = f"{np.median(r.latencies):.0f}, {max(r.latencies)}" if r.latencies else ""
        print(f"| `{kind}` | {label} | {r.n} | {r.wrong} | {100 * r.rate:.1f} % | {lat} |")
    pos = [rates[k] for k in POSITIVE]
    neg = [rates[k] for k in NEGATIVE]
    fn = sum(r.wrong for r in pos) / sum(r.n for r in pos)
    fp = sum(r.wrong for r in neg) / sum(r.n for r in neg)
    print(f"\nfalse-negative rate {100 * fn:.2f} % ({sum(r.wrong for r in pos)} of {sum(r.n for r in pos)}); "
          f"false-positive rate {100 * fp:.2f} % ({sum(r.wrong for r in neg)} of {sum(r.n for r in neg)}); "
          f"reported separately: " + ", ".join(f"{k} {rates[k].wrong} of {rates[k].n}" for k in REPORTED))
    print(f"({time.perf_counter() - wall:.1f} s)")


if __name__ == "__main__":
    main()
