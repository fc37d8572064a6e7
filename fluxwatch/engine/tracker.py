"""One record and at most one deadline per HelmRelease, moved by watch events.

The informer calls :meth:`Tracker.handle` (or :meth:`upsert` /
:meth:`delete`) for every change. Each call judges that one release with the
pure policy at the current instant and sets, moves or cancels its deadline:
``Ready.lastTransitionTime + threshold`` for a release that would be stuck if
nothing changes, now for one whose clock ran out before fluxwatch started.
No loop ever walks all releases; an event costs a dict lookup, the policy and
at most one heap push (none when the deadline did not move).

When deadlines fall due (:class:`~fluxwatch.engine.clock.Scheduler` hands
over all that fall due in the same instant together), each release is judged
again at that instant; the stuck ones join the set of due releases, and the
guardrail is asked once about the whole set before anything acts (count
first, then act). Each admitted release goes to ``on_due(view, verdict)``,
sync or async; while that runs the release is *busy* and is not offered
again. When it returns, the release is judged afresh: still stuck, it is due
again and the guardrail's backoff decides when it is tried next; Ready, its
attempts are forgotten. The outcome is read from the watch, never from the
callback.

A list is applied synchronously by the informer (or :meth:`resync`), and the
deadlines it sets fire on a later turn of the loop, so everything already
stuck at start-up is counted as one batch.

The tracker also keeps what the guardrail and people need to see a release in
its context: its incident (:mod:`~fluxwatch.engine.incidents`: joined while it
is at Ready=Unknown, or failed inside the incident's window as a casualty),
the ``dependsOn`` graph (what a stuck release blocks, and roots-first order),
and a person's approvals (:meth:`approve`). Due releases are offered to the
guardrail oldest incident first, roots first within one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from functools import partial
from typing import Any

from fluxwatch.engine.clock import Clock, Scheduler
from fluxwatch.engine.config import EngineSettings
from fluxwatch.engine.dependencies import DependencyGraph
from fluxwatch.engine.guardrail import Approval, GuardEvent, Guardrail, GuardrailState, Key
from fluxwatch.engine.incidents import Incident, Incidents
from fluxwatch.engine.policy import Kind, Skip, Suspicion, Verdict, casualty, decide
from fluxwatch.kube.helmrelease import HRView
from fluxwatch.kube.watch import DELETED

__all__ = ["OnDue", "OnGuard", "Record", "Tracker"]

log = logging.getLogger(__name__)

OnDue = Callable[[HRView, Verdict], Awaitable[Any] | None]
OnGuard = Callable[[GuardEvent], object]

_NOWHERE: dict[Key, None] = {}  # the queue of verdicts that never wait; stays empty


class Record:
    """What the tracker keeps per release: the latest view, its verdict, a suspicion."""

    __slots__ = ("suspicion", "verdict", "view")

    def __init__(self, view: HRView, verdict: Verdict) -> None:
        self.view = view
        self.verdict = verdict
        self.suspicion: Suspicion | None = None

    def __repr__(self) -> str:
        ns, name = self.view.key
        return f"Record({ns}/{name}, {self.verdict.label})"


class Tracker:
    """Per-release records and stuck deadlines; hands due releases to ``on_due``."""

    def __init__(
        self,
        settings: EngineSettings,
        clock: Clock,
        on_due: OnDue,
        *,
        on_guard: OnGuard | None = None,
        guardrail: Guardrail | None = None,
        active: bool = True,
        reset: bool = False,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.guardrail = guardrail if guardrail is not None else Guardrail(settings.guardrail)
        self._on_due = on_due
        self._on_guard = on_guard
        self._records: dict[Key, Record] = {}
        self._scheduler: Scheduler[Key] = Scheduler(clock, self._deadlines)
        # Insertion-ordered sets, oldest first: stuck and resume-pending releases waiting
        # for the guardrail, and releases handed to on_due that have not returned yet.
        self._due: dict[Key, None] = {}
        self._resume: dict[Key, None] = {}
        self._busy: dict[Key, asyncio.Future[Any] | None] = {}
        self._counts: dict[Kind | Skip, int] = {}
        self._recheck_at: float | None = None
        self._recheck: asyncio.TimerHandle | None = None
        self._active = active
        # Releases a leader change caught at Ready=Unknown, until their suspicion ends.
        self._suspects: dict[Key, float] = {}
        self.incidents = Incidents(settings.guardrail.incident_window)
        self.graph = DependencyGraph()  # spec.dependsOn of every release
        # Failed inside an incident's window (its casualties): with ``reset`` they wait for
        # the guardrail like stuck ones; without, each is only announced, once per failure.
        self._reset = reset
        self._casualties: dict[Key, None] = {}
        self._unreported: dict[Key, None] = {}
        self._reported: dict[Key, float] = {}  # casualty -> the failure it was announced for
        # Resettable failures no incident holds (yet): a list may deliver them before the
        # stuck releases that open their incident. Incident -> the start last swept for.
        self._failed: dict[Key, float] = {}
        self._swept: dict[str, float] = {}

    # -- fed by the informer ----------------------------------------------------------------

    def handle(self, event_type: str, view: HRView, old: HRView | None) -> None:
        """The HelmRelease informer's handler: ``(type, view, old)``."""
        if event_type == DELETED:
            self.delete(view.key)
        else:
            self.upsert(view)

    def upsert(self, view: HRView) -> None:
        """A release was added or changed."""
        key = view.key
        self.graph.set(key, view.depends_on)
        rec = self._records.get(key)
        if rec is None:
            verdict = decide(view, None, self.settings, self.clock.now())
            rec = self._records[key] = Record(view, verdict)
            self._count(verdict.label, 1)
        else:
            rec.view = view
            before = rec.verdict
            if self._judge(rec, self.clock.now()) is before and before.due_at is None:
                # The same settled verdict (READY, SUSPENDED, ... are single objects): it
                # was placed when it was reached, so there is nothing to move. Most watch
                # events are this one: a reconcile of a healthy release.
                return
        self._place(key, rec)

    def delete(self, key: Key) -> None:
        """A release is gone. A recovery in flight is left to finish (its writes will 404)."""
        rec = self._records.pop(key, None)
        if rec is None:
            return
        self._count(rec.verdict.label, -1)
        self.graph.remove(key)
        self._scheduler.cancel(key)
        self.guardrail.forget(key)
        self._suspects.pop(key, None)
        self._leave_due(key)
        self._leave_incident(key)
        self._casualties.pop(key, None)
        self._unreported.pop(key, None)
        self._reported.pop(key, None)
        self._failed.pop(key, None)

    def resync(self, views: Iterable[HRView]) -> None:
        """Replace everything with a full list: upsert each view, delete the others."""
        seen: set[Key] = set()
        for view in views:
            seen.add(view.key)
            self.upsert(view)
        for key in [key for key in self._records if key not in seen]:
            self.delete(key)

    # -- fed by leader election ----------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._active

    def set_active(self, active: bool) -> None:
        """Only the leader acts. A follower keeps judging and queues due releases without
        asking the guardrail (no attempts spent, no alerts); when it becomes leader the
        whole queue is counted and dispatched at once."""
        if active == self._active:
            return
        self._active = active
        if active:
            self._dispatch(self.clock.now())

    # -- fed by the lease monitor -----------------------------------------------------------

    def take_over(self, state: GuardrailState) -> None:
        """Go on counting where the previous leader stopped (its guardrail state), except
        for releases that are Ready again or gone since."""

        def keep(key: Key) -> bool:
            rec = self._records.get(key)
            return rec is not None and rec.verdict.kind is not Kind.READY

        self.guardrail.restore(state, self.clock.now(), keep)
        self.incidents.restore(state.incidents)
        # A restored incident may hold failures no incident of ours held: they are its
        # casualties now, not at a member's next event (a stuck release may get none).
        self._swept.clear()
        for incident in list(self.incidents):
            self._swept[incident.id] = incident.start
            self._sweep(incident)

    def state(self) -> GuardrailState:
        """What the next leader needs: the guardrail's counts and the open incidents."""
        state = self.guardrail.state(self.clock.now())
        return dataclasses.replace(state, incidents=self.incidents.table())

    # -- fed by a person (fluxwatch approve) -------------------------------------------------

    def approve(self, incident: str, by: str, token: str) -> Approval:
        """A person approved ``incident`` (see Guardrail.approve); its releases are
        offered to the guardrail at once when that lifted a refusal."""
        known = self.incidents.get(incident) is not None
        outcome = self.guardrail.approve(incident, by, token, self.clock.now(), known=known)
        if outcome is Approval.APPLIED:
            self._dispatch(self.clock.now())
        return outcome

    def incident_of(self, key: Key) -> Incident | None:
        """The incident ``key`` belongs to, if it is stuck, on its way there, or being
        recovered."""
        return self.incidents.of(key)

    def blocking(self, key: Key) -> frozenset[Key]:
        """What waits for ``key`` through ``dependsOn``, directly or through others."""
        return self.graph.dependents(key)

    def stuck(self) -> list[Key]:
        """Releases stuck right now: waiting for the guardrail or being recovered."""
        records = self._records
        return [
            key
            for key in (*self._due, *self._busy)
            if (rec := records.get(key)) is not None and rec.verdict.kind is Kind.STUCK
        ]

    def blocked(self) -> dict[Key, frozenset[Key]]:
        """Each stuck release and what it blocks (scan, the blocked gauge)."""
        return self.graph.blocked(self.stuck())

    def blocked_count(self) -> int:
        """How many releases wait, through ``dependsOn``, for a stuck one (each once)."""
        found: set[Key] = set()
        for blocked in self.blocked().values():
            found.update(blocked)
        return len(found)

    def halted(self, key: Key) -> str | None:
        """Why a recovery in flight must not take its next step: its incident tripped
        the batch guard after it started (and no person approved it)."""
        incident = self.incidents.of(key)
        if incident is None or incident.id not in self.guardrail.tripped_incidents():
            return None
        if self.guardrail.approved(incident.id) is not None:
            return None
        return f"incident {incident.id} tripped the batch guard; waiting for a person"

    def mark_suspects(self, reason: str, ttl: float | None = None) -> list[Key]:
        """Mark the releases Ready=Unknown right now as suspects of a controller incident.

        Their stuck verdicts (and so their alerts) name ``reason`` until ``ttl``
        seconds (default ``leases.suspect_ttl``) have passed or they are Ready
        again. Only releases with a deadline, due or busy can be Ready=Unknown
        candidates, so only those are visited. Returns the releases marked.
        """
        now = self.clock.now()
        ttl = self.settings.leases.suspect_ttl if ttl is None else ttl
        suspicion = Suspicion(reason, now + ttl)
        marked: list[Key] = []
        for key in {*self._scheduler, *self._due, *self._resume, *self._busy}:
            rec = self._records.get(key)
            ready = rec.view.ready if rec is not None else None
            if rec is not None and ready is not None and ready.status == "Unknown":
                rec.suspicion = suspicion
                self._suspects[key] = suspicion.until
                marked.append(key)
        # One leader change, one incident, whatever their times.
        self.incidents.merge(marked, reason)
        return marked

    # -- read by metrics, scan and tests ----------------------------------------------------

    def get(self, key: Key) -> Record | None:
        return self._records.get(key)

    def view(self, key: Key) -> HRView | None:
        rec = self._records.get(key)
        return rec.view if rec is not None else None

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(list(self._records.values()))

    def counts(self) -> dict[tuple[str, str], int]:
        """Releases by ``(verdict, skip reason or "")``, kept up to date per event."""
        out: dict[tuple[str, str], int] = {}
        for label, n in self._counts.items():
            if n:
                skipped = isinstance(label, Skip)
                out[(Kind.SKIPPED.value, label.value) if skipped else (label.value, "")] = n
        return out

    @property
    def due(self) -> tuple[Key, ...]:
        """Releases due and held back by the guardrail (or about to be offered to it)."""
        return (*self._resume, *self._due)

    @property
    def busy(self) -> tuple[Key, ...]:
        """Releases handed to ``on_due`` that have not returned yet."""
        return tuple(self._busy)

    def deadline(self, key: Key) -> float | None:
        return self._scheduler.deadline(key)

    def suspicion(self, key: Key) -> str | None:
        """Why the release is suspect right now, or None (the recovery layer's alert note)."""
        rec = self._records.get(key)
        held = rec.suspicion if rec is not None else None
        return held.reason if held is not None and self.clock.now() < held.until else None

    def suspects(self) -> dict[Key, str]:
        """Releases currently suspect, with the reason (walks all records: for scans only)."""
        found = ((key, self.suspicion(key)) for key in self._records)
        return {key: reason for key, reason in found if reason is not None}

    async def aclose(self) -> None:
        """Cancel recoveries in flight (crash-safe by design), then stop all timers.

        Call it after the informer has stopped feeding the tracker.
        """
        tasks = [task for task in self._busy.values() if task is not None]
        for task in tasks:
            task.cancel()
        # Their done-callbacks run before gather returns and may set deadlines: close after.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._scheduler.close()
        if self._recheck is not None:
            self._recheck.cancel()
        self._recheck = self._recheck_at = None

    # -- inside ------------------------------------------------------------------------------

    def _count(self, label: Kind | Skip, delta: int) -> None:
        self._counts[label] = self._counts.get(label, 0) + delta

    def _judge(self, rec: Record, now: float) -> Verdict:
        old = rec.verdict
        new = rec.verdict = decide(rec.view, rec, self.settings, now)
        # Most events of a release keep its verdict object (READY, a kept PROGRESSING).
        if new is not old and new.label is not old.label:
            self._count(old.label, -1)
            self._count(new.label, 1)
        return new

    def _place(self, key: Key, rec: Record) -> None:
        """Set, move or cancel the deadline that the record's verdict calls for."""
        self._regroup(key, rec)
        if key in self._busy:
            return  # judged again when on_due returns
        verdict = rec.verdict
        if key in self._queue(verdict):
            return  # already waiting for the guardrail, where it belongs
        self._leave_due(key)
        if verdict.due_at is None:
            self._scheduler.cancel(key)
            if verdict.kind is Kind.READY:
                self.guardrail.forget(key)
                rec.suspicion = None
                self._suspects.pop(key, None)
        else:
            # Also for a release already past due: it fires on the next turn of the loop,
            # together with everything else that is due by then.
            self._scheduler.schedule(key, verdict.due_at)

    def _queue(self, verdict: Verdict) -> dict[Key, None]:
        """Where a release with this verdict waits for the guardrail once due."""
        if verdict.kind is Kind.STUCK:
            return self._due
        if verdict.kind is Kind.RESUME_PENDING:
            return self._resume
        return _NOWHERE

    def _regroup(self, key: Key, rec: Record) -> None:
        """Keep the release in its incident while it is at Ready=Unknown, failed inside
        the incident's window (a casualty), or in flight."""
        verdict = rec.verdict
        if verdict.kind in (Kind.PROGRESSING, Kind.STUCK):
            ready = rec.view.ready
            if ready is not None and ready.last_transition is not None:
                self._casualties.pop(key, None)
                self._unreported.pop(key, None)
                self._failed.pop(key, None)
                incident = self.incidents.join(key, ready.last_transition)
                if self._swept.get(incident.id) != incident.start:
                    self._swept[incident.id] = incident.start
                    self._sweep(incident)
                return
        failed_at = verdict.failed_at
        if verdict.resettable and failed_at is not None:
            current = self.incidents.of(key)
            if current is not None and current is not self.incidents.holding(failed_at):
                # Leaving through the tracker: an incident it closes takes its approval.
                self._leave_incident(key)
            if self.incidents.enlist(key, failed_at) is not None:
                self._failed.pop(key, None)
                self._casualty(key, failed_at)
                return
            self._failed[key] = failed_at
        else:
            self._failed.pop(key, None)
        self._casualties.pop(key, None)
        self._unreported.pop(key, None)
        if key not in self._busy:
            self._leave_incident(key)

    def _sweep(self, incident: Incident) -> None:
        """An incident opened or starts earlier now: the failures its window holds are its
        casualties."""
        window = self.incidents.window
        for key, at in list(self._failed.items()):
            if incident.holds(at, window):
                del self._failed[key]
                self.incidents.enlist(key, at)
                self._casualty(key, at)

    def _casualty(self, key: Key, failed_at: float) -> None:
        """A release failed inside an incident's window: reset it under the guardrail, or
        announce it once for this failure."""
        if key in self._busy:
            return
        if self._reset:
            self._casualties[key] = None
        elif self._reported.get(key) != failed_at:
            self._unreported[key] = None
        else:
            return
        self._request_recheck(self.clock.now())

    def casualties(self, incident: str) -> list[Key]:
        """The releases that failed inside ``incident``'s window and are failed still."""
        found = self.incidents.get(incident)
        records = self._records
        return [
            key
            for key in (found.members if found is not None else ())
            if (rec := records.get(key)) is not None and rec.verdict.skip is Skip.FAILED
        ]

    def _leave_incident(self, key: Key) -> None:
        if self.incidents.of(key) is None:
            return
        closed = self.incidents.leave(key)
        if closed is not None:
            self.guardrail.closed(closed.id)
            self._swept.pop(closed.id, None)
        if self._due or self.guardrail.tripped:  # an incident shrank: it may settle or clear
            self._request_recheck(self.clock.now())

    def _incident_id(self, key: Key) -> str:
        """The batch the guardrail counts ``key`` in: its incident. A release in none (a
        resume in flight, one that recovered within the batch window) is a batch of its
        own: lumped together, eleven of them tripped the guard for an incident ``""``."""
        incident = self.incidents.of(key)
        return incident.id if incident is not None else f"{key[0]}/{key[1]}"

    def _ordered_due(self) -> list[Key]:
        """Due releases (stuck ones and casualties to reset) in the order to act: the
        oldest incident first (a backlog is worked off oldest first); within it roots
        first, those that block the most releases before those that block none, then by
        their own deadline; and never a release before one it dependsOn (it would only go
        back to waiting)."""
        due = [*self._due, *self._casualties]
        if len(due) > 1:
            records, incidents, graph = self._records, self.incidents, self.graph

            def rank(key: Key) -> tuple[float, int, float]:
                incident = incidents.of(key)
                verdict = records[key].verdict
                at = verdict.due_at or verdict.failed_at or 0.0
                start = incident.start if incident is not None else at
                return start, -len(graph.dependents(key)), at

            due.sort(key=rank)
            due = graph.order(due)
        return due

    def _unsettled(self, due: list[Key], suspects: list[Key]) -> dict[str, int]:
        """Per incident of a due release: its releases at Ready=Unknown that are not due,
        busy or suspect yet (the guardrail waits for them to settle)."""
        out: dict[str, int] = {}
        counted = {*due, *self._busy, *suspects}
        records = self._records
        seen: set[str] = set()
        for key in due:
            incident = self.incidents.of(key)
            if incident is None or incident.id in seen:
                continue
            seen.add(incident.id)
            more = sum(
                1
                for k in incident.members
                if k not in counted
                and (rec := records.get(k)) is not None
                and rec.verdict.kind is Kind.PROGRESSING
            )
            if more:
                out[incident.id] = more
        return out

    def _leave_due(self, key: Key) -> None:
        if key in self._due:
            del self._due[key]
        elif key in self._resume:
            del self._resume[key]
        else:
            return
        if self.guardrail.tripped:  # the count fell: maybe below max_batch
            self._request_recheck(self.clock.now())

    def _deadlines(self, keys: list[Key], at: float) -> None:
        """Scheduler callback: these releases' deadlines passed at the instant ``at``."""
        for key in keys:
            rec = self._records.get(key)
            if rec is None or key in self._busy:
                continue
            queue = self._queue(self._judge(rec, at))
            if queue is _NOWHERE:
                self._place(key, rec)
            else:
                queue[key] = None
        self._dispatch(at)

    def _dispatch(self, now: float) -> None:
        """Ask the guardrail about every due release at once, then start the admitted ones."""
        if not self._active:
            return
        if self._unreported:
            # Announced only (reset is off): no write, so nothing for the guardrail to count.
            for key in list(self._unreported):
                rec = self._records[key]
                del self._unreported[key]
                if rec.verdict.resettable and rec.verdict.failed_at is not None:
                    self._reported[key] = rec.verdict.failed_at
                    self._start(key, rec, casualty(rec.view, rec.verdict, now))
        if (
            not self._due
            and not self._resume
            and not self._casualties
            and not self.guardrail.tripped
        ):
            return
        suspects = self._live_suspects(now)
        due = self._ordered_due()
        admission = self.guardrail.admit(
            due,
            now,
            busy=self._busy.keys(),
            urgent=self._resume,
            suspects=suspects,
            incident_of=self._incident_id,
            unsettled=self._unsettled(due, suspects),
        )
        if suspects and self.guardrail.tripped:
            # The count also falls when a suspicion ends: ask again then.
            self._request_recheck(min(self._suspects[k] for k in suspects))
        for event in admission.events:
            log.log(
                logging.ERROR if event.severity == "error" else logging.INFO,
                event.message,
                extra={"reason": event.reason},
            )
            if self._on_guard is not None:
                try:
                    self._on_guard(event)
                except Exception:
                    log.exception("guardrail event handler failed")
        for key in admission.act:
            self._due.pop(key, None)
            self._resume.pop(key, None)
            rec = self._records[key]
            if key in self._casualties:
                del self._casualties[key]
                self._start(key, rec, casualty(rec.view, rec.verdict, now))
            else:
                self._start(key, rec)
        if admission.next_check is not None:
            self._request_recheck(admission.next_check)

    def _live_suspects(self, now: float) -> list[Key]:
        """Suspects still on their way to stuck (few: those Unknown at a leader change)."""
        live: list[Key] = []
        for key, until in list(self._suspects.items()):
            rec = self._records.get(key)
            if until <= now or rec is None:
                del self._suspects[key]
            elif rec.verdict.kind in (Kind.PROGRESSING, Kind.STUCK):
                live.append(key)
        return live

    def _request_recheck(self, when: float) -> None:
        """Make sure the guardrail is asked again no later than ``when``."""
        if self._recheck_at is not None and self._recheck_at <= when:
            return
        if self._recheck is not None:
            self._recheck.cancel()
        self._recheck_at = when
        self._recheck = self.clock.call_at(when, partial(self._rechecked, when))

    def _rechecked(self, when: float) -> None:
        self._recheck = self._recheck_at = None
        # asyncio may run a timer one clock tick early: judge at the instant it stands for.
        self._dispatch(max(self.clock.now(), when))

    def _start(self, key: Key, rec: Record, verdict: Verdict | None = None) -> None:
        self._busy[key] = None
        try:
            result = self._on_due(rec.view, verdict if verdict is not None else rec.verdict)
        except Exception:
            log.exception("on_due failed", extra={"namespace": key[0], "hr": key[1]})
            self._finish(key)
            return
        if not inspect.isawaitable(result):
            self._finish(key)
            return
        task = asyncio.ensure_future(result)
        self._busy[key] = task
        task.add_done_callback(partial(self._finished, key))

    def _finished(self, key: Key, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "on_due failed",
                exc_info=task.exception(),
                extra={"namespace": key[0], "hr": key[1]},
            )
        self._finish(key)

    def _finish(self, key: Key) -> None:
        self._busy.pop(key, None)
        now = self.clock.now()
        self.guardrail.finished(key, now)
        rec = self._records.get(key)
        if rec is not None:
            self._judge(rec, now)
            self._place(key, rec)
        if self.guardrail.tripped:
            self._request_recheck(self.clock.now())
