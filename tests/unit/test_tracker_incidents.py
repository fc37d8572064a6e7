"""Incidents in the tracker, under looptime (issue 12): seen whole before the first write,
a backlog worked off oldest first, a person's approval, a trip that freezes ladders.

Loop time 0 is ``T0``; the default threshold is 300 s and the incident window 600 s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_objects import T0, ready, stuck, stuck_obj
from msgspec.structs import replace

from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings
from fluxwatch.engine.guardrail import (
    Approval,
    GuardEvent,
    GuardrailState,
    OverBudget,
    TripCleared,
    Tripped,
)
from fluxwatch.engine.policy import Kind, Verdict
from fluxwatch.engine.tracker import Tracker
from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.kube.helmrelease import HRView, hr_view
from fluxwatch.kube.informer import ADDED

pytestmark = pytest.mark.looptime

DAY = 86400.0


class Harness:
    """A tracker on a clock whose loop time 0 is T0; ``work`` seconds per recovery, after
    which the release is Ready (``recover``) or left as it was."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        work: float = 0.0,
        recover: bool = True,
        active: bool = True,
        reset: bool = False,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.acts: list[tuple[float, str]] = []
        self.events: list[tuple[float, GuardEvent]] = []
        self.work = work
        self.recover = recover
        self.tracker = Tracker(
            settings or EngineSettings(),
            Clock(epoch=T0 + self.loop.time()),
            self.on_due,
            on_guard=lambda e: self.events.append((self.loop.time(), e)),
            active=active,
            reset=reset,
        )

    async def on_due(self, view: HRView, verdict: Verdict) -> None:
        self.acts.append((self.loop.time(), view.name))
        await asyncio.sleep(self.work)
        if self.recover and view.ready is not None:
            fixed = replace(view.ready, status="True", reason="UpgradeSucceeded")
            self.tracker.upsert(replace(view, ready=fixed))

    def kinds(self) -> list[type]:
        return [type(e) for _, e in self.events]

    async def until(self, loop_time: float) -> None:
        await asyncio.sleep(loop_time - self.loop.time())


def names(n: int, prefix: str = "hr") -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(n)]


# -- one incident, seen whole ---------------------------------------------------------------


async def test_eleven_crossing_a_second_apart_trip_before_any_write() -> None:
    """The seed's "acts on 10, then refuses" in slow motion is gone: while the first is
    due, ten more of its incident are still on their way, so it waits for them; when the
    eleventh is due the incident trips, and nothing was written."""
    h = Harness()
    for i, n in enumerate(names(11)):
        h.tracker.handle(ADDED, stuck(n, since=T0 + i), None)
    await h.until(320)
    assert h.acts == []
    assert h.kinds() == [Tripped]
    at, trip = h.events[0]
    assert at == 310.0
    assert isinstance(trip, Tripped) and len(trip.keys) == 11
    assert trip.incident == "inc-20260505t074458"  # T0's UTC second


async def test_a_lone_stuck_release_waits_only_for_its_incident_to_settle() -> None:
    """Ready=Unknown is also every healthy upgrade's state: one stuck release among ten
    upgrading waits until they are Ready (not for a fixed settle time), then acts."""
    h = Harness()
    h.tracker.upsert(stuck("lone", since=T0))
    upgrading = [stuck_obj(n, since=T0 + 200) for n in names(10, "up")]
    for obj in upgrading:
        h.tracker.upsert(stuck(obj["metadata"]["name"], since=T0 + 200))
    await h.until(320)
    assert h.acts == []
    for obj in upgrading:
        h.tracker.upsert(ready(obj, at=T0 + 320))
    await h.until(330)
    assert h.acts == [(320.0, "lone")]
    assert h.events == []


async def test_a_lone_stuck_release_is_acted_on_in_the_tick_it_is_due() -> None:
    h = Harness()
    h.tracker.upsert(stuck("lone", since=T0))
    await h.until(400)
    assert h.acts == [(300.0, "lone")]


