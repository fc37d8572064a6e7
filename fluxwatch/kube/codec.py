"""How an informer turns bytes from the API server into views, for one kind of object.

Every kind has the general way: ``orjson`` decodes a line or a page into dicts
and ``view`` reads each object (never raising: a bad object becomes a view
that says what is wrong). A kind read on the hot path (HelmReleases: tens of
thousands of objects, a watch event per reconcile) adds a typed way straight
from bytes, ``event`` and ``page``; they answer None for anything they do not
take whole, and the informer falls back to the general way for that line or
page, so the two ways give the same views.

Whatever the bytes, decoding them never ends an informer. The API server takes
JSON nested up to 10,000 levels (Go's ``encoding/json`` limit), and a
HelmRelease's ``spec.values`` is free-form: orjson refuses more than 1,024
levels and msgspec runs out of Python's recursion limit near 1,000. No view
reads a field that deep, so :func:`loads` reads such a document with every
value nested deeper than :data:`READ_DEPTH` replaced by null.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

V = TypeVar("V")

Line = bytes | memoryview
"""A watch line: a memoryview into the bytes read, so that splitting them copies nothing."""


@dataclass(frozen=True, slots=True)
class Page(Generic[V]):
    """A list page read straight into views."""

    views: list[V]
    continue_token: str | None
    resource_version: str | None


@dataclass(frozen=True, slots=True)
class Codec(Generic[V]):
    view: Callable[[Mapping[str, Any]], V]
    """Any decoded object to its view; never raises."""
    event: Callable[[Line, Mapping[tuple[str, str], V]], tuple[str, V] | None] | None = None
    """A watch line to ``(type, view)`` for ADDED, MODIFIED and DELETED; None otherwise.
    Its second argument is the informer's cache (views by namespace and name): a view may
    share what did not change with the object's previous one instead of a copy."""
    page: Callable[[bytes], Page[V] | None] | None = None
    """A list body to its page; None when any item needs the general way."""


READ_DEPTH = 64
"""Levels of a document :func:`loads` keeps when orjson cannot read it whole; the
deepest field a view reads is seven levels down (a list's item's condition's field)."""

# A JSON string (brackets inside it are text) or one bracket.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPEN = frozenset(b"[{")


def loads(data: bytes | memoryview) -> Any:
    """``orjson.loads``; for a document nested too deep for it (or for the recursion
    limit), the document with every value below :data:`READ_DEPTH` levels made null.
    Raises ``orjson.JSONDecodeError`` for bytes that are no JSON either way."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" not in str(exc) and "ecursion" not in str(exc):
            raise
    except RecursionError:
        pass
    return orjson.loads(_shallow(bytes(data), READ_DEPTH))


def _shallow(data: bytes, keep: int) -> bytes:
    """``data`` with every array or object that opens below ``keep`` levels cut to null."""
    pieces: list[bytes] = []
    depth = 0
    kept = 0  # where the bytes not yet copied start
    cut = 0  # where the container being cut opened
    for token in _TOKEN.finditer(data):
        at = token.start()
        char = data[at]
        if char == 0x22:  # a string, skipped whole
            continue
        if char in _OPEN:
            depth += 1
            if depth == keep + 1:
                cut = at
        else:
            if depth == keep + 1:
                pieces.append(data[kept:cut])
                pieces.append(b"null")
                kept = token.end()
            depth -= 1
    pieces.append(data[kept:])
    return b"".join(pieces)
