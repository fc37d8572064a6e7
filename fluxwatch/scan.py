"""``fluxwatch scan``: one pass, like the seed's CronJob but correct.

Lists every HelmRelease once (paginated), judges each with the same pure
policy the daemon uses, reads Helm storage (metadata only) for the stuck
ones, and asks the guardrail about all of them at once before anything acts.
With ``--recover`` the admitted ones go through the recovery ladder once,
verified through a watch that runs for the duration of the scan.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from fluxwatch.announce import EventAnnouncer
from fluxwatch.engine.clock import Clock
from fluxwatch.engine.guardrail import Guardrail
from fluxwatch.engine.policy import Kind, StorageState, Verdict, decide
from fluxwatch.engine.recovery import Recovery, ViewWaiter
from fluxwatch.kube.client import HELMRELEASES, KubeApiError, KubeClient
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC, HRView
from fluxwatch.kube.informer import Informer
from fluxwatch.kube.patch import HelmReleaseWriter, HelmStorageReader
from fluxwatch.notify.event import Event
from fluxwatch.settings import Settings, engine_settings, recovery_options


def row(view: HRView, verdict: Verdict) -> dict[str, Any]:
    snapshot = view.last_release
    return {
        "namespace": view.namespace,
        "name": view.name,
        "verdict": verdict.kind.value,
        "skip": verdict.skip.value if verdict.skip else "",
        "reason": verdict.reason,
        "releaseName": view.release_name,
        "storageNamespace": view.storage_namespace,
        "helmStatus": snapshot.status if snapshot else "",
        "helmVersion": snapshot.version if snapshot else None,
    }


async def run_scan(settings: Settings, *, output: str = "table", recover: bool = False) -> int:
    engine = engine_settings(settings)
    client = await KubeClient.from_config(settings.kubeconfig, settings.context)
    waiter = ViewWaiter()
    namespaces: list[str | None] = list(settings.watch.namespaces) or [None]
    informers = [
        Informer(
            client,
            HELMRELEASES,
            HELMRELEASES_CODEC,
            lambda _t, v, _o: waiter.notify(v),
            namespace=ns,
            label_selector=str(engine.label_selector) or None,
            page_size=settings.watch.page_size,
        )
        for ns in namespaces
    ]
    tasks = [asyncio.create_task(i.run()) for i in informers]
    try:
        await asyncio.gather(*(i.synced.wait() for i in informers))
        clock = Clock()
        now = clock.now()
        storage = HelmStorageReader(client)
        rows: list[dict[str, Any]] = []
        stuck: dict[tuple[str, str], tuple[HRView, Verdict]] = {}
        for informer in informers:
            for view in sorted(informer.cache.values(), key=lambda v: (v.namespace, v.name)):
                verdict = decide(view, None, engine, now)
                if verdict.needs_storage:
                    try:
                        state = StorageState.of(
                            await storage.releases(view.storage_namespace, view.release_name)
                        )
                    except KubeApiError as exc:
                        state = StorageState.unreadable(f"{exc.code} {exc.reason}")
                    verdict = decide(view, None, engine, now, state)
                if verdict.kind in (Kind.STUCK, Kind.RESUME_PENDING):
                    stuck[view.key] = (view, verdict)
                rows.append(row(view, verdict))
        guard = Guardrail(engine.guardrail)
        admission = guard.admit(
            [k for k, (_, v) in stuck.items() if v.kind is Kind.STUCK],
            now,
            urgent=[k for k, (_, v) in stuck.items() if v.kind is Kind.RESUME_PENDING],
        )
        guard_text = "; ".join(e.message for e in admission.events) or (
            f"would act on {len(admission.act)} of {len(stuck)} stuck"
        )
        events: list[Event] = []
        if recover and admission.act and not engine.guardrail.dry_run:
            recovery = Recovery(
                HelmReleaseWriter(client),
                waiter,
                engine,
                recovery_options(settings),
                EventAnnouncer(events.append),
                clock=clock,
                storage=storage,
            )
            await asyncio.gather(*(recovery(*stuck[key]) for key in admission.act))
            await recovery.drain(settings.shutdown_timeout)
        if output == "json":
            doc = {
                "releases": rows,
                "guardrail": guard_text,
                "events": [e.to_dict() for e in events],
            }
            print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        else:
            print(f"{'NAMESPACE':20} {'NAME':32} {'VERDICT':15} {'HELM':22} REASON")
            for r in rows:
                helm = f"{r['helmStatus']} v{r['helmVersion']}" if r["helmStatus"] else "-"
                verdict = r["skip"] or r["verdict"]
                print(f"{r['namespace']:20} {r['name']:32} {verdict:15} {helm:22} {r['reason']}")
            print(f"\nguardrail: {guard_text}")
            for e in events:
                print(f"{e.reason}: {e.message}")
        return 0
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.close()
