"""3. Memory: retained bytes per tracked release, and peak RSS, at several sizes.

Each number comes from a fresh process (``bench.memchild``) so that nothing
measured before leaks into it, with the emulator in yet another process:

- retained bytes per release: tracemalloc around a HelmRelease informer
  syncing into a tracker (informer cache + tracker records + the strings,
  label sets and caches they share), after a full collection, divided by
  the number of releases; baseline: the library's list result kept as dicts;
- peak RSS: ``VmHWM`` of the real daemon (imports, telemetry server,
  Lease informer, everything) once synced; baseline: a process that only
  imported kubernetes_asyncio and keeps the library's list result.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.common import Child, Context, Figure

GOAL_PER_RELEASE = 1024
GOAL_RSS_10K = 150 * 1024 * 1024
MB = 1024 * 1024


async def _child(kubeconfig: str, side: str, measure: str) -> dict[str, Any]:
    child = await Child.start(
        "bench.memchild",
        "--side",
        side,
        "--measure",
        measure,
        "--kubeconfig",
        kubeconfig,
        timeout=600,
    )
    await child.stop()
    return child.info


async def _one_size(ctx: Context, n: int) -> list[Figure]:
    emu = await ctx.emulator(n)
    kc = emu.info["kubeconfig"]
    runs = [
        ("fluxwatch", "traced"),
        ("baseline", "traced"),
        ("fluxwatch", "rss"),
        ("baseline", "rss"),
    ]
    # Timing does not matter here: the four processes run side by side.
    results = await asyncio.gather(*(_child(kc, side, measure) for side, measure in runs))
    got = dict(zip(runs, results, strict=True))
    fw_t, base_t = got[("fluxwatch", "traced")], got[("baseline", "traced")]
    fw_r, base_r = got[("fluxwatch", "rss")], got[("baseline", "rss")]
    for name, result in got.items():
        if result.get("tracked") != n:
            raise RuntimeError(f"{name} tracked {result.get('tracked')} releases, not {n}")
    per = fw_t["retained"] / n
    base_per = base_t["retained"] / n
    ctx.log(
        f"  memory {n:,}: {per:,.0f} B/release (baseline {base_per:,.0f}), peak RSS "
        f"{fw_r['peak_rss'] / MB:.0f} MB (baseline {base_r['peak_rss'] / MB:.0f} MB)"
    )
    rss_goal = n == 10_000
    return [
        Figure(
            "memory",
            f"retained bytes per release, {n:,} HRs",
            per,
            "B",
            base_per,
            "the library's list result kept as dicts",
            better="lower",
            goal=f"<= {GOAL_PER_RELEASE} B",
            goal_met=per <= GOAL_PER_RELEASE,
            bound="the HRView and its parts (frozen slotted dataclasses), the cache dict "
            "entry and key, the tracker's Record and Verdict",
            details={"releases": n, "fluxwatch": fw_t, "baseline": base_t},
        ),
        Figure(
            "memory",
            f"peak RSS, {n:,} HRs",
            fw_r["peak_rss"] / MB,
            "MB",
            base_r["peak_rss"] / MB,
            "kubernetes_asyncio only, list result kept as dicts",
            better="lower",
            goal="<= 150 MB" if rss_goal else "",
            goal_met=fw_r["peak_rss"] <= GOAL_RSS_10K if rss_goal else None,
            bound=(
                f"the interpreter and imports ({fw_r['peak_rss_before'] / MB:.0f} MB before "
                "the client started) plus the transient list pages and the views"
            ),
            details={"releases": n, "fluxwatch": fw_r, "baseline": base_r},
        ),
    ]


async def run(ctx: Context) -> list[Figure]:
    figures: list[Figure] = []
    for n in ctx.sizes.memory_sizes:
        figures += await _one_size(ctx, n)
    return figures
