"""YAML files validated by pydantic models, with one-line errors naming file, line and field.

Every problem becomes one line ``<file>:<line>: <field>: <what is wrong>``, for example
``ccd_llzo.yaml:7: step_mA_cm2: must be > 0``. Line numbers come from PyYAML's node marks,
so they point at the offending value (or at the mapping that lacks a required field).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

#: Largest protocol, station or notification file read (bytes): a protocol is a page of text.
MAX_FILE_BYTES = 1 << 20
#: Most YAML nodes a file may hold once its aliases are expanded (an "alias bomb" of a few lines
#: expands to billions; validation would never end).
MAX_EXPANDED_NODES = 200_000


class FileError(Exception):
    """A file could not be read or validated. ``lines`` holds one message per problem."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None, str]:
    """Parse ``path``; return (data, node tree, text).

    Raises:
        FileError: unreadable file, YAML syntax error (with its line), or an empty file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileError([f"{path}: {size} bytes; a protocol, station or notification file has at most "
                             f"{MAX_FILE_BYTES} (is it the right file?)"])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        what = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text (a binary file?)"
        raise FileError([f"{path}: cannot read: {what}"]) from None
    data, node = parse_yaml(text, path)
    return data, node, text


def parse_yaml(text: str, path: str | Path) -> tuple[Any, yaml.Node | None]:
    """Parse YAML ``text`` that came from ``path`` (named in errors); see :func:`read_yaml`."""
    path = Path(path)
    if len(text) > MAX_FILE_BYTES:
        raise FileError([f"{path.name}: {len(text)} characters; a protocol, station or notification file has at "
                         f"most {MAX_FILE_BYTES}"])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if _expanded_size(node) > MAX_EXPANDED_NODES:
            raise FileError([f"{path.name}: more than {MAX_EXPANDED_NODES} values once its aliases (*name) are "
                             "expanded; refusing it"])
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path.name}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FileError([f"{where}: YAML syntax error: {problem}"]) from None
    except RecursionError:
        raise FileError([f"{path.name}: nested too deeply to be a protocol, station or notification file"]) from None
    if not isinstance(data, dict):
        raise FileError([f"{path.name}:1: the file must be a mapping of field: value (got {type(data).__name__})"])
    return data, node


def _expanded_size(root: yaml.Node | None) -> int:
    """Nodes in the tree with every alias expanded, counted without expanding (a node's size
    once, however often it is referred to); stops early past :data:`MAX_EXPANDED_NODES`."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += size(key) + size(value)
                if total > MAX_EXPANDED_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > MAX_EXPANDED_NODES:
                    break
        sizes[id(node)] = total
        return total

    return 0 if root is None else size(root)


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int:
    """1-based line of the entry at ``loc`` in the node tree, or of its nearest ancestor.

    For a mapping entry it is the line of the key; a part of ``loc`` that is not in the
    tree (a missing key, a union tag) leaves the position on the parent.
    """
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if entry is None:
                continue
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _describe(error: dict[str, Any]) -> str:
    """Short, operator-facing wording for the common pydantic error types."""
    kind = error["type"]
    ctx = {k: (f"{v:g}" if isinstance(v, float) else v) for k, v in (error.get("ctx") or {}).items()}
    if kind == "greater_than":
        return f"must be > {ctx['gt']}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}"
    if kind == "less_than":
        return f"must be < {ctx['lt']}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "finite_number":
        return f"must be a finite number, got {error.get('input')!r}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number, got {error.get('input')!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number, got {error.get('input')!r}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def validation_lines(path: str | Path, node: yaml.Node | None, exc: ValidationError) -> list[str]:
    """One ``file:line: field: problem`` line per pydantic error."""
    name = Path(path).name
    found = []
    for error in exc.errors():
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)]
        field = ".".join(str(p) for p in loc) or "(file)"
        found.append((line_of(node, loc), f"{field}: {_describe(error)}"))
    return [f"{name}:{line}: {text}" for line, text in sorted(found, key=lambda item: item[0])]


#: Pydantic puts the tag of a discriminated-union member in ``loc``; it is not a key.
_UNION_TAGS = {"constant_current", "rest", "loop"}


def load_model(path: str | Path, model: type[M], data: Any = None, node: yaml.Node | None = None) -> M:
    """Read and validate ``path`` as ``model``.

    ``data``/``node`` may be passed when the file was already parsed with :func:`read_yaml`.

    Raises:
        FileError: with one line per problem.
    """
    if data is None:
        data, node, _ = read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FileError(validation_lines(path, node, exc)) from None
