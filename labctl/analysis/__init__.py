"""Analyses of the seeds' measurements, on step tables and reading arrays."""

from labctl.analysis.ccd import CCDResult, critical_current_density, interface_asr_ohm_cm2, step_overpotentials
from labctl.analysis.charge import CycleTotals, HalfCycle, Record, cycle_totals, cycles_from_current, half_cycles, record
from labctl.analysis.conductivity import (
    ArrheniusFit,
    ElectronicConductivity,
    SteadyState,
    arrhenius,
    conductivity_from_fit,
    electronic_conductivity,
    ionic_conductivity_S_cm,
    steady_state_current,
)
from labctl.analysis.full_cell import DQDV, FullCellCycles, cycle_dqdv, dqdv, full_cell_cycles
from labctl.analysis.impedance import CIRCUITS, CircuitSpec, ImpedanceFit, fit_spectrum
from labctl.analysis.lithium_inventory import (
    LI_UM_PER_MAH_CM2,
    SEI_NM_PER_UAH_CM2,
    CTTAResult,
    LiCuEfficiency,
    PlatingToShort,
    adams_reservoir_efficiency,
    adams_reservoir_from_record,
    capacity_to_short,
    ctta,
    li_cu_efficiency,
)
from labctl.analysis.lsv import OxidationOnset, oxidation_onset
from labctl.analysis.spikes import SpikeAnalysis, soft_short_spikes
from labctl.analysis.transference import TransferenceResult, bruce_vincent, transference_number

__all__ = [
    "CCDResult", "critical_current_density", "interface_asr_ohm_cm2", "step_overpotentials",
    "CycleTotals", "HalfCycle", "Record", "cycle_totals", "cycles_from_current", "half_cycles", "record",
    "ArrheniusFit", "ElectronicConductivity", "SteadyState", "arrhenius", "conductivity_from_fit",
    "electronic_conductivity", "ionic_conductivity_S_cm", "steady_state_current",
    "DQDV", "FullCellCycles", "cycle_dqdv", "dqdv", "full_cell_cycles",
    "CIRCUITS", "CircuitSpec", "ImpedanceFit", "fit_spectrum",
    "LI_UM_PER_MAH_CM2", "SEI_NM_PER_UAH_CM2", "CTTAResult", "LiCuEfficiency", "PlatingToShort",
    "adams_reservoir_efficiency", "adams_reservoir_from_record", "capacity_to_short", "ctta", "li_cu_efficiency",
    "OxidationOnset", "oxidation_onset",
    "SpikeAnalysis", "soft_short_spikes",
    "TransferenceResult", "bruce_vincent", "transference_number",
]
