"""What every provider is: a name, resolved settings, and ``async def post(event)``.

A provider turns an Event into its receiver's format and hands the bytes to
the shared ``Transport``, which owns retries and the 2xx check; it raises
``DeliveryError`` when the receiver did not get the event, or a
``NotDelivered`` when it deliberately sends nothing. Presentation (colours,
titles, fields) lives in each provider module. ``ProviderSettings`` holds the
spec merged with its secret keys; its repr and every error show the
receiver's origin only, never the address, which may be the credential.
"""

from __future__ import annotations

import abc
import ssl
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import orjson
from yarl import URL

from fluxwatch.notify.errors import NotifyConfigError
from fluxwatch.notify.event import Event, Severity, truncate_message
from fluxwatch.notify.redact import Redactor, basic_credentials, origin
from fluxwatch.notify.transport import Endpoint, Response, Transport

JSON = {"Content-Type": "application/json"}

Payload = TypeVar("Payload")


@runtime_checkable
class EventWriter(Protocol):
    """Writes core/v1 Events through the Kubernetes API; the kube layer implements it.

    Both return the Event as stored (or None when the writer cannot say);
    ``patch_event`` returns None when the Event is gone (404), so the caller
    creates it again. Raise ``DeliveryError`` (with ``retryable`` set as fits)
    for an answer you understand; any other exception counts as a retryable
    failure.
    """

    async def create_event(self, body: dict[str, Any]) -> Mapping[str, Any] | None: ...

    async def patch_event(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """A provider's spec merged with its secret keys (the secret wins, as in Flux)."""

    name: str
    type: str
    address: str = field(default="", repr=False)
    channel: str = ""
    username: str = ""
    token: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    proxy: str | None = field(default=None, repr=False)
    timeout: float = 15.0
    ssl: ssl.SSLContext | None = field(default=None, repr=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(
            name=self.name,
            timeout=self.timeout,
            proxy=self.proxy,
            ssl=self.ssl,
            redactor=self.redactor,
        )


@dataclass(frozen=True, slots=True)
class ProviderDeps:
    """What providers share: the HTTP transport and, for ``kubernetes-event``, the API."""

    transport: Transport
    event_writer: EventWriter | None = None


class Provider(abc.ABC):
    """Base of all providers; subclasses set ``type`` and implement ``post``."""

    type: ClassVar[str]
    default_address: ClassVar[str] = ""
    needs_address: ClassVar[bool] = True
    needs_token: ClassVar[bool] = False
    needs_channel: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        self.settings = settings
        self.transport = deps.transport
        self.address = settings.address or self.default_address
        self._check()

    def _check(self) -> None:
        problem = f"provider {self.settings.name!r} (type {self.type})"
        if self.needs_address and not self.address:
            raise NotifyConfigError(
                f"{problem} needs an address: set address or secret key address"
            )
        if self.needs_token and not self.settings.token:
            raise NotifyConfigError(f"{problem} needs a token: set secret key token")
        if self.needs_channel and not self.settings.channel:
            raise NotifyConfigError(f"{problem} needs a channel")

    @property
    def name(self) -> str:
        return self.settings.name

    def __repr__(self) -> str:
        where = f", address={origin(self.address)!r}" if self.address else ""
        return f"{type(self).__name__}(name={self.name!r}{where})"

    @abc.abstractmethod
    async def post(self, event: Event) -> None:
        """Deliver ``event``; raise ``DeliveryError`` or ``NotDelivered`` when it was not."""

    async def close(self) -> None:  # noqa: B027 - an optional hook; most own nothing
        """Release connections of its own (the shared transport is closed elsewhere)."""

    def auth_headers(self, *, bearer: bool = True) -> dict[str, str]:
        """Basic auth from username/password, else ``Bearer <token>`` when ``bearer``."""
        s = self.settings
        if s.username and s.password:
            return {"Authorization": f"Basic {basic_credentials(s.username, s.password)}"}
        if bearer and s.token:
            return {"Authorization": f"Bearer {s.token}"}
        return {}

    async def send_json(
        self,
        payload: Any,
        *,
        url: str | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        passthrough: Collection[int] = (),
    ) -> Response:
        """POST ``payload`` as JSON; the secret ``headers`` go last, so they can override."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        sent = {**JSON, **(headers or {}), **self.settings.headers}
        return await self.transport.request(
            method,
            url or self.address,
            endpoint=self.settings.endpoint,
            body=body,
            headers=sent,
            passthrough=passthrough,
        )


def metadata_items(event: Event) -> list[tuple[str, str]]:
    """Metadata sorted by key, so every receiver sees a stable order."""
    return sorted(event.metadata.items())


def is_error(event: Event) -> bool:
    return event.severity is Severity.ERROR


def with_path_suffix(address: str, suffix: str) -> str:
    """``address`` with ``suffix`` appended to its path unless it already ends with it."""
    url = URL(address)
    path = url.path.rstrip("/")
    if path.endswith(suffix):
        return address
    return str(url.with_path(path + suffix, keep_query=True))


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, how JavaScript and Telegram count: an emoji is two."""
    return len(text.encode("utf-16-le")) // 2


def json_size(payload: Any) -> int:
    """Bytes of ``payload`` as JSON on the wire, what a size limit in bytes measures."""
    return len(orjson.dumps(payload))


def fit_text(
    text: str,
    limit: int,
    *,
    escape: Callable[[str], str] = str,
    measure: Callable[[str], int] = len,
) -> str:
    """``escape(text)``, with ``text`` cut (and marked cut) until it measures at most ``limit``.

    The cut is made before escaping, so it never splits an escape sequence;
    each round removes at least the overflow, as every character escapes to
    at least one unit.
    """
    shown = escape(text)
    while (over := measure(shown) - limit) > 0 and text:
        text = truncate_message(text, max(0, len(text) - over))
        shown = escape(text)
    return shown


def fit_message(
    event: Event,
    build: Callable[[Event], Payload],
    measure: Callable[[Payload], int],
    limit: int,
) -> Payload:
    """``build(event)``, with the event's longest texts cut until the payload fits in ``limit``.

    The message and metadata values are what grow in production: a Helm
    error of kilobytes is in both (``RecoveryFailed`` carries it as
    ``error``); the rest of a payload is bounded by Kubernetes' own name
    limits. A receiver that refuses an oversized payload loses the whole
    alert, so cut texts, each marked as cut, make the better alert. One cap
    applies to all texts, the largest that fits (a binary search, as units
    per character vary: an emoji is four bytes), so short texts keep every
    word while the long ones are shortened alike.
    """
    payload = build(event)
    if measure(payload) <= limit:
        return payload

    def capped(cap: int) -> Event:
        metadata = {k: truncate_message(v, cap) for k, v in event.metadata.items()}
        return replace(event, message=truncate_message(event.message, cap), metadata=metadata)

    low, high = 0, max([len(event.message), *map(len, event.metadata.values())])
    best = build(capped(0))
    while low < high:
        cap = (low + high) // 2
        candidate = build(capped(cap))
        if measure(candidate) <= limit:
            best, low = candidate, cap + 1
        else:
            high = cap
    return best
