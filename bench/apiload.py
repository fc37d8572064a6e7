"""5. API load: requests and bytes read from the API server per hour of steady state.

Steady state: ``n`` installed, Ready HelmReleases that do not change, the
four Flux controllers renewing their Leases. Each side runs on a fresh
in-process cluster whose emulator counts every request and every response
byte (``ApiServer.stats``; discovery excluded). Counting starts after
fluxwatch's initial sync (and a settling pause), so the figure is the steady
state alone.

The run is compressed: every duration is multiplied by ``time_scale`` on
both sides, and the counts are extrapolated to one real hour
(``x 3600 * time_scale / seconds``). Scaled durations: fluxwatch's watch
timeout (300 s), its leader election (15 s / 10 s / 2 s: one PUT of its
Lease per retry period, the renewal needing no GET), the API server's bookmark interval (taken as
60 s), the Flux controllers' Lease renewals (every 5 s) and the CronJob's
schedule (2 min) and threshold (5 min).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

from bench.cluster import Cluster
from bench.common import Context, Figure, library_client
from bench.cronjob import CronJob
from fluxwatch.sim import scenarios

LEADER_NAMESPACE = "fluxwatch-system"


@dataclasses.dataclass
class Load:
    requests: Counter[tuple[str, str]]
    bytes: Counter[tuple[str, str]]
    seconds: float
    scale: float

    def per_hour(self, counter: Counter[tuple[str, str]]) -> float:
        return sum(counter.values()) * 3600.0 * self.scale / self.seconds

    def breakdown(self) -> dict[str, dict[str, float]]:
        factor = 3600.0 * self.scale / self.seconds
        keys = sorted(set(self.requests) | set(self.bytes))
        return {
            f"{verb} {res}": {
                "requests_per_hour": self.requests[(verb, res)] * factor,
                "bytes_per_hour": self.bytes[(verb, res)] * factor,
            }
            for verb, res in keys
        }

    def lists(self) -> int:
        return sum(n for (verb, _), n in self.requests.items() if verb == "list")


async def _measure(cluster: Cluster, seconds: float, scale: float) -> Load:
    stats = cluster.server.stats
    stats.reset()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(seconds)
    elapsed = loop.time() - start
    return Load(Counter(stats.requests), Counter(stats.bytes), elapsed, scale)


def _settings(kubeconfig: str, s: float) -> Any:
    from fluxwatch.demo import compressed
    from fluxwatch.settings import Settings

    # The whole steady state compressed alike, the watch's own timeouts and fluxwatch's
    # leader election included: API load per hour is extrapolated from this run.
    return Settings.model_validate(
        compressed(
            s,
            {
                "kubeconfig": kubeconfig,
                "shutdown_timeout": 5.0,
                "watch": {"watch_timeout": 300.0 * s, "inactivity_timeout": 120.0 * s},
                "leader": {
                    "namespace": LEADER_NAMESPACE,
                    "identity": "fluxwatch-bench",
                    "lease_duration": 15.0 * s,
                    "renew_deadline": 10.0 * s,
                    "retry_period": 2.0 * s,
                },
                "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
            },
        )
    )


async def _fluxwatch(ctx: Context) -> Load:
    from fluxwatch.app import Daemon
    from fluxwatch.kube.client import KubeClient

    sizes = ctx.sizes
    s = sizes.load_scale
    async with Cluster(sizes.load_releases, ctx.workdir, secrets=False, time_scale=s) as cluster:
        # fluxwatch's own namespace, where its Lease lives (config/): the API server refuses a
        # Lease in a namespace that does not exist, and a fluxwatch that never leads costs a
        # GET and a refused POST per retry, not the leader's one PUT (until 2026-11-28 this
        # figure measured that).
        scenarios.ensure_namespaces(cluster.store, [LEADER_NAMESPACE])
        client = await KubeClient.from_config(cluster.kubeconfig)
        daemon = Daemon(_settings(cluster.kubeconfig, s), client)
        task = asyncio.create_task(daemon.run(install_signals=False))
        try:
            while not daemon.informers or not all(i.synced.is_set() for i in daemon.informers):
                if task.done():
                    raise RuntimeError(f"the daemon stopped with {task.result()}")
                await asyncio.sleep(0.05)
            await asyncio.sleep(max(0.5, 30.0 * s))  # let leader election settle
            if not daemon.leading:
                raise RuntimeError("fluxwatch did not become leader: the figure would not be its")
            return await _measure(cluster, sizes.load_seconds, s)
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 30)
            await client.close()


async def _cronjob(ctx: Context) -> Load:
    sizes = ctx.sizes
    s = sizes.load_scale
    async with Cluster(sizes.load_releases, ctx.workdir, secrets=False, time_scale=s) as cluster:
        api_client = await library_client(cluster.kubeconfig)
        job = CronJob(api_client, threshold=300.0 * s, schedule=120.0 * s, pause=5.0 * s)
        task = asyncio.create_task(job.run_forever())
        try:
            return await _measure(cluster, sizes.load_seconds, s)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await api_client.close()


async def run(ctx: Context) -> list[Figure]:
    fw = await _fluxwatch(ctx)
    cj = await _cronjob(ctx)
    s, n = ctx.sizes.load_scale, ctx.sizes.load_releases
    fw_bytes, cj_bytes = fw.per_hour(fw.bytes), cj.per_hour(cj.bytes)
    fw_req, cj_req = fw.per_hour(fw.requests), cj.per_hour(cj.requests)
    ctx.log(
        f"  apiload: fluxwatch {fw_req:,.0f} req/h {fw_bytes / 1e6:,.2f} MB/h; "
        f"cronjob {cj_req:,.0f} req/h {cj_bytes / 1e6:,.1f} MB/h"
    )
    compressed = (
        f"extrapolated to 1 h from {fw.seconds:.0f}s at x{1 / s:.0f} compression "
        f"({fw.seconds / s / 60:.0f} simulated minutes)"
    )
    details = {
        "releases": n,
        "time_scale": s,
        "measured_seconds": {"fluxwatch": fw.seconds, "cronjob": cj.seconds},
        "extrapolation": compressed,
        "fluxwatch_per_hour": fw.breakdown(),
        "cronjob_per_hour": cj.breakdown(),
        "fluxwatch_lists_after_sync": fw.lists(),
    }
    met = fw.lists() == 0 and cj_bytes > 0 and fw_bytes < 0.01 * cj_bytes
    return [
        Figure(
            "apiload",
            f"API bytes read per hour, {n:,} HRs steady",
            fw_bytes,
            "B/h",
            cj_bytes,
            "seed CronJob (a full list every 2 min)",
            better="lower",
            goal="no LIST after sync; < 1% of baseline",
            goal_met=met,
            bound=(
                "fluxwatch: leader-election renewals (one PUT of its Lease every 2 s) and "
                "the Flux Lease watch; HelmRelease watch only bookmarks and restarts; " + compressed
            ),
            details=details,
        ),
        Figure(
            "apiload",
            f"API requests per hour, {n:,} HRs steady",
            fw_req,
            "req/h",
            cj_req,
            "seed CronJob",
            better="lower",
            bound="fluxwatch: leader election (1,800 renewals/h, one PUT each); " + compressed,
        ),
        Figure(
            "apiload",
            "LIST requests per hour after the initial sync",
            fw.lists() * 3600.0 * s / fw.seconds,
            "req/h",
            cj.lists() * 3600.0 * s / cj.seconds,
            "seed CronJob",
            better="lower",
            goal="0",
            goal_met=fw.lists() == 0,
            bound="watches resume from their resourceVersion; only a 410 would relist",
        ),
    ]
