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
import secrets
import ssl
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import yaml
from aiohttp import web

from fluxwatch.sim import certs, kubeconfig, tables
from fluxwatch.sim.listoptions import list_options
from fluxwatch.sim.rbac import ADMIN_GROUP, ADMIN_USER, Authorizer, Request, User, user_for_subject
from fluxwatch.sim.rbac import token_for_subject as _token_for_subject
from fluxwatch.sim.resources import RESOURCES, ResourceType, lookup
from fluxwatch.sim.selectors import field_selector_name
from fluxwatch.sim.store import (
    ApiError,
    Delivery,
    ListPage,
    Store,
    Watcher,
    bad_request,
    is_custom_resource,
    parse_resource_version,
    qualified,
    too_large,
)

JSON = "application/json"
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
}
APPLY_PATCH = "application/apply-patch+yaml"
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
        resource key) with ``code``; a 429 carries ``Retry-After: retry_after``."""
        if n > 0:
            self._failures.append(_Failure(n, code, retry_after, verb, resource))

    def compact(self) -> None:
        """Expire the watch history: resuming from any earlier version gets 410."""
        self._server.store.compact()

    def clear(self) -> None:
        self._failures.clear()
        self.latency = 0.0

    def _take(self, verb: str, key: str) -> ApiError | None:
        for failure in self._failures:
            if failure.matches(verb, key):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return _injected(failure.code, failure.retry_after)
        return None


def _injected(code: int, retry_after: int | None) -> ApiError:
    if code == 429:
        details: dict[str, Any] = {}
        if retry_after is not None:
            details["retryAfterSeconds"] = retry_after
        return ApiError(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            details,
            retry_after=retry_after,
        )
    reason, message = {
        500: ("InternalError", "Internal error occurred: injected fault"),
        503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
        504: ("Timeout", "The server was unable to return a response in the time allotted"),
    }.get(code, ("InternalError", "Internal error occurred: injected fault"))
    return ApiError(
        code,
        reason,
        message,
        {"causes": [{"message": "injected fault"}]},
        retry_after=retry_after if code in (503, 504) else None,
    )


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
    """Pick the response form from an Accept header: "json", "meta" or "table"."""
    if not accept:
        return "json"
    for entry in accept.split(","):
        media, *params = (p.strip() for p in entry.split(";"))
        opts = dict(p.split("=", 1) for p in params if "=" in p)
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
        "only the following media types are accepted: application/json, application/yaml",
    )


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


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
    ) -> None:
        """``bookmark_interval`` and ``compaction_interval`` are cluster seconds: like the
        watch cache's 3 s wait for an unseen version and the bookmark 2 s before a watch's
        deadline, they are multiplied by ``time_scale`` (0.01: a minute passes in 0.6 s).
        ``compaction_interval=None`` never compacts (benchmarks)."""
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
        self.authorizer = Authorizer.from_paths(list(rbac_files))
        self._tokens: dict[str, User] = {
            self.admin_token: User(ADMIN_USER, (ADMIN_GROUP, "system:authenticated"))
        }
        for subject in self.authorizer.subjects():
            self.token_for(subject)
        self.faults = Faults(self)
        self.stats = Stats()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._watches: set[_WatchStream] = set()
        self._discovery = _Discovery()
        self.tls = tls
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
            cert, key = certs.self_signed()
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

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context that trusts this server (None when it serves plain HTTP)."""
        if self.ca_pem is None:
            return None
        return ssl.create_default_context(cadata=self.ca_pem.decode())

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
        self._tokens[token] = user_for_subject(subject)
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
            if self.faults.latency > 0:
                await asyncio.sleep(self.faults.latency)
            path = request.path.rstrip("/") or "/"
            if path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            if path == "/version":
                return self._json(VERSION_INFO)
            user = self._authenticate(request)
            parts = [p for p in path.split("/") if p]
            doc = self._discovery.lookup(parts)
            if doc is not None:
                if request.method != "GET":
                    raise _method_not_allowed()
                return web.Response(body=doc, content_type=JSON)
            target = self._route(parts)
            verb = self._verb(request, target)
            stats_key = (verb, target.stats_key)
            self.stats.requests[stats_key] += 1
            failure = self.faults._take(verb, target.stats_key)
            if failure is not None:
                raise failure
            self._authorize(user, verb, target, request)
            return await self._serve(request, verb, target, stats_key)
        except ApiError as err:
            body = orjson.dumps(err.status())
            if stats_key is not None:
                self.stats.bytes[stats_key] += len(body)
            headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else {}
            return web.Response(body=body, status=err.code, content_type=JSON, headers=headers)

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)

    def _authenticate(self, request: web.Request) -> User:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

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
        res = lookup(group, version, rest[0])
        if res is None:
            raise _not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not res.namespaced:
            raise _not_found()
        if res.namespaced and namespace is None and name is not None:
            raise _not_found()
        if sub is not None and not (sub == "status" and res.status_subresource):
            raise _not_found()
        return _Target(res, namespace, name, sub, watch_path)

    def _verb(self, request: web.Request, target: _Target) -> str:
        method = request.method
        if method == "GET":
            if target.watch_path or _bool(request.query.get("watch")):
                if target.subresource:
                    raise _method_not_allowed()
                return "watch"
            return "get" if target.name else "list"
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
        if user.is_admin:
            return
        name = target.name or ""
        if verb in ("list", "watch") and not name:
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
            raise ApiError(
                403,
                "Forbidden",
                shown.forbidden_message(qualified(target.res)),
                {"name": target.name, "group": target.res.group, "kind": target.res.plural}
                if target.name
                else {"group": target.res.group, "kind": target.res.plural},
            )

    async def _serve(
        self, request: web.Request, verb: str, target: _Target, stats_key: tuple[str, str]
    ) -> web.StreamResponse:
        store = self.store
        table = store.table(target.res)
        query = request.query
        dry_run = self._dry_run(query)
        if verb == "watch":
            return await self._watch(request, target, stats_key)
        status = 200
        if verb == "list":
            mode = _negotiate(request.headers.get("Accept", ""), collection=True, watch=False)
            opts = list_options(query, watch=False)
            limit = self._limit(query.get("limit"))
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
            body = self._encode_list(target.res, page, mode, query.get("includeObject"))
        elif verb == "get":
            mode = _negotiate(request.headers.get("Accept", ""), collection=False, watch=False)
            assert target.name is not None
            obj = store._get(table, target.namespace, target.name)
            body = self._encode_one(target.res, obj, mode, query.get("includeObject"))
        elif verb == "create":
            obj = await self._read_body(request)
            obj = store._create(table, obj, target.namespace, keep_status=False, dry_run=dry_run)
            body, status = orjson.dumps(obj), 201
        elif verb == "update":
            obj = await self._read_body(request)
            obj = store._update(
                table,
                obj,
                target.subresource,
                namespace=target.namespace,
                name=target.name,
                require_resource_version=is_custom_resource(target.res),
                dry_run=dry_run,
            )
            body = orjson.dumps(obj)
        elif verb == "patch":
            assert target.name is not None
            patch_type = self._patch_type(request)
            raw = await request.read()
            obj = store._patch(
                table,
                target.namespace,
                target.name,
                raw,
                patch_type,
                target.subresource,
                dry_run=dry_run,
            )
            body = orjson.dumps(obj)
        elif verb == "delete":
            assert target.name is not None
            options = await self._read_body(request, optional=True) or {}
            obj = store._delete(
                table,
                target.namespace,
                target.name,
                preconditions=options.get("preconditions"),
                dry_run=dry_run or options.get("dryRun") == ["All"],
            )
            body = orjson.dumps(obj)
        else:  # deletecollection
            page = store._list(
                table, target.namespace, query.get("labelSelector"), query.get("fieldSelector")
            )
            deleted = [
                store._delete(
                    table,
                    obj["metadata"].get("namespace"),
                    obj["metadata"]["name"],
                    dry_run=dry_run,
                )
                for obj in page.items
            ]
            body = orjson.dumps(
                {
                    "apiVersion": target.res.api_version,
                    "kind": f"{target.res.kind}List",
                    "metadata": {"resourceVersion": str(store.resource_version)},
                    "items": deleted,
                }
            )
        self.stats.bytes[stats_key] += len(body)
        return web.Response(body=body, status=status, content_type=JSON)

    @staticmethod
    def _dry_run(query: Any) -> bool:
        values = query.getall("dryRun", [])
        if any(v != "All" for v in values):
            raise bad_request(f"Invalid dry run value {values!r}: only 'All' is supported")
        return bool(values)

    @staticmethod
    def _limit(raw: str | None) -> int | None:
        if not raw:
            return None
        try:
            limit = int(raw)
        except ValueError:
            raise bad_request(f"invalid limit {raw!r}") from None
        return limit if limit > 0 else None

    @staticmethod
    def _patch_type(request: web.Request) -> str:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        patch_type = PATCH_TYPES.get(content_type)
        if patch_type is not None:
            return patch_type
        if content_type == APPLY_PATCH:
            message = (
                "server-side apply (application/apply-patch+yaml) is not supported by the emulator"
            )
        else:
            message = (
                f"the body of the request was in an unknown format ({content_type or 'none'}) - "
                "accepted media types include: application/json-patch+json, "
                "application/merge-patch+json, application/strategic-merge-patch+json"
            )
        raise ApiError(415, "UnsupportedMediaType", message)

    @staticmethod
    async def _read_body(request: web.Request, *, optional: bool = False) -> Any:
        raw = await request.read()
        if not raw.strip():
            if optional:
                return None
            raise bad_request("the request body is empty")
        content_type = request.headers.get("Content-Type", JSON).split(";")[0].strip()
        if content_type not in (JSON, "application/yaml", "application/x-yaml", "*/*", ""):
            # kubectl's typed commands (create secret, create configmap) send protobuf;
            # the emulator speaks JSON and YAML only.
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format ({content_type}) - accepted "
                "media types include: application/json, application/yaml",
            )
        try:
            if content_type in ("application/yaml", "application/x-yaml"):
                return yaml.safe_load(raw)
            return orjson.loads(raw)
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
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
                    res.key,
                    [obj],
                    time.time(),
                    include_object=include or "Metadata",
                    list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                )
            )
        return orjson.dumps(obj)

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
                    res.key,
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
            items = b",".join(orjson.dumps(o) for o in page.items)
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
            pinned = f"metadata.name={target.name}"
            field_selector = f"{field_selector},{pinned}" if field_selector else pinned
        timeout = self.max_watch_timeout
        if query.get("timeoutSeconds"):
            try:
                timeout = min(timeout, max(0.0, float(query["timeoutSeconds"])))
            except ValueError:
                raise bad_request("timeoutSeconds must be a number") from None
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
            await resp.prepare(request)
            while True:
                chunks: list[bytes] = []
                if initial_left == 0:
                    chunks.append(self._bookmark(res, mode, initial_rv, initial_end=True))
                    initial_left = -1
                while len(chunks) < 1000:
                    item = watcher.pop()
                    if item is None:
                        break
                    chunks.append(self._encode_event(res, item, mode, include, first))
                    if initial_left > 0:
                        initial_left -= 1
                        if initial_left == 0:
                            chunks.append(self._bookmark(res, mode, initial_rv, initial_end=True))
                            initial_left = -1
                if chunks:
                    body = b"".join(chunks)
                    self.stats.bytes[stats_key] += len(body)
                    await resp.write(body)
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
                        await resp.write(body)
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
        if mode == "json":
            if ev is not None:
                return ev.encoded()
            return orjson.dumps({"type": type_, "object": obj}) + b"\n"
        if mode == "meta":
            shown = tables.partial_metadata(obj)
        else:
            shown = tables.table(
                res.key, [obj], time.time(), include_object=include, headers=first[0]
            )
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


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


