"""Watch and list timing as kube-apiserver 1.32 has it, request by request.

Each test sends one request (or one short sequence) over real HTTP and checks the
answer the real server gives: when bookmarks come and what they carry, what a
watch or list from a version not reached yet gets, how ListOptions are defaulted
and refused, and what scheduled etcd compaction does to watches, continue tokens
and exact lists. Servers run with a small ``time_scale`` so that a minute of
cluster time passes in a fraction of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from fluxwatch.sim.apiserver import ApiServer

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
APPS_HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
HR = Callable[..., dict[str, Any]]
MakeServer = Callable[..., Awaitable[ApiServer]]
TOO_LARGE_CAUSE = {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}


class Client:
    """An admin session on one server, reading watch streams line by line."""

    def __init__(self, api: ApiServer, http: aiohttp.ClientSession) -> None:
        self.api = api
        self.http = http

    async def get(self, path: str = APPS_HRS, **params: str) -> tuple[int, Any, Any]:
        async with self.http.get(path, params=params) as resp:
            return resp.status, resp.headers, await resp.json(content_type=None)

    async def watch(
        self, path: str = APPS_HRS, *, wait: float = 2.0, **params: str
    ) -> list[tuple[float, dict[str, Any]]]:
        """Every event of one watch with the time it arrived (seconds after the request),
        until the server ends the stream."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        events: list[tuple[float, dict[str, Any]]] = []
        async with self.http.get(path, params={"watch": "true", **params}) as resp:
            assert resp.status == 200, await resp.text()
            async with asyncio.timeout(wait):
                while line := await resp.content.readline():
                    events.append((loop.time() - start, orjson.loads(line)))
        return events


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    """Start a server with the given settings and an admin session on it."""
    servers: list[ApiServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(**kwargs: Any) -> Client:
        api = ApiServer(**kwargs)
        await api.start()
        servers.append(api)
        http = aiohttp.ClientSession(
            base_url=api.url, headers={"Authorization": f"Bearer {api.admin_token}"}
        )
        sessions.append(http)
        return Client(api, http)

    yield make
    for session in sessions:
        await session.close()
    for api in servers:
        await api.stop()


def kinds(events: list[tuple[float, dict[str, Any]]]) -> list[str]:
    return [e["type"] for _, e in events]


def rv_of(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def status(code: int, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    """The metav1.Status the real server sends, in its field order."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": extra.pop("metadata", {}),
        "status": "Failure",
        "message": message,
    }
    if reason:
        body["reason"] = reason
    body.update(extra)
    body["code"] = code
    return body


# ---- bookmarks ---------------------------------------------------------------------------


def test_bookmarks_come_once_a_minute_of_cluster_time() -> None:
    assert ApiServer().bookmark_interval == 60.0
    assert ApiServer(time_scale=0.01).bookmark_interval == pytest.approx(0.6)
    assert ApiServer(time_scale=0.01, bookmark_interval=5).bookmark_interval == pytest.approx(0.05)


@pytest.mark.looptime
async def test_a_watch_gets_a_bookmark_each_interval_and_one_just_before_its_deadline(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    """Loop time, not the wall clock: the schedule is the server's, and a busy machine
    must not move it (it did, by more than 60 ms, under load)."""
    # A 0.2 s bookmark interval and the last one 0.005 s before the deadline: 0.2, 0.4, 0.495.
    c = await connect(
        max_watch_timeout=0.5, time_scale=0.0025, bookmark_interval=80, compaction_interval=None
    )
    start = c.api.store.create(HR_KEY, hr("a", "apps"))
    c.api.store.create("secrets", {"metadata": {"name": "s", "namespace": "apps"}})
    events = await c.watch(resourceVersion=str(rv_of(start)), allowWatchBookmarks="true")
    assert kinds(events) == ["BOOKMARK"] * 3
    times = [t for t, _ in events]
    assert times[0] == pytest.approx(0.2, abs=0.06)
    assert times[1] == pytest.approx(0.4, abs=0.06)
    assert times[2] == pytest.approx(0.495, abs=0.06)
    assert {rv_of(e["object"]) for _, e in events} == {c.api.store.resource_version}


async def test_no_bookmark_is_sent_until_the_version_passes_the_watch(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(max_watch_timeout=0.4, bookmark_interval=0.05, compaction_interval=None)
    c.api.store.create(HR_KEY, hr("a", "apps"))
    events = await c.watch(
        resourceVersion=str(c.api.store.resource_version),
        allowWatchBookmarks="true",
    )
    assert events == []


# ---- sendInitialEvents and the ListOptions rules ------------------------------------------


async def test_watch_list_sends_the_objects_then_a_bookmark_marking_their_end(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(max_watch_timeout=0.3, compaction_interval=None)
    c.api.store.create(HR_KEY, hr("a", "apps"))
    c.api.store.create(HR_KEY, hr("b", "apps"))
    at = c.api.store.resource_version
    events = await c.watch(
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
    )
    assert kinds(events) == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2][1]["object"] == {
        "kind": "HelmRelease",
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "metadata": {
            "resourceVersion": str(at),
            "annotations": {"k8s.io/initial-events-end": "true"},
        },
    }


async def test_a_watch_without_a_version_is_a_watch_list_in_1_32(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    """WatchList is on by default in 1.32: no resourceVersion (or "0") defaults to
    sendInitialEvents=true, so a client that allows bookmarks gets the end marker."""
    c = await connect(max_watch_timeout=0.3, compaction_interval=None)
    c.api.store.create(HR_KEY, hr("a", "apps"))
    events = await c.watch(allowWatchBookmarks="true")
    assert kinds(events) == ["ADDED", "BOOKMARK"]
    assert events[1][1]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"
    }


async def test_send_initial_events_without_bookmarks_sends_no_end_marker(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    """ValidateListOptions has no rule tying sendInitialEvents to allowWatchBookmarks:
    the watch is served, only the end-of-initial-events bookmark is left out."""
    c = await connect(max_watch_timeout=0.3, compaction_interval=None)
    c.api.store.create(HR_KEY, hr("a", "apps"))
    events = await c.watch(sendInitialEvents="true", resourceVersionMatch="NotOlderThan")
    assert kinds(events) == ["ADDED"]


async def test_send_initial_events_false_starts_from_now(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(max_watch_timeout=0.3, compaction_interval=None)
    c.api.store.create(HR_KEY, hr("a", "apps"))
    events = await c.watch(sendInitialEvents="false", resourceVersionMatch="NotOlderThan")
    assert events == []


def invalid_list_options(*causes: tuple[str, str]) -> dict[str, Any]:
    texts = [f"{field}: {message}" for field, message in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return status(
        422,
        "Invalid",
        f'ListOptions.meta.k8s.io "" is invalid: {joined}',
        details={
            "group": "meta.k8s.io",
            "kind": "ListOptions",
            "causes": [{"reason": _reason(m), "message": m, "field": f} for f, m in causes],
        },
    )


def _reason(message: str) -> str:
    return "FieldValueForbidden" if message.startswith("Forbidden") else "FieldValueNotSupported"


@pytest.mark.parametrize(
    ("params", "causes"),
    [
        (
            {"sendInitialEvents": "true", "allowWatchBookmarks": "true"},
            [
                (
                    "resourceVersionMatch",
                    "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                    "NotOlderThan",
                )
            ],
        ),
        (
            {"resourceVersion": "5", "resourceVersionMatch": "NotOlderThan"},
            [
                (
                    "resourceVersionMatch",
                    "Forbidden: resourceVersionMatch is forbidden for watch unless "
                    "sendInitialEvents is provided",
                )
            ],
        ),
        (
            {"sendInitialEvents": "true", "resourceVersionMatch": "Exact"},
            [
                (
                    "resourceVersionMatch",
                    "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                    "NotOlderThan",
                ),
                (
                    "resourceVersionMatch",
                    'Unsupported value: "Exact": supported values: "NotOlderThan"',
                ),
            ],
        ),
    ],
    ids=["initial-events-without-match", "match-without-initial-events", "exact-match"],
)
async def test_watch_list_options_are_validated_into_a_422(
    connect: Callable[..., Awaitable[Client]],
    params: dict[str, str],
    causes: list[tuple[str, str]],
) -> None:
    c = await connect(compaction_interval=None)
    code, _, body = await c.get(watch="true", **params)
    assert code == 422
    assert body == invalid_list_options(*causes)


@pytest.mark.parametrize(
    ("params", "cause"),
    [
        (
            {"sendInitialEvents": "true"},
            ("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for list"),
        ),
        (
            {"resourceVersionMatch": "NotOlderThan"},
            (
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ),
        ),
        (
            {"resourceVersion": "0", "resourceVersionMatch": "Exact"},
            (
                "resourceVersionMatch",
                'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
            ),
        ),
    ],
    ids=["initial-events", "match-without-version", "exact-zero"],
)
async def test_list_options_are_validated_into_a_422(
    connect: Callable[..., Awaitable[Client]], params: dict[str, str], cause: tuple[str, str]
) -> None:
    c = await connect(compaction_interval=None)
    code, _, body = await c.get(**params)
    assert code == 422
    assert body == invalid_list_options(cause)


# ---- versions not reached yet --------------------------------------------------------------


async def test_a_watch_from_a_future_version_is_accepted_and_silent_until_passed(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(max_watch_timeout=0.6, bookmark_interval=0.05, compaction_interval=None)
    store = c.api.store
    store.create(HR_KEY, hr("zero", "apps"))  # the namespace exists: one write, one version
    future = store.resource_version + 2

    async def write_later() -> None:
        await asyncio.sleep(0.2)
        for name in ("one", "two", "three"):
            store.create(HR_KEY, hr(name, "apps"))

    writer = asyncio.create_task(write_later())
    events = await c.watch(resourceVersion=str(future), allowWatchBookmarks="true")
    await writer
    # Nothing at or below the version: not the two creates, not a bookmark before them.
    assert kinds(events)[0] == "ADDED"
    assert events[0][1]["object"]["metadata"]["name"] == "three"
    assert events[0][0] >= 0.2
    assert all(rv_of(e["object"]) > future for _, e in events)


async def test_watch_list_from_a_future_version_is_a_504_error_event_after_3s(
    connect: Callable[..., Awaitable[Client]],
) -> None:
    c = await connect(time_scale=0.05, compaction_interval=None)  # the 3 s wait is 0.15 s
    current = c.api.store.resource_version
    events = await c.watch(
        resourceVersion=str(current + 10),
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
    )
    assert kinds(events) == ["ERROR"]
    assert events[0][0] >= 0.15
    assert events[0][1]["object"] == status(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {current + 10}, current: {current}",
        details={"causes": [TOO_LARGE_CAUSE], "retryAfterSeconds": 1},
    )


async def test_watch_list_waits_for_a_version_that_arrives_in_time(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(
        max_watch_timeout=0.4, compaction_interval=None
    )  # a real 3 s wait; the write comes first
    store = c.api.store
    asyncio.get_running_loop().call_later(0.1, store.create, HR_KEY, hr("late", "apps"))
    events = await c.watch(
        resourceVersion=str(store.resource_version + 1),
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
    )
    assert kinds(events) == ["ADDED", "BOOKMARK"]
    assert events[0][1]["object"]["metadata"]["name"] == "late"


async def test_a_list_from_a_future_version_waits_then_is_504_with_retry_after(
    connect: Callable[..., Awaitable[Client]],
) -> None:
    c = await connect(time_scale=0.05, compaction_interval=None)
    current = c.api.store.resource_version
    code, headers, body = await c.get(resourceVersion=str(current + 3))
    assert code == 504
    assert headers["Retry-After"] == "1"
    assert body == status(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {current + 3}, current: {current}",
        details={"causes": [TOO_LARGE_CAUSE], "retryAfterSeconds": 1},
    )


async def test_a_paginated_not_older_than_list_from_the_future_is_504_without_retry(
    connect: Callable[..., Awaitable[Client]],
) -> None:
    """Paginated, the list is served by etcd, whose check asks for no retry."""
    c = await connect(compaction_interval=None)
    current = c.api.store.resource_version
    code, headers, body = await c.get(
        resourceVersion=str(current + 3), resourceVersionMatch="NotOlderThan", limit="5"
    )
    assert code == 504
    assert "Retry-After" not in headers
    assert body == status(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {current + 3}, current: {current}",
        details={"causes": [TOO_LARGE_CAUSE]},
    )


@pytest.mark.parametrize(
    "params", [{"resourceVersionMatch": "Exact"}, {"limit": "5"}], ids=["exact", "paginated"]
)
async def test_an_etcd_read_at_a_future_revision_is_a_bare_500(
    connect: Callable[..., Awaitable[Client]], params: dict[str, str]
) -> None:
    c = await connect(compaction_interval=None)
    future = str(c.api.store.resource_version + 3)
    code, _, body = await c.get(resourceVersion=future, **params)
    assert code == 500
    assert body == status(500, "", "etcdserver: mvcc: required revision is a future revision")


async def test_a_paginated_list_at_a_version_is_a_snapshot_of_that_version(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(compaction_interval=None)
    first = c.api.store.create(HR_KEY, hr("a", "apps"))
    c.api.store.create(HR_KEY, hr("b", "apps"))
    code, _, body = await c.get(resourceVersion=str(rv_of(first)), limit="5")
    assert code == 200
    assert [i["metadata"]["name"] for i in body["items"]] == ["a"]
    assert body["metadata"]["resourceVersion"] == str(rv_of(first))


# ---- compaction ----------------------------------------------------------------------------


async def wait_compacted(api: ApiServer, revision: int) -> None:
    for _ in range(500):
        if api.store.compacted >= revision:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not compacted to {revision} within 5 s")


def test_compaction_runs_every_five_minutes_of_cluster_time_or_never() -> None:
    assert ApiServer().compaction_interval == 300.0
    assert ApiServer(time_scale=0.01).compaction_interval == pytest.approx(3.0)
    assert ApiServer(compaction_interval=None).compaction_interval is None


async def test_each_compaction_reaches_the_revision_the_previous_one_saw(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(time_scale=0.001)  # every 0.3 s
    store = c.api.store
    store.create(HR_KEY, hr("a", "apps"))
    seen = store.resource_version
    await asyncio.sleep(0.45)  # one run: the bootstrap run compacts nothing
    assert store.compacted == 0
    await wait_compacted(c.api, seen)
    assert store.compacted == seen


async def test_a_watch_from_before_the_compaction_is_an_error_410_event(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(time_scale=0.0005)
    old = rv_of(c.api.store.create(HR_KEY, hr("a", "apps")))
    c.api.store.create(HR_KEY, hr("b", "apps"))
    await wait_compacted(c.api, c.api.store.resource_version)
    compacted = c.api.store.compacted
    events = await c.watch(resourceVersion=str(old))
    assert kinds(events) == ["ERROR"]
    assert events[0][1]["object"] == status(
        410, "Expired", f"too old resource version: {old} ({compacted})"
    )


async def test_a_continue_token_from_before_the_compaction_is_410_with_a_fresh_token(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(time_scale=0.0005)
    for name in ("a", "b", "c"):
        c.api.store.create(HR_KEY, hr(name, "apps"))
    _, _, first = await c.get(limit="1")
    c.api.store.create(HR_KEY, hr("d", "apps"))
    await wait_compacted(c.api, c.api.store.resource_version)
    code, _, body = await c.get(limit="1", **{"continue": first["metadata"]["continue"]})
    assert code == 410
    fresh = body["metadata"]["continue"]
    assert body == status(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You "
        "can start a new list without the continue parameter, or use the continue token in "
        "this response to retrieve the remainder of the results. Continuing with the provided "
        "token results in an inconsistent list - objects that were created, modified, or "
        "deleted between the time the first chunk was returned and now may show up in the "
        "list.",
        metadata={"continue": fresh},
    )
    # The fresh token continues after "a" at the latest version, which has "d" too.
    code, _, rest = await c.get(limit="10", **{"continue": fresh})
    assert code == 200
    assert [i["metadata"]["name"] for i in rest["items"]] == ["b", "c", "d"]
    assert rest["metadata"]["resourceVersion"] == str(c.api.store.resource_version)


async def test_an_exact_list_from_before_the_compaction_is_410(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(time_scale=0.0005)
    old = rv_of(c.api.store.create(HR_KEY, hr("a", "apps")))
    c.api.store.create(HR_KEY, hr("b", "apps"))
    await wait_compacted(c.api, c.api.store.resource_version)
    code, _, body = await c.get(resourceVersion=str(old), resourceVersionMatch="Exact")
    assert code == 410
    assert body == status(410, "Expired", "The resourceVersion for the provided list is too old.")


async def test_a_server_without_compaction_keeps_its_history(
    connect: Callable[..., Awaitable[Client]], hr: HR
) -> None:
    c = await connect(max_watch_timeout=0.2, time_scale=0.0005, compaction_interval=None)
    old = rv_of(c.api.store.create(HR_KEY, hr("a", "apps")))
    c.api.store.create(HR_KEY, hr("b", "apps"))
    await asyncio.sleep(0.4)  # two and a half compaction intervals, had there been any
    assert c.api.store.compacted == 0
    events = await c.watch(resourceVersion=str(old))
    assert [(e["type"], e["object"]["metadata"]["name"]) for _, e in events] == [("ADDED", "b")]
