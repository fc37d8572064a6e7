"""JSON as deep as kube-apiserver takes it: up to 10,000 levels, not orjson's 1,024.

The API server decodes with Go's ``encoding/json``, whose scanner refuses a
document nested deeper than 10,000 levels ("exceeded max depth") and takes
anything shallower; a custom resource's free-form fields (a HelmRelease's
``spec.values``) may use all of it. orjson reads 1,024 levels and writes 254,
so the embedded cluster goes through these functions: orjson for every usual
document, the standard library (whose C code recurses within Python's
recursion limit, raised for the call) for a deep one. The store's writes,
which walk objects recursively (schemas, managed fields), run under
:func:`deep`: the same raised limit for the call.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import orjson

MAX_DEPTH = 10_000
"""``maxNestingDepth`` of Go's ``encoding/json`` scanner."""

# A JSON string (brackets inside it are text) or one bracket.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPEN = frozenset(b"[{")


class TooDeep(ValueError):
    """A document nested deeper than the API server decodes."""


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        if "Recursion limit" not in str(exc):
            raise
    with _deep_recursion():
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode()


def loads(data: bytes | str) -> Any:
    """Decode JSON; :class:`TooDeep` (a ValueError) beyond :data:`MAX_DEPTH` levels, with
    Go's words; ``orjson.JSONDecodeError`` for anything else that is no JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" not in str(exc):
            raise
    raw = data.encode() if isinstance(data, str) else bytes(data)
    at = _too_deep_at(raw)
    if at is not None:
        # What the scanner says: "invalid character '{' exceeded max depth".
        raise TooDeep(f"invalid character {chr(raw[at])!r} exceeded max depth")
    with _deep_recursion():
        return json.loads(raw)


def copy(value: Any) -> Any:
    """A deep copy of a JSON value (orjson is far faster than ``copy.deepcopy``)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError as exc:
        if "Recursion limit" not in str(exc):
            raise
    # No depth check: the object's managedFields mirror its fields, one level deeper.
    with _deep_recursion():
        return json.loads(dumps(value))


def _too_deep_at(data: bytes) -> int | None:
    """Where the bracket that opens level :data:`MAX_DEPTH` + 1 stands, if one does."""
    depth = 0
    for token in _TOKEN.finditer(data):
        at = token.start()
        char = data[at]
        if char == 0x22:
            continue
        if char in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                return at
        else:
            depth -= 1
    return None


P = ParamSpec("P")
R = TypeVar("R")


def deep(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a synchronous function under a recursion limit that walks MAX_DEPTH levels."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _deep_recursion():
            return fn(*args, **kwargs)

    return wrapper


_DEEP_LIMIT = sys.getrecursionlimit() + 2 * MAX_DEPTH + 100


class _deep_recursion:
    """Python's recursion limit raised for one synchronous call (no await inside: the
    limit is the interpreter's, and no other task should run under it)."""

    def __enter__(self) -> None:
        self._old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self._old, _DEEP_LIMIT))

    def __exit__(self, *_exc: object) -> None:
        sys.setrecursionlimit(self._old)


def go_json_type(value: Any) -> str:
    """The JSON kind encoding/json names in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
