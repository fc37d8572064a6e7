"""The client under the API server's pushback, over real HTTP against the embedded
cluster: client-go's retry rule (a 429 or 5xx with Retry-After is sent again after
that wait, at most MAX_RETRIES times, whatever the verb; nothing else is), and the
errors a caller sees when the server does not give in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fluxwatch.kube.client import HELMRELEASES, MAX_RETRIES, KubeApiError, KubeClient
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC
from fluxwatch.kube.informer import Backoff, Informer
from fluxwatch.kube.patch import HelmReleaseWriter, KubeSecretReader
from fluxwatch.notify.event import EventFactory, InvolvedObject
from fluxwatch.sim.apiserver import ApiServer
from tests.conftest import kubernetes_event_router

HR = "helmreleases.helm.toolkit.fluxcd.io"


async def test_a_throttled_patch_is_sent_again_after_retry_after(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    apiserver.store.create(HR, hr("podinfo", "apps"))
    apiserver.faults.fail_next(2, code=429, retry_after=1, verb="patch")
    loop = asyncio.get_running_loop()
    started = loop.time()
    patched = await client.patch(HELMRELEASES, "apps", "podinfo", {"spec": {"suspend": True}})
    assert patched["spec"]["suspend"] is True
    assert loop.time() - started >= 2.0, "each retry waited its Retry-After"
    assert apiserver.stats.requests[("patch", HR)] == 3


async def test_a_shutting_down_server_is_asked_again_as_its_503_says(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    apiserver.store.create(HR, hr("podinfo", "apps"))
    apiserver.faults.fail_next(1, code=503, retry_after=0)
    assert (await client.get(HELMRELEASES, "apps", "podinfo"))["metadata"]["name"] == "podinfo"
    assert apiserver.stats.requests[("get", HR)] == 2


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (500, "", "etcdserver: request timed out"),
        (504, "Timeout", "Timeout: request did not complete within the allotted timeout"),
    ],
)
async def test_a_failure_without_retry_after_is_raised_at_once(
    apiserver: ApiServer,
    client: KubeClient,
    hr: Callable[..., dict[str, Any]],
    code: int,
    reason: str,
    message: str,
) -> None:
    """The caller's own loop decides: a write is not sent twice on a guess."""
    apiserver.store.create(HR, hr("podinfo", "apps"))
    apiserver.faults.fail_next(1, code=code, verb="patch")
    with pytest.raises(KubeApiError) as caught:
        await client.patch(HELMRELEASES, "apps", "podinfo", {"spec": {"suspend": True}})
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        code,
        reason,
        message,
    )
    assert caught.value.retries == 0
    assert apiserver.stats.requests[("patch", HR)] == 1
    assert apiserver.store.get(HR, "apps", "podinfo")["spec"].get("suspend") is not True


async def test_throttling_that_never_ends_is_raised_after_max_retries(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    apiserver.store.create(HR, hr("podinfo", "apps"))
    apiserver.faults.fail_next(1000, code=429, retry_after=0)
    with pytest.raises(KubeApiError) as caught:
        await HelmReleaseWriter(client).get("apps", "podinfo")
    err = caught.value
    assert (err.code, err.reason) == (429, "TooManyRequests")
    assert err.message == "Too many requests, please try again later."
    assert err.retries == MAX_RETRIES
    assert str(err) == (
        "GET /apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo: "
        "429 TooManyRequests: Too many requests, please try again later. "
        f"(still refused after {MAX_RETRIES} retries, as Retry-After asked)"
    )
    assert apiserver.stats.requests[("get", HR)] == MAX_RETRIES + 1


async def test_a_throttled_watch_opens_after_retry_after(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    apiserver.store.create(HR, hr("podinfo", "apps"))
    apiserver.faults.fail_next(1, code=429, retry_after=0, verb="watch")
    stream = await client.stream(
        HELMRELEASES.path("apps"),
        query={"watch": "true"},
        accept="application/json",
        read_timeout=5,
    )
    try:
        assert b'"ADDED"' in await anext(stream.chunks())
    finally:
        stream.release()
    assert apiserver.stats.requests[("watch", HR)] == 2


async def test_a_kubernetes_event_alert_throttled_twice_is_written_once(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """APF refuses before the handler runs, so sending the create again cannot make a
    second Event: the alert lands once, neither dropped nor doubled."""
    created = apiserver.store.create(HR, hr("podinfo", "apps"))
    router = await kubernetes_event_router(client)
    apiserver.faults.fail_next(2, code=429, retry_after=0, verb="create", resource="events")
    obj = InvolvedObject.helmrelease("apps", "podinfo", created["metadata"]["uid"])
    router.publish(EventFactory("fluxwatch-test").stuck_detected(obj, age=400, threshold=300))
    await router.close(5)
    events, _ = apiserver.store.list("events", "apps")
    assert [e["reason"] for e in events] == ["StuckDetected"]
    assert apiserver.stats.requests[("create", "events")] == 3


async def test_a_throttled_secret_read_is_read_after_retry_after(
    apiserver: ApiServer, client: KubeClient
) -> None:
    apiserver.store.create(
        "secrets",
        {"metadata": {"name": "slack", "namespace": "apps"}, "data": {"address": "aHR0cDovL3g="}},
    )
    apiserver.faults.fail_next(2, code=429, retry_after=0, verb="get", resource="secrets")
    assert await KubeSecretReader(client).read_secret("apps", "slack") == {"address": b"http://x"}
    assert apiserver.stats.requests[("get", "secrets")] == 3


async def test_an_informer_throttled_past_the_retries_loses_no_event(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """Its watch cut, then refused beyond the client's retries, the informer backs off
    and resumes from its resourceVersion: what was written meanwhile arrives, once."""
    apiserver.store.create(HR, hr("before", "apps"))
    seen: list[tuple[str, str]] = []
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        lambda etype, view, _old: seen.append((etype, view.name)),
        namespace="apps",
        backoff=Backoff(base=0.05, cap=0.2, jitter=0.0),
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        apiserver.faults.fail_next(2 * (MAX_RETRIES + 1), code=429, retry_after=0, verb="watch")
        apiserver.faults.drop_watches()
        apiserver.store.create(HR, hr("meanwhile", "apps"))
        async with asyncio.timeout(10):
            while ("ADDED", "meanwhile") not in seen:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert seen == [("ADDED", "before"), ("ADDED", "meanwhile")]
        assert apiserver.stats.requests[("list", HR)] == 1, "resumed, not listed again"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
