"""The informer over real HTTP against the embedded cluster, with the real client.

Each test drives the API server into one situation a real cluster produces
(pagination, a dropped watch, 410 Gone, throttling, a silent connection, a
broken object, missing RBAC, minutely bookmarks, a version not reached yet, a
server restored to an older version, a flapping connection) and checks that no
HelmRelease change is lost. Servers whose timing matters run with a small
``time_scale``: a minute of cluster time in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.kube.client import HELMRELEASES, MAX_RETRIES, KubeClient
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC, HRView, hr_view
from fluxwatch.kube.informer import BOOKMARK_PERIOD, Backoff, Informer
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubeconfig import write_kubeconfig
from fluxwatch.sim.store import Store, too_large

HR = "helmreleases.helm.toolkit.fluxcd.io"
LEASES = "leases.coordination.k8s.io"
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, jitter=0.0)


def helmrelease(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": "repo"}}
            },
            **spec,
        },
    }


class Recorder:
    """Records every handler call and restart, and lets a test await a condition."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.restarts: list[str] = []
        self.synced_counts: list[int] = []
        self._changed = asyncio.Event()

    def handler(self, etype: str, view: HRView, old: HRView | None) -> None:
        self.events.append((etype, view.namespace, view.name))
        self._changed.set()

    def on_event(self, resource: str, event_type: str) -> None:
        pass

    def on_restart(self, resource: str, reason: str) -> None:
        self.restarts.append(reason)
        self._changed.set()

    def on_synced(self, resource: str, count: int, seconds: float) -> None:
        self.synced_counts.append(count)

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


SCALE = 0.002


@pytest.fixture
async def scaled(tmp_path: Path) -> AsyncIterator[tuple[ApiServer, KubeClient]]:
    """A server on which a cluster minute lasts 0.12 s (bookmarks every 0.12 s, compaction
    never), and a client of it."""
    async with ApiServer(time_scale=SCALE, compaction_interval=None) as server:
        kube = await KubeClient.from_config(server.write_kubeconfig(tmp_path / "scaled"))
        yield server, kube
        await kube.close()


def count_relists(informer: Informer[HRView]) -> list[int]:
    """A one-element list counting the informer's full relists from now on."""
    seen = [0]
    relist = informer._relist

    async def counted() -> None:
        seen[0] += 1
        await relist()

    informer._relist = counted  # type: ignore[method-assign]
    return seen


async def start(informer: Informer[HRView]) -> asyncio.Task[None]:
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(informer.synced.wait(), 10)
    return task


async def drop_open_watch(apiserver: ApiServer) -> None:
    """Cut the informer's watch once it is open (synced is set before the watch starts)."""
    for _ in range(500):
        if apiserver.faults.drop_watches():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the informer opened no watch within 5 s")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_initial_list_is_paginated_and_complete(
    apiserver: ApiServer, client: KubeClient
) -> None:
    for i in range(1234):
        apiserver.store.create(HR, helmrelease(f"ns{i % 7}", f"hr{i}"))
    rec = Recorder()
    apiserver.stats.reset()
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, page_size=100, observer=rec
    )
    task = await start(informer)
    try:
        assert len(informer.cache) == 1234
        assert rec.synced_counts == [1234]
        assert apiserver.stats.requests[("list", HR)] == 13
        assert sorted(e[2] for e in rec.events) == sorted(f"hr{i}" for i in range(1234))
        assert {e[0] for e in rec.events} == {"ADDED"}
    finally:
        await stop(task)


async def test_watch_delivers_changes_in_order(apiserver: ApiServer, client: KubeClient) -> None:
    rec = Recorder()
    informer = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, observer=rec)
    task = await start(informer)
    try:
        store = apiserver.store
        store.create(HR, helmrelease("apps", "a"))
        store.patch(HR, "apps", "a", {"spec": {"suspend": True}})
        store.create(HR, helmrelease("apps", "b"))
        store.delete(HR, "apps", "a")
        await rec.until(lambda: len(rec.events) == 4)
        assert rec.events == [
            ("ADDED", "apps", "a"),
            ("MODIFIED", "apps", "a"),
            ("ADDED", "apps", "b"),
            ("DELETED", "apps", "a"),
        ]
        assert set(informer.cache) == {("apps", "b")}
    finally:
        await stop(task)


