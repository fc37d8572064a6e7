"""4. Detection delay: from a release's stuck threshold to the first recovery write.

The same script runs twice on a fresh in-process cluster (``load`` scenario
with Helm Secrets): once against the real daemon
(:class:`fluxwatch.app.Daemon`, settings as ``fluxwatch.demo.demo_settings``
builds them at the same time scale, leader election off), once against the
seed's CronJob (:mod:`bench.cronjob`). Releases, chosen at random, become
stuck at random moments (same seed for both); the delay of each is
``first write seen by the emulator - (lastTransitionTime + threshold)``.

Both time scales are compressed by the same factor: at x100 the threshold is
3 s and the CronJob's schedule 1.2 s. The CronJob's delay scales with its
schedule (at x1 multiply by 100); fluxwatch's does not: it is the latency of
a timer and a few requests, the same at any scale.

The guardrail's budget (10 recoveries per 10 min) is raised so that the
random moments never exhaust it; the batch limit stays at 10 (releases fall
due at most a few per second here).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.cluster import Cluster, Key
from bench.common import Context, Figure, library_client, percentile
from bench.cronjob import CronJob

THRESHOLD = 300.0
SCHEDULE = 120.0
PAUSE = 5.0
GOAL_P99 = 1.0


@dataclasses.dataclass
class Outcome:
    delays: list[float]
    missed: int
    writes: int


def _plan(keys: list[Key], count: int, window: float, seed: int) -> list[tuple[float, Key]]:
    rng = random.Random(seed)
    chosen = rng.sample(keys, min(count, len(keys)))
    moments = sorted(rng.uniform(0.1 * window, window) for _ in chosen)
    return list(zip(moments, chosen, strict=True))


async def _drive(
    cluster: Cluster, plan: list[tuple[float, Key]], threshold: float, settle: float
) -> Outcome:
    """Make releases stuck on schedule, then wait for every first write (or ``settle``)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for at, key in plan:
        await asyncio.sleep(max(0.0, start + at - loop.time()))
        cluster.make_stuck(key)
    keys = [key for _, key in plan]
    writes = cluster.server.writes
    await writes.until(keys, loop.time() + threshold + settle)
    delays = [
        writes.first[k] - (cluster.stuck_since[k] + threshold) for k in keys if k in writes.first
    ]
    return Outcome(delays, len(keys) - len(delays), writes.count)


async def _fluxwatch(cluster: Cluster, scale: float, run: Callable[[], Awaitable[Outcome]]) -> Any:
    from fluxwatch.app import Daemon
    from fluxwatch.demo import demo_settings
    from fluxwatch.kube.client import KubeClient

    # No alert is delivered (no router): the receiver address is never used.
    base = demo_settings(Path(cluster.kubeconfig), "http://127.0.0.1:9/", scale)
    settings = base.model_copy(
        update={
            "leader": base.leader.model_copy(update={"enabled": False}),
            "guardrail": dataclasses.replace(base.guardrail, max_recoveries=100_000),
        }
    )
    client = await KubeClient.from_config(cluster.kubeconfig)
    daemon = Daemon(settings, client)
    task = asyncio.create_task(daemon.run(install_signals=False))
    try:
        while not daemon.informers or not all(i.synced.is_set() for i in daemon.informers):
            if task.done():
                raise RuntimeError(f"the daemon stopped with {task.result()}")
            await asyncio.sleep(0.02)
        return await run()
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 30)
        await client.close()


async def _cronjob(cluster: Cluster, scale: float, run: Callable[[], Awaitable[Outcome]]) -> Any:
    api_client = await library_client(cluster.kubeconfig)
    job = CronJob(
        api_client, threshold=THRESHOLD * scale, schedule=SCHEDULE * scale, pause=PAUSE * scale
    )
    task = asyncio.create_task(job.run_forever())
    try:
        return await run()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api_client.close()


async def run(ctx: Context) -> list[Figure]:
    sizes = ctx.sizes
    scale = sizes.detect_scale
    threshold = THRESHOLD * scale
    settle = 2 * SCHEDULE * scale + 2.0
    outcomes: dict[str, Outcome] = {}
    for side, driver in (("fluxwatch", _fluxwatch), ("cronjob", _cronjob)):
        async with Cluster(
            sizes.detect_releases, ctx.workdir, secrets=True, time_scale=scale
        ) as cluster:
            plan = _plan(cluster.keys(), sizes.detect_stuck, sizes.detect_window, seed=925)

            async def go(c: Cluster = cluster, p: list[tuple[float, Key]] = plan) -> Outcome:
                return await _drive(c, p, threshold, settle)

            started = time.perf_counter()
            outcomes[side] = await driver(cluster, scale, go)
            ctx.log(
                f"  detection {side}: {len(outcomes[side].delays)} recovered, "
                f"{outcomes[side].missed} missed, in {time.perf_counter() - started:.1f}s"
            )
    fw, cj = outcomes["fluxwatch"], outcomes["cronjob"]
    figures: list[Figure] = []
    for q in (50, 99):
        value = percentile(fw.delays, q) if fw.delays else float("nan")
        base = percentile(cj.delays, q) if cj.delays else float("nan")
        met = None
        if q == 99:
            met = fw.missed == 0 and bool(fw.delays) and value <= GOAL_P99
        figures.append(
            Figure(
                "detection",
                f"detection delay p{q} (x{1 / scale:.0f} compressed)",
                value,
                "s",
                base,
                f"seed CronJob, schedule {SCHEDULE * scale:g}s",
                better="lower",
                goal=f"p99 <= {GOAL_P99:g}s, none missed" if q == 99 else "",
                goal_met=met,
                bound=(
                    "fluxwatch: one deadline timer per release, then a metadata-only Secret "
                    "list and the patch (a few requests on one loop); CronJob: its schedule"
                ),
                details={
                    "releases": sizes.detect_releases,
                    "stuck": sizes.detect_stuck,
                    "window_s": sizes.detect_window,
                    "threshold_s": threshold,
                    "cronjob_schedule_s": SCHEDULE * scale,
                    "time_scale": scale,
                    "fluxwatch": dataclasses.asdict(fw),
                    "cronjob": dataclasses.asdict(cj),
                    "cronjob_at_real_scale_s": None if base != base else base / scale,
                },
            )
        )
    return figures
