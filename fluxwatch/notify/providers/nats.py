"""``nats``: the Event JSON published on the subject named by ``channel``.

One connection per provider, opened on first use and dropped on any error
so the next attempt reconnects; fluxwatch's own retry policy applies, not
nats-py's reconnect loop, so a dead server fails an event like any other
receiver. A flush after publishing confirms the server took the message.
``username``/``password`` or ``token`` from the secret authenticate.
The server refuses a message over its ``max_payload`` (1 MB unless
configured, https://docs.nats.io/running-a-nats-service/configuration#limits),
and nats-py raises before sending; retrying would never help, so the event
JSON is cut to the limit the server announced, its longest texts marked as
cut; an event that still does not fit (thousands of metadata keys) fails at
once, not after retries.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats as nats_client

from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import (
    Provider,
    ProviderDeps,
    ProviderSettings,
    fit_message,
)
from fluxwatch.notify.redact import origin
from fluxwatch.notify.transport import retrying

log = logging.getLogger(__name__)


class Nats(Provider):
    type = "nats"
    needs_channel = True

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        super().__init__(settings, deps)
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _error(self, exc: Exception) -> None:
        # nats-py's default callback logs the raw exception; ours scrubs it.
        log.debug("%s: NATS client error: %s", self.name, self.settings.redactor.scrub(str(exc)))

    async def _connected(self) -> Any:
        async with self._lock:
            if self._client is None or not self._client.is_connected:
                s = self.settings
                options: dict[str, Any] = {
                    "servers": [self.address],
                    "name": "fluxwatch",
                    "connect_timeout": s.timeout,
                    "allow_reconnect": False,
                    # nats-py retries a refused first connect on its own, 2s apart, up to
                    # 60 times; keep that to one quick second try.
                    "max_reconnect_attempts": 1,
                    "reconnect_time_wait": 0,
                    "error_cb": self._error,
                }
                if s.username:
                    options.update(user=s.username, password=s.password)
                elif s.token:
                    options["token"] = s.token
                if s.ssl is not None:
                    options["tls"] = s.ssl
                self._client = await nats_client.connect(**options)
            return self._client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception as exc:
                log.debug("%s: closing NATS connection: %s", self.name, type(exc).__name__)

    async def _publish_once(self, subject: str, event: Event) -> None:
        try:
            client = await self._connected()
            body = fit_message(event, Event.to_json, len, client.max_payload)
            await client.publish(subject, body)
            await client.flush(timeout=self.settings.timeout)
        except nats_client.errors.MaxPayloadError:
            # Even cut, the metadata keys alone are too many: a retry cannot help.
            raise DeliveryError(
                f"NATS {origin(self.address)}: the event is {len(body)} bytes even with its "
                f"texts cut, over the server's max_payload of {client.max_payload}",
                retryable=False,
            ) from None
        except Exception as exc:
            await self._drop()
            detail = self.settings.redactor.scrub(str(exc)) or type(exc).__name__
            raise DeliveryError(
                f"NATS {origin(self.address)}: {type(exc).__name__}: {detail}",
                retryable=True,
            ) from None

    async def post(self, event: Event) -> None:
        subject = self.settings.channel
        await retrying(
            lambda: self._publish_once(subject, event),
            self.transport.retry,
            what=self.name,
        )

    async def close(self) -> None:
        await self._drop()
