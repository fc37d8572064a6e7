"""The emulator's storage: one global resourceVersion and, per resource, objects
kept as immutable dicts plus a bounded history of changes that watches and
paginated lists replay from, as etcd and the API server's watch cache do.

Every write stores a new dict and never mutates a stored one, so watch events,
history entries and list pages can hand out references without copying; the
public methods return copies, the ``_``-prefixed ones used by the HTTP layer
return the stored (read-only) dicts.

Errors are ``ApiError`` carrying the metav1 Status the real server would send.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import dataclasses
import functools
import heapq
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import orjson
import yaml

from fluxwatch.sim import deepjson, managedfields, openapi, validation
from fluxwatch.sim import fielderrors as fe
from fluxwatch.sim.admission import (
    Admission,
    StrictDecodingError,
    TypedDecodingError,
    WriteOptions,
    builtin_admission,
)
from fluxwatch.sim.customresources import (
    CRD_KEY,
    accepted_status,
    compile_schema,
    default_crds,
    resource_types,
    structural_errors,
    validate_crd,
)
from fluxwatch.sim.fielderrors import FieldError
from fluxwatch.sim.patching import PatchError, deep_copy, json_patch, merge_patch
from fluxwatch.sim.resources import VIRTUAL, Registry, ResourceType
from fluxwatch.sim.selectors import (
    LabelPredicate,
    ObjectPredicate,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from fluxwatch.sim.strategicpatch import StrategicPatchError, strategic_merge

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
_FieldErrors = list[FieldError]
Convert = Callable[[dict[str, Any]], dict[str, Any]]


def is_storage_version(res: ResourceType) -> bool:
    """Objects of this version are stored as they are; other versions are converted."""
    return res.table_key == res.key and (
        not res.storage_version or res.version == res.storage_version
    )


# Server-owned metadata: clients cannot set it on create, and updates keep the old values.
_SYSTEM_FIELDS = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)
# Groups served by kube-apiserver itself; any other group is a CRD, which behaves
# differently (no strategic merge patch, no unconditional update).
_BUILTIN_GROUPS = frozenset({"", "apps", "batch", "policy", "autoscaling"})


def is_custom_resource(res: ResourceType) -> bool:
    return not (res.group in _BUILTIN_GROUPS or res.group.endswith(".k8s.io"))


# ObjectMeta's maps and lists that are omitempty; managedFields is not among them: an
# empty list there is a request to reset them, which the field manager must see.
_OMITTED_WHEN_EMPTY = ("labels", "annotations", "finalizers", "ownerReferences")


class ApiError(Exception):
    """An API failure with the Status body the real server would send."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
        *,
        continue_token: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after
        self.continue_token = continue_token  # the Status's metadata.continue

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"continue": self.continue_token} if self.continue_token else {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # an error the server did not classify has no reason at all
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


def _details(res: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.plural
    details.update(extra)
    return details


def qualified(res: ResourceType) -> str:
    """``helmreleases.helm.toolkit.fluxcd.io`` or ``secrets``: how errors name a resource."""
    return res.key


def not_found(res: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(res)} "{name}" not found', _details(res, name))


def already_exists(res: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(res)} "{name}" already exists', _details(res, name)
    )


def conflict(res: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(res)} "{name}": {why}',
        _details(res, name),
    )


def _delete_conflict(res: ResourceType, name: str, why: str) -> ApiError:
    kind = fe.qualified_kind(res.kind, res.group)
    details: dict[str, Any] = {"name": name}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.kind
    message = f'Operation cannot be fulfilled on {kind} "{name}": {why}'
    return ApiError(409, "Conflict", message, details)


def stale(res: ResourceType, name: str) -> ApiError:
    return conflict(
        res,
        name,
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def rejected_request() -> ApiError:
    """The patch handler's generic 422 (NewGenericServerResponse): the merge or patch
    error itself is not sent, so the details are empty."""
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        details={},
    )


def _strategic(res: ResourceType, old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic merge patch of a built-in kind, failing as kube-apiserver does: a bad
    directive is a 400, a list of lists a 422 whose message the server replaces with a
    generic one, anything else an unclassified 500 carrying the merge error's text."""
    try:
        return strategic_merge(old, patch, lambda path: openapi.list_strategy(res, path))
    except StrategicPatchError as exc:
        if exc.code == 400:
            raise bad_request(str(exc)) from None
        if exc.code == 422:
            raise rejected_request() from None
        raise ApiError(500, "", str(exc)) from None


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unknown_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


# etcd3's list errors (k8s.io/apiserver/pkg/storage/etcd3/errors.go), word for word.
LIST_TOO_OLD = "The resourceVersion for the provided list is too old."
CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


def too_large(rv: int, current: int, retry_after: int) -> ApiError:
    """504 for a version the server has not reached (storage.NewTooLargeResourceVersionError).
    The watch cache asks for a retry after 1 s; etcd's own check asks for none (0), and then
    neither ``retryAfterSeconds`` nor the Retry-After header is sent."""
    details: dict[str, Any] = {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
    }
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
    return ApiError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {rv}, current: {current}",
        details,
        retry_after=retry_after or None,
    )


def future_revision() -> ApiError:
    """An etcd read at a revision it has not reached: etcd's ErrFutureRev is not a Status
    error, so the API server answers a bare 500 without a reason."""
    return ApiError(500, "", "etcdserver: mvcc: required revision is a future revision")


class WatchEvent(NamedTuple):
    type: str
    object: dict[str, Any]


class _Event:
    """One change in a resource's history; ``prev`` is the object before it (None for ADDED)."""

    __slots__ = ("key", "namespace", "obj", "prev", "raw", "rv", "type")

    def __init__(
        self,
        rv: int,
        type_: str,
        key: str,
        namespace: str,
        obj: dict[str, Any],
        prev: dict[str, Any] | None,
    ) -> None:
        self.rv = rv
        self.type = type_
        self.key = key
        self.namespace = namespace
        self.obj = obj
        self.prev = prev
        self.raw: bytes | None = None  # encoded `{"type":..,"object":..}\n`, built once

    def encoded(self) -> bytes:
        if self.raw is None:
            self.raw = deepjson.dumps({"type": self.type, "object": self.obj}) + b"\n"
        return self.raw


# What a watcher queues: the event type as this watcher sees it, the object, and
# the history event when the type is unchanged (so its cached encoding can be reused).
Delivery = tuple[str, dict[str, Any], _Event | None]