async def test_exactly_at_the_window_is_the_same_incident() -> None:
    """Eleven releases: one at T0, ten at T0 + 600 (the window's end, included): one
    incident of eleven, refused. A second later (the field's precision) they are two
    incidents and act."""
    for late, tripped in ((600.0, True), (601.0, False)):
        h = Harness(work=1000)
        h.tracker.upsert(stuck("first", since=T0))
        for n in names(10):
            h.tracker.upsert(stuck(n, since=T0 + late))
        await h.until(1000)
        first = h.tracker.incident_of(("flux-system", "first"))
        other = h.tracker.incident_of(("flux-system", "hr-00"))
        assert (first is other) is tripped
        assert (h.kinds() == [Tripped]) is tripped
        await h.tracker.aclose()


async def test_a_leader_change_makes_one_incident_whatever_the_times() -> None:
    h = Harness()
    for i, n in enumerate(names(11)):
        h.tracker.upsert(stuck(n, since=T0 + i * 700))  # eleven windows apart
    assert len(h.tracker.incidents) == 11
    h.tracker.mark_suspects("helm-controller leader changed")
    assert len(h.tracker.incidents) == 1
    [incident] = h.tracker.incidents
    assert incident.id == "inc-20260505t074458" and incident.cause.startswith("helm")
    await h.until(1)
    assert h.acts == []  # suspects count at once: eleven of one incident


# -- a backlog --------------------------------------------------------------------------------


async def test_a_backlog_is_worked_off_under_the_budget_oldest_first() -> None:
    """Issue 12: twelve stuck releases that went Unknown in June 2023, February 2026 and
    March 2026 are three incidents, not one outage: each under max_batch, all acted on,
    oldest first, ten now (the budget) and two when the window slides."""
    h = Harness()
    june_2023, feb_2026, mar_2026 = T0 - 1000 * DAY, T0 - 80 * DAY, T0 - 50 * DAY
    backlog = [("mar", mar_2026), ("june", june_2023), ("feb", feb_2026)]
    h.tracker.resync([stuck(f"{tag}-{i}", since=at + i) for tag, at in backlog for i in range(4)])
    assert len(h.tracker.incidents) == 3
    await h.until(1)
    assert [n for _, n in h.acts] == [
        *(f"june-{i}" for i in range(4)),
        *(f"feb-{i}" for i in range(4)),
        "mar-0",
        "mar-1",
    ]
    assert h.kinds() == [OverBudget]
    await h.until(601)
    assert [n for _, n in h.acts[10:]] == ["mar-2", "mar-3"]
    assert (h.acts[10][0], Tripped not in h.kinds()) == (600.0, True)


# -- a person's approval ------------------------------------------------------------------------


async def tripped(h: Harness, n: int = 11) -> str:
    h.tracker.resync([stuck(name, since=T0) for name in names(n)])
    await h.until(300)
    [(_, trip)] = h.events
    assert isinstance(trip, Tripped)
    return trip.incident


async def test_an_approval_after_the_trip_recovers_under_the_budget() -> None:
    h = Harness()
    incident = await tripped(h)
    await h.until(400)
    assert h.tracker.approve(incident, "jane@example.com", "tok-1") is Approval.APPLIED
    await h.until(401)
    assert len(h.acts) == 10 and {t for t, _ in h.acts} == {400.0}  # the budget: 10
    assert h.kinds() == [Tripped, TripCleared, OverBudget]
    cleared = h.events[1][1]
    assert isinstance(cleared, TripCleared) and cleared.approved_by == "jane@example.com"


async def test_an_approval_before_the_trip_means_no_refusal() -> None:
    """An approval of an incident that is still growing (it is open, not refused yet)
    keeps it from being refused when it would be."""
    h = Harness()
    for i, n in enumerate(names(11)):
        h.tracker.upsert(stuck(n, since=T0 + i))
    [incident] = h.tracker.incidents
    assert h.tracker.approve(incident.id, "jane", "tok-1") is Approval.PENDING
    await h.until(320)
    assert h.kinds() == [OverBudget]  # the budget still holds: ten of eleven
    assert len(h.acts) == 10


async def test_an_approval_replayed_is_used_once() -> None:
    h = Harness()
    incident = await tripped(h)
    assert h.tracker.approve(incident, "jane", "tok-1") is Approval.APPLIED
    assert h.tracker.approve(incident, "jane", "tok-1") is Approval.USED
    assert h.tracker.approve("inc-19700101t000000", "jane", "tok-2") is Approval.UNKNOWN


