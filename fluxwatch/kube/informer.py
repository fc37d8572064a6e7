"""List-then-watch that never misses a change, whatever the API server does.

Three levels, each with one job (the shape kopf's watching module taught us):

* :meth:`Informer.run` is the endless outer loop. It survives every failure:
  connection errors and 5xx back off with jitter, 429 waits for Retry-After,
  410 Gone and ERROR events send it back to a fresh list, and so does a 504
  "Too large resource version" (after a backoff: retrying the same version
  could go on forever). The backoff starts over after a watch that was good
  (delivered events or lived a while), however it ended. After a watch that
  did not end cleanly it asks the server for its current resourceVersion
  first: one lower than ours is a restored etcd or a new cluster at the same
  address, whose watch from our version would stay silent forever; it relists.
* :meth:`Informer._relist` lists page by page and replaces the cache. After
  the first list it emits the difference against the old cache: new objects
  as ADDED, changed ones (by resourceVersion) as MODIFIED, vanished ones as
  DELETED, so a change made while disconnected is never lost.
* :meth:`Informer._watch` streams one watch from the last resourceVersion with
  bookmarks, a server ``timeoutSeconds`` and a client inactivity timeout (the
  library sets none: a half-dead TCP connection would hang forever). Lines are
  split from raw chunks; objects become small views at once. The API server
  sends a bookmark about once a minute, but only once the version moved past
  the watch's: on a quiet cluster a healthy watch can be silent until its
  timeout. So the inactivity timeout (two bookmark periods) is not a failure:
  the informer checks the server's version and resumes without backing off.

How bytes become views is the :class:`~fluxwatch.kube.codec.Codec`'s job: a
kind with a typed reader (HelmReleases) goes from bytes to view without a dict
in between; any line or page the typed reader does not take, and every kind
without one, is decoded with orjson and read object by object. No object ends an
informer: a typed reader that fails in any way hands the bytes to the general
way, a document nested deeper than orjson reads is read without its deepest
values (:func:`~fluxwatch.kube.codec.loads`), and an object no reader can make
sense of becomes a view whose ``malformed`` says why, logged once by name.

The handler is a plain function ``handler(type, view, old)`` called in order
for every change; it must not block (the tracker's upsert is O(log n)).

:meth:`Informer.ready` is what ``/readyz`` asks: the cache is synced and the
informer is in touch with the API server, a watch open now or a list or watch
ended less than ``ready_grace`` ago. A reconnect is a blink; an API
server gone for longer is a cache going stale, and the probe says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson

from fluxwatch.kube.client import JSON, KubeApiError, KubeClient, KubeConnectionError, Resource
from fluxwatch.kube.codec import Codec, Line, loads
from fluxwatch.kube.watch import ADDED, BOOKMARK, DELETED, ERROR, MODIFIED

log = logging.getLogger("fluxwatch.kube.informer")

# kube-apiserver's watch cache sends a bookmark about this often (cluster seconds).
BOOKMARK_PERIOD = 60.0
_TOO_LARGE = "Too large resource version"


class View(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def resource_version(self) -> str: ...


V = TypeVar("V", bound=View)
Handler = Callable[[str, V, "V | None"], None]


class InformerObserver(Protocol):
    """What the informer reports for metrics; telemetry implements it."""

    def on_event(self, resource: str, event_type: str) -> None: ...
    def on_restart(self, resource: str, reason: str) -> None: ...
    def on_synced(self, resource: str, count: int, seconds: float) -> None: ...


class _NoObserver:
    def on_event(self, resource: str, event_type: str) -> None:
        pass

    def on_restart(self, resource: str, reason: str) -> None:
        pass

    def on_synced(self, resource: str, count: int, seconds: float) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential backoff: ``base * factor**n`` capped at ``cap``, +-``jitter``."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        raw = min(self.cap, self.base * self.factor ** max(0, attempt))
        return raw * (1.0 + random.uniform(-self.jitter, self.jitter))


class _GcPause:
    """Holds the cyclic garbage collector off while lists are read, however many overlap.

    A list page is thousands of fresh dicts that live until their views are made;
    their allocations keep triggering collections that walk them, and the whole
    heap, again and again: a quarter of a 10,000-object sync, more at 50,000.
    Decoded JSON has no cycles and is freed by reference counting, so nothing
    is lost by waiting; the collector resumes (if it was on) when the last list
    being read is done.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._resume = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self._depth == 0:
            self._resume = gc.isenabled()
            gc.disable()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.enable()


