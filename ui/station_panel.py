"""Station panel: the instruments (from a station file, or the simulated station), the
simulate toggle, and "Identify" per instrument showing its ``*IDN?`` reply (an AFM
controller: its interface).

Identification talks to the instrument, so it runs on a background thread, never on the GUI
thread. With "simulate" on, the panel lists the instruments the protocol needs (a 2400; for a
tip electrode also the AFM controller) and identifying starts a simulator of that instrument
on a loopback port for the moment of the query and reaches it through the real driver — as a
run does.
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
from labctl.app import simulated
from labctl.station import InstrumentConfig, Station, load_station
from labctl.station import identify as identify_instrument
from labctl.yamlfile import FileError

#: What the simulated station puts behind each driver (one per run, on free loopback ports).
SIMULATED = {
    "keithley2400": "simulated Keithley 2400 (SCPI, loopback TCP)",
    "nanonis": "simulated AFM controller (Nanonis TCP, loopback)",
    "biologic": "simulated BioLogic channel as a potentiostat (in the run's process)",
    "binder": "simulated BINDER chamber (MODBus, loopback TCP)",
}
#: Simulated drivers that answer an identification query here (the others live in the run's process).
IDENTIFIABLE = ("keithley2400", "nanonis")
SIMULATED_ADDRESS = SIMULATED["keithley2400"]


def identify(config: InstrumentConfig | None, driver: str = "keithley2400") -> str:
    """The identification of an instrument (:func:`labctl.station.identify`): ``*IDN?`` of a
    sourcemeter, the interface of an AFM controller, a cycler channel's identification.
    ``config=None``: a simulator of ``driver`` started for the query and reached through the
    real driver.

    Raises:
        drivers.base.InstrumentError: the instrument cannot be reached (names its address).
        ValueError: no simulator of that driver.
    """
    if config is None:
        return simulated.identify_simulated(driver)
    return identify_instrument(config)


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
        self.simulated: dict[str, str] = {"smu": "keithley2400"}  # name → driver, from the protocol
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
        # the button before the long texts: a cell widget scrolled out of view is drawn at (0, 0)
        self.table.setHorizontalHeaderLabels(["instrument", "", "driver / address", "identification (*IDN?)"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.table.horizontalHeader()
        for column, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.ResizeToContents,
                                       QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.Stretch)):
            header.setSectionResizeMode(column, mode)  # the long texts share the width, wrapped
        self.table.setWordWrap(True)
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

    def set_simulated_instruments(self, instruments: dict[str, str]) -> None:
        """The instruments the protocol needs (name → driver), shown for the simulated station."""
        if instruments and instruments != self.simulated:
            self.simulated = dict(instruments)
            if self.simulate:
                self._fill()

    def _rows(self) -> list[tuple[str, InstrumentConfig | None]]:
        if self.simulate:
            return [(name, None) for name in self.simulated]
        return list(self.station.instruments.items()) if self.station is not None else []

    def _fill(self) -> None:
        if self.simulate:
            self.source_label.setText("simulated station: every run starts its own simulated instruments "
                                      "on free loopback ports")
        elif self.station_path is not None:
            self.source_label.setText(str(self.station_path))
        else:
            self.source_label.setText("no station file: open one, or tick simulate")
        rows = self._rows()
        for row in range(self.table.rowCount()):  # Qt deletes replaced cell widgets later: hide them now
            old = self.table.cellWidget(row, 1)
            if old is not None:
                old.hide()
        self.table.setRowCount(0)
        self.table.setRowCount(len(rows))
        for row, (name, config) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            where = (SIMULATED.get(self.simulated[name], f"simulated {self.simulated[name]}") if config is None
                     else f"{config.driver} at {config.address}")
            item = QTableWidgetItem(where)
            item.setToolTip(where)
            self.table.setItem(row, 2, item)
            button = QPushButton("Identify")
            button.setObjectName(f"identify:{name}")
            button.clicked.connect(lambda _=False, n=name, c=config: self.identify(n, c))
            self.table.setCellWidget(row, 1, button)
            self.table.setItem(row, 3, QTableWidgetItem(""))

    def identify(self, name: str, config: InstrumentConfig | None) -> None:
        """Query ``*IDN?`` in the background; the reply appears in the table."""
        row = next((r for r in range(self.table.rowCount()) if self.table.item(r, 0).text() == name), None)
        if row is not None:
            self.table.item(row, 3).setText("connecting…")
        relay = self._relay
        driver = self.simulated.get(name, "keithley2400")
        if config is None and driver not in IDENTIFIABLE:
            self._identified(name, f"{SIMULATED.get(driver, driver)}: identified in the run file when it starts", True)
            return

        def work() -> None:
            try:
                relay.done.emit(name, identify(config, driver), True)
            except (InstrumentError, ValueError, OSError) as exc:
                relay.done.emit(name, f"cannot reach: {exc}", False)

        threading.Thread(target=work, name=f"identify {name}", daemon=True).start()

    def _identified(self, name: str, text: str, ok: bool) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                # *IDN? is maker, model, serial, firmware: the firmware only in the tooltip
                shown = ", ".join(part.strip() for part in text.split(",")[:3]) if ok else text
                self.table.item(row, 3).setText(shown)
                self.table.item(row, 3).setToolTip(text)
        if ok:
            self.identified.emit(name, text)
        else:
            self.message.emit(text)

    def idn(self, name: str) -> str:
        """The identification text shown for ``name`` ('' if not identified)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                return self.table.item(row, 3).toolTip() or self.table.item(row, 3).text()
        return ""