async def test_a_leader_change_between_trip_and_approval_keeps_ids_and_the_ledger() -> None:
    """The trip happens on one leader; the approval reaches the next one, which knows
    the incident by the same id (the table travels on the Lease) and acts; the same
    approval replayed after yet another hand-over is not used again."""
    first = Harness()
    incident = await tripped(first)
    state = first.tracker.state()
    await first.tracker.aclose()

    heir = Harness(active=False)
    heir.tracker.resync([stuck(name, since=T0) for name in names(11)])
    heir.tracker.take_over(state)
    await heir.until(301)  # a follower judges all along: its due releases are queued
    heir.tracker.set_active(True)
    await heir.until(302)
    assert heir.acts == [] and heir.tracker.guardrail.tripped and heir.events == []
    assert heir.tracker.approve(incident, "jane", "tok-1") is Approval.APPLIED
    await heir.until(303)
    assert len(heir.acts) == 10

    third = Harness(active=False)
    third.tracker.resync([stuck(name, since=T0) for name in names(11)])
    third.tracker.take_over(heir.tracker.state())
    assert third.tracker.approve(incident, "jane", "tok-1") is Approval.USED


async def test_a_trip_freezes_ladders_in_flight() -> None:
    """A release acted on alone; then ten more of its incident become due: the incident
    trips and the recovery in flight is told not to take its next step."""
    h = Harness(work=1000, recover=False)
    h.tracker.upsert(stuck("first", since=T0))
    await h.until(301)
    assert h.acts == [(300.0, "first")]
    assert h.tracker.halted(("flux-system", "first")) is None
    for n in names(10):
        h.tracker.upsert(stuck(n, since=T0 + 100))
    await h.until(401)
    assert h.kinds() == [Tripped]
    halted = h.tracker.halted(("flux-system", "first"))
    assert halted is not None and "tripped the batch guard" in halted
    incident = h.tracker.incident_of(("flux-system", "first"))
    assert incident is not None
    h.tracker.approve(incident.id, "jane", "tok")
    assert h.tracker.halted(("flux-system", "first")) is None
    await h.tracker.aclose()


# -- dependency impact ----------------------------------------------------------------------


def with_deps(obj: dict[str, Any], *deps: str) -> dict[str, Any]:
    obj["spec"]["dependsOn"] = [{"name": d} for d in deps]
    return obj


def waiting(name: str, *deps: str) -> HRView:
    """A release helm-controller holds back until what it dependsOn is Ready."""
    obj = with_deps(stuck_obj(name, since=T0), *deps)
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "DependencyNotReady",
            "message": "dependency 'flux-system/root' is not ready",
            "lastTransitionTime": "2026-05-05T07:44:58Z",
        }
    ]
    return hr_view(obj)


async def test_a_stuck_root_blocks_its_dependents_transitively() -> None:
    """The seed's bp-cilium: one stuck release holds thirty through dependsOn (ten direct,
    twenty through those); the count falls to zero when it is Ready."""
    h = Harness(work=1000, recover=False)
    root = stuck_obj("root", since=T0)
    h.tracker.upsert(hr_view(root))
    for i in range(10):
        h.tracker.upsert(waiting(f"direct-{i}", "root"))
        h.tracker.upsert(waiting(f"second-{i}", f"direct-{i}"))
        h.tracker.upsert(waiting(f"third-{i}", f"second-{i}"))
    key = ("flux-system", "root")
    assert len(h.tracker.blocking(key)) == 30
    assert h.tracker.blocked_count() == 0  # not stuck yet: blocks nobody it would not anyway
    await h.until(301)
    assert h.tracker.stuck() == [key]
    assert h.tracker.blocked_count() == 30
    assert set(h.tracker.blocked()) == {key}
    h.tracker.upsert(ready(root, at=T0 + 400))
    await h.until(402)
    assert h.tracker.blocked_count() == 0
    await h.tracker.aclose()


