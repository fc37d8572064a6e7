"""core/v1 Events as Flux's controllers record them.

Flux's recorder (fluxcd/pkg ``runtime/events``) hands every Kubernetes Event to
controller-runtime's ``GetEventRecorderFor(<controller>)``, which is client-go's
legacy ``tools/record`` recorder. Its Events have a fixed shape, which
:class:`EventRecorder` writes into the embedded store: named
``<object>.<hex unix nanoseconds>`` in the object's namespace, the object's
reference (kind, namespace, name, uid, apiVersion, resourceVersion) as
``involvedObject``, ``source.component`` the controller, ``firstTimestamp`` =
``lastTimestamp`` in whole seconds, ``count`` 1, annotations for Flux's event
metadata, ``reportingComponent`` the controller and ``reportingInstance`` the source's
host (client-go's generateEvent copies both from the source; controller-runtime leaves
the host empty), and no ``eventTime`` or ``action``. Flux's ``trace`` events go to
Kubernetes as ``Normal``.

client-go's EventCorrelator folds a repeat (same source, object, type, reason
and message) into the Event it already wrote: a patch of ``count`` and
``lastTimestamp`` instead of a new object. A controller that requeues every few
seconds (``DependencyNotReady``) then shows one Event ``x12``, not twelve.

The store validates these Events as kube-apiserver does (``fluxwatch.sim.validation``):
an Event without ``eventTime`` must only agree with its object's namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.sim.store import ApiError, Store

EVENTS = "events"
NORMAL = "Normal"
WARNING = "Warning"

# client-go's correlator forgets a repeat after this long and writes a new Event.
CORRELATION_WINDOW = 600.0
_SEEN_LIMIT = 4096  # client-go's correlator caches as many keys


def object_reference(obj: Mapping[str, Any]) -> dict[str, str]:
    """client-go's ``reference.GetReference``: what ``involvedObject`` holds; empty fields
    are left out as Go's omitempty leaves them."""
    md = obj.get("metadata") or {}
    ref = {
        "kind": str(obj.get("kind") or ""),
        "namespace": str(md.get("namespace") or ""),
        "name": str(md.get("name") or ""),
        "uid": str(md.get("uid") or ""),
        "apiVersion": str(obj.get("apiVersion") or ""),
        "resourceVersion": str(md.get("resourceVersion") or ""),
    }
    return {k: v for k, v in ref.items() if v}


@dataclass
class EventRecorder:
    """Records Events on objects in ``store`` as ``component``'s legacy recorder does.

    ``clock`` gives wall-clock epoch seconds (the controller's ``SimClock``, so the
    times agree with the conditions it writes).
    """

    store: Store
    component: str
    clock: Callable[[], float]
    _seen: dict[tuple[str, ...], tuple[str, str, float]] = field(default_factory=dict)
    _last_ns: int = 0

    def event(
        self,
        obj: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Record one Event on ``obj``; the stored Event, or None when the server refused
        it (a recorder never fails its controller: client-go logs and drops)."""
        ref = object_reference(obj)
        now = self.clock()
        key = (
            self.component,
            ref.get("kind", ""),
            ref.get("namespace", ""),
            ref.get("name", ""),
            ref.get("uid", ""),
            ref.get("apiVersion", ""),
            type_,
            reason,
            message,
        )
        seen = self._seen.get(key)
        if seen is not None and now - seen[2] <= CORRELATION_WINDOW:
            folded = self._fold(seen[0], seen[1], now)
            if folded is not None:
                self._seen[key] = (seen[0], seen[1], now)
                return folded
        namespace = ref.get("namespace") or "default"
        metadata: dict[str, Any] = {"name": f"{ref['name']}.{self._nanos(now):x}"}
        metadata["namespace"] = namespace
        if annotations:
            metadata["annotations"] = dict(annotations)
        stamp = format_rfc3339(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": metadata,
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": "",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type_,
        }
        try:
            created = self.store.create(EVENTS, body)
        except ApiError:
            return None
        if len(self._seen) >= _SEEN_LIMIT:
            # Forget repeats past the window, as the correlator's LRU cache would.
            self._seen = {k: v for k, v in self._seen.items() if now - v[2] <= CORRELATION_WINDOW}
        self._seen[key] = (namespace, metadata["name"], now)
        return created

    def _nanos(self, now: float) -> int:
        # Two Events in one clock tick (a faked loop clock stands still) need two names.
        self._last_ns = max(int(now * 1e9), self._last_ns + 1)
        return self._last_ns

    def _fold(self, namespace: str, name: str, now: float) -> dict[str, Any] | None:
        """The correlator's patch: one more occurrence, seen now."""
        try:
            current = self.store.get(EVENTS, namespace, name)
            patch = {
                "count": int(current.get("count") or 1) + 1,
                "lastTimestamp": format_rfc3339(now),
            }
            return self.store.patch(EVENTS, namespace, name, patch, "strategic")
        except ApiError:
            return None  # deleted meanwhile (Events expire): write a new one
