"""``kubernetes-event``: a core/v1 Event on the involved object, as Flux controllers write.

``kubectl describe hr`` and ``kubectl events --for hr/X`` show it. Only
``fluxwatch.kube`` talks to the API, so this provider builds the body and
hands it to an ``EventWriter``.

The body has the shape client-go's legacy recorder (``tools/record``) gives
it, which is what Flux's controllers send through controller-runtime's
``GetEventRecorderFor``: named ``<object>.<hex nanoseconds>``, ``Normal`` for
info and ``Warning`` for error, ``firstTimestamp``/``lastTimestamp`` in whole
seconds, ``count`` 1 (the router already deduplicates), ``source.component``
``fluxwatch``, and no ``eventTime``. That last one matters: kube-apiserver's
ValidateEventCreate treats an Event with ``eventTime`` as a "new" Event and
then requires ``action``, ``reportingComponent`` and ``reportingInstance``
(422 otherwise); without it only the namespaces must agree. We also fill
``reportingComponent`` and ``reportingInstance`` (the pod): the legacy rules do
not look at them, and events.k8s.io/v1 readers show them as
``reportingController``/``reportingInstance``. Metadata becomes
``fluxwatch.io/<key>`` annotations. The message is cut to
``MAX_EVENT_MESSAGE``, the limit the server applies to new-style Events.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC
from typing import Any

from fluxwatch.notify.errors import DeliveryError, NotifyConfigError
from fluxwatch.notify.event import Event, rfc3339, truncate_message
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

_name_lock = threading.Lock()
_last_ns = 0


def _unique_ns() -> int:
    # Two events in the same nanosecond must not collide on the name.
    global _last_ns
    with _name_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


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
        "name": f"{obj.name}.{(name_ns if name_ns is not None else _unique_ns()):x}",
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
        "message": truncate_message(event.message, MAX_EVENT_MESSAGE),
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

    async def _create_once(self, body: dict[str, Any]) -> None:
        try:
            await self.writer.create_event(body)
        except DeliveryError:
            raise
        except Exception as exc:
            meta = body["metadata"]
            raise DeliveryError(
                f"creating Event {meta['namespace']}/{meta['name']}: "
                f"{type(exc).__name__}: {self.settings.redactor.scrub(str(exc))}",
                retryable=True,
            ) from None

    async def post(self, event: Event) -> None:
        body = core_event(event)
        await retrying(
            lambda: self._create_once(body),
            self.transport.retry,
            what=self.name,
        )
