"""``labctl report RUN.h5``: figures of a run (PNG at 300 dpi, SVG or PDF), drawn from the run file
alone (matplotlib, Agg).

:func:`write_report` picks the figures by the run's kind (c-AFM triggering-bias sweeps,
memristor cycling, CCD staircase, symmetric cycling, imported cycler data);
:func:`build_report` also returns the numbers each figure draws. Long series are min/max
decimated per pixel column (:func:`minmax_decimate`), read from HDF5 in blocks. Format,
resolution, titles and the form of units are decided in one place (``_common``) for every
figure kind.
"""

from labctl.report._common import DPI, FORMATS, ReportFigure, check_output, unit_text
from labctl.report._core import REPORTS, build_report, write_report
from labctl.report._decimate import minmax_decimate

__all__ = ["DPI", "FORMATS", "REPORTS", "ReportFigure", "build_report", "check_output", "minmax_decimate", "unit_text",
           "write_report"]
