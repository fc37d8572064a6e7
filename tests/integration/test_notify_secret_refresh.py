"""Providers follow their Secret: a rotated key rebuilds the provider, a late Secret
makes an unavailable provider available, an unreadable one changes nothing.

The Secret is read through the real client from the embedded cluster
(``secretRef``) or from a directory laid out like a mounted Secret
(``secretPath``); alerts go to real local receivers over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_notify_receiver import Receiver

from fluxwatch.kube.client import KubeClient
from fluxwatch.kube.patch import KubeSecretReader
from fluxwatch.notify import EventFactory, InvolvedObject, MemoryMetrics, NotifySettings, Router
from fluxwatch.notify.errors import NotifyTaskDied
from fluxwatch.sim.apiserver import ApiServer

FACTORY = EventFactory("fluxwatch-0")
SECRETS = "secrets"  # the embedded cluster's key for core/v1 Secrets
NAMESPACE = "fluxwatch-system"


def event(i: int) -> Any:
    hr = InvolvedObject.helmrelease("apps", f"hr-{i}")
    return FACTORY.recovery_started(hr, strategy="force-reconcile", attempt=1, max_attempts=3)


def settings(source: dict[str, Any], **extra: Any) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "providers": [{"name": "hook", "type": "generic", **source}],
            "alerts": [{"name": "all", "providerRef": {"name": "hook"}}],
            **extra,
        }
    )


def secret(address: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hook", "namespace": NAMESPACE},
        "data": {"address": base64.b64encode(address.encode()).decode()},
    }


def counts(router: Router) -> dict[tuple[str, str], int]:
    assert isinstance(router.metrics, MemoryMetrics)
    return dict(router.metrics.counts)


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    async with Receiver() as first, Receiver() as second:
        yield first, second


@pytest.fixture
async def kube(apiserver: ApiServer, tmp_path: Path) -> AsyncIterator[KubeClient]:
    client = await KubeClient.from_config(apiserver.write_kubeconfig(tmp_path / "kubeconfig"))
    yield client
    await client.close()


async def test_a_secret_created_late_makes_the_provider_available_and_a_rotation_moves_it(
    apiserver: ApiServer,
    kube: KubeClient,
    receivers: tuple[Receiver, Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = receivers
    router = await Router.from_settings(
        settings({"secretRef": {"name": "hook"}}),
        namespace=NAMESPACE,
        secret_reader=KubeSecretReader(kube),
    )
    try:
        assert "hook" in router.problems  # no Secret yet
        router.publish(event(0))
        await router.flush()
        assert counts(router) == {("hook", "failed"): 1}

        apiserver.store.create(SECRETS, secret(first.url))
        assert await router.refresh_provider("hook")
        assert router.problems == {}
        router.publish(event(1))
        await router.flush()
        assert [r.json()["involvedObject"]["name"] for r in first.delivered] == ["hr-1"]

        # Rotated: the next event goes to the new address, none to the old.
        rotated = secret(second.url)
        rotated["metadata"]["resourceVersion"] = apiserver.store.get(SECRETS, NAMESPACE, "hook")[
            "metadata"
        ]["resourceVersion"]
        apiserver.store.update(SECRETS, rotated)
        assert await router.refresh_provider("hook")
        router.publish(event(2))
        await router.flush()
        assert [r.json()["involvedObject"]["name"] for r in second.delivered] == ["hr-2"]
        assert len(first.delivered) == 1
        assert not await router.refresh_provider("hook"), "unchanged keys rebuild nothing"

        # The Secret is gone: the working provider keeps its keys and says why.
        apiserver.store.delete(SECRETS, NAMESPACE, "hook")
        with caplog.at_level(logging.WARNING, "fluxwatch.notify.router"):
            assert not await router.refresh_provider("hook")
        assert any("cannot read its secret again" in r.getMessage() for r in caplog.records)
        router.publish(event(3))
        await router.flush()
        assert [r.json()["involvedObject"]["name"] for r in second.delivered] == ["hr-2", "hr-3"]
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert first.url not in messages and second.url not in messages
    finally:
        await router.close()


@pytest.mark.looptime
async def test_a_mounted_secret_is_read_again_every_refresh_interval(
    receivers: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    first, second = receivers
    mounted = tmp_path / "hook"
    mounted.mkdir()
    (mounted / "address").write_text(first.url)
    router = await Router.from_settings(
        settings({"secretPath": str(mounted)}, secretRefreshInterval="5m")
    )
    try:
        router.publish(event(0))
        await router.flush()
        (mounted / "address").write_text(second.url)
        await asyncio.sleep(299)
        router.publish(event(1))
        await router.flush()
        await asyncio.sleep(2)  # the five minutes are up: read again
        for _ in range(50):
            if router.providers["hook"].address == second.url:
                break
            await asyncio.sleep(0.1)
        router.publish(event(2))
        await router.flush()
        assert [r.json()["involvedObject"]["name"] for r in first.delivered] == ["hr-0", "hr-1"]
        assert [r.json()["involvedObject"]["name"] for r in second.delivered] == ["hr-2"]
    finally:
        await router.close()


async def test_a_delivery_in_flight_finishes_on_the_keys_it_started_with(
    receivers: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    first, second = receivers
    first.hold = asyncio.Event()
    mounted = tmp_path / "hook"
    mounted.mkdir()
    (mounted / "address").write_text(first.url)
    router = await Router.from_settings(settings({"secretPath": str(mounted)}))
    try:
        router.publish(event(0))
        await asyncio.sleep(0.1)  # the POST is at the held receiver
        (mounted / "address").write_text(second.url)
        assert await router.refresh_provider("hook")
        router.publish(event(1))
        await second.wait_for(1)
        first.hold.set()
        await router.flush()
        assert [r.json()["involvedObject"]["name"] for r in first.delivered] == ["hr-0"]
        assert [r.json()["involvedObject"]["name"] for r in second.delivered] == ["hr-1"]
        assert counts(router) == {("hook", "sent"): 2}
    finally:
        first.hold.set()
        await router.close()


async def test_a_refresher_that_ends_stops_the_router_supervision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The refresher handles its own errors, so its end is a bug (here: a stray cancel);
    it is logged and ``supervise()`` raises, as for a worker."""
    mounted = tmp_path / "hook"
    mounted.mkdir()
    (mounted / "address").write_text("http://127.0.0.1:9/")
    router = await Router.from_settings(settings({"secretPath": str(mounted)}))
    try:
        supervised = asyncio.create_task(router.supervise())
        refresher = router._refresher  # the task under test
        assert refresher is not None and refresher.get_name() == "notify:secrets"
        refresher.cancel()
        with pytest.raises(NotifyTaskDied, match="notification task notify:secrets was cancelled"):
            await asyncio.wait_for(supervised, 5)
        assert any(
            "notify:secrets was cancelled; stopping" in r.getMessage() for r in caplog.records
        )
    finally:
        await router.close()