_gc_paused = _GcPause()


class _Gone(Exception):
    """The watch's resourceVersion is too old: only a fresh list helps."""


class _WatchError(Exception):
    """The server sent an ERROR event other than 410."""


class _TooLarge(Exception):
    """The server has not reached our resourceVersion (504 ResourceVersionTooLarge)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Informer(Generic[V]):
    """A cache of views for one resource (in one namespace or all), kept by list+watch."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        transform: Callable[[Mapping[str, Any]], V] | Codec[V],
        handler: Handler[V] | None = None,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        accept: str = JSON,
        page_size: int = 500,
        watch_timeout: int = 300,
        inactivity_timeout: float = 2 * BOOKMARK_PERIOD,
        healthy_watch: float = 1.0,
        ready_grace: float = BOOKMARK_PERIOD,
        backoff: Backoff | None = None,
        observer: InformerObserver | None = None,
    ) -> None:
        """``inactivity_timeout``: how long a watch may send nothing before the informer
        reconnects (it should outlast a bookmark period); ``healthy_watch``: a watch that
        lived this long, or delivered anything, resets the backoff however it ended;
        ``ready_grace``: how long after its last list or watch the informer stays ready
        without an open watch."""
        self.client = client
        self.resource = resource
        self.codec: Codec[V] = transform if isinstance(transform, Codec) else Codec(transform)
        self.transform = self.codec.view
        self.handler: Handler[V] = handler or (lambda _t, _v, _o: None)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.accept = accept
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.inactivity_timeout = inactivity_timeout
        self.healthy_watch = healthy_watch
        self.ready_grace = ready_grace
        self.backoff = backoff or Backoff()
        self.observer: InformerObserver = observer or _NoObserver()
        self.cache: dict[tuple[str, str], V] = {}
        self.synced = asyncio.Event()
        # The last 401/403 of a list or watch: the daemon retries it (RBAC may come after
        # the pod), a one-shot command stops on it (``wait_synced``).
        self.refused: KubeApiError | None = None
        self._refusal = asyncio.Event()
        # The last failure of a list or watch, whatever it was: what a one-shot command
        # that gives up tells its user.
        self.last_error: Exception | None = None
        self.resource_version: str | None = None
        self.name = resource.plural if namespace is None else f"{resource.plural}@{namespace}"
        self._event = self.codec.event
        self._plural = resource.plural
        self._delivered = 0  # lines the last watch delivered, however it ended
        self._watching = False  # a watch stream is open now
        self._contact: float | None = None  # loop time of the last list or watch's end

    async def wait_synced(self) -> None:
        """Until the first list is in the cache; raises the API server's 401 or 403 if
        it refuses the list or watch first, which a retry would not change."""
        synced = asyncio.ensure_future(self.synced.wait())
        refusal = asyncio.ensure_future(self._refusal.wait())
        try:
            await asyncio.wait([synced, refusal], return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
            refusal.cancel()
        if not self.synced.is_set() and self.refused is not None:
            raise self.refused

    @property
    def watching(self) -> bool:
        """A watch stream is open now (between reconnects it is not)."""
        return self._watching

    def ready(self) -> bool:
        """Synced, and a watch open now or a list or watch ended within ``ready_grace``."""
        if not self.synced.is_set():
            return False
        if self._watching:
            return True
        contact = self._contact
        return contact is not None and (
            asyncio.get_running_loop().time() - contact < self.ready_grace
        )

    # -- level 1: forever ---------------------------------------------------------------

    async def run(self) -> None:
        """List, then watch from the list's version, forever; never returns on its own."""
        loop = asyncio.get_running_loop()
        failures = 0
        need_list = True
        check_version = False  # ask the server for its version before resuming
        while True:
            started: float | None = None  # when the watch began, once it has
            self._delivered = 0
            try:
                if need_list:
                    await self._relist()
                    need_list = check_version = False
                elif check_version:
                    went_back = await self._server_went_back()
                    check_version = False
                    if went_back:
                        self.observer.on_restart(self._plural, "version-went-back")
                        need_list = True
                        continue
                started = loop.time()
                delivered = await self._watch()
                # A watch that ended by timeoutSeconds is normal: resume from the last version.
                # One that ends at once with nothing in it is a broken server or proxy: back off.
                if delivered or loop.time() - started >= self.healthy_watch:
                    failures = 0
                    continue
                reason, delay, check_version = "empty-watch", self.backoff.delay(failures), True
            except _Gone:
                self.observer.on_restart(self._plural, "expired")
                log.info("watch expired; relisting", extra={"informer": self.name})
                need_list = True
                failures = 0
                continue
            except _TooLarge as exc:
                reason, delay = "too-large", self._too_large_delay(failures, exc.retry_after)
                need_list = True
                log.warning("%s; relisting in %.2fs", exc, delay, extra={"informer": self.name})
            except KubeApiError as exc:
                self.last_error = exc
                if exc.gone:
                    self.observer.on_restart(self._plural, "expired")
                    need_list = True
                    continue
                if exc.code == 504 and _TOO_LARGE in exc.message:
                    reason, delay = "too-large", self._too_large_delay(failures, exc.retry_after)
                    need_list = True
                else:
                    if exc.code in (401, 403):
                        self.refused = exc
                        self._refusal.set()
                    reason = "throttled" if exc.code == 429 else f"http-{exc.code}"
                    # The client already waited out each Retry-After it was sent: what
                    # arrives here was refused again and again, so back off, never for
                    # less than the server's last Retry-After.
                    delay = max(exc.retry_after or 0.0, self.backoff.delay(failures))
                log.warning(
                    "API error %s %s; retrying in %.2fs",
                    exc.code,
                    exc.reason,
                    delay,
                    extra={"informer": self.name, "error": exc.message},
                )
            except _WatchError as exc:
                reason, need_list = "watch-error", True
                delay = self.backoff.delay(failures)
                log.warning("watch error: %s; relisting", exc, extra={"informer": self.name})
            except (TimeoutError, KubeConnectionError, OSError) as exc:
                self.last_error = exc
                check_version = True
                if self._healthy(started):
                    failures = 0
                if isinstance(exc, asyncio.TimeoutError):
                    # Silence is what a quiet cluster sends (no bookmark until the version
                    # moves): not a failure, but the version check tells it from a server
                    # that is behind us.
                    reason, delay = "inactivity", self.backoff.delay(failures)
                    log.info(
                        "watch silent for %.0fs; checking the server and resuming",
                        self.inactivity_timeout,
                        extra={"informer": self.name},
                    )
                else:
                    reason, delay = "connection", self.backoff.delay(failures)
                    log.warning(
                        "watch connection lost (%s); reconnecting in %.2fs",
                        exc,
                        delay,
                        extra={"informer": self.name},
                    )
            self.observer.on_restart(self._plural, reason)
            failures += 1
            await asyncio.sleep(delay)

    def _healthy(self, started: float | None) -> bool:
        """Whether the last watch was a good one: it delivered, or it lived a while."""
        if started is None:
            return False
        lived = asyncio.get_running_loop().time() - started
        return self._delivered > 0 or lived >= self.healthy_watch

    def _too_large_delay(self, failures: int, retry_after: float | None) -> float:
        return max(retry_after or 0.0, self.backoff.delay(failures))

    async def _server_went_back(self) -> bool:
        """Whether the server's current resourceVersion is below the last one we saw.

        One object of a consistent list (no resourceVersion) is enough to read it. The
        versions are compared as the integers etcd makes them; any other form cannot go
        back as far as we can tell."""
        query = self._query()
        query["limit"] = 1
        body = await self.client.read(
            "GET", self.resource.path(self.namespace), query=query, accept=JSON
        )
        try:
            doc = loads(body)
            server = int(doc["metadata"]["resourceVersion"])
            ours = int(self.resource_version or "")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return False
        if server >= ours:
            return False
        log.warning(
            "the API server's resourceVersion %d is below ours (%d): restored or replaced; "
            "relisting",
            server,
            ours,
            extra={"informer": self.name},
        )
        return True

    # -- level 2: list ------------------------------------------------------------------

    def _query(self) -> dict[str, str | int]:
        query: dict[str, str | int] = {}
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        return query

    async def _relist(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        fresh: dict[tuple[str, str], V] = {}
        query = self._query()
        query["limit"] = self.page_size
        path = self.resource.path(self.namespace)
        with _gc_paused():
            while True:
                body = await self.client.read("GET", path, query=query, accept=self.accept)
                token, rv = self._read_page(body, fresh)
                del body  # before the next page arrives
                if not token:
                    self.resource_version = rv
                    break
                query["continue"] = token
            self._replace(fresh)
        self._contact = loop.time()
        if not self.synced.is_set():
            self.observer.on_synced(self.resource.plural, len(fresh), loop.time() - started)
            self.synced.set()
            log.info("synced %d objects", len(fresh), extra={"informer": self.name})

    def _read_page(
        self, body: bytes, into: dict[tuple[str, str], V]
    ) -> tuple[str | None, str | None]:
        """Add a list page's views to ``into``; return its continue token and resourceVersion."""
        if self.codec.page is not None:
            try:
                page = self.codec.page(body)
            except Exception:  # whatever trips the typed reader, the general way reads it
                page = None
            if page is not None:
                for typed in page.views:
                    into[(typed.namespace, typed.name)] = typed
                return page.continue_token, page.resource_version
        try:
            doc = loads(body) if body else {}
        except orjson.JSONDecodeError as exc:
            raise KubeConnectionError(f"undecodable list page ({exc}): {body[:200]!r}") from exc
        if not isinstance(doc, dict):
            raise KubeConnectionError(f"list page is not an object: {body[:200]!r}")
        items = doc.get("items") or []
        meta = doc.get("metadata") or {}
        if not isinstance(items, list) or not isinstance(meta, dict):
            raise KubeConnectionError(f"list page without items or metadata: {body[:200]!r}")
        for raw in items:
            view = self._view(raw)
            if view is not None:
                into[(view.namespace, view.name)] = view
        token = meta.get("continue")
        rv = meta.get("resourceVersion")
        return (token if isinstance(token, str) and token else None), (
            rv if isinstance(rv, str) and rv else None
        )

    def _replace(self, fresh: dict[tuple[str, str], V]) -> None:
        old = self.cache
        self.cache = fresh
        emit = self._emit
        for key, view in fresh.items():
            before = old.get(key)
            if getattr(view, "malformed", None) is not None:
                self._malformed(view, before)
            if before is None:
                emit(ADDED, view, None)
            elif before.resource_version != view.resource_version:
                emit(MODIFIED, view, before)
        for key, before in old.items():
            if key not in fresh:
                emit(DELETED, before, before)

    # -- level 3: one watch stream ----------------------------------------------------------

    async def _watch(self) -> int:
        """Stream one watch; return how many events it delivered."""
        query = self._query()
        query.update(
            watch="true",
            allowWatchBookmarks="true",
            # Jitter spreads reconnects of many informers after an API server restart.
            timeoutSeconds=int(self.watch_timeout * random.uniform(1.0, 1.2)),
        )
        if self.resource_version:
            query["resourceVersion"] = self.resource_version
        response = await self.client.stream(
            self.resource.path(self.namespace),
            query=query,
            accept=self.accept,
            read_timeout=self.inactivity_timeout,
        )
        loop = asyncio.get_running_loop()
        self._watching = True
        delivered = 0
        on_line = self._on_line
        # The start of a line whose end has not arrived yet (an object can span many reads).
        parts: list[bytes] = []
        try:
            async for chunk in response.chunks():
                find = chunk.find
                end = find(b"\n")
                if end < 0:
                    parts.append(chunk)
                    continue
                if parts:
                    parts.append(chunk)
                    chunk = b"".join(parts)
                    parts.clear()
                    find = chunk.find
                    end = find(b"\n")
                # Lines are read in place: a slice of a memoryview copies nothing, where
                # bytes.split copied every event once more (a twentieth of the event's cost).
                lines = memoryview(chunk)
                start = 0
                while end >= 0:
                    if end > start:
                        on_line(lines[start:end])
                        delivered += 1
                    start = end + 1
                    end = find(b"\n", start)
                if start < len(chunk):
                    parts.append(chunk[start:])
            rest = b"".join(parts)
            if rest.strip():
                on_line(rest)
                delivered += 1
        finally:
            self._watching = False
            self._contact = loop.time()
            self._delivered = delivered
            response.release()
        return delivered

    def _on_line(self, line: Line) -> None:
        # The hot path, once per event: a kind's typed reader first (see Codec).
        event = self._event
        if event is not None:
            try:
                decoded = event(line, self.cache)
            except Exception:  # whatever trips the typed reader, the general way reads it
                decoded = None
            if decoded is not None:
                view = decoded[1]
                if view.resource_version:
                    self.resource_version = view.resource_version
                self._apply(decoded[0], view)
                return
        try:
            doc = loads(line)
            etype = doc["type"]
            raw = doc["object"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise _WatchError(f"undecodable watch line ({exc}): {bytes(line[:200])!r}") from exc
        if not isinstance(raw, dict):
            raise _WatchError(f"watch event object is not an object: {bytes(line[:200])!r}")
        if etype == BOOKMARK:
            rv = _resource_version(raw)
            if rv:
                self.resource_version = rv
            self.observer.on_event(self.resource.plural, etype)
            return
        if etype == ERROR:
            if raw.get("code") == 410:
                raise _Gone(raw.get("message", ""))
            message = str(raw.get("message") or "")
            if raw.get("code") == 504 and _TOO_LARGE in message:
                details = raw.get("details")
                retry = details.get("retryAfterSeconds") if isinstance(details, dict) else None
                raise _TooLarge(message, float(retry) if isinstance(retry, int) else None)
            raise _WatchError(f"{raw.get('code')} {raw.get('reason')}: {raw.get('message')}")
        rv = _resource_version(raw)
        if rv:
            self.resource_version = rv
        read = self._view(raw)
        if read is not None:
            self._apply(etype, read)

    def _apply(self, etype: str, view: V) -> None:
        """Bring one watched change into the cache and hand it on."""
        key = (view.namespace, view.name)
        cache = self.cache
        self.observer.on_event(self._plural, etype)
        if etype == DELETED:
            before = cache.pop(key, None)
        elif etype in (MODIFIED, ADDED):
            before = cache.get(key)
            cache[key] = view
            etype = ADDED if before is None else MODIFIED
            if getattr(view, "malformed", None) is not None:
                self._malformed(view, before)
        else:
            log.warning("unknown watch event type %r", etype, extra={"informer": self.name})
            return
        try:
            self.handler(etype, view, before)
        except Exception:
            self._handler_failed(view)

    def _malformed(self, view: V, before: V | None) -> None:
        """Name an object that cannot be read, once per problem (not at every event)."""
        problem = getattr(view, "malformed", None)
        if before is not None and getattr(before, "malformed", None) == problem:
            return
        log.warning(
            "cannot read object: %s",
            problem,
            extra={"informer": self.name, "namespace": view.namespace, "object": view.name},
        )

    def _view(self, raw: Mapping[str, Any]) -> V | None:
        try:
            return self.transform(raw)
        except Exception:
            # A transform bug on one object must not stop the informer for all others.
            meta = raw.get("metadata") if isinstance(raw, Mapping) else None
            meta = meta if isinstance(meta, Mapping) else {}
            log.exception(
                "cannot read object",
                extra={
                    "informer": self.name,
                    "namespace": meta.get("namespace"),
                    "object": meta.get("name"),
                },
            )
            return None

    def _emit(self, etype: str, view: V, old: V | None) -> None:
        try:
            self.handler(etype, view, old)
        except Exception:
            self._handler_failed(view)

    def _handler_failed(self, view: V) -> None:
        log.exception(
            "event handler failed",
            extra={"informer": self.name, "namespace": view.namespace, "object": view.name},
        )


def _resource_version(raw: Mapping[str, Any]) -> str | None:
    meta = raw.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) and rv else None