async def test_bookmarks_advance_the_resource_version(
    scaled: tuple[ApiServer, KubeClient],
) -> None:
    apiserver, client = scaled
    apiserver.store.create(HR, helmrelease("apps", "a"))
    informer = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, observer=Recorder())
    task = await start(informer)
    try:
        listed = int(informer.resource_version or 0)
        # A change to another resource moves the global version; only a bookmark tells us.
        apiserver.store.create("secrets", {"metadata": {"name": "s", "namespace": "apps"}})
        for _ in range(100):
            if int(informer.resource_version or 0) > listed:
                break
            await asyncio.sleep(0.05)
        assert int(informer.resource_version or 0) > listed, "no bookmark arrived"
    finally:
        await stop(task)


async def test_dropped_watch_resumes_and_sees_change_made_while_disconnected(
    apiserver: ApiServer, client: KubeClient
) -> None:
    store = apiserver.store
    store.create(HR, helmrelease("apps", "a"))
    rec = Recorder()
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, backoff=FAST, observer=rec
    )
    task = await start(informer)
    relists = count_relists(informer)
    try:
        apiserver.stats.reset()
        # Same tick: the watch is gone before the change, so only the resume can carry it.
        await drop_open_watch(apiserver)
        store.patch(HR, "apps", "a", {"spec": {"suspend": True}})
        await rec.until(lambda: ("MODIFIED", "apps", "a") in rec.events)
        assert informer.cache[("apps", "a")].suspend is True
        assert rec.restarts, "the dropped watch was not noticed"
        # Resumed from its resourceVersion: no relist, only the one-object version check.
        assert relists == [0]
        assert apiserver.stats.requests.get(("list", HR), 0) == 1
    finally:
        await stop(task)


async def test_gone_relists_and_emits_the_difference(
    apiserver: ApiServer, client: KubeClient
) -> None:
    store = apiserver.store
    for name in ("keep", "change", "vanish"):
        store.create(HR, helmrelease("apps", name))
    rec = Recorder()
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, backoff=FAST, observer=rec
    )
    task = await start(informer)
    try:
        rec.events.clear()
        await drop_open_watch(apiserver)
        store.patch(HR, "apps", "change", {"spec": {"suspend": True}})
        store.delete(HR, "apps", "vanish")
        store.create(HR, helmrelease("apps", "new"))
        apiserver.faults.compact()
        await rec.until(lambda: len(rec.events) >= 3)
        assert sorted(rec.events) == [
            ("ADDED", "apps", "new"),
            ("DELETED", "apps", "vanish"),
            ("MODIFIED", "apps", "change"),
        ]
        assert "expired" in rec.restarts
        assert set(informer.cache) == {("apps", "keep"), ("apps", "change"), ("apps", "new")}
    finally:
        await stop(task)


async def test_server_errors_back_off_then_sync(apiserver: ApiServer, client: KubeClient) -> None:
    apiserver.store.create(HR, helmrelease("apps", "a"))
    apiserver.faults.fail_next(3, code=500)
    rec = Recorder()
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, backoff=FAST, observer=rec
    )
    task = await start(informer)
    try:
        assert rec.restarts[:3] == ["http-500"] * 3
        assert set(informer.cache) == {("apps", "a")}
    finally:
        await stop(task)


