"""A Kubernetes API server emulator served over real HTTP (aiohttp) on loopback.

It speaks the wire protocol of kube-apiserver for the resources in
``resources.RESOURCES``: discovery, list (pagination, selectors, metadata-only
and Table forms), watch streams (replay, bookmarks, 410, timeouts), writes with
the real error Statuses, bearer-token authentication and RBAC, so that
kubernetes_asyncio, kubectl and fluxwatch itself cannot tell it from a cluster.
Faults (dropped watches, 5xx, 429, latency, compaction) and per-verb statistics
are the hooks tests and benchmarks use.

Storage semantics live in ``store.Store``; this module is only the HTTP face.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import yaml
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from fluxwatch.sim import (
    auth,
    certs,
    control,
    deepjson,
    kubeconfig,
    managedfields,
    protobuf,
    rbac,
    tables,
    writeoptions,
)
from fluxwatch.sim.admission import WriteOptions
from fluxwatch.sim.listoptions import list_options, query_flag
from fluxwatch.sim.openapi import OpenAPI, http_response
from fluxwatch.sim.rbac import ADMIN_GROUP, ADMIN_USER, Authorizer, Request, User, user_for_subject
from fluxwatch.sim.rbac import token_for_subject as _token_for_subject
from fluxwatch.sim.resources import VIRTUAL, Registry, ResourceType
from fluxwatch.sim.selectors import field_selector_name, parse_field_terms
from fluxwatch.sim.store import (
    ApiError,
    Delivery,
    ListPage,
    Store,
    Watcher,
    bad_request,
    conflict,
    invalid_options,
    is_storage_version,
    object_key,
    parse_resource_version,
    requires_resource_version,
    storage_key,
    too_large,
)

JSON = "application/json"
YAML = "application/yaml"
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-fluxwatch-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class Stats:
    """Requests and response bytes per (verb, resource key); the status subresource
    counts under ``<key>/status``. Discovery is not counted."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.bytes: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        self.requests.clear()
        self.bytes.clear()


@dataclass
class _Failure:
    remaining: int
    code: int
    retry_after: int | None
    verb: str | None
    resource: str | None
    served: bool = False  # a cut connection: after the request was served, or before

    def matches(self, verb: str, key: str) -> bool:
        return (self.verb is None or self.verb == verb) and (
            self.resource is None or self.resource == key
        )


class _WatchStream:
    __slots__ = ("abort", "request", "watcher")

    def __init__(self, request: web.Request, watcher: Watcher) -> None:
        self.request = request
        self.watcher = watcher
        self.abort = False


class Faults:
    """Fault injection. Failures apply to API requests (discovery is never failed),
    watches included, in the order they were queued."""

    def __init__(self, server: ApiServer) -> None:
        self._server = server
        self.latency = 0.0  # seconds added before every request is served
        self._failures: deque[_Failure] = deque()
        self._cuts: deque[_Failure] = deque()

    def drop_watches(self, *, clean: bool = False) -> int:
        """End every open watch stream: abruptly (the connection is cut mid-stream, as
        when an API server dies) or, with ``clean``, as a server-side timeout does.
        Returns how many were dropped."""
        streams = list(self._server._watches)
        for stream in streams:
            stream.abort = not clean
            stream.watcher.close()
        return len(streams)

    def fail_next(
        self,
        n: int = 1,
        code: int = 500,
        retry_after: int | None = 1,
        *,
        verb: str | None = None,
        resource: str | None = None,
    ) -> None:
        """Fail the next ``n`` API requests (optionally only those of a verb and/or a
        resource key) with the real server's answer for ``code``: 429 as API Priority
        and Fairness refuses, 500 an etcd timeout, 503 a server shutting down, 504 the
        timeout filter. A 429 or 503 carries ``Retry-After: retry_after`` unless None."""
        if code not in PUSHBACK:
            raise ValueError(f"code: a server pushes back with one of {PUSHBACK}, not {code}")
        if n > 0:
            self._failures.append(_Failure(n, code, retry_after, verb, resource))

    def cut_next(
        self,
        n: int = 1,
        *,
        served: bool = True,
        verb: str | None = None,
        resource: str | None = None,
    ) -> None:
        """Cut the connection of the next ``n`` API requests (optionally only those of a
        verb and/or a resource key) instead of answering, as a dying server or a proxy
        does: after the request was ``served`` (a write lands, its answer is lost) or
        before. A watch is cut mid-stream with :meth:`drop_watches` instead."""
        if verb == "watch":
            raise ValueError("verb: cut a watch with drop_watches")
        if n > 0:
            self._cuts.append(_Failure(n, 0, None, verb, resource, served))

    def compact(self) -> None:
        """Expire the watch history: resuming from any earlier version gets 410."""
        self._server.store.compact()

    def clear(self) -> None:
        self._failures.clear()
        self._cuts.clear()
        self.latency = 0.0

    def _take(self, verb: str, key: str) -> web.Response | None:
        failure = _next(self._failures, verb, key)
        return None if failure is None else _injected(failure.code, failure.retry_after)

    def _take_cut(self, verb: str, key: str) -> _Failure | None:
        return None if verb == "watch" else _next(self._cuts, verb, key)


def _next(queue: deque[_Failure], verb: str, key: str) -> _Failure | None:
    """The first queued failure for this request, counted down (and gone at zero)."""
    for failure in queue:
        if failure.matches(verb, key):
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.remove(failure)
            return failure
    return None


