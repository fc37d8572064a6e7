"""Fault injection (5xx, 429 with Retry-After, dropped watches, latency, compaction)
and the request/byte statistics that tests and benchmarks read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from fluxwatch.sim.apiserver import ApiServer

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
APPS_HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
HR = Callable[..., dict[str, Any]]


async def status_of(http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> int:
    async with http.request(method, path, **kw) as resp:
        await resp.read()
        return resp.status


async def test_fail_next_fails_that_many_requests_with_a_500_status(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    apiserver.faults.fail_next(2, code=500)
    async with http.get(APPS_HRS) as resp:
        body = await resp.json()
        assert resp.status == 500
    assert body["message"] == "etcdserver: request timed out"
    assert body["kind"] == "Status"
    assert await status_of(http, "GET", APPS_HRS) == 500
    assert await status_of(http, "GET", APPS_HRS) == 200


async def test_a_429_carries_retry_after_header(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    """The answer's form (APF's plain text) is a conformance case (test_pushback.py)."""
    apiserver.faults.fail_next(1, code=429, retry_after=3)
    async with http.get(APPS_HRS) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "3"


def test_only_the_codes_a_real_server_pushes_back_with_can_be_injected(
    apiserver: ApiServer,
) -> None:
    with pytest.raises(ValueError, match=r"one of \(429, 500, 503, 504\), not 502"):
        apiserver.faults.fail_next(1, code=502)


async def test_watch_requests_count_as_requests_to_fail(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    apiserver.faults.fail_next(1, code=503)
    assert await status_of(http, "GET", APPS_HRS, params={"watch": "1"}) == 503


async def test_failures_can_target_one_verb(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    apiserver.faults.fail_next(1, code=500, verb="patch")
    assert await status_of(http, "GET", f"{APPS_HRS}/podinfo") == 200
    patch = {"headers": {"Content-Type": "application/merge-patch+json"}, "json": {}}
    assert await status_of(http, "PATCH", f"{APPS_HRS}/podinfo", **patch) == 500
    assert await status_of(http, "PATCH", f"{APPS_HRS}/podinfo", **patch) == 200


async def test_discovery_is_never_failed(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.faults.fail_next(1)
    assert await status_of(http, "GET", "/apis") == 200
    assert await status_of(http, "GET", APPS_HRS) == 500


async def test_dropped_watches_break_mid_stream(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    async with http.get(APPS_HRS, params={"watch": "1"}) as resp:
        line = await resp.content.readline()
        assert orjson.loads(line)["type"] == "ADDED"
        assert apiserver.faults.drop_watches() == 1
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(resp.content.read(), 2)
    assert not apiserver.store.table(HR_KEY).watchers


async def test_cleanly_dropped_watches_end_like_a_server_timeout(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(APPS_HRS, params={"watch": "1"}) as resp:
        await asyncio.sleep(0.01)
        assert apiserver.faults.drop_watches(clean=True) == 1
        assert await asyncio.wait_for(resp.content.read(), 2) == b""


async def test_latency_delays_every_request(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    apiserver.faults.latency = 0.1
    started = time.monotonic()
    assert await status_of(http, "GET", APPS_HRS) == 200
    assert time.monotonic() - started >= 0.1


async def test_stats_count_requests_and_response_bytes_per_verb_and_resource(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    async with http.post(APPS_HRS, json=hr("podinfo", "apps")) as resp:
        created = await resp.read()
    async with http.get(APPS_HRS) as resp:
        listed = await resp.read()
    patch = {
        "headers": {"Content-Type": "application/merge-patch+json"},
        "json": {"status": {"a": 1}},
    }
    await status_of(http, "PATCH", f"{APPS_HRS}/podinfo/status", **patch)
    await status_of(http, "GET", f"{APPS_HRS}/missing")
    await status_of(http, "GET", "/api/v1/namespaces/apps/secrets")
    stats = apiserver.stats
    assert stats.requests[("create", HR_KEY)] == 1
    assert stats.bytes[("create", HR_KEY)] == len(created)
    assert stats.requests[("list", HR_KEY)] == 1
    assert stats.bytes[("list", HR_KEY)] == len(listed)
    assert stats.requests[("patch", f"{HR_KEY}/status")] == 1
    assert stats.requests[("get", HR_KEY)] == 1, "errors count too"
    assert stats.bytes[("get", HR_KEY)] > 0
    assert stats.requests[("list", "secrets")] == 1
    stats.reset()
    assert not stats.requests and not stats.bytes


async def test_stats_count_watch_bytes_as_they_stream(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    apiserver.max_watch_timeout = 0.1  # the server's own deadline: timeoutSeconds is whole seconds
    async with http.get(APPS_HRS, params={"watch": "1"}) as resp:
        body = await resp.read()
    assert apiserver.stats.requests[("watch", HR_KEY)] == 1
    assert apiserver.stats.bytes[("watch", HR_KEY)] == len(body) > 0


def test_the_fault_hooks_answer_loopback_clients_only() -> None:
    from fluxwatch.sim.control import loopback

    assert loopback("127.0.0.1") and loopback("::1") and loopback("127.8.9.10")
    assert not loopback("10.0.0.7") and not loopback("192.168.1.2") and not loopback("::ffff:1")
    assert not loopback(None) and not loopback("not-an-address")


async def test_the_fault_hooks_are_not_served_unless_asked(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    """A plain embedded cluster is a plain API server: the control path is a 404 there."""
    assert not apiserver.control
    async with http.post("/fluxwatch-sim/faults/fail?n=5") as resp:
        assert resp.status == 404
    async with http.get("/api/v1/namespaces") as resp:
        assert resp.status == 200


async def test_a_cut_after_serving_lands_the_write_and_loses_its_answer(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    apiserver.faults.cut_next(1, verb="patch", resource=HR_KEY)
    patch = {
        "headers": {"Content-Type": "application/merge-patch+json"},
        "json": {"spec": {"suspend": True}},
    }
    assert await status_of(http, "GET", f"{APPS_HRS}/podinfo") == 200
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await status_of(http, "PATCH", f"{APPS_HRS}/podinfo", **patch)
    assert apiserver.store.get(HR_KEY, "apps", "podinfo")["spec"]["suspend"] is True
    assert await status_of(http, "PATCH", f"{APPS_HRS}/podinfo", **patch) == 200


async def test_a_cut_before_serving_writes_nothing(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    apiserver.faults.cut_next(1, served=False, verb="patch")
    patch = {
        "headers": {"Content-Type": "application/merge-patch+json"},
        "json": {"spec": {"suspend": True}},
    }
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await status_of(http, "PATCH", f"{APPS_HRS}/podinfo", **patch)
    assert apiserver.store.get(HR_KEY, "apps", "podinfo")["spec"].get("suspend") is not True
    with pytest.raises(ValueError, match="drop_watches"):
        apiserver.faults.cut_next(1, verb="watch")
