"""Analyses of the seeds' measurements, on step tables and reading arrays."""

from labctl.analysis.ccd import CCDResult, critical_current_density, step_overpotentials

__all__ = ["CCDResult", "critical_current_density", "step_overpotentials"]
