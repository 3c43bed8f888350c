"""``labctl report RUN.h5``: PNG figures of a run, drawn from the run file alone (matplotlib, Agg).

:func:`write_report` picks the figures by the run's kind (c-AFM triggering-bias sweeps,
memristor cycling, CCD staircase, symmetric cycling, imported cycler data);
:func:`build_report` also returns the numbers each figure draws. Long series are min/max
decimated per pixel column (:func:`minmax_decimate`), read from HDF5 in blocks.
"""

from labctl.report._common import ReportFigure
from labctl.report._core import REPORTS, build_report, write_report
from labctl.report._decimate import minmax_decimate

__all__ = ["REPORTS", "ReportFigure", "build_report", "minmax_decimate", "write_report"]