async def test_an_incident_is_recovered_roots_first() -> None:
    """Within an incident: never a release before one it dependsOn, and the release that
    blocks the most first; the list order (names) says otherwise on purpose."""
    h = Harness()
    h.tracker.resync(
        [
            hr_view(with_deps(stuck_obj("a-leaf", since=T0), "m-mid")),
            hr_view(with_deps(stuck_obj("b-lone", since=T0))),
            hr_view(with_deps(stuck_obj("m-mid", since=T0), "z-root")),
            hr_view(stuck_obj("z-root", since=T0)),
            waiting("w-1", "y-hub"),
            waiting("w-2", "y-hub"),
            hr_view(stuck_obj("y-hub", since=T0)),
        ]
    )
    await h.until(301)
    order = [n for _, n in h.acts]
    assert order.index("z-root") < order.index("m-mid") < order.index("a-leaf")
    assert order.index("y-hub") < order.index("b-lone")  # blocks two, blocks none


async def test_a_dependency_goes_first_even_from_a_younger_incident() -> None:
    """Oldest incident first, except that a release never goes before one it dependsOn."""
    h = Harness()
    h.tracker.resync(
        [
            hr_view(with_deps(stuck_obj("a-old", since=T0 - 2000), "z-young")),
            hr_view(stuck_obj("b-old", since=T0 - 2000)),
            hr_view(stuck_obj("z-young", since=T0 - 1000)),
        ]
    )
    await h.until(1)
    assert len(h.tracker.incidents) == 0  # all recovered: each left its incident
    assert [n for _, n in h.acts] == ["b-old", "z-young", "a-old"]


# -- the blip's other casualties ------------------------------------------------------------


def failed(name: str, at: float, reason: str = "UpgradeFailed") -> HRView:
    """An upgrade that failed at ``at`` (what an API blip leaves besides stuck ones)."""
    obj = stuck_obj(name, since=at)
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": reason,
            "message": "Helm upgrade failed: context deadline exceeded",
            "lastTransitionTime": format_rfc3339(at),
        }
    ]
    return hr_view(obj)


class Recorder(Harness):
    """The harness, keeping each verdict handed over."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verdicts: list[tuple[float, str, Verdict]] = []

    async def on_due(self, view: HRView, verdict: Verdict) -> None:
        self.verdicts.append((self.loop.time(), view.name, verdict))
        await super().on_due(view, verdict)


async def test_a_failure_inside_an_incident_window_is_reset_under_the_guardrail() -> None:
    """With reset on, a release that failed while an incident's releases went Unknown is
    handed over as a casualty, counted with its incident; one that failed outside any
    incident's window is never touched."""
    h = Recorder(reset=True, work=10)  # each recovery works for 10 s, then it is Ready
    h.tracker.upsert(stuck("stuck", since=T0))
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    h.tracker.upsert(failed("old-failed", at=T0 - 5000))
    h.tracker.upsert(failed("other-failure", at=T0 + 30, reason="ArtifactFailed"))
    await h.until(1)
    [(at, name, verdict)] = h.verdicts
    assert (at, name, verdict.kind) == (0.0, "blip-failed", Kind.CASUALTY)
    assert "inside an incident window" in verdict.reason
    incident = h.tracker.incident_of(("flux-system", "stuck"))
    assert incident is h.tracker.incident_of(("flux-system", "blip-failed"))
    assert h.tracker.incident_of(("flux-system", "old-failed")) is None
    await h.until(301)
    assert [n for _, n, _ in h.verdicts] == ["blip-failed", "stuck"]
    await h.tracker.aclose()


async def test_without_reset_a_casualty_is_announced_once_and_named_in_the_refusal() -> None:
    h = Recorder(recover=False)
    for n in names(11):
        h.tracker.upsert(stuck(n, since=T0))
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    await h.until(1)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [("blip-failed", Kind.CASUALTY)]
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))  # the same failure, seen again
    await h.until(301)
    assert [n for _, n, _ in h.verdicts] == ["blip-failed"]  # announced once; 11: refused
    [(_, trip)] = h.events
    assert isinstance(trip, Tripped)
    assert h.tracker.casualties(trip.incident) == [("flux-system", "blip-failed")]
    assert ("flux-system", "blip-failed") not in trip.keys  # not counted: nothing to write


