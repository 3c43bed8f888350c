"""A form generated from a pydantic model's JSON schema, with units and errors at the field.

Every property becomes a row: its name in words with its unit, read from the name's suffix
(house rule: units in names: ``electrolyte_thickness_um`` → "Electrolyte thickness (µm)";
the name as in the YAML file is in the tooltip), and an editor (line edit for numbers and
text, check box for booleans, a choice for enumerations such as ``site_class``, a fixed label
for constants such as ``kind``, comma-separated text for lists of numbers). Nested models
(``cell``, ``detection``) become group boxes; optional ones (``map``, ``activation``) a box
with a tick (unticked: left out). Lists of small models (the ``sites`` and ``transects`` of a
c-AFM protocol) become tables with a row per item. :meth:`SchemaForm.validate`
runs the model's own validation and puts each error beside its field; an error of the whole
model ("stop_mA_cm2 (0.2) is below start_mA_cm2 (0.5)", "give exactly one of half_cycle_s and
areal_capacity_mAh_cm2") goes beside every field it names, and to :attr:`SchemaForm.general_error`,
which the protocol panel keeps in view above the form. Keys the form does not show (extra keys
of ``simulated_cell``) are kept.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: Name suffix → unit shown beside the field (longest suffix first when matching).
UNIT_SUFFIXES: dict[str, str] = {
    "_mAh_cm2": "mAh cm⁻²",
    "_uA_cm2": "µA cm⁻²",
    "_S_cm": "S cm⁻¹",
    "_mV_s": "mV s⁻¹",
    "_V_s": "V s⁻¹",
    "_nm2": "nm²",
    "_GPa": "GPa",
    "_nN": "nN",
    "_deg": "°",
    "_min": "min",
    "_K": "K",
    "_eV": "eV",
    "_ohm": "Ω",
    "_mA_cm2": "mA cm⁻²",
    "_ohm_cm2": "Ω cm²",
    "_cm2": "cm²",
    "_mA": "mA",
    "_uA": "µA",
    "_nA": "nA",
    "_A": "A",
    "_mV": "mV",
    "_V": "V",
    "_MPa": "MPa",
    "_um": "µm",
    "_nm": "nm",
    "_ms": "ms",
    "_s": "s",
    "_h": "h",
    "_Hz": "Hz",
    "_C": "C",
}
#: Names whose suffix would mislead (``temperature_C`` is °C, not coulomb).
UNIT_NAMES: dict[str, str] = {"temperature_C": "°C"}

_ERROR_STYLE = "border: 1px solid #d32f2f; background: #fdecea;"


#: Abbreviations written in capitals in the labels.
ACRONYMS = {"ccd": "CCD", "eis": "EIS", "ocv": "OCV", "asr": "ASR", "nplc": "NPLC", "dc": "DC", "ac": "AC",
            "afm": "AFM", "smu": "SMU", "gb": "GB", "gi": "GI", "hl": "HL", "lsv": "LSV", "cv": "CV", "cc": "CC",
            "hrs": "HRS", "lrs": "LRS", "sse": "SSE", "fse": "FSE", "llzo": "LLZO", "peis": "PEIS", "geis": "GEIS",
            "iv": "I–V", "id": "ID", "r2": "R²", "de": "ΔE", "sei": "SEI", "li": "Li", "nn": "nN"}


def words_of(name: str) -> str:
    """A field name without its unit, in words: ``electrolyte_thickness_um`` →
    ``Electrolyte thickness``, ``ccd_mA_cm2`` → ``CCD``."""
    unit = unit_of(name)
    stem = name
    if unit:
        if name in UNIT_NAMES:
            stem = name.rsplit("_", 1)[0]
        else:
            for suffix in sorted(UNIT_SUFFIXES, key=len, reverse=True):
                if name.endswith(suffix):
                    stem = name[: -len(suffix)]
                    break
    words = [ACRONYMS.get(w.lower(), w) for w in stem.strip("_").split("_") if w]
    if not words:
        return name
    first = words[0]
    keep = first in ACRONYMS.values() or any(c.isupper() for c in first[1:]) or len(first) == 1
    words[0] = first if keep else first.capitalize()
    return " ".join(words)


def label_of(name: str) -> str:
    """The form's label of a field: its words and unit, ``Electrolyte thickness (µm)``."""
    unit = unit_of(name)
    return f"{words_of(name)} ({unit})" if unit else words_of(name)


