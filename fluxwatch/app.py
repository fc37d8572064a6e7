"""Wires the rooms into one daemon: a fixed set of root tasks, first failure stops all.

Root tasks: one HelmRelease informer per watched namespace (or one for the
whole cluster), the Flux Lease informer, fluxwatch's own leader election, the
telemetry server, and ``notify`` (the alert router's supervision: its workers
and secret refresher are owned by it). Every replica runs them all and keeps warm caches; only the
leader's tracker dispatches recoveries and only the leader's events reach the
alert router and the Kubernetes Event recorder. A root task that ends or fails
stops the daemon (Kubernetes restarts the pod) rather than leaving it half alive.

Events go two ways, as a Flux controller's do: through the alert router to the
providers its Alerts select, and through the recorder (on by default,
``events.record``) as core/v1 Events on the object each concerns, a HelmRelease,
a Flux controller's Lease or fluxwatch's own leader Lease, with its uid and
resourceVersion, so ``kubectl describe`` finds them. A batch refusal is one
alert, and also one Event on each refused release (recorded, not alerted).

Shutdown (SIGTERM, SIGINT or :meth:`Daemon.stop`): stop dispatching, let a
suspend-toggle in flight resume, flush the alert queues, release the leader
Lease, exit 0, all within ``shutdown_timeout``. A root task's error that
shows only while stopping is logged, not swallowed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import signal
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from opentelemetry import trace

from fluxwatch.announce import EventAnnouncer
from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings
from fluxwatch.engine.guardrail import (
    LEASE_ANNOTATION,
    Approval,
    Exhausted,
    GuardEvent,
    Key,
    OverBudget,
    Tripped,
    dump_state,
    load_state,
)
from fluxwatch.engine.incidents import Incident
from fluxwatch.engine.leases import (
    ControllerLeaderless,
    Finding,
    LeaderChanged,
    LeaderFlapping,
    LeaderReleased,
    LeaderRestored,
    LeaseMonitor,
    LeaseWatch,
)
from fluxwatch.engine.recovery import Recovery, ViewWaiter
from fluxwatch.engine.tracker import Tracker
from fluxwatch.kube.approvals import approvals
from fluxwatch.kube.client import HELMRELEASES, LEASES, KubeClient
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC, HRView
from fluxwatch.kube.informer import Backoff, Informer
from fluxwatch.kube.leader import LeaderElector
from fluxwatch.kube.lease import LeaseView, lease_view
from fluxwatch.kube.patch import (
    HelmReleaseWriter,
    HelmStorageReader,
    KubeEventWriter,
    KubeSecretReader,
)
from fluxwatch.notify.config import AlertSpec, LocalObjectReference
from fluxwatch.notify.event import Event, EventFactory, InvolvedObject, Meta
from fluxwatch.notify.metrics import NotifyMetrics, PrometheusMetrics
from fluxwatch.notify.providers import ProviderDeps, ProviderSettings
from fluxwatch.notify.providers.kubernetes_event import KubernetesEvent
from fluxwatch.notify.router import Router
from fluxwatch.notify.rules import Rule
from fluxwatch.notify.transport import RetryPolicy, Transport
from fluxwatch.settings import Settings, engine_settings, leader_lease_name, recovery_options
from fluxwatch.telemetry import tracing
from fluxwatch.telemetry.metrics import Metrics
from fluxwatch.telemetry.server import TelemetryServer

log = logging.getLogger("fluxwatch.app")
_tracer = trace.get_tracer(__name__)


class Daemon:
    """One fluxwatch replica."""

    def __init__(
        self,
        settings: Settings,
        client: KubeClient,
        *,
        metrics: Metrics | None = None,
        router: Router | None = None,
        recorder: Router | None = None,
        on_event: Callable[[Event], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.engine: EngineSettings = engine_settings(settings)
        self.client = client
        self.metrics = metrics or Metrics()
        self.router = router
        self.recorder = recorder
        self.on_event = on_event
        self.backoff = backoff
        self.events = EventFactory(settings.leader.identity)
        self._stop = asyncio.Event()
        self.informers: list[Informer[Any]] = []
        self.tracker: Tracker | None = None
        self.recovery: Recovery | None = None
        self.elector: LeaderElector | None = None
        self.server: TelemetryServer | None = None
        self.lease_watch: LeaseWatch | None = None
        self.lease_informer: Informer[LeaseView] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Root tasks whose end is already logged, so shutdown does not log it twice.
        self._reported: set[str] = set()
        # Approval tokens handled by this replica, and what it logged about approvals
        # (a problem, an unknown incident) so that each renewal does not log it again.
        self._approvals_seen: set[str] = set()
        self._approvals_logged: set[str] = set()

    # -- publishing ---------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def publish(self, event: Event) -> None:
        """Only the leader speaks: followers would repeat every alert."""
        if self.leading:
            self._speak(event)

    def publish_outcome(self, event: Event) -> None:
        """How a write of this replica's own ended, said even when it no longer leads:
        no other replica knows that outcome, so none repeats it, and dropping it would
        leave a RecoveryStarted that never ends (a Lease renewal missed on a loaded node
        while a recovery verifies is enough)."""
        self._speak(event)

    def _speak(self, event: Event) -> None:
        event = self._in_incident(event)
        log.log(
            logging.ERROR if event.severity == "error" else logging.INFO,
            event.message,
            extra={
                "reason": event.reason,
                "namespace": event.involved_object.namespace,
                "object": event.involved_object.name,
                "kind": event.involved_object.kind,
            },
        )
        if self.on_event is not None:
            self.on_event(event)
        if self.router is not None:
            self.router.publish(event)
        self._record(event)

    def _in_incident(self, event: Event) -> Event:
        """An event about a release of an incident carries the incident's id."""
        subject = event.involved_object
        if self.tracker is None or subject.kind != "HelmRelease" or Meta.INCIDENT in event.metadata:
            return event
        return _with_incident(event, self.tracker.incident_of((subject.namespace, subject.name)))

    def _record(self, event: Event) -> None:
        """A core/v1 Event only, no alert: where an alert is said (``_speak``), and for
        each release of a leader's batch refusal."""
        if self.recorder is not None:
            self.recorder.publish(event)

    def _helmrelease(self, key: tuple[str, str]) -> InvolvedObject:
        """The reference an Event about a release carries: uid and resourceVersion from
        the cache, as ``kubectl describe`` selects Events by the object's uid."""
        view = self.tracker.view(key) if self.tracker is not None else None
        if view is None:
            return InvolvedObject.helmrelease(*key)
        return InvolvedObject.helmrelease(*key, view.uid, view.resource_version)

    def _own_subject(self) -> InvolvedObject:
        """What fluxwatch-wide events hang on: its leader Lease, which the leader has
        just written (no extra RBAC, always there while someone leads); without leader
        election, its Deployment by name."""
        namespace = self.settings.leader.namespace
        if self.elector is not None:
            uid, version = self.elector.lease_uid_and_version
            return InvolvedObject.lease(namespace, self.elector.name, uid, version)
        return InvolvedObject("Deployment", namespace, "fluxwatch", api_version="apps/v1")

    def _traced_guard(self, event: GuardEvent) -> None:
        """A refusal is a trace of its own: its span parents the alert's delivery."""
        if not isinstance(event, Tripped | OverBudget | Exhausted):
            self._on_guard(event)
            return
        count = 1 if isinstance(event, Exhausted) else len(event.keys)
        with _tracer.start_as_current_span(
            "guardrail",
            attributes={"fluxwatch.guardrail.reason": event.reason, "fluxwatch.releases": count},
        ):
            self._on_guard(event)

    def _on_guard(self, event: GuardEvent) -> None:
        if isinstance(event, Tripped | OverBudget | Exhausted):
            self.metrics.guardrail_trips.labels(event.guard).inc()
        releases = [f"{ns}/{name}" for ns, name in getattr(event, "keys", ())]
        if isinstance(event, Tripped):
            approve = f"fluxwatch approve {event.incident}" if event.incident else ""
            failed = self.tracker.casualties(event.incident) if self.tracker else []
            casualties = [f"{ns}/{name}" for ns, name in failed]
            # The same words on the alert and on each release's own Event.
            tripped = functools.partial(
                self.events.guardrail_tripped,
                guardrail="batch",
                detail=event.message,
                releases=releases,
                incident=event.incident,
                approve=approve,
                casualties=casualties,
            )
            self.publish(tripped(self._own_subject()))
            if self.leading:  # one Event per release, like the alert above: the leader's
                for key in event.keys:
                    self._record(tripped(self._helmrelease(key)))
        elif isinstance(event, Exhausted):
            self.publish(
                self.events.recovery_skipped(
                    self._helmrelease(event.key),
                    why=event.message,
                )
            )
        else:
            log.info(event.message, extra={"reason": event.reason})

    def _on_finding(self, finding: Finding) -> None:
        ns, name = finding.lease
        view = self.lease_informer.cache.get(finding.lease) if self.lease_informer else None
        lease = InvolvedObject.lease(
            ns, name, view.uid if view else "", view.resource_version if view else ""
        )
        controller = finding.controller
        if isinstance(finding, LeaderChanged):
            self.metrics.lease_transitions.labels(name).inc()
            suspects: list[str] = []
            marked: list[Key] = []
            if self.tracker is not None and controller == "helm-controller":
                marked = self.tracker.mark_suspects(finding.message)
                suspects = [f"{ns_}/{name_}" for ns_, name_ in marked]
            event = self.events.leader_changed(
                lease,
                previous=finding.old,
                holder=finding.new,
                transitions=finding.transitions,
                suspects=suspects,
                controller=controller,
            )
            if marked and self.tracker is not None:
                # The incident this leader change made of its suspects.
                event = _with_incident(event, self.tracker.incident_of(marked[0]))
            self.publish(event)
        elif isinstance(finding, LeaderFlapping):
            self.publish(
                self.events.leader_flapping(
                    lease,
                    changes=finding.changes,
                    window=finding.window,
                    controller=controller,
                )
            )
        elif isinstance(finding, ControllerLeaderless):
            self.metrics.leaderless.labels(name).set(1)
            self.publish(
                self.events.controller_leaderless(
                    lease,
                    leaderless_for=max(0.0, finding.at - finding.expired_at),
                    last_holder=finding.holder or finding.released_by,
                    released=not finding.holder,
                    lease_duration=self._lease_duration(finding.lease),
                    controller=controller,
                )
            )
        elif isinstance(finding, LeaderRestored):
            self.metrics.leaderless.labels(name).set(0)
            self.publish(
                self.events.leader_restored(
                    lease,
                    holder=finding.holder,
                    leaderless_for=finding.down_for,
                    controller=controller,
                )
            )
        elif isinstance(finding, LeaderReleased):
            log.info(finding.message, extra={"namespace": ns, "object": name})

    def _lease_duration(self, key: tuple[str, str]) -> float:
        view = self.lease_informer.cache.get(key) if self.lease_informer else None
        return float(view.lease_duration_seconds or 0) if view is not None else 0.0

    # -- building -------------------------------------------------------------------------------

    def _build(self) -> None:
        settings = self.settings
        clock = Clock()
        waiter = ViewWaiter(lambda key: self.tracker.view(key) if self.tracker else None)
        writer = HelmReleaseWriter(self.client)
        storage = (
            None if settings.watch.verify_storage == "never" else HelmStorageReader(self.client)
        )
        if settings.leader.enabled:
            self.elector = LeaderElector(
                self.client,
                settings.leader.namespace,
                leader_lease_name(settings),
                settings.leader.identity,
                lease_duration=settings.leader.lease_duration,
                renew_deadline=settings.leader.renew_deadline,
                retry_period=settings.leader.retry_period,
                on_change=self._leadership,
                carry=self._hand_over,
            )
        self.recovery = Recovery(
            writer,
            waiter,
            self.engine,
            recovery_options(settings),
            EventAnnouncer(self.publish, self.events, outcome=self.publish_outcome),
            clock=clock,
            storage=storage,
            standing=self,
            metrics=self.metrics,
        )
        tracker = self.tracker = Tracker(
            self.engine,
            clock,
            self.recovery,
            on_guard=self._traced_guard,
            active=self.elector is None,
            reset=recovery_options(settings).reset,
        )

        self.metrics.follow_verdicts(tracker.counts)
        self.metrics.blocked.set_function(tracker.blocked_count)
        self.metrics.prepare(
            recovery_options(settings).ladder,
            self.engine.leases.names,
        )
        self.metrics.leader.set(1 if self.leading else 0)

        def on_helmrelease(etype: str, view: HRView, old: HRView | None) -> None:
            tracker.handle(etype, view, old)
            waiter.notify(view)

        selector = str(self.engine.label_selector) or None
        namespaces: list[str | None] = list(settings.watch.namespaces) or [None]
        for namespace in namespaces:
            self.informers.append(
                Informer(
                    self.client,
                    HELMRELEASES,
                    HELMRELEASES_CODEC,
                    on_helmrelease,
                    namespace=namespace,
                    label_selector=selector,
                    page_size=settings.watch.page_size,
                    watch_timeout=int(settings.watch.watch_timeout),
                    inactivity_timeout=settings.watch.inactivity_timeout,
                    backoff=self.backoff,
                    observer=self.metrics,
                )
            )
        if self.engine.leases.names:
            lease_watch = self.lease_watch = LeaseWatch(
                LeaseMonitor(self.engine.leases), clock, self._on_finding
            )
            self.lease_informer = Informer(
                self.client,
                LEASES,
                lease_view,
                lease_watch.handle,
                namespace=self.engine.leases.namespace,
                watch_timeout=int(settings.watch.watch_timeout),
                inactivity_timeout=settings.watch.inactivity_timeout,
                backoff=self.backoff,
                observer=self.metrics,
            )
            self.informers.append(self.lease_informer)
        self.server = TelemetryServer(
            self.metrics.registry,
            metrics_addr=settings.telemetry.metrics_addr,
            health_addr=settings.telemetry.health_addr,
            live={"root-tasks": self._tasks_alive},
            ready={f"informer-{i.name}": i.ready for i in self.informers},
        )
        self.metrics.follow_readiness(self.server.ready)

    def _leadership(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        if self.tracker is not None:
            if leading and self.elector is not None:
                self._take_over(self.tracker, self.elector.annotations)
            self.tracker.set_active(leading)

    # The guardrail's counts live on the leader Lease (DESIGN "Guardrail state"): handed
    # over with every renewal, taken over before a new leader acts.

    def _hand_over(self) -> dict[str, str]:
        if self.tracker is None:
            return {}
        if self.tracker.active and self.elector is not None:
            # Every renewal reads what `fluxwatch approve` wrote since: the leader honours it.
            self._approvals(self.tracker, self.elector.annotations)
        return {LEASE_ANNOTATION: dump_state(self.tracker.state())}

    def _approvals(self, tracker: Tracker, annotations: Mapping[str, str]) -> None:
        """Honour each person's approval on the leader Lease once (its token), whichever
        replica leads: the used tokens travel with the guardrail's state."""
        found, problems = approvals(annotations)
        seen, logged = self._approvals_seen, self._approvals_logged
        for problem in problems:
            if problem not in logged:
                logged.add(problem)
                log.warning("ignoring an approval on the leader Lease: %s", problem)
        for approval in found:
            if approval.token in seen:
                continue
            outcome = tracker.approve(approval.incident, approval.by, approval.token)
            if outcome is Approval.UNKNOWN:
                if approval.token not in logged:
                    logged.add(approval.token)
                    log.warning(
                        "approval of %s by %s: no such open incident; kept until one opens",
                        approval.incident,
                        approval.by,
                    )
                continue
            seen.add(approval.token)
            if outcome is Approval.USED:
                log.info("approval of %s by %s was used already", approval.incident, approval.by)
                continue
            incident = tracker.incidents.get(approval.incident)
            members = incident.members if incident is not None else {}
            self.publish(
                self.events.incident_approved(
                    self._own_subject(),
                    incident=approval.incident,
                    by=approval.by,
                    releases=[f"{ns}/{name}" for ns, name in members],
                    reason=approval.reason,
                )
            )

    def _take_over(self, tracker: Tracker, annotations: Mapping[str, str]) -> None:
        text = annotations.get(LEASE_ANNOTATION)
        if not text:
            return
        try:
            state = load_state(text)
        except ValueError as exc:
            # Counting from zero is what a first leader does; a bad note must not stop us.
            log.warning("ignoring the guardrail state on the leader Lease: %s", exc)
            return
        tracker.take_over(state)
        self._approvals(tracker, annotations)
        log.info(
            "took over the guardrail state: %d actions in the window, %d releases attempted",
            len(state.spent),
            len(state.attempts),
        )

    # -- what Recovery asks (engine.recovery.Standing) ------------------------------------------

    def is_leader(self) -> bool:
        return self.leading

    def attempt_of(self, key: Key) -> int:
        return self.tracker.guardrail.attempts(key) if self.tracker is not None else 0

    def suspicion_of(self, key: Key) -> str | None:
        return self.tracker.suspicion(key) if self.tracker is not None else None

    def halted(self, key: Key) -> str | None:
        return self.tracker.halted(key) if self.tracker is not None else None

    def blocking(self, key: Key) -> frozenset[Key]:
        return self.tracker.blocking(key) if self.tracker is not None else frozenset()

    async def record(self) -> bool:
        """Write-ahead: the guardrail's state is on the Lease before the action it counts."""
        return self.elector is None or await self.elector.persist()

    def _tasks_alive(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks.values())

    # -- running --------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, install_signals: bool = True) -> int:
        """Run until stopped (exit code 0) or until a root task fails (exit code 1)."""
        self._build()
        assert self.server is not None and self.tracker is not None
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        try:
            await self.server.start()
        except OSError as exc:
            # An address in use or not on this host: one line naming it, not a traceback.
            log.error("%s", exc.strerror or exc)
            await self.server.stop()
            return 1
        roots: dict[str, Coroutine[Any, Any, None]] = {
            f"informer-{inf.name}": inf.run() for inf in self.informers
        }
        if self.elector is not None:
            roots["leader-election"] = self.elector.run()
        if self.router is not None:
            # Its workers are owned by the router; one that dies ends this root.
            roots["notify"] = self.router.supervise()
        self._tasks = {name: asyncio.create_task(coro, name=name) for name, coro in roots.items()}
        stopper = asyncio.create_task(self._stop.wait(), name="stop")
        log.info(
            "fluxwatch started",
            extra={"informers": len(self.informers), "identity": self.settings.leader.identity},
        )
        done, _ = await asyncio.wait(
            [stopper, *self._tasks.values()], return_when=asyncio.FIRST_COMPLETED
        )
        code = 0
        for task in done:
            if task is stopper:
                continue
            code = 1
            self._reported.add(task.get_name())
            if task.cancelled() or task.exception() is None:
                log.error("root task %s ended; stopping", task.get_name())
            else:
                log.error(
                    "root task %s failed; stopping", task.get_name(), exc_info=task.exception()
                )
        await self._shutdown()
        stopper.cancel()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return code

    async def _shutdown(self) -> None:
        timeout = self.settings.shutdown_timeout
        log.info("shutting down", extra={"timeout": timeout})
        assert self.tracker is not None and self.recovery is not None
        self.tracker.set_active(False)
        # Stop the attempts in flight first (no new step can start), then wait for the
        # resumes they leave: a suspend-toggle's resume is shielded from that cancel, and
        # must land before the leader Lease is released.
        await self.tracker.aclose()
        await self.recovery.drain(timeout / 2)
        for name, task in self._tasks.items():
            if name != "leader-election":
                task.cancel()
        if self.lease_watch is not None:
            self.lease_watch.close()
        if self.router is not None:
            await self.router.close(timeout / 4)
        if self.recorder is not None:
            await self.recorder.close(timeout / 8)
        election = self._tasks.get("leader-election")
        if election is not None:
            election.cancel()
        for name, task in self._tasks.items():
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the shutdown itself is cancelled, not only the root task
                log.debug("root task %s cancelled", name)
            except Exception:
                if name not in self._reported:
                    log.error("root task %s failed while stopping", name, exc_info=True)
        if self.server is not None:
            await self.server.stop()
        log.info("stopped")


def _with_incident(event: Event, incident: Incident | None) -> Event:
    """``event`` carrying ``incident``'s id in its metadata (unchanged without one)."""
    if incident is None:
        return event
    return dataclasses.replace(event, metadata={**event.metadata, Meta.INCIDENT: incident.id})


async def build_router(
    settings: Settings,
    client: KubeClient,
    metrics: Metrics,
    notify_metrics: NotifyMetrics | None = None,
) -> Router:
    """The alert router; pass ``notify_metrics`` when a recorder shares the registry."""
    return await Router.from_settings(
        settings.notify,
        namespace=settings.leader.namespace,
        secret_reader=KubeSecretReader(client),
        event_writer=KubeEventWriter(client),
        metrics=notify_metrics or PrometheusMetrics(metrics.registry),
        # Webhooks carry the W3C traceparent of their delivery span when tracing is on.
        extra_headers=tracing.trace_headers if tracing.enabled() else None,
    )


RECORDER = "kubernetes-events"


def build_recorder(
    settings: Settings, client: KubeClient, notify_metrics: NotifyMetrics
) -> Router | None:
    """The Kubernetes Event recorder: a ``kubernetes-event`` provider that hears every event.

    It is a router of its own, not a lane of the alert router: its Events are not
    subject to ``notify.rateLimitInterval`` (the provider folds repeats into one Event
    as client-go does), and events meant for it alone reach no alert. None when
    ``events.record`` is off, or when ``notify.providers`` has a ``kubernetes-event``
    provider, which then decides through its alerts which Events are written.
    """
    if not settings.events.record or any(
        p.type == KubernetesEvent.type for p in settings.notify.providers
    ):
        return None
    transport = Transport(retry=RetryPolicy())
    deps = ProviderDeps(transport=transport, event_writer=KubeEventWriter(client))
    provider = KubernetesEvent(ProviderSettings(name=RECORDER, type=KubernetesEvent.type), deps)
    rule = Rule.from_spec(
        AlertSpec(name=RECORDER, provider_ref=LocalObjectReference(name=RECORDER))
    )
    router = Router(
        {RECORDER: provider},
        [rule],
        rate_limit_interval=0,
        # client-go's broadcaster queues as many Events before it drops them.
        queue_size=1000,
        metrics=notify_metrics,
        transport=transport,
    )
    router.start()
    return router


def watch_count(settings: Settings) -> int:
    """The watches ``fluxwatch run`` keeps open: HelmReleases in each watched namespace (one
    for the whole cluster) and the Flux controllers' Leases."""
    return (len(settings.watch.namespaces) or 1) + 1


async def run_daemon(settings: Settings) -> int:
    traces = tracing.setup_tracing()
    try:
        client = await KubeClient.from_config(
            settings.kubeconfig, settings.context, watches=watch_count(settings)
        )
        try:
            metrics = Metrics()
            notify_metrics = PrometheusMetrics(metrics.registry)
            router = await build_router(settings, client, metrics, notify_metrics)
            recorder = build_recorder(settings, client, notify_metrics)
            daemon = Daemon(settings, client, metrics=metrics, router=router, recorder=recorder)
            return await daemon.run()
        finally:
            await client.close()
    finally:
        # After the router's flush: the spans of the last deliveries are exported too.
        await traces.shutdown()
