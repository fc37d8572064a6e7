"""How an informer turns bytes from the API server into views, for one kind of object.

Every kind has the general way: ``orjson`` decodes a line or a page into dicts
and ``view`` reads each object (never raising: a bad object becomes a view
that says what is wrong). A kind read on the hot path (HelmReleases: tens of
thousands of objects, a watch event per reconcile) adds a typed way straight
from bytes, ``event`` and ``page``; they answer None for anything they do not
take whole, and the informer falls back to the general way for that line or
page, so the two ways give the same views.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
    event: Callable[[Line], tuple[str, V] | None] | None = None
    """A watch line to ``(type, view)`` for ADDED, MODIFIED and DELETED; None otherwise."""
    page: Callable[[bytes], Page[V] | None] | None = None
    """A list body to its page; None when any item needs the general way."""