async def test_a_reset_that_works_takes_the_casualty_out_of_its_incident() -> None:
    h = Recorder(reset=True, recover=False)
    obj_failed = failed("blip-failed", at=T0 + 30)
    h.tracker.upsert(stuck("stuck", since=T0))
    h.tracker.upsert(obj_failed)
    await h.until(1)
    fixed = replace(obj_failed, ready=replace(obj_failed.ready, status="True"))  # type: ignore[arg-type]
    h.tracker.upsert(fixed)
    incident = h.tracker.incident_of(("flux-system", "stuck"))
    assert incident is not None and list(incident.members) == [("flux-system", "stuck")]
    assert h.tracker.casualties(incident.id) == []


async def test_a_failure_listed_before_its_incident_opens_is_still_its_casualty() -> None:
    """A list delivers releases in name order: the failed one may come before the stuck
    ones whose Ready=Unknown opens the incident that holds its failure."""
    h = Recorder(reset=True, work=10)
    h.tracker.resync([failed("a-failed", at=T0 + 30), stuck("z-stuck", since=T0)])
    await h.until(1)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [("a-failed", Kind.CASUALTY)]
    assert h.tracker.incident_of(("flux-system", "a-failed")) is h.tracker.incident_of(
        ("flux-system", "z-stuck")
    )
    await h.tracker.aclose()


async def test_a_release_failing_outside_its_incident_closes_it_with_its_approval() -> None:
    """A lone stuck release of an approved incident fails much later (outside the window):
    it leaves, the incident closes, and the approval goes with it."""
    h = Recorder(recover=False, work=1000)
    h.tracker.upsert(stuck("lone", since=T0))
    [incident] = h.tracker.incidents
    assert h.tracker.approve(incident.id, "jane", "tok") is Approval.PENDING
    h.tracker.upsert(failed("lone", at=T0 + 5000))
    assert len(h.tracker.incidents) == 0
    assert h.tracker.guardrail.approved(incident.id) is None
    await h.tracker.aclose()


async def test_a_casualty_going_back_to_unknown_before_it_is_announced_is_not_one() -> None:
    """Between the failure and the next turn of the loop helm-controller retried: the
    release is at Ready=Unknown again, so it is no casualty to announce (and nothing
    breaks the admission of the others)."""
    h = Recorder(recover=False, work=1000)
    h.tracker.upsert(stuck("stuck", since=T0))
    h.tracker.upsert(failed("flaky", at=T0 + 30))
    h.tracker.upsert(stuck("flaky", since=T0 + 40))  # same tick: retried, Unknown again
    await h.until(301)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [("stuck", Kind.STUCK)]
    await h.tracker.aclose()


# -- what the mutation run of tracker.py asked for (tests/mutants.md) -------------------------


def key(name: str) -> tuple[str, str]:
    return ("flux-system", name)


async def test_by_default_a_casualty_is_announced_and_costs_no_attempt() -> None:
    handed: list[Verdict] = []
    tracker = Tracker(EngineSettings(), Clock(epoch=T0), lambda v, verdict: handed.append(verdict))
    tracker.upsert(stuck("stuck", since=T0))
    tracker.upsert(failed("blip-failed", at=T0 + 30))
    await asyncio.sleep(1)
    [verdict] = handed
    assert (verdict.kind, verdict.due_at) == (Kind.CASUALTY, T0)
    assert tracker.guardrail.attempts(key("blip-failed")) == 0


async def test_with_reset_a_casualty_costs_an_attempt_and_is_busy_while_reset() -> None:
    h = Recorder(reset=True, recover=False, work=1000)
    h.tracker.upsert(stuck("stuck", since=T0))
    await h.until(5)
    h.tracker.upsert(failed("blip-failed", at=T0 + 5))
    await h.until(6)
    [(_, _, verdict)] = h.verdicts
    assert (verdict.kind, verdict.due_at) == (Kind.CASUALTY, T0 + 5)
    assert h.tracker.guardrail.attempts(key("blip-failed")) == 1
    assert h.tracker.busy == (key("blip-failed"),)
    await h.tracker.aclose()