# The answers kube-apiserver gives when it pushes back, each from the code that writes it
# (k8s.io/apiserver). A 429 comes from API Priority and Fairness (or max-in-flight)
# before authorization, as http.Error writes it: plain text, not a Status. A 500 is an
# etcd error the storage did not classify: a Status without a reason, etcd's text as its
# message. A 503 is a server shutting down (filters/waitgroup.go), a 504 the timeout
# filter's Status, written with no Content-Type (so Go sniffs text/plain).
_APF_TOO_MANY = "Too many requests, please try again later.\n"
_APF_HEADERS = {
    # setResponseHeaders: the UIDs (not the names) of the matched FlowSchema and level.
    "X-Kubernetes-PF-FlowSchema-UID": "7c0ba4b5-6b25-4e0e-b2a8-0e34c1b2d6a1",
    "X-Kubernetes-PF-PriorityLevel-UID": "0f0c3a52-36d2-4c38-9e7b-51c8f9a45c5e",
}
_ETCD_TIMED_OUT = "etcdserver: request timed out"
_SHUTTING_DOWN = "apiserver is shutting down"
_TIMED_OUT = "Timeout: request did not complete within the allotted timeout"
_SNIFFED = "text/plain; charset=utf-8"
PUSHBACK = (429, 500, 503, 504)


def _injected(code: int, retry_after: int | None) -> web.Response:
    """The response a real server sends for ``code`` (one of ``PUSHBACK``)."""
    headers: dict[str, str] = {"Content-Type": JSON, "X-Content-Type-Options": "nosniff"}
    if retry_after is not None and code in (429, 503):
        headers["Retry-After"] = str(retry_after)
    if code == 429:
        body = _APF_TOO_MANY.encode()
        headers.update(_APF_HEADERS)
        headers["Content-Type"] = _SNIFFED
    elif code == 503:
        body = orjson.dumps(ApiError(503, "ServiceUnavailable", _SHUTTING_DOWN).status())
    elif code == 504:
        body = orjson.dumps(ApiError(504, "Timeout", _TIMED_OUT, {}).status())
        headers = {"Content-Type": _SNIFFED}
    else:
        body = orjson.dumps(ApiError(500, "", _ETCD_TIMED_OUT).status())
    return web.Response(body=body, status=code, headers=headers)


@dataclass(frozen=True, slots=True)
class _Target:
    res: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool  # the legacy /watch/ path prefix

    @property
    def stats_key(self) -> str:
        return f"{self.res.key}/{self.subresource}" if self.subresource else self.res.key


def _negotiate(accept: str, *, collection: bool, watch: bool) -> str:
    """Pick the response form from an Accept header: "json", "yaml", "meta" or "table".

    Answers are JSON (or YAML for a plain read); a client that accepts only protobuf
    is refused with the real server's list, which names the three it serves."""
    if not accept:
        return "json"
    for entry in accept.split(","):
        media, *params = (p.strip() for p in entry.split(";"))
        opts = dict(p.split("=", 1) for p in params if "=" in p)
        if media == YAML and not watch and "as" not in opts:
            return "yaml"
        if media not in (JSON, "application/*", "*/*"):
            continue
        as_ = opts.get("as")
        if as_ is None:
            return "json"
        if opts.get("g") != "meta.k8s.io" or opts.get("v") not in ("v1", "v1beta1"):
            continue
        if as_ == "Table":
            return "table"
        if as_ == "PartialObjectMetadataList" and (collection or watch):
            return "meta"
        if as_ == "PartialObjectMetadata" and (not collection or watch):
            return "meta"
    raise ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf",
    )


# Kinds whose storage sets ReturnDeletedObject: a DELETE that removes one answers the
# object; every other kind (custom resources too) answers a Success Status.
_RETURNS_DELETED = frozenset({"pods", "serviceaccounts", "namespaces"})

# Storage tables whose registry strategy answers AllowCreateOnUpdate true, served that
# way here: a PUT of a missing object creates it (201). The event and the lease
# strategies both do (pkg/registry/core/event, pkg/registry/coordination/lease).
_CREATE_ON_UPDATE = frozenset({"events", "leases.coordination.k8s.io"})


