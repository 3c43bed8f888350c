"""The AFM controller over the Nanonis TCP interface: our client and the vendor's against
the simulator."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from drivers.afm import NanonisAfm, parse_address
from drivers.base import InstrumentError, InstrumentLost
from drivers.sim.afm import NanonisAfmSimulator, NanonisServer
from drivers.sim.physics.tip import TipJunction


@pytest.fixture
def setup():
    junction = TipJunction(seed=1)
    sim = NanonisAfmSimulator(junction)
    with NanonisServer(sim) as server:
        afm = NanonisAfm(server.resource, timeout_s=2)
        yield junction, sim, server, afm
        afm.close()


def test_move_engage_withdraw_drive_the_tip_junction(setup):
    junction, sim, _server, afm = setup
    afm.move_to_nm(120.0, 340.0)
    assert afm.position_nm() == pytest.approx((120.0, 340.0))
    assert (junction.x_nm, junction.y_nm) == pytest.approx((120.0, 340.0))
    assert not afm.in_contact and not junction.in_contact
    afm.engage(force_nN=300)
    assert afm.in_contact and junction.in_contact and junction.force_nN == pytest.approx(300)
    assert afm.deflection_nN() == pytest.approx(300, rel=1e-6)
    afm.withdraw()
    assert not afm.in_contact and not junction.in_contact and not sim.z_controller_on


def test_refused_command_names_the_address(setup):
    _junction, _sim, server, afm = setup
    with pytest.raises(InstrumentError, match=f"{server.resource}.*outside the scan field"):
        afm.move_to_nm(-10, 0)


def test_bad_and_unreachable_addresses():
    with pytest.raises(ValueError, match="'nowhere': expected host:port"):
        parse_address("nowhere")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(InstrumentLost, match=f"127.0.0.1:{port}"):
        NanonisAfm(f"127.0.0.1:{port}", timeout_s=1)


def test_simulator_serves_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        NanonisServer(NanonisAfmSimulator(TipJunction()), host="0.0.0.0")


def test_the_vendors_nanonis_spm_client_speaks_to_the_simulator(setup, capsys):
    nanonis_spm = pytest.importorskip("nanonis_spm")
    _junction, sim, server, _afm = setup
    with socket.create_connection(server.address, timeout=2) as sock:
        client = nanonis_spm.Nanonis(sock)
        client.FolMe_XYPosSet(np.float64(3e-7), np.float64(4e-7), np.uint32(1))
        assert client.FolMe_XYPosGet(np.uint32(1))[2] == pytest.approx([3e-7, 4e-7])
        names = client.Signals_NamesGet()[2][2]
        assert "Deflection (N)" in names
        client.ZCtrl_OnOffSet(np.uint32(1))
        assert client.ZCtrl_OnOffGet()[2] == [1] and sim.in_contact
        client.ZCtrl_Withdraw(np.uint32(1), np.int32(1000))
        assert client.ZCtrl_OnOffGet()[2] == [0] and not sim.in_contact
        error = client.FolMe_XYPosSet(np.float64(-1e-7), np.float64(0.0), np.uint32(1))[0]
        assert "outside the scan field" in error
