"""The router: alert rules pick providers, the dedup window drops repeats, queues deliver.

``publish(event)`` is a plain function that returns at once, so the engine
never waits for a receiver: it routes the event, checks the dedup window and
puts it on the bounded queue of each selected provider. Each provider's
workers (``concurrency``, 4 by default) deliver its queue with that many
requests in flight, as notification-controller posts events concurrently;
unlike it, the events of one object reach a provider in the order they were
published (a resolved alert never overtakes its firing one), and a slow
receiver delays only its own events. Every event handed to a provider is
accounted for exactly once in the metrics (see ``metrics.RESULTS``), and every
one that does not arrive is logged with its key. ``close(timeout)`` stops
taking events and flushes the queues until the timeout; whatever is left is
counted and logged as dropped. A delivery runs in a copy of the publisher's
context, so its spans join the trace (a recovery) that published the event.

Secrets change: a provider whose keys come from a Secret (``secretRef``) or a
mounted directory (``secretPath``) has them read again every
``secretRefreshInterval`` (5m). Changed keys (a rotated webhook URL or token)
rebuild the provider, new deliveries use it and the old one is closed once
its deliveries in flight are done; a Secret created after the start makes an
unavailable provider available. A Secret that cannot be read again leaves a
working provider as it is (and says so).

Supervision: the workers and the secret refresher handle every delivery and
refresh error themselves, so one that ends is a bug. It is logged with its
(scrubbed) traceback and ``supervise()``, a root task of the Daemon, raises
``NotifyTaskDied``: the daemon stops and Kubernetes restarts the pod, rather
than a provider's queue filling up with nobody left to deliver it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from fluxwatch.notify.config import NotifySettings, ProviderSpec
from fluxwatch.notify.credentials import Credentials, SecretReader
from fluxwatch.notify.dedup import Deduplicator
from fluxwatch.notify.errors import (
    DeliveryError,
    NotDelivered,
    NotifyConfigError,
    NotifyTaskDied,
    Skipped,
)
from fluxwatch.notify.event import Event
from fluxwatch.notify.factory import (
    UnavailableProvider,
    build_provider,
    has_secret,
    open_provider_with_credentials,
    read_credentials,
)
from fluxwatch.notify.metrics import MemoryMetrics, NotifyMetrics
from fluxwatch.notify.providers import EventWriter, Provider, ProviderDeps
from fluxwatch.notify.rules import Rule, route
from fluxwatch.notify.transport import RetryPolicy, Transport

log = logging.getLogger(__name__)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _describe(event: Event) -> str:
    obj = event.involved_object
    return f"{obj.kind} {obj.ref} ({event.reason}, key {event.key})"


def _log_extra(provider: str, event: Event) -> dict[str, Any]:
    obj = event.involved_object
    return {
        "provider": provider,
        "event_key": event.key,
        "reason": event.reason,
        "object": f"{obj.kind}/{obj.ref}",
    }


ObjectKey = tuple[str, str, str]


@dataclass(slots=True)
class _Lane:
    """One provider with its queue and its workers."""

    provider: Provider
    queue: asyncio.Queue[tuple[Event, contextvars.Context]]
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    # Per object, set when the delivery taken last for it is over: the next one waits.
    tails: dict[ObjectKey, asyncio.Event] = field(default_factory=dict)
    # Where the provider came from, to build it again when its secret keys change.
    spec: ProviderSpec | None = None
    credentials: Credentials | None = None


@dataclass(slots=True)
class _Refresh:
    """What rebuilding a provider needs besides its spec."""

    deps: ProviderDeps
    namespace: str | None
    secret_reader: SecretReader | None
    interval: float


class Router:
    """Routes events to providers off the engine's path; see the module docstring.

    Build it with ``await Router.from_settings(...)`` (which also starts it),
    or from parts for tests; ``start()`` needs the running loop.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        rules: Sequence[Rule],
        *,
        rate_limit_interval: float = 300.0,
        queue_size: int = 100,
        concurrency: int = 4,
        metrics: NotifyMetrics | None = None,
        clock: Callable[[], float] = _loop_time,
        transport: Transport | None = None,
    ) -> None:
        """``transport``, when given, is the router's own and is closed by ``close``."""
        self.metrics: NotifyMetrics = metrics if metrics is not None else MemoryMetrics()
        self.rules = tuple(rule for rule in rules if rule.provider in providers)
        self.transport = transport
        self._dedup = Deduplicator(rate_limit_interval, clock)
        self._clock = clock
        self._lanes = {
            name: _Lane(provider, asyncio.Queue(maxsize=queue_size))
            for name, provider in providers.items()
        }
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self._closed = False
        for name in self._lanes:
            self.metrics.register(name)
        self._refresh: _Refresh | None = None
        self._refresher: asyncio.Task[None] | None = None
        # Deliveries in flight per provider object, and providers replaced but still in use.
        self._in_use: dict[int, int] = {}
        self._retired: dict[int, Provider] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # Set by the first worker or refresher that ends while the router is open.
        self._died: asyncio.Future[None] | None = None

    @classmethod
    async def from_settings(
        cls,
        settings: NotifySettings,
        *,
        namespace: str | None = None,
        secret_reader: SecretReader | None = None,
        event_writer: EventWriter | None = None,
        metrics: NotifyMetrics | None = None,
        extra_headers: Callable[[], Mapping[str, str]] | None = None,
        transport: Transport | None = None,
    ) -> Router:
        """Read secrets, build the providers and rules, start the workers.

        ``namespace`` is fluxwatch's own, where ``secretRef`` Secrets live;
        ``secret_reader`` and ``event_writer`` come from the kube layer;
        ``extra_headers`` is the tracing hook (a ``traceparent`` per request).
        A ``transport`` given here is shared and left open by ``close``.
        Suspended providers and alerts are left out. A provider that cannot
        be built is replaced by one that fails every event with the reason.
        """
        for line in settings.deprecations():
            log.warning("%s", line)
        owned = transport is None
        if transport is None:
            retry = RetryPolicy(
                settings.max_retries, settings.retry_wait_min, settings.retry_wait_max
            )
            transport = Transport(retry=retry, extra_headers=extra_headers)
        deps = ProviderDeps(transport=transport, event_writer=event_writer)
        providers: dict[str, Provider] = {}
        sources: dict[str, tuple[ProviderSpec, Credentials | None]] = {}
        for spec in settings.providers:
            if spec.suspend:
                log.info("provider %s is suspended", spec.name, extra={"provider": spec.name})
                continue
            providers[spec.name], credentials = await open_provider_with_credentials(
                spec, deps, namespace=namespace, secret_reader=secret_reader
            )
            sources[spec.name] = (spec, credentials)
        rules = []
        for alert in settings.alerts:
            if alert.suspend:
                log.info("alert %s is suspended", alert.name)
            elif alert.provider_ref.name not in providers:
                log.info(
                    "alert %s targets suspended provider %s", alert.name, alert.provider_ref.name
                )
            else:
                rules.append(Rule.from_spec(alert))
        router = cls(
            providers,
            rules,
            rate_limit_interval=settings.rate_limit_interval,
            queue_size=settings.queue_size,
            concurrency=settings.concurrency,
            metrics=metrics,
            transport=transport if owned else None,
        )
        for name, (spec, credentials) in sources.items():
            router._lanes[name].spec = spec
            router._lanes[name].credentials = credentials
        router._refresh = _Refresh(deps, namespace, secret_reader, settings.secret_refresh_interval)
        router.start()
        return router

    @property
    def providers(self) -> dict[str, Provider]:
        return {name: lane.provider for name, lane in self._lanes.items()}

    @property
    def problems(self) -> dict[str, str]:
        """Providers that could not be built, with the reason."""
        return {
            name: lane.provider.reason
            for name, lane in self._lanes.items()
            if isinstance(lane.provider, UnavailableProvider)
        }

    def queue_depth(self, provider: str) -> int:
        return self._lanes[provider].queue.qsize()

    def __repr__(self) -> str:
        return (
            f"Router(providers={list(self._lanes)}, rules={len(self.rules)}, closed={self._closed})"
        )

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._died is None:
            self._died = loop.create_future()
        for name, lane in self._lanes.items():
            while len(lane.workers) < self.concurrency:
                worker = loop.create_task(
                    self._work(lane), name=f"notify:{name}:{len(lane.workers)}"
                )
                worker.add_done_callback(functools.partial(self._task_done, [lane]))
                lane.workers.append(worker)
        refresh = self._refresh
        if (
            self._refresher is None
            and refresh is not None
            and refresh.interval > 0
            and any(
                lane.spec is not None and has_secret(lane.spec) for lane in self._lanes.values()
            )
        ):
            self._refresher = loop.create_task(self._refresh_secrets(), name="notify:secrets")
            lanes = list(self._lanes.values())
            self._refresher.add_done_callback(functools.partial(self._task_done, lanes))

    def publish(self, event: Event) -> None:
        """Hand ``event`` to the providers its alerts select; never blocks.

        Call it from the event loop's thread: the dedup window reads the
        loop's clock and the queues are not thread-safe.
        """
        targets = route(self.rules, event)
        if not targets:
            log.debug("no alert selects %s", _describe(event))
            return
        if self._closed:
            for name, routed in targets.items():
                self._lost(name, routed, "dropped", "fluxwatch is shutting down")
            return
        if not self._dedup.admit(event.key):
            for name in targets:
                self.metrics.delivered(name, "deduplicated")
            log.debug("%s was already sent within the rate-limit interval", _describe(event))
            return
        for name, routed in targets.items():
            lane = self._lanes[name]
            try:
                lane.queue.put_nowait((routed, contextvars.copy_context()))
            except asyncio.QueueFull:
                self._lost(
                    name, routed, "dropped", f"its queue is full ({lane.queue.maxsize} events)"
                )
            else:
                self.metrics.queue_depth(name, lane.queue.qsize())

    async def supervise(self) -> None:
        """Wait while the workers and the refresher run; raise ``NotifyTaskDied`` when one ends.

        A root task of the Daemon: call it after ``start()``. Workers that
        ``close()`` stops did not die; the Daemon cancels this wait before that.
        """
        if self._died is None:
            raise RuntimeError("Router.supervise() before start()")
        await asyncio.shield(self._died)

    async def flush(self) -> None:
        """Wait until every event published so far is delivered or given up (and counted)."""
        await asyncio.gather(*(lane.queue.join() for lane in self._lanes.values() if lane.workers))

    async def close(self, timeout: float = 10.0) -> None:
        """Stop taking events, deliver what is queued within ``timeout`` seconds, then stop."""
        self._closed = True
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        lanes = list(self._lanes.values())
        try:
            async with asyncio.timeout(timeout):
                await self.flush()
        except TimeoutError:
            log.warning("notification queues not flushed within %gs", timeout)
        workers = [worker for lane in lanes for worker in lane.workers]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for lane in lanes:
            while not lane.queue.empty():
                event, _context = lane.queue.get_nowait()
                self._lost(lane.provider.name, event, "dropped", "shutdown came first")
            self.metrics.queue_depth(lane.provider.name, 0)
        for provider in [lane.provider for lane in lanes] + list(self._retired.values()):
            await self._close_provider(provider)
        self._retired.clear()
        await asyncio.gather(*self._closing)
        if self.transport is not None:
            await self.transport.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _lost(self, provider: str, event: Event, result: str, why: str) -> None:
        self.metrics.delivered(provider, result)
        log.warning(
            "notification to %s %s, %s: %s",
            provider,
            result,
            why,
            _describe(event),
            extra=_log_extra(provider, event),
        )

    def _task_done(self, lanes: list[_Lane], task: asyncio.Task[None]) -> None:
        if self._closed and task.cancelled():
            return
        error = None if task.cancelled() else task.exception()
        how = "was cancelled" if error is None else f"died: {type(error).__name__}"
        text = "" if error is None else "".join(traceback.format_exception(error))
        for lane in lanes:  # the traceback may quote a provider's URL or header
            text = lane.provider.settings.redactor.scrub(text)
        log.error("notification task %s %s; stopping fluxwatch\n%s", task.get_name(), how, text)
        if self._died is not None and not self._died.done():
            self._died.set_exception(NotifyTaskDied(f"notification task {task.get_name()} {how}"))

    async def _work(self, lane: _Lane) -> None:
        name = lane.provider.name
        tails = lane.tails
        while True:
            event, context = await lane.queue.get()
            obj = event.involved_object
            key = (obj.kind, obj.namespace, obj.name)
            # Events are taken in queue order, so chaining each to the one taken before it
            # for the same object keeps that object's events in order across the workers.
            before = tails.get(key)
            done = tails[key] = asyncio.Event()
            try:
                if before is not None:
                    try:
                        await before.wait()
                    except asyncio.CancelledError:
                        self._lost(name, event, "dropped", "shutdown came first")
                        raise
                provider = lane.provider
                self._in_use[id(provider)] = self._in_use.get(id(provider), 0) + 1
                try:
                    await asyncio.create_task(self._deliver(provider, event), context=context)
                finally:
                    self._release(provider)
            finally:
                done.set()
                if tails.get(key) is done:
                    del tails[key]
                lane.queue.task_done()
                self.metrics.queue_depth(name, lane.queue.qsize())

    # -- secrets that change --------------------------------------------------------------

    async def _refresh_secrets(self) -> None:
        assert self._refresh is not None
        while True:
            await asyncio.sleep(self._refresh.interval)
            for name, lane in list(self._lanes.items()):
                if lane.spec is None or not has_secret(lane.spec):
                    continue
                try:
                    await self.refresh_provider(name)
                except Exception as exc:  # a provider's bug must not end the refreshes
                    log.error(
                        "provider %s: rebuilding it failed: %s",
                        name,
                        type(exc).__name__,
                        extra={"provider": name},
                    )

    async def refresh_provider(self, name: str) -> bool:
        """Read the provider's secret keys again; rebuild it if they changed. True if rebuilt."""
        lane, refresh = self._lanes[name], self._refresh
        if lane.spec is None or refresh is None or self._closed:
            return False
        spec = lane.spec
        try:
            credentials = await read_credentials(
                spec, namespace=refresh.namespace, secret_reader=refresh.secret_reader
            )
        except NotifyConfigError as exc:
            if lane.credentials is not None:
                log.warning(
                    "provider %s: cannot read its secret again (%s); it keeps the keys it has",
                    name,
                    exc,
                    extra={"provider": name},
                )
            return False
        if credentials == lane.credentials:
            return False
        try:
            fresh = await build_provider(spec, refresh.deps, credentials)
        except NotifyConfigError as exc:
            log.error(
                "provider %s: its secret changed but cannot be used (%s); it keeps the keys it has",
                name,
                exc,
                extra={"provider": name},
            )
            return False
        if self._closed:
            await self._close_provider(fresh)
            return False
        old, lane.provider, lane.credentials = lane.provider, fresh, credentials
        log.info(
            "provider %s: its secret changed; new deliveries use the new keys",
            name,
            extra={"provider": name},
        )
        if self._in_use.get(id(old), 0):
            self._retired[id(old)] = old  # closed when its last delivery ends
        else:
            await self._close_provider(old)
        return True

    def _release(self, provider: Provider) -> None:
        left = self._in_use.get(id(provider), 0) - 1
        if left > 0:
            self._in_use[id(provider)] = left
            return
        self._in_use.pop(id(provider), None)
        retired = self._retired.pop(id(provider), None)
        if retired is not None:
            task = asyncio.get_running_loop().create_task(self._close_provider(retired))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_provider(self, provider: Provider) -> None:
        try:
            await provider.close()
        except Exception as exc:
            log.warning("closing provider %s: %s", provider.name, type(exc).__name__)

    async def _deliver(self, provider: Provider, event: Event) -> None:
        name = provider.name
        started = self._clock()
        try:
            await provider.post(event)
        except asyncio.CancelledError:
            self._lost(name, event, "dropped", "shutdown interrupted its delivery")
            raise
        except NotDelivered as exc:
            result = exc.result
            # A skip is the provider's design (PagerDuty and info events): not news.
            level = logging.DEBUG if isinstance(exc, Skipped) else logging.INFO
            log.log(
                level,
                "notification to %s %s: %s: %s",
                name,
                result,
                _describe(event),
                exc,
                extra=_log_extra(name, event),
            )
        except DeliveryError as exc:
            result = "failed"
            log.error(
                "notification to %s failed: %s: %s",
                name,
                _describe(event),
                exc,
                extra=_log_extra(name, event),
            )
        except Exception as exc:
            # A provider bug: keep the worker alive, and scrub the traceback, which
            # may quote a request URL or header.
            result = "failed"
            text = "".join(traceback.format_exception(exc))
            log.error(
                "notification to %s failed unexpectedly: %s\n%s",
                name,
                _describe(event),
                provider.settings.redactor.scrub(text),
                extra=_log_extra(name, event),
            )
        else:
            result = "sent"
            if log.isEnabledFor(logging.DEBUG):  # _describe is a tenth of a delivery's work
                log.debug("notification to %s sent: %s", name, _describe(event))
        self.metrics.delivered(name, result)
        self.metrics.observe_duration(name, self._clock() - started)
