"""An in-process embedded cluster that notes writes to HelmReleases and answers them.

:class:`WatchedApiServer` is the emulator with one hook: every PATCH or PUT of
a HelmRelease (not of its ``/status``) that reaches it over HTTP is recorded
with the wall-clock time it arrived. After the write is applied, a stand-in
for helm-controller marks the release Ready again (as a successful forced
upgrade would), so that each algorithm's first write ends the incident and
nothing retries. Stuck releases are made by :meth:`Cluster.make_stuck`, which
writes the upstream stuck shape (FLUX-FACTS §1) with ``lastTransitionTime``
now.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import HR_KEY
from fluxwatch.kube.fields import format_rfc3339, parse_rfc3339
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.store import Store

Key = tuple[str, str]


@dataclass
class Writes:
    first: dict[Key, float] = field(default_factory=dict)
    count: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, keys: list[Key], deadline: float) -> None:
        """Return when every key has a first write, or at the loop time ``deadline``."""
        loop = asyncio.get_running_loop()
        while not all(k in self.first for k in keys) and loop.time() < deadline:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), deadline - loop.time())


class WatchedApiServer(ApiServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes = Writes()
        self.answer_writes = True

    async def _serve(
        self, request: web.Request, verb: str, target: Any, stats_key: tuple[str, str]
    ) -> web.StreamResponse:
        noted = (
            verb in ("patch", "update")
            and target.res.key == HR_KEY
            and target.name is not None
            and target.subresource is None
        )
        if noted:
            key = (target.namespace or "", target.name)
            if key not in self.writes.first:
                self.writes.first[key] = time.time()
                self.writes.changed.set()
            self.writes.count += 1
        response = await super()._serve(request, verb, target, stats_key)
        if noted and self.answer_writes and response.status < 300:
            asyncio.get_running_loop().call_soon(self._mark_ready, key)
        return response

    def _mark_ready(self, key: Key) -> None:
        obj = self.store.get(HR_KEY, *key)
        md = obj["metadata"]
        annotations = md.get("annotations") or {}
        gen = md.get("generation", 1)
        now = format_rfc3339(time.time())
        action = ((obj.get("status") or {}).get("history") or [{}])[0].get("action", "install")
        reason = "InstallSucceeded" if action == "install" else "UpgradeSucceeded"
        conditions = [
            {
                "lastTransitionTime": now,
                "message": "Helm upgrade succeeded (benchmark stand-in for helm-controller)",
                "observedGeneration": gen,
                "reason": reason,
                "status": "True",
                "type": kind,
            }
            for kind in ("Ready", "Released")
        ]
        status: dict[str, Any] = {"conditions": conditions, "observedGeneration": gen}
        for annotation, field_name in (
            ("reconcile.fluxcd.io/requestedAt", "lastHandledReconcileAt"),
            ("reconcile.fluxcd.io/forceAt", "lastHandledForceAt"),
        ):
            if annotation in annotations:
                status[field_name] = annotations[annotation]
        self.store.patch(HR_KEY, *key, {"status": status}, subresource="status")


class Cluster:
    """The emulator with the ``load`` scenario, in this process."""

    def __init__(self, releases: int, workdir: Path, *, secrets: bool, time_scale: float) -> None:
        self.releases = releases
        self.workdir = workdir
        self.secrets = secrets
        self.time_scale = time_scale
        # Cluster timing (bookmarks) scaled like the rest; no compaction to perturb the runs.
        self.server = WatchedApiServer(Store(), time_scale=time_scale, compaction_interval=None)
        self.run: scenarios.ScenarioRun | None = None
        self.kubeconfig = ""
        self.stuck_since: dict[Key, float] = {}

    async def __aenter__(self) -> Cluster:
        await self.server.start()
        self.run = await scenarios.start(
            "load",
            self.server.store,
            n=self.releases,
            secrets=self.secrets,
            time_scale=self.time_scale,
        )
        self.kubeconfig = str(self.server.write_kubeconfig(self.workdir / "cluster.kc"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.run is not None:
            await self.run.stop()
        await self.server.stop()

    @property
    def store(self) -> Store:
        return self.server.store

    def keys(self) -> list[Key]:
        items, _ = self.store.list(HR_KEY)
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items]

    def make_stuck(self, key: Key) -> float:
        """Ready=Unknown/Progressing from now on, history[0] still deployed (FLUX-FACTS §1);
        returns the ``lastTransitionTime`` written, in epoch seconds."""
        since = format_rfc3339(time.time())
        ready = {
            "lastTransitionTime": since,
            "message": "Running 'upgrade' action with timeout of 5m0s",
            "observedGeneration": 1,
            "reason": "Progressing",
            "status": "Unknown",
            "type": "Ready",
        }
        self.store.patch(HR_KEY, *key, {"status": {"conditions": [ready]}}, subresource="status")
        self.stuck_since[key] = parse_rfc3339(since)
        return self.stuck_since[key]
