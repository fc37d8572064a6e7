"""core/v1 Events as Flux's controllers record them, and the rules a real server checks.

Flux's recorder (fluxcd/pkg ``runtime/events``) hands every Kubernetes Event to
controller-runtime's ``GetEventRecorderFor(<controller>)``, which is client-go's
legacy ``tools/record`` recorder. Its Events have a fixed shape, which
:class:`EventRecorder` writes into the embedded store: named
``<object>.<hex unix nanoseconds>`` in the object's namespace, the object's
reference (kind, namespace, name, uid, apiVersion, resourceVersion) as
``involvedObject``, ``source.component`` the controller, ``firstTimestamp`` =
``lastTimestamp`` in whole seconds, ``count`` 1, annotations for Flux's event
metadata, and no ``eventTime``, ``action`` or reporting fields. Flux's ``trace``
events go to Kubernetes as ``Normal``.

client-go's EventCorrelator folds a repeat (same source, object, type, reason
and message) into the Event it already wrote: a patch of ``count`` and
``lastTimestamp`` instead of a new object. A controller that requeues every few
seconds (``DependencyNotReady``) then shows one Event ``x12``, not twelve.

:func:`validate_event_create` is kube-apiserver's ValidateEventCreate for a
core/v1 request: an Event without ``eventTime`` must only agree with its
object's namespace; one with ``eventTime`` is a "new" Event and needs
``reportingComponent``, ``reportingInstance``, ``action`` and ``reason``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.sim.fielderrors import FieldError, invalid_value, required
from fluxwatch.sim.store import ApiError, Store

EVENTS = "events"
NORMAL = "Normal"
WARNING = "Warning"

# Limits of k8s.io/kubernetes pkg/apis/core/validation/events.go.
REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024
# client-go's correlator forgets a repeat after this long and writes a new Event.
CORRELATION_WINDOW = 600.0
_SEEN_LIMIT = 4096  # client-go's correlator caches as many keys

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


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


def _namespace_errors(event: Mapping[str, Any], namespace: str, new: bool) -> list[FieldError]:
    involved = str((event.get("involvedObject") or {}).get("namespace") or "")
    if new:
        allowed = ("default", "kube-system")
        ok = bool(involved) or namespace in allowed
    elif involved:
        ok = namespace == involved
    else:
        ok = namespace in ("", "default")
    return [] if ok else [invalid_value("involvedObject.namespace", involved, _MISMATCH)]


_MISMATCH = "does not match event.namespace"


def validate_event_create(event: Mapping[str, Any]) -> list[FieldError]:
    """kube-apiserver's checks of a core/v1 Event create beyond its object metadata."""
    md = event.get("metadata") or {}
    namespace = str(md.get("namespace") or "")
    new = bool(event.get("eventTime"))
    errors = _namespace_errors(event, namespace, new)
    if new:
        controller = str(event.get("reportingComponent") or "")
        instance = str(event.get("reportingInstance") or "")
        action = str(event.get("action") or "")
        reason = str(event.get("reason") or "")
        message = str(event.get("message") or "")
        if not controller:
            errors.append(required("reportingComponent"))
        for problem in _qualified_name_problems(controller):
            errors.append(invalid_value("reportingComponent", controller, problem))
        if not instance:
            errors.append(required("reportingInstance"))
        if len(instance) > REPORTING_INSTANCE_LIMIT:
            errors.append(_too_many("reportingInstance", REPORTING_INSTANCE_LIMIT))
        if not action:
            errors.append(required("action"))
        if len(action) > ACTION_LIMIT:
            errors.append(_too_many("action", ACTION_LIMIT))
        if not reason:
            errors.append(required("reason"))
        if len(reason) > REASON_LIMIT:
            errors.append(_too_many("reason", REASON_LIMIT))
        if len(message) > NOTE_LIMIT:
            errors.append(_too_many("message", NOTE_LIMIT))
    if namespace and not _DNS1123_SUBDOMAIN.match(namespace):
        errors.append(
            invalid_value(
                "namespace",
                namespace,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        )
    return errors


def _too_many(path: str, limit: int) -> FieldError:
    return invalid_value(path, "", f"can have at most {limit} characters")


def _qualified_name_problems(value: str) -> list[str]:
    """ValidateQualifiedName for the reporting controller (``fluxwatch``, ``x.io/ctrl``)."""
    if not value:
        return []
    prefix, _, name = value.rpartition("/")
    problems = []
    if prefix and not _DNS1123_SUBDOMAIN.match(prefix):
        problems.append("prefix part must be a lowercase RFC 1123 subdomain")
    if len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.match(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return problems
