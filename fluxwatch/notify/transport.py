"""One HTTP client for every provider: timeouts, retries, proxy, TLS and the 2xx check.

Providers only shape payloads; this module owns the wire. A request is tried
at most ``1 + max_retries`` times; connection errors, timeouts, 5xx and 429
are retried after an exponential wait (2s, 4s, 8s, 16s by default, capped at
``wait_max``; a ``Retry-After`` answer stretches the wait up to that cap);
any other status fails at once. Waits go through ``asyncio.sleep`` so tests
fake them with looptime. Redirects are not followed: a webhook that
redirects is misconfigured, and following it would carry credentials
elsewhere. The session is shared and created on first use inside the
running loop.

Seams for the lead: ``extra_headers`` is called once per attempt and its
headers (a W3C ``traceparent``) go on the request under the provider's own;
``last_status`` tells the caller of a provider which status the last attempt
got, without widening ``Provider.post``.

Tracing: a delivery is a span ``notify <provider>`` and each attempt a client
span inside it, current while ``extra_headers`` runs, so the ``traceparent``
names the attempt. Their attributes carry the method, the receiver's host and
port and the status, never the URL's path or query (often the credential)
nor any header.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import itertools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from yarl import URL

from fluxwatch import __version__
from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.redact import Redactor, origin

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

T = TypeVar("T")

USER_AGENT = f"fluxwatch/{__version__}"
# Receivers answer with a few bytes; never buffer a runaway body.
_MAX_BODY = 1 << 20
_EXCERPT = 200

last_status: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fluxwatch_notify_last_status", default=None
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most ``max_retries`` retries, waiting ``wait_min`` doubling up to ``wait_max``."""

    max_retries: int = 4
    wait_min: float = 2.0
    wait_max: float = 30.0

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``retry`` (1-based)."""
        wait = min(self.wait_max, self.wait_min * 2 ** (retry - 1))
        if retry_after is not None:
            wait = min(self.wait_max, max(wait, retry_after))
        return wait


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the retries are spent.

    ``attempt`` signals a retryable failure by raising a retryable
    ``DeliveryError``; the final error carries the number of attempts.
    ``what`` names the provider in the log line of each retry.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            return await attempt()
        except DeliveryError as err:
            err.attempts = attempts
            if not err.retryable or attempts > policy.max_retries:
                raise
            wait = policy.wait(attempts, err.retry_after)
            log.info(
                "%s: %s; retry %d of %d in %.0fs",
                what,
                err.message,
                attempts,
                policy.max_retries,
                wait,
            )
            await asyncio.sleep(wait)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How one provider reaches its receiver: timeout, proxy, TLS, and what to scrub."""

    name: str
    timeout: float = 15.0
    proxy: str | None = field(default=None, repr=False)
    ssl: ssl.SSLContext | None = field(default=None, repr=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _excerpt(body: bytes, redactor: Redactor) -> str:
    text = body[:_EXCERPT].decode(errors="replace")
    text = " ".join(text.split())
    return redactor.scrub(text) + ("…" if len(body) > _EXCERPT else "")


def _split_proxy(proxy: str | None) -> tuple[str | None, str | None]:
    """The proxy URL without credentials, and the ``Proxy-Authorization`` they make."""
    if not proxy:
        return None, None
    url = URL(proxy)
    if url.user is None:
        return proxy, None
    auth = aiohttp.encode_basic_auth(url.user, url.password or "")
    return str(url.with_user(None).with_password(None)), auth


class Transport:
    """The shared HTTP client; one per process, closed on shutdown."""

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        extra_headers: Callable[[], Mapping[str, str]] | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.extra_headers = extra_headers
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"Transport(retry={self.retry!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env off: a provider's proxy is explicit, and an ambient
            # HTTP_PROXY must not swallow in-cluster receivers.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: Endpoint,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        passthrough: Collection[int] = (),
    ) -> Response:
        """Send until a 2xx (or a ``passthrough`` status) comes back; raise ``DeliveryError``."""
        attempts = itertools.count()
        with _tracer.start_as_current_span(
            f"notify {endpoint.name}",
            attributes={"fluxwatch.provider": endpoint.name},
            record_exception=False,
        ):
            return await retrying(
                lambda: self._attempt(
                    method, url, endpoint, body, headers or {}, passthrough, next(attempts)
                ),
                self.retry,
                what=endpoint.name,
            )

    async def _attempt(
        self,
        method: str,
        url: str,
        endpoint: Endpoint,
        body: bytes | None,
        headers: Mapping[str, str],
        passthrough: Collection[int],
        resend: int,
    ) -> Response:
        """One try, as a client span."""
        try:
            target = URL(url)
        except (TypeError, ValueError):
            target = URL()
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "server.address": target.host or "",
            "url.scheme": target.scheme,
            "fluxwatch.provider": endpoint.name,
        }
        if target.port is not None:
            attributes["server.port"] = target.port
        if resend:
            attributes["http.request.resend_count"] = resend
        # An exception's message may quote the receiver's answer: kept off the span.
        with _tracer.start_as_current_span(
            method,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await self._send(method, url, endpoint, body, headers, passthrough)
            except DeliveryError as err:
                if err.status is not None:
                    span.set_attribute("http.response.status_code", err.status)
                span.set_attribute("error.type", str(err.status or "delivery"))
                span.set_status(Status(StatusCode.ERROR))
                raise
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def _send(
        self,
        method: str,
        url: str,
        endpoint: Endpoint,
        body: bytes | None,
        headers: Mapping[str, str],
        passthrough: Collection[int],
    ) -> Response:
        where = f"{method} {origin(url)}"
        sent: CIMultiDict[str] = CIMultiDict({"User-Agent": self.user_agent})
        if self.extra_headers is not None:
            sent.update(self.extra_headers())
        sent.update(headers)
        proxy, proxy_auth = _split_proxy(endpoint.proxy)
        proxy_headers = None
        if proxy_auth is not None:
            # aiohttp sends proxy_headers only on the CONNECT of an https tunnel; a plain
            # http request through the proxy must carry the header itself. Never both:
            # inside a tunnel it would reach the receiver.
            if url.lower().startswith("https://"):
                proxy_headers = {"Proxy-Authorization": proxy_auth}
            else:
                sent["Proxy-Authorization"] = proxy_auth
        scrub = endpoint.redactor.scrub
        try:
            async with self._get_session().request(
                method,
                url,
                data=body,
                headers=sent,
                timeout=aiohttp.ClientTimeout(total=endpoint.timeout),
                proxy=proxy,
                proxy_headers=proxy_headers,
                ssl=endpoint.ssl if endpoint.ssl is not None else True,
                allow_redirects=False,
            ) as resp:
                payload = await resp.content.read(_MAX_BODY)
                response = Response(resp.status, resp.headers, payload)
        except TimeoutError:
            raise DeliveryError(
                f"{where}: no answer within {endpoint.timeout:g}s", retryable=True
            ) from None
        except aiohttp.ClientSSLError as exc:
            # A certificate problem does not go away by asking again.
            raise DeliveryError(
                f"{where}: TLS failed: {scrub(str(exc))}", retryable=False
            ) from None
        except aiohttp.InvalidURL:
            # Its message is the URL itself, which may be the credential.
            raise DeliveryError(f"{where}: invalid address", retryable=False) from None
        except aiohttp.ClientError as exc:
            raise DeliveryError(
                f"{where}: {type(exc).__name__}: {scrub(str(exc))}", retryable=True
            ) from None
        except ValueError as exc:
            raise DeliveryError(
                f"{where}: cannot send: {scrub(str(exc))}", retryable=False
            ) from None

        status = response.status
        last_status.set(status)
        if 200 <= status < 300 or status in passthrough:
            return response
        detail = f"{where}: answered {status}"
        excerpt = _excerpt(response.body, endpoint.redactor)
        if excerpt:
            detail += f": {excerpt}"
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise DeliveryError(detail, status=status, retryable=True, retry_after=retry_after)
        if 300 <= status < 400:
            location = origin(response.headers.get("Location", ""))
            raise DeliveryError(
                f"{where}: answered {status}, a redirect to {location}; fluxwatch does not "
                "follow redirects, set the final address",
                status=status,
            )
        raise DeliveryError(detail, status=status)
