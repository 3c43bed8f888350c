"""Run control: start, pause, resume, stop, emergency stop; the output state and the run's
state, always visible."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

#: Speeds offered for simulated runs (simulated seconds per wall second).
SPEEDS = ("max", "1", "60", "600", "3600")

_OUTPUT_STYLES = {
    "on": ("OUTPUT ON", "background: #c62828; color: white;"),
    "off": ("OUTPUT OFF", "background: #2e7d32; color: white;"),
    "unknown": ("OUTPUT ?", "background: #9e9e9e; color: white;"),
}


class RunPanel(QWidget):
    """Buttons and indicators for the run in view.

    Signals: ``start_requested(speed: str)`` and ``command_requested(name)`` with ``pause``,
    ``resume``, ``stop`` or ``emergency_stop``.
    """

    start_requested = Signal(str)
    command_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        self.speed_box = QComboBox()
        self.speed_box.setEditable(True)
        self.speed_box.addItems(list(SPEEDS))
        self.speed_box.setCurrentText("600")
        self.speed_box.setToolTip("Simulated seconds per wall second ('max': as fast as the link allows)")
        self.speed_label = QLabel("speed ×")
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.estop_button = QPushButton("EMERGENCY STOP")
        self.estop_button.setObjectName("emergency_stop")
        self.estop_button.setToolTip("End the run now and turn the output off (also: Esc)")
        self.estop_button.setStyleSheet("QPushButton { background: #b71c1c; color: white; font-weight: bold;"
                                        " padding: 6px 14px; } QPushButton:disabled { background: #e0a0a0; }")
        self.state_label = QLabel("no run")
        self.state_label.setMinimumWidth(150)
        self.output_label = QLabel()
        self.output_label.setObjectName("output_state")
        self.output_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.output_label.setMinimumWidth(110)
        for widget in (self.speed_label, self.speed_box, self.start_button, self.pause_button, self.resume_button,
                       self.stop_button, self.estop_button):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.state_label)
        layout.addWidget(self.output_label)
        self.start_button.clicked.connect(lambda: self.start_requested.emit(self.speed_box.currentText()))
        self.pause_button.clicked.connect(lambda: self.command_requested.emit("pause"))
        self.resume_button.clicked.connect(lambda: self.command_requested.emit("resume"))
        self.stop_button.clicked.connect(lambda: self.command_requested.emit("stop"))
        self.estop_button.clicked.connect(lambda: self.command_requested.emit("emergency_stop"))
        self.output = "unknown"
        self.set_state(None, "unknown", can_start=False)

    def set_simulated(self, simulated: bool) -> None:
        self.speed_box.setVisible(simulated)
        self.speed_label.setVisible(simulated)

    def set_state(self, state: str | None, output: str, *, can_start: bool, controllable: bool = False) -> None:
        """Show the engine state (``None``: no run) and the output (``on``/``off``/``unknown``);
        enable the buttons that make sense."""
        self.output = output
        text, style = _OUTPUT_STYLES[output]
        self.output_label.setText(text)
        self.output_label.setStyleSheet(style + " font-weight: bold; padding: 6px; border-radius: 3px;")
        self.state_label.setText("no run" if state is None else f"run: {state}")
        live = controllable and state in ("running", "pausing", "paused", "stopping")
        self.start_button.setEnabled(can_start and not live)
        self.pause_button.setEnabled(live and state == "running")
        self.resume_button.setEnabled(live and state in ("pausing", "paused"))
        self.stop_button.setEnabled(live and state != "stopping")
        self.estop_button.setEnabled(live)
