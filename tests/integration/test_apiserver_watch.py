"""WATCH over HTTP and in process: synthetic ADDED, replay from a resourceVersion in
order, 410 Expired, bookmarks, timeoutSeconds, selectors and metadata-only events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from fluxwatch.sim.apiserver import ApiServer, WatchFraming
from fluxwatch.sim.store import ApiError, Store

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
APPS_HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
HR = Callable[..., dict[str, Any]]
MakeServer = Callable[..., Awaitable[ApiServer]]


class Stream:
    """A watch response read line by line."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 2.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        assert line, "the stream ended"
        event: dict[str, Any] = orjson.loads(line)
        return event

    async def ended(self, timeout: float = 2.0) -> bool:
        return await asyncio.wait_for(self.resp.content.readline(), timeout) == b""


async def open_watch(
    http: aiohttp.ClientSession, path: str = APPS_HRS, **params: str
) -> tuple[aiohttp.ClientResponse, Stream]:
    headers = {"Accept": params.pop("accept")} if "accept" in params else {}
    resp = await http.get(path, params={"watch": "1", **params}, headers=headers)
    return resp, Stream(resp)


def label(event: dict[str, Any]) -> tuple[str, str]:
    return event["type"], event["object"]["metadata"].get("name", "")


async def test_watch_without_version_lists_current_objects_as_added_then_streams(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("a", "apps"))
    apiserver.store.create(HR_KEY, hr("b", "apps"))
    resp, stream = await open_watch(http)
    async with resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        assert [label(await stream.next()) for _ in range(2)] == [("ADDED", "a"), ("ADDED", "b")]
        apiserver.store.patch(HR_KEY, "apps", "a", {"spec": {"suspend": True}})
        event = await stream.next()
        assert label(event) == ("MODIFIED", "a")
        assert event["object"]["spec"]["suspend"] is True


