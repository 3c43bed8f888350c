"""Run control: start, pause, resume, stop, emergency stop; the output state and the run's
state, always visible.

A press is acknowledged at once: *Pause* shows "pausing…", *Stop* and *Emergency stop*
"stopping…", *Resume* "resuming…" (:meth:`RunPanel.press`, on the GUI thread before the command
goes out), and the confirmed state replaces it when the engine reports it (the run's control
socket). ``benchmarks/bench_gui.py`` measures the time from the press to the words on screen.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

#: Speeds offered for simulated runs (simulated seconds per wall second).
SPEEDS = ("max", "1", "60", "600", "3600")

_OUTPUT_STYLES = {
    "on": ("OUTPUT ON", "background: #c62828; color: white;"),
    "off": ("OUTPUT OFF", "background: #2e7d32; color: white;"),
    "unknown": ("OUTPUT ?", "background: #9e9e9e; color: white;"),
}
#: What a pressed command shows until the engine confirms, and the state that confirms it.
PENDING = {"pause": ("pausing…", ("paused",)), "resume": ("resuming…", ("running",)),
           "stop": ("stopping…", ("ended",)), "emergency_stop": ("stopping…", ("ended",))}
#: How the engine's own states read.
STATE_WORDS = {"pausing": "pausing…", "stopping": "stopping…"}
#: Seconds a pressed command may wait for its confirmation before the panel says so.
CONFIRM_TIMEOUT_S = 30.0


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
        layout.setContentsMargins(4, 2, 4, 2)
        self.speed_box = QComboBox()
        self.speed_box.setEditable(True)
        self.speed_box.addItems(list(SPEEDS))
        self.speed_box.setCurrentText("600")
        self.speed_box.setMaximumWidth(80)
        self.speed_box.setToolTip("Simulated seconds per wall second ('max': as fast as the computer can)")
        self.speed_label = QLabel("speed ×")
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.estop_button = QPushButton("EMERGENCY STOP")
        self.estop_button.setObjectName("emergency_stop")
        self.estop_button.setToolTip("End the run now and turn the output off (also: Esc)")
        self.estop_button.setStyleSheet("QPushButton { background: #b71c1c; color: white; font-weight: bold;"
                                        " padding: 6px 12px; } QPushButton:disabled { background: #e0a0a0; }")
        self.estop_button.setMinimumWidth(self.estop_button.fontMetrics().horizontalAdvance("EMERGENCY STOP") + 36)
        self.estop_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.state_label = QLabel("no run")
        self.state_label.setObjectName("run_state")
        self.state_label.setMinimumWidth(140)
        self.state_label.setStyleSheet("font-size: 12pt; font-weight: bold;")
        self.output_label = QLabel()
        self.output_label.setObjectName("output_state")
        self.output_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.output_label.setMinimumWidth(100)
        for widget in (self.speed_label, self.speed_box, self.start_button, self.pause_button, self.resume_button,
                       self.stop_button):
            layout.addWidget(widget)
        for button in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + 22)
            button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            button.setStyleSheet("QPushButton { padding: 5px 8px; }")
        layout.setSpacing(4)
        layout.addSpacing(8)
        layout.addWidget(self.estop_button)
        layout.addStretch(1)
        layout.addWidget(self.state_label)
        layout.addWidget(self.output_label)
        self.start_button.clicked.connect(lambda: self.start_requested.emit(self.speed_box.currentText()))
        self.pause_button.clicked.connect(lambda: self.press("pause"))
        self.resume_button.clicked.connect(lambda: self.press("resume"))
        self.stop_button.clicked.connect(lambda: self.press("stop"))
        self.estop_button.clicked.connect(lambda: self.press("emergency_stop"))
        self.output = "unknown"
        self.pending: tuple[str, float] | None = None  # (command, monotonic time of the press)
        self._state: str | None = None
        self._output = "unknown"
        self._can_start = False
        self._controllable = False
        self.set_state(None, "unknown", can_start=False)

    def set_simulated(self, simulated: bool) -> None:
        self.speed_box.setVisible(simulated)
        self.speed_label.setVisible(simulated)

    def press(self, command: str) -> None:
        """A command button was pressed: say so now ("pausing…"), then ask for it."""
        if command in PENDING and (self.pending is None or self.pending[0] != "emergency_stop"):
            self.pending = (command, time.monotonic())
        self._show()
        self.command_requested.emit(command)

    def command_failed(self, command: str) -> None:
        """The run refused or did not hear ``command``: back to what it reports."""
        if self.pending is not None and self.pending[0] == command:
            self.pending = None
        self._show()

    def set_state(self, state: str | None, output: str, *, can_start: bool, controllable: bool = False) -> None:
        """Show the engine state (``None``: no run) and the output (``on``/``off``/``unknown``);
        enable the buttons that make sense. A pressed command's words stay until the state it
        waits for is reported (or the run has ended)."""
        self._state, self._output, self._can_start, self._controllable = state, output, can_start, controllable
        if self.pending is not None:
            command, pressed = self.pending
            confirmed = PENDING[command][1]
            if state is None or any(state.startswith(c) for c in confirmed) or not controllable \
                    or time.monotonic() - pressed > CONFIRM_TIMEOUT_S:
                self.pending = None
        self._show()

    def _show(self) -> None:
        state, output = self._state, self._output
        self.output = output
        text, style = _OUTPUT_STYLES[output]
        if self.output_label.text() != text:
            self.output_label.setText(text)
            self.output_label.setStyleSheet(style + " font-weight: bold; padding: 6px; border-radius: 3px;")
        if self.pending is not None:
            words = PENDING[self.pending[0]][0]
        elif state is None:
            words = None
        else:
            words = STATE_WORDS.get(state, state)
        label = "no run" if words is None else f"run: {words}"
        if self.state_label.text() != label:
            self.state_label.setText(label)
        live = self._controllable and state in ("running", "pausing", "paused", "stopping")
        pending = self.pending[0] if self.pending is not None else None
        stopping = state == "stopping" or pending in ("stop", "emergency_stop")
        held = state in ("pausing", "paused") or pending == "pause"
        self.start_button.setEnabled(self._can_start and not live)
        self.pause_button.setEnabled(live and not held and not stopping and pending != "resume")
        self.resume_button.setEnabled(live and (held or pending == "pause") and not stopping and pending != "resume")
        self.stop_button.setEnabled(live and not stopping)
        self.estop_button.setEnabled(live)
