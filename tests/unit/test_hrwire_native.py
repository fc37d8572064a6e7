"""The native watch-line reader against the Python one, line by line: a differential fuzz.

``fluxwatch.kube._hrwire.event(line, known)`` reads the common shapes of a HelmRelease
watch line in C and defers everything else (None) to ``_hr_event_py``, the Python
reader. Deferring is always allowed; answering differently never is. A seeded generator
makes several thousand lines from realistic objects (the fixtures, one object with every
field a view reads, the benchmark's objects with their managedFields) and breaks them
field by field (each declared field with each JSON type, missing, the times, names,
conditions and event types that sit at the edge of what the readers take) and byte by
byte (whitespace, key order, duplicate keys, escapes, UTF-8, control characters,
numbers, nesting, trailing bytes, truncation). Each line is read with several informer
caches, and for each the native reader is held to the contract:

- its answer is None or equal to the Python reader's, field types included;
- a view it makes shares with the object's previous view (``known``) exactly what the
  Python reader's shares, and within itself at least what Python's shares: the
  informer's memory and speed rest on both;
- ``hr_event`` (the native reader with the Python one behind it) answers as the Python
  reader does.

The caches: none, the object's previous view as the Python reader made it and as the
native one did (what the informer holds once it reads natively), a read-only empty one
(hr_event's default), one holding another object, and one holding another object's
view under this one's key (a release deleted and made again). And the native reader
must take the usual: every unmutated line (but one whose release name is hashed) and
at least half the field-level breakages the Python reader takes, so that a reader
that always defers fails. Nor may it leak: thousands of calls leave the refcounts of
the views it shares from and the memory in use as they were.
"""

from __future__ import annotations

import functools
import gc
import json
import random
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import orjson
import pytest

from bench.emulator import managed_fields
from fluxwatch.kube import helmrelease
from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.kube.helmrelease import (
    ANNOTATION_FORCE_AT,
    ANNOTATION_IGNORE,
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_SUSPENDED_AT,
    FINALIZER,
    Condition,
    HRView,
    Snapshot,
    hr_view,
)
from fluxwatch.sim.helmcontroller import Desired, ready_status, stuck_status
from fluxwatch.sim.scenarios import CATALOG, Component
from fluxwatch.sim.scenarios import helmrelease as catalog_helmrelease

FIXTURES = Path(__file__).parent.parent / "fixtures"
SEED = 20261128
Reader = Callable[[Any, Mapping[tuple[str, str], HRView]], tuple[str, HRView] | None]
# Of the field-level breakages the Python reader takes, the share the native one must take
# too: most of them are the common shapes with one value changed (null, "", another
# string or integer, a field left out), which are what the native reader is for.
TAKEN_FLOOR = 0.5


# -- the bases: realistic objects -----------------------------------------------------------


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def _full() -> dict[str, Any]:
    """Every field a view reads set (as in test_the_readers_agree_on_random_breakages),
    and four conditions, so that each can be broken."""
    obj = _fixture("hr_stalled_upgrade.json")
    obj["metadata"]["annotations"] = {
        ANNOTATION_IGNORE: "true",
        ANNOTATION_SUSPENDED_AT: "2026-11-26T10:00:00Z",
        ANNOTATION_REQUESTED_AT: "token-1",
        ANNOTATION_FORCE_AT: "token-2",
        "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v2"}',
    }
    obj["metadata"]["deletionTimestamp"] = "2026-11-26T10:00:00Z"
    obj["spec"].update(
        suspend=True,
        releaseName="rel",
        targetNamespace="tgt",
        storageNamespace="store",
        kubeConfig={"secretRef": {"name": "prod-kubeconfig", "key": "value.yaml"}},
        dependsOn=[
            {"name": "bp-cilium"},
            {"name": "postgres", "namespace": "data", "readyExpr": "true"},
            {"name": "redis", "namespace": ""},
        ],
    )
    obj["status"].update(
        lastHandledReconcileAt="token-1",
        lastHandledForceAt="token-0",
        lastHandledResetAt="token-r",
        lastAttemptedReleaseAction="upgrade",
        storageNamespace="old-store",
        installFailures=1,
    )
    obj["status"]["conditions"].append(
        {
            "type": "Reconciling",
            "status": "Unknown",
            "reason": "Progressing",
            "message": "Running 'upgrade' action with timeout of 5m0s",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-11-26T09:59:00Z",
        }
    )
    return obj


_BENCH_NOW = 1_795_000_000.0  # a fixed "now": the lines must not depend on the clock


def _bench(
    component: Component, namespace: str, name: str, serial: int, *, stuck: bool
) -> dict[str, Any]:
    """An object of the watch benchmark's burst (bench/emulator.py): the load scenario's
    HelmRelease, its status as the simulated helm-controller writes it, the annotation
    ``flux reconcile`` sets and the managedFields a real API server sends."""
    template = catalog_helmrelease(component)
    obj: dict[str, Any] = {
        "apiVersion": template["apiVersion"],
        "kind": template["kind"],
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
            "finalizers": [FINALIZER],
        },
        "spec": template["spec"],
    }
    desired = Desired.of(obj)
    if stuck:
        obj["status"] = stuck_status(desired, first=_BENCH_NOW - 900, since=_BENCH_NOW - 890)
    else:
        obj["status"] = ready_status(
            desired,
            generation=1,
            version=4,
            action="upgrade",
            first=_BENCH_NOW - 86400 * 3,
            last=_BENCH_NOW - 3600,
            transition=_BENCH_NOW - 3570,
        )
    meta = obj["metadata"]
    meta["creationTimestamp"] = format_rfc3339(_BENCH_NOW - 86400 * 4)
    meta["managedFields"] = managed_fields(obj)
    meta.update(
        uid=f"cfe0d2a5-050a-4ffe-85b3-{serial:012d}",
        generation=1,
        resourceVersion="81",
        annotations={ANNOTATION_REQUESTED_AT: "bench-burst"},
    )
    return obj


def _bench_bases() -> list[tuple[str, dict[str, Any]]]:
    alloy = next(c for c in CATALOG if c.name == "bp-alloy")
    dns = next(c for c in CATALOG if c.name == "bp-external-dns")
    exporter = next(c for c in CATALOG if c.name == "bp-prometheus-node-exporter")
    load = Component(alloy.name, "tenant", alloy.chart, alloy.version, alloy.repository)
    load_dns = Component(dns.name, "tenant", dns.chart, dns.version, dns.repository)
    return [
        ("bench ready", _bench(load, "tenant-000", "alloy-28", 1, stuck=False)),
        ("bench stuck", _bench(load_dns, "tenant-001", "external-dns-12", 2, stuck=True)),
        # <targetNamespace>-<name> of 61 characters, and a cross-namespace dependency.
        ("bench bootstrap", _bench(exporter, "flux-system", exporter.name, 3, stuck=False)),
        ("bench app", _bench(dns, "network", dns.name, 4, stuck=True)),
    ]