async def test_watch_from_a_version_replays_the_history_in_order(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    store = apiserver.store
    start = store.create(HR_KEY, hr("a", "apps"))["metadata"]["resourceVersion"]
    store.create(HR_KEY, hr("b", "apps"))
    store.patch(HR_KEY, "apps", "a", {"metadata": {"labels": {"x": "1"}}})
    store.create(HR_KEY, hr("other", "infra"))
    store.delete(HR_KEY, "apps", "b")
    resp, stream = await open_watch(http, resourceVersion=start)
    async with resp:
        events = [await stream.next() for _ in range(3)]
    assert [label(e) for e in events] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(start)


async def test_watch_from_an_expired_version_sends_one_error_410_and_closes(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    rv = apiserver.store.create(HR_KEY, hr("a", "apps"))["metadata"]["resourceVersion"]
    apiserver.store.create(HR_KEY, hr("b", "apps"))
    apiserver.faults.compact()
    resp, stream = await open_watch(http, resourceVersion=rv)
    async with resp:
        assert resp.status == 200
        event = await stream.next()
        assert event["type"] == "ERROR"
        assert event["object"]["kind"] == "Status"
        assert event["object"]["code"] == 410
        assert event["object"]["reason"] == "Expired"
        assert event["object"]["message"].startswith(f"too old resource version: {rv}")
        assert await stream.ended()


async def test_history_is_bounded_so_old_versions_expire() -> None:
    store = Store(history_limit=3)
    rv = store.create("configmaps", {"metadata": {"name": "a", "namespace": "apps"}})
    for i in range(4):
        store.patch("configmaps", "apps", "a", {"data": {"i": str(i)}})
    try:
        store.watch("configmaps", "apps", rv["metadata"]["resourceVersion"])
    except ApiError as err:
        assert (err.code, err.reason) == (410, "Expired")
    else:
        raise AssertionError("a version older than the history must be refused")
    recent = str(store.resource_version - 2)
    assert [e[0] for e in _drain(store.watch("configmaps", "apps", recent))] == ["MODIFIED"] * 2


def _drain(watcher: Any) -> list[Any]:
    items = []
    while (item := watcher.pop()) is not None:
        items.append(item)
    watcher.close()
    return items


async def test_bookmarks_carry_the_current_resource_version(
    make_apiserver: MakeServer, hr: HR
) -> None:
    api = await make_apiserver(bookmark_interval=0.05)
    rv = api.store.create(HR_KEY, hr("a", "apps"))["metadata"]["resourceVersion"]
    api.store.create(HR_KEY, hr("elsewhere", "infra"))  # moves the global version
    headers = {"Authorization": f"Bearer {api.admin_token}"}
    async with aiohttp.ClientSession(base_url=api.url, headers=headers) as http:
        resp, stream = await open_watch(http, resourceVersion=rv, allowWatchBookmarks="true")
        async with resp:
            event = await stream.next()
    assert event == {
        "type": "BOOKMARK",
        "object": {
            "kind": "HelmRelease",
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "metadata": {"resourceVersion": str(api.store.resource_version)},
        },
    }


async def test_no_bookmarks_unless_asked(make_apiserver: MakeServer) -> None:
    api = await make_apiserver(bookmark_interval=0.05, max_watch_timeout=0.3)
    headers = {"Authorization": f"Bearer {api.admin_token}"}
    async with aiohttp.ClientSession(base_url=api.url, headers=headers) as http:
        resp, stream = await open_watch(http)
        async with resp:
            assert await stream.ended()


async def test_timeout_seconds_ends_the_stream_cleanly(http: aiohttp.ClientSession, hr: HR) -> None:
    """timeoutSeconds is whole seconds (an int64 query parameter); the stream ends after it."""
    started = time.monotonic()
    resp, stream = await open_watch(http, timeoutSeconds="1")
    async with resp:
        assert await stream.ended()
    assert 0.95 < time.monotonic() - started < 2.5


async def test_label_selected_watch_sees_objects_move_in_as_added_and_out_as_deleted(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    store = apiserver.store
    store.create(HR_KEY, hr("a", "apps", labels={"shard": "1"}))
    store.create(HR_KEY, hr("b", "apps", labels={"shard": "2"}))
    resp, stream = await open_watch(http, labelSelector="shard=1")
    async with resp:
        assert label(await stream.next()) == ("ADDED", "a")
        store.patch(HR_KEY, "apps", "b", {"metadata": {"labels": {"shard": "1"}}})
        assert label(await stream.next()) == ("ADDED", "b")
        moved = store.patch(HR_KEY, "apps", "a", {"metadata": {"labels": {"shard": "2"}}})
        gone = await stream.next()
        assert label(gone) == ("DELETED", "a")
        assert gone["object"]["metadata"]["labels"] == {"shard": "1"}, "as last seen"
        assert gone["object"]["metadata"]["resourceVersion"] == moved["metadata"]["resourceVersion"]
        store.patch(HR_KEY, "apps", "a", {"spec": {"suspend": True}})  # outside: unseen
        store.patch(HR_KEY, "apps", "b", {"spec": {"suspend": True}})
        assert label(await stream.next()) == ("MODIFIED", "b")


async def test_field_selected_watch_follows_one_object(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    store = apiserver.store
    rv = str(store.resource_version)
    resp, stream = await open_watch(http, resourceVersion=rv, fieldSelector="metadata.name=b")
    async with resp:
        store.create(HR_KEY, hr("a", "apps"))
        store.create(HR_KEY, hr("b", "apps"))
        assert label(await stream.next()) == ("ADDED", "b")


async def test_namespaced_watch_ignores_other_namespaces(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    resp, stream = await open_watch(http, resourceVersion=str(apiserver.store.resource_version))
    async with resp:
        apiserver.store.create(HR_KEY, hr("x", "infra"))
        apiserver.store.create(HR_KEY, hr("y", "apps"))
        assert label(await stream.next()) == ("ADDED", "y")


async def test_metadata_only_watch_events_carry_partial_object_metadata(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    resp, stream = await open_watch(
        http,
        "/api/v1/namespaces/apps/secrets",
        accept="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
    )
    async with resp:
        apiserver.store.create(
            "secrets", {"metadata": {"name": "s", "namespace": "apps"}, "data": {"k": "dg=="}}
        )
        event = await stream.next()
    assert event["type"] == "ADDED"
    assert event["object"]["kind"] == "PartialObjectMetadata"
    assert "data" not in event["object"]


async def test_send_initial_events_ends_with_an_annotated_bookmark(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("a", "apps"))
    resp, stream = await open_watch(
        http,
        sendInitialEvents="true",
        allowWatchBookmarks="true",
        resourceVersionMatch="NotOlderThan",
    )
    async with resp:
        assert label(await stream.next()) == ("ADDED", "a")
        bookmark = await stream.next()
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_in_process_watcher_is_an_async_iterator_that_close_ends() -> None:
    store = Store()
    watcher = store.watch(HR_KEY, "apps", str(store.resource_version))
    store.create(HR_KEY, {"metadata": {"name": "a", "namespace": "apps"}})

    async def consume() -> list[tuple[str, str]]:
        return [(e.type, e.object["metadata"]["name"]) async for e in watcher]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    store.delete(HR_KEY, "apps", "a")
    await asyncio.sleep(0)
    watcher.close()
    assert await asyncio.wait_for(task, 1) == [("ADDED", "a"), ("DELETED", "a")]
    store.create(HR_KEY, {"metadata": {"name": "b", "namespace": "apps"}})
    assert watcher.pop() is None, "a closed watcher receives nothing"


async def test_a_watch_whose_client_leaves_is_released(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    resp, _ = await open_watch(http)
    table = apiserver.store.table(HR_KEY)
    assert len(table.watchers) == 1
    resp.close()
    for _ in range(50):
        if not table.watchers:
            break
        await asyncio.sleep(0.01)
    assert not table.watchers


# ---- the HTTP chunks a watch arrives in (kube-apiserver's watch handler behind net/http) ----


def test_framing_sends_a_large_event_alone_and_packs_small_ones_in_2_kib_chunks() -> None:
    framing = WatchFraming()
    # An event of 2 KiB or more, to an empty buffer: one chunk, as written.
    assert framing.write(b"a" * 3000) == [b"a" * 3000]
    # Small ones wait in the buffer; the one that overflows it fills it to 2,048 bytes,
    # and what is left waits for the next write or the flush.
    assert framing.write(b"b" * 1500) == []
    assert framing.write(b"c" * 1000) == [b"b" * 1500 + b"c" * 548]
    assert framing.flush() == [b"c" * 452]
    assert framing.flush() == []
    # Exactly 2 KiB fits the buffer: sent with the next write or the flush.
    assert framing.write(b"d" * 2048) == []
    assert framing.write(b"e") == [b"d" * 2048]
    # A large write behind buffered bytes: the buffer is filled and sent, then the rest
    # goes straight through if it is larger than the buffer.
    assert framing.write(b"f" * 5000) == [b"e" + b"f" * 2047, b"f" * 2953]
    assert framing.flush() == []


async def test_each_large_event_arrives_as_an_http_chunk_of_its_own(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    """A HelmRelease with its managedFields is about 3 KB: kube-apiserver writes each event
    once and net/http sends a write that large as one chunk, so a client's HTTP parser
    sees one chunk per event, not one per backlog."""
    store = apiserver.store
    start = store.create(HR_KEY, hr("seed", "apps"))["metadata"]["resourceVersion"]
    values = {"blob": "x" * 2500}  # each object well over 2 KiB
    for i in range(5):
        store.create(
            HR_KEY, {**hr(f"r{i}", "apps"), "spec": {**hr("x", "apps")["spec"], "values": values}}
        )
    params = {"watch": "1", "resourceVersion": start, "timeoutSeconds": "2"}
    resp = await http.get(APPS_HRS, params=params)
    chunks: list[bytes] = []
    part = b""
    async with resp:
        async for data, end_of_chunk in resp.content.iter_chunks():
            part += data
            if end_of_chunk:
                chunks.append(part)
                part = b""
            if len(chunks) == 5:
                break
    events = [orjson.loads(chunk) for chunk in chunks]
    assert [e["object"]["metadata"]["name"] for e in events] == [f"r{i}" for i in range(5)]
    assert all(chunk.endswith(b"}\n") and chunk.count(b"\n") == 1 for chunk in chunks)
