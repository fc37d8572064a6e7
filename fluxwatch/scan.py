"""``fluxwatch scan``: one pass, like the seed's CronJob but correct.

Lists every HelmRelease once (paginated), judges each with the same pure
policy the daemon uses, reads Helm storage (metadata only) for the stuck
ones, groups them into incidents as the daemon does (by the ids the running
leader handed over on its Lease, when that is readable), and asks the
guardrail about all of them at once before anything acts.
With ``--recover`` the admitted ones go through the recovery ladder once,
verified through a watch that runs for the duration of the scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import orjson

from fluxwatch.announce import RESUME_REFUSED, EventAnnouncer
from fluxwatch.engine.clock import Clock
from fluxwatch.engine.dependencies import DependencyGraph
from fluxwatch.engine.guardrail import LEASE_ANNOTATION, Guardrail, load_state
from fluxwatch.engine.incidents import Incident, Incidents
from fluxwatch.engine.policy import Kind, StorageState, Verdict, decide
from fluxwatch.engine.recovery import Recovery, ViewWaiter
from fluxwatch.kube.client import HELMRELEASES, LEASES, KubeApiError, KubeClient, KubeError
from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.kube.helmrelease import ANNOTATION_SUSPENDED_AT, HELMRELEASES_CODEC, HRView
from fluxwatch.kube.informer import Informer
from fluxwatch.kube.patch import HelmReleaseWriter, HelmStorageReader
from fluxwatch.notify.event import Event, Meta
from fluxwatch.settings import Settings, engine_settings, leader_lease_name, recovery_options


def row(
    view: HRView,
    verdict: Verdict,
    incident: str = "",
    blocks: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, Any]:
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
        "incident": incident,
        # What waits for this release through dependsOn (for a stuck one: what it blocks).
        "blocks": [f"{ns}/{name}" for ns, name in sorted(blocks)],
    }


async def leader_incidents(
    client: KubeClient, settings: Settings
) -> tuple[tuple[str, float, str], ...]:
    """The incident table the running leader keeps on its Lease; none when there is no
    leader election, no Lease, no access, or no readable state (the ids are then the
    scan's own, named the same way)."""
    if not settings.leader.enabled:
        return ()
    try:
        lease = await client.get(LEASES, settings.leader.namespace, leader_lease_name(settings))
    except KubeError:
        return ()
    text = ((lease.get("metadata") or {}).get("annotations") or {}).get(LEASE_ANNOTATION)
    try:
        return load_state(text).incidents if text else ()
    except ValueError:
        return ()


def group(
    judged: list[tuple[HRView, Verdict]], window: float, table: tuple[tuple[str, float, str], ...]
) -> Incidents:
    """The incidents of these releases, as the daemon groups them."""
    incidents = Incidents(window)
    incidents.restore(table)
    for view, verdict in judged:
        ready = view.ready
        if verdict.kind in (Kind.PROGRESSING, Kind.STUCK) and ready and ready.last_transition:
            incidents.join(view.key, ready.last_transition)
    return incidents


def summary(
    incident: Incident, stuck: dict[tuple[str, str], tuple[HRView, Verdict]]
) -> dict[str, Any]:
    return {
        "id": incident.id,
        "start": format_rfc3339(incident.start),
        "releases": len(incident.members),
        "stuck": sum(1 for key in incident.members if key in stuck),
        "cause": incident.cause,
    }


# How long one pass waits for its first list. The daemon waits as long as it takes
# (readiness says it cannot read); one pass that cannot list says why and exits 1.
SYNC_DEADLINE = 120.0


async def run_scan(
    settings: Settings,
    *,
    output: str = "table",
    recover: bool = False,
    sync_deadline: float = SYNC_DEADLINE,
) -> int:
    engine = engine_settings(settings)
    namespaces: list[str | None] = list(settings.watch.namespaces) or [None]
    # One watch per namespace, each on a connection of its own (kube/client.py).
    client = await KubeClient.from_config(
        settings.kubeconfig, settings.context, watches=len(namespaces)
    )
    waiter = ViewWaiter()
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
        try:
            async with asyncio.timeout(sync_deadline):
                await asyncio.gather(*(i.wait_synced() for i in informers))
        except TimeoutError:
            last = next((i.last_error for i in informers if not i.synced.is_set()), None)
            why = f"; the last answer: {last}" if last is not None else ""
            print(
                f"fluxwatch: scan: could not list HelmReleases within {sync_deadline:g}s{why}",
                file=sys.stderr,
            )
            return 1
        except KubeApiError as exc:
            # The daemon retries a refused list (its RBAC may come later); one pass
            # would wait forever, so it says what the API server refused and stops.
            print(f"fluxwatch: scan: cannot list and watch HelmReleases: {exc}", file=sys.stderr)
            print(
                "fluxwatch: scan: needs list and watch on "
                "helmreleases.helm.toolkit.fluxcd.io in the namespaces it scans "
                "(ClusterRole fluxwatch in config/rbac)",
                file=sys.stderr,
            )
            return 1
        clock = Clock()
        now = clock.now()
        storage = HelmStorageReader(client)
        judged: list[tuple[HRView, Verdict]] = []
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
                judged.append((view, verdict))
        incidents = group(
            judged, engine.guardrail.incident_window, await leader_incidents(client, settings)
        )

        def incident_of(key: tuple[str, str]) -> str:
            found = incidents.of(key)
            return found.id if found is not None else ""

        graph = DependencyGraph()
        for view, _ in judged:
            graph.set(view.key, view.depends_on)
        rows = [
            row(
                view,
                verdict,
                incident_of(view.key),
                graph.dependents(view.key) if view.key in stuck else frozenset(),
            )
            for view, verdict in judged
        ]
        due = [k for k, (_, v) in stuck.items() if v.kind is Kind.STUCK]

        def oldest_first(key: tuple[str, str]) -> tuple[float, tuple[str, str]]:
            found = incidents.of(key)
            return (found.start if found is not None else now), key

        due.sort(key=oldest_first)
        guard = Guardrail(engine.guardrail)
        admission = guard.admit(
            due,
            now,
            urgent=[k for k, (_, v) in stuck.items() if v.kind is Kind.RESUME_PENDING],
            incident_of=incident_of,
        )
        guard_text = "; ".join(e.message for e in admission.events) or (
            f"would act on {len(admission.act)} of {len(stuck)} stuck"
        )
        events: list[Event] = []
        left_suspended: list[str] = []

        def announce(event: Event) -> None:
            events.append(event)
            if event.metadata.get(Meta.ERROR, "").startswith(RESUME_REFUSED):
                obj = event.involved_object
                left_suspended.append(f"{obj.namespace}/{obj.name}")
                resume_refused.set()

        resume_refused = asyncio.Event()
        if recover and admission.act and not engine.guardrail.dry_run:
            recovery = Recovery(
                HelmReleaseWriter(client),
                waiter,
                engine,
                recovery_options(settings),
                EventAnnouncer(announce),
                clock=clock,
                storage=storage,
            )
            attempts: asyncio.Future[Any] = asyncio.gather(
                *(recovery(*stuck[key]) for key in admission.act)
            )
            refusal: asyncio.Future[Any] = asyncio.ensure_future(resume_refused.wait())
            await asyncio.wait([attempts, refusal], return_when=asyncio.FIRST_COMPLETED)
            refusal.cancel()
            if resume_refused.is_set():
                # The daemon retries a refused resume for as long as it leads; one pass
                # cannot wait for the API to allow it, so it stops and says so. The
                # marker stays: the next scan --recover or the daemon resumes it.
                attempts.cancel()
                recovery.abandon()
                with contextlib.suppress(asyncio.CancelledError):
                    await attempts
            else:
                await recovery.drain(settings.shutdown_timeout)
        if output == "json":
            doc = {
                "releases": rows,
                "incidents": [summary(i, stuck) for i in incidents],
                "guardrail": guard_text,
                "events": [e.to_dict() for e in events],
            }
            print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        else:
            print(
                f"{'NAMESPACE':20} {'NAME':32} {'VERDICT':15} {'INCIDENT':22} {'BLOCKS':6} "
                f"{'HELM':22} REASON"
            )
            for r in rows:
                helm = f"{r['helmStatus']} v{r['helmVersion']}" if r["helmStatus"] else "-"
                verdict = r["skip"] or r["verdict"]
                incident = r["incident"] or "-"
                blocks = str(len(r["blocks"])) if r["blocks"] else "-"
                print(
                    f"{r['namespace']:20} {r['name']:32} {verdict:15} {incident:22} {blocks:6} "
                    f"{helm:22} {r['reason']}"
                )
            for i in incidents:
                line = summary(i, stuck)
                print(
                    f"\nincident {line['id']}: started {line['start']}, {line['releases']} "
                    f"release(s) at Ready=Unknown, {line['stuck']} stuck"
                    + (f"; {line['cause']}" if line["cause"] else "")
                )
            print(f"\nguardrail: {guard_text}")
            for e in events:
                print(f"{e.reason}: {e.message}")
        if recover:
            recovered = {
                (e.involved_object.namespace, e.involved_object.name)
                for e in events
                if e.reason == "RecoverySucceeded"
            }
            failed = [f"{ns}/{name}" for ns, name in admission.act if (ns, name) not in recovered]
            for key in left_suspended:
                print(
                    f"fluxwatch: scan: HelmRelease {key} is left suspended by fluxwatch "
                    f"({ANNOTATION_SUSPENDED_AT}): the API refused the resume (see its "
                    "RecoveryFailed event); scan --recover resumes it once the resume is "
                    "allowed, and so does the daemon",
                    file=sys.stderr,
                )
            if failed and not engine.guardrail.dry_run:
                # The events say why (a 403 names the verb); a script sees the exit code.
                print(
                    f"fluxwatch: scan: {len(failed)} of {len(admission.act)} recoveries did "
                    f"not succeed: {', '.join(failed)}",
                    file=sys.stderr,
                )
                return 1
        return 0
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.close()
