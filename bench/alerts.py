"""6. Alert delivery: events per second from the router to a local receiver, 8 providers.

The router is built as the daemon builds it (``Router.from_settings``,
Prometheus metrics, default queue size 100 per provider, one shared
transport) with eight providers of eight types (generic, slack, discord,
rocket, msteams, googlechat, alertmanager, grafana), all pointing at one
local receiver (:mod:`bench.receiver`, its own process on the other CPU),
and one alert rule per provider that selects every event. Every event is
therefore delivered eight times, each in its provider's wire format; the
figure counts what arrives at the receiver (one per provider per event).

- throughput: ``n`` distinct events published as fast as the queues take
  them (never more than a queue holds, so none is dropped by design), until
  every delivery is done;
- paced: 1,000 deliveries per second (125 events/s x 8) offered for a while
  regardless of the queues; every delivery that did not arrive is lost;
- baseline: the same providers without the router: a loop that posts each
  event to each provider in turn, awaiting each POST;
- ceiling: bare aiohttp, eight loops (one per provider) POSTing one fixed
  body to the receiver through one session, no provider, router or retry:
  what one core can send at all, the bound of the figure;
- slow receiver: a second receiver that answers after 50 ms, like a remote
  webhook; deliveries/s with the default ``concurrency`` (4 requests in flight
  per provider) against one in flight per provider, in the same run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.common import Child, Context, Figure, Stopwatch
from fluxwatch.notify.event import Event, EventFactory, InvolvedObject

PROVIDER_TYPES = (
    "generic",
    "slack",
    "discord",
    "rocket",
    "msteams",
    "googlechat",
    "alertmanager",
    "grafana",
)
GOAL_RATE = 1_000.0
SLOW_LATENCY = 0.05
RESULTS = ("sent", "failed", "dropped", "deduplicated")


def _settings(url: str, **extra: Any) -> Any:
    from fluxwatch.notify.config import NotifySettings

    return NotifySettings.model_validate(
        {
            **extra,
            "providers": [
                {"name": f"p-{kind}", "type": kind, "address": f"{url}{kind}"}
                for kind in PROVIDER_TYPES
            ],
            "alerts": [
                {
                    "name": f"a-{kind}",
                    "providerRef": {"name": f"p-{kind}"},
                    "eventSeverity": "info",
                    "eventSources": [{"kind": "*", "name": "*", "namespace": "*"}],
                }
                for kind in PROVIDER_TYPES
            ],
        }
    )


def _events(n: int, tag: str) -> list[Event]:
    factory = EventFactory("fluxwatch-bench")
    return [
        factory.stuck_detected(
            InvolvedObject.helmrelease(f"tenant-{i % 20:03d}", f"{tag}-{i:06d}"),
            age=360.0,
            threshold=300.0,
            release=f"{tag}-{i:06d}",
            helm_version=1 + i % 7,
        )
        for i in range(n)
    ]


class _Counts:
    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def result(self, result: str) -> float:
        total = 0.0
        for kind in PROVIDER_TYPES:
            labels = {"provider": f"p-{kind}", "result": result}
            total += self.registry.get_sample_value("fluxwatch_notifications_total", labels) or 0
        return total


async def _received(receiver: Child) -> int:
    answer = await receiver.request({"count": True})
    return int(answer["received"])


async def _throughput(router: Any, events: list[Event]) -> float:
    lanes = list(router.providers)
    size = min(router._lanes[name].queue.maxsize for name in lanes)
    clock = Stopwatch()
    i = 0
    while i < len(events):
        free = size - max(router.queue_depth(name) for name in lanes)
        for event in events[i : i + free]:
            router.publish(event)
        i += max(0, free)
        await asyncio.sleep(0 if free else 0.001)
    await router.flush()
    return clock()


async def _paced(router: Any, events: list[Event], rate: float) -> float:
    loop = asyncio.get_running_loop()
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    start = loop.time()
    for k in range(0, len(events), per_tick):
        await asyncio.sleep(max(0.0, start + (k // per_tick) * tick - loop.time()))
        for event in events[k : k + per_tick]:
            router.publish(event)
    await router.flush()
    return loop.time() - start


async def _serial(router: Any, events: list[Event]) -> float:
    providers = list(router.providers.values())
    clock = Stopwatch()
    for event in events:
        for provider in providers:
            await provider.post(event)
    return clock()


async def _bare_aiohttp(url: str, deliveries: int, lanes: int) -> float:
    """POSTs per second of aiohttp alone, ``lanes`` loops in flight, as the router has."""
    import aiohttp

    body = b'{"involvedObject":{"kind":"HelmRelease"},"message":"' + b"x" * 400 + b'"}'
    headers = {"Content-Type": "application/json"}
    per_lane = deliveries // lanes
    async with aiohttp.ClientSession() as session:

        async def lane() -> None:
            for _ in range(per_lane):
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()

        await lane()  # warm the connection pool
        clock = Stopwatch()
        await asyncio.gather(*(lane() for _ in range(lanes)))
        return per_lane * lanes / clock()


async def _slow_receiver(ctx: Context, events: int) -> dict[str, float]:
    """Deliveries/s to a receiver answering after SLOW_LATENCY, by requests in flight."""
    from fluxwatch.notify.router import Router

    args = ["--latency", str(SLOW_LATENCY)]
    if ctx.placement.helper is not None:
        args += ["--cpu", str(ctx.placement.helper)]
    receiver = await Child.start("bench.receiver", *args)
    rates: dict[str, float] = {}
    try:
        for label, concurrency in (("default", None), ("one_in_flight", 1)):
            extra = {} if concurrency is None else {"concurrency": concurrency}
            router = await Router.from_settings(_settings(receiver.info["url"], **extra))
            try:
                got0 = await _received(receiver)
                seconds = await _throughput(router, _events(events, f"slow-{label}"))
                arrived = await _received(receiver) - got0
            finally:
                await router.close(10)
            if arrived != events * len(PROVIDER_TYPES):
                raise RuntimeError(f"slow receiver: {arrived} of {events * 8} arrived")
            rates[label] = arrived / seconds
    finally:
        await receiver.stop()
    return rates


async def run(ctx: Context) -> list[Figure]:
    from prometheus_client import CollectorRegistry

    from fluxwatch.notify.metrics import PrometheusMetrics
    from fluxwatch.notify.router import Router

    sizes = ctx.sizes
    args = [] if ctx.placement.helper is None else ["--cpu", str(ctx.placement.helper)]
    receiver = await Child.start("bench.receiver", *args)
    registry = CollectorRegistry()
    router = await Router.from_settings(
        _settings(receiver.info["url"]), metrics=PrometheusMetrics(registry)
    )
    counts = _Counts(registry)
    fanout = len(PROVIDER_TYPES)
    try:
        if router.problems:
            raise RuntimeError(f"providers unavailable: {router.problems}")
        await _throughput(router, _events(50, "warm"))
        n = sizes.alert_events
        got0 = await _received(receiver)
        seconds = await _throughput(router, _events(n, "burst"))
        delivered = await _received(receiver) - got0
        rate = n / seconds

        paced_rate = GOAL_RATE / fanout
        paced_events = _events(round(paced_rate * sizes.alert_paced_seconds), "paced")
        dropped0, failed0 = counts.result("dropped"), counts.result("failed")
        got_before = await _received(receiver)
        paced_seconds = await _paced(router, paced_events, paced_rate)
        paced_got = await _received(receiver) - got_before
        paced_lost = len(paced_events) * fanout - paced_got
        dropped = counts.result("dropped") - dropped0
        failed = counts.result("failed") - failed0

        serial_events = _events(max(10, n // 10), "serial")
        base_seconds = await _serial(router, serial_events)
        base_rate = len(serial_events) / base_seconds
        ceiling = await _bare_aiohttp(f"{receiver.info['url']}ceiling", n * fanout // 2, fanout)
    finally:
        await router.close(10)
        await receiver.stop()
    slow_events = max(8, n // 10)
    slow = await _slow_receiver(ctx, slow_events)
    lost = n * fanout - delivered
    ctx.log(
        f"  alerts: {rate * fanout:,.0f} deliveries/s ({rate:,.0f} events/s x{fanout}), "
        f"lost {lost}; paced {GOAL_RATE:,.0f}/s lost {paced_lost}; "
        f"serial {base_rate * fanout:,.0f} deliveries/s; bare aiohttp {ceiling:,.0f} POSTs/s"
    )
    return [
        Figure(
            "alerts",
            "alert delivery at the receiver, 8 providers",
            rate * fanout,
            "events/s",
            base_rate * fanout,
            "the same providers posted in turn, no router",
            goal=f">= {GOAL_RATE:,.0f}/s without loss",
            goal_met=rate * fanout >= GOAL_RATE and lost == 0 and paced_lost == 0,
            bound=(
                f"CPU of the one core: bare aiohttp sends {ceiling:,.0f} POSTs/s on it, the "
                f"router with eight providers {rate * fanout / ceiling:.0%} of that (each "
                "provider's payload, retries, a span and metrics per delivery); the "
                "receiver runs on the other CPU"
            ),
            details={
                "events": n,
                "distinct_events_per_s": rate,
                "lost": lost,
                "paced": {
                    "deliveries_per_s_offered": GOAL_RATE,
                    "events": len(paced_events),
                    "seconds": paced_seconds,
                    "lost": paced_lost,
                    "dropped": dropped,
                    "failed": failed,
                },
                "provider_types": list(PROVIDER_TYPES),
                "bare_aiohttp_posts_per_s": ceiling,
                "serial_events": len(serial_events),
            },
        ),
        Figure(
            "alerts",
            f"alert delivery, receiver answering in {SLOW_LATENCY * 1000:.0f} ms, 8 providers",
            slow["default"],
            "events/s",
            slow["one_in_flight"],
            "one request in flight per provider (the router before concurrency)",
            bound=(
                "the receiver's latency: each provider keeps its default 4 requests in "
                "flight, the events of one object still in order"
            ),
            details={"events": slow_events, "latency_s": SLOW_LATENCY},
        ),
        Figure(
            "alerts",
            "alerts: CPU ceiling, bare aiohttp POSTs, 8 in flight",
            ceiling,
            "requests/s",
            bound="aiohttp's client alone on one core; the receiver on the other CPU",
        ),
    ]
