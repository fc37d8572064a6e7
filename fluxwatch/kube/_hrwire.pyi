# The native HelmRelease watch-line reader (_hrwire.c); configured by helmrelease.py.
from collections.abc import Callable, Mapping
from typing import Any

def configure(
    *,
    view: type,
    condition: type,
    snapshot: type,
    page: type,
    empty_labels: Mapping[str, str],
    label_bytes: dict[bytes, Any],
    dependency_bytes: dict[tuple[str, bytes], Any],
    labels_reader: Callable[..., Any],
    dependencies_reader: Callable[..., Any],
    fallback: Callable[..., Any],
    page_fallback: Callable[..., Any],
    no_views: Mapping[Any, Any],
    statuses: tuple[str, str, str],
    conditions: tuple[str, str, str, str],
    events: tuple[str, str, str],
    empty: str,
) -> None: ...
def event(line: bytes | memoryview, known: Mapping[Any, Any] | None = None) -> Any: ...
def hr_event(line: bytes | memoryview, known: Mapping[Any, Any] = ...) -> Any: ...
def page(body: bytes) -> Any: ...
def hr_page(body: bytes) -> Any: ...
