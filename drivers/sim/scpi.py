"""A small SCPI command parser and dispatcher for instrument simulators.

An instrument simulator declares its command table in SCPI notation::

    tree = CommandTree(ErrorQueue())
    tree.command(":SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]", set_level,
                 Numeric(-1.05, 1.05, default=0.0))
    tree.query(":SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]", get_level)
    tree.execute(":SOUR:CURR 1e-3;:SOUR:CURR?")      # -> "+1.000000E-03" (what get_level returns)

Syntax follows SCPI-99 (Standard Commands for Programmable Instruments, 1999) Vol. 1:

* a header keyword matches a node if it equals, case-insensitively, the node's short form
  (its upper-case letters, plus any numeric suffix) or its long form (§6.2.1); ``[...]``
  nodes may be omitted and a ``[1]`` numeric suffix is optional (§6.2.5);
* a program message holds commands separated by ``;``; a command without a leading ``:``
  is relative to the path of the previous one, and common commands (``*XXX``) leave that
  path alone (§6.2.4);
* parameters are separated by ``,``: decimal numbers (``1e-3``, ``+1.000E-03``, and
  ``MINimum``/``MAXimum``/``DEFault`` where declared), booleans (``ON``/``OFF``/numbers,
  §7.3), character data, and quoted strings (``'...'`` or ``"..."``, §7.4);
* replies of several queries in one message are joined with ``;``.

Errors go to an :class:`ErrorQueue` with the SCPI-99 codes (§21.8): ``-113`` undefined
header, ``-104`` data type error, ``-108`` parameter not allowed, ``-109`` missing
parameter, ``-222`` data out of range, ``-224`` illegal parameter value. A command error
(``-1xx``) discards the rest of the message (IEEE 488.2 §6.1.6: the parser has lost
track of the message); an execution or device error lets the next command run. Commands
before a failing one have already run.

The table is compiled into a keyword trie at declaration time, so matching a header is one
dictionary look-up per keyword.
"""

from __future__ import annotations

import abc
import itertools
import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: SCPI-99 §21.8 error messages used by the parser and by simulators.
STANDARD_ERRORS: dict[int, str] = {
    0: "No error",
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Parameter data out of range",
    -224: "Illegal parameter value",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
}

#: IEEE 488.2 §11.5.1 Standard Event Status Register bits.
ESR_OPERATION_COMPLETE = 1 << 0
ESR_QUERY_ERROR = 1 << 2
ESR_DEVICE_ERROR = 1 << 3
ESR_EXECUTION_ERROR = 1 << 4
ESR_COMMAND_ERROR = 1 << 5


