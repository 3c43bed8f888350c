"""Station panel: the instruments (from a station file, or the simulated station), the
simulate toggle, and "Identify" per instrument showing its ``*IDN?`` reply.

Identification talks to the instrument, so it runs on a background thread, never on the GUI
thread. With "simulate" on, identifying starts a simulated 2400 on a loopback port for the
moment of the query and reaches it through the real driver over VISA — as a run does.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from drivers.base import InstrumentError
from labctl.station import InstrumentConfig, Station, load_station, open_instrument
from labctl.yamlfile import FileError

SIMULATED_ADDRESS = "simulated Keithley 2400 (loopback TCP, started per run)"


def identify(config: InstrumentConfig | None) -> str:
    """``*IDN?`` of an instrument (``None``: a simulated 2400 started for the query).

    Raises:
        drivers.base.InstrumentError: the instrument cannot be reached (names its address).
    """
    if config is None:
        from drivers.sim.cell import CELL_PRESETS
        from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer

        server = TcpServer(Keithley2400Simulator(CELL_PRESETS["hl_llzo"]))
        try:
            return identify(InstrumentConfig(driver="keithley2400", address=server.resource))
        finally:
            server.close()
    smu = open_instrument(config)
    try:
        return str(getattr(smu, "idn", "")).strip() or "(no identification)"
    finally:
        smu.close()


class _Relay(QObject):
    done = Signal(str, str, bool)  # instrument name, text, ok


class StationPanel(QWidget):
    """Instruments and how to reach them. ``simulate_changed(bool)``; ``identified(name, idn)``."""

    simulate_changed = Signal(bool)
    identified = Signal(str, str)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.station: Station | None = None
        self.station_path: Path | None = None
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.simulate_box = QCheckBox("simulate")
        self.simulate_box.setToolTip("Run on simulated instruments that speak the real wire protocol")
        self.open_button = QPushButton("Station file…")
        top.addWidget(self.simulate_box)
        top.addStretch(1)
        top.addWidget(self.open_button)
        layout.addLayout(top)
        self.source_label = QLabel("no station file")
        self.source_label.setWordWrap(True)
        layout.addWidget(self.source_label)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["instrument", "driver / address", "", "identification (*IDN?)"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        self._relay = _Relay()
        self._relay.done.connect(self._identified)
        self.simulate_box.toggled.connect(self._simulate_toggled)
        self.open_button.clicked.connect(self._open_dialog)
        self._fill()

    @property
    def simulate(self) -> bool:
        return self.simulate_box.isChecked()

    def set_simulate(self, on: bool) -> None:
        self.simulate_box.setChecked(on)

    def _simulate_toggled(self, on: bool) -> None:
        self._fill()
        self.simulate_changed.emit(on)

    def load(self, path: str | Path) -> bool:
        """Load a station file (turns simulate off). A bad file is one message line; returns
        whether it loaded."""
        try:
            station = load_station(path)
        except FileError as exc:
            self.message.emit("; ".join(exc.lines))
            return False
        self.station, self.station_path = station, Path(path).resolve()
        self.simulate_box.setChecked(False)
        self._fill()
        return True

    def _open_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open station file", "", "Station files (*.yaml *.yml)")
        if name:
            self.load(name)

    def _rows(self) -> list[tuple[str, InstrumentConfig | None]]:
        if self.simulate:
            return [("smu", None)]
        return list(self.station.instruments.items()) if self.station is not None else []

    def _fill(self) -> None:
        if self.simulate:
            self.source_label.setText("simulated station: every run starts its own simulated instruments")
        elif self.station_path is not None:
            self.source_label.setText(str(self.station_path))
        else:
            self.source_label.setText("no station file: open one, or tick simulate")
        rows = self._rows()
        self.table.setRowCount(len(rows))
        for row, (name, config) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            where = SIMULATED_ADDRESS if config is None else f"{config.driver} at {config.address}"
            self.table.setItem(row, 1, QTableWidgetItem(where))
            button = QPushButton("Identify")
            button.setObjectName(f"identify:{name}")
            button.clicked.connect(lambda _=False, n=name, c=config: self.identify(n, c))
            self.table.setCellWidget(row, 2, button)
            self.table.setItem(row, 3, QTableWidgetItem(""))

    def identify(self, name: str, config: InstrumentConfig | None) -> None:
        """Query ``*IDN?`` in the background; the reply appears in the table."""
        row = next((r for r in range(self.table.rowCount()) if self.table.item(r, 0).text() == name), None)
        if row is not None:
            self.table.item(row, 3).setText("connecting…")
        relay = self._relay

        def work() -> None:
            try:
                relay.done.emit(name, identify(config), True)
            except InstrumentError as exc:
                relay.done.emit(name, f"cannot reach: {exc}", False)

        threading.Thread(target=work, name=f"identify {name}", daemon=True).start()

    def _identified(self, name: str, text: str, ok: bool) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                self.table.item(row, 3).setText(text)
                self.table.item(row, 3).setToolTip(text)
        if ok:
            self.identified.emit(name, text)
        else:
            self.message.emit(text)

    def idn(self, name: str) -> str:
        """The identification text shown for ``name`` ('' if not identified)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                return self.table.item(row, 3).text()
        return ""
