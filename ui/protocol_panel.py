"""Protocol panel: open a protocol file or start from a kind, edit it in a form generated
from its pydantic model, see the step program it expands to and its planned duration, save
it as YAML.

*Save as…* offers a new file in the user's protocols folder (:func:`user_protocols_dir`), never
the file opened (an example of the package, say), and keeps the opened file's comments — the
seed citations — through the form (ruamel.yaml round trip, :func:`round_trip_yaml`). The
protocol of a run opened for review or followed is shown read-only, from its run file
(:meth:`ProtocolPanel.show_run_protocol`); *Edit a copy* makes it a new protocol.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

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

from labctl.yamlfile import FileError, parse_yaml, read_yaml
from protocols import KINDS, ProtocolBase, load_protocol
from ui.progress import format_clock, format_duration
from ui.schema_form import SchemaForm
from ui.text import tidy

EXAMPLES = Path(__file__).resolve().parents[1] / "protocols" / "examples"


def user_protocols_dir() -> Path:
    """Where *Save as…* offers to save: ``$LABCTL_PROTOCOLS``, else ``~/labctl/protocols``."""
    return Path(os.environ.get("LABCTL_PROTOCOLS") or Path.home() / "labctl" / "protocols")


def new_file_name(directory: Path, kind: str, name: str) -> Path:
    """A file in ``directory`` that does not exist yet, named from the protocol's name
    (``ccd_staircase_li_llzo_li.yaml``, then ``…-2.yaml`` …)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40]
    stem = f"{kind}_{slug}" if slug and not slug.startswith(kind) else (slug or kind)
    path = directory / f"{stem}.yaml"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}.yaml"
    return path