class ScpiError(Exception):
    """An SCPI error event: ``code`` (negative = SCPI-defined, positive = device-specific)
    and its message, defaulting to the SCPI-99 text for standard codes."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message if message is not None else STANDARD_ERRORS.get(code, "Error")
        super().__init__(f'{code},"{self.message}"')


def _event_bit(code: int) -> int:
    """Standard Event Status bit an error sets (SCPI-99 §21.8.3–§21.8.9)."""
    if -199 <= code <= -100:
        return ESR_COMMAND_ERROR
    if -299 <= code <= -200:
        return ESR_EXECUTION_ERROR
    if -499 <= code <= -400:
        return ESR_QUERY_ERROR
    return ESR_DEVICE_ERROR if code else 0


class ErrorQueue:
    """The SCPI error/event queue (SCPI-99 §21.8.2), first in, first out.

    ``capacity`` entries (10 on the Keithley 2400, manual 2400S-900-01 App. B); when full,
    the newest entry is replaced by ``-350,"Queue overflow"`` and further errors are lost.
    Every error pushed also sets its bit in :attr:`standard_event_status` (IEEE 488.2
    §11.5.1: CME, EXE, DDE, QYE); the instrument ORs in its own bits (OPC) and clears the
    register on ``*ESR?`` and ``*CLS``.
    """

    def __init__(self, capacity: int = 10) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._queue: deque[tuple[int, str]] = deque()
        self.standard_event_status = 0

    def push(self, code: int, message: str | None = None) -> None:
        """Add an error; ``message`` defaults to the SCPI-99 text of ``code``."""
        self.standard_event_status |= _event_bit(code)
        if len(self._queue) >= self.capacity:
            self._queue[-1] = (-350, STANDARD_ERRORS[-350])
            return
        self._queue.append((code, message if message is not None else STANDARD_ERRORS.get(code, "Error")))

    def pop(self) -> str:
        """The oldest error as an SCPI reply (``-113,"Undefined header"``), or ``0,"No error"``."""
        code, message = self._queue.popleft() if self._queue else (0, STANDARD_ERRORS[0])
        return f'{code},"{message}"'

    def clear(self) -> None:
        """``*CLS``: empty the queue and the Standard Event Status Register."""
        self._queue.clear()
        self.standard_event_status = 0

    def __len__(self) -> int:
        return len(self._queue)


# -- keywords ----------------------------------------------------------------------------

_NAME = re.compile(r"(\*?[A-Z]+)([a-z]*)(\d*)\Z")
_PATTERN_ITEM = re.compile(r"(\[)?(:)?(\*?[A-Za-z]+\d*)(?:\[(\d+)\])?(\])?")


@dataclass(frozen=True)
class _Keyword:
    keys: frozenset[str]
    """Upper-case spellings that match: short and long form, with the optional suffix."""
    canonical: str
    """Short form, upper case: what a query reply uses for character data."""
    optional: bool


def _keyword(name: str, optional_suffix: str | None, optional: bool) -> _Keyword:
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"SCPI keyword {name!r} must be UPPERlower[digits], e.g. 'CURRent' or 'CALCulate3'")
    upper, lower, digits = m.groups()
    short, long = upper + digits, (upper + lower).upper() + digits
    keys = {short, long}
    if optional_suffix is not None:
        keys |= {short + optional_suffix, long + optional_suffix}
    return _Keyword(frozenset(keys), short, optional)


def _compile_pattern(pattern: str) -> list[_Keyword]:
    """``"[:SENSe[1]]:VOLTage[:DC]:PROTection"`` -> its keywords, in order.

    Raises ValueError for malformed notation (a simulator's table is code, so this is a bug).
    """
    keywords: list[_Keyword] = []
    pos = 0
    while pos < len(pattern):
        m = _PATTERN_ITEM.match(pattern, pos)
        if m is None or bool(m.group(1)) != bool(m.group(5)) or (pos and not m.group(2)):
            raise ValueError(f"malformed SCPI pattern {pattern!r} at {pos}")
        keywords.append(_keyword(m.group(3), m.group(4), optional=bool(m.group(1))))
        pos = m.end()
    if not keywords:
        raise ValueError("empty SCPI pattern")
    return keywords


def _expansions(keywords: list[_Keyword]) -> list[list[_Keyword]]:
    """Every keyword sequence the pattern matches (each optional node present or not)."""
    choices = [(True, False) if k.optional else (True,) for k in keywords]
    result = []
    for keep in itertools.product(*choices):
        path = [k for k, kept in zip(keywords, keep) if kept]
        if path:
            result.append(path)
    return result


class _Node:
    __slots__ = ("children", "write", "query")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.write: _Entry | None = None
        self.query: _Entry | None = None

    def child(self, keyword: _Keyword) -> _Node:
        """The child for ``keyword``, created (under all its spellings) if new."""
        for key in keyword.keys:
            if key in self.children:
                node = self.children[key]
                break
        else:
            node = _Node()
        for key in keyword.keys:
            existing = self.children.setdefault(key, node)
            if existing is not node:
                raise ValueError(f"SCPI keyword spelling {key!r} is ambiguous at this level")
        return node


def _lookup(root: _Node, keywords: Sequence[str]) -> _Node | None:
    node: _Node | None = root
    for word in keywords:
        node = node.children.get(word.upper())
        if node is None:
            return None
    return node


# -- parameters --------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")


def _is_quoted(token: str) -> bool:
    return len(token) >= 2 and token[0] in "'\"" and token[-1] == token[0]


def _unquote(token: str) -> str:
    quote = token[0]
    return token[1:-1].replace(quote * 2, quote)


class Parameter(abc.ABC):
    """One parameter of a command: :meth:`parse` turns its token into a Python value or
    raises :class:`ScpiError` (-104 wrong type, -222 out of range, -224 illegal value)."""

    @abc.abstractmethod
    def parse(self, token: str) -> Any: ...


class Numeric(Parameter):
    """A decimal number in ``[minimum, maximum]`` (SCPI-99 §7.2).

    With a ``default``, the keywords MINimum, MAXimum and DEFault stand for ``minimum``,
    ``maximum`` and ``default``. ``integer=True`` rounds to the nearest integer (SCPI-99
    §7.2.1.3) and returns an int.
    """

    def __init__(self, minimum: float, maximum: float, *, default: float | None = None, integer: bool = False) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.default = default
        self.integer = integer
        self._named: dict[str, float] = {}
        if default is not None:
            for name, value in (("MINimum", minimum), ("MAXimum", maximum), ("DEFault", default)):
                for key in _keyword(name, None, False).keys:
                    self._named[key] = value

    def named(self, keyword: str) -> float:
        """The value of ``MIN``/``MAX``/``DEF`` (any spelling); raises ScpiError(-224) if not declared."""
        try:
            return self._named[keyword.upper()]
        except KeyError:
            raise ScpiError(-224) from None

    def parse(self, token: str) -> float | int:
        if _NUMBER.match(token):
            value: float = float(token)
        elif token.upper() in self._named:
            value = self._named[token.upper()]
        else:
            raise ScpiError(-104)
        if self.integer:
            value = math.floor(value + 0.5)
        if not self.minimum <= value <= self.maximum:
            raise ScpiError(-222)
        return int(value) if self.integer else value


class Boolean(Parameter):
    """ON/OFF or a number (non-zero after rounding = ON, SCPI-99 §7.3); ``also`` names extra
    character values (e.g. ``"ONCE"``) that are returned as their canonical short form."""

    def __init__(self, *also: str) -> None:
        self._also = {key: kw.canonical for kw in (_keyword(name, None, False) for name in also) for key in kw.keys}

    def parse(self, token: str) -> bool | str:
        word = token.upper()
        if word == "ON":
            return True
        if word == "OFF":
            return False
        if word in self._also:
            return self._also[word]
        if _NUMBER.match(token):
            return math.floor(float(token) + 0.5) != 0
        raise ScpiError(-104 if _is_quoted(token) else -224)


class Choice(Parameter):
    """Character data from a fixed set, declared in SCPI notation (``"IMMediate"``,
    ``"SENSe[1]"``); parses to the canonical short form (``"IMM"``, ``"SENS"``)."""

    def __init__(self, *names: str) -> None:
        if not names:
            raise ValueError("Choice needs at least one name")
        keywords = [_keyword(*_split_suffix(name), False) for name in names]
        self._keys = {key: kw.canonical for kw in keywords for key in kw.keys}

    def parse(self, token: str) -> str:
        if _is_quoted(token) or _NUMBER.match(token):
            raise ScpiError(-104)
        try:
            return self._keys[token.upper()]
        except KeyError:
            raise ScpiError(-224) from None


def _split_suffix(name: str) -> tuple[str, str | None]:
    """``"SENSe[1]"`` -> ``("SENSe", "1")``; ``"NEXT"`` -> ``("NEXT", None)``."""
    m = re.fullmatch(r"(.+?)\[(\d+)\]", name)
    return (m.group(1), m.group(2)) if m else (name, None)


class String(Parameter):
    """A quoted string (SCPI-99 §7.4, ``'...'`` or ``"..."``); parses to its content."""

    def parse(self, token: str) -> str:
        if not _is_quoted(token):
            raise ScpiError(-104)
        return _unquote(token)


class QuotedChoice(Parameter):
    """A quoted string naming one of a set of headers, e.g. ``'VOLT'`` or ``"VOLT:DC"``
    for ``"VOLTage[:DC]"``; parses to the first keyword's short form (``"VOLT"``)."""

    def __init__(self, *patterns: str) -> None:
        self._spellings: dict[tuple[str, ...], str] = {}
        for pattern in patterns:
            keywords = _compile_pattern(pattern)
            for path in _expansions(keywords):
                for spelling in itertools.product(*(sorted(k.keys) for k in path)):
                    self._spellings[spelling] = keywords[0].canonical

    def parse(self, token: str) -> str:
        if not _is_quoted(token):
            raise ScpiError(-104)
        content = _unquote(token).strip().lstrip(":").upper()
        try:
            return self._spellings[tuple(content.split(":"))]
        except KeyError:
            raise ScpiError(-224) from None


# -- the command tree --------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    handler: Callable[..., Any]
    params: tuple[Parameter, ...]
    required: int
    variadic: bool

    def arguments(self, text: str) -> list[Any]:
        tokens = [t.strip() for t in _split(text, ",")] if text else []
        if any(not t for t in tokens):
            raise ScpiError(-102)
        if len(tokens) < self.required:
            raise ScpiError(-109)
        if len(tokens) > len(self.params) and not self.variadic:
            raise ScpiError(-108)
        last = len(self.params) - 1
        return [self.params[min(i, last)].parse(t) for i, t in enumerate(tokens)]


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quoted strings."""
    if "'" not in text and '"' not in text:
        return text.split(separator)
    parts, start, quote = [], 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == separator:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


class CommandTree:
    """A compiled SCPI command table and its dispatcher.

    Declare commands with :meth:`command` and queries with :meth:`query`; run one program
    message with :meth:`execute`. Handlers receive the parsed parameters positionally; a
    query handler returns the reply text. Handlers signal SCPI errors by raising
    :class:`ScpiError`, which goes to ``errors``. Not thread-safe: the instrument serialises.
    """

    def __init__(self, errors: ErrorQueue) -> None:
        self.errors = errors
        self._root = _Node()

    def command(self, pattern: str, handler: Callable[..., None], *params: Parameter,
                required: int | None = None, variadic: bool = False) -> None:
        """Declare a setting command. ``required`` parameters must be given (default: all);
        ``variadic`` lets the last parameter repeat (a comma list).

        Raises ValueError on malformed notation or if the header is already declared.
        """
        self._add(pattern, "write", _Entry(handler, params, len(params) if required is None else required, variadic))

    def query(self, pattern: str, handler: Callable[..., str], *params: Parameter,
              required: int | None = None, variadic: bool = False) -> None:
        """Declare the query form ``pattern?``; the handler returns the reply text."""
        self._add(pattern, "query", _Entry(handler, params, len(params) if required is None else required, variadic))

    def _add(self, pattern: str, kind: str, entry: _Entry) -> None:
        for path in _expansions(_compile_pattern(pattern)):
            node = self._root
            for keyword in path:
                node = node.child(keyword)
            if getattr(node, kind) is not None:
                raise ValueError(f"SCPI {kind} {pattern!r} declared twice (or overlaps another pattern)")
            setattr(node, kind, entry)

    def execute(self, message: str) -> str | None:
        """Run one program message (without its terminator).

        Returns the replies of its queries joined with ``;``, or None if it had no query
        that produced one. Errors are pushed to :attr:`errors`, never raised.
        """
        replies: list[str] = []
        path = self._root
        for command in _split(message, ";"):
            command = command.strip()
            if not command:
                continue
            parts = command.split(None, 1)
            header = parts[0]
            is_query = header.endswith("?")
            if is_query:
                header = header[:-1]
            if header.startswith("*"):
                node, parent = self._root.children.get(header.upper()), path
            else:
                start = self._root if header.startswith(":") else path
                words = (header[1:] if header.startswith(":") else header).split(":")
                parent = _lookup(start, words[:-1]) if len(words) > 1 else start
                node = parent.children.get(words[-1].upper()) if parent is not None else None
            entry = None if node is None else (node.query if is_query else node.write)
            if entry is None:
                self.errors.push(-113)
                break
            path = parent
            try:
                reply = entry.handler(*entry.arguments(parts[1].strip() if len(parts) > 1 else ""))
            except ScpiError as error:
                self.errors.push(error.code, error.message)
                if -199 <= error.code <= -100:
                    break
                continue
            if is_query and reply is not None:
                replies.append(reply)
        return ";".join(replies) if replies else None
