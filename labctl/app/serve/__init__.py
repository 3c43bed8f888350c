"""``labctl serve``: every run of a lab served through Tiled, with a searchable catalog.

See :mod:`labctl.app.serve._server` (the server and its access rules),
:mod:`labctl.app.serve._registrar` (directories → catalog) and :mod:`labctl.app.serve._adapter`
(how Tiled reads a run file). Needs the ``serve`` extra (``pip install 'labctl[serve]'``); the
client side is :mod:`labctl.store.remote`.
"""

from labctl.app.serve._registrar import RUNS_CONTAINER, Registrar, RunsDirectory, SyncReport
from labctl.app.serve._server import LabServer, ServeConfig, ServeError, catalog_uri, is_loopback

__all__ = ["RUNS_CONTAINER", "LabServer", "Registrar", "RunsDirectory", "ServeConfig", "ServeError", "SyncReport",
           "catalog_uri", "is_loopback"]
