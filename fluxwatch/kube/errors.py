"""The Kubernetes API's failures, as the rest of fluxwatch catches them.

One tree, no I/O: :mod:`fluxwatch.kube.client` raises these (it alone knows
aiohttp's errors and translates them), and the engine catches them without
importing the client::

    KubeError
    +-- KubeApiError          the server answered with a non-2xx Status
    +-- KubeConnectionError   no answer: refused, reset, timed out
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson


class KubeError(Exception):
    """Any failure talking to the Kubernetes API."""


class KubeConnectionError(KubeError):
    """The API server could not be reached or the connection broke."""


class KubeApiError(KubeError):
    """The API server answered with an error Status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}{code} {reason}: {message}")

    @classmethod
    def from_response(
        cls, status: int, body: bytes, headers: Mapping[str, str], method: str, path: str
    ) -> KubeApiError:
        reason, message = "", body[:500].decode("utf-8", "replace")
        try:
            doc = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            doc = {}
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            reason = str(doc.get("reason") or "")
            message = str(doc.get("message") or "")
        retry_after = _parse_retry_after(headers.get("Retry-After"))
        return cls(status, reason, message, retry_after=retry_after, method=method, path=path)

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def gone(self) -> bool:
        return self.code == 410

    @property
    def forbidden(self) -> bool:
        return self.code == 403


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


__all__ = ["KubeApiError", "KubeConnectionError", "KubeError"]
