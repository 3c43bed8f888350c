"""HDF5 run files: write (a subscriber to the engine), read, summarise."""

from labctl.store.reader import RunFile, RunFileError
from labctl.store.spectra import (
    SPECTRUM_COLUMNS,
    SpectrumError,
    append_spectrum,
    create_spectra,
    read_spectra,
    spectra_channels,
    spectrum_columns,
    split_spectra,
    write_spectra,
)
from labctl.store.writer import FORMAT, RunFileWriter, write_results

__all__ = [
    "FORMAT", "RunFile", "RunFileError", "RunFileWriter", "write_results",
    "SPECTRUM_COLUMNS", "SpectrumError", "append_spectrum", "create_spectra", "read_spectra", "spectra_channels",
    "spectrum_columns", "split_spectra", "write_spectra",
]