class _Discovery:
    """The discovery documents, encoded once: /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>."""

    def __init__(self) -> None:
        groups: dict[str, list[str]] = {}
        by_gv: dict[tuple[str, str], list[ResourceType]] = {}
        for r in RESOURCES:
            if r.group:
                versions = groups.setdefault(r.group, [])
                if r.version not in versions:
                    versions.append(r.version)
            by_gv.setdefault((r.group, r.version), []).append(r)
        self.docs: dict[str, bytes] = {}
        self.docs["api"] = orjson.dumps(
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
            doc = {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                "preferredVersion": {
                    "groupVersion": f"{group}/{versions[0]}",
                    "version": versions[0],
                },
            }
            group_docs.append(doc)
            self.docs[f"apis/{group}"] = orjson.dumps(
                {"kind": "APIGroup", "apiVersion": "v1", **doc}
            )
        self.docs["apis"] = orjson.dumps(
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
                    "verbs": [
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                }
                if r.short_names:
                    entry["shortNames"] = list(r.short_names)
                entries.append(entry)
                if r.status_subresource:
                    entries.append(
                        {
                            "name": f"{r.plural}/status",
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "kind": r.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            self.docs[path] = orjson.dumps(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": gv,
                    "resources": entries,
                }
            )

    def lookup(self, parts: list[str]) -> bytes | None:
        return self.docs.get("/".join(parts)) if len(parts) <= 3 else None