def _deleted(res: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What the generic registry's finalizeDelete answers for an object gone at once."""
    if res.key in _RETURNS_DELETED:
        return obj
    details: dict[str, Any] = {"name": obj["metadata"]["name"]}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.plural  # "Yes we set Kind field to resource."
    details["uid"] = obj["metadata"]["uid"]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


# kube-apiserver's timings, in cluster seconds (ApiServer multiplies them by time_scale).
# The watch cache sends a bookmark to each watcher about once a minute, and one more 2 s
# before the watch's deadline (cacheWatcher.nextBookmarkTime); it blocks a read for a
# version it has not seen for up to 3 s (watchCache.waitUntilFreshAndBlock); etcd is
# compacted every 5 minutes (--etcd-compaction-interval), each time up to the revision
# seen at the previous run.
BOOKMARK_INTERVAL = 60.0
BOOKMARK_BEFORE_DEADLINE = 2.0
BLOCK_TIMEOUT = 3.0
COMPACTION_INTERVAL = 300.0
# How many bytes of events the watch loop takes from the watcher before it writes: a
# write of a thousand events (3 MB with managedFields) went out in bursts, since aiohttp
# takes the next write only once the client has read nearly all of the last.
WATCH_WRITE_SIZE = 64 * 1024
# net/http's buffer in front of a response's chunked encoding (bufferBeforeChunkingSize).
GO_CHUNK_BUFFER = 2048


class WatchFraming:
    """The HTTP chunks kube-apiserver sends a watch in.

    Its watch handler (handlers/watch.go) writes each event in one Write and flushes
    when no event is queued; net/http puts a 2 KiB buffer (bufio.Writer) in front of the
    chunked encoding. So an event of 2 KiB or more, written to an empty buffer, goes out
    as one chunk of its own, and smaller ones share 2 KiB chunks that cut through them.
    Every HTTP/1.1 client (kubernetes_asyncio's aiohttp) pays its parser's per-chunk
    work on each: with managedFields a HelmRelease event is about 3 KB, a chunk per event,
    where 64 KiB chunks cost fluxwatch's watch reader 9% fewer instructions an event
    (README, "Performance")."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> list[bytes]:
        """The chunks one Write sends at once (bufio.Writer.Write's loop)."""
        out: list[bytes] = []
        buffer = self._buffer
        while len(data) > GO_CHUNK_BUFFER - len(buffer):
            if not buffer:  # a large write to an empty buffer goes straight through
                out.append(data)
                return out
            room = GO_CHUNK_BUFFER - len(buffer)
            buffer += data[:room]
            data = data[room:]
            out.append(bytes(buffer))
            buffer.clear()
        buffer += data
        return out

    def flush(self) -> list[bytes]:
        """What is buffered, as one chunk (http.Flusher.Flush)."""
        if not self._buffer:
            return []
        out = [bytes(self._buffer)]
        self._buffer.clear()
        return out


async def _send_chunks(
    request: web.Request, writer: AbstractStreamWriter, chunks: list[bytes]
) -> None:
    """Send ``chunks`` as that many HTTP/1.1 chunks in one write to the socket.

    The client's parser sees a chunk per event, as from kube-apiserver; the emulator
    pays one socket write per batch, as kube-apiserver's 4 KiB connection buffer does
    several events at once, instead of one per chunk (``resp.write`` per chunk put the
    emulator's ceiling at about the rate a client reads, so a benchmark timed the
    emulator). The response's headers are out (``prepare``) and it ends with the
    writer's own last chunk (``write_eof``).
    """
    if not chunks:
        return
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the watch's client went away")
    transport.write(b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks))
    await writer.drain()


class ApiServer:
    """The emulator; ``async with ApiServer() as api:`` serves on a free loopback port."""

    def __init__(
        self,
        store: Store | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str | None = None,
        rbac_files: Sequence[Path] = (),
        time_scale: float = 1.0,
        bookmark_interval: float = BOOKMARK_INTERVAL,
        compaction_interval: float | None = COMPACTION_INTERVAL,
        max_watch_timeout: float = 1800,
        tls: bool = False,
        certificate: tuple[Path, Path] | None = None,
        control: bool = False,
    ) -> None:
        """``bookmark_interval`` and ``compaction_interval`` are cluster seconds: like the
        watch cache's 3 s wait for an unseen version and the bookmark 2 s before a watch's
        deadline, they are multiplied by ``time_scale`` (0.01: a minute passes in 0.6 s).
        ``compaction_interval=None`` never compacts (benchmarks). ``certificate``: the
        (certificate, key) PEM files to serve with ``tls`` instead of new ones, so that a
        restarted server is the one its clients trust. ``control``: serve the fault hooks
        at ``/fluxwatch-sim/faults`` (:mod:`fluxwatch.sim.control`)."""
        self.store = store if store is not None else Store()
        self.host = host
        self.port = port
        self.admin_token = admin_token or f"sim-admin-{secrets.token_hex(16)}"
        self.time_scale = time_scale
        self.bookmark_interval = bookmark_interval * time_scale
        self.compaction_interval = (
            None if compaction_interval is None else compaction_interval * time_scale
        )
        self.block_timeout = BLOCK_TIMEOUT * time_scale
        self.bookmark_before_deadline = BOOKMARK_BEFORE_DEADLINE * time_scale
        self.max_watch_timeout = max_watch_timeout
        self._compactor: asyncio.Task[None] | None = None
        # RBAC is the store's Roles and bindings: the defaults of a fresh cluster, then
        # whatever rbac_files hold, created as objects that the API can change.
        self.authorizer = Authorizer(self.store)
        rbac.bootstrap(self.store)
        rbac.create_documents(self.store, rbac.load_documents(list(rbac_files)))
        self.authorizer.sync()
        self.authenticator = auth.Authenticator(self.store)
        self.authenticator.add_static(
            self.admin_token, User(ADMIN_USER, (ADMIN_GROUP, "system:authenticated"))
        )
        self.faults = Faults(self)
        self.stats = Stats()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._watches: set[_WatchStream] = set()
        self._discovery = _Discovery(self.store.registry)
        self.store.registry.on_change(self._discovery.invalidate)
        self.openapi = OpenAPI(self.store.registry, self.store.crd_schema)
        self.tls = tls
        self.certificate = certificate
        self.control = control
        self.ca_pem: bytes | None = None  # the served certificate, when tls

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a watch whose client went away ends at once instead of
        # lingering until its next write.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        server_ssl: ssl.SSLContext | None = None
        if self.tls:
            cert, key = self.certificate or certs.self_signed()
            server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ssl.load_cert_chain(cert, key)
            self.ca_pem = cert.read_bytes()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=server_ssl)
        await site.start()
        self.port = self._runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{'https' if self.tls else 'http'}://{host}:{self.port}"
        if self.compaction_interval is not None:
            self._compactor = asyncio.create_task(self._compact_forever(self.compaction_interval))

    async def _compact_forever(self, interval: float) -> None:
        """kube-apiserver's etcd compactor: each run compacts up to the revision the
        previous run saw (the first run, at bootstrap, compacts nothing), so between one
        and two intervals of history stay readable."""
        seen = 0
        while True:
            await asyncio.sleep(interval)
            if seen:
                self.store.compact(seen)
            seen = self.store.resource_version

    async def stop(self) -> None:
        if self._compactor is not None:
            self._compactor.cancel()
            self._compactor = None
        self.faults.drop_watches(clean=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- credentials ----------------------------------------------------------------------

    def token_for(self, subject: str) -> str:
        """The bearer token of a user, e.g. ``system:serviceaccount:fluxwatch-system:fluxwatch``;
        a subject no binding names gets a token too, and is then denied everything."""
        token = _token_for_subject(subject)
        self.authenticator.add_static(token, user_for_subject(subject))
        return token

    def write_kubeconfig(
        self, path: Path, token: str | None = None, namespace: str = "default"
    ) -> Path:
        """A kubeconfig (context ``fluxwatch-sim``) for this server; the admin token by
        default. kubectl sends its token only to a ``tls=True`` server."""
        if not self.url:
            raise RuntimeError("start the ApiServer before writing its kubeconfig")
        return kubeconfig.write_kubeconfig(
            path, self.url, token or self.admin_token, namespace=namespace, ca_pem=self.ca_pem
        )

    # ---- request handling -----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        stats_key: tuple[str, str] | None = None
        try:
            if self.control and request.path.startswith(control.PREFIX):
                # Before the injected latency: the hook that clears it must not wait for it.
                return control.handle(self, request, self._authenticate(request))
            if self.faults.latency > 0:
                await asyncio.sleep(self.faults.latency)
            user = self._authenticate(request)
            request[_USER] = user
            path = request.path.rstrip("/") or "/"
            parts = [p for p in path.split("/") if p]
            if not _is_resource_path(parts):
                self._authorize_path(user, request)
            if path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            if path == "/version":
                return self._json(VERSION_INFO)
            if parts[:1] == ["openapi"]:
                if request.method not in ("GET", "HEAD"):
                    raise _method_not_allowed()
                return http_response(self.openapi, request, parts)
            doc = self._discovery.lookup(parts)
            if doc is not None:
                if request.method != "GET":
                    raise _method_not_allowed()
                return web.Response(body=doc, content_type=JSON)
            try:
                target = self._route(parts)
            except ApiError as err:
                # Authorization comes before routing: a resource that is not served is a
                # 403 to whoever may not use it, a 404 only to whoever may.
                if err.code == 404:
                    self._authorize_unrouted(user, request, parts)
                raise
            verb = self._verb(request, target)
            stats_key = (verb, target.stats_key)
            self.stats.requests[stats_key] += 1
            failure = self.faults._take(verb, target.stats_key)
            if failure is not None:
                self.stats.bytes[stats_key] += len(failure.body)  # type: ignore[arg-type]
                return failure
            self._authorize(user, verb, target, request)
            cut = self.faults._take_cut(verb, target.stats_key)
            if cut is None:
                return await self._serve(request, verb, target, stats_key)
            if cut.served:
                await self._serve(request, verb, target, stats_key)
            if request.transport is not None:
                request.transport.abort()
            return web.Response()  # never written: the connection is gone
        except ApiError as err:
            body = orjson.dumps(err.status())
            if stats_key is not None:
                self.stats.bytes[stats_key] += len(body)
            headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else {}
            return web.Response(body=body, status=err.code, content_type=JSON, headers=headers)

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)

    def _authenticate(self, request: web.Request) -> User:
        """The user a request acts as: its bearer token's (anonymous without one), then
        whoever its Impersonate-* headers name, if it may impersonate them."""
        user = self.authenticator.authenticate(request.headers.get("Authorization", ""))
        return auth.impersonate(self.authorizer, user, request.headers)

    def _authorize_path(self, user: User, request: web.Request) -> None:
        """Non-resource URLs (discovery, /version, /healthz) are authorized by path."""
        req = Request(user, request.method.lower(), path=request.path)
        if not self.authorizer.allowed(req):
            raise req.forbidden()

    def _authorize_unrouted(self, user: User, request: web.Request, parts: list[str]) -> None:
        """Authorize a resource path that names nothing served, from the path alone as
        kube-apiserver's RequestInfo reads it."""
        if parts[0] == "api":
            group, rest = "", parts[2:]
        else:
            group, rest = parts[1], parts[3:]
        watch_path = rest[:1] == ["watch"]
        if watch_path:
            rest = rest[1:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest:
            return
        resource, name, sub = [*rest, "", ""][:3]
        method = request.method
        if method == "GET":
            # ?watch= turns a list into a watch; a named GET stays a get.
            watching = watch_path or (not name and bool(query_flag(request.query.get("watch"))))
            verb = "watch" if watching else ("get" if name else "list")
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "")
            if method == "DELETE":
                verb = "delete" if name else "deletecollection"
        if not verb:
            return
        req = Request(user, verb, group, resource, sub, namespace, name)
        if not self.authorizer.allowed(req):
            raise req.forbidden()

    def _route(self, parts: list[str]) -> _Target:
        if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found()
        watch_path = bool(rest) and rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace: str | None = None
        # namespaces/<ns>/<plural>... is a namespaced path, except namespaces/<name>/status.
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _not_found()
        res = self.store.registry.lookup(group, version, rest[0])
        if res is None:
            raise _not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not res.namespaced:
            raise _not_found()
        if res.namespaced and namespace is None and name is not None:
            raise _not_found()
        if sub is not None and not (
            (sub == "status" and res.status_subresource) or sub in res.subresources
        ):
            raise _not_found()
        return _Target(res, namespace, name, sub, watch_path)

    def _verb(self, request: web.Request, target: _Target) -> str:
        method = request.method
        if method == "GET":
            if target.watch_path or (not target.name and query_flag(request.query.get("watch"))):
                if target.subresource:
                    raise _method_not_allowed()
                return "watch"
            return "get" if target.name else "list"
        if target.subresource in target.res.subresources and method == "POST":
            return "create"  # serviceaccounts/<name>/token
        if target.subresource and method not in ("PUT", "PATCH"):
            raise _method_not_allowed()
        if method == "POST" and not target.name:
            return "create"
        if method == "PUT" and target.name:
            return "update"
        if method == "PATCH" and target.name:
            return "patch"
        if method == "DELETE":
            return "delete" if target.name else "deletecollection"
        raise _method_not_allowed()

    def _authorize(self, user: User, verb: str, target: _Target, request: web.Request) -> None:
        name = target.name or ""
        if verb in ("list", "watch") and not name:
            # A list or watch pinned to one name by fieldSelector is authorized for that
            # name, so that resourceNames rules can allow it (as kube-apiserver does).
            name = field_selector_name(request.query.get("fieldSelector")) or ""
        req = Request(
            user,
            verb,
            target.res.group,
            target.res.plural,
            target.subresource or "",
            target.namespace or "",
            name,
        )
        if not self.authorizer.allowed(req):
            shown = Request(
                user,
                verb,
                req.group,
                req.resource,
                req.subresource,
                req.namespace,
                target.name or "",
            )
            raise shown.forbidden()

    async def _serve(
        self, request: web.Request, verb: str, target: _Target, stats_key: tuple[str, str]
    ) -> web.StreamResponse:
        store = self.store
        if target.res.key in VIRTUAL or target.subresource in target.res.subresources:
            return await self._serve_auth(request, target, stats_key)
        if verb in ("create", "update", "patch") and target.subresource is None:
            await self._check_escalation(request, verb, target)
        table = store.table(target.res)
        query = request.query
        dry_run = bool(query.getall("dryRun", []))
        options: WriteOptions | None = None
        if verb == "watch":
            return await self._watch(request, target, stats_key)
        status = 200
        content_type = JSON
        if verb == "list":
            mode = _negotiate(request.headers.get("Accept", ""), collection=True, watch=False)
            opts = list_options(query, watch=False)
            # A limit that is not positive is no limit (etcd3 store and cacher alike); from
            # version "0" the watch cache serves the whole list and ignores the limit
            # (computeListLimit).
            limit = opts.limit if opts.limit > 0 and opts.resource_version != "0" else None
            rv = opts.resource_version
            if rv not in ("", "0") and not opts.continue_token and opts.match != "Exact":
                # Served by the watch cache unless paginated (then etcd answers at once):
                # a version it has not seen yet is waited for before the 504.
                wanted = parse_resource_version(rv)
                if not limit and wanted > store.resource_version:
                    await store.wait_for_version(wanted, self.block_timeout)
            page = store._list(
                table,
                target.namespace,
                query.get("labelSelector"),
                query.get("fieldSelector"),
                limit=limit,
                continue_token=opts.continue_token or None,
                resource_version=rv,
                resource_version_match=opts.match or None,
            )
            if not is_storage_version(target.res):
                page = page._replace(
                    items=[store.from_storage(target.res, o) for o in page.items], keys=[]
                )
            body = self._encode_list(target.res, page, mode, query.get("includeObject"))
        elif verb == "get":
            mode = _negotiate(request.headers.get("Accept", ""), collection=False, watch=False)
            assert target.name is not None
            obj = store.from_storage(target.res, store._get(table, target.namespace, target.name))
            body = self._encode_one(target.res, obj, mode, query.get("includeObject"))
        elif verb == "create":
            obj = await self._read_body(request, target.res)
            options = self._write_options(request, "CreateOptions")
            obj = store._create(
                table,
                obj,
                target.namespace,
                keep_status=False,
                dry_run=dry_run,
                res=target.res,
                options=options,
                ensure_namespace=False,
            )
            body, status = deepjson.dumps(obj), 201
        elif verb == "update" and self._creates_on_update(target, table):
            obj = await self._read_body(request, target.res)
            options = self._write_options(request, "UpdateOptions")
            obj = self._create_on_update(request, target, table, obj, options, dry_run)
            body, status = deepjson.dumps(obj), 201
        elif verb == "update":
            obj = await self._read_body(request, target.res)
            options = self._write_options(request, "UpdateOptions")
            obj = store._update(
                table,
                obj,
                target.subresource,
                namespace=target.namespace,
                name=target.name,
                require_resource_version=requires_resource_version(target.res),
                dry_run=dry_run,
                res=target.res,
                options=options,
            )
            body = deepjson.dumps(obj)
        elif verb == "patch":
            assert target.name is not None
            patch_type = self._patch_type(request)
            raw = await request.read()
            options = self._write_options(request, "PatchOptions")
            # Server-side apply creates what is missing, and answers 201 then.
            existed = object_key(target.namespace, target.name) in table.objs
            obj = store._patch(
                table,
                target.namespace,
                target.name,
                raw,
                patch_type,
                target.subresource,
                dry_run=dry_run,
                res=target.res,
                options=options,
                ensure_namespace=False,
            )
            body = deepjson.dumps(obj)
            if not existed:
                status = 201
        elif verb == "delete":
            assert target.name is not None
            delete = writeoptions.delete_options(
                await self._read_body(request, target.res, optional=True),
                query,
                query.getall("dryRun", []),
            )
            obj = store._delete(
                table,
                target.namespace,
                target.name,
                preconditions=delete.preconditions,
                dry_run=delete.dry_run,
                propagation=delete.propagation_policy,
                orphan_dependents=delete.orphan_dependents,
            )
            if not obj["metadata"].get("deletionTimestamp"):
                obj = _deleted(target.res, obj)
            body = deepjson.dumps(obj)
        else:  # deletecollection
            delete = writeoptions.delete_options(
                await self._read_body(request, target.res, optional=True),
                query,
                query.getall("dryRun", []),
            )
            dry_run = delete.dry_run
            page = store._list(
                table, target.namespace, query.get("labelSelector"), query.get("fieldSelector")
            )
            for obj in page.items:
                store._delete(
                    table,
                    obj["metadata"].get("namespace"),
                    obj["metadata"]["name"],
                    dry_run=dry_run,
                    propagation=delete.propagation_policy,
                    orphan_dependents=delete.orphan_dependents,
                )
            # DeleteCollection answers the list it deleted from, as it was listed.
            body = deepjson.dumps(
                {
                    "apiVersion": target.res.api_version,
                    "kind": f"{target.res.kind}List",
                    "metadata": {"resourceVersion": str(page.resource_version)},
                    "items": [store.from_storage(target.res, o) for o in page.items],
                }
            )
        if verb in ("get", "list") and mode == "yaml":
            body = yaml.safe_dump(orjson.loads(body), sort_keys=False).encode()
            content_type = YAML
        self.stats.bytes[stats_key] += len(body)
        headers = _warning_headers(options.warnings) if options is not None else None
        return web.Response(body=body, status=status, content_type=content_type, headers=headers)

    @staticmethod
    def _write_options(request: web.Request, kind: str) -> WriteOptions:
        """``fieldValidation`` (Warn when absent, as on a real server), ``fieldManager``,
        ``dryRun`` and ``force``, checked as the real server checks Create/Update/
        PatchOptions: every problem one cause of one 422."""
        query = request.query
        validation = query.get("fieldValidation") or "Warn"
        manager = query.get("fieldManager") or ""
        errors = managedfields.validate_manager(manager)
        errors += writeoptions.dry_run_errors(query.getall("dryRun", []))
        errors += writeoptions.field_validation_errors(query.get("fieldValidation", ""))
        if errors:
            raise invalid_options(kind, errors)
        return WriteOptions(
            field_validation=validation,
            manager=manager,
            user_agent=request.headers.get("User-Agent", ""),
            force=bool(query_flag(query.get("force"))),
        )

    async def _serve_auth(
        self, request: web.Request, target: _Target, stats_key: tuple[str, str]
    ) -> web.StreamResponse:
        """Create on a review kind (answered, never stored) or on serviceaccounts/token."""
        kind = _TOKEN_REQUEST if target.subresource == "token" else target.res
        body = await self._read_body(request, kind)
        user = request[_USER]
        if target.subresource == "token":
            assert target.namespace is not None and target.name is not None
            answer = self.authenticator.request_token(target.namespace, target.name, body)
        else:
            answer = auth.review(self.authorizer, target.res.key, user, body, self.store.now())
        encoded = orjson.dumps(answer)
        self.stats.bytes[stats_key] += len(encoded)
        return web.Response(body=encoded, status=201, content_type=JSON)

    def _creates_on_update(self, target: _Target, table: Any) -> bool:
        """A PUT of a missing Event or Lease creates it: their strategies'
        AllowCreateOnUpdate."""
        return (
            target.res.table_key in _CREATE_ON_UPDATE
            and target.subresource is None
            and target.name is not None
            and object_key(target.namespace, target.name) not in table.objs
        )

    def _create_on_update(
        self,
        request: web.Request,
        target: _Target,
        table: Any,
        obj: Any,
        options: WriteOptions,
        dry_run: bool,
    ) -> dict[str, Any]:
        """The update handler's create: the name on the URL is checked first (400); the
        create strategy validates (422); then ``create`` is authorized besides ``update``
        (withAuthorization), whose 403 carries only the authorizer's reason, which RBAC
        leaves empty."""
        md = obj.get("metadata") if isinstance(obj, dict) else None
        md = md if isinstance(md, dict) else {}
        if md.get("name") != target.name:
            raise bad_request(
                f"the name of the object ({md.get('name') or ''}) does not match the name on the "
                f"URL ({target.name})"
            )
        uid = md.get("uid")
        if uid:
            # The body's uid is a precondition (defaultUpdatedObjectInfo) that etcd checks
            # against what it holds, here nothing: a Lease renewed after someone deleted
            # it is a 409, not a new Lease under the old uid.
            raise conflict(
                target.res,
                md["name"],
                f"StorageError: invalid object, Code: 4, Key: "
                f"{storage_key(target.res, target.namespace, md['name'])}, ResourceVersion: 0, "
                f"AdditionalErrorMsg: Precondition failed: UID in precondition: {uid}, UID in "
                "object meta: ",
            )
        # etcd stores the new object whatever resourceVersion the body carried.
        obj = {**obj, "metadata": {k: v for k, v in md.items() if k != "resourceVersion"}}
        create = partial(
            self.store._create,
            table,
            obj,
            target.namespace,
            keep_status=False,
            res=target.res,
            options=options,
            ensure_namespace=False,
        )
        res = target.res
        req = Request(
            request[_USER], "create", res.group, res.plural, "", target.namespace or "", md["name"]
        )
        if not self.authorizer.allowed(req):
            create(dry_run=True)
            qualified = f"{res.plural}.{res.group}" if res.group else res.plural
            details = {"name": md["name"], "group": res.group, "kind": res.plural}
            raise ApiError(
                403,
                "Forbidden",
                f'{qualified} "{md["name"]}" is forbidden: ',
                {k: v for k, v in details.items() if v},
            )
        return create(dry_run=dry_run)

    async def _check_escalation(self, request: web.Request, verb: str, target: _Target) -> None:
        """A role or binding may grant only what its author holds (or may escalate/bind)."""
        user = request[_USER]
        if user.is_admin or target.res.group != rbac.RBAC_GROUP:
            return
        if verb == "patch":
            assert target.name is not None
            obj = self.store._patch(
                self.store.table(target.res),
                target.namespace,
                target.name,
                await request.read(),
                self._patch_type(request),
                None,
                dry_run=True,
            )
        else:
            obj = await self._read_body(request, target.res)
            if not isinstance(obj, dict):
                return  # the store answers the malformed body
        rbac.check_escalation(self.authorizer, user, target.res.key, obj, target.namespace or "")

    @staticmethod
    def _patch_type(request: web.Request) -> str:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        patch_type = PATCH_TYPES.get(content_type)
        if patch_type is not None:
            return patch_type
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml, application/strategic-merge-patch+json",
        )

    @staticmethod
    async def _read_body(request: web.Request, res: ResourceType, *, optional: bool = False) -> Any:
        """The request body as JSON; ``optional`` for a DELETE, whose body is DeleteOptions."""
        raw = await request.read()
        if not raw.strip():
            if optional:
                return None
            raise bad_request("the request body is empty")
        content_type = request.headers.get("Content-Type", JSON).split(";")[0].strip()
        kind = "DeleteOptions" if optional else res.kind
        if content_type == protobuf.MEDIA_TYPE and protobuf.supports(res.api_version, kind):
            # kubectl's typed commands (create secret, create role, auth can-i) send
            # built-in kinds as protobuf; custom resources are never sent so.
            try:
                return protobuf.decode(raw, api_version=res.api_version, kind=kind)
            except protobuf.ProtobufError as err:
                if optional:
                    # The DELETE handler passes decoding errors on unwrapped: a 500.
                    raise ApiError(500, "", err.problem) from None
                raise bad_request(err.message(kind, raw)) from None
        if content_type not in (JSON, "application/yaml", "application/x-yaml", "*/*", ""):
            accepted = [JSON, "application/yaml"]
            if protobuf.supports(res.api_version, res.kind):
                accepted.append(protobuf.MEDIA_TYPE)
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(accepted)}",
            )
        try:
            if content_type in ("application/yaml", "application/x-yaml"):
                return yaml.safe_load(raw)
            return deepjson.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"couldn't decode the request body: {exc}") from None

    # ---- encodings ------------------------------------------------------------------------

    def _encode_one(
        self, res: ResourceType, obj: dict[str, Any], mode: str, include: str | None
    ) -> bytes:
        if mode == "meta":
            return orjson.dumps(tables.partial_metadata(obj))
        if mode == "table":
            return orjson.dumps(
                tables.table(
                    res,
                    [obj],
                    time.time(),
                    include_object=include or "Metadata",
                    list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                )
            )
        return deepjson.dumps(obj)

    def _encode_list(
        self, res: ResourceType, page: ListPage, mode: str, include: str | None
    ) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(page.resource_version)}
        if page.continue_token:
            meta["continue"] = page.continue_token
            if page.remaining is not None:
                meta["remainingItemCount"] = page.remaining
        if mode == "meta":
            return orjson.dumps(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                    "items": [tables.partial_metadata(o) for o in page.items],
                }
            )
        if mode == "table":
            return orjson.dumps(
                tables.table(
                    res,
                    page.items,
                    time.time(),
                    include_object=include or "Metadata",
                    list_meta=meta,
                )
            )
        # Splice the cached per-object encodings into the list: a 10,000-object list is
        # then a join, not 10,000 serializations.
        if page.keys:
            items = b",".join(page.table.encoded(k) for k in page.keys)
        else:
            items = b",".join(deepjson.dumps(o) for o in page.items)
        head = orjson.dumps(
            {"apiVersion": res.api_version, "kind": f"{res.kind}List", "metadata": meta}
        )
        return head[:-1] + b',"items":[' + items + b"]}"

    # ---- watch ----------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, target: _Target, stats_key: tuple[str, str]
    ) -> web.StreamResponse:
        query = request.query
        res = target.res
        store = self.store
        opts = list_options(query, watch=True)
        mode = _negotiate(request.headers.get("Accept", ""), collection=True, watch=True)
        include = query.get("includeObject") or "Metadata"
        field_selector = query.get("fieldSelector")
        if target.name:
            # The /watch/ path of one object: a fieldSelector may only name that object.
            if field_selector:
                named = [
                    v
                    for f, neg, v in parse_field_terms(field_selector)
                    if f == "metadata.name" and not neg
                ]
                if not named or named[0] != target.name:
                    raise bad_request("fieldSelector metadata.name doesn't match requested name")
            else:
                field_selector = f"metadata.name={target.name}"
        # timeoutSeconds=0 is the server's default, as no timeoutSeconds is; a negative
        # one has passed before the watch starts.
        timeout = self.max_watch_timeout
        if opts.timeout_seconds:
            timeout = min(timeout, max(0.0, float(opts.timeout_seconds)))
        rv = opts.resource_version
        wanted = parse_resource_version(rv) if rv else 0

        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        resp.enable_chunked_encoding()
        try:
            # Initial events must be at least that fresh: the watch cache waits for the
            # version, then gives up. A plain watch from the future is accepted instead,
            # and stays silent until the store passes the version.
            if (
                opts.send_initial_events
                and wanted > store.resource_version
                and not await store.wait_for_version(wanted, self.block_timeout)
            ):
                raise too_large(wanted, store.resource_version, 1)
            watcher = store.watch(
                res,
                target.namespace,
                rv or None,
                query.get("labelSelector"),
                field_selector,
                send_initial_events=opts.send_initial_events,
            )
        except ApiError as err:
            if err.code not in (410, 504):
                raise
            # Past admission, the watch cache reports these in the stream, as one ERROR event.
            await resp.prepare(request)
            body = orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n"
            self.stats.bytes[stats_key] += len(body)
            await resp.write(body)
            await resp.write_eof()
            return resp
        initial_rv = store.resource_version

        stream = _WatchStream(request, watcher)
        self._watches.add(stream)
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + timeout
        last_bookmark = deadline - self.bookmark_before_deadline
        inf = float("inf")
        next_bookmark = self._next_bookmark(now, last_bookmark) if opts.allow_bookmarks else inf
        # The initial events of a watch-list, then the bookmark that marks their end.
        initial_left = watcher.pending() if opts.watch_list else -1
        first = [True]
        try:
            writer = await resp.prepare(request)
            assert writer is not None  # a fresh response: prepare starts it
            framing = WatchFraming()
            while True:
                chunks: list[bytes] = []
                size = 0
                if initial_left == 0:
                    chunks += framing.write(self._bookmark(res, mode, initial_rv, initial_end=True))
                    initial_left = -1
                while size < WATCH_WRITE_SIZE:
                    item = watcher.pop()
                    if item is None:
                        chunks += framing.flush()  # nothing queued: the handler flushes
                        break
                    encoded = self._encode_event(res, item, mode, include, first)
                    chunks += framing.write(encoded)
                    size += len(encoded)
                    if initial_left > 0:
                        initial_left -= 1
                        if initial_left == 0:
                            end = self._bookmark(res, mode, initial_rv, initial_end=True)
                            chunks += framing.write(end)
                            initial_left = -1
                if size or chunks:
                    self.stats.bytes[stats_key] += sum(map(len, chunks))
                    await _send_chunks(request, writer, chunks)
                    continue
                if watcher.closed:
                    break
                now = loop.time()
                if now >= deadline:
                    break
                if now >= next_bookmark:
                    next_bookmark = self._next_bookmark(now, last_bookmark)
                    # Nothing at or below the watch's starting version is sent, bookmarks
                    # included: a quiet store sends none.
                    if store.resource_version > watcher.after:
                        body = self._bookmark(res, mode, store.resource_version)
                        self.stats.bytes[stats_key] += len(body)
                        await _send_chunks(request, writer, framing.write(body) + framing.flush())
                    continue
                await watcher.wait(min(deadline, next_bookmark) - now)
        finally:
            watcher.close()
            self._watches.discard(stream)
        if stream.abort and request.transport is not None:
            # Cut the connection without the terminating chunk: the client sees a broken
            # stream, not a clean end.
            request.transport.abort()
            return resp
        await resp.write_eof()
        return resp

    def _next_bookmark(self, now: float, last: float) -> float:
        """When a watcher's next bookmark is due: a bookmark interval from now, but no later
        than ``last`` (2 s before the deadline); never, once that has passed."""
        due = min(now + self.bookmark_interval, last)
        return due if due > now else float("inf")

    def _encode_event(
        self,
        res: ResourceType,
        item: Delivery,
        mode: str,
        include: str,
        first: list[bool],
    ) -> bytes:
        type_, obj, ev = item
        if not is_storage_version(res):
            obj, ev = self.store.from_storage(res, obj), None
        if mode == "json":
            if ev is not None:
                return ev.encoded()
            return deepjson.dumps({"type": type_, "object": obj}) + b"\n"
        if mode == "meta":
            shown = tables.partial_metadata(obj)
        else:
            shown = tables.table(res, [obj], time.time(), include_object=include, headers=first[0])
            first[0] = False
        return orjson.dumps({"type": type_, "object": shown}) + b"\n"

    def _bookmark(
        self, res: ResourceType, mode: str, rv: int, *, initial_end: bool = False
    ) -> bytes:
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        if mode == "meta":
            obj: dict[str, Any] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
            }
        elif mode == "table":
            obj = {
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "columnDefinitions": [],
                "rows": [],
            }
        else:
            obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": metadata}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


