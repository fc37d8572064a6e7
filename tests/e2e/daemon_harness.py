"""The embedded cluster and real fluxwatch daemons for the ``test_daemon_*`` end-to-end tests.

Everything here is real but the cluster: the API emulator serves HTTPS on
loopback, the simulated helm-controller writes to its store, and each daemon
is the :class:`~fluxwatch.app.Daemon` that ``fluxwatch run`` runs, talking
through the real kubernetes_asyncio client, either in-process or as a
``fluxwatch run`` subprocess. Cluster durations are compressed by
:data:`TIME_SCALE` (the stuck threshold of 5m lasts 6 s) as in ``fluxwatch demo``.

One store can have several API server *faces* (:meth:`Cluster.face`): each
replica talks to its own face, so the emulator's per-face request counters
say which replica wrote what.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fluxwatch.app import Daemon, build_recorder, watch_count
from fluxwatch.demo import compressed, merge
from fluxwatch.kube.client import KubeClient
from fluxwatch.kube.helmrelease import ANNOTATION_SUSPENDED_AT, FINALIZER, HRView, hr_view
from fluxwatch.notify.event import Event
from fluxwatch.notify.metrics import PrometheusMetrics
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.helmcontroller import (
    HELMRELEASES,
    SECRETS,
    Desired,
    HelmController,
    helm_release_secret,
    ready_status,
    stuck_status,
)
from fluxwatch.sim.scenarios import Component, helmrelease
from fluxwatch.sim.store import Store, Watcher
from fluxwatch.telemetry.metrics import Metrics

TIME_SCALE = 0.02
THRESHOLD = 300.0 * TIME_SCALE  # the default 5m threshold, compressed: 6 s
HR = HELMRELEASES  # the store's key for HelmReleases
LEASES = "leases.coordination.k8s.io"
HR_WRITES = ("patch", HELMRELEASES)
HR_STATUS_WRITES = ("patch", f"{HELMRELEASES}/status")
APPS = "apps"
Key = tuple[str, str]


# ---- settings ---------------------------------------------------------------------------------


def settings_data(
    kubeconfig: Path, identity: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Production defaults with every cluster duration multiplied by :data:`TIME_SCALE`,
    fluxwatch's own leader election fast, telemetry on free loopback ports, no alerts
    routed (tests read the daemon's events)."""
    base: dict[str, Any] = {
        "kubeconfig": str(kubeconfig),
        "shutdown_timeout": 5.0,
        "leader": {
            "namespace": "fluxwatch-system",
            "identity": identity,
            "lease_duration": 2.0,
            "renew_deadline": 1.5,
            "retry_period": 0.2,
        },
        "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
    }
    return compressed(TIME_SCALE, merge(base, extra or {}))


def make_settings(kubeconfig: Path, identity: str, extra: dict[str, Any] | None = None) -> Settings:
    return Settings.model_validate(settings_data(kubeconfig, identity, extra))


# ---- HelmReleases in the store -----------------------------------------------------------------


def _component(name: str, namespace: str) -> Component:
    return Component(name, namespace, "podinfo", "6.7.1", "podinfo")


def add_stuck(
    store: Store,
    name: str,
    namespace: str = APPS,
    *,
    since: float,
    suspend: bool = False,
    depends_on: tuple[str, ...] = (),
) -> Key:
    """A HelmRelease in the upstream stuck shape (FLUX-FACTS §1): its first install's Helm
    release Secret is ``deployed`` and ``history[0]`` says so, but the only condition is
    ``Ready=Unknown/Progressing`` since ``since`` (epoch seconds). ``suspend``: a person
    suspended it (no fluxwatch marker). ``depends_on``: its spec.dependsOn, by name."""
    obj = helmrelease(_component(name, namespace))
    if depends_on:
        obj["spec"]["dependsOn"] = [{"name": d} for d in depends_on]
    obj["metadata"]["finalizers"] = [FINALIZER]
    if suspend:
        obj["spec"]["suspend"] = True
    desired = Desired.of(obj)
    obj["status"] = stuck_status(desired, first=since, since=since)
    store.create(HELMRELEASES, obj)
    store.create(SECRETS, helm_release_secret(desired, 1, "deployed", "install", since, since))
    return (namespace, name)