async def test_an_announced_casualty_is_busy_while_announced() -> None:
    h = Recorder(recover=False, work=1000)
    h.tracker.upsert(stuck("stuck", since=T0))
    await h.until(5)
    h.tracker.upsert(failed("blip-failed", at=T0 + 5))
    await h.until(6)
    [(_, _, verdict)] = h.verdicts
    assert (verdict.kind, verdict.due_at) == (Kind.CASUALTY, T0 + 5)
    assert h.tracker.busy == (key("blip-failed"),)
    await h.tracker.aclose()


async def test_a_resume_in_flight_is_no_longer_due() -> None:
    h = Harness(work=1000)
    obj = stuck_obj("half-toggled", since=T0)
    obj["spec"]["suspend"] = True
    obj["metadata"].setdefault("annotations", {})["fluxwatch.io/suspended-at"] = "x"
    h.tracker.upsert(hr_view(obj))
    await h.until(1)
    assert h.acts == [(0.0, "half-toggled")]
    assert (h.tracker.due, h.tracker.busy) == ((), (key("half-toggled"),))
    h.tracker.upsert(stuck("other", since=T0 - 300))  # another admission meanwhile
    await h.until(2)
    assert [n for _, n in h.acts] == ["half-toggled", "other"]
    await h.tracker.aclose()


async def test_the_state_for_the_next_leader_carries_incidents_and_approvals() -> None:
    h = Harness()
    incident = await tripped(h)
    await h.until(400)
    h.tracker.set_active(False)  # keep the trip: a follower does not admit
    assert h.tracker.approve(incident, "jane", "tok-1") is Approval.APPLIED
    state = h.tracker.state()
    assert state.incidents == ((incident, T0, ""),)
    [approved] = state.approvals
    assert (approved.incident, approved.by, approved.at) == (incident, "jane", T0 + 400)


async def test_an_approval_lifts_the_halt_before_the_next_admission() -> None:
    """The follower keeps the trip (it admits nothing), but a ladder in flight is no
    longer halted once a person approved its incident."""
    h = Harness(work=1000, recover=False)
    h.tracker.upsert(stuck("first", since=T0))
    await h.until(301)
    for n in names(10):
        h.tracker.upsert(stuck(n, since=T0 + 100))
    await h.until(401)
    assert h.tracker.halted(key("first")) is not None
    h.tracker.set_active(False)
    incident = h.tracker.incident_of(key("first"))
    assert incident is not None
    assert h.tracker.approve(incident.id, "jane", "tok") is Approval.APPLIED
    assert h.tracker.guardrail.tripped
    assert h.tracker.halted(key("first")) is None
    await h.tracker.aclose()


async def test_a_new_leader_takes_over_the_attempts_of_releases_still_stuck_only() -> None:
    first = Harness(recover=False)
    first.tracker.resync([stuck(n, since=T0) for n in ("still", "fixed", "gone")])
    await first.until(301)
    state = first.tracker.state()
    assert {k[1]: n for k, n, _ in state.attempts} == {"still": 1, "fixed": 1, "gone": 1}
    await first.tracker.aclose()

    heir = Harness(active=False, recover=False)
    fixed = stuck_obj("fixed", since=T0)
    heir.tracker.resync([stuck("still", since=T0), ready(fixed, at=T0 + 301)])
    heir.tracker.take_over(state)
    attempts = heir.tracker.guardrail.attempts
    assert (attempts(key("still")), attempts(key("fixed")), attempts(key("gone"))) == (1, 0, 0)


async def test_casualties_of_an_unknown_incident_are_none() -> None:
    h = Harness()
    assert h.tracker.casualties("inc-19700101t000000") == []


async def test_an_announced_casualty_listed_before_its_incident_opens_is_announced() -> None:
    h = Recorder(recover=False)
    h.tracker.resync([failed("a-failed", at=T0 + 30), stuck("z-stuck", since=T0)])
    await h.until(1)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [("a-failed", Kind.CASUALTY)]


