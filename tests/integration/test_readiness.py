"""``/readyz`` of a running daemon tells a live cache from one the API server left.

Ready means every informer's cache is synced and a watch is open, or its last
list or good watch ended less than a grace period ago: a reconnect is a blink,
an outage is a cache going stale. The grace is shortened here so that the
outage shows in a fraction of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from fluxwatch.app import Daemon, build_router
from fluxwatch.kube.client import HELMRELEASES, KubeClient
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC
from fluxwatch.kube.informer import Backoff, Informer
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.telemetry.metrics import Metrics

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
GRACE = 0.5


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    for _ in range(int(timeout / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout}s: {what}")


async def holds(check: Callable[[], bool]) -> bool:
    return check()


async def test_readyz_fails_while_the_api_fails_and_recovers_after(
    make_apiserver: Callable[..., Awaitable[ApiServer]],
    hr: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    api = await make_apiserver()
    api.store.create(HR_KEY, hr("podinfo", "apps"))
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    client = await KubeClient.from_config(kubeconfig)
    settings = Settings.model_validate(
        {
            "kubeconfig": str(kubeconfig),
            "shutdown_timeout": 5.0,
            "leader": {"namespace": "fluxwatch-system", "identity": "ready"},
            "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
        }
    )
    metrics = Metrics()
    daemon = Daemon(
        settings, client, metrics=metrics, router=await build_router(settings, client, metrics)
    )
    task = asyncio.create_task(daemon.run(install_signals=False))
    last: list[str] = [""]
    try:
        async with aiohttp.ClientSession() as http:

            async def readyz() -> int:
                assert not task.done(), task
                if daemon.server is None or "health" not in daemon.server.ports:
                    return 0
                port = daemon.server.ports["health"]
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    last[0] = await resp.text()
                    return resp.status

            async def answers(status: int) -> bool:
                return await readyz() == status

            await eventually(lambda: answers(200), 10, "ready once synced")
            for informer in daemon.informers:
                informer.ready_grace = GRACE
            # The grace counts from each informer's last contact: cut while every watch is
            # open, so that contact is the cut itself, not a reconnect a moment before it.
            await eventually(
                lambda: holds(lambda: all(i.watching for i in daemon.informers)),
                10,
                "every watch open",
            )
            # The API server goes away: every request fails, the open watches are cut.
            api.faults.fail_next(10**6, 503, retry_after=None)
            api.faults.drop_watches()
            loop = asyncio.get_running_loop()
            cut = loop.time()
            await eventually(lambda: answers(503), 10, "not ready during the outage")
            assert loop.time() - cut >= GRACE  # a blink is not an outage

            # Each informer's grace ends at its own watch's end: the Lease informer's may
            # end a moment before the HelmRelease informer's.
            async def helmreleases_failed() -> bool:
                return await answers(503) and "[-]informer-helmreleases failed" in last[0]

            await eventually(helmreleases_failed, 2, "the HelmRelease informer failed too")
            api.faults.clear()
            await eventually(lambda: answers(200), 20, "ready again once the API is back")
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 15) == 0
        await client.close()


async def test_an_informer_of_a_stopped_api_server_is_ready_only_for_the_grace(
    tmp_path: Path,
) -> None:
    api = ApiServer()
    await api.start()
    client = await KubeClient.from_config(api.write_kubeconfig(tmp_path / "kubeconfig"))
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        ready_grace=GRACE,
        backoff=Backoff(base=0.05, cap=0.2, jitter=0.0),
    )
    assert not informer.ready()  # nothing listed yet
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        await eventually(lambda: holds(lambda: informer._watching), 5, "a watch open")
        await asyncio.sleep(GRACE * 1.5)
        assert informer.ready()  # an open watch: ready however long ago the list was
        await api.stop()
        stopped = asyncio.get_running_loop().time()
        assert informer.ready()  # within the grace
        await eventually(lambda: holds(lambda: not informer.ready()), 5, "not ready")
        assert asyncio.get_running_loop().time() - stopped >= GRACE * 0.9
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
