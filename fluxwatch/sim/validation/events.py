"""Events: one stored kind, two APIs (core/v1 and events.k8s.io/v1), and the rules of
pkg/apis/core/validation/events.go for both.

The real server converts either API's body to its internal Event (core-shaped) and
validates that, so an events.k8s.io/v1 client is told about ``message`` and
``involvedObject.namespace`` although it sent ``note`` and ``regarding``. The
core/v1 API keeps the old lenient rules (legacyValidateEvent) for compatibility;
events.k8s.io/v1 adds the strict ones. Both sets are here, with the conversions
between the two JSON shapes (pkg/apis/events/v1/conversion.go), written out the way
Go serialises each shape (zero times as ``null``, empty structs as ``{}``).
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from fluxwatch.sim.fielderrors import FieldError, Verbatim, invalid_value, required
from fluxwatch.sim.validation.meta import (
    FIELD_IMMUTABLE,
    as_dict,
    as_int,
    as_str,
    validate_object_meta,
    validate_object_meta_update,
)
from fluxwatch.sim.validation.rules import (
    go_time,
    is_dns1123_subdomain,
    is_qualified_name,
    name_is_dns_subdomain,
    name_is_path_segment,
)

REPORTING_INSTANCE_LIMIT: Final = 128
ACTION_LIMIT: Final = 128
REASON_LIMIT: Final = 128
NOTE_LIMIT: Final = 1024

# core/v1 JSON name -> events.k8s.io/v1 JSON name, for the fields that are renamed.
_RENAMED: Final = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_SAME: Final = ("reason", "type", "eventTime", "series", "action", "related", "reportingInstance")


def event_to_events_v1(core: dict[str, Any]) -> dict[str, Any]:
    """A core/v1 Event as events.k8s.io/v1 serves it."""
    out: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": copy.deepcopy(as_dict(core.get("metadata"))),
    }
    for old, new in _RENAMED.items():
        if core.get(old) not in (None, "", 0):
            out[new] = copy.deepcopy(core[old])
    for name in _SAME:
        if core.get(name) not in (None, ""):
            out[name] = copy.deepcopy(core[name])
    # Fields Go always writes: a MicroTime without omitempty, and structs.
    out.setdefault("eventTime", None)
    out.setdefault("regarding", {})
    out.setdefault("deprecatedSource", {})
    out.setdefault("deprecatedFirstTimestamp", None)
    out.setdefault("deprecatedLastTimestamp", None)
    return out


def events_v1_to_core(ev: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as core/v1 serves (and the store keeps) it."""
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": copy.deepcopy(as_dict(ev.get("metadata"))),
    }
    for old, new in _RENAMED.items():
        if ev.get(new) not in (None, "", 0):
            out[old] = copy.deepcopy(ev[new])
    for name in _SAME:
        if ev.get(name) not in (None, ""):
            out[name] = copy.deepcopy(ev[name])
    out.setdefault("involvedObject", {})
    out.setdefault("source", {})
    out.setdefault("firstTimestamp", None)
    out.setdefault("lastTimestamp", None)
    out.setdefault("eventTime", None)
    out.setdefault("reportingComponent", "")
    out.setdefault("reportingInstance", "")
    return out


def _length(value: Any) -> int:
    return len(as_str(value).encode())


def legacy_validate(ev: dict[str, Any]) -> list[FieldError]:
    """legacyValidateEvent on a core-shaped Event: every Event, from either API."""
    errs: list[FieldError] = []
    namespace = as_str(as_dict(ev.get("metadata")).get("namespace"))
    involved_ns = as_str(as_dict(ev.get("involvedObject")).get("namespace"))
    mismatch = invalid_value(
        "involvedObject.namespace", involved_ns, "does not match event.namespace"
    )
    if not ev.get("eventTime"):
        # An old-style Event: its namespace is its object's (or "default" for a
        # cluster-scoped object, for old clients).
        if not involved_ns:
            if namespace not in ("", "default"):
                errs.append(mismatch)
        elif namespace != involved_ns:
            errs.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(mismatch)
        controller = as_str(ev.get("reportingComponent"))
        if not controller:
            errs.append(required("reportingController"))
        errs += [
            invalid_value("reportingController", controller, m)
            for m in is_qualified_name(controller)
        ]
        if not as_str(ev.get("reportingInstance")):
            errs.append(required("reportingInstance"))
        if _length(ev.get("reportingInstance")) > REPORTING_INSTANCE_LIMIT:
            errs.append(
                invalid_value(
                    "reportingInstance",
                    "",
                    f"can have at most {REPORTING_INSTANCE_LIMIT} characters",
                )
            )
        if not as_str(ev.get("action")):
            errs.append(required("action"))
        if _length(ev.get("action")) > ACTION_LIMIT:
            errs.append(invalid_value("action", "", f"can have at most {ACTION_LIMIT} characters"))
        if not as_str(ev.get("reason")):
            errs.append(required("reason"))
        if _length(ev.get("reason")) > REASON_LIMIT:
            errs.append(invalid_value("reason", "", f"can have at most {REASON_LIMIT} characters"))
        if _length(ev.get("message")) > NOTE_LIMIT:
            errs.append(invalid_value("message", "", f"can have at most {NOTE_LIMIT} characters"))
    errs += [invalid_value("namespace", namespace, m) for m in is_dns1123_subdomain(namespace)]
    return errs


