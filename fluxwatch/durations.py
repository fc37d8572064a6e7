"""Durations the way Flux and Go spell them: ``90s``, ``5m``, ``1h30m``, ``250ms``.

Settings accept a Go-style string or a plain number of seconds; ``Duration``
is the annotated float type that does that conversion wherever pydantic
validates a field (the settings tree and the engine's dataclasses alike).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Go's time.Duration is int64 nanoseconds: 2562047h47m16.854775807s at most. Beyond it
# (1e400 is infinity to Python) a timer would never fire, or overflow where it is used.
MAX_SECONDS = (2**63 - 1) / 1e9


def parse_duration(value: Any) -> float:
    """Seconds from a Go-style duration string or a non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration like '90s' or '5m', got {value!r}")
    given = value
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            pos, total = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                total += float(match.group(1)) * _UNIT[match.group(2)]
                pos = match.end()
            if not text or pos != len(text):
                raise ValueError(
                    f"expected a duration like '90s', '5m' or '1h30m', got {text!r}"
                ) from None
            value = total
    if value < 0:
        raise ValueError(f"a duration cannot be negative, got {given!r}")
    if not math.isfinite(value) or value > MAX_SECONDS:
        raise ValueError(
            f"expected a duration of at most {format_duration(int(MAX_SECONDS))} "
            f"(Go's time.Duration), got {given!r}"
        )
    return float(value)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration`` spelling (``5m0s``, ``1h2m3s``, ``500ms``), as Flux users read it."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds else "0s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def dump_duration(seconds: float) -> str:
    """Back to a Go duration, exactly: ``5m0s``, or ``1.5s`` where whole seconds would round."""
    return format_duration(seconds) if seconds == int(seconds) else f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(dump_duration, return_type=str, when_used="json"),
]
"""Seconds as a float in Python; a Go duration string in YAML and in JSON dumps."""

__all__ = ["MAX_SECONDS", "Duration", "dump_duration", "format_duration", "parse_duration"]
