"""JSON log lines with Flux's keys: ``ts``, ``level``, ``msg``, ``name``, ``namespace``, ...

Anything passed in ``extra=`` becomes a key of its own (``object`` is written
as ``name``, a key the standard library reserves for the logger); trace and span ids
are added when a span is active. ``--log-encoding console`` prints the same
facts as one readable line for people at a terminal; newlines and other
control characters in a message or a value are written as escapes there, so
a hostile name cannot forge a second line (JSON escapes them anyway).
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}

try:
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
    _trace = None  # type: ignore[assignment]


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    out = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and v is not None}
    # ``name`` is taken on a LogRecord (the logger's name): code passes ``object``,
    # and the line carries it under Flux's key.
    if "object" in out:
        out["name"] = out.pop("object")
    if _trace is not None:
        ctx = _trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = format(ctx.trace_id, "032x")
            out["span_id"] = format(ctx.span_id, "016x")
    return out


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029]")


def one_line(value: object) -> str:
    """``value`` as text on one line: control characters as their Python escapes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))


def _ts(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_extras(record))
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        where = ""
        if "namespace" in extras and "name" in extras:
            where = f" {one_line(extras.pop('namespace'))}/{one_line(extras.pop('name'))}"
        tail = " ".join(f"{k}={one_line(v)}" for k, v in extras.items())
        line = f"{_ts(record)} {record.levelname.lower():5}{where} {one_line(record.getMessage())}"
        if tail:
            line += f"  [{tail}]"
        if record.exc_info:
            # The traceback is fluxwatch's own text: its lines stay lines.
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str = "info", encoding: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if encoding == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(
        logging.DEBUG if level == "debug" else logging.ERROR if level == "error" else logging.INFO
    )
    # The library logs every request body at DEBUG; those can hold Secret data.
    logging.getLogger("kubernetes_asyncio").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