# The kind a serviceaccounts/<name>/token request body is (kubectl sends it as protobuf).
_TOKEN_REQUEST = ResourceType("authentication.k8s.io", "v1", "tokenrequests", "TokenRequest", True)


def _warning_headers(warnings: list[str]) -> dict[str, str] | None:
    """RFC 7234 Warning headers, as the real server sends for ``fieldValidation=Warn``."""
    if not warnings:
        return None
    text = ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)
    return {"Warning": text}


# The request's authenticated (or impersonated) user, for the handlers after _handle.
_USER = web.RequestKey("fluxwatch.user", User)


def _is_resource_path(parts: list[str]) -> bool:
    """/api/<v>/<resource>... and /apis/<g>/<v>/<resource>... are resource requests;
    everything else (discovery, /version, /healthz) is authorized by path."""
    if parts[:1] == ["api"]:
        return len(parts) >= 3
    if parts[:1] == ["apis"]:
        return len(parts) >= 4
    return False


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


_VERSION_RE = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order: GA before beta before alpha, higher numbers first,
    anything else last and alphabetically (sort ascending on this key)."""
    m = _VERSION_RE.fullmatch(version)
    if m is None:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, "")


class _Discovery:
    """The discovery documents, built from the registry and again after it changes:
    /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._docs: dict[str, bytes] | None = None

    def invalidate(self) -> None:
        self._docs = None

    def lookup(self, parts: list[str]) -> bytes | None:
        if len(parts) > 3:
            return None
        if self._docs is None:
            self._docs = self._build()
        return self._docs.get("/".join(parts))

    def _build(self) -> dict[str, bytes]:
        groups: dict[str, list[str]] = {}
        by_gv: dict[tuple[str, str], list[ResourceType]] = {}
        for r in self._registry:
            if r.group:
                versions = groups.setdefault(r.group, [])
                if r.version not in versions:
                    versions.append(r.version)
            by_gv.setdefault((r.group, r.version), []).append(r)
        docs: dict[str, bytes] = {}
        docs["api"] = orjson.dumps(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
                ],
            }
        )
        group_docs = []
        for group, versions in groups.items():
            versions.sort(key=version_priority)
            doc = {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                "preferredVersion": {
                    "groupVersion": f"{group}/{versions[0]}",
                    "version": versions[0],
                },
            }
            group_docs.append(doc)
            docs[f"apis/{group}"] = orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **doc})
        docs["apis"] = orjson.dumps(
            {"kind": "APIGroupList", "apiVersion": "v1", "groups": group_docs}
        )
        for (group, version), resources in by_gv.items():
            gv = f"{group}/{version}" if group else version
            entries: list[dict[str, Any]] = []
            for r in resources:
                entry: dict[str, Any] = {
                    "name": r.plural,
                    "singularName": r.singular or r.kind.lower(),
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": sorted(r.verbs),
                }
                if r.short_names:
                    entry["shortNames"] = list(r.short_names)
                if r.categories:
                    entry["categories"] = list(r.categories)
                entries.append(entry)
                subresources: list[tuple[str, tuple[str, ...], str]] = []
                if r.status_subresource:
                    subresources.append(("status", ("get", "patch", "update"), r.kind))
                for sub in r.subresources:
                    if sub == "token":
                        subresources.append(("token", ("create",), "TokenRequest"))
                    elif sub == "scale":
                        subresources.append(("scale", ("get", "patch", "update"), "Scale"))
                for sub, verbs, kind in subresources:
                    entries.append(
                        {
                            "name": f"{r.plural}/{sub}",
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "kind": kind,
                            "verbs": list(verbs),
                        }
                    )
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            docs[path] = orjson.dumps(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": gv,
                    "resources": entries,
                }
            )
        return docs
