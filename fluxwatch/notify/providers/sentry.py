"""``sentry``: errors as Sentry events, info as transactions, posted as one envelope each.

As in notification-controller, ``address`` is the project's DSN
(``https://<public key>@<host>/<project id>``, usually the secret key
``address``) and ``channel`` the environment; an error event becomes a Sentry
event (level ``error``, the object as ``transaction``, the metadata as the
``metadata`` context), an info event a transaction with one span whose tags
carry the object, controller, reason and metadata, so it lands on the
performance views instead of raising an issue. The event id is a hash of the
event: a request retried after a lost answer is the same event to Sentry.
Sentry's ingestion trims what is over its limits instead of refusing the
event (a tag value over 200 characters is dropped and noted in ``_meta``,
https://docs.sentry.io/platforms/python/enriching-events/tags/), so nothing
is cut here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
from yarl import URL

from fluxwatch import __version__
from fluxwatch.notify.errors import NotifyConfigError
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items

ENVELOPE = "application/x-sentry-envelope"


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def summary(event: Event) -> str:
    obj = event.involved_object
    return f"{obj.kind}: {obj.namespace}/{obj.name}"


def sentry_item(event: Event, event_id: str, environment: str) -> dict[str, Any]:
    """The event or transaction notification-controller builds for ``event``."""
    ts = _iso(event.timestamp)
    metadata = dict(metadata_items(event))
    item: dict[str, Any] = {"event_id": event_id, "timestamp": ts, "platform": "other"}
    if environment:
        item["environment"] = environment
    if is_error(event):
        item.update(
            level="error",
            server_name=event.reporting_controller,
            transaction=summary(event),
            contexts={"metadata": metadata},
            message=event.message,
        )
        return item
    obj = event.involved_object
    tags = {
        "flux_involved_object_kind": obj.kind,
        "flux_involved_object_namespace": obj.namespace,
        "flux_involved_object_name": obj.name,
        "flux_reporting_controller": event.reporting_controller,
        "flux_reporting_instance": event.reporting_instance,
        "flux_reason": event.reason,
        **metadata,
    }
    trace_id, span_id = event_id, event_id[:16]
    item.update(
        type="transaction",
        transaction=summary(event),
        message=event.message,
        start_timestamp=ts,
        contexts={"trace": {"trace_id": trace_id, "span_id": span_id, "op": "event"}},
        tags=tags,
        spans=[
            {
                "trace_id": trace_id,
                "span_id": span_id,
                "op": "event",
                "start_timestamp": ts,
                "timestamp": ts,
                "tags": tags,
            }
        ],
    )
    return item


class Sentry(Provider):
    type = "sentry"

    def _check(self) -> None:
        super()._check()
        dsn = URL(self.address)
        project = dsn.path.rstrip("/").rpartition("/")
        if dsn.scheme not in ("http", "https") or not dsn.host or not dsn.user or not project[2]:
            raise NotifyConfigError(
                f"provider {self.settings.name!r} (type sentry): address must be a DSN, "
                "https://<public key>@<host>/<project id>"
            )
        self.key = dsn.user
        self.envelope_url = str(
            dsn.with_user(None).with_path(f"{project[0]}/api/{project[2]}/envelope/")
        )

    async def post(self, event: Event) -> None:
        event_id = hashlib.sha256(event.to_json()).hexdigest()[:32]
        item = orjson.dumps(sentry_item(event, event_id, self.settings.channel))
        kind = "event" if is_error(event) else "transaction"
        envelope = b"\n".join(
            (
                orjson.dumps({"event_id": event_id, "sent_at": _iso(event.timestamp)}),
                orjson.dumps({"type": kind, "length": len(item)}),
                item,
            )
        )
        auth = (
            f"Sentry sentry_version=7, sentry_client=fluxwatch/{__version__}, sentry_key={self.key}"
        )
        headers = {"Content-Type": ENVELOPE, "X-Sentry-Auth": auth, **self.settings.headers}
        await self.transport.request(
            "POST",
            self.envelope_url,
            endpoint=self.settings.endpoint,
            body=envelope,
            headers=headers,
        )
