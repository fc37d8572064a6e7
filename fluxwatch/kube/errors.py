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
        self.retries = 0  # how many times the client sent it again, as Retry-After asked
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}{code} {reason}: {message}")

    def __str__(self) -> str:
        text = super().__str__()
        if self.retries:
            text += f" (still refused after {self.retries} retries, as Retry-After asked)"
        return text

    @classmethod
    def from_response(
        cls, status: int, body: bytes, headers: Mapping[str, str], method: str, path: str
    ) -> KubeApiError:
        # A body that is not a Status (API Priority and Fairness answers a 429 in plain
        # text) gets the reason client-go gives its code, and its text as the message.
        reason = _REASONS.get(status, "")
        message = body[:500].decode("utf-8", "replace").strip()
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


# apimachinery's NewGenericServerResponse: the reason of a code whose body says none.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


__all__ = ["KubeApiError", "KubeConnectionError", "KubeError"]