def round_trip_yaml(original_text: str | None, data: dict[str, Any]) -> str:
    """``data`` as YAML, keeping the comments and key order of ``original_text`` (the file the
    form was loaded from) where its keys remain (ruamel.yaml round trip); ``kind`` first."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    ry = YAML()
    ry.preserve_quotes = True
    ry.width = 100
    doc = ry.load(original_text) if original_text else None
    if not isinstance(doc, CommentedMap):
        doc = CommentedMap()

    def merge(target: CommentedMap, new: dict[str, Any]) -> None:
        for key in [k for k in target if k not in new]:
            del target[key]
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(target.get(key), CommentedMap):
                merge(target[key], value)
            elif target.get(key) != value or key not in target:
                target[key] = value

    data = {"kind": data["kind"], **{k: v for k, v in data.items() if k != "kind"}}
    merge(doc, data)
    if list(doc)[:1] != ["kind"]:
        doc.move_to_end("kind", last=False)
    out = io.StringIO()
    ry.dump(doc, out)
    return out.getvalue()


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
                self._rows.append((index, tidy(step.label), step.kind, cycle, set_point(step, program.area_cm2),
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
    :attr:`read_only` is set while a run's own protocol is shown (:meth:`show_run_protocol`).
    """

    validity_changed = Signal(bool)
    message = Signal(str)
    loaded = Signal()  # another protocol was loaded (a file, a new one): the window clears a finished run

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.modified = False
        self.read_only = False
        self.protocol: ProtocolBase | None = None
        self.program: Any = None  # StepProgram or StepProgram
        self._source_text: str | None = None  # the YAML the form was loaded from (its comments are kept)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.kind_box = QComboBox()
        self.kind_box.addItems(list(KINDS))
        self.new_button = QPushButton("New")
        self.new_button.setToolTip("Start a protocol of this kind (from its example file where there is one)")
        self.open_button = QPushButton("Open…")
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip(f"Save as a new file (offered in {user_protocols_dir()}), comments kept")
        self.copy_button = QPushButton("Edit a copy")
        self.copy_button.setToolTip("Make this run's protocol a new, editable protocol")
        self.copy_button.setVisible(False)
        top.addWidget(QLabel("kind"))
        top.addWidget(self.kind_box, 1)
        top.addWidget(self.new_button)
        layout.addLayout(top)
        files = QHBoxLayout()
        for button in (self.open_button, self.save_button, self.copy_button):
            files.addWidget(button)
        files.addStretch(1)
        layout.addLayout(files)
        self.file_label = QLabel("no protocol")
        self.file_label.setWordWrap(True)
        layout.addWidget(self.file_label)
        self.error_label = QLabel("")
        self.error_label.setObjectName("protocol_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b71c1c; font-weight: bold; background: #fdecea; padding: 4px;")
        self.error_label.setVisible(False)
        layout.addWidget(self.error_label)
        split = QSplitter(Qt.Orientation.Vertical)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        split.addWidget(self.scroll)
        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        self.duration_label = QLabel("")
        self.duration_label.setStyleSheet("font-weight: bold;")
        self.duration_label.setWordWrap(True)
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
        self.copy_button.clicked.connect(self.edit_copy)

    # -- loading -----------------------------------------------------------------------------
    def _show(self, kind: str, data: dict[str, Any], *, read_only: bool = False) -> None:
        self.read_only = read_only
        self.kind_box.setCurrentText(kind)
        self.form = SchemaForm(KINDS[kind], data, general_in_form=False)
        self.form.changed.connect(self._edited)
        if read_only:
            self.form.set_read_only()
        self.scroll.setWidget(self.form)
        self.copy_button.setVisible(read_only)
        for widget in (self.kind_box, self.new_button, self.save_button):
            widget.setEnabled(True)
        self.validate()

    def new_protocol(self, kind: str) -> None:
        """A new protocol of ``kind``: its example file's values where there is one, else defaults."""
        example = next((p for p in sorted(EXAMPLES.glob("*.yaml")) if _kind_of(p) == kind), None)
        data = read_yaml(example)[0] if example is not None else {"kind": kind}
        self._source_text = example.read_text(encoding="utf-8") if example is not None else None
        self.path = None
        self.modified = True
        self.file_label.setText(f"new {kind} protocol (unsaved)")
        self._show(kind, data)
        self.loaded.emit()

    def load(self, path: str | Path) -> bool:
        """Open a protocol file; a bad file is reported (one line per problem) and not loaded.

        Returns whether it loaded. The file must at least parse and name a known kind; field
        errors are shown at the fields.
        """
        path = Path(path)
        try:
            data, _, text = read_yaml(path)
            kind = data.get("kind")
            if kind not in KINDS:
                load_protocol(path)  # raises the one-line error naming the kind
        except FileError as exc:
            self.message.emit("; ".join(exc.lines))
            return False
        self.path = path.resolve()
        self._source_text = text
        self.modified = False
        self.file_label.setText(str(self.path))
        self._show(kind, data)
        self.loaded.emit()
        return True

    def show_run_protocol(self, attrs: dict[str, Any], run_name: str) -> bool:
        """Show the protocol a run file stores (``protocol_text``), read-only. Returns whether
        there was one to show."""
        text = str(attrs.get("protocol_text", "") or "")
        name = Path(str(attrs.get("protocol_path") or "protocol.yaml")).name
        try:
            data, _node = parse_yaml(text, name)
        except FileError:
            return False
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind not in KINDS:
            return False
        self.path = None
        self._source_text = text
        self.modified = False
        self.file_label.setText(f"protocol of {run_name} ({name}), read-only: as stored in the run file")
        self._show(kind, data, read_only=True)
        return True

    def edit_copy(self) -> None:
        """The run's protocol shown read-only becomes a new, editable protocol."""
        if self.form is None:
            return
        data = self.form.data()
        self._show(self.kind_box.currentText(), data)
        self.modified = True
        self.file_label.setText(f"new {self.kind_box.currentText()} protocol (a copy of a run's; unsaved)")

    def _open_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open protocol", str(self.path.parent if self.path else EXAMPLES),
                                              "Protocol files (*.yaml *.yml)")
        if name:
            self.load(name)

    def default_save_path(self) -> Path:
        """A new file in the user's protocols folder, named from the protocol (never the file
        opened: an example of the package, or a run's own)."""
        directory = user_protocols_dir()
        name = str(getattr(self.protocol, "name", "") or "")
        return new_file_name(directory, self.kind_box.currentText(), name)

    def _save_dialog(self) -> None:
        if self.validate() is None:
            self.message.emit("fix the protocol before saving: " + self._problem())
            return
        start = self.default_save_path()
        start.parent.mkdir(parents=True, exist_ok=True)
        name, _ = QFileDialog.getSaveFileName(self, "Save protocol as a new file", str(start), "Protocol files (*.yaml)")
        if name:
            self.save(name)

    # -- checking and saving -------------------------------------------------------------------
    def _edited(self) -> None:
        self.modified = True
        if self.path is not None:
            self.file_label.setText(f"{self.path} (modified)")
        self._validate_timer.start()

    def _problem(self) -> str:
        """What is wrong, in one line: the whole-protocol error, or the fields marked in red."""
        errors = self.form.errors() if self.form is not None else {}
        if errors.get(""):
            return errors[""].replace("\n", "; ")
        from ui.schema_form import label_of

        names = [label_of(key.rsplit(".", 1)[-1]) for key in errors]
        return ("the fields marked in red: " + ", ".join(names[:4]) + (" …" if len(names) > 4 else "")) if names \
            else "the protocol is not valid"

    def validate(self) -> ProtocolBase | None:
        """Validate the form: errors at the fields (a whole-protocol error beside the fields it
        names and above the form); on success the step table and duration."""
        self.protocol = self.form.validate() if self.form is not None else None
        self.program = None
        if self.protocol is not None:
            try:
                self.program = self.protocol.program()
            except ValueError as exc:  # the step program's own limits
                self.form.set_general([f"the step program: {exc}"])
                self.protocol = None
        self.step_model.set_program(self.program)
        general = self.form.general_messages if self.form is not None else []
        self.error_label.setText("\n".join(general))
        self.error_label.setVisible(bool(general))
        if self.program is not None:
            self.duration_label.setText(f"{self.program.n_steps:,} steps, planned "
                                        f"{format_duration(self.program.planned_duration_s)}"
                                        + _estimate_note(self.program))
        elif self.form is not None:
            self.duration_label.setText("not valid: " + self._problem())
        else:
            self.duration_label.setText("")
        self.validity_changed.emit(self.protocol is not None and not self.read_only)
        return self.protocol

    def instruments(self) -> dict[str, str]:
        """The instruments the valid protocol uses, name in the station file → driver: its
        sourcemeter (a BioLogic channel for impedance, LSV or temperature steps), for a tip
        electrode the AFM controller, for temperature steps the chamber ({} while invalid)."""
        from labctl.steps import SOFTWARE_ONLY, program_kinds

        protocol, program = self.protocol, self.program
        if protocol is None or program is None:
            return {}
        kinds = program_kinds(program)
        out = {protocol.instrument: "biologic" if kinds & SOFTWARE_ONLY else "keithley2400"}
        if getattr(program, "electrode", None) == "tip":
            out[protocol.afm] = "nanonis"
        if "set_temperature" in kinds:
            out[getattr(protocol, "chamber", "chamber")] = "binder"
        return out

    def yaml_text(self) -> str:
        """The validated protocol as YAML (``kind`` first), with the comments of the file it
        was loaded from. Raises ValueError if invalid."""
        protocol = self.validate()
        if protocol is None or self.form is None:
            raise ValueError("the protocol is not valid")
        data = self.form.data()
        # the form's values as the model reads them (numbers as numbers), keys as the file had them
        checked = protocol.model_dump(mode="json", exclude_none=True)
        for key in [k for k in data if k not in checked and data[k] is None]:
            data.pop(key)
        return round_trip_yaml(self._source_text, data)

    def save(self, path: str | Path) -> Path:
        """Write the validated protocol to ``path``; it becomes the panel's file."""
        path = Path(path)
        text = self.yaml_text()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.path = path.resolve()
        self._source_text = text
        self.modified = False
        self.read_only = False
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


def _estimate_note(program: Any) -> str:
    """What the planned duration leaves out, if anything: an instrument's own sweeps are
    estimated from their points; tip moves and current maps have no estimate."""
    from labctl.steps import program_kinds

    kinds = program_kinds(program)
    missing = [word for kind, word in (("tip_move", "tip moves"), ("current_map", "current maps")) if kind in kinds]
    if missing:
        return f" + {' and '.join(missing)} (not estimated); the remaining time follows the run's pace"
    if "voltage_sweep" in kinds:
        return " (sweeps: the instrument's own timing; the bus adds a little)"
    return ""


def _kind_of(path: Path) -> str | None:
    try:
        return read_yaml(path)[0].get("kind")
    except FileError:
        return None
