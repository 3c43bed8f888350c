"""Short detection on real instrument files: healthy cells raise nothing; a collapse spliced into
a real trace is caught in the step it was spliced into; noise bursts, glitches, level changes
and drifts are not (the labelled corpus of ``tests/checks/corpus.py``; its rates are in
``docs/detection.md``, from ``python benchmarks/bench_detection.py``)."""

from __future__ import annotations

import pytest

from labctl.store import RunFile
from labctl.store.importers import VendorFileError, import_vendor_file
from tests.checks.corpus import NEGATIVE, POSITIVE, cases, evaluate, load_corpus, real_files
from tests.cli.test_cli import labctl

pytestmark = pytest.mark.timeout(120)

#: Files the importer refuses, and why: impedance spectra, and an OCV record without a current.
NOT_TIME_SERIES = {"peis.mpr", "geis.mpr", "PEIS.mpr", "ocv.mpr"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return load_corpus(tmp_path_factory.mktemp("corpus"))


def test_every_real_file_imports_without_a_short_or_a_soft_short(tmp_path) -> None:
    imported = []
    for path in real_files():
        try:
            result = import_vendor_file(path, tmp_path / f"{path.name}.h5")
        except VendorFileError:
            assert path.name in NOT_TIME_SERIES
            continue
        with RunFile(result.path) as run:
            kinds = {e["kind"] for e in run.events()}
            reasons = {s["reason"] for s in run.steps()}
        assert result.n_shorts == 0 and not kinds & {"short", "soft_short"}, path.name
        assert not reasons & {"short", "soft_short"}, path.name
        imported.append(path.name)
    # the Li | Li symmetric cell, the Li-ion GCPL and NEWARE files, CP/CA/CV/LSV records
    assert {"gcpl.mpr", "cp.mpr", "250116_kigr_gen6_01_02_GCPL_CD8.mpr",
            "TESTCELL0001-B2-2025-M50T_NewareNDA_Investigation.ndax", "nda_v23.nda.zip"} <= set(imported)


def test_labctl_import_of_the_healthy_symmetric_cell_reports_no_short(tmp_path) -> None:
    """gcpl.mpr: Li | Li, ±105 mV, 12 h half-cycles, 385 h; 32 of 32 steps were flagged before
    detection became sign-aware (issue 16)."""
    gcpl = next(p for p in real_files() if p.name == "gcpl.mpr")
    proc = labctl("import", str(gcpl), "-o", str(tmp_path / "gcpl.h5"))
    assert proc.returncode == 0, proc.stderr
    assert "short detection: 0 step(s) flagged" in proc.stdout
    with RunFile(tmp_path / "gcpl.h5") as run:
        steps = run.steps()
        assert len(steps) == 32 and not any(s["reason"] in ("short", "soft_short") for s in steps)
        assert not [e for e in run.events() if e["kind"] in ("short", "soft_short")]


def test_the_corpus_covers_symmetric_and_full_cells(corpus) -> None:
    judged = {t.name: len(t.judged) for t in corpus if t.judged}
    assert judged["gcpl.mpr"] == 32 and sum(judged.values()) >= 40
    assert {t.name for t in corpus if t.detection.full_cell} >= {
        "250116_kigr_gen6_01_02_GCPL_CD8.mpr", "TESTCELL0001-B2-2025-M50T_NewareNDA_Investigation.ndax"}
    assert all(not t.flags for t in corpus)  # the healthy replay, step by step


def test_a_spliced_collapse_is_caught_in_its_step_and_noise_is_not(corpus) -> None:
    rates = evaluate(corpus, POSITIVE + NEGATIVE)
    for kind in ("hard_short", "soft_short"):
        assert rates[kind].n >= 120 and rates[kind].wrong == 0, kind
        assert max(rates[kind].latencies) <= 10  # readings after the splice
    for kind in NEGATIVE:
        assert rates[kind].n >= 40 and rates[kind].wrong == 0, kind


def test_a_step_shorted_from_its_start_is_missed_only_where_nothing_came_before(corpus) -> None:
    """A step that is shorted from its first reading, with its |V| above the 1 mV floor (a full
    cell's I·R path, or an instrument too noisy for the floor), can only be told by the level
    the cell showed before: it is caught in every step but a file's first judged one."""
    missed = [c for c in cases(corpus, ("shorted_from_start",)) if not c.judge()[0]]
    assert all(c.step == c.trace.judged[0] for c in missed)
    assert len(missed) <= len([t for t in corpus if t.judged])