def unit_of(name: str) -> str:
    """The unit a field name carries (``"start_mA_cm2"`` → ``"mA cm⁻²"``), or ``""``."""
    if name in UNIT_NAMES:
        return UNIT_NAMES[name]
    for suffix in sorted(UNIT_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return UNIT_SUFFIXES[suffix]
    return ""


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        ref = defs[schema["$ref"].split("/")[-1]]
        return {**ref, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _object(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(the object schema, optional) of a nested model property (``X`` or ``anyOf [X, null]``),
    or ``(None, False)`` for anything else."""
    options = schema.get("anyOf", [schema])
    objects = [_resolve(s, defs) for s in options if s.get("type") != "null"]
    if len(objects) == 1 and objects[0].get("type") == "object" and "properties" in objects[0]:
        return objects[0], len(options) > 1
    return None, False


def _scalar(schema: dict[str, Any]) -> tuple[str, bool]:
    """(kind, optional) of a leaf property; ``anyOf [X, null]`` is an optional X.

    Kinds: the JSON types ``number``, ``integer``, ``string``, ``boolean``; ``const``
    (a fixed value such as ``kind``); ``enum`` (one of a few strings); ``array`` (a list of
    numbers or strings, edited as comma-separated text).
    """
    optional = False
    if "anyOf" in schema:
        rest = [s for s in schema["anyOf"] if s.get("type") != "null"]
        optional = len(rest) < len(schema["anyOf"])
        schema = rest[0] if rest else {"type": "string"}
    if "const" in schema:
        return "const", optional
    if "enum" in schema:
        return "enum", optional
    return schema.get("type", "string"), optional


def _parse_number(text: str, kind: str) -> Any:
    """Text → int/float for the model; unparsable text is passed on for the model to name."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if kind == "integer" and number.is_integer() else number


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_format(v) for v in value)
    return str(value)


def _parse(text: str, kind: str, item_kind: str = "string") -> Any:
    """The model's value for an editor's text (``None`` for empty text)."""
    text = text.strip()
    if text == "":
        return None
    if kind in ("number", "integer"):
        return _parse_number(text, kind)
    if kind == "array":
        parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
        return [_parse_number(part, item_kind) if item_kind in ("number", "integer") else part for part in parts]
    return text


class _Field:
    """One editable leaf of the form."""

    def __init__(self, path: tuple[str, ...], kind: str, optional: bool, editor: QWidget, error: QLabel,
                 item_kind: str = "string") -> None:
        self.path = path
        self.kind = kind
        self.optional = optional
        self.editor = editor
        self.error = error
        self.item_kind = item_kind

    def set_value(self, value: Any) -> None:
        if self.kind == "boolean":
            self.editor.setChecked(bool(value))
        elif self.kind == "const":
            if value is not None:
                self.editor.setText(str(value))
        elif self.kind == "enum":
            self.editor.setCurrentText("" if value is None else str(value))
        else:
            self.editor.setText(_format(value))

    def value(self) -> Any:
        """The editor's value as the model wants it; unparsable text is passed on as text so
        that the model's validation names the problem."""
        if self.kind == "boolean":
            return self.editor.isChecked()
        if self.kind == "const":
            return self.editor.text()
        if self.kind == "enum":
            return self.editor.currentText() or None
        return _parse(self.editor.text(), self.kind, self.item_kind)

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        if self.kind != "boolean":
            self.editor.setStyleSheet(_ERROR_STYLE if message else "")
        self.editor.setProperty("validation_error", message or "")


def _flat(items: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Whether list items fit a line (scalars) or a table row (a model of scalars and lists of
    scalars), rather than needing their own structure (alternatives, nested models)."""
    if "anyOf" in items or "oneOf" in items:
        return False
    if items.get("type") != "object":
        return True
    for prop in items.get("properties", {}).values():
        prop = _resolve(prop, defs)
        nested, _optional = _object(prop, defs)
        inner = _resolve(prop.get("items", {}), defs) if prop.get("type") == "array" else {}
        if nested is not None or inner.get("type") == "object" or "anyOf" in inner:
            return False
    return True


class _YamlField(_Field):
    """A value with a structure of its own (a sequence's parts: each one of several kinds, loops
    of parts) as YAML text; the model's validation names what is wrong, by item and field."""

    def __init__(self, path: tuple[str, ...], error: QLabel, changed: Signal) -> None:
        editor = QPlainTextEdit()
        editor.setObjectName(".".join(path))
        editor.setToolTip(f"{path[-1]} in the protocol file, as YAML (each item a '- ' line)")
        editor.setMinimumHeight(160)
        editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        editor.textChanged.connect(changed)
        super().__init__(path, "yaml", False, editor, error)

    def set_value(self, value: Any) -> None:
        self.editor.blockSignals(True)
        self.editor.setPlainText("" if value is None else yaml.safe_dump(value, sort_keys=False, allow_unicode=True))
        self.editor.blockSignals(False)

    def value(self) -> Any:
        text = self.editor.toPlainText()
        try:
            return yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            return f"not YAML: {str(exc).splitlines()[0]}"

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        self.editor.setStyleSheet(_ERROR_STYLE if message else "")
        self.editor.setProperty("validation_error", message or "")


class _TableField(_Field):
    """A list of small models (the sites of a c-AFM protocol): one table row per item, one
    column per property; *Add row* / *Remove row* below it."""

    def __init__(self, path: tuple[str, ...], item_schema: dict[str, Any], defs: dict[str, Any],
                 error: QLabel, changed: Signal) -> None:
        self.columns = list(item_schema.get("properties", {}))
        self.kinds: list[tuple[str, str]] = []
        for name in self.columns:
            prop = _resolve(item_schema["properties"][name], defs)
            kind, _ = _scalar(prop)
            items = prop.get("items", {}) if kind == "array" else {}
            self.kinds.append((kind, items.get("type", "string")))
        self.enums = {n: _resolve(item_schema["properties"][n], defs).get("enum") for n in self.columns}
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, len(self.columns))
        self.table.setHorizontalHeaderLabels([label_of(c) for c in self.columns])
        for col, name in enumerate(self.columns):
            self.table.horizontalHeaderItem(col).setToolTip(name)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setObjectName(".".join(path))
        self.table.itemChanged.connect(lambda _item: changed.emit())
        tips = [f"{c}: one of {', '.join(self.enums[c])}" for c in self.columns if self.enums.get(c)]
        self.table.setToolTip("; ".join(tips + ["lists: comma-separated numbers"]))
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.add_button, self.remove_button = QPushButton("Add row"), QPushButton("Remove row")
        self.remove_button.setToolTip("remove the selected rows (none selected: the last)")
        self.add_button.clicked.connect(lambda: (self._add_row({}), changed.emit()))
        self.remove_button.clicked.connect(lambda: (self._remove_row(), changed.emit()))
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        super().__init__(path, "table", False, box, error)

    def _fit(self) -> None:
        rows = min(self.table.rowCount(), 8)
        self.table.setFixedHeight(self.table.horizontalHeader().height() + 22 * rows + 6)

    def _add_row(self, item: dict[str, Any]) -> None:
        self.table.blockSignals(True)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, name in enumerate(self.columns):
            self.table.setItem(row, col, QTableWidgetItem(_format(item.get(name))))
        self.table.blockSignals(False)
        self._fit()

    def _remove_row(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        for row in rows or [self.table.rowCount() - 1]:
            if row >= 0:
                self.table.removeRow(row)
        self._fit()

    def set_value(self, value: Any) -> None:
        self.table.setRowCount(0)
        for item in value or []:
            self._add_row(item if isinstance(item, dict) else {})
        self._fit()

    def value(self) -> list[dict[str, Any]]:
        out = []
        for row in range(self.table.rowCount()):
            item: dict[str, Any] = {}
            for col, (name, (kind, item_kind)) in enumerate(zip(self.columns, self.kinds)):
                cell = self.table.item(row, col)
                value = _parse(cell.text() if cell is not None else "", kind, item_kind)
                if value is not None:
                    item[name] = value
            out.append(item)
        return out

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        self.table.setStyleSheet(_ERROR_STYLE if message else "")
        self.table.setProperty("validation_error", message or "")


class SchemaForm(QWidget):
    """Edit the data of one pydantic model class.

    Args:
        model: the pydantic model class (e.g. ``protocols.KINDS["ccd_staircase"]``).
        data: initial values (a protocol file's mapping); missing keys take the schema's
            defaults, required fields without one stay empty.

    Signal ``changed()`` fires on every edit.
    """

    changed = Signal()

    def __init__(self, model: type[BaseModel], data: dict[str, Any] | None = None, parent: QWidget | None = None, *,
                 general_in_form: bool = True) -> None:
        super().__init__(parent)
        self.model = model
        self.schema = model.model_json_schema()
        self._defs = self.schema.get("$defs", {})
        self.fields: dict[str, _Field] = {}
        self.optional_groups: dict[str, QGroupBox] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.general_error = QLabel()
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet("color: #d32f2f; font-weight: bold;")
        self.general_error.setVisible(False)
        self.general_messages: list[str] = []
        if general_in_form:
            layout.addWidget(self.general_error)
        self._general_in_form = general_in_form
        layout.addWidget(self._build(self.schema, ()))
        layout.addStretch(1)
        self._data: dict[str, Any] = {}
        self.set_data(data or {})

    # -- building ----------------------------------------------------------------------------
    def _build(self, schema: dict[str, Any], path: tuple[str, ...], *, optional: bool = False) -> QWidget:
        if not path:
            box: QWidget = QWidget()
        else:
            box = QGroupBox(label_of(path[-1]))
            box.setToolTip(path[-1])
            if optional:  # an optional nested model: ticked = present
                box.setCheckable(True)
                box.toggled.connect(self.changed)
                box.setToolTip(f"untick: no {path[-1]}")
                self.optional_groups[".".join(path)] = box
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            prop = _resolve(prop, self._defs)
            nested, nested_optional = _object(prop, self._defs)
            if nested is not None:
                form.addRow(self._build(nested, (*path, name), optional=nested_optional))
                continue
            key = ".".join((*path, name))
            error = QLabel()
            error.setObjectName(f"{key}:error")
            error.setStyleSheet("color: #d32f2f;")
            error.setWordWrap(True)
            error.setVisible(False)
            items = _resolve(prop.get("items", {}), self._defs) if prop.get("type") == "array" else {}
            if prop.get("type") == "array" and not _flat(items, self._defs):
                # a list of alternatives or of nested parts (a sequence's parts): its YAML, edited as text
                field: _Field = _YamlField((*path, name), error, self.changed)
            elif items.get("type") == "object":
                field = _TableField((*path, name), items, self._defs, error, self.changed)
            else:
                field = None
            if field is not None:
                row = QWidget()
                row_layout = QVBoxLayout(row)
                row_layout.setContentsMargins(0, 0, 0, 0)
                row_layout.addWidget(field.editor)
                row_layout.addWidget(error)
                title = QLabel(label_of(name))
                title.setToolTip(name)
                form.addRow(title)
                form.addRow(row)
                self.fields[key] = field
                continue
            kind, optional_leaf = _scalar(prop)
            if kind == "boolean":
                editor: QWidget = QCheckBox()
                editor.toggled.connect(self.changed)
            elif kind == "const":
                editor = QLineEdit(str(prop["const"]))
                editor.setReadOnly(True)
            elif kind == "enum":
                editor = QComboBox()
                choices = next((s["enum"] for s in prop.get("anyOf", [prop]) if "enum" in s), [])
                editor.addItems(([""] if optional_leaf else []) + [str(c) for c in choices])
                editor.currentTextChanged.connect(self.changed)
            else:
                editor = QLineEdit()
                editor.textEdited.connect(self.changed)
                if kind == "array":
                    editor.setPlaceholderText("comma-separated")
                elif optional_leaf:
                    editor.setPlaceholderText("(none)")
                elif name in required:
                    editor.setPlaceholderText("required")
            editor.setObjectName(key)
            tip = prop.get("description", "")
            limits = [f"{word} {prop[k]:g}" for k, word in (("exclusiveMinimum", ">"), ("minimum", "≥"),
                                                             ("exclusiveMaximum", "<"), ("maximum", "≤")) if k in prop]
            editor.setToolTip("; ".join(filter(None, [f"{name} in the file", tip, ", ".join(limits)])))
            row = QWidget()
            row_layout = QVBoxLayout(row)
            row_layout.setContentsMargins(0, 0, 0, 0)
            row_layout.setSpacing(1)
            row_layout.addWidget(editor)
            row_layout.addWidget(error)
            label = QLabel(label_of(name))
            label.setToolTip(f"{name} in the protocol file")
            label.setObjectName(f"{key}:label")
            form.addRow(label, row)
            self.fields[key] = _Field((*path, name), kind, optional_leaf, editor, error,
                                      items.get("type", "string"))
        return box

    def set_read_only(self) -> None:
        """Show the values, editable nowhere (a run's own protocol): text stays black on white;
        an optional part the protocol leaves out is hidden."""
        for field in self.fields.values():
            editor = field.editor
            if isinstance(editor, QLineEdit | QPlainTextEdit):
                editor.setReadOnly(True)
            elif isinstance(field, _TableField):
                field.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
                field.add_button.setVisible(False)
                field.remove_button.setVisible(False)
            else:
                editor.setEnabled(False)
        for box in self.optional_groups.values():
            if box.isChecked():
                box.setCheckable(False)
            else:
                box.setVisible(False)

    # -- data ----------------------------------------------------------------------------------
    @staticmethod
    def _lookup(data: Any, path: tuple[str, ...]) -> Any:
        for part in path:
            data = data.get(part) if isinstance(data, dict) else None
        return data

    def set_data(self, data: dict[str, Any]) -> None:
        """Show ``data`` (schema defaults fill what it lacks); clears the errors."""
        self._data = copy.deepcopy(data)
        for key, box in self.optional_groups.items():
            box.blockSignals(True)
            present = self._lookup(data, tuple(key.split("."))) is not None
            box.setChecked(present or self._default(tuple(key.split("."))) is not None)
            box.blockSignals(False)
        for key, field in self.fields.items():
            value = self._lookup(data, field.path)
            if value is None and field.kind != "const":
                value = self._default(field.path)
            field.set_value(value)
            field.show_error(None)
        self.general_messages = []
        self.general_error.setVisible(False)

    def _default(self, path: tuple[str, ...]) -> Any:
        schema = self.schema
        default: Any = None
        for part in path:
            prop = _resolve(schema.get("properties", {}).get(part, {}), self._defs)
            if isinstance(default, dict):
                default = default.get(part)
            if "default" in prop:
                default = prop["default"]
            nested, _ = _object(prop, self._defs)
            schema = nested if nested is not None else prop
        return default

    def _absent(self, path: tuple[str, ...]) -> bool:
        """Whether ``path`` lies in an optional group that is unticked."""
        return any(not self.optional_groups[key].isChecked() for key in
                   (".".join(path[:n]) for n in range(1, len(path) + 1)) if key in self.optional_groups)

    def data(self) -> dict[str, Any]:
        """The form's values merged into the data it was given (kept keys stay)."""
        out = copy.deepcopy(self._data)
        for field in self.fields.values():
            if self._absent(field.path):
                continue
            target = out
            for part in field.path[:-1]:
                if not isinstance(target.get(part), dict):
                    target[part] = {}
                target = target[part]
            value = field.value()
            if value is None:
                target.pop(field.path[-1], None)
            else:
                target[field.path[-1]] = value
        for key, box in self.optional_groups.items():
            if not box.isChecked():
                *parents, last = key.split(".")
                target = self._lookup(out, tuple(parents)) if parents else out
                if isinstance(target, dict):
                    target.pop(last, None)
        return out

    def validate(self) -> BaseModel | None:
        """Validate the form; return the model, or ``None`` with the errors shown at their fields."""
        for field in self.fields.values():
            field.show_error(None)
        try:
            model = self.model.model_validate(self.data())
        except ValidationError as exc:
            general = []
            shown: dict[str, list[str]] = {}
            for error in exc.errors():
                loc = [str(p) for p in error["loc"]]
                message = error["msg"].removeprefix("Value error, ")
                key = ".".join(loc)
                rest: list[str] = []
                while key not in self.fields and "." in key:  # inside a table or a kept dict
                    key, last = key.rsplit(".", 1)
                    rest.insert(0, last)
                if key in self.fields:
                    if isinstance(self.fields[key], _TableField) and rest and rest[0].isdigit():
                        rest[0] = f"row {int(rest[0]) + 1}"
                    shown.setdefault(key, []).append(f"{' '.join(rest)}: {message}" if rest else message)
                else:
                    general.append(f"{'.'.join(loc)}: {message}" if loc else message)
            for message in general:  # a whole-model error: beside every field it names
                for key in self.fields_named(message):
                    shown.setdefault(key, []).append(message.split(": ", 1)[-1] if message.startswith(key) else message)
            for key, messages in shown.items():
                self.fields[key].show_error("; ".join(dict.fromkeys(messages)))
            self.set_general(general)
            return None
        self.set_general([])
        return model

    def set_general(self, messages: list[str]) -> None:
        """The errors of the whole model (shown where the form's owner keeps them in view)."""
        self.general_messages = list(messages)
        self.general_error.setText("\n".join(messages))
        self.general_error.setVisible(bool(messages) and self._general_in_form)

    def fields_named(self, message: str) -> list[str]:
        """Keys of the fields a message names (by their name in the file: ``stop_mA_cm2``, or
        ``cell.area_cm2``; a bare name that several groups share names each)."""
        found = []
        for key, field in self.fields.items():
            name = field.path[-1]
            if re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", message) or \
                    re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message):
                found.append(key)
        return found

    def errors(self) -> dict[str, str]:
        """Field key → error message currently shown ('' key for whole-model errors)."""
        out = {key: f.error.text() for key, f in self.fields.items() if f.error.text()}
        if self.general_messages:
            out[""] = "\n".join(self.general_messages)
        return out
