"""Simulated instruments that speak the real ones' wire protocols, so the real drivers are
what the tests (and ``labctl sim``) exercise. Physics behind them: :mod:`drivers.sim.physics`.

* Keithley 2400: :class:`Keithley2400Simulator` (SCPI, :mod:`.scpi`; source-measure model
  :class:`SourceMeterModel`, :mod:`.smu`) served over TCP (:class:`TcpServer`) or a
  pseudo-terminal (:class:`PtyServer`); :class:`InProcessSourceMeter` calls it with no wire;
* NEWARE BTS: :class:`NewareBtsSimulator` (client API XML; channels :mod:`.neware_channel`,
  step files :mod:`.neware_stepfile`) served by :class:`BtsServer`;
* BioLogic: :class:`SimulatedBackend`, the Development Package calls in-process;
* AFM: :class:`NanonisAfmSimulator` served by :class:`NanonisServer`;
* :class:`LoopbackServer` (:mod:`.server`): the TCP servers' shared scaffold, loopback only.
"""

from drivers.sim.afm import NanonisAfmSimulator, NanonisServer
from drivers.sim.biologic import SimulatedBackend
from drivers.sim.inprocess import InProcessSourceMeter
from drivers.sim.keithley2400 import Keithley2400Simulator, PtyServer, TcpServer
from drivers.sim.neware import BtsServer, NewareBtsSimulator
from drivers.sim.server import LoopbackServer, loopback_ipv4
from drivers.sim.smu import Load, Resistor, SourceMeterModel

__all__ = [
    "Keithley2400Simulator", "TcpServer", "PtyServer", "SourceMeterModel", "Load", "Resistor", "InProcessSourceMeter",
    "NewareBtsSimulator", "BtsServer",
    "SimulatedBackend",
    "NanonisAfmSimulator", "NanonisServer",
    "LoopbackServer", "loopback_ipv4",
]
