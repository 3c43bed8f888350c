"""Real full-cell cycler files (``tests/data/vendor``) imported and analysed per cycle give the
vendor's own per-cycle capacity, Coulombic efficiency and retention: NEWARE against fastnda's
reference reading (``.parquet``: BTSDA's step capacity ``Capacity(mAs)`` and energy), EC-Lab
GCPL against galvani's ``Q charge/discharge/mA.h`` per half cycle."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl  # fastnda's own dependency: it reads the reference .parquet files
import pytest

from labctl.analysis import full_cell_cycles
from labctl.store import RunFile
from labctl.store.importers import import_vendor_file
from tests.conftest import REAL_DATA, VENDOR_DATA

VENDOR = VENDOR_DATA
NEWARE = VENDOR / "neware-fastnda"
GCPL = VENDOR / "eclab-aurora" / "250116_kigr_gen6_01_02_GCPL_CD8.mpr"


def _analysed(tmp_path: Path, source: Path, **options):
    result = import_vendor_file(source, tmp_path / (source.name + ".h5"))
    with RunFile(result.path) as run:
        c = run.columns(run.channels[0])
    return full_cell_cycles(c["test_time_s"], c["voltage_V"], c["current_A"], c["cycle_index"], charge_C=c["charge_C"],
                            **options)


def _neware_reference(reference: str) -> dict[int, dict[str, float]]:
    """Per cycle from BTSDA's reading: the step-final Capacity(mAs) and Energy(mWs) of each
    charge (…Chg) and discharge (…DChg) step, summed per Cycle Index."""
    ref = pl.read_parquet(NEWARE / reference)
    steps = ref.group_by("Step Count", maintain_order=True).agg(
        pl.col("Step Type").first().cast(pl.String), pl.col("Cycle Index").first(),
        pl.col("Capacity(mAs)").last(), pl.col("Energy(mWs)").last())
    out: dict[int, dict[str, float]] = {}
    for row in steps.iter_rows(named=True):
        kind = row["Step Type"].replace(" ", "").replace("_", "")
        side = "discharge" if "DChg" in kind else "charge" if "Chg" in kind else None
        cycle = out.setdefault(int(row["Cycle Index"]), {"charge": 0.0, "discharge": 0.0, "charge_Wh": 0.0,
                                                          "discharge_Wh": 0.0})
        if side:
            cycle[side] += float(row["Capacity(mAs)"]) / 3600.0
            cycle[f"{side}_Wh"] += float(row["Energy(mWs)"]) / 3.6e6
    return out


def _compare(ours, reference: dict[int, dict[str, float]], formation_cycles: int) -> None:
    cols = ours.columns
    assert cols["cycle"] == sorted(reference)
    charge = np.array([reference[c]["charge"] for c in cols["cycle"]])
    discharge = np.array([reference[c]["discharge"] for c in cols["cycle"]])
    np.testing.assert_allclose(cols["charge_capacity_mAh"], charge, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cols["discharge_capacity_mAh"], discharge, rtol=1e-5, atol=1e-6)
    complete = (charge > 0) & (discharge > 0)
    assert cols["complete"] == complete.tolist()
    ce = np.where(complete, discharge / np.where(charge > 0, charge, 1) * 100, 0.0)
    np.testing.assert_allclose(cols["coulombic_efficiency_pct"], ce, rtol=1e-5, atol=1e-9)
    done = np.flatnonzero(complete)
    if len(done) > formation_cycles:
        ref = done[formation_cycles]
        retention = discharge[done[-1]] / discharge[ref] * 100
        summary = ours.as_results()
        assert summary["capacity_retention_pct"] == pytest.approx(retention, rel=1e-5)
        assert summary["coulombic_efficiency_pct"] == pytest.approx(np.mean(ce[done[done >= ref]]), rel=1e-5)
        assert ours.reference_cycle == cols["cycle"][ref]
    else:
        assert "capacity_retention_pct" not in ours.as_results()


def test_neware_full_cell_per_cycle_matches_btsda(tmp_path):
    """A 5 Ah cylindrical cell (CC discharge, CCCV charge, 2.5–4.2 V): 7 cycles."""
    name, reference = "TESTCELL0001-B2-2025-M50T_NewareNDA_Investigation.ndax", "TESTCELL0001-B2-2025-M50T_NewareNDA_Investigation.parquet"
    ours = _analysed(tmp_path, NEWARE / name, formation_cycles=1)
    ref = _neware_reference(reference)
    _compare(ours, ref, formation_cycles=1)
    cols = ours.columns
    assert len(cols["cycle"]) == 7 and all(cols["complete"])
    # Cycles 2–7 at 1C: ≈ 4.72 Ah out, CE ≈ 99.95 %, retention ≈ 100 %.
    assert cols["discharge_capacity_mAh"][3] == pytest.approx(4721.9, rel=1e-3)
    assert 99.8 < cols["coulombic_efficiency_pct"][3] < 100.0
    # Energy: V·dQ (trapezoid) on the cycler's points vs the cycler's own energy counter.
    for k, c in enumerate(cols["cycle"]):
        assert cols["discharge_energy_Wh"][k] == pytest.approx(ref[c]["discharge_Wh"], rel=2e-3)
        assert cols["charge_energy_Wh"][k] == pytest.approx(ref[c]["charge_Wh"], rel=2e-3)


@pytest.mark.parametrize(("name", "reference"), [("nda_v23.nda.zip", "nda_v23.parquet"),
                                                 ("21_10_7_85.ndax", "21_10_7_85.parquet")])
def test_neware_partial_and_rest_only_files_match_btsda(tmp_path, name, reference):
    """nda_v23: one CC discharge (3.1 Ah), no charge — an incomplete cycle; 21_10_7_85: rest only."""
    ours = _analysed(tmp_path, NEWARE / name)
    _compare(ours, _neware_reference(reference), formation_cycles=0)
    assert not any(ours.columns["complete"]) and ours.reference_cycle is None


def test_neware_rest_only_btsda_export(tmp_path):
    """interp-test.ndax (BTSDA's own CSV export beside it): a 30 min rest, no charge passed."""
    ours = _analysed(tmp_path, NEWARE / "interp-test.ndax")
    assert ours.columns["charge_capacity_mAh"] == [0.0] and ours.columns["discharge_capacity_mAh"] == [0.0]
    lines = (NEWARE / "interp-test.csv").read_text(encoding="latin-1").splitlines()
    header = lines[0].split(",")
    current = header.index(next(h for h in header if h.startswith("Current(")))
    assert all(float(line.split(",")[current]) == 0.0 for line in lines[1:] if line)


def test_eclab_gcpl_per_cycle_matches_galvani(tmp_path):
    """The aurora LNMO | SiGr coin cell: 3 formation cycles (C/2 + CV, D/2), 17.233 mg (.mpl)."""
    from galvani import BioLogic

    mass_mg = float(re.search(r"Mass of active material : ([0-9.]+) mg",
                              GCPL.with_suffix(".mpl").read_text(encoding="latin-1")).group(1))
    data = BioLogic.MPRfile(str(GCPL)).data
    half = data["half cycle"]
    reference: dict[int, dict[str, float]] = {}
    for h in np.unique(half):
        q = float(data["Q charge/discharge/mA.h"][half == h][-1])  # galvani: signed, restarts each half cycle
        cycle = reference.setdefault(int(h) // 2, {"charge": 0.0, "discharge": 0.0})
        cycle["charge" if q > 0 else "discharge"] += abs(q)
    ours = _analysed(tmp_path, GCPL, active_mass_g=mass_mg * 1e-3)
    _compare(ours, reference, formation_cycles=0)
    summary = ours.as_results()
    assert summary["discharge_capacity_mAh_g"] == pytest.approx(reference[0]["discharge"] / (mass_mg * 1e-3), rel=1e-5)
    assert summary["discharge_capacity_mAh_g"] == pytest.approx(103.8, abs=0.5)
    assert ours.columns["coulombic_efficiency_pct"][0] == pytest.approx(76.15, abs=0.05)  # first-cycle loss


def test_real_eclab_gcpl_symmetric_cell_per_cycle_charge_and_ce_match_galvani(tmp_path):
    """yadg's real GCPL file (a Li | Li cell, 12 h half-cycles, 385 h; tests/data/real): each
    cycle's charge and discharge and their ratio, as galvani reads EC-Lab's own
    ``Q charge/discharge/mA.h`` per half cycle."""
    from galvani import BioLogic

    source = REAL_DATA / "eclab-yadg" / "gcpl.mpr"
    data = BioLogic.MPRfile(str(source)).data
    half = data["half cycle"]
    reference: dict[int, dict[str, float]] = {}
    for h in np.unique(half):
        q = float(data["Q charge/discharge/mA.h"][half == h][-1])
        cycle = reference.setdefault(int(h) // 2, {"charge": 0.0, "discharge": 0.0})
        cycle["charge" if q > 0 else "discharge"] += abs(q)
    ours = _analysed(tmp_path, source)
    _compare(ours, reference, formation_cycles=0)
    complete = np.array(ours.columns["complete"])
    assert complete.sum() >= 15
    ce = np.array(ours.columns["coulombic_efficiency_pct"])[complete]
    assert np.all(np.abs(ce - 100.0) < 0.01)  # Li | Li: what is plated is stripped