def _generic_meta(ev: dict[str, Any]) -> list[FieldError]:
    """genericvalidation.ValidateObjectMetaAccessor as the generic registry runs it on
    every kind: a core/v1 Event's name need only be a path segment (no length limit,
    so ``<253-character object>.<hex nanoseconds>`` is stored), its annotations and
    labels are checked as everywhere."""
    return validate_object_meta(ev, namespaced=True, name_rule=name_is_path_segment)


def _series(ev: dict[str, Any]) -> list[FieldError]:
    series = ev.get("series")
    if not isinstance(series, dict):
        return []
    errs: list[FieldError] = []
    if as_int(series.get("count")) < 2:
        errs.append(invalid_value("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errs.append(required("series.lastObservedTime"))
    return errs


def event_create(ev: dict[str, Any], *, strict: bool) -> list[FieldError]:
    """ValidateEventCreate on a core-shaped Event; ``strict`` when it came through
    events.k8s.io/v1 (core/v1 and events.k8s.io/v1beta1 get the legacy rules only,
    not even ObjectMeta validation)."""
    errs = legacy_validate(ev)
    if not strict:
        # rest.BeforeCreate: the generic ObjectMeta check (names as path segments,
        # annotations, labels) runs only once the kind's own rules have passed.
        return errs or _generic_meta(ev)
    errs += validate_object_meta(ev, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)
    errs += _series(ev)
    if not ev.get("eventTime"):
        errs.append(required("eventTime"))
    kind = as_str(ev.get("type"))
    if kind not in ("Normal", "Warning"):
        errs.append(invalid_value("type", "", f"has invalid value: {kind}"))
    for name in ("firstTimestamp", "lastTimestamp", "count"):
        if ev.get(name):
            errs.append(invalid_value(name, "", "needs to be unset"))
    source = as_dict(ev.get("source"))
    if as_str(source.get("component")) or as_str(source.get("host")):
        errs.append(invalid_value("source", "", "needs to be unset"))
    return errs


_REF_FIELDS: Final = (
    ("Kind", "kind"),
    ("Namespace", "namespace"),
    ("Name", "name"),
    ("UID", "uid"),
    ("APIVersion", "apiVersion"),
    ("ResourceVersion", "resourceVersion"),
    ("FieldPath", "fieldPath"),
)


def _go_ref(ref: Any) -> Any:
    if ref is None:
        return "null"
    ref = as_dict(ref)
    inner = ", ".join(f"{go}:{json.dumps(as_str(ref.get(js)))}" for go, js in _REF_FIELDS)
    return Verbatim(f"core.ObjectReference{{{inner}}}")


def _shown(name: str, value: Any) -> Any:
    """A field of an internal Event as Go's %#v / Stringer prints it."""
    if name in ("involvedObject", "related"):
        return _go_ref(value) if name == "related" else _go_ref(value or {})
    if name == "source":
        src = as_dict(value)
        return Verbatim(
            f"core.EventSource{{Component:{json.dumps(as_str(src.get('component')))}, "
            f"Host:{json.dumps(as_str(src.get('host')))}}}"
        )
    if name in ("firstTimestamp", "lastTimestamp", "eventTime"):
        return Verbatim(go_time(as_str(value)) if value else "0001-01-01 00:00:00 +0000 UTC")
    if name == "count":
        return as_int(value)
    return as_str(value)


def event_update(ev: dict[str, Any], old: dict[str, Any], *, strict: bool) -> list[FieldError]:
    """ValidateEventUpdate: core/v1 updates get the legacy rules only; through
    events.k8s.io/v1 almost everything but the series is immutable."""
    if not strict:
        # rest.BeforeUpdate's validateCommonFields come first, then the kind's rules.
        return _generic_meta(ev) + validate_object_meta_update(ev, old) + legacy_validate(ev)
    errs = legacy_validate(ev)
    errs += validate_object_meta_update(ev, old, builtin=True)
    if ev.get("series") != old.get("series"):
        errs += _series(ev)
    for name, path in (
        ("involvedObject", "involvedObject"),
        ("reason", "reason"),
        ("message", "message"),
        ("source", "source"),
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
        ("reason", "reason"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ):
        if (ev.get(name) or None) != (old.get(name) or None):
            errs.append(invalid_value(path, _shown(name, ev.get(name)), FIELD_IMMUTABLE))
    return errs
