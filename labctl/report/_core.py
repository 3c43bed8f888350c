"""``write_report``: the figures of a run file, chosen by the run's kind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from labctl.report._cafm import cafm_report
from labctl.report._characterisation import (arrhenius_report, dc_polarisation_report, eis_report, lsv_report,
                                             sequence_report, transference_report)
from labctl.report._common import DPI, FORMATS, ReportFigure, ReportRun
from labctl.report._full_cell import full_cell_report, li_cu_report
from labctl.report._galvanostatic import ccd_report, cycling_report, imported_report
from labctl.report._lithium import continuous_plating_report, ctta_report, soft_short_report
from labctl.report._memristor import memristor_report
from labctl.store.reader import RunFileError

#: The figures of each run kind (the run file's ``protocol_kind`` attribute).
REPORTS: dict[str, Callable[[ReportRun, Path], list[ReportFigure]]] = {
    "cafm_trigger_sweep": cafm_report,
    "memristor_cycling": memristor_report,
    "ccd_staircase": ccd_report,
    "symmetric_cycling": cycling_report,
    "imported": imported_report,
}
# The characterisation kinds (issue 12).
REPORTS.update({"eis": eis_report, "arrhenius": arrhenius_report, "dc_polarisation": dc_polarisation_report,
                "transference_number": transference_report, "lsv": lsv_report, "sequence": sequence_report})
# Full cells and lithium inventory (issue 13).
REPORTS.update({
    "full_cell_cycling": full_cell_report,
    "li_cu_efficiency": li_cu_report,
    "continuous_plating": continuous_plating_report,
    "ctta": ctta_report,
    "soft_short_amperometry": soft_short_report,
})


def build_report(run_path: str | Path, out_dir: str | Path | None = None, *, format: str = FORMATS[0],
                 dpi: int = DPI) -> list[ReportFigure]:
    """Write the run's figures; return them with the numbers each one draws, their titles and
    texts.

    As :func:`write_report`, which returns only the paths.
    """
    run_path = Path(run_path)
    with ReportRun(run_path, format=format, dpi=dpi) as run:
        report = REPORTS.get(run.kind)
        if report is None:
            got = f"run kind {run.kind!r}" if run.kind else "no run kind (attribute protocol_kind)"
            raise RunFileError(f"{run_path}: {got} has no report; known kinds: {', '.join(REPORTS)}")
        target = Path(out_dir) if out_dir is not None else run_path.parent
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"{target}: cannot create the output directory: {exc.strerror}") from None
        return report(run, target)


def write_report(run_path: str | Path, out_dir: str | Path | None = None, *, format: str = FORMATS[0],
                 dpi: int = DPI) -> list[Path]:
    """Draw the figures people look at for one run file, beside it (or in ``out_dir``).

    Everything comes from the run file alone: readings, the ``steps`` and ``events`` tables
    and the ``results`` its protocol's analysis stored (nothing is re-analysed). Files are
    ``<run stem>_<figure>.<format>`` (``png``, ``svg`` or ``pdf``; a PNG at ``dpi``, default
    300: a 10 in figure is 3000 px wide); existing ones are replaced. Every figure is titled
    with the experiment and the cell it ran on, from the run file (a simulated run: the
    preset's cell, its thickness and temperature; else the protocol's ``cell``), and writes
    units with superscripts (mA cm⁻², Ω cm²). Per run kind (``protocol_kind``):

    * ``cafm_trigger_sweep`` — ``_iv`` (every sweep's I–V, linear and log |I| in A, by site
      class, triggering bias marked), ``_trigger_hist`` (|triggering bias| in V on log-spaced
      bins, grain boundary vs interior, medians), ``_trigger_distance`` (|triggering bias| in
      V vs distance from the boundary in nm; when the sites have one), ``_current_map`` (|I|
      in A at the map bias, before/after the sweeps on one shared log colour scale; when mapped).
    * ``memristor_cycling`` — ``_iv`` (first, second, middle and last cycle, linear and log
      |I| in A vs V, set and reset marked), ``_resistance`` (R_HRS, R_LRS in Ω and on/off
      ratio vs cycle, log y; failed resets marked).
    * ``ccd_staircase`` — ``_timeseries`` (V and mA cm⁻² vs test time in h or s, min/max per
      pixel column, short and ±CCD marked, every reading around the short below),
      ``_overpotential`` (per-step overpotential in mV and ASR in Ω cm² vs |current density|
      in mA cm⁻², CCD and the shorted step marked).
    * ``symmetric_cycling`` — ``_timeseries`` (failures marked: short, soft short,
      polarisation …), ``_overpotential`` (plating/stripping overpotential in mV and ASR in
      Ω cm² vs cycle).
    * ``imported`` (``labctl import``) — ``_timeseries``.
    * ``eis`` — ``_nyquist`` (−Im Z vs Re Z in Ω cm², fitted R_b, +R_gb, +R_CT marked),
      ``_bode`` (|Z| in Ω cm² and phase in ° vs Hz).
    * ``arrhenius`` — ``_arrhenius`` (ln σ vs 1000/T with the E_a line), ``_nyquist``, ``_bode``
      (one spectrum per temperature).
    * ``dc_polarisation`` — ``_current`` (|I| in A vs time in the hold, steady state marked).
    * ``transference_number`` — ``_current``, ``_nyquist`` (before and after).
    * ``lsv`` — ``_lsv`` (µA cm⁻² vs V, linear and log, onset and threshold marked).
    * ``sequence`` — ``_timeseries``, and per technique present ``_nyquist``, ``_bode``,
      ``_resistances`` (R_b, R_gb, R_CT vs Li plated), ``_current``, ``_lsv``.
    * ``full_cell_cycling`` — ``_timeseries``, ``_capacity`` (charge/discharge capacity in mAh g⁻¹
      or mAh and CE in % vs cycle, the first cycle after formation and the retention marked),
      ``_profiles`` (V vs capacity of the first, a middle and the last cycle), ``_dqdv``
      (dQ/dV of their discharge).
    * ``li_cu_efficiency`` — ``_timeseries``; plain cycling also ``_capacity`` (plated/stripped
      mAh cm⁻² and CE vs cycle, the averaged range and its mean marked) and ``_profiles``.
    * ``continuous_plating`` — ``_timeseries`` (the short marked), ``_plating`` (mV vs mAh cm⁻²
      plated, Li µm on top, the capacity to short marked).
    * ``ctta`` — ``_timeseries``, ``_qsigma`` (q_Σ in µAh cm⁻² vs t in h and vs √t, the line and R²).
    * ``soft_short_amperometry`` — ``_current`` (I vs s, linear and log, spikes, onset, hard
      short and burn-out marked).

    Long runs are read in blocks with h5py slicing and drawn decimated (each pixel column's
    minimum and maximum), so a 12 000 h run takes seconds and little memory.

    Args:
        run_path: the ``.h5`` file of a finished run (or an imported one): the figures use
            the analysis results a run stores when it ends.
        out_dir: where to write (created if missing); default the run file's directory.
        format: ``png`` (default), ``svg`` or ``pdf`` (:data:`FORMATS`).
        dpi: resolution of a PNG (and of images inside an SVG or PDF), 50 … 1200.

    Returns:
        The figure paths written, in the order above.

    Raises:
        ValueError: an unknown format or a resolution out of range (before the file is opened).
        RunFileError: the file is missing, not HDF5, not a labctl run file, has no readings,
            lacks the results its kind's figures need, or its run kind has no report — one
            line naming the file.
        OSError: ``out_dir`` cannot be created or a PNG cannot be written.
    """
    return [figure.path for figure in build_report(run_path, out_dir, format=format, dpi=dpi)]