class _Table:
    """One resource: its objects by key, their keys in etcd order, its history."""

    __slots__ = (
        "_keys",
        "_unsorted",
        "events",
        "future",
        "horizon",
        "hstart",
        "objs",
        "raw",
        "res",
        "watchers",
    )

    def __init__(self, res: ResourceType) -> None:
        self.res = res
        self.objs: dict[str, dict[str, Any]] = {}
        self.raw: dict[str, bytes] = {}  # cached JSON of objs, dropped on every write
        self._keys: list[str] = []  # sorted, like etcd's key order
        self._unsorted: dict[str, None] = {}  # keys created out of order, merged in lazily
        self.events: list[_Event] = []  # history is events[hstart:], ascending rv
        self.hstart = 0
        self.horizon = 0  # every event with rv > horizon is still in the history
        self.watchers: set[Watcher] = set()
        # Watches from a version not reached yet: they join `watchers` with the first
        # event past it, so the per-event path never compares versions.
        self.future: list[Watcher] = []

    @property
    def keys(self) -> list[str]:
        """Every key in order. Keys created out of order are merged in here, at read time,
        so that creating 50,000 objects does not shift a large list 50,000 times."""
        if self._unsorted:
            if len(self._unsorted) <= 16:
                for key in self._unsorted:
                    bisect.insort(self._keys, key)
            else:
                self._keys.extend(self._unsorted)
                self._keys.sort()  # Timsort: a sorted run plus a short tail is cheap
            self._unsorted.clear()
        return self._keys

    def add_key(self, key: str) -> None:
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)
        else:
            self._unsorted[key] = None

    def remove_key(self, key: str) -> None:
        if key in self._unsorted:
            del self._unsorted[key]
        else:
            self._keys.pop(bisect.bisect_left(self._keys, key))

    def history_len(self) -> int:
        return len(self.events) - self.hstart

    def events_after(self, rv: int) -> list[_Event]:
        i = bisect.bisect_right(self.events, rv, lo=self.hstart, key=lambda e: e.rv)
        return self.events[i:]

    def encoded(self, key: str) -> bytes:
        raw = self.raw.get(key)
        if raw is None:
            raw = self.raw[key] = deepjson.dumps(self.objs[key])
        return raw


# Objects naming an owner in their ownerReferences, with their tables.
_Dependents = list[tuple[_Table, dict[str, Any]]]


def object_key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _key_range(keys: list[str], namespace: str | None) -> tuple[int, int]:
    if not namespace:
        return 0, len(keys)
    # "0" is the character after "/", so [ns/, ns0) holds exactly the namespace's keys.
    return bisect.bisect_left(keys, namespace + "/"), bisect.bisect_left(keys, namespace + "0")


class Watcher:
    """An open watch: an async iterator of ``WatchEvent``; ``close()`` ends it."""

    def __init__(
        self,
        table: _Table,
        namespace: str | None,
        labels: LabelPredicate | None,
        fields: ObjectPredicate | None,
    ) -> None:
        self.res = table.res
        self._table = table
        self._namespace = namespace or None
        self._labels = labels
        self._fields = fields
        self._items: deque[Delivery] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        # The version the watch started after: the watch cache sends nothing at or
        # below it, bookmarks included (cacheWatcher.process).
        self.after = 0

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if self._labels is not None and not self._labels(obj["metadata"].get("labels") or {}):
            return False
        return self._fields is None or self._fields(obj)

    def _put(self, item: Delivery) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _offer(self, ev: _Event) -> None:
        if self._namespace is not None and ev.namespace != self._namespace:
            return
        if self._labels is None and self._fields is None:
            self._put((ev.type, ev.obj, ev))
            return
        # Like the watch cache: an object moving into the selection is ADDED for this
        # watcher, one moving out of it is DELETED.
        now = self.matches(ev.obj)
        if ev.type == MODIFIED:
            before = ev.prev is not None and self.matches(ev.prev)
            if now and before:
                self._put((MODIFIED, ev.obj, ev))
            elif now:
                self._put((ADDED, ev.obj, None))
            elif before:
                # As the watch cache does: the object as this watcher last saw it, at the
                # version of the change that took it out of the selection.
                assert ev.prev is not None
                gone = {
                    **ev.prev,
                    "metadata": {**ev.prev["metadata"], "resourceVersion": str(ev.rv)},
                }
                self._put((DELETED, gone, None))
        elif now:
            self._put((ev.type, ev.obj, ev))

    def pop(self) -> Delivery | None:
        """The next queued delivery without waiting, or None."""
        return self._items.popleft() if self._items else None

    def pending(self) -> int:
        return len(self._items)

    async def wait(self, timeout: float | None = None) -> None:
        """Return when a delivery is queued, the watcher is closed, or ``timeout`` passed."""
        if self._items or self.closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = fut
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            pass
        finally:
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        self._table.watchers.discard(self)
        if self in self._table.future:
            self._table.future.remove(self)
        self._items.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            item = self.pop()
            if item is not None:
                return WatchEvent(item[0], item[1])
            if self.closed:
                raise StopAsyncIteration
            await self.wait()


class ListPage(NamedTuple):
    items: list[dict[str, Any]]  # stored dicts, read-only
    keys: list[str]  # their keys, for cached encodings (empty when items are a snapshot)
    resource_version: int
    continue_token: str | None
    remaining: int | None
    table: _Table


def encode_continue(rv: int, last_key: str) -> str:
    return _continue_token(rv, last_key + "\x00")