async def test_a_reset_casualty_going_back_to_unknown_before_its_reset_is_not_one() -> None:
    h = Recorder(reset=True, recover=False, work=1000)
    h.tracker.upsert(stuck("stuck", since=T0))
    h.tracker.upsert(failed("flaky", at=T0 + 30))
    h.tracker.upsert(stuck("flaky", since=T0 + 40))  # same tick: retried, Unknown again
    await h.until(1)
    assert h.tracker.guardrail.attempts(key("flaky")) == 0  # nothing was admitted for it
    await h.until(341)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [
        ("stuck", Kind.STUCK),
        ("flaky", Kind.STUCK),
    ]
    await h.tracker.aclose()


async def test_a_reset_casualty_ready_before_its_reset_is_not_one() -> None:
    h = Recorder(reset=True, recover=False, work=1000)
    h.tracker.upsert(stuck("stuck", since=T0))
    view = failed("flaky", at=T0 + 30)
    h.tracker.upsert(view)
    h.tracker.upsert(replace(view, ready=replace(view.ready, status="True")))  # type: ignore[arg-type]
    await h.until(301)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [("stuck", Kind.STUCK)]
    assert h.tracker.guardrail.attempts(key("flaky")) == 0  # nothing was admitted for it
    await h.tracker.aclose()


@pytest.mark.parametrize("then", ["ready", "unknown"])
async def test_a_failure_that_is_over_before_an_incident_opens_is_no_casualty(then: str) -> None:
    """It failed, then was Ready (or Unknown again) before the incident holding the
    failure's instant opened: the incident does not take it."""
    h = Recorder(reset=True, recover=False, work=1000)
    view = failed("flaky", at=T0 + 30)
    h.tracker.upsert(view)
    if then == "ready":
        h.tracker.upsert(replace(view, ready=replace(view.ready, status="True")))  # type: ignore[arg-type]
    else:
        h.tracker.upsert(stuck("flaky", since=T0 + 40))
    h.tracker.upsert(stuck("stuck", since=T0))
    await h.until(1)
    assert h.verdicts == []
    assert h.tracker.guardrail.attempts(key("flaky")) == 0  # nothing was admitted for it
    if then == "ready":
        assert h.tracker.incident_of(key("flaky")) is None
    await h.until(301)
    assert [n for _, n, _ in h.verdicts] == ["stuck"]
    await h.tracker.aclose()


async def test_a_failure_helm_controller_handles_itself_joins_no_incident() -> None:
    h = Recorder(recover=False)
    h.tracker.upsert(stuck("stuck", since=T0))
    h.tracker.upsert(failed("artifact", at=T0 + 30, reason="ArtifactFailed"))
    await h.until(1)
    assert h.tracker.incident_of(key("artifact")) is None
    assert h.verdicts == []


async def test_an_incident_reopened_at_the_same_instant_takes_the_failures_it_holds() -> None:
    """The same id again (the same start): its window is swept anew."""
    h = Recorder(recover=False)
    lone = stuck_obj("lone", since=T0)
    h.tracker.upsert(hr_view(lone))
    h.tracker.upsert(ready(lone, at=T0 + 10))
    assert len(h.tracker.incidents) == 0
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    h.tracker.upsert(stuck("other", since=T0))
    await h.until(1)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [("blip-failed", Kind.CASUALTY)]


@pytest.mark.parametrize("reset", [False, True])
async def test_a_casualty_deleted_before_it_is_handed_over_is_forgotten(reset: bool) -> None:
    h = Recorder(reset=reset, recover=False, work=1000)
    h.tracker.upsert(stuck("stuck", since=T0))
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    h.tracker.delete(key("blip-failed"))
    await h.until(301)
    assert [n for _, n, _ in h.verdicts] == ["stuck"]
    await h.tracker.aclose()


async def test_a_failure_deleted_before_its_incident_opens_is_forgotten() -> None:
    h = Recorder(recover=False, work=1000)
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    h.tracker.delete(key("blip-failed"))
    h.tracker.upsert(stuck("stuck", since=T0))
    await h.until(301)
    assert [n for _, n, _ in h.verdicts] == ["stuck"]
    await h.tracker.aclose()


async def test_a_casualty_deleted_and_created_again_is_announced_again() -> None:
    h = Recorder(recover=False)
    h.tracker.upsert(stuck("stuck", since=T0))
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    await h.until(1)
    h.tracker.delete(key("blip-failed"))
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    await h.until(2)
    assert [(t, n) for t, n, _ in h.verdicts] == [(0.0, "blip-failed"), (1.0, "blip-failed")]


