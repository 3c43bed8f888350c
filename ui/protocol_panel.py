"""Protocol panel: open a protocol file or start from a kind, edit it in a form generated
from its pydantic model, see the step program it expands to and its planned duration, save
it as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from labctl.yamlfile import FileError, read_yaml
from protocols import KINDS, ProtocolBase, load_protocol
from ui.schema_form import SchemaForm

EXAMPLES = Path(__file__).resolve().parents[1] / "protocols" / "examples"


def format_duration(seconds: float) -> str:
    """``5400`` → ``"1.50 h"``; under an hour in minutes, under a minute in seconds."""
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def format_clock(seconds: float) -> str:
    """``5400`` → ``"1:30:00"`` (h:mm:ss)."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def set_point(step: Any, area_cm2: float) -> str:
    """What a step applies, in one short line: the current of a galvanostatic step, the bias
    range of a voltage sweep, where a tip move goes, the grid of a current map."""
    if step.kind == "voltage_sweep":
        v = step.points_V
        return f"{min(v):+.3g} … {max(v):+.3g} V, {len(v)} points"
    if step.kind == "tip_move":
        return f"tip to ({step.x_nm:g}, {step.y_nm:g}) nm" + (f", {step.site_class}" if step.site_class else "")
    if step.kind == "current_map":
        return f"{step.nx}×{step.ny} map, {step.pitch_nm:g} nm pitch at {step.bias_V:+g} V"
    current_A = getattr(step, "current_A", None)
    if current_A is None:
        return ""
    return f"{current_A * 1e3:+.4g} mA ({current_A * 1e3 / area_cm2:+.4g} mA cm⁻²)"