def _bases() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("hr_ready", _fixture("hr_ready.json")),
        ("hr_stuck_upstream", _fixture("hr_stuck_upstream.json")),
        ("hr_stalled_upgrade", _fixture("hr_stalled_upgrade.json")),
        ("full", _full()),
        *_bench_bases(),
    ]


# -- writing lines: JSON a serializer would not write ---------------------------------------


@dataclass(frozen=True)
class _Raw:
    """JSON text put into the line as it is: what no Python value encodes to."""

    text: bytes


class _Pairs(list[tuple[Any, Any]]):
    """A JSON object as its members in order, duplicate keys allowed."""


_MISSING = object()  # "leave the field out"
_WHITESPACE = (b" ", b"\t", b"\r", b" \t", b"\r \t  ")


@dataclass
class _Style:
    """How a line is written: whitespace where JSON allows it, key order, escapes."""

    rng: random.Random
    space: float = 0.0  # chance of whitespace at each place JSON allows it
    shuffle: bool = False
    escape: float = 0.0  # chance of writing a character of a string as \uXXXX
    slash: bool = False  # "/" as "\/"

    def ws(self) -> bytes:
        if self.space and self.rng.random() < self.space:
            return self.rng.choice(_WHITESPACE)
        return b""

    def string(self, s: str) -> bytes:
        if not self.escape and not self.slash:
            return orjson.dumps(s)
        out = ['"']
        for ch in s:
            code = ord(ch)
            if ch in '"\\':
                out.append("\\" + ch)
            elif code < 0x20 or (self.escape and self.rng.random() < self.escape):
                if code > 0xFFFF:
                    code -= 0x10000
                    out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}")
                else:
                    out.append(f"\\u{code:04x}" if self.rng.random() < 0.5 else f"\\u{code:04X}")
            elif ch == "/" and self.slash:
                out.append("\\/")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out).encode("utf-8")


def _emit(node: Any, style: _Style, out: list[bytes]) -> None:
    if isinstance(node, _Raw):
        out.append(node.text)
    elif isinstance(node, str):
        out.append(style.string(node))
    elif isinstance(node, dict | _Pairs):
        members = [m for m in (node.items() if isinstance(node, dict) else node)]
        if style.shuffle:
            style.rng.shuffle(members)
        out.append(b"{")
        for i, (k, v) in enumerate(members):
            out.append(b"," if i else b"")
            out.append(style.ws())
            out.append(k.text if isinstance(k, _Raw) else style.string(k))
            out += (style.ws(), b":", style.ws())
            _emit(v, style, out)
            out.append(style.ws())
        out.append(b"}" if members else style.ws() + b"}")
    elif isinstance(node, list):
        out.append(b"[")
        for i, item in enumerate(node):
            out += (b"," if i else b"", style.ws())
            _emit(item, style, out)
            out.append(style.ws())
        out.append(b"]" if node else style.ws() + b"]")
    else:
        out.append(orjson.dumps(node))


def _encode(node: Any, style: _Style | None = None) -> bytes:
    if style is None:
        return orjson.dumps(node)
    out: list[bytes] = []
    _emit(node, style, out)
    return b"".join(out)


# -- where things are in an event -------------------------------------------------------------

JsonPath = tuple[str | int, ...]
_ANNOTATIONS = (
    ANNOTATION_IGNORE,
    ANNOTATION_SUSPENDED_AT,
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_FORCE_AT,
)
_O = ("object",)
_META = (*_O, "metadata")
_SPEC = (*_O, "spec")
_STATUS = (*_O, "status")
# The JSON type each declared field of the _Wire* structs expects; "#" is any list index,
# "*" any label key. Every other path is skipped by the decoder (never built, but parsed).
_DECLARED: dict[JsonPath, str] = {
    ("type",): "string",
    _O: "object",
    _META: "object",
    _SPEC: "object",
    _STATUS: "object",
    **{(*_META, k): "string" for k in ("name", "namespace", "uid", "resourceVersion")},
    (*_META, "generation"): "integer",
    (*_META, "labels"): "labels",
    (*_META, "labels", "*"): "string",
    (*_META, "annotations"): "object",
    **{(*_META, "annotations", k): "string" for k in _ANNOTATIONS},
    (*_META, "deletionTimestamp"): "any",
    (*_SPEC, "suspend"): "boolean",
    **{(*_SPEC, k): "string" for k in ("targetNamespace", "releaseName", "storageNamespace")},
    (*_SPEC, "kubeConfig"): "any",
    (*_SPEC, "dependsOn"): "array",
    (*_SPEC, "dependsOn", "#"): "object",
    (*_SPEC, "dependsOn", "#", "name"): "string",
    (*_SPEC, "dependsOn", "#", "namespace"): "string",
    (*_STATUS, "conditions"): "array",
    (*_STATUS, "conditions", "#"): "object",
    **{
        (*_STATUS, "conditions", "#", k): "string"
        for k in ("type", "status", "reason", "message", "lastTransitionTime")
    },
    (*_STATUS, "conditions", "#", "observedGeneration"): "integer",
    (*_STATUS, "history"): "array",
    (*_STATUS, "history", "#"): "object",
    **{
        (*_STATUS, "history", "#", k): "string"
        for k in ("name", "status", "namespace", "action", "chartName", "chartVersion")
    },
    (*_STATUS, "history", "#", "version"): "integer",
    **{
        (*_STATUS, k): "string"
        for k in (
            "storageNamespace",
            "lastHandledReconcileAt",
            "lastHandledForceAt",
            "lastAttemptedReleaseAction",
            "lastHandledResetAt",
        )
    },
    **{
        (*_STATUS, k): "integer"
        for k in ("observedGeneration", "installFailures", "upgradeFailures")
    },
}


def _pattern(path: JsonPath) -> JsonPath:
    pattern = tuple("#" if isinstance(p, int) else p for p in path)
    if pattern[:3] == (*_META, "labels") and len(pattern) > 3:
        pattern = (*pattern[:3], "*", *pattern[4:])
    return pattern


def _paths(node: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    """Every path to a value in a JSON document, parents first."""
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _clone(doc: Any) -> Any:
    """A deep copy of a plain JSON document, a fifth of copy.deepcopy's time."""
    return orjson.loads(orjson.dumps(doc))


def _get(doc: Any, path: JsonPath) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: JsonPath, value: Any) -> None:
    """Set (or, with _MISSING, remove) the value at ``path``, making parent objects."""
    for part in path[:-1]:
        if isinstance(doc, dict) and not isinstance(doc.get(part), dict | list):
            doc[part] = {}
        doc = doc[part]
    if value is _MISSING:
        if isinstance(doc, list):
            del doc[path[-1]]
        else:
            doc.pop(path[-1], None)
    else:
        doc[path[-1]] = value