async def test_throttling_honours_retry_after(
    apiserver: ApiServer, client: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The client sends a throttled list again as Retry-After asks, MAX_RETRIES times;
    a list refused even then reaches the informer, which waits at least the last
    Retry-After (here above its backoff) before it lists again."""
    apiserver.faults.fail_next(MAX_RETRIES, code=429, retry_after=0)
    apiserver.faults.fail_next(1, code=429, retry_after=1)
    rec = Recorder()
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, backoff=FAST, observer=rec
    )
    caplog.set_level(logging.WARNING, "fluxwatch.kube.informer")
    task = await start(informer)
    try:
        assert rec.restarts == ["throttled"]
        assert any("retrying in 1.00s" in r.getMessage() for r in caplog.records)
        assert apiserver.stats.requests[("list", HR)] == MAX_RETRIES + 2
    finally:
        await stop(task)


async def test_throttling_without_a_usable_retry_after_backs_off(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Retry-After: 0 after every retry is no licence for a hot loop: the informer's
    own backoff grows between lists."""
    apiserver.faults.fail_next(3 * (MAX_RETRIES + 1), code=429, retry_after=0)
    rec = Recorder()
    backoff = Backoff(base=0.2, factor=2.0, cap=10.0, jitter=0.0)
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, backoff=backoff, observer=rec
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = await start(informer)
    try:
        assert rec.restarts == ["throttled"] * 3
        assert loop.time() - started >= 0.2 + 0.4 + 0.8
    finally:
        await stop(task)


async def test_silent_connection_hits_the_inactivity_timeout(
    client: KubeClient, tmp_path: Path
) -> None:
    # No bookmarks and no changes: the stream goes silent without closing.
    async with ApiServer(bookmark_interval=3600) as quiet:
        quiet.store.create(HR, helmrelease("apps", "a"))
        path = quiet.write_kubeconfig(tmp_path / "quiet")
        kube = await KubeClient.from_config(path)
        rec = Recorder()
        informer = Informer(
            kube,
            HELMRELEASES,
            HELMRELEASES_CODEC,
            rec.handler,
            backoff=FAST,
            observer=rec,
            inactivity_timeout=0.3,
        )
        task = await start(informer)
        try:
            await rec.until(lambda: "inactivity" in rec.restarts)
            quiet.store.patch(HR, "apps", "a", {"spec": {"suspend": True}})
            await rec.until(lambda: ("MODIFIED", "apps", "a") in rec.events)
        finally:
            await stop(task)
            await kube.close()


async def test_malformed_object_does_not_stop_the_informer(
    apiserver: ApiServer, client: KubeClient
) -> None:
    rec = Recorder()
    informer = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, observer=rec)
    task = await start(informer)
    try:
        bad = helmrelease("apps", "bad")
        bad["spec"]["suspend"] = "yes"
        # The API refuses such an object now; a cluster can still hold one written
        # before its CRD's schema said so.
        apiserver.store.create(HR, bad, validate=False)
        apiserver.store.create(HR, helmrelease("apps", "good"))
        await rec.until(lambda: ("ADDED", "apps", "good") in rec.events)
        view = informer.cache[("apps", "bad")]
        assert view.malformed is not None
        assert "spec.suspend" in view.malformed
        assert informer.cache[("apps", "good")].malformed is None
    finally:
        await stop(task)


async def test_typed_and_general_reading_give_the_same_views(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """HelmReleases are read from bytes by the typed reader, with a fall back to dicts and
    the exact reader for a page or line it does not take (here: a page holding a broken
    object, and a broken object on the watch). An informer given only the general way
    (a plain transform) must end with the very same cache."""
    store = apiserver.store
    for i in range(250):
        store.create(HR, helmrelease(f"ns{i % 3}", f"hr{i}", releaseName=f"rel-{i}"))
    broken = helmrelease("ns0", "broken-in-list")
    broken["spec"]["targetNamespace"] = 7
    store.create(HR, broken, validate=False)  # stored before the schema refused it
    typed_rec, plain_rec = Recorder(), Recorder()
    typed = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, typed_rec.handler, page_size=100)
    plain = Informer(client, HELMRELEASES, hr_view, plain_rec.handler, page_size=100)
    tasks = [await start(typed), await start(plain)]
    try:
        store.patch(
            HR, "ns1", "hr1", {"metadata": {"annotations": {"fluxwatch.io/ignore": "true"}}}
        )
        bad = helmrelease("ns2", "broken-on-watch")
        bad["spec"]["releaseName"] = ["not", "a", "name"]
        store.create(HR, bad, validate=False)
        for rec in (typed_rec, plain_rec):
            await rec.until(lambda r=rec: ("ADDED", "ns2", "broken-on-watch") in r.events)
        assert typed.cache == plain.cache
        assert typed_rec.events == plain_rec.events
        assert "spec.targetNamespace" in (typed.cache[("ns0", "broken-in-list")].malformed or "")
        assert "spec.releaseName" in (typed.cache[("ns2", "broken-on-watch")].malformed or "")
        assert typed.cache[("ns1", "hr1")].ignored
    finally:
        for task in tasks:
            await stop(task)


async def test_rbac_denial_is_a_403_retried_not_a_crash(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text(
        """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leases-only, namespace: apps}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leases-only, namespace: apps}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leases-only}
subjects:
  - {kind: ServiceAccount, name: limited, namespace: apps}
"""
    )
    async with ApiServer(rbac_files=[rbac]) as server:
        token = server.token_for("system:serviceaccount:apps:limited")
        path = server.write_kubeconfig(tmp_path / "limited", token=token)
        kube = await KubeClient.from_config(path)
        rec = Recorder()
        informer = Informer(
            kube,
            HELMRELEASES,
            HELMRELEASES_CODEC,
            rec.handler,
            backoff=FAST,
            observer=rec,
            namespace="apps",
        )
        task = asyncio.create_task(informer.run())
        try:
            await rec.until(lambda: rec.restarts.count("http-403") >= 2)
            assert not informer.synced.is_set()
        finally:
            await stop(task)
            await kube.close()


async def test_minutely_bookmarks_keep_a_quiet_resource_alive(
    scaled: tuple[ApiServer, KubeClient],
) -> None:
    """HelmReleases do not change, the cluster does (Leases renew): a bookmark comes every
    cluster minute, well within two minutes of inactivity, so the watch is never cut."""
    apiserver, client = scaled
    apiserver.store.create(HR, helmrelease("apps", "a"))
    rec = Recorder()
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        rec.handler,
        observer=rec,
        inactivity_timeout=2 * BOOKMARK_PERIOD * SCALE,
    )
    task = await start(informer)
    listed = int(informer.resource_version or 0)
    try:
        lease = {"metadata": {"name": "helm-controller", "namespace": "flux-system"}}
        apiserver.store.create(LEASES, lease)
        for i in range(40):  # eight cluster minutes of renewals every 10 cluster seconds
            await asyncio.sleep(10 * SCALE)
            apiserver.store.patch(
                LEASES, "flux-system", "helm-controller", {"spec": {"leaseTransitions": i}}
            )
        assert rec.restarts == []
        assert int(informer.resource_version or 0) > listed
    finally:
        await stop(task)