def _continue_token(rv: int, start: str) -> str:
    body = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def decode_continue(token: str) -> tuple[int, str]:
    """A continue token back to (resourceVersion, start key); a bad one is 400 with the
    storage layer's words (k8s.io/apiserver/pkg/storage DecodeContinue). Version -1
    (what a 410 for a compacted token hands back) means "continue at the latest
    version", as etcd3's store reads it."""

    def bad(why: str) -> ApiError:
        return bad_request(f"invalid continue token: continue key is not valid{why}")

    for i, ch in enumerate(token):
        if ch not in _B64URL:
            raise bad(f": illegal base64 data at input byte {i}")
    if len(token) % 4 == 1:
        raise bad(f": illegal base64 data at input byte {len(token) - 1}")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as exc:
        raise bad(f": {exc}") from None
    if not isinstance(body, dict):
        raise bad(": json: cannot unmarshal into Go value of type storage.continueToken")
    version = body.get("v")
    if version != "meta.k8s.io/v1":
        raise bad(f": server does not recognize this encoded version {version or ''}")
    rv, start = body.get("rv"), body.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0:
        raise bad(": incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    if not isinstance(start, str) or not start:
        raise bad(": encoded start key empty (version meta.k8s.io/v1)")
    if rv < -1:
        raise bad("")
    return rv, start


def parse_resource_version(value: str) -> int:
    """A list's or watch's resourceVersion as the storage versioner reads it
    (strconv.ParseUint). Its InvalidError is no Status error and nothing converts it on
    the read path, so a version that does not parse is a bare 500 naming the field."""
    if value in ("", "0"):
        return 0
    problem = ""
    if not value.isascii() or not value.isdigit():
        problem = "invalid syntax"
    elif int(value) >= 2**64:
        problem = "value out of range"
    if problem:
        raise ApiError(
            500,
            "",
            f'resourceVersion: Invalid value: "{value}": strconv.ParseUint: parsing '
            f'"{value}": {problem}',
        )
    return int(value)


_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


class Store:
    """All objects of the emulated cluster; see the module docstring.

    ``registry`` is the set of served kinds; CustomResourceDefinitions written to the
    store add theirs to it (and take them away, with their objects, when deleted).
    ``crds`` are definitions installed at start, like a cluster with Flux on it: by
    default this project's own HelmRelease definition.
    """

    def __init__(
        self,
        history_limit: int = 10_000,
        *,
        clock: Callable[[], float] = time.time,
        registry: Registry | None = None,
        crds: Iterable[Mapping[str, Any]] | None = None,
    ):
        self.history_limit = history_limit
        self.resource_version = 0
        self.compacted = 0  # etcd's compacted revision: nothing older can be read
        self._clock = clock
        self._now_cache = (-1, "")
        self.registry = registry if registry is not None else Registry()
        self.admission: Admission = builtin_admission()
        self._terminating: set[str] = set()
        # Owners deleted in the foreground, by uid, until their last dependent is gone.
        self._foreground: dict[str, tuple[_Table, str]] = {}
        # Per non-storage version (``<plural>.<version>.<group>``): to and from storage.
        self.converters: dict[str, tuple[Convert, Convert]] = {
            "events.v1.events.k8s.io": (
                validation.events_v1_to_core,
                validation.event_to_events_v1,
            )
        }
        self._tables: dict[str, _Table] = {}
        for res in self.registry:
            if res.key not in VIRTUAL:
                self.table(res)
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._ensure_namespace(ns)
        for crd in default_crds() if crds is None else crds:
            self.create(CRD_KEY, dict(crd))

    # ---- lookup -------------------------------------------------------------------------

    def resource(self, key: str) -> ResourceType:
        res = self.registry.get(key)
        if res is None:
            raise unknown_resource()
        return res

    def table(self, res: ResourceType | str) -> _Table:
        rt = res if isinstance(res, ResourceType) else self.resource(res)
        key = rt.table_key
        table = self._tables.get(key)
        if table is None:
            stored = self.registry.get(key) or rt
            table = self._tables[key] = _Table(stored)
        return table

    def now(self) -> str:
        """The current time as the API writes timestamps (RFC 3339, whole seconds)."""
        second = int(self._clock())
        if second != self._now_cache[0]:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._now_cache = (second, text)
        return self._now_cache[1]

    def count(self, res: ResourceType | str, namespace: str | None = None) -> int:
        t = self.table(res)
        if not namespace:
            return len(t.objs)
        lo, hi = _key_range(t.keys, namespace)
        return hi - lo

    # ---- public API: copies in, copies out ---------------------------------------------------

    def create(
        self,
        res: ResourceType | str,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        keep_status: bool = True,
        dry_run: bool = False,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Create an object; ``keep_status=False`` drops ``status`` as the real server does
        for resources with a status subresource (in-process callers may seed status).
        ``validate=False`` stores an object the kind's validation would refuse, as a
        cluster holds objects written before their CRD's schema was tightened."""
        rt = res if isinstance(res, ResourceType) else self.resource(res)
        options = _IN_PROCESS if validate else _UNCHECKED
        return deep_copy(
            self._create(
                self.table(rt),
                obj,
                namespace,
                keep_status=keep_status,
                dry_run=dry_run,
                res=rt,
                options=options,
            )
        )

    def get(self, res: ResourceType | str, namespace: str | None, name: str) -> dict[str, Any]:
        return deep_copy(self._get(self.table(res), namespace, name))

    def list(
        self,
        res: ResourceType | str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        page = self._list(self.table(res), namespace, label_selector, field_selector)
        return deep_copy(page.items), str(page.resource_version)

    def update(
        self,
        res: ResourceType | str,
        obj: dict[str, Any],
        subresource: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        return deep_copy(self._update(self.table(res), obj, subresource, dry_run=dry_run))

    def patch(
        self,
        res: ResourceType | str,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        subresource: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        stored = self._patch(
            self.table(res), namespace, name, patch, patch_type, subresource, dry_run=dry_run
        )
        return deep_copy(stored)

    def delete(
        self,
        res: ResourceType | str,
        namespace: str | None,
        name: str,
        *,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        stored = self._delete(
            self.table(res), namespace, name, preconditions=preconditions, dry_run=dry_run
        )
        return deep_copy(stored)

    def watch(
        self,
        res: ResourceType | str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        send_initial_events: bool | None = None,
    ) -> Watcher:
        """Open a watch, as the API server's watch cache serves one.

        ``send_initial_events=True``: every matching object first, as ADDED, whatever the
        version (the caller makes sure the version has been reached). ``None`` (a client
        that does not know the parameter): without a version (or "0") the same; with one,
        the history after it is replayed, 410 Expired when it is older than the history
        holds. ``False``: the history after the version, or from now without one.
        A version not reached yet is accepted: nothing is sent until the store passes it.
        """
        t = self.table(res)
        labels, fields = self._selectors(t.res, label_selector, field_selector)
        w = Watcher(t, namespace, labels, fields)
        unversioned = resource_version in (None, "", "0")
        if send_initial_events or (send_initial_events is None and unversioned):
            # Without a version the server reads the current one from etcd first and
            # sends nothing at or below it; with "0" any version will do.
            if resource_version:
                w.after = parse_resource_version(resource_version)
            elif send_initial_events:
                w.after = self.resource_version
            lo, hi = _key_range(t.keys, namespace)
            for i in range(lo, hi):
                obj = t.objs[t.keys[i]]
                if w.matches(obj):
                    w._put((ADDED, obj, None))
        elif unversioned:
            w.after = self.resource_version if not resource_version else 0
        else:
            assert resource_version is not None
            rv = parse_resource_version(resource_version)
            w.after = rv
            if rv > self.resource_version:
                t.future.append(w)
                return w
            if rv < t.horizon:
                raise expired(f"too old resource version: {rv} ({t.horizon})")
            for ev in t.events_after(rv):
                w._offer(ev)
        t.watchers.add(w)
        return w

    def compact(self, revision: int | None = None) -> None:
        """etcd compaction: forget every change at or below ``revision`` (default: all
        history). Watches, continue tokens and exact lists from before it get 410."""
        rev = self.resource_version if revision is None else min(revision, self.resource_version)
        if revision is not None and rev <= self.compacted:
            return
        self.compacted = max(self.compacted, rev)
        for t in self._tables.values():
            if t.horizon >= rev and t.history_len() == 0:
                continue
            cut = bisect.bisect_right(t.events, rev, lo=t.hstart, key=lambda e: e.rv)
            del t.events[:cut]
            t.hstart = 0
            t.horizon = max(t.horizon, rev)

    async def wait_for_version(self, rv: int, timeout: float) -> bool:
        """Wait until the store has reached ``rv``, at most ``timeout`` seconds, as the
        watch cache blocks a read for a version it has not seen yet; True if reached."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.resource_version < rv:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.01, left))
        return True

    # ---- internals shared with the HTTP layer (stored dicts, read-only) ------------------

    def _selectors(
        self, res: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> tuple[LabelPredicate | None, ObjectPredicate | None]:
        try:
            return (
                parse_label_selector(label_selector),
                parse_field_selector(field_selector, res),
            )
        except SelectorError as exc:
            raise bad_request(str(exc)) from None

    def _get(self, t: _Table, namespace: str | None, name: str) -> dict[str, Any]:
        obj = t.objs.get(object_key(namespace if t.res.namespaced else None, name))
        if obj is None:
            raise not_found(t.res, name)
        return obj

    def _list(
        self,
        t: _Table,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> ListPage:
        """One page of a list, consistent at one resourceVersion.

        A continued (or ``resourceVersionMatch=Exact``) list is served at the version
        of its first page: objects written since are shown as they were then,
        reconstructed from the history, so a paginated list is a true snapshot.
        """
        labels, fields = self._selectors(t.res, label_selector, field_selector)
        namespace = namespace if t.res.namespaced else None
        current = self.resource_version
        snapshot_rv: int | None = None
        start = ""
        if continue_token:
            if resource_version not in (None, "", "0"):
                raise bad_request("specifying resource version is not allowed when using continue")
            token_rv, start = decode_continue(continue_token)
            if token_rv > current:
                raise future_revision()
            if token_rv != -1:
                if token_rv < self.compacted or token_rv < t.horizon:
                    # The 410 carries a token that continues at the latest version.
                    raise ApiError(
                        410, "Expired", CONTINUE_TOO_OLD, continue_token=_continue_token(-1, start)
                    )
                snapshot_rv = token_rv
        elif resource_version not in (None, "", "0"):
            rv = parse_resource_version(resource_version)
            if resource_version_match == "Exact" or (not resource_version_match and limit):
                # etcd serves these at exactly that revision (a paginated list without a
                # match too: etcd3 store's resolveGetListRev).
                if rv > current:
                    raise future_revision()
                if rv < self.compacted or rv < t.horizon:
                    raise expired(LIST_TOO_OLD)
                snapshot_rv = rv
            elif rv > current:
                # NotOlderThan: from the watch cache (which asks for a retry in 1 s), or from
                # etcd when paginated (which asks for none).
                raise too_large(rv, current, 0 if limit else 1)

        overrides: dict[str, dict[str, Any] | None] = {}
        list_rv = current
        if snapshot_rv is not None:
            if snapshot_rv < current:
                for ev in t.events_after(snapshot_rv):
                    overrides.setdefault(ev.key, ev.prev)
            list_rv = snapshot_rv

        keys = t.keys
        lo, hi = _key_range(keys, namespace)
        if start:
            lo = max(lo, bisect.bisect_left(keys, start, lo, hi))
        candidates: Iterator[str] = (keys[i] for i in range(lo, hi))
        if overrides:
            # Objects deleted since the snapshot are no longer in `keys`; merge them back in.
            gone = sorted(
                k
                for k in overrides
                if k not in t.objs
                and k >= start
                and (namespace is None or k.startswith(namespace + "/"))
            )
            candidates = heapq.merge(candidates, gone)

        items: list[dict[str, Any]] = []
        item_keys: list[str] = []
        more = False
        plain = labels is None and fields is None
        for key in candidates:
            if limit is not None and len(items) >= limit:
                more = True
                break
            if overrides and key in overrides:
                obj = overrides[key]
                if obj is None:
                    continue
            else:
                obj = t.objs[key]
            if not plain:
                if labels is not None and not labels(obj["metadata"].get("labels") or {}):
                    continue
                if fields is not None and not fields(obj):
                    continue
            items.append(obj)
            item_keys.append(key)

        token = encode_continue(list_rv, item_keys[-1]) if more and item_keys else None
        remaining: int | None = None
        if token and plain and not overrides:
            remaining = hi - bisect.bisect_right(keys, item_keys[-1], lo, hi)
        return ListPage(items, [] if overrides else item_keys, list_rv, token, remaining, t)

    def _check_type(self, res: ResourceType, obj: dict[str, Any]) -> None:
        api_version = obj.get("apiVersion")
        if api_version is not None and api_version != res.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({res.api_version})"
            )
        kind = obj.get("kind")
        if kind is not None and kind != res.kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
            )

    def _validate_name(self, res: ResourceType, name: Any) -> str:
        if not name:
            raise invalid_fields(
                res, "", [fe.required("metadata.name", "name or generateName is required")]
            )
        if not isinstance(name, str):
            raise bad_request("metadata.name must be a string")
        # The name's format is the kind's validation's to judge (RBAC kinds take path
        # segments like "system:discovery", Namespaces DNS labels, most kinds subdomains).
        return name

    def _resolve_namespace(
        self, res: ResourceType, md: dict[str, Any], namespace: str | None
    ) -> str | None:
        if not res.namespaced:
            md.pop("namespace", None)
            return None
        body_ns = md.get("namespace")
        if namespace and body_ns and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent "
                "on the request"
            )
        ns = namespace or body_ns or "default"
        if not isinstance(ns, str) or not _is_dns_label(ns):
            raise invalid_fields(
                res, md.get("name") or "", [fe.invalid_value("metadata.namespace", ns)]
            )
        md["namespace"] = ns
        return ns

    def _next_rv(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def _commit(
        self,
        t: _Table,
        key: str,
        type_: str,
        obj: dict[str, Any],
        prev: dict[str, Any] | None,
    ) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        if type_ == DELETED:
            del t.objs[key]
            t.remove_key(key)
        else:
            if type_ == ADDED:
                t.add_key(key)
            t.objs[key] = obj
        t.raw.pop(key, None)
        ev = _Event(rv, type_, key, obj["metadata"].get("namespace") or "", obj, prev)
        t.events.append(ev)
        if t.history_len() > self.history_limit:
            # Like the watch cache's ring: the oldest event makes room, and a watch may
            # then start no earlier than just before the oldest one kept.
            t.hstart += 1
            t.horizon = t.events[t.hstart].rv - 1
            if t.hstart > 1024 and t.hstart * 2 > len(t.events):
                del t.events[: t.hstart]
                t.hstart = 0
        if t.future:
            self._wake(t, rv)
        for w in tuple(t.watchers):
            w._offer(ev)
        if type_ == DELETED:
            self._after_delete(t, obj)

    @staticmethod
    def _wake(t: _Table, rv: int) -> None:
        """Watches waiting for a version this event passes start receiving events."""
        ready = [w for w in t.future if w.after < rv]
        for w in ready:
            t.future.remove(w)
            t.watchers.add(w)

    def _ensure_namespace(self, namespace: str) -> None:
        t = self.table("namespaces")
        if namespace in t.objs:
            return
        obj: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": self.now(),
                "labels": {"kubernetes.io/metadata.name": namespace},
                "resourceVersion": str(self._next_rv()),
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self._commit(t, namespace, ADDED, obj, None)

    @deepjson.deep
    def _create(
        self,
        t: _Table,
        obj: Any,
        namespace: str | None = None,
        *,
        keep_status: bool = True,
        dry_run: bool = False,
        res: ResourceType | None = None,
        options: WriteOptions | None = None,
        ensure_namespace: bool = True,
    ) -> dict[str, Any]:
        """Create. Over the API (``ensure_namespace=False``) a missing namespace is 404 and
        a terminating one 403, as the NamespaceLifecycle admission plugin answers; an
        in-process caller seeding a scenario gets the namespace made for it."""
        res = res or t.res
        opts = options or _IN_PROCESS
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        new = deep_copy(obj)
        self._check_type(res, new)
        md = new.get("metadata")
        if md is None:
            md = new["metadata"] = {}
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        if md.get("resourceVersion"):
            raise ApiError(
                500, "InternalError", "resourceVersion should not be set on objects to be created"
            )
        self._decode(res, new, opts, body=True)
        name = md.get("name")
        # Admission sees the name the request gave: none yet for a generateName.
        given = name if isinstance(name, str) else ""
        if not name and isinstance(md.get("generateName"), str):
            name = md["generateName"] + "".join(random.choices(_GENERATE_CHARS, k=5))
            md["name"] = name
        name = self._validate_name(res, name)
        ns = self._resolve_namespace(res, md, namespace)
        if ns is not None and not ensure_namespace:
            self._admit_namespace(ns, res, given)
        new["apiVersion"] = res.api_version
        new["kind"] = res.kind
        self.admission.default(res, new)
        if not keep_status and res.status_subresource and "status" in new:
            # The strategy's PrepareForCreate, after the decoder's defaulting; what is
            # read back from storage is defaulted again (a CRD's status default shows).
            new.pop("status")
            self.admission.default(res, new)
        if res.key == "namespaces":
            validation.prepare_namespace_create(new)
        for field in _SYSTEM_FIELDS:
            md.pop(field, None)
        # The handler's field manager runs before the strategy validates: what the client
        # sent as managedFields is decoded (or, undecodable, replaced) first.
        self._record_fields(res, None, new, opts, None)
        errors = self.admission.validate(res, new, None) if opts.validate else []
        if res.key == CRD_KEY:
            errors.extend(self._crd_errors(new))
        if errors:
            raise invalid_fields(res, name, errors)
        key = object_key(ns, name)
        if key in t.objs:
            exists = already_exists(res, name)
            if t.objs[key]["metadata"].get("deletionTimestamp"):
                # The generic registry's Create says why the name is still taken.
                exists = ApiError(
                    409, exists.reason, f"object is being deleted: {exists.message}", exists.details
                )
            raise exists
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = self.now()
        if sets_generation(res):
            md["generation"] = 1
        if res.key == CRD_KEY:
            new["status"] = accepted_status(new, self.now())
        if dry_run:
            # DryRunnableStorage.Create copies the object out unstored: no resourceVersion.
            return new
        if ns is not None:
            self._ensure_namespace(ns)
        md["resourceVersion"] = str(self._next_rv())
        stored = self.to_storage(res, new)
        self._commit(t, key, ADDED, stored, None)
        if res.key == CRD_KEY:
            self._serve_crd(stored)
        return new

    @deepjson.deep
    def _update(
        self,
        t: _Table,
        obj: Any,
        subresource: str | None = None,
        *,
        namespace: str | None = None,
        name: str | None = None,
        require_resource_version: bool = False,
        dry_run: bool = False,
        res: ResourceType | None = None,
        options: WriteOptions | None = None,
    ) -> dict[str, Any]:
        """PUT: ``namespace``/``name`` come from the URL when called over HTTP."""
        res = res or t.res
        opts = options or _IN_PROCESS
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("the body of the request must be a JSON object with metadata")
        new = deep_copy(obj)
        self._check_type(res, new)
        self._decode(res, new, opts, body=True)
        md = new.setdefault("metadata", {})
        body_name = md.get("name")
        # The namespace is checked before the name, as the update handler does.
        ns = self._resolve_namespace(res, md, namespace)
        if name is not None and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        name = self._validate_name(res, body_name)
        old = self.from_storage(res, self._get(t, ns, name))
        uid = md.get("uid")
        if uid and uid != old["metadata"]["uid"]:
            # A PUT's object is its own UID precondition (defaultUpdatedObjectInfo), which
            # etcd checks before anything else; the answer carries the storage error.
            raise conflict(
                res,
                name,
                f"StorageError: invalid object, Code: 4, Key: {storage_key(res, ns, name)}, "
                f"ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in "
                f"precondition: {uid}, UID in object meta: {old['metadata']['uid']}",
            )
        rv = md.get("resourceVersion")
        if not rv and require_resource_version:
            # The generic registry's words: the resource (not the kind) where the kind
            # goes, and the uint64 zero printed by %#v.
            raise _invalid(
                res.plural,
                res.group,
                name,
                [
                    fe.invalid_value(
                        "metadata.resourceVersion",
                        fe.Verbatim("0x0"),
                        "must be specified for an update",
                    )
                ],
            )
        return self._apply(t, old, new, subresource, dry_run=dry_run, res=res, options=opts)

    @deepjson.deep
    def _patch(
        self,
        t: _Table,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        res: ResourceType | None = None,
        options: WriteOptions | None = None,
        ensure_namespace: bool = True,
    ) -> dict[str, Any]:
        res = res or t.res
        opts = options or _IN_PROCESS
        if patch_type == "apply":
            return self._server_side_apply(
                t, namespace, name, patch, subresource, res, opts, dry_run, ensure_namespace
            )
        if opts.force:
            raise invalid_options(
                "PatchOptions", [fe.forbidden("force", "may not be specified for non-apply patch")]
            )
        old = self.from_storage(res, self._get(t, namespace, name))
        if isinstance(patch, bytes | str):
            try:
                patch = orjson.loads(patch)
            except orjson.JSONDecodeError as exc:
                raise bad_request(f"error decoding patch: {exc}") from None
        if patch_type == "strategic" and is_custom_resource(res):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        if patch_type in ("merge", "strategic"):
            if not isinstance(patch, dict):
                raise bad_request(
                    "error decoding patch: json: cannot unmarshal into Go value of type "
                    "map[string]interface {}"
                )
            new = merge_patch(old, patch) if patch_type == "merge" else _strategic(res, old, patch)
        elif patch_type == "json":
            try:
                new = json_patch(old, patch, checked=opts.field_validation != "Ignore")
            except PatchError as exc:
                if exc.bad_request:
                    raise bad_request(str(exc)) from None
                # The patch handler wraps any failure to apply in a generic 422 with
                # empty details, so the reason (a failed test op too) never reaches
                # the client: kubectl prints only "The request is invalid: the server
                # rejected our request due to an error in our request".
                raise rejected_request() from None
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format ({patch_type}) - accepted "
                "media types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml",
            )
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise ApiError(422, "Invalid", "the patched object must be an object with metadata")
        new = dict(new)
        md = new["metadata"] = dict(new["metadata"])
        # The patch handler's checkName; a namespace the patch removed is the request's
        # again (EnsureObjectNamespaceMatchesRequestNamespace).
        if md.get("name") != name:
            raise bad_request(
                f"the name of the object ({md.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != namespace:
                raise bad_request(
                    f"the namespace of the object ({md['namespace']}) does not match the "
                    f"namespace on the request ({namespace})"
                )
            md["namespace"] = namespace
        self._check_type(res, new)
        self._decode(res, new, opts)
        return self._apply(t, old, new, subresource, dry_run=dry_run, res=res, options=opts)

    def _apply(
        self,
        t: _Table,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
        *,
        dry_run: bool,
        res: ResourceType | None = None,
        options: WriteOptions | None = None,
    ) -> dict[str, Any]:
        """The common end of update and patch: preconditions, the subresource rules,
        defaulting and validation, generation, a no-op check, and finalizer-driven
        deletion. ``new`` is owned."""
        res = res or t.res
        if subresource is not None and not (subresource == "status" and res.status_subresource):
            raise unknown_resource()
        old_md = old["metadata"]
        name = old_md["name"]
        new_md = new["metadata"]
        rv = new_md.get("resourceVersion")
        if rv and rv != old_md["resourceVersion"]:
            raise stale(res, name)
        if subresource == "status":
            result = dict(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            md = dict(old_md)
        else:
            result = new
            if res.status_subresource:
                if "status" in old:
                    result["status"] = old["status"]
                else:
                    result.pop("status", None)
            md = new_md
            _keep_system_fields(md, old_md)
        result["apiVersion"] = res.api_version
        result["kind"] = res.kind
        result["metadata"] = md
        md["resourceVersion"] = old_md["resourceVersion"]
        if subresource is None:
            self.admission.default(res, result)
        self._record_fields(res, old, result, options or _IN_PROCESS, subresource)
        errors = self.admission.validate(res, result, old, subresource)
        if res.key == CRD_KEY and subresource is None:
            errors.extend(self._crd_errors(result))
        if errors:
            raise invalid_fields(res, name, errors)
        if res.key == "namespaces":
            validation.keep_namespace_spec(result, old)
        if res.key == CRD_KEY and subresource is None:
            result["status"] = accepted_status(result, self.now())
        if subresource is None and sets_generation(res) and _spec_changed(old, result, res):
            md["generation"] = int(old_md.get("generation") or 0) + 1
        if result == old:
            # Like etcd's GuaranteedUpdate: an update that changes nothing is not written,
            # so the resourceVersion stays and no watch event is sent.
            return old
        if dry_run:
            return result
        key = object_key(md.get("namespace"), name)
        stored_old = t.objs[key]
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            gone = dict(stored_old)
            gone["metadata"] = {**old_md, "resourceVersion": str(self._next_rv())}
            self._commit(t, key, DELETED, gone, stored_old)
            return self.from_storage(res, gone)
        md["resourceVersion"] = str(self._next_rv())
        stored = self.to_storage(res, result)
        self._commit(t, key, MODIFIED, stored, stored_old)
        if res.key == CRD_KEY:
            self._serve_crd(stored)
        return result

    def _delete(
        self,
        t: _Table,
        namespace: str | None,
        name: str,
        *,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        propagation: str | None = None,
        orphan_dependents: bool | None = None,
    ) -> dict[str, Any]:
        """DELETE: at once, or (finalizers pending) marked as deleting; ``propagation``
        and ``orphan_dependents`` put the garbage collector's finalizer on the object."""
        res = t.res
        old = self._get(t, namespace, name)
        old_md = old["metadata"]
        if preconditions:
            # rest.BeforeDelete checks them first, naming the kind where other conflicts
            # name the resource (schema.GroupResource{Group, Resource: Kind}).
            uid = preconditions.get("uid")
            if uid is not None and uid != old_md["uid"]:
                raise _delete_conflict(
                    res,
                    name,
                    f"the UID in the precondition ({uid}) does not match the UID in record "
                    f"({old_md['uid']}). The object might have been deleted and then recreated",
                )
            rv = preconditions.get("resourceVersion")
            if rv is not None and rv != old_md["resourceVersion"]:
                raise _delete_conflict(
                    res,
                    name,
                    f"the ResourceVersion in the precondition ({rv}) does not match the "
                    f"ResourceVersion in record ({old_md['resourceVersion']}). The object "
                    "might have been modified",
                )
        key = object_key(namespace if res.namespaced else None, name)
        is_namespace = res.plural == "namespaces" and not res.group
        finalizers = list(old_md.get("finalizers") or [])
        if not is_namespace:
            finalizers = _gc_finalizers(finalizers, propagation, orphan_dependents)
        if finalizers or (is_namespace and (old.get("spec") or {}).get("finalizers")):
            if old_md.get("deletionTimestamp") and finalizers == (old_md.get("finalizers") or []):
                return old
            # The object stays until its finalizers are removed (markAsDeleting).
            md = dict(old_md)
            if finalizers:
                md["finalizers"] = finalizers
            if not md.get("deletionTimestamp"):
                md["deletionTimestamp"] = self.now()
                if md.get("generation"):
                    md["generation"] = int(md["generation"]) + 1
            md["deletionGracePeriodSeconds"] = 0
            result = {**old, "metadata": md}
            if is_namespace:
                result["status"] = {**(old.get("status") or {}), "phase": "Terminating"}
            if dry_run:
                return result
            md["resourceVersion"] = str(self._next_rv())
            self._commit(t, key, MODIFIED, result, old)
            if is_namespace:
                self._later(lambda: self._drain_namespace(name))
            elif _ORPHAN in finalizers or _FOREGROUND in finalizers:
                self._later(lambda: self._collect(t, key))
            return result
        gone = {**old, "metadata": dict(old_md)}
        if dry_run:
            return gone
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        self._commit(t, key, DELETED, gone, old)
        return gone

    # ---- what the controllers of a real control plane do -------------------------------------

    def _after_delete(self, t: _Table, obj: dict[str, Any]) -> None:
        """A deleted CRD takes its kind away; the last object of a terminating namespace
        lets the namespace go; the last dependent of an owner deleted in the foreground
        lets the owner go."""
        if t.res.key == CRD_KEY:
            self._unserve_crd(obj)
        for ref in obj["metadata"].get("ownerReferences") or ():
            waiting = self._foreground.get(str(ref.get("uid")))
            if waiting is not None:
                table, key = waiting
                self._later(functools.partial(self._collect, table, key))
        ns = obj["metadata"].get("namespace")
        if ns and ns in self._terminating:
            self._later(lambda: self._finish_namespace(ns))

    def _later(self, step: Callable[[], None]) -> None:
        """Run a controller's step after the current request has been answered, as the
        real controllers act asynchronously; at once when no event loop runs."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            step()
            return
        loop.call_soon(step)

    def _collect(self, t: _Table, key: str) -> None:
        """The garbage collector's part of a deletion: ``orphan`` takes the owner's
        reference off its dependents, ``foregroundDeletion`` deletes them and waits for
        the last to go; then the finalizer comes off (and the owner goes, if it was the
        last). Dependents are found by ownerReferences in the owner's namespace, or
        anywhere for a cluster-scoped owner."""
        owner = t.objs.get(key)
        if owner is None or not owner["metadata"].get("deletionTimestamp"):
            return
        uid = owner["metadata"]["uid"]
        finalizers = list(owner["metadata"].get("finalizers") or [])
        dependents = self._dependents(uid, owner["metadata"].get("namespace"))
        if _ORPHAN in finalizers:
            for table, dep in dependents:
                refs = [r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != uid]
                md = {**dep["metadata"], "resourceVersion": str(self._next_rv())}
                if refs:
                    md["ownerReferences"] = refs
                else:
                    md.pop("ownerReferences")
                dep_key = object_key(md.get("namespace"), md["name"])
                self._commit(table, dep_key, MODIFIED, {**dep, "metadata": md}, dep)
            finalizers.remove(_ORPHAN)
        elif _FOREGROUND in finalizers:
            for table, dep in dependents:
                dep_md = dep["metadata"]
                if not dep_md.get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        self._delete(table, dep_md.get("namespace"), dep_md["name"])
            if self._dependents(uid, owner["metadata"].get("namespace")):
                self._foreground[uid] = (t, key)
                return
            self._foreground.pop(uid, None)
            finalizers.remove(_FOREGROUND)
        else:
            return
        owner = t.objs[key]
        md = {**owner["metadata"], "resourceVersion": str(self._next_rv())}
        if finalizers:
            md["finalizers"] = finalizers
            self._commit(t, key, MODIFIED, {**owner, "metadata": md}, owner)
        else:
            md.pop("finalizers", None)
            self._commit(t, key, DELETED, {**owner, "metadata": md}, owner)

    def _dependents(self, uid: str, namespace: str | None) -> _Dependents:
        found: _Dependents = []
        for table in self._tables.values():
            if namespace is not None and not table.res.namespaced:
                continue
            for obj in table.objs.values():
                md = obj["metadata"]
                if namespace is not None and md.get("namespace") != namespace:
                    continue
                if any(r.get("uid") == uid for r in md.get("ownerReferences") or ()):
                    found.append((table, obj))
        return found

    def _drain_namespace(self, namespace: str) -> None:
        """The namespace controller: delete everything in a terminating namespace (objects
        with finalizers wait for them), then finalize it."""
        ns_obj = self._tables["namespaces"].objs.get(namespace)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        self._terminating.add(namespace)
        for table in list(self._tables.values()):
            if not table.res.namespaced:
                continue
            lo, hi = _key_range(table.keys, namespace)
            for key in table.keys[lo:hi]:
                obj = table.objs.get(key)
                if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        self._delete(table, namespace, obj["metadata"]["name"])
        self._finish_namespace(namespace)

    def _finish_namespace(self, namespace: str) -> None:
        t = self._tables["namespaces"]
        ns_obj = t.objs.get(namespace)
        if ns_obj is None:
            self._terminating.discard(namespace)
            return
        remaining = [
            tb.res
            for tb in self._tables.values()
            if tb.res.namespaced and self._in_ns(tb, namespace)
        ]
        if remaining:
            conditions = [
                {
                    "type": "NamespaceContentRemaining",
                    "status": "True",
                    "lastTransitionTime": self.now(),
                    "reason": "SomeResourcesRemain",
                    "message": "Some resources are remaining: "
                    + ", ".join(f"{r.key} has objects" for r in remaining),
                }
            ]
            status = {"phase": "Terminating", "conditions": conditions}
            if (ns_obj.get("status") or {}).get("conditions") != conditions:
                updated = {**ns_obj, "status": status}
                updated["metadata"] = {
                    **ns_obj["metadata"],
                    "resourceVersion": str(self._next_rv()),
                }
                self._commit(t, namespace, MODIFIED, updated, ns_obj)
            return
        self._terminating.discard(namespace)
        gone = {**ns_obj, "spec": {**(ns_obj.get("spec") or {}), "finalizers": []}}
        if gone["metadata"].get("finalizers"):
            # metadata finalizers of someone else's still hold the namespace.
            gone["metadata"] = {**ns_obj["metadata"], "resourceVersion": str(self._next_rv())}
            self._commit(t, namespace, MODIFIED, gone, ns_obj)
            return
        gone["metadata"] = {**ns_obj["metadata"], "resourceVersion": str(self._next_rv())}
        self._commit(t, namespace, DELETED, gone, ns_obj)

    @staticmethod
    def _in_ns(t: _Table, namespace: str) -> bool:
        lo, hi = _key_range(t.keys, namespace)
        return hi > lo

    def _admit_namespace(self, namespace: str, res: ResourceType, name: str) -> None:
        """NamespaceLifecycle: no content in a missing or terminating namespace. The
        terminating refusal is admission's Forbidden, which names the object's resource
        and name before the plugin's reason, and adds the NamespaceTerminating cause."""
        ns_obj = self._tables["namespaces"].objs.get(namespace)
        if ns_obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        if ns_obj["metadata"].get("deletionTimestamp"):
            subject = f'{qualified(res)} "{name}"' if name else qualified(res)
            cause = {
                "reason": "NamespaceTerminating",
                "message": f"namespace {namespace} is being terminated",
                "field": "metadata.namespace",
            }
            raise ApiError(
                403,
                "Forbidden",
                f"{subject} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                {k: v for k, v in _details(res, name, causes=[cause]).items() if v},
            )

    def crd_schema(self, res: ResourceType) -> dict[str, Any] | None:
        """The openAPIV3Schema a CRD gives one served version of its kind."""
        crd = self._tables[CRD_KEY].objs.get(f"{res.plural}.{res.group}")
        if crd is None:
            return None
        for version in crd["spec"]["versions"]:
            if version.get("name") == res.version:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                return schema if isinstance(schema, dict) else None
        return None

    def to_storage(self, res: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """An object of ``res``'s version as the storage version holds it."""
        if is_storage_version(res):
            return obj
        conv = self.converters.get(f"{res.plural}.{res.version}.{res.group}")
        if conv is not None:
            return conv[0](obj)
        # A CRD without a conversion webhook: strategy None, only apiVersion changes.
        return {**obj, "apiVersion": self.table(res).res.api_version}

    def from_storage(self, res: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """A stored object as ``res``'s version shows it."""
        if is_storage_version(res):
            return obj
        conv = self.converters.get(f"{res.plural}.{res.version}.{res.group}")
        if conv is not None:
            return conv[1](obj)
        return {**obj, "apiVersion": res.api_version}

    # ---- field ownership -----------------------------------------------------------------

    def field_types(self, res: ResourceType) -> managedfields.ListTypes:
        """How server-side apply merges ``res``'s lists and maps: from the CRD's schema,
        or the table of built-in kinds."""
        if res.custom:
            schema = self.admission.schema_for(res)
            return schema.field_type if schema is not None else managedfields.default_list_types
        return managedfields.builtin_list_types(res.api_version, res.kind)

    @staticmethod
    def _reset_fields(res: ResourceType, subresource: str | None) -> tuple[str, ...]:
        """What a write through this endpoint can never change (GetResetFields)."""
        if subresource == "status":
            return ("spec",)
        return ("status",) if res.status_subresource else ()

    def _record_fields(
        self,
        res: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        opts: WriteOptions,
        subresource: str | None,
    ) -> None:
        """managedFields for an Update (create, update, patch) by the request's manager."""
        if opts.applied:
            return
        manager = opts.manager or managedfields.default_manager(opts.user_agent)
        managedfields.record_update(
            old,
            new,
            manager=manager,
            api_version=res.api_version,
            now=self.now(),
            subresource=subresource or "",
            lists=self.field_types(res),
            ignore=self._reset_fields(res, subresource),
        )

    def _server_side_apply(
        self,
        t: _Table,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str | None,
        res: ResourceType,
        opts: WriteOptions,
        dry_run: bool,
        ensure_namespace: bool,
    ) -> dict[str, Any]:
        """PATCH with application/apply-patch+yaml: merge the applied configuration, then
        create or update as any write does; a missing object is created."""
        if isinstance(body, bytes | str):
            try:
                config = yaml.safe_load(body)
            except yaml.YAMLError as exc:
                raise bad_request(f"error decoding YAML: {exc}") from None
        else:
            config = body
        if not isinstance(config, dict):
            raise bad_request("error decoding patch: the applied configuration must be an object")
        stored = t.objs.get(object_key(namespace if res.namespaced else None, name))
        if stored is None and subresource is not None:
            raise not_found(res, name)
        live = self.from_storage(res, stored) if stored is not None else None
        try:
            merged = managedfields.apply(
                live,
                config,
                manager=opts.manager,
                force=opts.force,
                api_version=res.api_version,
                now=self.now(),
                lists=self.field_types(res),
                subresource=subresource or "",
                ignore=self._reset_fields(res, subresource),
                kind=res.kind,
            )
        except managedfields.ApplyError as err:
            raise ApiError(err.code, err.reason, err.message, err.details) from None
        applied = dataclasses.replace(opts, applied=True)
        merged = deep_copy(merged)
        md = merged.setdefault("metadata", {})
        if md.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({md.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        md["name"] = name
        if live is None:
            return self._create(
                t,
                merged,
                namespace,
                keep_status=False,
                dry_run=dry_run,
                res=res,
                options=applied,
                ensure_namespace=ensure_namespace,
            )
        assert live is not None
        return self._apply(t, live, merged, subresource, dry_run=dry_run, res=res, options=applied)

    def _decode(
        self, res: ResourceType, obj: dict[str, Any], opts: WriteOptions, *, body: bool = False
    ) -> None:
        """Unknown fields. A create or update (``body``) decodes the request body into the
        kind, and the handler's 400 then names the kind and version the body claimed and
        the kind it was decoded into, as transformDecodeError words it; a patch's decode
        error is the bare strict decoding error. Server-side apply words its own."""
        claimed_kind = obj.get("kind") or res.kind
        claimed_version = str(obj.get("apiVersion") or res.api_version).rpartition("/")[2]
        try:
            self.admission.decode(res, obj, opts, typed=body and not opts.applied)
        except (StrictDecodingError, TypedDecodingError) as exc:
            message = str(exc)
            if body and not opts.applied:
                message = (
                    f'{claimed_kind} in version "{claimed_version}" cannot be handled as a '
                    f"{res.kind}: {message}"
                )
            raise bad_request(message) from None
        md = obj.get("metadata")
        if isinstance(md, dict):
            # Decoding into ObjectMeta (a custom resource's too: apiextensions coerces its
            # metadata through the Go type) loses an empty or null map or list, as its
            # omitempty tags do: the last annotation removed takes ``annotations`` along.
            for field in _OMITTED_WHEN_EMPTY:
                if field in md and not md[field]:
                    del md[field]

    def _crd_errors(self, crd: dict[str, Any]) -> _FieldErrors:
        errors = validate_crd(crd)
        if errors:
            return errors
        for i, version in enumerate(crd["spec"]["versions"]):
            schema = version["schema"]["openAPIV3Schema"]
            errors.extend(structural_errors(schema, f"spec.versions[{i}].schema.openAPIV3Schema"))
        return errors

    def _serve_crd(self, crd: dict[str, Any]) -> None:
        """Serve the definition's versions; its table keeps the objects across edits."""
        spec = crd["spec"]
        group, plural = spec["group"], spec["names"]["plural"]
        served = resource_types(crd)
        self.registry.remove(group, plural)
        for res in served:
            version = next(v for v in spec["versions"] if v["name"] == res.version)
            compiled = compile_schema(version["schema"]["openAPIV3Schema"], res.kind, group)
            self.admission.schemas[f"{plural}.{res.version}.{group}"] = compiled
        for res in served:
            self.registry.add(res)
        stored = next((r for r in served if r.version == r.storage_version), None)
        table = self._tables.get(f"{plural}.{group}")
        if table is not None and stored is not None:
            table.res = stored
        elif stored is not None:
            self._tables[stored.table_key] = _Table(stored)

    def _unserve_crd(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        group, plural = spec["group"], spec["names"]["plural"]
        self.registry.remove(group, plural)
        for key in [k for k in self.admission.schemas if k.startswith(f"{plural}.")]:
            if key.endswith(f".{group}"):
                del self.admission.schemas[key]
        table = self._tables.pop(f"{plural}.{group}", None)
        if table is not None:
            for w in tuple(table.watchers):
                w.close()


_IN_PROCESS = WriteOptions(field_validation="Ignore", manager="fluxwatch-sim")
_UNCHECKED = WriteOptions(field_validation="Ignore", manager="fluxwatch-sim", validate=False)

# Kinds whose strategy keeps metadata.generation (every custom resource does too).
_GENERATION_KINDS = frozenset(
    {
        "deployments.apps",
        "poddisruptionbudgets.policy",
        "networkpolicies.networking.k8s.io",
        CRD_KEY,
    }
)


# The garbage collector's finalizers (metav1.FinalizerOrphanDependents, ...DeleteDependents).
_ORPHAN, _FOREGROUND = "orphan", "foregroundDeletion"


def _gc_finalizers(
    finalizers: list[str], propagation: str | None, orphan_dependents: bool | None
) -> list[str]:
    """deletionFinalizersForGarbageCollection: the options decide, else a GC finalizer
    the object already carries; neither means background (no finalizer)."""
    if orphan_dependents is not None:
        orphan, foreground = orphan_dependents, False
    elif propagation is not None:
        orphan, foreground = propagation == "Orphan", propagation == "Foreground"
    else:
        orphan = _ORPHAN in finalizers and _FOREGROUND not in finalizers
        foreground = _FOREGROUND in finalizers
    kept = [f for f in finalizers if f not in (_ORPHAN, _FOREGROUND)]
    wanted = kept + [_ORPHAN] * orphan + [_FOREGROUND] * foreground
    return finalizers if set(wanted) == set(finalizers) else wanted


def _keep_system_fields(md: dict[str, Any], old_md: dict[str, Any]) -> None:
    """rest.BeforeUpdate: generation and creationTimestamp are the stored ones, a UID or
    deletion the write leaves out is kept; a UID or deletion it changes is left for
    ValidateObjectMetaUpdate to refuse as immutable (a PATCH has no UID precondition)."""
    for field in ("generation", "creationTimestamp"):
        if field in old_md:
            md[field] = old_md[field]
        else:
            md.pop(field, None)
    if not md.get("uid"):
        md["uid"] = old_md["uid"]
    if old_md.get("deletionTimestamp"):
        md["deletionTimestamp"] = old_md["deletionTimestamp"]
    if md.get("deletionGracePeriodSeconds") is None and "deletionGracePeriodSeconds" in old_md:
        md["deletionGracePeriodSeconds"] = old_md["deletionGracePeriodSeconds"]


# Where etcd keeps a kind when it is not under its plural (kube-apiserver's
# DefaultResourcePrefixes); custom resources and CRDs sit under their group.
_ETCD_PREFIXES = {
    "services": "services/specs",
    "nodes": "minions",
    "replicationcontrollers": "controllers",
    "ingresses.networking.k8s.io": "ingress",
}


def storage_key(res: ResourceType, namespace: str | None, name: str) -> str:
    """The etcd key a storage error names: ``/registry/configmaps/default/settings``."""
    if res.custom or res.key == CRD_KEY:
        prefix = f"{res.group}/{res.plural}"
    else:
        prefix = _ETCD_PREFIXES.get(res.key, res.plural)
    return "/".join(("/registry", prefix, *((namespace,) if namespace else ()), name))


# Built-in kinds whose strategy answers AllowUnconditionalUpdate false: a PUT must carry
# a resourceVersion (pkg/registry/coordination/lease). Custom resources are all so.
_CONDITIONAL_UPDATE_ONLY: Final = frozenset({"leases.coordination.k8s.io"})


def requires_resource_version(res: ResourceType) -> bool:
    """Whether a PUT without ``metadata.resourceVersion`` is refused (422)."""
    return is_custom_resource(res) or res.key in _CONDITIONAL_UPDATE_ONLY


def sets_generation(res: ResourceType) -> bool:
    return res.custom or res.key in _GENERATION_KINDS


def invalid_options(kind: str, errors: list[FieldError]) -> ApiError:
    """422 for bad request options (``PatchOptions.meta.k8s.io "" is invalid: ...``)."""
    return _invalid(kind, "meta.k8s.io", "", errors)


def invalid_fields(res: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid from field errors, worded as the real server words it."""
    return _invalid(res.kind, res.group, name, errors)


def _invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        fe.invalid_message(kind, group, name, errors),
        fe.status_details(kind, group, name, errors),
    )


_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _is_dns_label(text: str) -> bool:
    return len(text) <= 63 and _DNS_LABEL_RE.fullmatch(text) is not None


def _spec_changed(old: dict[str, Any], new: dict[str, Any], res: ResourceType) -> bool:
    skip = {"metadata", "apiVersion", "kind"}
    if res.status_subresource:
        skip.add("status")
    keys = (old.keys() | new.keys()) - skip
    return any(old.get(k) != new.get(k) for k in keys)
