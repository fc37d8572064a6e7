"""A HelmRelease (``helm.toolkit.fluxcd.io/v2``) read once into a small, frozen view.

Raw watch JSON is read here and nowhere else: the engine works on
:class:`HRView` only. Reading never raises. A field of the wrong type, a
missing name or an unparsable time leaves a view whose ``malformed`` names
the field path and the problem (``"status.history[0].version: expected an
integer, got string"``; several problems are joined with ``"; "``); the other
fields are filled as far as they could be read, so a person can find the
object and the engine can refuse to act on it.

Two readers, one view. The wire reader (:func:`hr_event`, :func:`hr_page`)
goes from the API's bytes to the view through msgspec structs that declare
only the fields a view needs; it takes an object whole or not at all. The
exact reader (:func:`_read`) walks decoded dicts field by field and names
every problem; it reads whatever the wire reader does not take. For every
object the wire reader takes, both give the same view (a test holds them to it).
Where it is built, a native wire reader (``_hrwire.c``) goes first: it builds
the very views the Python wire reader builds and leaves it every line it is not
sure of (:func:`_native_readers`).

One view is kept per tracked HelmRelease, so views are small (about 1 KB): no
raw dict is kept, strings that repeat across releases (namespaces, condition
types, reasons, statuses, chart names, short messages) are interned, equal
label sets share one read-only mapping and objects without labels share one
empty mapping. A watch event's view takes what did not change (conditions,
``history[0]``, names) from the object's previous view rather than a copy.

Which names and namespaces helm-controller v1.x uses (FLUX-FACTS §2):

- release name: ``spec.releaseName``, else ``<targetNamespace>-<name>`` when
  ``spec.targetNamespace`` is set, else ``<name>``; a result longer than 53
  characters becomes its first 40 characters, ``-`` and the first 12 hex
  digits of its SHA-256 (``release.ShortenName`` in helm-controller, applied
  to every install and upgrade);
- storage namespace: ``status.storageNamespace`` when set, else
  ``spec.storageNamespace``, else the HelmRelease's namespace. The status
  field wins because it records where the *current* release was stored: the
  controller compares it with the spec to detect a moved release target and
  uninstalls from the old place, so until the next release the Secrets of
  ``history[0]`` live where the status says, not where the spec now points;
- dependencies: each ``spec.dependsOn`` entry names a HelmRelease by ``name``
  and an optional ``namespace``; an empty or missing namespace is the
  HelmRelease's own (``checkDependencies`` in helm-controller). Cross-namespace
  entries are followed whatever ``--no-cross-namespace-refs`` says: that flag
  guards source references, not dependencies. ``readyExpr`` (a CEL check that
  can replace the built-in "Ready=True at the current generation") changes
  when a dependency counts as ready, not whether it is one, so it is not read:
  a dependent whose readyExpr accepts a stuck release's ``deployed`` history
  is not really blocked by it, which makes the blocked count an upper bound
  for such releases.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import msgspec
import orjson

from fluxwatch import native
from fluxwatch.kube.codec import Codec, Line, Page
from fluxwatch.kube.fields import EMPTY, FieldReader, json_type, parse_rfc3339

ANNOTATION_IGNORE = "fluxwatch.io/ignore"
ANNOTATION_SUSPENDED_AT = "fluxwatch.io/suspended-at"
ANNOTATION_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
ANNOTATION_FORCE_AT = "reconcile.fluxcd.io/forceAt"
# helm-controller's ResetRequestAnnotation (api/v2/annotations.go): with an equal new
# requestedAt it clears status.installFailures/upgradeFailures (flux reconcile hr --reset).
ANNOTATION_RESET_AT = "reconcile.fluxcd.io/resetAt"

FINALIZER = "finalizers.fluxcd.io"
MAX_RELEASE_NAME = 53
_SHORT_PREFIX = 40
_SHORT_HASH = 12

CONDITION_STATUSES = frozenset({"True", "False", "Unknown"})
_STATUSES = {status: status for status in CONDITION_STATUSES}
_KEPT_CONDITIONS = ("Ready", "Reconciling", "Released", "Stalled")
_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED"})

_intern = sys.intern

# Distinct label sets seen so far; bounded so that unique labels cannot grow it forever.
_LABEL_SETS: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
_MAX_LABEL_SETS = 4096
_INTERN_MESSAGE_MAX = 64


# Views are msgspec structs: frozen (the engine never changes one, and type checkers hold
# every caller to it), built in C from positional arguments, and untracked by the garbage
# collector (gc=False: a view refers only to strings, numbers, tuples, read-only mappings
# and other views, never back to itself). The slotted dataclasses they were cost 16 bytes
# more each for the collector's header (four objects per release: the view, two
# conditions, the snapshot) and a Python __init__ call per object: the retained bytes per
# release went from 1,005 to 920 and building an event's view from 29,600 to 26,100
# instructions (`python -m bench.icount`; README, "Performance").


class Condition(msgspec.Struct, frozen=True, gc=False):
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    observed_generation: int | None
    last_transition: float | None  # epoch seconds (UTC), parsed from RFC 3339


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """``status.history[0]``: the newest Helm release the controller recorded."""

    name: str
    namespace: str
    version: int
    status: str
    action: str
    chart_name: str
    chart_version: str


class HRView(msgspec.Struct, frozen=True, gc=False):
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    labels: Mapping[str, str]
    suspend: bool
    deleting: bool
    ignored: bool
    suspended_at: str | None
    requested_at: str | None
    force_at: str | None
    ready: Condition | None
    reconciling: Condition | None
    released: Condition | None
    last_release: Snapshot | None
    release_name: str
    target_namespace: str
    storage_namespace: str
    observed_generation: int
    last_handled_reconcile_at: str | None
    last_handled_force_at: str | None
    last_attempted_release_action: str | None
    malformed: str | None = None
    # spec.kubeConfig is set: helm-controller installs on another cluster, where the Helm
    # storage Secrets live too (FLUX-FACTS §7); local Secrets say nothing about it.
    remote: bool = False
    # spec.dependsOn as (namespace, name), in spec order, the namespace resolved.
    depends_on: tuple[tuple[str, str], ...] = ()
    # Stalled=True RetriesExceeded: helm-controller spent its remediation retries and tries
    # no more until a reset (FLUX-FACTS §3). Its message is not kept (a True condition's).
    stalled: Condition | None = None
    last_handled_reset_at: str | None = None
    install_failures: int = 0  # status.installFailures, 0 when unset
    upgrade_failures: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def shorten_release_name(full: str) -> str:
    """helm-controller's ``ShortenName``: names over 53 bytes get a hash suffix.

    Go measures and cuts bytes; names are DNS labels, so bytes are characters.
    A non-ASCII name (never valid in Kubernetes) is cut at a byte boundary and
    an incomplete character dropped rather than raising.
    """
    if len(full) <= MAX_RELEASE_NAME and full.isascii():
        return full  # the usual case, without encoding: one byte per character
    raw = full.encode("utf-8")
    if len(raw) <= MAX_RELEASE_NAME:
        return full
    digest = hashlib.sha256(raw).hexdigest()[:_SHORT_HASH]
    return raw[:_SHORT_PREFIX].decode("utf-8", "ignore") + "-" + digest


def release_name(name: str, release_name_spec: str | None, target_namespace: str | None) -> str:
    """The Helm release name helm-controller v2 uses for a HelmRelease (FLUX-FACTS §2)."""
    if release_name_spec:
        full = release_name_spec
    elif target_namespace:
        full = f"{target_namespace}-{name}"
    else:
        full = name
    return shorten_release_name(full)


def _interned(value: str | None) -> str | None:
    return None if value is None else _intern(value)


def _kept_message(status: str, message: str) -> str:
    """The message a view keeps: none for a True condition (its "Helm install succeeded
    for release ..." names what history[0] holds, and fluxwatch never reports it; it was
    a tenth of a tracked release's memory), interned when short and generic ("Running
    'install' action ..." repeats across releases)."""
    if status == "True":
        return ""
    return _intern(message) if len(message) <= _INTERN_MESSAGE_MAX else message


def _condition(
    r: FieldReader, raw: Mapping[str, Any], path: str, ctype: str, seen: dict[Any, Any]
) -> Condition:
    status = r.string(raw, "status", path) or ""
    if status not in CONDITION_STATUSES:
        r.problems.append(f"{path}.status: expected True, False or Unknown, got {status!r}")
    message = _kept_message(status, r.string(raw, "message", path) or "")
    ltt = r.timestamp(raw, "lastTransitionTime", path)
    return Condition(
        type=_intern(ctype),
        status=_intern(status),
        reason=_intern(r.string(raw, "reason", path) or ""),
        message=seen.setdefault(message, message),
        observed_generation=r.integer(raw, "observedGeneration", path),
        last_transition=seen.setdefault(ltt, ltt),
    )


def _conditions(r: FieldReader, status: Mapping[str, Any]) -> dict[str, Condition]:
    raw = status.get("conditions")
    found: dict[str, Condition] = {}
    # Messages and times of this object: Ready and Released share one of each, not two.
    seen: dict[Any, Any] = {}
    if raw is None:
        return found
    if not isinstance(raw, list):
        r.wrong("status.conditions", "an array", raw)
        return found
    for i, item in enumerate(raw):
        path = f"status.conditions[{i}]"
        if not isinstance(item, Mapping):
            r.wrong(path, "an object", item)
            continue
        ctype = r.string(item, "type", path)
        if not ctype:
            if not isinstance(item.get("type"), str | None):
                continue  # the wrong type was noted by the reader
            r.problems.append(f"{path}.type: missing")
            continue
        # Conditions are a list-map keyed by type: the first of a type is the one.
        if ctype in _KEPT_CONDITIONS and ctype not in found:
            found[ctype] = _condition(r, item, path, ctype, seen)
    return found


def _snapshot(r: FieldReader, status: Mapping[str, Any], rel_name: str) -> Snapshot | None:
    history = status.get("history")
    if history is None:
        return None
    if not isinstance(history, list):
        r.wrong("status.history", "an array", history)
        return None
    if not history:
        return None
    raw = history[0]
    path = "status.history[0]"
    if not isinstance(raw, Mapping):
        r.wrong(path, "an object", raw)
        return None
    before = len(r.problems)
    name = r.string(raw, "name", path)
    version = r.integer(raw, "version", path)
    helm_status = r.string(raw, "status", path)
    namespace = r.string(raw, "namespace", path) or ""
    action = r.string(raw, "action", path) or ""
    chart_name = r.string(raw, "chartName", path) or ""
    chart_version = r.string(raw, "chartVersion", path) or ""
    for field in ("name", "version", "status"):
        if raw.get(field) is None:
            r.problems.append(f"{path}.{field}: missing")
    if len(r.problems) > before or name is None or version is None or helm_status is None:
        return None
    return Snapshot(
        # Usually equal to the computed release name: keep one string, not two.
        name=rel_name if name == rel_name else name,
        namespace=_intern(namespace),
        version=version,
        status=_intern(helm_status),
        action=_intern(action),
        chart_name=_intern(chart_name),
        chart_version=_intern(chart_version),
    )


def _labels(r: FieldReader, meta: Mapping[str, Any]) -> Mapping[str, str]:
    raw = r.mapping(meta, "labels", "metadata")
    if not raw:
        return EMPTY
    pairs: list[tuple[str, str]] = []
    for k, v in raw.items():
        if not isinstance(v, str):
            r.wrong(f"metadata.labels[{k!r}]", "a string", v)
            continue
        pairs.append((str(k), v))
    if not pairs:
        return EMPTY
    # HelmReleases of one Kustomization carry the same labels: share one mapping.
    key = tuple(sorted(pairs))
    shared = _LABEL_SETS.get(key)
    if shared is None:
        shared = MappingProxyType({_intern(k): _intern(v) for k, v in pairs})
        if len(_LABEL_SETS) < _MAX_LABEL_SETS:
            _LABEL_SETS[key] = shared
    return shared


# Distinct dependsOn lists seen so far, shared by every release that names the same ones
# (the 30 dependents of one root): bounded like _LABEL_SETS.
_DEPENDENCY_SETS: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
_MAX_DEPENDENCY_SETS = 4096


def _shared_dependencies(deps: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    shared = _DEPENDENCY_SETS.get(deps)
    if shared is not None:
        return shared
    if len(_DEPENDENCY_SETS) < _MAX_DEPENDENCY_SETS:
        _DEPENDENCY_SETS[deps] = deps
    return deps


def _depends_on(
    r: FieldReader, spec: Mapping[str, Any], namespace: str
) -> tuple[tuple[str, str], ...]:
    """``spec.dependsOn`` resolved as helm-controller resolves it (module docstring). An
    entry that names no release (not an object, no name, a name or namespace that is not
    a string) is left out and noted: it is no edge fluxwatch could follow."""
    raw = spec.get("dependsOn")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.wrong("spec.dependsOn", "an array", raw)
        return ()
    deps: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        path = f"spec.dependsOn[{i}]"
        if not isinstance(item, Mapping):
            r.wrong(path, "an object", item)
            continue
        before = len(r.problems)
        name = r.string(item, "name", path)
        dep_ns = r.string(item, "namespace", path)
        if len(r.problems) > before:
            continue
        if not name:
            r.problems.append(f"{path}.name: missing")
            continue
        deps.append((_intern(dep_ns or namespace), _intern(name)))
    return _shared_dependencies(tuple(deps)) if deps else ()


def _read(obj: Mapping[str, Any]) -> HRView:
    r = FieldReader()
    meta = r.mapping(obj, "metadata")
    spec = r.mapping(obj, "spec")
    status = r.mapping(obj, "status")
    annotations = r.mapping(meta, "annotations", "metadata")

    name = r.string(meta, "name", "metadata") or ""
    if not name:
        r.problems.append("metadata.name: missing")
    namespace = _intern(r.string(meta, "namespace", "metadata") or "")
    if not namespace:
        r.problems.append("metadata.namespace: missing")

    def annotation(key: str) -> str | None:
        return r.string(annotations, key, "metadata.annotations")

    ignore = annotation(ANNOTATION_IGNORE)
    target_ns = r.string(spec, "targetNamespace", "spec")
    rel_spec = r.string(spec, "releaseName", "spec")
    storage_spec = r.string(spec, "storageNamespace", "spec")
    storage_status = r.string(status, "storageNamespace", "status")
    rel_name = release_name(name, rel_spec, target_ns) if name else (rel_spec or "")
    if rel_name == name:
        rel_name = name  # share the object: most HRs have no prefix and no releaseName
    conditions = _conditions(r, status)
    last_release = _snapshot(r, status, rel_name)
    depends_on = _depends_on(r, spec, namespace)

    observed = r.integer(status, "observedGeneration", "status")
    requested_at = annotation(ANNOTATION_REQUESTED_AT)
    force_at = annotation(ANNOTATION_FORCE_AT)
    handled_reconcile = r.string(status, "lastHandledReconcileAt", "status")
    handled_force = r.string(status, "lastHandledForceAt", "status")
    install_failures = r.integer(status, "installFailures", "status")
    upgrade_failures = r.integer(status, "upgradeFailures", "status")
    # After a handled request the token appears twice (annotation and status): keep one string.
    if handled_reconcile is not None and handled_reconcile == requested_at:
        handled_reconcile = requested_at
    if handled_force is not None and handled_force == force_at:
        handled_force = force_at
    return HRView(
        namespace=namespace,
        name=name,
        uid=r.string(meta, "uid", "metadata") or "",
        resource_version=r.string(meta, "resourceVersion", "metadata") or "",
        generation=r.integer(meta, "generation", "metadata") or 0,
        labels=_labels(r, meta),
        suspend=bool(r.boolean(spec, "suspend", "spec")),
        deleting=meta.get("deletionTimestamp") is not None,
        ignored=(ignore or "").strip().lower() == "true",
        suspended_at=annotation(ANNOTATION_SUSPENDED_AT),
        requested_at=requested_at,
        force_at=force_at,
        ready=conditions.get("Ready"),
        reconciling=conditions.get("Reconciling"),
        released=conditions.get("Released"),
        last_release=last_release,
        release_name=rel_name,
        target_namespace=_intern(target_ns or namespace),
        storage_namespace=_intern(storage_status or storage_spec or namespace),
        # The CRD defaults status to {"observedGeneration": -1}.
        observed_generation=-1 if observed is None else observed,
        last_handled_reconcile_at=handled_reconcile,
        last_handled_force_at=handled_force,
        last_attempted_release_action=_interned(
            r.string(status, "lastAttemptedReleaseAction", "status")
        ),
        malformed="; ".join(r.problems) if r.problems else None,
        remote=spec.get("kubeConfig") is not None,
        depends_on=depends_on,
        stalled=conditions.get("Stalled"),
        last_handled_reset_at=r.string(status, "lastHandledResetAt", "status"),
        install_failures=install_failures or 0,
        upgrade_failures=upgrade_failures or 0,
    )


def _unreadable(problem: str) -> HRView:
    return HRView(
        namespace="",
        name="",
        uid="",
        resource_version="",
        generation=0,
        labels=EMPTY,
        suspend=False,
        deleting=False,
        ignored=False,
        suspended_at=None,
        requested_at=None,
        force_at=None,
        ready=None,
        reconciling=None,
        released=None,
        last_release=None,
        release_name="",
        target_namespace="",
        storage_namespace="",
        observed_generation=-1,
        last_handled_reconcile_at=None,
        last_handled_force_at=None,
        last_attempted_release_action=None,
        malformed=problem,
    )


# -- the wire reader: what list pages and watch events go through ------------------------
#
# msgspec decodes the bytes straight into these structs, in C: it reads only the fields
# declared here, skips the rest (managedFields, values, digests, annotations no view
# reads) without building a dict for them and checks every declared type on the way.
# On the watch benchmark's events, decoding takes half the time of orjson.loads alone
# (3.6 us against 8), and bytes to view 40% of orjson plus the dict reader
# (bench/watch.py's CPU ceilings). Anything
# that does not fit, a wrong type anywhere in a declared field, comes back as None, and
# the exact reader (:func:`_read`) reads the object again and names the problem.


_NO_RAW = msgspec.Raw(b"")
Key = tuple[str, str]
_NO_VIEWS: Mapping[Key, HRView] = MappingProxyType({})


class _WireCondition(msgspec.Struct, rename="camel", gc=False):
    type: str | None = None
    status: str | None = None
    reason: str | None = None
    message: str | None = None
    observed_generation: int | None = None
    last_transition_time: str | None = None


class _WireSnapshot(msgspec.Struct, rename="camel", gc=False):
    name: str | None = None
    version: int | None = None
    status: str | None = None
    namespace: str | None = None
    action: str | None = None
    chart_name: str | None = None
    chart_version: str | None = None


class _WireAnnotations(msgspec.Struct, gc=False):
    # Only the annotations a view reads: the others (kubectl's last-applied-configuration
    # can be kilobytes) are skipped like managedFields, and no dict is built per event.
    ignore: str | None = msgspec.field(default=None, name=ANNOTATION_IGNORE)
    suspended_at: str | None = msgspec.field(default=None, name=ANNOTATION_SUSPENDED_AT)
    requested_at: str | None = msgspec.field(default=None, name=ANNOTATION_REQUESTED_AT)
    force_at: str | None = msgspec.field(default=None, name=ANNOTATION_FORCE_AT)


class _WireMeta(msgspec.Struct, rename="camel", gc=False):
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    # Kept as bytes until needed: releases of one Kustomization send the very same label
    # bytes, and a lookup by them is a fifth of decoding, sorting and hashing the pairs.
    labels: msgspec.Raw = _NO_RAW
    annotations: _WireAnnotations | None = None
    deletion_timestamp: Any = None


class _WireSpec(msgspec.Struct, rename="camel", gc=False):
    suspend: bool | None = None
    target_namespace: str | None = None
    release_name: str | None = None
    storage_namespace: str | None = None
    # Only whether it is set matters: its bytes stay undecoded.
    kube_config: msgspec.Raw = _NO_RAW
    # Kept as bytes until needed, like labels: dependents of one root send the same bytes.
    depends_on: msgspec.Raw = _NO_RAW


class _WireDependency(msgspec.Struct, gc=False):
    # readyExpr is not declared: it is no part of the edge (module docstring).
    name: str | None = None
    namespace: str | None = None


class _WireStatus(msgspec.Struct, rename="camel", gc=False):
    conditions: list[_WireCondition] | None = None
    history: list[_WireSnapshot] | None = None
    observed_generation: int | None = None
    storage_namespace: str | None = None
    last_handled_reconcile_at: str | None = None
    last_handled_force_at: str | None = None
    last_attempted_release_action: str | None = None
    last_handled_reset_at: str | None = None
    install_failures: int | None = None
    upgrade_failures: int | None = None


class _WireHelmRelease(msgspec.Struct, gc=False):
    metadata: _WireMeta | None = None
    spec: _WireSpec | None = None
    status: _WireStatus | None = None


class _WireEvent(msgspec.Struct, gc=False):
    type: str
    object: _WireHelmRelease


class _WireListMeta(msgspec.Struct, gc=False):
    resource_version: str | None = msgspec.field(default=None, name="resourceVersion")
    continue_: str | None = msgspec.field(default=None, name="continue")


class _WireList(msgspec.Struct, gc=False):
    metadata: _WireListMeta | None = None
    items: list[_WireHelmRelease] | None = None


_decode_event = msgspec.json.Decoder(_WireEvent).decode
_decode_object = msgspec.json.Decoder(_WireHelmRelease).decode
_decode_list = msgspec.json.Decoder(_WireList).decode
# msgspec skips undeclared fields (spec.values) by recursion: nested near a thousand
# levels deep, which the API server takes, they run out of Python's recursion limit.
# Invalid UTF-8 in a declared string is a UnicodeDecodeError, not a DecodeError (in a
# skipped one msgspec lets it pass): hr_event and hr_page raised it instead of None.
_WIRE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError)
_EMPTY_SPEC = _WireSpec()
_EMPTY_STATUS = _WireStatus()
_NO_ANNOTATIONS = _WireAnnotations()


def _wire_condition(
    item: _WireCondition,
    ctype: str,
    messages: dict[str, str],
    times: dict[str, float],
    before: Condition | None,
) -> Condition | None:
    """:func:`_condition` for a well-formed condition; None for anything else.

    ``ctype`` is the kept type's own constant. ``messages`` and ``times`` are the
    object's own: Ready and Released usually carry one message and one transition time,
    read (and kept) once. ``before`` is the condition of that type in the object's
    previous view: when nothing in it changed (a reconcile of a healthy release) it is
    the condition, not a copy of it (a copy and its interned strings were a tenth of an
    event's instructions).
    """
    status = _STATUSES.get(item.status)  # type: ignore[arg-type]
    if status is None:
        return None
    ltt = item.last_transition_time
    if not ltt:
        since = None
    else:
        since = times.get(ltt)
        if since is None:
            try:
                since = times[ltt] = parse_rfc3339(ltt)
            except ValueError:
                return None
    reason = item.reason
    if (
        before is not None
        and before.status is status
        and before.last_transition == since
        and before.observed_generation == item.observed_generation
        and before.reason == (reason or "")
        and (status == "True" or before.message == (item.message or ""))
    ):
        messages.setdefault(before.message, before.message)
        return before
    if status == "True":
        message = ""
    else:
        message = _kept_message(status, item.message or "")
        message = messages.setdefault(message, message)
    return Condition(
        ctype,
        status,
        _intern(reason) if reason else "",
        message,
        item.observed_generation,
        since,
    )


# Label bytes seen so far and their shared mapping; bounded like _LABEL_SETS.
_LABEL_BYTES: dict[bytes, Mapping[str, str]] = {}
_decode_labels = msgspec.json.Decoder(dict[str, str] | None).decode


def _wire_labels(raw: msgspec.Raw) -> Mapping[str, str] | None:
    """:func:`_labels` from the labels' JSON bytes; None when they are not strings."""
    if raw is _NO_RAW:
        return EMPTY
    key = bytes(raw)
    shared = _LABEL_BYTES.get(key)
    if shared is not None:
        return shared
    try:
        pairs = _decode_labels(key)
    except _WIRE_ERRORS:
        return None
    if not pairs:
        return EMPTY
    sorted_key = tuple(sorted(pairs.items()))
    shared = _LABEL_SETS.get(sorted_key)
    if shared is None:
        shared = MappingProxyType({_intern(k): _intern(v) for k, v in pairs.items()})
        if len(_LABEL_SETS) < _MAX_LABEL_SETS:
            _LABEL_SETS[sorted_key] = shared
    if len(_LABEL_BYTES) < _MAX_LABEL_SETS:
        _LABEL_BYTES[key] = shared
    return shared


# (namespace, dependsOn bytes) seen so far and their resolved edges; bounded like _LABEL_BYTES.
_DEPENDENCY_BYTES: dict[tuple[str, bytes], tuple[tuple[str, str], ...]] = {}
_decode_dependencies = msgspec.json.Decoder(list[_WireDependency] | None).decode


def _wire_dependencies(raw: msgspec.Raw, namespace: str) -> tuple[tuple[str, str], ...] | None:
    """:func:`_depends_on` from the field's JSON bytes; None when an entry names no release."""
    key = (namespace, bytes(raw))
    shared = _DEPENDENCY_BYTES.get(key)
    if shared is not None:
        return shared
    try:
        items = _decode_dependencies(key[1])
    except _WIRE_ERRORS:
        return None
    deps: list[tuple[str, str]] = []
    for item in items or ():
        if not item.name:
            return None
        deps.append((_intern(item.namespace or namespace), _intern(item.name)))
    shared = _shared_dependencies(tuple(deps)) if deps else ()
    if len(_DEPENDENCY_BYTES) < _MAX_DEPENDENCY_SETS:
        _DEPENDENCY_BYTES[key] = shared
    return shared


def _from_wire(obj: _WireHelmRelease, known: Mapping[Key, HRView] = _NO_VIEWS) -> HRView | None:
    """The view of a decoded object whose declared fields all have their JSON types.

    None when something is still missing or wrong (no name, a condition without a type
    or with a status outside True/False/Unknown, an unparsable time, an incomplete
    ``history[0]``, a ``dependsOn`` entry without a name): :func:`_read` then reads the
    object and says what. For every object it accepts, the view is the one :func:`_read`
    makes (same values, same sharing).

    It runs once per watch event, so the usual case of the exact reader's helpers (a
    release name with nothing to shorten, labels seen before) is done inline: a Python
    call costs about as much here as the work it does. ``known`` holds the views read
    before (the informer's cache): what did not change since the object's previous view
    (its conditions, ``history[0]``, names) is taken from that view, equal and already
    interned, instead of being built again.
    """
    meta = obj.metadata
    if meta is None:
        return None
    name = meta.name
    namespace = meta.namespace
    if not name or not namespace:
        return None
    before = known.get((namespace, name))
    if before is None:
        namespace = _intern(namespace)
    else:
        namespace = before.namespace
        name = before.name
    spec = obj.spec or _EMPTY_SPEC
    status = obj.status or _EMPTY_STATUS
    annotations = meta.annotations or _NO_ANNOTATIONS
    ignore = annotations.ignore
    suspended_at = annotations.suspended_at
    requested_at = annotations.requested_at
    force_at = annotations.force_at
    target_ns = spec.target_namespace
    # release_name(), inlined: shortening is for names over 53 characters only.
    rel_name = spec.release_name or (f"{target_ns}-{name}" if target_ns else name)
    if len(rel_name) > MAX_RELEASE_NAME or not rel_name.isascii():
        rel_name = shorten_release_name(rel_name)
    if rel_name == name:
        rel_name = name
    elif before is not None and rel_name == before.release_name:
        rel_name = before.release_name

    raw_labels = meta.labels
    labels: Mapping[str, str] = EMPTY
    if raw_labels is not _NO_RAW:
        found_labels = _LABEL_BYTES.get(bytes(raw_labels)) or _wire_labels(raw_labels)
        if found_labels is None:
            return None
        labels = found_labels
    # Most releases name no dependency: no call for them (it was 5% of this function).
    depends_on: tuple[tuple[str, str], ...] = ()
    if spec.depends_on is not _NO_RAW:
        found = _wire_dependencies(spec.depends_on, namespace)
        if found is None:
            return None
        depends_on = found
    ready = reconciling = released = stalled = None
    if before is None:
        was_ready = was_reconciling = was_released = was_stalled = None
    else:
        was_ready = before.ready
        was_reconciling = before.reconciling
        was_released = before.released
        was_stalled = before.stalled
    if status.conditions:
        messages: dict[str, str] = {}
        times: dict[str, float] = {}
        for item in status.conditions:
            ctype = item.type
            if not ctype:
                return None
            if ctype == "Ready":
                if ready is None:
                    ready = _wire_condition(item, "Ready", messages, times, was_ready)
                    if ready is None:
                        return None
            elif ctype == "Released":
                if released is None:
                    released = _wire_condition(item, "Released", messages, times, was_released)
                    if released is None:
                        return None
            elif ctype == "Reconciling":
                if reconciling is None:
                    reconciling = _wire_condition(
                        item, "Reconciling", messages, times, was_reconciling
                    )
                    if reconciling is None:
                        return None
            elif ctype == "Stalled" and stalled is None:
                stalled = _wire_condition(item, "Stalled", messages, times, was_stalled)
                if stalled is None:
                    return None

    last_release = None
    if status.history:
        first = status.history[0]
        h_name = first.name
        if h_name is None or first.version is None or first.status is None:
            return None
        last_release = None if before is None else before.last_release
        if (
            last_release is None
            or last_release.version != first.version
            or last_release.name != h_name
            or last_release.status != first.status
            or last_release.namespace != (first.namespace or "")
            or last_release.action != (first.action or "")
            or last_release.chart_name != (first.chart_name or "")
            or last_release.chart_version != (first.chart_version or "")
        ):
            last_release = Snapshot(
                rel_name if h_name == rel_name else h_name,
                _intern(first.namespace or ""),
                first.version,
                _intern(first.status),
                _intern(first.action or ""),
                _intern(first.chart_name or ""),
                _intern(first.chart_version or ""),
            )

    handled_reconcile = status.last_handled_reconcile_at
    handled_force = status.last_handled_force_at
    if handled_reconcile is not None and handled_reconcile == requested_at:
        handled_reconcile = requested_at
    if handled_force is not None and handled_force == force_at:
        handled_force = force_at
    observed = status.observed_generation
    target = target_ns or namespace
    storage = status.storage_namespace or spec.storage_namespace or namespace
    action = status.last_attempted_release_action
    # Equal to the previous view's (the usual case): its interned strings, found by one
    # comparison where interning hashes the string and looks it up.
    if before is None:
        target = _intern(target)
        storage = _intern(storage)
        action = None if action is None else _intern(action)
    else:
        target = before.target_namespace if target == before.target_namespace else _intern(target)
        storage = (
            before.storage_namespace if storage == before.storage_namespace else _intern(storage)
        )
        if action is not None:
            was = before.last_attempted_release_action
            action = was if action == was else _intern(action)
    kube_config = spec.kube_config
    return HRView(
        namespace,
        name,
        meta.uid or "",
        meta.resource_version or "",
        meta.generation or 0,
        labels,
        bool(spec.suspend),
        meta.deletion_timestamp is not None,
        ignore is not None and ignore.strip().lower() == "true",
        suspended_at,
        requested_at,
        force_at,
        ready,
        reconciling,
        released,
        last_release,
        rel_name,
        target,
        storage,
        -1 if observed is None else observed,
        handled_reconcile,
        handled_force,
        action,
        None,
        kube_config is not _NO_RAW and bytes(kube_config) != b"null",
        depends_on,
        stalled,
        status.last_handled_reset_at,
        status.install_failures or 0,
        status.upgrade_failures or 0,
    )


def _read_fast(obj: Mapping[str, Any]) -> HRView | None:
    """The wire reader for an object already decoded to dicts (a GET, a patch's answer):
    encoded again, since the reader starts from bytes; still a third of the time the dict
    reader it replaced took, and one reader for every way an object arrives."""
    try:
        wire = _decode_object(orjson.dumps(obj))
    except _WIRE_ERRORS:
        return None
    return _from_wire(wire)


def _hr_event_py(line: Line, known: Mapping[Key, HRView] = _NO_VIEWS) -> tuple[str, HRView] | None:
    """One watch line of HelmReleases: ``(type, view)`` for ADDED, MODIFIED and DELETED
    objects the wire reader accepts; None for every other line (bookmarks, errors,
    anything unusual), which the informer then reads the general way. ``known``: the
    views read so far by namespace and name, whose unchanged parts the view shares.

    This is the wire reader in Python; :data:`hr_event` is the native one where it is
    built, which reads the usual lines itself and hands every other one to this."""
    try:
        event = _decode_event(line)
    except _WIRE_ERRORS:
        return None
    etype = event.type
    if etype not in _OBJECT_EVENTS:
        return None
    try:
        view = _from_wire(event.object, known)
    except Exception:  # as in hr_view: the general way reads it and explains
        return None
    return None if view is None else (etype, view)


def _hr_page_py(body: bytes) -> Page[HRView] | None:
    """One list page of HelmReleases: its views, ``continue`` token and resourceVersion;
    None when any item needs the exact reader (the informer then reads the page the
    general way and the exact reader names what is wrong).

    This is the page reader in Python; :data:`hr_page` is the native one where it is
    built, which reads pages whose items it takes whole and hands every other to this."""
    try:
        page = _decode_list(body)
    except _WIRE_ERRORS:
        return None
    views: list[HRView] = []
    try:
        for item in page.items or ():
            view = _from_wire(item)
            if view is None:
                return None
            views.append(view)
    except Exception:  # as in hr_view: the general way reads it and explains
        return None
    meta = page.metadata
    if meta is None:
        return Page(views, None, None)
    return Page(views, meta.continue_ or None, meta.resource_version or None)


def hr_view(obj: Mapping[str, Any]) -> HRView:
    """Read a HelmRelease; never raises (see the module docstring)."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        return _unreadable(f"<object>: expected an object, got {json_type(obj)}")
    try:
        view = _read_fast(obj)
    except Exception:  # whatever trips the fast path, the careful one reads and explains
        view = None
    if view is not None:
        return view
    try:
        return _read(obj)
    except Exception as exc:  # a view must come out of any input; say what broke
        return _unreadable(f"<object>: unreadable: {type(exc).__name__}: {exc}")


EventReader = Callable[[Line, Mapping[Key, HRView]], tuple[str, HRView] | None]
PageReader = Callable[[bytes], Page[HRView] | None]


def _native_readers() -> tuple[EventReader, PageReader] | None:
    """The native wire reader (``fluxwatch/kube/_hrwire.c``) of watch lines and list pages,
    configured with what a view is made of; None where it was not built (no C compiler at
    install) or is turned off (:mod:`fluxwatch.native`).

    It reads the lines and pages the API server sends every day (watch lines at less than
    half the instructions of :func:`_hr_event_py`: README, "Performance") and hands every
    other one to :func:`_hr_event_py` or :func:`_hr_page_py`, so the two give the same
    views; tests/unit/test_hrwire_native.py holds them to it on thousands of generated and
    mutated lines and pages. A label set or dependsOn list it has not seen it reads with
    the Python reader's own :func:`_wire_labels` and :func:`_wire_dependencies`."""
    _hrwire = native.load(native.HRWIRE)
    if _hrwire is None:
        return None
    _hrwire.configure(
        view=HRView,
        condition=Condition,
        snapshot=Snapshot,
        page=Page,
        empty_labels=EMPTY,
        label_bytes=_LABEL_BYTES,
        dependency_bytes=_DEPENDENCY_BYTES,
        labels_reader=_wire_labels,
        dependencies_reader=_wire_dependencies,
        fallback=_hr_event_py,
        page_fallback=_hr_page_py,
        no_views=_NO_VIEWS,
        # The very objects the Python reader uses: a view's status is one of these.
        statuses=(_STATUSES["True"], _STATUSES["False"], _STATUSES["Unknown"]),
        conditions=("Ready", "Released", "Reconciling", "Stalled"),
        events=("ADDED", "MODIFIED", "DELETED"),
        empty="",
    )
    return _hrwire.hr_event, _hrwire.hr_page


_NATIVE = _native_readers()
hr_event: EventReader = _hr_event_py if _NATIVE is None else _NATIVE[0]
"""One watch line of HelmReleases to ``(type, view)``, or None (see :func:`_hr_event_py`)."""
hr_page: PageReader = _hr_page_py if _NATIVE is None else _NATIVE[1]
"""One list page of HelmReleases to its :class:`Page`, or None (see :func:`_hr_page_py`)."""
NATIVE_READER = _NATIVE is not None
"""Whether watch lines and list pages are read natively (``fluxwatch --version`` says it)."""

HELMRELEASES_CODEC: Codec[HRView] = Codec(hr_view, hr_event, hr_page)
"""What HelmRelease informers read with: the wire reader first, the exact one after."""
