"""The seed's recovery CronJob (FLUX-FACTS §1), reimplemented as the baseline.

Every ``schedule`` seconds (2 min in the seed) one run: list every
HelmRelease in the cluster; for each with ``Ready=Unknown`` whose
``lastTransitionTime`` is older than ``threshold`` (5 min), guess the release
name as ``spec.releaseName or metadata.name``, list its Helm release Secrets
in the HelmRelease's namespace by label, take the "newest" by sorting their
names, and when that one is labelled ``status=deployed`` patch
``spec.suspend=true``, sleep ``pause`` (5 s), patch ``spec.suspend=false``.
After 10 releases acted on in one run it refuses the rest.

The seed's defects are kept where they shape what is measured: it counts
while acting (ten are patched before the eleventh is refused), it sorts names
(``v9`` beats ``v10``), it acts on one release at a time with the pause in
between, and it swallows errors of its patches. It is driven through
kubernetes_asyncio, as a Python rewrite of the script would be, and like
``kubectl get -o json`` it reads whole objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from bench.common import HR_GROUP, HR_PLURAL, HR_VERSION
from fluxwatch.kube.fields import parse_rfc3339

MAX_PER_RUN = 10


class CronJob:
    def __init__(
        self,
        api_client: Any,
        *,
        threshold: float,
        schedule: float,
        pause: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from kubernetes_asyncio import client as k8s_client

        self.custom = k8s_client.CustomObjectsApi(api_client)
        self.core = k8s_client.CoreV1Api(api_client)
        self.threshold = threshold
        self.schedule = schedule
        self.pause = pause
        self.clock = clock
        self.runs = 0
        self.acted = 0
        self.refused = 0

    async def run_forever(self) -> None:
        """One run per tick of the schedule; a run that overruns skips the ticks it missed
        (the Job of the next tick would find the same releases)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            await self.run_once()
            ticks = int((loop.time() - start) / self.schedule) + 1
            await asyncio.sleep(max(0.0, start + ticks * self.schedule - loop.time()))

    async def run_once(self) -> None:
        self.runs += 1
        listed = await self.custom.list_cluster_custom_object(HR_GROUP, HR_VERSION, HR_PLURAL)
        now = self.clock()
        acted = 0
        for hr in listed.get("items") or ():
            ready = next(
                (
                    c
                    for c in (hr.get("status") or {}).get("conditions") or ()
                    if c.get("type") == "Ready"
                ),
                None,
            )
            if ready is None or ready.get("status") != "Unknown":
                continue
            try:
                since = parse_rfc3339(ready.get("lastTransitionTime") or "")
            except ValueError:
                continue
            if now - since <= self.threshold:
                continue
            meta, spec = hr["metadata"], hr.get("spec") or {}
            namespace, name = meta["namespace"], meta["name"]
            release = spec.get("releaseName") or name
            secrets = await self.core.list_namespaced_secret(
                namespace, label_selector=f"owner=helm,name={release}"
            )
            if not secrets.items:
                continue
            newest = sorted(secrets.items, key=lambda s: s.metadata.name)[-1]
            if (newest.metadata.labels or {}).get("status") != "deployed":
                continue
            if acted >= MAX_PER_RUN:
                self.refused += 1
                continue
            acted += 1
            self.acted += 1
            await self._suspend(namespace, name, True)
            await asyncio.sleep(self.pause)
            await self._suspend(namespace, name, False)

    async def _suspend(self, namespace: str, name: str, value: bool) -> None:
        with contextlib.suppress(Exception):  # the seed swallows its patch errors
            await self.custom.patch_namespaced_custom_object(
                HR_GROUP,
                HR_VERSION,
                namespace,
                HR_PLURAL,
                name,
                {"spec": {"suspend": value}},
                _content_type="application/merge-patch+json",
            )