class StepTableModel(QAbstractTableModel):
    """The executed step sequence (loops unrolled, at most :attr:`MAX_ROWS` rows shown), with
    each step's set point and planned start."""

    HEADERS = ("step", "label", "kind", "cycle", "set point", "duration (s)", "starts at")
    MAX_ROWS = 5000

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[tuple[Any, ...]] = []

    def set_program(self, program: Any) -> None:
        """Show a :class:`~labctl.steps.StepProgram` or sweep program (``None``: empty)."""
        self.beginResetModel()
        self._rows = []
        if program is not None:
            start = 0.0
            for index, step, cycle in program.iter_steps():
                if index >= self.MAX_ROWS:
                    self._rows.append(("…", f"{program.n_steps - index} more steps", "", "", "", "", ""))
                    break
                duration = step.duration_s
                self._rows.append((index, step.label, step.kind, cycle, set_point(step, program.area_cm2),
                                   "—" if duration is None else f"{duration:g}", format_clock(start)))
                start += duration or 0.0
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return len(self.HEADERS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            return str(self._rows[index.row()][index.column()])
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None


class ProtocolPanel(QWidget):
    """Edit and check one protocol.

    Signal ``validity_changed(bool)`` fires after each validation. :attr:`protocol` is the
    validated model or ``None``; :meth:`file_for_run` gives a file the run process can read.
    """

    validity_changed = Signal(bool)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.modified = False
        self.protocol: ProtocolBase | None = None
        self.program: Any = None  # StepProgram or StepProgram
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.kind_box = QComboBox()
        self.kind_box.addItems(list(KINDS))
        self.new_button = QPushButton("New")
        self.new_button.setToolTip("Start a protocol of this kind (from its example file where there is one)")
        self.open_button = QPushButton("Open…")
        self.save_button = QPushButton("Save as…")
        top.addWidget(QLabel("kind"))
        top.addWidget(self.kind_box, 1)
        for button in (self.new_button, self.open_button, self.save_button):
            top.addWidget(button)
        layout.addLayout(top)
        self.file_label = QLabel("no protocol")
        self.file_label.setWordWrap(True)
        layout.addWidget(self.file_label)
        split = QSplitter(Qt.Orientation.Vertical)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        split.addWidget(self.scroll)
        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        self.duration_label = QLabel("")
        self.duration_label.setStyleSheet("font-weight: bold;")
        table_layout.addWidget(self.duration_label)
        self.step_model = StepTableModel()
        self.step_table = QTableView()
        self.step_table.setModel(self.step_model)
        self.step_table.verticalHeader().setVisible(False)
        self.step_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table_layout.addWidget(self.step_table)
        split.addWidget(table_box)
        split.setSizes([420, 260])
        layout.addWidget(split, 1)
        self.form: SchemaForm | None = None
        self._validate_timer = QTimer(self)
        self._validate_timer.setSingleShot(True)
        self._validate_timer.setInterval(250)
        self._validate_timer.timeout.connect(self.validate)
        self.new_button.clicked.connect(lambda: self.new_protocol(self.kind_box.currentText()))
        self.open_button.clicked.connect(self._open_dialog)
        self.save_button.clicked.connect(self._save_dialog)

    # -- loading -----------------------------------------------------------------------------
    def _show(self, kind: str, data: dict[str, Any]) -> None:
        self.kind_box.setCurrentText(kind)
        self.form = SchemaForm(KINDS[kind], data)
        self.form.changed.connect(self._edited)
        self.scroll.setWidget(self.form)
        self.validate()

    def new_protocol(self, kind: str) -> None:
        """A new protocol of ``kind``: its example file's values where there is one, else defaults."""
        example = next((p for p in sorted(EXAMPLES.glob("*.yaml")) if _kind_of(p) == kind), None)
        data = read_yaml(example)[0] if example is not None else {"kind": kind}
        self.path = None
        self.modified = True
        self.file_label.setText(f"new {kind} protocol (unsaved)")
        self._show(kind, data)

    def load(self, path: str | Path) -> bool:
        """Open a protocol file; a bad file is reported (one line per problem) and not loaded.

        Returns whether it loaded. The file must at least parse and name a known kind; field
        errors are shown at the fields.
        """
        path = Path(path)
        try:
            data, _, _ = read_yaml(path)
            kind = data.get("kind")
            if kind not in KINDS:
                load_protocol(path)  # raises the one-line error naming the kind
        except FileError as exc:
            self.message.emit("; ".join(exc.lines))
            return False
        self.path = path.resolve()
        self.modified = False
        self.file_label.setText(str(self.path))
        self._show(kind, data)
        return True

    def _open_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open protocol", str(EXAMPLES), "Protocol files (*.yaml *.yml)")
        if name:
            self.load(name)

    def _save_dialog(self) -> None:
        if self.validate() is None:
            self.message.emit("fix the fields marked in red before saving")
            return
        start = str(self.path or Path.cwd() / f"{self.kind_box.currentText()}.yaml")
        name, _ = QFileDialog.getSaveFileName(self, "Save protocol", start, "Protocol files (*.yaml)")
        if name:
            self.save(name)

    # -- checking and saving -------------------------------------------------------------------
    def _edited(self) -> None:
        self.modified = True
        if self.path is not None:
            self.file_label.setText(f"{self.path} (modified)")
        self._validate_timer.start()

    def validate(self) -> ProtocolBase | None:
        """Validate the form: errors at the fields; on success the step table and duration."""
        self.protocol = self.form.validate() if self.form is not None else None
        self.program = None
        if self.protocol is not None:
            try:
                self.program = self.protocol.program()
            except ValueError as exc:  # the step program's own limits
                self.form.general_error.setText(str(exc))
                self.form.general_error.setVisible(True)
                self.protocol = None
        self.step_model.set_program(self.program)
        if self.program is not None:
            self.duration_label.setText(f"{self.program.n_steps:,} steps, planned "
                                        f"{format_duration(self.program.planned_duration_s)}")
        else:
            self.duration_label.setText("not valid: see the fields marked in red")
        self.validity_changed.emit(self.protocol is not None)
        return self.protocol

    def instruments(self) -> dict[str, str]:
        """The instruments the valid protocol uses, name in the station file → driver: its
        sourcemeter, and for a tip electrode the AFM controller ({} while invalid)."""
        protocol, program = self.protocol, self.program
        if protocol is None or program is None:
            return {}
        out = {protocol.instrument: "keithley2400"}
        if getattr(program, "electrode", None) == "tip":
            out[protocol.afm] = "nanonis"
        return out

    def yaml_text(self) -> str:
        """The validated protocol as YAML (``kind`` first). Raises ValueError if invalid."""
        protocol = self.validate()
        if protocol is None:
            raise ValueError("the protocol is not valid")
        data = protocol.model_dump(mode="json", exclude_none=True)
        data = {"kind": data.pop("kind"), **data}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> Path:
        """Write the validated protocol to ``path``; it becomes the panel's file."""
        path = Path(path)
        path.write_text(self.yaml_text(), encoding="utf-8")
        self.path = path.resolve()
        self.modified = False
        self.file_label.setText(str(self.path))
        return self.path

    def file_for_run(self, run_file: Path) -> Path:
        """The file to run: the opened file if unmodified, else the form saved as
        ``<run file>.yaml`` beside the run (the run file stores the text either way)."""
        if self.path is not None and not self.modified:
            return self.path
        path = run_file.with_suffix(".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.yaml_text(), encoding="utf-8")
        return path


def _kind_of(path: Path) -> str | None:
    try:
        return read_yaml(path)[0].get("kind")
    except FileError:
        return None
