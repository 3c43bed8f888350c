"""HDF5 run files: write (a subscriber to the engine), read, summarise."""

from labctl.store.reader import RunFile, RunFileError
from labctl.store.writer import FORMAT, RunFileWriter, write_results

__all__ = ["FORMAT", "RunFile", "RunFileError", "RunFileWriter", "write_results"]