def add_ready(store: Store, name: str, namespace: str = APPS, *, suspend: bool = False) -> Key:
    """An installed, Ready HelmRelease with its Secret; ``suspend``: suspended by a person."""
    obj = helmrelease(_component(name, namespace))
    obj["metadata"]["finalizers"] = [FINALIZER]
    if suspend:
        obj["spec"]["suspend"] = True
    desired = Desired.of(obj)
    at = time.time() - 3600.0 * TIME_SCALE
    obj["status"] = ready_status(
        desired, generation=1, version=1, action="install", first=at, last=at, transition=at
    )
    store.create(HELMRELEASES, obj)
    store.create(SECRETS, helm_release_secret(desired, 1, "deployed", "install", at, at))
    return (namespace, name)


def becoming_stuck(after: float) -> float:
    """A ``since`` that makes a release cross the threshold about ``after`` seconds from now
    (``lastTransitionTime`` has whole seconds, so up to one second earlier)."""
    return time.time() - THRESHOLD + after


def view(store: Store, key: Key) -> HRView:
    return hr_view(store.get(HELMRELEASES, *key))


# ---- watching the store ------------------------------------------------------------------------


@dataclass
class HRLog:
    """Every HelmRelease change the store made, in order, from the moment it was opened."""

    store: Store
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _watcher: Watcher | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._watcher = self.store.watch(
            HELMRELEASES, resource_version=str(self.store.resource_version)
        )
        self._task = asyncio.create_task(self._run(), name="hr-log")

    async def _run(self) -> None:
        assert self._watcher is not None
        async for event in self._watcher:
            self.entries.append((event.type, event.object))
            self._changed.set()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def of(self, key: Key) -> list[dict[str, Any]]:
        """The versions of one release, oldest first."""
        return [
            obj
            for _type, obj in self.entries
            if (obj["metadata"]["namespace"], obj["metadata"]["name"]) == key
        ]

    async def wait_for(
        self, key: Key, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The first version of ``key`` (logged or future) for which ``predicate`` holds."""
        async with asyncio.timeout(timeout):
            while True:
                found = next((o for o in self.of(key) if predicate(o)), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()


def suspended_by_fluxwatch(obj: dict[str, Any]) -> bool:
    annotations = obj["metadata"].get("annotations") or {}
    return bool((obj.get("spec") or {}).get("suspend")) and ANNOTATION_SUSPENDED_AT in annotations


# ---- the cluster -------------------------------------------------------------------------------


class Cluster:
    """One store, any number of HTTPS faces on it, optionally the simulated helm-controller."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.store = Store()
        # As `kubectl apply -k config/default` leaves it: fluxwatch's namespace exists.
        for ns in ("fluxwatch-system", "flux-system", APPS):
            self.store.create("namespaces", {"metadata": {"name": ns}})
        self.faces: list[ApiServer] = []
        self.helm: HelmController | None = None
        self.log = HRLog(self.store)

    async def face(self) -> ApiServer:
        server = ApiServer(self.store, tls=True)
        await server.start()
        self.faces.append(server)
        return server

    def kubeconfig(self, face: ApiServer) -> Path:
        return face.write_kubeconfig(self.workdir / f"kubeconfig-{face.port}")

    async def start_helm_controller(self, *, suspend_clears_stuck: bool = False) -> HelmController:
        """helm-controller v1.x with the stuck bug; leads before this returns."""
        helm = self.helm = HelmController(
            self.store,
            time_scale=TIME_SCALE,
            suspend_clears_stuck=suspend_clears_stuck,
            bug=True,
        )
        await helm.start()
        await asyncio.wait_for(helm.wait_leader(), 10)
        return helm

    async def close(self) -> None:
        await self.log.close()
        if self.helm is not None:
            await self.helm.stop()
        for face in reversed(self.faces):
            await face.stop()


@contextlib.asynccontextmanager
async def running_cluster(workdir: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(workdir)
    cluster.log.start()
    try:
        yield cluster
    finally:
        await cluster.close()


def writes(face: ApiServer) -> tuple[int, int]:
    """(HelmRelease patches, HelmRelease /status patches) this face served."""
    return face.stats.requests[HR_WRITES], face.stats.requests[HR_STATUS_WRITES]


# ---- in-process replicas -----------------------------------------------------------------------


@dataclass
class Replica:
    daemon: Daemon
    client: KubeClient
    task: asyncio.Task[int]
    events: list[Event]

    @property
    def identity(self) -> str:
        return self.daemon.settings.leader.identity

    @property
    def leading(self) -> bool:
        return self.daemon.elector is not None and self.daemon.elector.is_leader

    def reasons(self, key: Key | None = None) -> list[str]:
        return [e.reason for e in self.of(key)]

    def of(self, key: Key | None = None) -> list[Event]:
        if key is None:
            return list(self.events)
        return [
            e for e in self.events if (e.involved_object.namespace, e.involved_object.name) == key
        ]

    @property
    def writes(self) -> int:
        return self.daemon.recovery.writes if self.daemon.recovery is not None else 0

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Until this replica leads and every informer listed once."""

        def ready() -> bool:
            informers = self.daemon.informers
            return self.leading and bool(informers) and all(i.synced.is_set() for i in informers)

        await eventually(ready, timeout, f"replica {self.identity} leading and synced")

    async def stop(self) -> int:
        if self.task.done():
            return self.task.result()
        self.daemon.stop()
        return await asyncio.wait_for(asyncio.shield(self.task), 15)


class Replicas:
    """Starts in-process daemons; :meth:`close` stops every one still running."""

    def __init__(self) -> None:
        self.started: list[Replica] = []

    async def start(self, settings: Settings, *, record: bool = False) -> Replica:
        """``record``: with the Kubernetes Event recorder ``fluxwatch run`` builds, so
        its events are core/v1 Events in the cluster too."""
        client = await KubeClient.from_config(settings.kubeconfig, watches=watch_count(settings))
        events: list[Event] = []
        recorder = (
            build_recorder(settings, client, PrometheusMetrics(Metrics().registry))
            if record
            else None
        )
        daemon = Daemon(settings, client, on_event=events.append, recorder=recorder)
        task = asyncio.create_task(
            daemon.run(install_signals=False), name=f"daemon:{settings.leader.identity}"
        )
        replica = Replica(daemon, client, task, events)
        self.started.append(replica)
        return replica

    async def close(self) -> None:
        for replica in reversed(self.started):
            with contextlib.suppress(Exception):
                await replica.stop()
            if not replica.task.done():
                replica.task.cancel()
                with contextlib.suppress(BaseException):
                    await replica.task
            await replica.client.close()


@contextlib.asynccontextmanager
async def running_replicas() -> AsyncIterator[Replicas]:
    replicas = Replicas()
    try:
        yield replicas
    finally:
        await replicas.close()


# ---- subprocess daemons ------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no signal handler, no drain, no Lease release."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)


class Processes:
    """``fluxwatch run`` subprocesses; :meth:`close` kills any still running (by PID)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Process] = []

    async def run(self, name: str, settings: dict[str, Any]) -> Process:
        config = self.workdir / f"{name}.yaml"
        config.write_text(yaml.safe_dump(settings))
        log = self.workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXWATCH_")}
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fluxwatch",
                "run",
                "--config",
                str(config),
                "--kubeconfig",
                str(settings["kubeconfig"]),
                "--log-encoding",
                "json",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        process = Process(name, proc, log)
        self.started.append(process)
        return process

    async def close(self) -> None:
        for process in self.started:
            process.kill()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(process.proc.wait(), 10)


@contextlib.asynccontextmanager
async def running_processes(workdir: Path) -> AsyncIterator[Processes]:
    processes = Processes(workdir)
    try:
        yield processes
    finally:
        await processes.close()


# ---- waiting -----------------------------------------------------------------------------------


async def eventually(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` every 10 ms; the seconds it took, or AssertionError naming ``what``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@contextlib.contextmanager
def never_two_leaders(replicas: list[Replica]) -> Iterator[list[str]]:
    """Sample who leads every 5 ms while the block runs; fail if two ever lead at once.
    Yields the list of distinct leader sequences seen (identities, in order)."""
    seen: list[str] = []
    overlap: list[str] = []

    async def sample() -> None:
        while True:
            leaders = [r.identity for r in replicas if r.leading]
            if len(leaders) > 1:
                overlap.append(",".join(leaders))
            if leaders and (not seen or seen[-1] != leaders[0]):
                seen.append(leaders[0])
            await asyncio.sleep(0.005)

    task = asyncio.get_running_loop().create_task(sample())
    try:
        yield seen
    finally:
        task.cancel()
    assert not overlap, f"two replicas led at the same time: {overlap[:3]}"
