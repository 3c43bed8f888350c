"""A form generated from a pydantic model's JSON schema, with units and errors at the field.

Every property becomes a row: its name as in the YAML file, an editor (line edit for numbers
and text, check box for booleans, a fixed label for constants such as ``kind``) and the
unit read from the name's suffix (house rule: units in names, ``half_cycle_s`` → s).
Nested models (``cell``, ``detection``) become group boxes. :meth:`SchemaForm.validate`
runs the model's own validation and puts each error beside its field; errors of the whole
model (e.g. "give exactly one of half_cycle_s and areal_capacity_mAh_cm2") go to a line at
the top. Keys the form does not show (extra keys of ``simulated_cell``) are kept.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ValidationError
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

#: Name suffix → unit shown beside the field (longest suffix first when matching).
UNIT_SUFFIXES: dict[str, str] = {
    "_mAh_cm2": "mAh cm⁻²",
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


def _scalar(schema: dict[str, Any]) -> tuple[str, bool]:
    """(JSON type, optional) of a property; ``anyOf [X, null]`` is an optional X."""
    if "anyOf" in schema:
        types = [s.get("type") for s in schema["anyOf"]]
        optional = "null" in types
        rest = [t for t in types if t != "null"]
        return (rest[0] if rest else "string"), optional
    if "const" in schema:
        return "const", False
    return schema.get("type", "string"), False


class _Field:
    """One editable leaf of the form."""

    def __init__(self, path: tuple[str, ...], kind: str, optional: bool, editor: QWidget, error: QLabel) -> None:
        self.path = path
        self.kind = kind
        self.optional = optional
        self.editor = editor
        self.error = error

    def set_value(self, value: Any) -> None:
        if self.kind == "boolean":
            self.editor.setChecked(bool(value))
        elif self.kind == "const":
            if value is not None:
                self.editor.setText(str(value))
        else:
            self.editor.setText("" if value is None else (f"{value:g}" if isinstance(value, float) else str(value)))

    def value(self) -> Any:
        """The editor's value as the model wants it; unparsable text is passed on as text so
        that the model's validation names the problem."""
        if self.kind == "boolean":
            return self.editor.isChecked()
        if self.kind == "const":
            return self.editor.text()
        text = self.editor.text().strip()
        if self.kind in ("number", "integer"):
            if text == "":
                return None
            try:
                number = float(text)
            except ValueError:
                return text
            return int(number) if self.kind == "integer" and number.is_integer() else number
        return text

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        if self.kind != "boolean":
            self.editor.setStyleSheet(_ERROR_STYLE if message else "")
        self.editor.setProperty("validation_error", message or "")


class SchemaForm(QWidget):
    """Edit the data of one pydantic model class.

    Args:
        model: the pydantic model class (e.g. ``protocols.KINDS["ccd_staircase"]``).
        data: initial values (a protocol file's mapping); missing keys take the schema's
            defaults, required fields without one stay empty.

    Signal ``changed()`` fires on every edit.
    """

    changed = Signal()

    def __init__(self, model: type[BaseModel], data: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.schema = model.model_json_schema()
        self._defs = self.schema.get("$defs", {})
        self.fields: dict[str, _Field] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.general_error = QLabel()
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet("color: #d32f2f; font-weight: bold;")
        self.general_error.setVisible(False)
        layout.addWidget(self.general_error)
        layout.addWidget(self._build(self.schema, ()))
        layout.addStretch(1)
        self._data: dict[str, Any] = {}
        self.set_data(data or {})

    # -- building ----------------------------------------------------------------------------
    def _build(self, schema: dict[str, Any], path: tuple[str, ...]) -> QWidget:
        box = QWidget() if not path else QGroupBox(path[-1])
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            prop = _resolve(prop, self._defs)
            if prop.get("type") == "object" and "properties" in prop:
                form.addRow(self._build(prop, (*path, name)))
                continue
            kind, optional = _scalar(prop)
            if kind == "boolean":
                editor: QWidget = QCheckBox()
                editor.toggled.connect(self.changed)
            elif kind == "const":
                editor = QLineEdit(str(prop["const"]))
                editor.setReadOnly(True)
            else:
                editor = QLineEdit()
                editor.textEdited.connect(self.changed)
                if optional:
                    editor.setPlaceholderText("(none)")
                elif name in required:
                    editor.setPlaceholderText("required")
            key = ".".join((*path, name))
            editor.setObjectName(key)
            tip = prop.get("description", "")
            limits = [f"{word} {prop[k]:g}" for k, word in (("exclusiveMinimum", ">"), ("minimum", "≥"),
                                                             ("exclusiveMaximum", "<"), ("maximum", "≤")) if k in prop]
            editor.setToolTip("; ".join(filter(None, [tip, ", ".join(limits)])))
            row = QWidget()
            row_layout = QVBoxLayout(row)
            row_layout.setContentsMargins(0, 0, 0, 0)
            row_layout.setSpacing(1)
            line = QHBoxLayout()
            line.addWidget(editor, 1)
            unit = QLabel(unit_of(name))
            unit.setMinimumWidth(60)
            line.addWidget(unit)
            row_layout.addLayout(line)
            error = QLabel()
            error.setObjectName(f"{key}:error")
            error.setStyleSheet("color: #d32f2f;")
            error.setWordWrap(True)
            error.setVisible(False)
            row_layout.addWidget(error)
            form.addRow(name, row)
            self.fields[key] = _Field((*path, name), kind, optional, editor, error)
        return box

    # -- data ----------------------------------------------------------------------------------
    def set_data(self, data: dict[str, Any]) -> None:
        """Show ``data`` (schema defaults fill what it lacks); clears the errors."""
        self._data = copy.deepcopy(data)
        for key, field in self.fields.items():
            value: Any = data
            for part in field.path:
                value = value.get(part) if isinstance(value, dict) else None
            if value is None and field.kind != "const":
                value = self._default(field.path)
            field.set_value(value)
            field.show_error(None)
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
            schema = prop
        return default

    def data(self) -> dict[str, Any]:
        """The form's values merged into the data it was given (kept keys stay)."""
        out = copy.deepcopy(self._data)
        for field in self.fields.values():
            target = out
            for part in field.path[:-1]:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    break
            value = field.value()
            if value is None:
                target.pop(field.path[-1], None)
            else:
                target[field.path[-1]] = value
        return out

    def validate(self) -> BaseModel | None:
        """Validate the form; return the model, or ``None`` with the errors shown at their fields."""
        for field in self.fields.values():
            field.show_error(None)
        try:
            model = self.model.model_validate(self.data())
        except ValidationError as exc:
            general = []
            for error in exc.errors():
                key = ".".join(str(p) for p in error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                field = self.fields.get(key)
                while field is None and "." in key:  # an error inside a kept dict: its nearest shown parent
                    key = key.rsplit(".", 1)[0]
                    field = self.fields.get(key)
                if field is not None:
                    field.show_error(message)
                else:
                    general.append(f"{key}: {message}" if key else message)
            self.general_error.setText("\n".join(general))
            self.general_error.setVisible(bool(general))
            return None
        self.general_error.setVisible(False)
        return model

    def errors(self) -> dict[str, str]:
        """Field key → error message currently shown ('' key for whole-model errors)."""
        out = {key: f.error.text() for key, f in self.fields.items() if f.error.text()}
        if not self.general_error.isHidden() and self.general_error.text():
            out[""] = self.general_error.text()
        return out
