"""One memory measurement in a clean process; prints one JSON line and exits.

``python -m bench.memchild --side fluxwatch|baseline --measure rss|traced --kubeconfig K``

- ``fluxwatch rss``: the real daemon (:class:`fluxwatch.app.Daemon`, leader
  election off, no alert providers) until its informers are synced; peak RSS
  (``VmHWM``, see ``_peak``).
- ``fluxwatch traced``: a HelmRelease informer feeding a tracker, under
  tracemalloc; the bytes still allocated after the sync (the cache, the
  records, the strings and caches they share), per release.
- ``baseline rss`` / ``baseline traced``: the library's
  ``list_cluster_custom_object`` result kept as dicts.

The emulator lives in another process, so RSS is the measured side's own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import HR_GROUP, HR_PLURAL, HR_VERSION


def _rss_now() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def _peak() -> int:
    """This process's peak RSS. ``getrusage``'s ``ru_maxrss`` would do, but Linux carries
    it over from the parent across fork and exec (a child of a 100 MB benchmark process
    starts at 100 MB); ``VmHWM`` belongs to this process's own address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


async def _fluxwatch_rss(kubeconfig: str, workdir: str) -> dict[str, Any]:
    from fluxwatch.app import Daemon
    from fluxwatch.kube.client import KubeClient
    from fluxwatch.settings import Settings

    settings = Settings.model_validate(
        {
            "kubeconfig": kubeconfig,
            "leader": {"enabled": False, "namespace": "fluxwatch-system"},
            "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
        }
    )
    before = _peak()
    client = await KubeClient.from_config(kubeconfig)
    daemon = Daemon(settings, client)
    task = asyncio.create_task(daemon.run(install_signals=False))
    while not daemon.informers or not all(i.synced.is_set() for i in daemon.informers):
        if task.done():
            raise RuntimeError(f"the daemon stopped: {task.result()}")
        await asyncio.sleep(0.02)
    tracked = len(daemon.tracker) if daemon.tracker is not None else 0
    peak, now = _peak(), _rss_now()
    daemon.stop()
    await task
    await client.close()
    return {"peak_rss": peak, "rss_after_sync": now, "peak_rss_before": before, "tracked": tracked}


async def _fluxwatch_traced(kubeconfig: str) -> dict[str, Any]:
    from bench.engine import make_tracker
    from fluxwatch.kube.client import HELMRELEASES, KubeClient
    from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC
    from fluxwatch.kube.informer import Informer

    client = await KubeClient.from_config(kubeconfig)
    await client.request("GET", HELMRELEASES.path(), query={"limit": 1})  # open the session
    tracemalloc.start()
    gc.collect()
    start = tracemalloc.get_traced_memory()[0]
    tracker = make_tracker()
    informer: Informer[Any] = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, tracker.handle)
    await informer._relist()
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    await client.close()
    return {"retained": retained - start, "traced_peak": peak - start, "tracked": len(tracker)}


async def _baseline(kubeconfig: str, traced: bool) -> dict[str, Any]:
    from kubernetes_asyncio import client as k8s_client

    from bench.common import library_client

    api_client = await library_client(kubeconfig)
    api = k8s_client.CustomObjectsApi(api_client)
    await api.list_cluster_custom_object(HR_GROUP, HR_VERSION, HR_PLURAL, limit=1)
    before = _peak()
    if traced:
        tracemalloc.start()
        gc.collect()
    start = tracemalloc.get_traced_memory()[0] if traced else 0
    listed = await api.list_cluster_custom_object(HR_GROUP, HR_VERSION, HR_PLURAL)
    items = listed["items"]
    del listed
    gc.collect()
    out: dict[str, Any] = {"tracked": len(items)}
    if traced:
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(retained=retained - start, traced_peak=peak - start)
    else:
        out.update(peak_rss=_peak(), rss_after_sync=_rss_now(), peak_rss_before=before)
    await api_client.close()
    return out


async def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memchild")
    p.add_argument("--side", choices=("fluxwatch", "baseline"), required=True)
    p.add_argument("--measure", choices=("rss", "traced"), required=True)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--workdir", default=".")
    args = p.parse_args(argv)
    from bench.common import quiet_logs

    quiet_logs()
    if args.side == "fluxwatch":
        if args.measure == "rss":
            result = await _fluxwatch_rss(args.kubeconfig, args.workdir)
        else:
            result = await _fluxwatch_traced(args.kubeconfig)
    else:
        result = await _baseline(args.kubeconfig, args.measure == "traced")
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
