"""2. Initial sync: time from starting the informer to ``synced``, at several sizes.

fluxwatch: a fresh :class:`~fluxwatch.kube.informer.Informer` (page size
500, the default setting) feeding a fresh tracker, from ``run()`` until its
``synced`` event is set: every page fetched, every object read into a view,
the cache replaced, every view handed to the tracker. The client is built
before the clock starts (its first request still opens the connection).

Baseline: one ``CustomObjectsApi.list_cluster_custom_object`` call, the whole
list in one response deserialised by the library (no views, no tracker).

Ceiling: the same pages as fluxwatch's, fetched raw with aiohttp; only each
page's ``continue`` token is read.

Also measured (in ``details``, not the figure): fluxwatch after ``gc.freeze()``
of everything alive before the sync, what the daemon would get by freezing its
start-up heap (imports and settings) so that full collections during the list
no longer walk it.
"""

from __future__ import annotations

import asyncio
import gc
import re
from typing import Any

import aiohttp

from bench.common import (
    HR_GROUP,
    HR_PLURAL,
    HR_VERSION,
    Child,
    Context,
    Figure,
    Stopwatch,
    library_client,
    median,
)
from bench.engine import make_tracker
from fluxwatch.kube.client import HELMRELEASES, KubeClient
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC, hr_view
from fluxwatch.kube.informer import Informer

GOAL_SECONDS_10K = 0.5
PAGE = 500
_CONTINUE = re.compile(rb'"continue":"([^"]+)"')


async def _fluxwatch(kubeconfig: str) -> float:
    client = await KubeClient.from_config(kubeconfig)
    tracker = make_tracker()
    informer: Informer[Any] = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, tracker.handle, page_size=PAGE
    )
    try:
        clock = Stopwatch()
        task = asyncio.create_task(informer.run())
        await asyncio.wait_for(informer.synced.wait(), 300)
        seconds = clock()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await client.close()
    return seconds


async def _baseline(api: Any) -> float:
    clock = Stopwatch()
    listed = await api.list_cluster_custom_object(HR_GROUP, HR_VERSION, HR_PLURAL)
    seconds = clock()
    assert listed["items"]
    return seconds


async def _baseline_with_views(api: Any) -> float:
    """The baseline doing fluxwatch's work too: the one list, then views and a tracker."""
    clock = Stopwatch()
    listed = await api.list_cluster_custom_object(HR_GROUP, HR_VERSION, HR_PLURAL)
    tracker = make_tracker()
    for obj in listed["items"]:
        tracker.handle("ADDED", hr_view(obj), None)
    return clock()


async def _raw_pages(emu: Child) -> float:
    url = f"{emu.info['url']}/apis/{HR_GROUP}/{HR_VERSION}/{HR_PLURAL}"
    headers = {"Authorization": f"Bearer {emu.info['token']}"}
    async with aiohttp.ClientSession() as session:
        clock = Stopwatch()
        params = {"limit": str(PAGE)}
        while True:
            async with session.get(url, params=params, headers=headers) as resp:
                body = await resp.read()
            match = _CONTINUE.search(body, 0, 1024)
            if match is None:
                return clock()
            params["continue"] = match.group(1).decode()


async def _one_size(ctx: Context, n: int) -> Figure:
    from kubernetes_asyncio import client as k8s_client

    emu = await ctx.emulator(n)
    kubeconfig = emu.info["kubeconfig"]
    api_client = await library_client(kubeconfig)
    api = k8s_client.CustomObjectsApi(api_client)
    rounds = ctx.sizes.sync_rounds if n <= 10_000 else max(1, ctx.sizes.sync_rounds - 2)
    samples: dict[str, list[float]] = {
        "fluxwatch": [],
        "baseline": [],
        "emulator": [],
        "fluxwatch_gc_frozen": [],
    }
    try:
        await _raw_pages(emu)  # warm-up
        for _ in range(rounds):
            gc.collect()
            samples["emulator"].append(await _raw_pages(emu))
            gc.collect()
            samples["fluxwatch"].append(await _fluxwatch(kubeconfig))
            gc.collect()
            samples["baseline"].append(await _baseline(api))
            gc.collect()
            gc.freeze()
            try:
                samples["fluxwatch_gc_frozen"].append(await _fluxwatch(kubeconfig))
            finally:
                gc.unfreeze()
        gc.collect()
        like_for_like = await _baseline_with_views(api)
    finally:
        await api_client.close()
    fw, base, raw = (median(samples[k]) for k in ("fluxwatch", "baseline", "emulator"))
    ctx.log(f"  sync {n:,}: fluxwatch {fw:.3f}s, baseline {base:.3f}s, raw pages {raw:.3f}s")
    goal = f"<= {GOAL_SECONDS_10K}s" if n == 10_000 else ""
    return Figure(
        "sync",
        f"initial sync, {n:,} HRs",
        fw,
        "s",
        base,
        "kubernetes_asyncio list_cluster_custom_object (one call)",
        better="lower",
        goal=goal,
        goal_met=(fw <= GOAL_SECONDS_10K) if goal else None,
        bound=(
            f"CPU of the one core: reading {n:,} objects (msgspec typed pages + tracker); the "
            f"emulator serves the same pages raw in {raw:.3f}s"
        ),
        details={
            "releases": n,
            "rounds": rounds,
            "page_size": PAGE,
            "samples_s": samples,
            "emulator_raw_pages_s": raw,
            "fluxwatch_after_gc_freeze_s": median(samples["fluxwatch_gc_frozen"]),
            "baseline_plus_views_and_tracker_s": like_for_like,
            "per_release_us": fw / n * 1e6,
        },
    )


async def run(ctx: Context) -> list[Figure]:
    return [await _one_size(ctx, n) for n in ctx.sizes.sync_sizes]
