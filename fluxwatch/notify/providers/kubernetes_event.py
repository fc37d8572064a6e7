"""``kubernetes-event``: a core/v1 Event on the involved object, as Flux controllers write.

``kubectl describe hr`` and ``kubectl events --for hr/X`` show it. Only
``fluxwatch.kube`` talks to the API, so this provider builds the body and
hands it to an ``EventWriter``.

The body has the shape client-go's legacy recorder (``tools/record``) gives
it, which is what Flux's controllers send through controller-runtime's
``GetEventRecorderFor``: named ``<object>.<hex nanoseconds>``, ``Normal`` for
info and ``Warning`` for error, ``firstTimestamp``/``lastTimestamp`` in whole
seconds, ``source.component`` ``fluxwatch``, and no ``eventTime``. That last
one matters: kube-apiserver's ValidateEventCreate treats an Event with
``eventTime`` as a "new" Event and then requires ``action``,
``reportingComponent`` and ``reportingInstance`` (422 otherwise); without it
only the namespaces must agree. We also fill ``reportingComponent`` and
``reportingInstance`` (the pod): the legacy rules do not look at them, and
events.k8s.io/v1 readers show them as ``reportingController``/``reportingInstance``.
Metadata becomes ``fluxwatch.io/<key>`` annotations. The message is cut to
``MAX_EVENT_MESSAGE`` bytes of UTF-8 (Go's ``len``), the limit the server applies to
new-style Events, so the note also fits an events.k8s.io/v1 Event.

Repeats are folded and floods cut as client-go's ``EventCorrelator`` does
(``tools/record/events_cache.go``), so a release that keeps failing shows one
Event ``x12`` and cannot fill etcd: :class:`EventCorrelator`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fluxwatch.notify.errors import DeliveryError, NotDelivered, NotifyConfigError
from fluxwatch.notify.event import TRUNCATION_MARK, Event, rfc3339
from fluxwatch.notify.providers.base import (
    EventWriter,
    Provider,
    ProviderDeps,
    ProviderSettings,
    is_error,
)
from fluxwatch.notify.transport import retrying

MAX_EVENT_MESSAGE = 1024
MAX_REASON = 128
ANNOTATION_PREFIX = "fluxwatch.io/"
_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")

# client-go's EventCorrelator defaults (NewEventCorrelator): each cache holds 4096 keys;
# 10 events of one object and reason that differ only in message within 10 minutes
# become one "(combined from similar events)" Event; a source may burst 25 Events about
# one object, then gets one more every 5 minutes (a token bucket per source+object).
LRU_SIZE = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
SPAM_BURST = 25
SPAM_REFILL_INTERVAL = 300.0
AGGREGATE_PREFIX = "(combined from similar events): "

_name_lock = threading.Lock()
_last_ns = 0


def _unique_ns() -> int:
    # Two events in the same nanosecond must not collide on the name.
    global _last_ns
    with _name_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


def event_note(message: str) -> str:
    """``message`` cut to ``MAX_EVENT_MESSAGE`` bytes, saying that it was cut: the server
    counts the note's bytes (a Helm error in Japanese is three per character), and a
    character split by the cut is dropped whole."""
    data = message.encode()
    if len(data) <= MAX_EVENT_MESSAGE:
        return message
    room = MAX_EVENT_MESSAGE - len(TRUNCATION_MARK.encode())
    return data[:room].decode(errors="ignore") + TRUNCATION_MARK


def _event_name(obj_name: str, name_ns: int | None = None) -> str:
    return f"{obj_name}.{(name_ns if name_ns is not None else _unique_ns()):x}"


def core_event(event: Event, *, name_ns: int | None = None) -> dict[str, Any]:
    """The core/v1 Event body for ``event``."""
    obj = event.involved_object
    ts = event.timestamp.astimezone(UTC)
    annotations = {
        ANNOTATION_PREFIX + key: value
        for key, value in sorted(event.metadata.items())
        if _ANNOTATION_NAME.match(key)
    }
    metadata: dict[str, Any] = {
        "name": _event_name(obj.name, name_ns),
        # An Event about a cluster-scoped object lives in "default", as client-go puts it.
        "namespace": obj.namespace or "default",
    }
    if annotations:
        metadata["annotations"] = annotations
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": metadata,
        "involvedObject": obj.to_dict(),
        "reason": event.reason[:MAX_REASON],
        "message": event_note(event.message),
        "type": "Warning" if is_error(event) else "Normal",
        "source": {"component": event.reporting_controller},
        "reportingComponent": event.reporting_controller,
        "reportingInstance": event.reporting_instance,
        "firstTimestamp": rfc3339(ts),
        "lastTimestamp": rfc3339(ts),
        "count": 1,
    }
    if not event.reporting_instance:
        del body["reportingInstance"]
    return body


# -- the correlator ---------------------------------------------------------------------------


def _object_key(body: Mapping[str, Any]) -> tuple[str, ...]:
    """client-go's getSpamKey: the source and the involved object (without resourceVersion,
    so the Events of one object stay one group while it changes)."""
    obj = body.get("involvedObject") or {}
    source = body.get("source") or {}
    return (
        str(source.get("component", "")),
        str(source.get("host", "")),
        *(str(obj.get(k, "")) for k in ("kind", "namespace", "name", "uid", "apiVersion")),
    )


def _event_key(body: Mapping[str, Any]) -> tuple[str, ...]:
    """client-go's getEventKey: the object, type, reason and message."""
    fields = (str(body.get(k, "")) for k in ("type", "reason", "message"))
    return (*_object_key(body), *fields)


