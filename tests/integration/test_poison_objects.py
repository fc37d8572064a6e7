"""Objects no reader expects, against the real informer over HTTP: none may end it.

A HelmRelease's ``spec.values`` is free-form (``x-kubernetes-preserve-unknown-fields``)
and kube-apiserver takes JSON nested up to 10,000 levels (Go's ``encoding/json``
limit), far beyond what orjson (1,024) and msgspec (Python's recursion limit, about
1,000) read. The embedded cluster takes and serves such objects like the real one;
the informer must read them (no view field is that deep) and go on with the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from fluxwatch.kube.client import HELMRELEASES, KubeClient
from fluxwatch.kube.codec import loads
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC, hr_event, hr_page
from fluxwatch.kube.informer import Informer
from fluxwatch.sim import deepjson
from fluxwatch.sim.apiserver import ApiServer

HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
HR = "helmreleases.helm.toolkit.fluxcd.io"


def helmrelease(name: str, values_depth: int = 0) -> dict[str, Any]:
    """A HelmRelease whose whole document is nested ``values_depth + 2`` levels deep
    (the root object, ``spec``, then ``values`` and the objects inside it)."""
    values: Any = "leaf"
    for _ in range(values_depth):
        values = {"a": values}
    spec: dict[str, Any] = {
        "interval": "10m",
        "chart": {"spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": "r"}}},
    }
    if values_depth:
        spec["values"] = values
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": spec,
    }


async def post(http: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, str]:
    data = deepjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    async with http.post(HRS, data=data, headers=headers) as resp:
        return resp.status, await resp.text()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout}s")


async def test_the_embedded_cluster_refuses_json_nested_deeper_than_10000_levels(
    http: aiohttp.ClientSession,
) -> None:
    status, text = await post(http, helmrelease("too-deep", 10_001 - 2))
    assert status == 400, text[:300]
    assert "exceeded max depth" in text
    status, text = await post(http, helmrelease("deep", 2000))
    assert status == 201, text[:300]
    async with http.get(f"{HRS}/deep") as resp:
        assert resp.status == 200
        stored = await resp.read()
    # Every level of values came back (its managedFields mirror them as "f:a").
    assert stored.count(b'{"a":') == 2000


def test_the_embedded_clusters_decoder_takes_exactly_10000_levels() -> None:
    """Go's scanner: ``maxNestingDepth`` 10,000 (building and storing an object that deep
    over HTTP takes seconds in the embedded cluster, so the limit is shown here)."""
    assert deepjson.loads(b"[" * 10_000 + b"]" * 10_000) is not None
    with pytest.raises(deepjson.TooDeep, match="exceeded max depth"):
        deepjson.loads(b"[" * 10_001 + b"]" * 10_001)


async def test_deeply_nested_helmreleases_neither_end_the_informer_nor_hide_the_others(
    apiserver: ApiServer, http: aiohttp.ClientSession, client: KubeClient
) -> None:
    """995 levels end msgspec's reading (RecursionError), 2,000 orjson's; both are in the
    first list and arrive again on the watch, between ordinary releases."""
    for name, depth in (("before", 0), ("deep-995", 995), ("deep-2000", 2000)):
        status, text = await post(http, helmrelease(name, depth))
        assert status == 201, text[:300]
    seen: list[tuple[str, str]] = []
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        lambda etype, view, _old: seen.append((etype, view.name)),
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        assert {name for (_ns, name) in informer.cache} == {"before", "deep-995", "deep-2000"}
        for status, text in [
            await post(http, helmrelease("watched-995", 995)),
            await post(http, helmrelease("watched-3000", 3000)),
            await post(http, helmrelease("after", 0)),
        ]:
            assert status == 201, text[:300]
        await until(lambda: ("ADDED", "after") in seen or task.done())
        assert not task.done(), task
        assert ("ADDED", "watched-995") in seen and ("ADDED", "watched-3000") in seen
        for name in ("deep-995", "deep-2000", "watched-995", "watched-3000"):
            view = informer.cache[("apps", name)]
            # Readable: nothing a view needs is deep, so the release is tracked as usual.
            assert view.malformed is None, view.malformed
            assert view.release_name == name
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_unreadable_helmrelease_is_malformed_named_once_and_the_rest_goes_on(
    apiserver: ApiServer, client: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, lambda _e, view, _o: seen.append(view.name)
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        bad = helmrelease("bad", 1500)
        bad["status"] = {"conditions": "Ready"}  # written before the schema said otherwise
        with caplog.at_level(logging.WARNING, logger="fluxwatch.kube.informer"):
            stored = apiserver.store.create(HR, bad, validate=False)
            apiserver.store.patch(HR, "apps", "bad", {"metadata": {"labels": {"touched": "yes"}}})
            apiserver.store.create(HR, helmrelease("good"))
            await until(lambda: "good" in seen)
        assert stored["metadata"]["name"] == "bad"
        view = informer.cache[("apps", "bad")]
        assert view.malformed == "status.conditions: expected an array, got string"
        named = [r for r in caplog.records if r.getMessage().startswith("cannot read object")]
        assert len(named) == 1, [r.getMessage() for r in named]  # not again on the patch
        assert getattr(named[0], "object", None) == "bad"
        assert "status.conditions" in named[0].getMessage()
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_the_typed_readers_hand_a_deep_document_to_the_general_way() -> None:
    body = deepjson.dumps(helmrelease("deep", 995))
    line = b'{"type":"ADDED","object":' + body + b"}"
    page = b'{"metadata":{"resourceVersion":"7"},"items":[' + body + b"]}"
    assert hr_event(line) is None
    assert hr_page(page) is None
    doc = loads(deepjson.dumps(helmrelease("deeper", 5000)))
    assert doc["metadata"]["name"] == "deeper"


def test_loads_keeps_strings_with_brackets_and_refuses_what_is_no_json() -> None:
    deep = b'{"s":"]}\\"[{","v":' + b"[" * 3000 + b"]" * 3000 + b"}"
    assert loads(deep)["s"] == ']}"[{'
    with pytest.raises(ValueError):
        loads(b'{"v":' + b"[" * 3000 + b"]" * 2999 + b"}")