def _declared_paths(event: dict[str, Any]) -> list[JsonPath]:
    """The declared fields of an event: those it has, and those it could have (the
    optional fields of the objects it has)."""
    present = [p for p in _paths(event) if _pattern(p) in _DECLARED]
    absent = [
        p
        for p in _DECLARED
        if "#" not in p and "*" not in p and p not in present and _has(event, p[:-1])
    ]
    return present + absent


def _has(doc: Any, path: JsonPath) -> bool:
    try:
        return isinstance(_get(doc, path), dict)
    except (KeyError, IndexError, TypeError):
        return False


# -- the mutations ---------------------------------------------------------------------------

# Each JSON type, a few values of each, and "left out", for every declared field.
_FIELD_VALUES: list[Any] = [
    None,
    "",
    "x",
    "True",
    0,
    7,
    -1,
    2**40,
    1.5,
    True,
    False,
    [],
    ["a"],
    {},
    {"a": "b"},
    _MISSING,
]

_TIMES = [
    "2026-11-26T10:00:00Z",
    "2026-11-26T10:00:00.5Z",
    "2026-11-26T10:00:00.123456789Z",
    "2026-11-26T10:00:00+01:00",
    "2026-11-26T10:00:00-00:00",
    "2026-11-26T10:00:00+23:59",
    "2026-11-26T10:00:00+24:00",
    "2026-11-26T23:59:60Z",
    "2026-11-26T10:00:60Z",
    "2026-11-26T10:00:61Z",
    "2026-02-30T10:00:00Z",
    "2024-02-29T10:00:00Z",
    "2025-02-29T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2026-00-01T10:00:00Z",
    "2026-11-00T10:00:00Z",
    "2026-11-26T24:00:00Z",
    "2026-11-26T10:60:00Z",
    "0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2026-11-26T10:00:00z",
    "2026-11-26t10:00:00Z",
    "2026-11-26 10:00:00Z",
    "2026-11-26T10:00:0Z",  # 19 characters
    "2026-11-26T10:00:00",  # 19, no zone
    "2026-11-26T10:00:000Z",  # 21
    "2026-11-26T10:00:00ZZ",
    "2026-11-26T10:00:00.Z",
    "2026-11-26T10:00:00,5Z",
    "2026-W48-4T10:00:00Z",
    "2026-11-26T10-00-00Z",
    "2026/11/26T10:00:00Z",
    "+2026-11-26T10:00:00Z",
    "-2026-11-26T10:00:00Z",
    "2026-11-2610:00:00Z",
    "\uff12026-11-26T10:00:00Z",  # a fullwidth 2: int() would take it
    "2026-11-26T10:00:00Z ",
    " 2026-11-26T10:00:00Z",
    "x",
]

_NAMES_53 = "n" * 53


@dataclass
class _Case:
    """One line to read and what it is, for the failure message."""

    what: str
    # "base" (unmutated), "field" or "byte" (mutated), "whole" (unmutated, the cache broken)
    kind: str
    line: bytes
    whole: bytes  # the unmutated line, to show where this one differs
    key: tuple[str, str]  # the base object's
    # The view of the object the line came from as read before it broke, or of the broken
    # object when the line is the whole one (the informer's cache after either order).
    before: HRView | None = None
    memoryview: bool = False
    must_take: bool = False  # an unmutated line the native reader is for
    # Another object's view under this one's key: a release deleted and made again.
    stranger: HRView | None = None


def _event(obj: Any, etype: Any = "MODIFIED") -> dict[str, Any]:
    return {"type": etype, "object": obj}