class _Lru(OrderedDict[Any, Any]):
    """groupcache's lru.Cache: a get refreshes, an add beyond the size evicts the oldest."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def add(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class _Observed:
    count: int
    first_timestamp: str
    name: str


@dataclass(frozen=True, slots=True)
class Correlated:
    """What to write for one event: ``patch`` the Event ``name`` when set, else create
    ``body`` (also when the patch finds the Event gone, as client-go does)."""

    body: dict[str, Any]
    key: tuple[str, ...]
    patch: dict[str, Any] | None = None


class RateLimited(NotDelivered):
    """The per-object token bucket is empty: the Event is not written (client-go drops it too)."""

    result = "skipped"


class EventCorrelator:
    """Aggregates, counts and rate-limits Event bodies as client-go's EventCorrelator.

    ``correlate(body)`` returns what to write, or raises :class:`RateLimited`. In
    client-go's order: similar events (same object, type, reason, reporting controller
    and instance) with 10 different messages within 10 minutes turn into one aggregate
    Event; an event seen before (same object, type, reason, message) becomes a patch of
    that Event's ``count``, ``lastTimestamp`` and ``message``; then the source+object
    token bucket (burst 25, refilled one per 5 minutes) decides whether anything is
    written, patches included. ``clock`` is wall-clock epoch seconds.
    """

    def __init__(
        self,
        *,
        burst: int = SPAM_BURST,
        refill_interval: float = SPAM_REFILL_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.burst = burst
        self.refill_interval = refill_interval
        self._clock = clock
        self._buckets = _Lru(LRU_SIZE)
        self._aggregates = _Lru(LRU_SIZE)
        self._observed = _Lru(LRU_SIZE)

    def correlate(self, body: dict[str, Any]) -> Correlated:
        now = self._clock()
        body, key = self._aggregate(body, now)
        result = self._observe(body, key)
        if not self._take_token(_object_key(body), now):
            obj = body.get("involvedObject") or {}
            raise RateLimited(
                f"Event {body.get('reason')} on {obj.get('kind')} "
                f"{obj.get('namespace')}/{obj.get('name')} not written: more than "
                f"{self.burst} Events about it, refilled one per {self.refill_interval:.0f}s "
                "(client-go's per-object limit)"
            )
        return result

    def written(self, key: tuple[str, ...], stored: Mapping[str, Any] | None) -> None:
        """Remember what the server stored (client-go's UpdateState): its name and count."""
        if not stored:
            return
        meta = stored.get("metadata") or {}
        self._observed.add(
            key,
            _Observed(
                int(stored.get("count") or 1),
                str(stored.get("firstTimestamp") or ""),
                str(meta.get("name") or ""),
            ),
        )

    def _aggregate(
        self, body: dict[str, Any], now: float
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        aggregate_key = (
            *_object_key(body),
            str(body.get("type", "")),
            str(body.get("reason", "")),
            str(body.get("reportingComponent", "")),
            str(body.get("reportingInstance", "")),
        )
        record = self._aggregates.get_fresh(aggregate_key)
        if record is None or now - record[1] > AGGREGATE_INTERVAL:
            record = (set(), now)
        messages: set[str] = record[0]
        messages.add(str(body.get("message", "")))
        self._aggregates.add(aggregate_key, (messages, now))
        if len(messages) < AGGREGATE_MAX_EVENTS:
            return body, _event_key(body)
        messages.pop()  # the set stays at most the threshold large
        stamp = rfc3339(datetime.fromtimestamp(now, UTC))
        obj = body["involvedObject"]
        aggregate = {
            **body,
            "metadata": {
                "name": _event_name(str(obj.get("name", ""))),
                "namespace": body["metadata"]["namespace"],
            },
            "message": event_note(AGGREGATE_PREFIX + body["message"]),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        return aggregate, aggregate_key

    def _observe(self, body: dict[str, Any], key: tuple[str, ...]) -> Correlated:
        seen: _Observed | None = self._observed.get_fresh(key)
        if seen is None:
            self._observed.add(key, _Observed(1, body["firstTimestamp"], body["metadata"]["name"]))
            return Correlated(body, key)
        count = seen.count + 1
        folded = {
            **body,
            "metadata": {**body["metadata"], "name": seen.name},
            "firstTimestamp": seen.first_timestamp or body["firstTimestamp"],
            "count": count,
        }
        self._observed.add(key, _Observed(count, folded["firstTimestamp"], seen.name))
        patch = {
            "count": count,
            "lastTimestamp": body["lastTimestamp"],
            "message": body["message"],
        }
        return Correlated(folded, key, patch)

    def _take_token(self, key: tuple[str, ...], now: float) -> bool:
        bucket: _Bucket | None = self._buckets.get_fresh(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            refill = (now - bucket.at) / self.refill_interval if self.refill_interval > 0 else 0
            bucket.tokens = min(float(self.burst), bucket.tokens + max(refill, 0.0))
            bucket.at = now
        self._buckets.add(key, bucket)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


class KubernetesEvent(Provider):
    type = "kubernetes-event"
    needs_address = False

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        super().__init__(settings, deps)
        if deps.event_writer is None:
            raise NotifyConfigError(
                f"provider {settings.name!r} (type kubernetes-event) needs the Kubernetes API; "
                "no EventWriter was given"
            )
        self.writer: EventWriter = deps.event_writer
        self.correlator = EventCorrelator()

    async def _write_once(self, todo: Correlated) -> Mapping[str, Any] | None:
        meta = todo.body["metadata"]
        try:
            if todo.patch is not None:
                stored = await self.writer.patch_event(meta["namespace"], meta["name"], todo.patch)
                if stored is not None:
                    return stored
            # New, or its Event is gone (Events expire after an hour): create it, count kept.
            return await self.writer.create_event(todo.body)
        except DeliveryError:
            raise
        except Exception as exc:
            # The writer's API errors carry the HTTP status (``code``): an answer the
            # server means (a 4xx other than 429) is final, as client-go drops such an
            # Event; anything else is worth another try.
            code = getattr(exc, "code", None)
            status = code if isinstance(code, int) else None
            raise DeliveryError(
                f"writing Event {meta['namespace']}/{meta['name']}: "
                f"{type(exc).__name__}: {self.settings.redactor.scrub(str(exc))}",
                status=status,
                retryable=status is None or status == 429 or status >= 500,
                retry_after=getattr(exc, "retry_after", None),
            ) from None

    async def post(self, event: Event) -> None:
        todo = self.correlator.correlate(core_event(event))
        stored = await retrying(
            lambda: self._write_once(todo),
            self.transport.retry,
            what=self.name,
        )
        self.correlator.written(todo.key, stored)