async def test_casualties_are_reset_in_the_order_they_failed_before_later_stuck_ones() -> None:
    """Queued while following, handed over at once on leading: one incident, nothing
    blocks anything, so by their own instant: the failures (T0-950, T0-900) before the
    stuck release (due T0-700), whatever the order they came in."""
    h = Recorder(reset=True, active=False, work=1000)
    h.tracker.upsert(stuck("s", since=T0 - 1000))
    h.tracker.upsert(failed("f1", at=T0 - 900))
    h.tracker.upsert(failed("f2", at=T0 - 950))
    await h.until(1)
    h.tracker.set_active(True)
    await h.until(2)
    assert [n for _, n, _ in h.verdicts] == ["f2", "f1", "s"]
    await h.tracker.aclose()


async def test_within_an_incident_the_release_blocking_more_goes_first_even_if_due_later() -> None:
    h = Harness()
    h.tracker.resync(
        [
            hr_view(stuck_obj("lone", since=T0 - 1000)),
            hr_view(stuck_obj("hub", since=T0 - 990)),
            waiting("w-1", "hub"),
            waiting("w-2", "hub"),
        ]
    )
    await h.until(1)
    assert [n for _, n in h.acts] == ["hub", "lone"]


async def test_of_two_due_the_dependency_goes_first() -> None:
    h = Harness()
    h.tracker.resync(
        [hr_view(with_deps(stuck_obj("a-leaf", since=T0), "z-root")), stuck("z-root", since=T0)]
    )
    await h.until(301)
    assert [n for _, n in h.acts] == ["z-root", "a-leaf"]


async def test_each_incident_of_the_due_releases_settles_on_its_own() -> None:
    """Two incidents due at once (two from the older, one from the younger): the younger
    has ten more on their way, so its due release waits; the older's act."""
    h = Harness(active=False)
    h.tracker.resync([stuck("a1", since=T0 - 1000), stuck("a2", since=T0 - 1000)])
    h.tracker.upsert(stuck("b1", since=T0))
    for n in names(10, "u"):
        h.tracker.upsert(stuck(n, since=T0 + 100))
    await h.until(301)
    h.tracker.set_active(True)
    await h.until(302)
    assert sorted(n for _, n in h.acts) == ["a1", "a2"]


async def test_nine_on_their_way_and_a_casualty_let_a_stuck_release_act() -> None:
    """Ten of its incident at Ready=Unknown in all (max_batch is ten); the casualty is
    not on its way to stuck and is not counted."""
    h = Harness(recover=False)
    h.tracker.upsert(stuck("lone", since=T0))
    for n in names(9, "up"):
        h.tracker.upsert(stuck(n, since=T0 + 200))
    h.tracker.upsert(failed("blip-failed", at=T0 + 30))
    await h.until(301)
    assert ("lone" in [n for _, n in h.acts], h.events) == (True, [])


async def test_a_new_leader_takes_the_failures_its_restored_incidents_hold() -> None:
    """The previous leader's incident started earlier than ours: a failure before our
    incident's start is inside its window, a casualty at once (the stuck member may never
    see another event). The restored incident closes with its last member."""
    h = Recorder(recover=False, active=False)
    h.tracker.resync([failed("a-failed", at=T0 - 50), stuck("z-stuck", since=T0)])
    assert h.tracker.incident_of(key("a-failed")) is None
    h.tracker.take_over(GuardrailState(incidents=(("inc-earlier", T0 - 100, "a blip"),)))
    h.tracker.set_active(True)
    await h.until(1)
    assert [(n, v.kind) for _, n, v in h.verdicts] == [("a-failed", Kind.CASUALTY)]
    incident = h.tracker.incident_of(key("a-failed"))
    assert incident is not None and incident.id == "inc-earlier"
    assert incident is h.tracker.incident_of(key("z-stuck"))
    h.tracker.delete(key("a-failed"))
    h.tracker.delete(key("z-stuck"))
    assert len(h.tracker.incidents) == 0
