"""HDF5 run files: the layout (one description), write (a subscriber to the engine), read,
follow, summarise, recover (resume or close a killed run), one writer per run (lock), export,
vendor import."""

from labctl.store.layout import FORMAT, RunFileError
from labctl.store.lock import LockInfo, RunLock, live_owner
from labctl.store.reader import RunFile
from labctl.store.recover import Closed, attach_point, finalise, record_events, resume_point
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
from labctl.store.summary import RunSummary, summarise
from labctl.store.writer import RunFileWriter, write_results

__all__ = ["FORMAT", "Closed", "LockInfo", "RunFile", "RunFileError", "RunFileWriter", "RunLock", "RunSummary",
           "attach_point", "finalise", "live_owner", "record_events", "resume_point", "summarise", "write_results",
           "SPECTRUM_COLUMNS", "SpectrumError", "append_spectrum", "create_spectra", "read_spectra", "spectra_channels",
           "spectrum_columns", "split_spectra", "write_spectra"]
