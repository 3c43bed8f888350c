"""Analyses of the seeds' measurements, on step tables and reading arrays."""

from labctl.analysis.ccd import CCDResult, critical_current_density, interface_asr_ohm_cm2, step_overpotentials

__all__ = ["CCDResult", "critical_current_density", "interface_asr_ohm_cm2", "step_overpotentials"]