async def test_a_silent_quiet_cluster_is_resumed_without_relisting_or_backing_off(
    scaled: tuple[ApiServer, KubeClient],
) -> None:
    """Nothing writes at all: the server sends no bookmark (none is newer than the watch),
    the inactivity timeout fires again and again; each time the version check finds the
    server where we are, and the watch resumes at once."""
    apiserver, client = scaled
    apiserver.store.create(HR, helmrelease("apps", "a"))
    rec = Recorder()
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        rec.handler,
        observer=rec,
        inactivity_timeout=0.1,
        healthy_watch=0.05,
        # Were these restarts failures, the fourth would wait 50 s.
        backoff=Backoff(base=0.05, factor=10.0, cap=100.0, jitter=0.0),
    )
    task = await start(informer)
    relists = count_relists(informer)
    try:
        await rec.until(lambda: rec.restarts.count("inactivity") >= 4, timeout=5)
        assert set(rec.restarts) == {"inactivity"}
        assert relists == [0]
        apiserver.store.patch(HR, "apps", "a", {"spec": {"suspend": True}})
        await rec.until(lambda: ("MODIFIED", "apps", "a") in rec.events)
    finally:
        await stop(task)


async def test_a_410_as_http_during_a_paginated_relist_starts_the_list_over(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """etcd compacted between two pages: the continue token is refused with 410."""
    store = apiserver.store
    for i in range(5):
        store.create(HR, helmrelease("apps", f"hr{i}"))
    real_list = store._list
    compacted = [False]

    def compact_before_second_page(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("continue_token") and not compacted[0]:
            compacted[0] = True
            store.create(HR, helmrelease("apps", "late"))
            store.compact()
        return real_list(*args, **kwargs)

    store._list = compact_before_second_page  # type: ignore[method-assign]
    rec = Recorder()
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        rec.handler,
        page_size=2,
        backoff=FAST,
        observer=rec,
    )
    task = await start(informer)
    try:
        assert rec.restarts == ["expired"]
        assert len(informer.cache) == 6
        assert rec.synced_counts == [6]
    finally:
        await stop(task)


async def test_a_504_too_large_version_relists_after_a_backoff(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """A server behind our version answers the watch with an ERROR 504 "Too large resource
    version": retrying that version could go on forever, so the informer relists."""
    store = apiserver.store
    store.create(HR, helmrelease("apps", "a"))
    real_watch = store.watch
    refused: list[str | None] = []

    def behind_once(*args: Any, **kwargs: Any) -> Any:
        if not refused:
            refused.append(args[2])
            raise too_large(int(args[2]), store.resource_version - 1, 1)
        return real_watch(*args, **kwargs)

    store.watch = behind_once  # type: ignore[method-assign]
    rec = Recorder()
    informer = Informer(
        client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, backoff=FAST, observer=rec
    )
    loop = asyncio.get_running_loop()
    task = await start(informer)
    relists = count_relists(informer)
    began = loop.time()
    try:
        await rec.until(lambda: "too-large" in rec.restarts)
        store.patch(HR, "apps", "a", {"spec": {"suspend": True}})
        await rec.until(lambda: ("MODIFIED", "apps", "a") in rec.events)
        assert relists == [1]
        # The server asked for a retry after 1 s; the informer waited at least that long.
        assert loop.time() - began >= 1.0
        assert rec.restarts == ["too-large"]
    finally:
        await stop(task)


async def test_a_server_restored_to_an_older_version_is_relisted(
    client: KubeClient, apiserver: ApiServer
) -> None:
    """etcd restored from a backup (or a new cluster at the same address): the server's
    resourceVersion is below the informer's. A watch from ours would be accepted and stay
    silent forever; the informer notices after the connection drops and relists."""
    for i in range(30):
        apiserver.store.create(HR, helmrelease("apps", f"old{i}"))
    rec = Recorder()
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        rec.handler,
        backoff=FAST,
        observer=rec,
        inactivity_timeout=0.5,
    )
    task = await start(informer)
    port = apiserver.port
    try:
        await drop_open_watch(apiserver)
        await apiserver.stop()
        restored = Store()
        restored.create(HR, helmrelease("apps", "old0"))
        restored.create(HR, helmrelease("apps", "new"))
        assert restored.resource_version < int(informer.resource_version or 0)
        replacement = ApiServer(restored, port=port, admin_token=apiserver.admin_token)
        await replacement.start()
        try:
            await rec.until(lambda: ("ADDED", "apps", "new") in rec.events, timeout=5)
            assert "version-went-back" in rec.restarts
            assert set(informer.cache) == {("apps", "old0"), ("apps", "new")}
            assert informer.resource_version == str(restored.resource_version)
        finally:
            await replacement.stop()
    finally:
        await stop(task)


async def test_the_backoff_starts_over_after_each_good_watch(
    apiserver: ApiServer, client: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Nine abrupt drops, each after a watch that delivered: nine shortest delays (it was
    36 s by the ninth, as if the connection had never worked)."""
    store = apiserver.store
    store.create(HR, helmrelease("apps", "a"))
    rec = Recorder()
    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        rec.handler,
        backoff=Backoff(base=0.02, factor=2.0, cap=30.0, jitter=0.0),
        observer=rec,
    )
    caplog.set_level(logging.WARNING, "fluxwatch.kube.informer")
    task = await start(informer)
    try:
        for i in range(9):
            for _ in range(500):
                if store.table(HR).watchers:
                    break
                await asyncio.sleep(0.01)
            store.patch(HR, "apps", "a", {"spec": {"suspend": i % 2 == 0}})
            await rec.until(lambda n=i: len(rec.events) >= n + 2)
            await drop_open_watch(apiserver)
        await rec.until(lambda: rec.restarts.count("connection") >= 9)
        delays = [r.getMessage() for r in caplog.records if "reconnecting in" in r.getMessage()]
        assert len(delays) == 9
        assert all(d.endswith("reconnecting in 0.02s") for d in delays), delays
    finally:
        await stop(task)


async def _relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, piece: int | None
) -> None:
    """Copy one direction of a connection; ``piece``: forward at most that many bytes per
    write and yield between writes, so the far side reads them one by one."""
    try:
        while data := await reader.read(65536):
            step = piece or len(data)
            for at in range(0, len(data), step):
                writer.write(data[at : at + step])
                await writer.drain()
                await asyncio.sleep(0)
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.mark.parametrize("piece", [1, 7, 1000, 4099])
async def test_events_split_across_reads_are_joined_whole(
    apiserver: ApiServer, tmp_path: Path, piece: int
) -> None:
    """A watch line arrives in as many reads as TCP makes of it: here the API server's
    bytes pass a relay that forwards them ``piece`` bytes at a time. Every event must
    still be read whole, in order, into the view the API server's object gives."""
    host, port = apiserver.url.removeprefix("http://").rsplit(":", 1)

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_relay(client_r, server_w, None), _relay(server_r, client_w, piece))

    relay = await asyncio.start_server(accept, "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    path = write_kubeconfig(
        tmp_path / "relayed", f"http://127.0.0.1:{relay_port}", apiserver.admin_token
    )
    client = await KubeClient.from_config(path)
    rec = Recorder()
    informer = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, rec.handler, observer=rec)
    task = await start(informer)
    try:
        store = apiserver.store
        store.create(HR, helmrelease("apps", "a"))
        store.create(HR, helmrelease("apps", "b", releaseName="b-" + "x" * 40))
        store.patch(HR, "apps", "a", {"spec": {"suspend": True}})
        store.delete(HR, "apps", "b")
        await rec.until(lambda: len(rec.events) == 4)
        assert rec.events == [
            ("ADDED", "apps", "a"),
            ("ADDED", "apps", "b"),
            ("MODIFIED", "apps", "a"),
            ("DELETED", "apps", "b"),
        ]
        live = store.get(HR, "apps", "a")
        assert informer.cache == {("apps", "a"): hr_view(live)}
        assert informer.cache[("apps", "a")].suspend
        assert informer.resource_version == str(store.resource_version)  # the deletion
    finally:
        await stop(task)
        await client.close()
        relay.close()