def _field_mutations(
    obj: dict[str, Any], values: Callable[[], list[Any]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every declared field of the event with each of ``values()`` (drawn per field)."""
    event = _event(obj)
    for path in _declared_paths(event):
        for value in values():
            broken = _clone(event)
            _set(broken, path, value if value is _MISSING else _clone(value))
            shown = "missing" if value is _MISSING else json.dumps(value)
            yield f"{'.'.join(map(str, path))} = {shown}", broken


def _conditions_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    status = event["object"].setdefault("status", {})
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    return conditions


def _semantic_mutations(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The values at the edge of what the readers take: times, condition lists, history,
    labels, dependencies, names near 53 characters, annotations, event types."""

    def edit(what: str, change: Callable[[dict[str, Any]], Any]) -> tuple[str, dict[str, Any]]:
        event = _clone(_event(obj))
        change(event)
        return what, event

    conditions = obj.get("status", {}).get("conditions", [])
    for i in range(len(conditions)):
        for t in _TIMES:
            yield edit(
                f"conditions[{i}].lastTransitionTime = {t!r}",
                lambda e, i=i, t=t: _conditions_of(e)[i].update(lastTransitionTime=t),
            )
        for s in ("True", "False", "Unknown", "true", "unknown", "", " True", "Maybe"):
            yield edit(
                f"conditions[{i}].status = {s!r}",
                lambda e, i=i, s=s: _conditions_of(e)[i].update(status=s),
            )
        for t in ("Ready", "Released", "Reconciling", "Stalled", "ready", "Other", ""):
            yield edit(
                f"conditions[{i}].type = {t!r}",
                lambda e, i=i, t=t: _conditions_of(e)[i].update(type=t),
            )
    if conditions:
        # The same time in every condition (one parse, one float), then each its own.
        yield edit(
            "every condition at one fractional time",
            lambda e: [c.update(lastTransitionTime=_TIMES[1]) for c in _conditions_of(e)],
        )
        yield edit(
            "every condition at its own time",
            lambda e: [
                c.update(lastTransitionTime=f"2026-11-2{j}T10:00:00Z")
                for j, c in enumerate(_conditions_of(e))
            ],
        )
        yield edit(
            "every condition with one message",
            lambda e: [c.update(message="same message") for c in _conditions_of(e)],
        )
        yield edit(
            "every condition with a long message",
            lambda e: [c.update(message="m" * 200) for c in _conditions_of(e)],
        )
        yield edit("conditions reversed", lambda e: _conditions_of(e).reverse())
        yield edit(
            "conditions rotated",
            lambda e: _conditions_of(e).append(_conditions_of(e).pop(0)),
        )
        for j, c in enumerate(conditions):
            for status in ("True", "False", "Unknown"):
                dup = {**c, "status": status, "message": "the second one", "reason": "Dup"}
                yield edit(
                    f"conditions[{j}] twice, the second {status}",
                    lambda e, dup=dup: _conditions_of(e).append(dup),
                )
                yield edit(
                    f"conditions[{j}] twice, the first {status}",
                    lambda e, dup=dup: _conditions_of(e).insert(0, dup),
                )
            yield edit(
                f"conditions[{j}] without lastTransitionTime",
                lambda e, j=j: _conditions_of(e)[j].pop("lastTransitionTime"),
            )
    yield edit("conditions = []", lambda e: _set(e, (*_STATUS, "conditions"), []))
    yield edit(
        "conditions with junk items after",
        lambda e: _conditions_of(e).extend([{"type": "Other", "status": 3}, None, "x", 1]),
    )
    yield edit(
        "conditions with a typeless item first",
        lambda e: _conditions_of(e).insert(0, {"status": "True"}),
    )
    history = obj.get("status", {}).get("history")
    if history:
        yield edit("history = []", lambda e: _set(e, (*_STATUS, "history"), []))
        for junk in (None, 1, "x", [], {"version": "bad"}, {"name": 1}, {"status": None}, {}):
            yield edit(
                f"history + [{json.dumps(junk)}]",
                lambda e, junk=junk: _get(e, (*_STATUS, "history")).append(junk),
            )
        for f in ("name", "version", "status", "namespace", "action", "chartName"):
            yield edit(
                f"history[0] without {f}",
                lambda e, f=f: _get(e, (*_STATUS, "history", 0)).pop(f, None),
            )
        for version in (0, -1, 2**31, 2**63 - 1):
            yield edit(
                f"history[0].version = {version}",
                lambda e, v=version: _get(e, (*_STATUS, "history", 0)).update(version=v),
            )
    labels = (*_META, "labels")
    for value in (
        None,
        {},
        {"a": "1"},
        {"a": 1},
        {"a": None},
        {"a": "1", "b": "2"},
        {"b": "2", "a": "1"},
        {"app": "x" * 63},
        {"kustomize.toolkit.fluxcd.io/name": "platform"},
    ):
        yield edit(f"labels = {json.dumps(value)}", lambda e, v=value: _set(e, labels, v))
    deps = (*_SPEC, "dependsOn")
    for value in (
        None,
        [],
        [{"name": "x"}],
        [{"name": "x", "namespace": ""}],
        [{"name": "x", "namespace": None}],
        [{"name": "x", "namespace": "y"}, {"name": "x", "namespace": "y"}],
        [{"name": ""}],
        [{"namespace": "y"}],
        [{"name": "x", "readyExpr": "true"}],
        [{"name": "x", "readyExpr": 3}],
        ["x"],
        [{"name": 1}],
        [None],
        {"name": "x"},
    ):
        yield edit(f"dependsOn = {json.dumps(value)}", lambda e, v=value: _set(e, deps, v))
    for value in (None, {}, {"secretRef": {"name": "k"}}, "x", 0, [], False):
        yield edit(
            f"kubeConfig = {json.dumps(value)}",
            lambda e, v=value: _set(e, (*_SPEC, "kubeConfig"), v),
        )
    for value in (None, "2026-11-26T10:00:00Z", "", 0, {}, False):
        yield edit(
            f"deletionTimestamp = {json.dumps(value)}",
            lambda e, v=value: _set(e, (*_META, "deletionTimestamp"), v),
        )
    for value in ("true", "True", " TRUE ", "\ttrue\t", "yes", "false", "", "1", "truee"):
        yield edit(
            f"ignore = {value!r}",
            lambda e, v=value: _set(e, (*_META, "annotations", ANNOTATION_IGNORE), v),
        )
    name = obj["metadata"]["name"]
    for n in (52, 53, 54, 63, 200):
        yield edit(
            f"releaseName of {n} characters",
            lambda e, n=n: _set(e, (*_SPEC, "releaseName"), "r" * n),
        )
        target = "t" * max(1, n - len(name) - 1)
        yield edit(
            f"targetNamespace making a {len(target) + 1 + len(name)}-character release name",
            lambda e, t=target: [
                _set(e, (*_SPEC, "releaseName"), _MISSING),
                _set(e, (*_SPEC, "targetNamespace"), t),
            ],
        )
        yield edit(
            f"name of {n} characters",
            lambda e, n=n: _set(e, (*_META, "name"), "n" * n),
        )
    yield edit("releaseName = name", lambda e: _set(e, (*_SPEC, "releaseName"), name))
    yield edit(
        "releaseName = the history's name",
        lambda e: _set(e, (*_SPEC, "releaseName"), "vpa-bp-vpa"),
    )
    yield edit(
        "lastHandledReconcileAt = requestedAt",
        lambda e: [
            _set(e, (*_META, "annotations", ANNOTATION_REQUESTED_AT), "tok"),
            _set(e, (*_STATUS, "lastHandledReconcileAt"), "tok"),
            _set(e, (*_META, "annotations", ANNOTATION_FORCE_AT), "tok"),
            _set(e, (*_STATUS, "lastHandledForceAt"), "tok"),
        ],
    )
    for etype in ("ADDED", "DELETED", "BOOKMARK", "ERROR", "added", "", None, 1, _MISSING):
        shown = "missing" if etype is _MISSING else json.dumps(etype)
        yield edit(f"type = {shown}", lambda e, t=etype: _set(e, ("type",), t))
    for value in (None, [], "x", {}, [_clone(obj)], _MISSING):
        shown = "missing" if value is _MISSING else type(value).__name__
        yield edit(f"object = {shown}", lambda e, v=value: _set(e, _O, v))
    for part in ("metadata", "spec", "status"):
        for value in (None, {}, _MISSING):
            yield edit(f"{part} = {value!r}", lambda e, p=part, v=value: _set(e, (*_O, p), v))
    # Keys one character from a declared one: a matcher must compare whole keys.
    near = {"": "x", "nam": "x", "names": "x", "Name": "x", "namespace2": "x", "uid ": "x"}
    for place in (_META, _SPEC, _STATUS, _O, ()):
        yield edit(
            f"near-miss keys in {'.'.join(place) or 'the event'}",
            lambda e, p=place: _get(e, p).update(near) if _has(e, p) or not p else None,
        )
    yield edit(
        "near-miss keys in conditions[0] and history[0]",
        lambda e: [
            item.update({"typ": "Ready", "statuss": "x", "versio": "x", "Type": "x"})
            for key in ("conditions", "history")
            for item in (e["object"].get("status") or {}).get(key) or ()
        ],
    )


# Numbers as JSON text, for declared integer fields and skipped ones.
_NUMBERS = [
    b"-0",
    b"0.0",
    b"1.0",
    b"1e2",
    b"1E2",
    b"1e+2",
    b"01",
    b"-01",
    b"00",
    b"+1",
    b".5",
    b"1.",
    b"-",
    b"0x10",
    b"NaN",
    b"Infinity",
    b"1_000",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999",
    b"1e999",
    b"-1e999",
    b"1e-999",
    b"1" + b"0" * 400,
    b"1.5e+300",
    b"tru",
    b"nul",
    b"True",
    b"NULL",
    b"falsey",
]
# String literals as JSON text: escapes, surrogates, UTF-8 right and wrong, controls.
_STRING_LITERALS = [
    b'"\\u0041"',
    b'"a\\"b"',
    b'"a\\\\b"',
    b'"a\\/b"',
    b'"\\u003c\\u003e\\u0026"',
    b'"\\ud83d\\ude00"',
    b'"x\\ud83d\\ude00"',
    b'"\\ud83d"',
    b'"\\ude00"',
    b'"\\ude00\\ud83d"',
    b'"\\ud83dx"',
    b'"\\u00e9"',
    b'"\\u0000"',
    b'"\\uD83D\\uDE00"',
    b'"\\u12"',
    b'"\\x41"',
    b'"\\a"',
    b'"\\b\\f\\n\\r\\t"',
    '"h\u00e9llo"'.encode(),
    '"\u2603"'.encode(),
    '"\U0001f600"'.encode(),
    b'"a\xffb"',
    b'"a\xc3\x28b"',
    b'"\xc0\xaf"',
    b'"\xed\xa0\x80"',
    b'"\xe2\x82"',
    b'"\xf4\x90\x80\x80"',
    b'"a\x00b"',
    b'"a\x01b"',
    b'"a\x1fb"',
    b'"a\tb"',
    b'"a\x7fb"',
    b'"unterminated',
    # Backslashes before the closing quote, and JSON inside a string: a skipper must
    # end the string where JSON does.
    b'"\\\\"',
    b'"x\\\\\\\\"',
    b'"\\"\\\\"',
    b'"}]},{\\"a\\":[\\""',
]


def _byte_mutations(
    obj: dict[str, Any], rng: random.Random, count: int
) -> Iterator[tuple[str, bytes]]:
    """``count`` lines of the object written the way no serializer writes them."""
    event = _event(obj)
    all_paths = list(_paths(event))
    declared = [p for p in all_paths if _pattern(p) in _DECLARED]
    strings = [p for p in all_paths if isinstance(_get(event, p), str)]
    extracted = [p for p in strings if _pattern(p) in _DECLARED]
    skipped = [p for p in strings if _pattern(p) not in _DECLARED]
    ints = [p for p in declared if _DECLARED[_pattern(p)] == "integer"]
    numbers = [p for p in all_paths if type(_get(event, p)) is int and p not in ints]
    objects = [p for p in all_paths if isinstance(_get(event, p), dict) and _get(event, p)]
    objects.append(())
    base_line = _encode(event)

    def plain() -> dict[str, Any]:
        return _clone(event)

    def write(doc: Any, **style: Any) -> bytes:
        return _encode(doc, _Style(rng, **style))

    def spaces() -> tuple[str, bytes]:
        rate = rng.choice((0.05, 0.3, 1.0))
        return f"whitespace between tokens ({rate})", write(plain(), space=rate)

    def shuffled() -> tuple[str, bytes]:
        return "keys shuffled", write(plain(), shuffle=True)

    def escaped() -> tuple[str, bytes]:
        rate = rng.choice((0.01, 0.2, 1.0))
        return f"characters as \\u escapes ({rate})", write(plain(), escape=rate)

    def slashes() -> tuple[str, bytes]:
        return "slashes as \\/", write(plain(), slash=True)

    def duplicate(at: JsonPath | None = None) -> tuple[str, bytes]:
        """A key twice: ``at`` (a declared field), or anywhere."""
        doc = plain()
        path = rng.choice(objects) if at is None else at[:-1]
        parent = _get(doc, path)
        members = _Pairs(parent.items())
        key = rng.choice(list(parent)) if at is None else at[-1]
        roll = rng.random()
        if roll < 0.4:
            value, how = _clone(parent[key]), "same value"
        else:
            value = _clone(rng.choice(_FIELD_VALUES[:-1]))
            how = json.dumps(value)
        if rng.random() < 0.5:
            members.append((key, value))
            where = "after"
        else:
            members.insert(0, (key, value))
            where = "before"
        if path:
            _set(doc, path, members)
        else:
            doc = members
        return f"{'.'.join(map(str, (*path, key)))} twice ({how} {where})", write(doc)

    def literal(paths: list[JsonPath], which: str) -> tuple[str, bytes]:
        doc = plain()
        path = rng.choice(paths)
        text = rng.choice(_STRING_LITERALS)
        _set(doc, path, _Raw(text))
        return f"{which} {'.'.join(map(str, path))} = {text!r}", write(doc)

    def escaped_key() -> tuple[str, bytes]:
        doc = plain()
        path = rng.choice(declared)
        parent = _get(doc, path[:-1])
        if not isinstance(parent, dict):
            return "no key to escape", base_line
        key = path[-1]
        escaped_key = "".join(f"\\u{ord(c):04x}" if rng.random() < 0.5 else c for c in key)
        members = _Pairs(
            (_Raw(f'"{escaped_key}"'.encode()) if k == key else k, v) for k, v in parent.items()
        )
        if path[:-1]:
            _set(doc, path[:-1], members)
        else:
            doc = members
        return f"key {'.'.join(map(str, path))} written {escaped_key!r}", write(doc)

    def number(paths: list[JsonPath], which: str) -> tuple[str, bytes]:
        doc = plain()
        path = rng.choice(paths)
        text = rng.choice(_NUMBERS)
        _set(doc, path, _Raw(text))
        return f"{which} {'.'.join(map(str, path))} = {text.decode()[:30]}", write(doc)

    def deep() -> tuple[str, bytes]:
        doc = plain()
        depth = rng.choice((100, 1000, 5000))
        place = rng.choice(
            [
                (*_SPEC, "values"),
                (*_SPEC, "kubeConfig"),
                (*_META, "labels"),
                (*_SPEC, "dependsOn"),
                (*_META, "managedFields"),
                (*_STATUS, "history", 0, "extra"),
                (*_STATUS, "conditions", 0, "extra"),
                ("extra",),
            ]
        )
        if rng.random() < 0.5:
            text = b"[" * depth + b"]" * depth
        else:
            text = b'{"a":' * depth + b"1" + b"}" * depth
        if len(place) > 1 and not _has(doc, place[:-1]):
            return "no place to nest", base_line
        _set(doc, place, _Raw(text))
        return f"{'.'.join(map(str, place))} nested {depth} deep", write(doc)

    def trailing() -> tuple[str, bytes]:
        tail = rng.choice((b" ", b"\t", b"\r", b" \t\r ", b"x", b"}", b"{}", b",", b"\x00", b"]"))
        return f"followed by {tail!r}", base_line + tail

    def leading() -> tuple[str, bytes]:
        head = rng.choice((b" ", b"\t", b"\r", b"\xef\xbb\xbf", b"x"))
        return f"preceded by {head!r}", head + base_line

    def truncated() -> tuple[str, bytes]:
        at = rng.randrange(len(base_line))
        return f"cut at byte {at} of {len(base_line)}", base_line[:at]

    def other_json() -> tuple[str, bytes]:
        text = rng.choice(
            (b"[]", b"null", b'"x"', b"1", b"{}", b"", b" ", b'{"type":"ADDED"}', b'{"object":{}}')
        )
        return f"the line is {text!r}", text

    def big() -> tuple[str, bytes]:
        doc = plain()
        size = rng.choice((20_000, 70_000))
        _set(doc, (*_SPEC, "values"), {"blob": "v" * size})
        return f"spec.values holding {size:,} bytes", write(doc)

    def non_ascii() -> tuple[str, bytes]:
        doc = plain()
        path = rng.choice(strings)
        value = _get(doc, path)
        extra = rng.choice(("\u00e9", "\u2603", "\U0001f600", "\u00a0", "\u0130"))
        at = rng.randrange(len(value) + 1)
        _set(doc, path, value[:at] + extra + value[at:])
        kind = "extracted" if path in extracted else "skipped"
        return f"{kind} {'.'.join(map(str, path))} with {extra!r}", write(doc)

    n = len(_STRING_LITERALS)
    kinds: list[Callable[[], tuple[str, bytes]]] = [
        spaces,
        shuffled,
        escaped,
        slashes,
        duplicate,
        functools.partial(literal, extracted, "extracted"),
        functools.partial(literal, skipped, "skipped"),
        escaped_key,
        functools.partial(number, ints, "declared"),
        functools.partial(number, numbers, "skipped"),
        deep,
        trailing,
        leading,
        truncated,
        non_ascii,
        other_json,
        big,
    ]
    # Every declared field twice, as the reader of each struct must see it (the last one
    # counts in msgspec), and every declared string written two unusual ways in turn;
    # then ``count`` lines of every other kind, in turn.
    for path in declared:
        if isinstance(_get(event, path[:-1]), dict):
            yield duplicate(path)
    for i, path in enumerate(extracted):
        for text in (_STRING_LITERALS[(2 * i) % n], _STRING_LITERALS[(2 * i + 1) % n]):
            doc = plain()
            _set(doc, path, _Raw(text))
            yield f"extracted {'.'.join(map(str, path))} = {text!r}", write(doc)
    for i in range(count):
        what, line = kinds[i % len(kinds)]()
        yield what, line


# Its release name (<targetNamespace>-<name>, 61 characters) is shortened with a hash:
# left to Python like names over 53 characters, which the native reader may do.
_MAY_DEFER = frozenset({"bench bootstrap"})


@functools.cache
def _cases() -> tuple[_Case, ...]:
    """The lines, in the order they are read: unmutated first (so the Python reader's
    label and dependency caches hold their bytes), then field-level, then byte-level."""
    rng = random.Random(SEED)
    reference = _reference()
    firsts: list[_Case] = []
    rest: list[_Case] = []
    bases = _bases()
    views: list[HRView] = []
    for name, obj in bases:
        read = reference(_encode(_event(obj)), {})
        assert read is not None, f"the Python reader does not take the base {name}"
        views.append(read[1])
    for index, (name, obj) in enumerate(bases):
        line = _encode(_event(obj))
        before = views[index]
        key = before.key
        other = views[(index + 1) % len(views)]
        stranger = msgspec.structs.replace(other, namespace=key[0], name=key[1])
        must = name not in _MAY_DEFER
        firsts.append(_Case(f"{name}, unmutated", "base", line, line, key, must_take=must))
        firsts.append(
            _Case(f"{name}, unmutated, again", "base", line, line, key, before, True, must)
        )
        # The object with every field gets every value in every field and every edge case;
        # the others (fewer fields, the same code paths) a draw of them, to keep the time.
        every = name == "full"
        values = (lambda: _FIELD_VALUES) if every else (lambda: rng.sample(_FIELD_VALUES, 4))
        edges = [e for e in _semantic_mutations(obj) if every or rng.random() < 0.3]
        for what, broken in [*_field_mutations(obj, values), *edges]:
            broken_line = _encode(broken)
            rest.append(
                _Case(f"{name}: {what}", "field", broken_line, line, key, before, stranger=stranger)
            )
            # The other order: the cache holds the broken object's view, the line is whole.
            if rng.random() < 0.2 and isinstance(broken.get("object"), dict):
                previous = hr_view(broken["object"])
                rest.append(
                    _Case(f"{name}: whole after {what}", "whole", line, line, key, previous)
                )
        for what, broken_line in _byte_mutations(obj, rng, 450):
            rest.append(
                _Case(
                    f"{name}: {what}",
                    "byte",
                    broken_line,
                    line,
                    key,
                    before,
                    rng.random() < 0.5,
                    stranger=stranger,
                )
            )
    return (*firsts, *rest)


# -- reading and comparing ------------------------------------------------------------------


def _reference() -> Reader:
    reader: Reader = helmrelease._hr_event_py  # type: ignore[attr-defined]
    return reader


def _around(case: _Case, width: int = 70) -> str:
    """The line where it differs from the unmutated one, shortened."""
    line, whole = case.line, case.whole
    at = next((i for i, (a, b) in enumerate(zip(line, whole, strict=False)) if a != b), None)
    if at is None:
        at = min(len(line), len(whole))
    start = max(0, at - width)
    text = repr(line[start : at + width])
    return f"at byte {at} of {len(line)}: {'...' if start else ''}{text}"


_VIEW_FIELDS = HRView.__struct_fields__
_PARTS = ("ready", "reconciling", "released", "stalled", "last_release")


def _same_types(a: Any, b: Any, path: str) -> list[str]:
    """Where equal values differ in type (True for 1, a str subclass, a list for a tuple)."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} against {type(b).__name__}"]
    out: list[str] = []
    if isinstance(a, HRView | Condition | Snapshot):
        for f in a.__struct_fields__:
            out += _same_types(getattr(a, f), getattr(b, f), f"{path}.{f}")
    elif isinstance(a, tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out += _same_types(x, y, f"{path}[{i}]")
    return out


def _shared_note(name: str, native: bool, python: bool) -> str:
    def verb(shared: bool) -> str:
        return "is" if shared else "is not"

    return f"{name} {verb(native)} the previous view's (Python's {verb(python)})"


def _sharing(native: HRView, python: HRView, before: HRView | None) -> list[str]:
    """Where the native view shares otherwise than the Python one."""
    out: list[str] = []
    if before is not None:
        for f in _VIEW_FIELDS:
            b = getattr(before, f)
            n, p = getattr(native, f) is b, getattr(python, f) is b
            if n != p:
                out.append(_shared_note(f, n, p))
        for part in _PARTS:
            n_part, p_part, b_part = (getattr(v, part) for v in (native, python, before))
            if n_part is None or p_part is None or b_part is None:
                continue
            for f in type(b_part).__struct_fields__:
                b = getattr(b_part, f)
                n, p = getattr(n_part, f) is b, getattr(p_part, f) is b
                if n != p:
                    out.append(_shared_note(f"{part}.{f}", n, p))
    # Within the view: one string or float where the Python view has one.
    pairs: list[tuple[str, str]] = [
        ("release_name", "name"),
        ("target_namespace", "namespace"),
        ("storage_namespace", "namespace"),
        ("storage_namespace", "target_namespace"),
        ("last_handled_reconcile_at", "requested_at"),
        ("last_handled_force_at", "force_at"),
        ("last_release.name", "release_name"),
        ("last_release.name", "name"),
    ]
    conditions = ("ready", "released", "reconciling", "stalled")
    for i, a in enumerate(conditions):
        for b in conditions[i + 1 :]:
            pairs += [
                (f"{a}.message", f"{b}.message"),
                (f"{a}.last_transition", f"{b}.last_transition"),
            ]
    for a, b in pairs:
        p_a, p_b = _attr(python, a), _attr(python, b)
        if p_a is not None and p_a is p_b and _attr(native, a) is not _attr(native, b):
            out.append(f"{a} is not {b} (it is in Python's view)")
    return out


def _attr(view: HRView, dotted: str) -> Any:
    value: Any = view
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value


def _differences(native: HRView, python: HRView) -> str:
    parts = []
    for f in _VIEW_FIELDS:
        n, p = getattr(native, f), getattr(python, f)
        if n != p:
            parts.append(f"{f}: native {str(n)[:120]} / python {str(p)[:120]}")
    return "; ".join(parts)


@dataclass
class _Outcome:
    lines: int = 0
    # One entry per line that went wrong: what it is, where, and every way it went wrong.
    problems: list[str] = field(default_factory=list)
    # (kind, cache) -> [lines the Python reader took, of those the native one took]
    taken: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    not_taken_bases: list[str] = field(default_factory=list)


_OTHER = hr_view({"metadata": {"name": "other", "namespace": "elsewhere"}})
_PROXY = "MappingProxyType({})"
# No cache passed at all: each reader's default (an empty read-only mapping).
_NO_ARGUMENT = "no cache argument"
_NO_CACHE: Mapping[tuple[str, str], HRView] = MappingProxyType({})


def _knowns(
    case: _Case, index: int, natives: Mapping[bytes, HRView]
) -> list[tuple[str, Mapping[tuple[str, str], HRView]]]:
    """The caches a line is read with: always none and the object's previous view as the
    Python reader made it; every third line, in turn, a read-only empty one (hr_event's
    default), one of another object, or both the previous view as the native reader
    made it and another object's view under this key (module docstring); every fifth
    line also none passed at all (each reader's default)."""
    out: list[tuple[str, Mapping[tuple[str, str], HRView]]] = [("{}", {})]
    if case.before is not None:
        out.append(("previous view", {case.key: case.before}))
    if case.kind == "base" or index % 3 == 0:
        out.append((_PROXY, MappingProxyType({})))
    if case.kind == "base" or index % 3 == 1:
        out.append(("unrelated key", {("elsewhere", "other"): case.before or _OTHER}))
    native_before = natives.get(case.whole)
    if native_before is not None and (case.kind == "base" or index % 3 == 2):
        out.append(("native's previous view", {case.key: native_before}))
    if case.stranger is not None and index % 3 == 2:
        out.append(("another object's view", {case.key: case.stranger}))
    if case.kind == "base" or index % 5 == 0:
        out.append((_NO_ARGUMENT, _NO_CACHE))
    return out


def _read(reader: Reader, line: Any, known: Mapping[tuple[str, str], HRView]) -> Any:
    try:
        if known is _NO_CACHE:
            return reader(line)  # type: ignore[call-arg]
        return reader(line, known)
    except Exception as exc:  # a raise is an answer to report, not the end of the run
        return exc


def _shown(answer: Any) -> str:
    if isinstance(answer, Exception):
        return f"raised {type(answer).__name__}: {answer}"
    return str(answer)[:200]


def _verdict(answer: Any, python: Any, before: HRView | None) -> str | None:
    """What is wrong with the native reader's answer, None when nothing is."""
    if isinstance(answer, Exception):
        return f"native {_shown(answer)}"
    if answer is None:
        return None
    if answer != python:
        if python is not None and answer[0] == python[0]:
            return _differences(answer[1], python[1])
        return f"native {_shown(answer)} / python {_shown(python)}"
    issues = _same_types(answer[1], python[1], "view") + _sharing(answer[1], python[1], before)
    return "; ".join(issues) or None


def _run(native: Reader, reference: Reader, combined: Reader) -> _Outcome:
    out = _Outcome()
    natives: dict[bytes, HRView] = {}  # unmutated line -> the native reader's view of it
    for index, case in enumerate(_cases()):
        out.lines += 1
        line: Any = case.line
        if case.memoryview:
            line = memoryview(b"[[" + case.line + b"]]")[2:-2]
        wrong: dict[str, list[str]] = {}  # what went wrong -> with which caches
        for known_name, known in _knowns(case, index, natives):
            # Native first, as the informer reads a line the first time (label and
            # dependency bytes the Python reader has not seen yet), and again after it.
            first = _read(native, line, known)
            python = _read(reference, line, known)
            again = _read(native, line, known)
            verdicts = []
            if isinstance(python, Exception):
                # "Reading never raises" (helmrelease's docstring) holds the reference too.
                verdicts.append(f"the Python reader {_shown(python)}")
                python = None
            before = known.get(case.key)
            verdicts += [_verdict(first, python, before), _verdict(again, python, before)]
            combined_answer = _read(combined, line, known)
            if isinstance(combined_answer, Exception) or combined_answer != python:
                verdicts.append(f"hr_event {_shown(combined_answer)} / python {_shown(python)}")
            for verdict in verdicts:
                if verdict is not None:
                    wrong.setdefault(verdict, []).append(known_name)
            tally = out.taken.setdefault((case.kind, known_name), [0, 0])
            if python is not None:
                tally[0] += 1
                tally[1] += again is not None and not isinstance(again, Exception)
            if case.must_take and known_name not in (_PROXY, _NO_ARGUMENT) and again is None:
                out.not_taken_bases.append(f"{case.what} [{known_name}]")
            if case.kind == "base" and known_name == "{}" and isinstance(again, tuple):
                natives.setdefault(case.line, again[1])
        if wrong:
            form = "memoryview" if case.memoryview else "bytes"
            lines = [f"{case.what} ({form}; {_around(case)})"]
            lines += [f"    {v} [{', '.join(knowns)}]" for v, knowns in wrong.items()]
            out.problems.append("\n".join(lines))
    return out


@pytest.fixture(scope="module")
def native() -> Reader:
    """The native reader; a skip where it is not built, which CI (FLUXWATCH_STRICT=1, the
    root conftest.py) counts as a failure: a skip here, at run time, is one it sees."""
    module = pytest.importorskip(
        "fluxwatch.kube._hrwire",
        reason="the native reader is not built (fluxwatch/kube/_hrwire.c needs a C compiler)",
    )
    if helmrelease.hr_event is _reference():
        # helmrelease configures the module only when it reads with it.
        pytest.skip("FLUXWATCH_NATIVE=0: the native reader is built but turned off")
    reader: Reader = module.event
    return reader


@pytest.fixture(scope="module")
def outcome(native: Reader) -> _Outcome:
    return _run(native, _reference(), helmrelease.hr_event)


def test_the_native_reader_answers_as_the_python_one(outcome: _Outcome) -> None:
    """On every generated line, with every cache: the same view or a deferral, sharing
    what the Python view shares; and hr_event as the Python reader."""
    assert outcome.lines > 5000, outcome.lines
    if outcome.problems:
        shown = "\n".join(outcome.problems[:30])
        pytest.fail(f"{len(outcome.problems)} lines read differently:\n{shown}", pytrace=False)


def test_the_native_reader_takes_the_common_shapes(outcome: _Outcome) -> None:
    """A reader that defers everything would pass the test above: it must take every
    unmutated line (the fixtures and the benchmark's objects, read with a dict cache) and
    most field-level breakages the Python reader takes."""
    if outcome.not_taken_bases:
        pytest.fail("not taken:\n" + "\n".join(outcome.not_taken_bases), pytrace=False)
    python, native = (
        sum(tally[i] for (kind, _), tally in outcome.taken.items() if kind == "field")
        for i in (0, 1)
    )
    assert native >= TAKEN_FLOOR * python, f"native took {native} of the {python} Python took"


def test_the_native_reader_leaks_nothing(native: Reader) -> None:
    """A reference kept or dropped per call shows over thousands of calls: the refcounts
    of the cached views it shares from and the memory in use stay as they were, on the
    lines it takes and on those it defers (an early return is where a C reader leaks)."""
    cases = [case for case in _cases()[::25] if len(case.line) < 50_000]
    knowns = [{case.key: case.before} if case.before else {} for case in cases]

    def sweep() -> None:
        for case, known in zip(cases, knowns, strict=True):
            for _ in range(10):
                native(case.line, known)

    sweep()  # label and dependency bytes cached, strings interned, free lists filled
    watched: list[Any] = [case.before for case in cases if case.before is not None]
    parts = [getattr(view, part) for view in watched[:50] for part in _PARTS]
    watched += [part for part in parts if part is not None]
    gc.collect()  # garbage of earlier tests (tracebacks) may hold some of them
    counts = [sys.getrefcount(obj) for obj in watched]
    blocks = sys.getallocatedblocks()
    sweep()
    gc.collect()
    grown = sys.getallocatedblocks() - blocks
    after = [sys.getrefcount(obj) for obj in watched]  # measured as ``counts`` was
    changed = sum(a != b for a, b in zip(after, counts, strict=True))
    assert not changed, f"{changed} shared objects changed refcounts over the calls"
    calls = 10 * len(cases)
    assert grown < calls // 10, f"{grown} more memory blocks in use after {calls} calls"


# -- list pages ---------------------------------------------------------------------------------

_EVENT_PREFIX = b'{"type":"MODIFIED","object":'
# The list's own metadata, as the API server and odder writers give it; the first five are
# the native reader's to take, the others (a number, an escape, a key twice) the Python one's.
_TAKEN_METAS = 5
_LIST_METAS = (
    b'{"resourceVersion":"4711","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"}',
    b'{"resourceVersion":"4711"}',
    b'{"resourceVersion":"","continue":""}',
    b"{}",
    b"null",
    b'{"resourceVersion":4711}',
    b'{"resourceVersion":"47\\u0031"}',
    b'{"resourceVersion":"1","resourceVersion":"2"}',
)


def _pages() -> list[tuple[str, bytes]]:
    """List bodies made of the generated lines' objects: one to three items a page (the
    objects cut out of lines whose mutation left the event's own frame alone), every kind
    of list metadata, and pages whose items are null, empty or not objects."""
    rng = random.Random(SEED + 1)
    items: list[tuple[str, bytes]] = []
    for case in _cases():
        line = case.line
        if line.startswith(_EVENT_PREFIX) and line.endswith(b"}") and case.kind != "whole":
            items.append((case.what, line[len(_EVENT_PREFIX) : -1]))
    pages: list[tuple[str, bytes]] = [
        ("no items", b'{"metadata":{"resourceVersion":"5"},"items":[]}'),
        ("items null", b'{"metadata":{"resourceVersion":"5"},"items":null}'),
        ("a null item", b'{"items":[null]}'),
        ("not a list", b'{"items":{}}'),
        ("no JSON", b'{"items":['),
        ("trailing bytes", b'{"items":[]} x'),
    ]
    for start in range(0, len(items), 2):
        chosen = items[start : start + rng.randint(1, 3)]
        meta = rng.choice(_LIST_METAS)
        body = b'{"kind":"HelmReleaseList","metadata":' + meta + b',"items":['
        body += b",".join(item for _, item in chosen) + b"]}"
        plain = " (plain)" if _LIST_METAS.index(meta) < _TAKEN_METAS else ""
        pages.append((" + ".join(what for what, _ in chosen) + f" [{meta.decode()}]{plain}", body))
    return pages


def test_the_native_page_reader_answers_as_the_python_one(native: Reader) -> None:
    """A list page (the informer's sync) is the same Page or a deferral, page by page, and
    hr_page answers as the Python page reader; the unmutated objects' pages are taken."""
    module = sys.modules["fluxwatch.kube._hrwire"]
    python = helmrelease._hr_page_py  # type: ignore[attr-defined]
    problems: list[str] = []
    taken = python_took = whole = 0
    for what, body in _pages():
        reference = python(body)
        python_took += reference is not None
        try:
            answer = module.page(body)
            combined = helmrelease.hr_page(body)
        except Exception as exc:  # a raise is the finding
            problems.append(f"{what}: raised {exc!r}")
            continue
        if answer is not None:
            taken += 1
            if answer != reference:
                problems.append(f"{what}: native {answer!r:.300} / python {reference!r:.300}")
        if combined != reference:
            problems.append(f"{what}: hr_page {combined!r:.200} / python {reference!r:.200}")
        if what.endswith("(plain)") and "+" not in what and ", unmutated" in what:
            if "bootstrap" in what:
                continue  # its release name is shortened: the Python reader's
            whole += 1
            if answer is None and reference is not None:
                problems.append(f"{what}: a page of unmutated objects not taken")
    if problems:
        shown = "\n".join(problems[:30])
        pytest.fail(f"{len(problems)} pages read differently:\n{shown}", pytrace=False)
    assert whole > 0, "no page of one unmutated object"
    # A page is taken only when each of its one to three items is (and its metadata is plain),
    # so the share of the line floor compounds: today 412 of 1,179.
    floor = TAKEN_FLOOR**3
    assert taken >= floor * python_took, f"native took {taken} of the {python_took} pages"
