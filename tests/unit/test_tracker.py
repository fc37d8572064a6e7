"""The tracker under looptime: actions fire in the very tick their threshold passes.

Loop time 0 is the wall instant ``T0``, the upstream stuck object's
``Ready.lastTransitionTime``, so with the default threshold of 300 s a release
that went Unknown at ``T0`` must be handed over at loop time 300.0 exactly.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from engine_objects import (
    LONG_RELEASE,
    T0,
    bumped,
    deleting,
    ignored,
    long_named,
    pending_upgrade,
    ready,
    stuck,
    stuck_obj,
    suspended_by_fluxwatch,
    suspended_by_person,
)
from msgspec.structs import replace

from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings, GuardrailSettings
from fluxwatch.engine.guardrail import GuardEvent, Guardrail, TripCleared, Tripped
from fluxwatch.engine.policy import Kind, Verdict
from fluxwatch.engine.tracker import Tracker
from fluxwatch.kube.helmrelease import HRView, hr_view
from fluxwatch.kube.informer import ADDED, DELETED, MODIFIED

pytestmark = pytest.mark.looptime


class Harness:
    """A tracker on a clock whose loop time 0 is T0, recording what it hands over.

    With ``recover`` the callback plays a recovery that works: the watch then delivers
    the release Ready=True. Without it nothing changes, as when every attempt fails.
    ``work`` makes the callback async and last that long.
    """

    def __init__(
        self, settings: EngineSettings | None = None, *, work: float = 0.0, recover: bool = True
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.acts: list[tuple[float, str, Verdict]] = []
        self.events: list[tuple[float, GuardEvent]] = []
        self.work = work
        self.recover = recover
        self.tracker = Tracker(
            settings or EngineSettings(),
            Clock(epoch=T0),
            self.on_due if work == 0 else self.on_due_async,
            on_guard=lambda e: self.events.append((self.loop.time(), e)),
        )

    def on_due(self, view: HRView, verdict: Verdict) -> None:
        self.acts.append((self.loop.time(), view.name, verdict))
        if self.recover and view.ready is not None:
            fixed = replace(view.ready, status="True", reason="UpgradeSucceeded")
            self.tracker.upsert(replace(view, ready=fixed, suspend=False, suspended_at=None))

    async def on_due_async(self, view: HRView, verdict: Verdict) -> None:
        self.on_due(view, verdict)
        await asyncio.sleep(self.work)

    def times(self) -> list[tuple[float, str]]:
        return [(t, name) for t, name, _ in self.acts]

    async def until(self, loop_time: float) -> None:
        await asyncio.sleep(loop_time - self.loop.time())


def names(n: int, prefix: str = "hr") -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(n)]


# -- exactly when due -----------------------------------------------------------------------


async def test_fires_in_the_tick_the_threshold_passes() -> None:
    """FLUX-FACTS §1: the upstream stuck shape (Ready=Unknown/Progressing "Running 'install'
    action with timeout of 5m0s", history[0] deployed) is stuck 300 s after its
    lastTransitionTime, and is handed over at that instant, not at the next poll."""
    h = Harness()
    h.tracker.upsert(stuck(since=T0))
    assert h.tracker.deadline(("flux-system", "bp-vpa")) == T0 + 300
    await h.until(1000)
    [(at, name, verdict)] = h.acts
    assert (at, name) == (300.0, "bp-vpa")
    assert verdict.kind is Kind.STUCK
    assert verdict.due_at == T0 + 300


async def test_clocks_started_before_the_tracker_are_due_at_once() -> None:
    """FLUX-FACTS §1/§2: the clock is lastTransitionTime, so a restart of fluxwatch does not
    reset it: what was stuck before start is handed over in the first tick."""
    h = Harness()
    h.tracker.resync([stuck("old", since=T0 - 3600), stuck("half", since=T0 - 100)])
    await h.until(1000)
    assert h.times() == [(0.0, "old"), (200.0, "half")]


async def test_a_new_transition_moves_the_deadline() -> None:
    """FLUX-FACTS §2: lastTransitionTime changes when Ready changes status; Unknown again
    later means a later deadline."""
    h = Harness()
    h.tracker.upsert(stuck(since=T0))
    await h.until(100)
    h.tracker.upsert(stuck(since=T0 + 100))
    await h.until(1000)
    assert h.times() == [(400.0, "bp-vpa")]


async def test_unrelated_writes_keep_the_deadline() -> None:
    h = Harness()
    obj = stuck_obj()
    h.tracker.upsert(hr_view(obj))
    for i in range(1, 50):
        await h.until(i)
        h.tracker.upsert(bumped(obj, str(1848390 + i)))
    await h.until(1000)
    assert h.times() == [(300.0, "bp-vpa")]


async def test_ready_cancels_the_deadline() -> None:
    h = Harness()
    obj = stuck_obj()
    h.tracker.upsert(hr_view(obj))
    await h.until(299)
    h.tracker.upsert(ready(obj, at=T0 + 299))
    await h.until(10_000)
    assert h.acts == []
    assert h.tracker.deadline(("flux-system", "bp-vpa")) is None
    assert h.tracker.counts() == {("ready", ""): 1}


async def test_delete_cancels_the_deadline() -> None:
    h = Harness()
    view = stuck()
    h.tracker.handle(ADDED, view, None)
    await h.until(100)
    h.tracker.handle(DELETED, view, view)
    await h.until(10_000)
    assert h.acts == []
    assert len(h.tracker) == 0
    assert h.tracker.counts() == {}


async def test_skipped_releases_never_fire() -> None:
    """FLUX-FACTS §1 and §2: a person's suspend, a deleting HR, an opted-out HR and a newer
    pending-upgrade revision are never stuck."""
    h = Harness()
    h.tracker.resync(
        [
            suspended_by_person(stuck_obj("suspended", since=T0 - 3600)),
            deleting(stuck_obj("deleting", since=T0 - 3600)),
            ignored(stuck_obj("ignored", since=T0 - 3600)),
            pending_upgrade(stuck_obj("upgrading", since=T0 - 3600)),
        ]
    )
    await h.until(10_000)
    assert h.acts == []
    assert h.tracker.counts() == {
        ("skipped", "suspended"): 1,
        ("skipped", "deleting"): 1,
        ("skipped", "ignored"): 1,
        ("skipped", "newer-pending"): 1,
    }


async def test_interrupted_suspend_is_handed_over_at_once() -> None:
    """DESIGN: any HR found with fluxwatch.io/suspended-at and suspend true is resumed first."""
    h = Harness()
    h.tracker.upsert(suspended_by_fluxwatch(stuck_obj("half-toggled", since=T0)))
    await h.until(10)
    [(at, name, verdict)] = h.acts
    assert (at, name, verdict.kind) == (0.0, "half-toggled", Kind.RESUME_PENDING)


async def test_long_release_name_is_handed_over_with_its_helm_name() -> None:
    """FLUX-FACTS §2: `<targetNamespace>-<name>` over 53 characters is shortened; the
    recovery layer gets the view that already carries the Helm name."""
    h = Harness()
    h.tracker.upsert(long_named(since=T0 - 10))
    await h.until(1000)
    [(at, _, _)] = h.acts
    assert at == 290.0
    record = h.tracker.get(("monitoring", "kube-prometheus-stack-operator-admission-webhooks"))
    assert record is not None
    assert record.view.release_name == LONG_RELEASE


async def test_counts_follow_the_clock() -> None:
    """Counts by verdict, for metrics, move when a deadline passes, without a scan."""
    h = Harness(recover=False)
    h.tracker.upsert(stuck("a", since=T0))
    h.tracker.upsert(hr_view(stuck_obj("b", since=T0 + 10_000)))
    assert h.tracker.counts() == {("progressing", ""): 2}
    await h.until(300)
    await asyncio.sleep(0)
    assert h.tracker.counts() == {("stuck", ""): 1, ("progressing", ""): 1}


# -- the guardrail, wired in ----------------------------------------------------------------


async def test_eleven_due_at_once_trip_and_none_is_touched() -> None:
    """FLUX-FACTS §1 (seed defect: it patched ten and only then refused the eleventh)."""
    h = Harness()
    h.tracker.resync([stuck(n, since=T0) for n in names(11)])
    await h.until(1000)
    assert h.acts == []
    [(at, trip)] = h.events
    assert at == 300.0
    assert isinstance(trip, Tripped)
    assert sorted(name for _, name in trip.keys) == names(11)
    assert len(h.tracker.due) == 11


async def test_ten_due_at_once_are_all_handed_over() -> None:
    h = Harness()
    h.tracker.resync([stuck(n, since=T0) for n in names(10)])
    await h.until(1000)
    assert sorted(h.times()) == [(300.0, n) for n in names(10)]
    assert h.events == []


async def test_stuck_at_start_count_as_one_batch() -> None:
    """A list is judged whole: eleven already stuck at start-up trip the guard too."""
    h = Harness()
    for i, n in enumerate(names(11)):
        h.tracker.handle(ADDED, stuck(n, since=T0 - 1000 - i), None)
    await h.until(10)
    assert h.acts == []
    assert [type(e) for _, e in h.events] == [Tripped]


async def test_tripped_guard_waits_for_the_count_to_fall() -> None:
    h = Harness()
    objs = [stuck_obj(n, since=T0) for n in names(11)]
    h.tracker.resync([hr_view(o) for o in objs])
    await h.until(350)
    # One more becomes due while tripped: it joins the count.
    h.tracker.upsert(stuck("late", since=T0 + 50))
    await h.until(400)
    assert h.acts == []
    assert len(h.tracker.due) == 12
    # A person fixes two: ten left, the guard clears and acts on them in that tick.
    h.tracker.upsert(ready(objs[0], at=T0 + 400))
    await h.until(450)
    assert h.acts == []
    h.tracker.upsert(ready(objs[1], at=T0 + 450))
    await h.until(500)
    assert [type(e) for _, e in h.events] == [Tripped, TripCleared]
    assert h.events[1][0] == 450.0
    assert sorted(h.times()) == sorted([(450.0, n) for n in [*names(11)[2:], "late"]])


async def test_budget_holds_the_rest_until_the_window_slides() -> None:
    """DESIGN: at most max_recoveries per window; the rest wait for the window to slide."""
    h = Harness(EngineSettings(guardrail=GuardrailSettings(max_recoveries=3, window=600)))
    h.tracker.resync([stuck(n, since=T0 - 300 + i) for i, n in enumerate(names(5))])
    await h.until(2000)
    await h.tracker.aclose()
    first = [t for t, n in h.times() if n in names(5)]
    # Three at 0, 1, 2; the fourth when the first action leaves the window, and so on.
    assert first[:5] == [0.0, 1.0, 2.0, 600.0, 601.0]


async def test_still_stuck_after_an_attempt_backs_off_then_gives_up() -> None:
    """DESIGN: at most max_attempts per release, exponential backoff between; the outcome
    is read from the watch: nothing changed, so the release is due again."""
    h = Harness(work=30.0, recover=False)
    h.tracker.upsert(stuck(since=T0))
    await h.until(300 + 10)
    assert h.tracker.busy == (("flux-system", "bp-vpa"),)
    await h.until(5000)
    await h.tracker.aclose()
    # Backoff counts from the end of an attempt: 300 ends at 330, +60 -> 390 ends at 420,
    # +120 -> 540 ends at 570, and then it is given up.
    assert h.times() == [(300.0, "bp-vpa"), (390.0, "bp-vpa"), (540.0, "bp-vpa")]
    assert [(t, e.reason) for t, e in h.events] == [(570.0, "RecoveryExhausted")]


async def test_recovered_release_forgets_its_attempts() -> None:
    h = Harness(work=30.0, recover=False)
    obj = stuck_obj()
    h.tracker.upsert(hr_view(obj))
    await h.until(310)
    h.tracker.upsert(ready(obj, at=T0 + 310))  # the recovery worked
    await h.until(400)
    assert h.tracker.guardrail.attempts(("flux-system", "bp-vpa")) == 0
    again = copy.deepcopy(obj)
    again["status"]["conditions"][0]["lastTransitionTime"] = "2026-05-05T08:00:00Z"
    h.tracker.upsert(hr_view(again))
    await h.until(5000)
    await h.tracker.aclose()
    assert len(h.acts) == 4  # one, then three for the new episode


async def test_failing_callback_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()

    def boom(view: HRView, verdict: Verdict) -> None:
        h.acts.append((h.loop.time(), view.name, verdict))
        raise RuntimeError("patch failed")

    h.tracker._on_due = boom
    h.tracker.upsert(stuck(since=T0))
    await h.until(400)
    assert h.times() == [(300.0, "bp-vpa"), (360.0, "bp-vpa")]
    assert "on_due failed" in caplog.text


# -- suspects, scans, informer events -------------------------------------------------------


async def test_leader_change_makes_unknown_releases_suspects() -> None:
    """DESIGN: HRs in Ready=Unknown when the leader changes become suspects and their
    alert says so."""
    h = Harness()
    obj = stuck_obj("installing", since=T0)
    h.tracker.resync([hr_view(obj), ready(stuck_obj("fine"))])
    await h.until(40)
    marked = h.tracker.mark_suspects("helm-controller changed leader at 07:45:38")
    assert marked == [("flux-system", "installing")]
    assert h.tracker.suspects() == {
        ("flux-system", "installing"): "helm-controller changed leader at 07:45:38"
    }
    assert h.tracker.suspicion(("flux-system", "fine")) is None
    await h.until(1000)
    [(_, _, verdict)] = h.acts
    assert "suspect: helm-controller changed leader" in verdict.reason
    assert h.tracker.suspects() == {}  # Ready again: the episode is over


async def test_suspicion_expires() -> None:
    h = Harness()
    h.tracker.upsert(stuck("slow", since=T0 + 5000))
    await h.until(40)
    assert h.tracker.mark_suspects("helm-controller changed leader") == [("flux-system", "slow")]
    await h.until(40 + 899)
    assert h.tracker.suspicion(("flux-system", "slow")) == "helm-controller changed leader"
    await h.until(40 + 900)  # leases.suspect_ttl
    assert h.tracker.suspicion(("flux-system", "slow")) is None


async def test_scan_sees_every_record_and_its_verdict() -> None:
    h = Harness()
    h.tracker.resync([stuck("a"), suspended_by_person(stuck_obj("b"))])
    by_name = {rec.view.name: rec.verdict.label for rec in h.tracker}
    assert by_name == {"a": Kind.PROGRESSING, "b": "suspended"}


async def test_resync_drops_what_is_gone() -> None:
    h = Harness()
    h.tracker.resync([stuck("a"), stuck("b")])
    h.tracker.resync([stuck("b")])
    assert [rec.view.name for rec in h.tracker] == ["b"]
    await h.until(1000)
    assert h.times() == [(300.0, "b")]


async def test_informer_events() -> None:
    h = Harness()
    view = stuck()
    h.tracker.handle(ADDED, view, None)
    h.tracker.handle(MODIFIED, suspended_by_person(stuck_obj()), view)
    await h.until(1000)
    assert h.acts == []


def _many(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield stuck_obj(f"hr-{i:05d}", f"ns-{i % 100:02d}", since=T0 + i % 250)


async def test_ten_thousand_releases_one_timer() -> None:
    """10,000 releases: one loop timer serves all deadlines; 50,000 events that keep
    them do not grow the heap; each fires in its own tick."""
    h = Harness()
    views = [hr_view(o) for o in _many(10_000)]
    h.tracker.resync(views)
    for _ in range(5):
        for view in views:
            h.tracker.upsert(view)
    scheduler = h.tracker._scheduler
    assert len(scheduler) == 10_000
    assert len(scheduler._heap) == 10_000
    assert len(h.loop._scheduled) <= 2  # type: ignore[attr-defined]
    await h.until(1000)
    # 40 fall due in each second from 300 on, more than max_batch: none is touched.
    assert h.acts == []
    assert isinstance(h.events[0][1], Tripped)
    assert h.events[0][0] == 300.0


# -- only the leader acts ---------------------------------------------------------------------


async def test_follower_queues_due_releases_and_acts_when_it_leads() -> None:
    """A follower spends no attempts and raises no alerts; the new leader acts at once."""
    h = Harness()
    h.tracker.set_active(False)
    h.tracker.resync([stuck(n, since=T0) for n in names(3)])
    await h.until(500)
    assert h.acts == []
    assert h.events == []
    assert sorted(name for _, name in h.tracker.due) == names(3)
    assert all(h.tracker.guardrail.attempts(key) == 0 for key in h.tracker.due)
    h.tracker.set_active(True)
    await h.until(501)
    assert sorted(h.times()) == [(500.0, n) for n in names(3)]


async def test_follower_counts_the_whole_queue_when_it_leads() -> None:
    """Eleven queued while following still trip the batch guard when leadership arrives."""
    h = Harness()
    h.tracker.set_active(False)
    h.tracker.resync([stuck(n, since=T0) for n in names(11)])
    await h.until(400)
    h.tracker.set_active(True)
    await h.until(1000)
    assert h.acts == []
    [(at, trip)] = h.events
    assert (at, isinstance(trip, Tripped)) == (400.0, True)


async def test_suspects_of_one_leader_change_are_counted_before_they_are_due() -> None:
    """A leader change catches eleven installs at Ready=Unknown, a few seconds apart: when
    the first crosses the threshold the whole incident is counted, and none is touched.
    Counted one instant at a time, they would pass as harmless small batches."""
    h = Harness()
    h.tracker.resync([stuck(n, since=T0 + i * 3) for i, n in enumerate(names(11))])
    await h.until(40)
    assert len(h.tracker.mark_suspects("helm-controller changed leader")) == 11
    await h.until(1000)
    assert h.acts == []
    [(at, trip)] = h.events
    assert at == 300.0  # the first one's threshold
    assert isinstance(trip, Tripped)
    assert len(trip.keys) == 11


async def test_suspects_that_recover_on_their_own_leave_the_count() -> None:
    """Ten of eleven suspects become Ready by themselves: the last one is acted on."""
    h = Harness()
    views = [stuck(n, since=T0 + i * 3) for i, n in enumerate(names(11))]
    h.tracker.resync(views)
    await h.until(40)
    h.tracker.mark_suspects("helm-controller changed leader")
    for view in views[:10]:
        assert view.ready is not None
        h.tracker.upsert(replace(view, ready=replace(view.ready, status="True")))
    await h.until(1000)
    assert h.times() == [(330.0, names(11)[10])]
    assert h.events == []


# -- what the mutation run of tracker.py asked for (tests/mutants.md) -------------------------

KEY = ("flux-system", "bp-vpa")


async def test_a_record_and_a_view_are_read_by_key() -> None:
    h = Harness()
    view = stuck(since=T0)
    h.tracker.upsert(view)
    assert h.tracker.view(KEY) is view
    assert h.tracker.view(("flux-system", "never-seen")) is None
    assert repr(h.tracker.get(KEY)) == "Record(flux-system/bp-vpa, progressing)"
    assert h.tracker.suspicion(("flux-system", "never-seen")) is None


async def test_deleting_a_release_never_seen_is_a_no_op() -> None:
    """A DELETED may come for a release a relist already dropped."""
    h = Harness()
    h.tracker.delete(KEY)
    h.tracker.handle(DELETED, stuck(), None)
    assert len(h.tracker) == 0


async def test_a_given_guardrail_is_the_one_counting() -> None:
    guardrail = Guardrail(GuardrailSettings(max_batch=3))
    tracker = Tracker(
        EngineSettings(), Clock(epoch=T0), lambda view, verdict: None, guardrail=guardrail
    )
    assert tracker.guardrail is guardrail


async def test_ready_cancels_the_deadline_at_once() -> None:
    h = Harness()
    obj = stuck_obj()
    h.tracker.upsert(hr_view(obj))
    await h.until(100)
    h.tracker.upsert(ready(obj, at=T0 + 100))
    assert h.tracker.deadline(KEY) is None


async def test_delete_cancels_the_deadline_at_once_and_forgets_the_attempts() -> None:
    h = Harness(recover=False)
    view = stuck(since=T0)
    h.tracker.upsert(view)
    await h.until(301)
    assert h.tracker.guardrail.attempts(KEY) == 1
    assert h.tracker.deadline(KEY) is None  # due again after the backoff: queued
    h.tracker.delete(KEY)
    assert h.tracker.guardrail.attempts(KEY) == 0
    assert h.tracker.due == ()
    h.tracker.upsert(stuck(since=T0 + 301))
    assert h.tracker.deadline(KEY) == T0 + 601
    h.tracker.delete(KEY)
    assert h.tracker.deadline(KEY) is None
    assert len(h.tracker.incidents) == 0


async def test_a_deleted_release_leaves_the_dependency_graph() -> None:
    h = Harness()
    root = stuck_obj("root", since=T0)
    leaf = stuck_obj("leaf", since=T0)
    leaf["spec"]["dependsOn"] = [{"name": "root"}]
    h.tracker.resync([hr_view(root), hr_view(leaf)])
    assert h.tracker.blocking(("flux-system", "root")) == {("flux-system", "leaf")}
    h.tracker.delete(("flux-system", "leaf"))
    assert h.tracker.blocking(("flux-system", "root")) == frozenset()


async def test_deleting_one_of_a_tripped_batch_clears_the_trip() -> None:
    """Eleven due trip the guard; one is deleted: ten are left, and acted on at once."""
    h = Harness()
    h.tracker.resync([stuck(n, since=T0) for n in names(11)])
    await h.until(350)
    h.tracker.delete(("flux-system", names(11)[0]))
    assert ("flux-system", names(11)[0]) not in h.tracker.due
    await h.until(351)
    assert [type(e) for _, e in h.events] == [Tripped, TripCleared]
    assert sorted(h.times()) == [(350.0, n) for n in names(11)[1:]]


async def test_a_trip_clears_when_every_refused_release_is_ready() -> None:
    h = Harness()
    objs = [stuck_obj(n, since=T0) for n in names(11)]
    h.tracker.resync([hr_view(o) for o in objs])
    await h.until(350)
    for obj in objs:
        h.tracker.upsert(ready(obj, at=T0 + 350))
    await h.until(351)
    assert [(t, type(e)) for t, e in h.events] == [(300.0, Tripped), (350.0, TripCleared)]
    assert not h.tracker.guardrail.tripped


async def test_a_suspect_ready_again_is_no_suspect_when_it_goes_unknown_later() -> None:
    """With max_batch 1: a release due at 300 waits (settles) for another of its incident
    on its way; that one was a suspect, then Ready, then Unknown again: it counts as on
    its way, not as a suspect in flight, so nothing trips before it is due itself."""
    h = Harness(EngineSettings(guardrail=GuardrailSettings(max_batch=1)))
    other = stuck_obj("x", since=T0 + 50)
    h.tracker.upsert(hr_view(other))
    await h.until(10)
    assert h.tracker.mark_suspects("helm-controller changed leader") == [("flux-system", "x")]
    h.tracker.upsert(stuck("a", since=T0))
    h.tracker.upsert(ready(other, at=T0 + 20))
    await h.until(30)
    h.tracker.upsert(stuck("x", since=T0 + 30))
    await h.until(400)
    assert [(t, type(e)) for t, e in h.events] == [(330.0, Tripped)]


async def test_a_suspect_deleted_and_created_again_is_no_suspect() -> None:
    h = Harness(EngineSettings(guardrail=GuardrailSettings(max_batch=1)))
    h.tracker.upsert(stuck("x", since=T0 + 50))
    await h.until(10)
    assert h.tracker.mark_suspects("helm-controller changed leader") == [("flux-system", "x")]
    h.tracker.upsert(stuck("a", since=T0))
    h.tracker.delete(("flux-system", "x"))
    h.tracker.upsert(stuck("x", since=T0 + 30))
    await h.until(400)
    assert [(t, type(e)) for t, e in h.events] == [(330.0, Tripped)]


async def test_suspects_last_the_ttl_given() -> None:
    h = Harness()
    h.tracker.upsert(stuck("slow", since=T0 + 5000))
    await h.until(40)
    h.tracker.mark_suspects("helm-controller changed leader", ttl=60)
    await h.until(99)
    assert h.tracker.suspicion(("flux-system", "slow")) == "helm-controller changed leader"
    await h.until(100)
    assert h.tracker.suspicion(("flux-system", "slow")) is None


async def test_a_release_in_flight_that_is_ready_or_gone_is_no_suspect() -> None:
    """Its recovery is still running: one release's view is Ready again, another was
    deleted meanwhile. Neither is at Ready=Unknown."""
    h = Harness(work=100)
    h.tracker.resync([stuck("fixed", since=T0), stuck("gone", since=T0)])
    await h.until(301)
    assert sorted(h.tracker.busy) == [("flux-system", "fixed"), ("flux-system", "gone")]
    h.tracker.delete(("flux-system", "gone"))
    assert h.tracker.mark_suspects("helm-controller changed leader") == []
    await h.tracker.aclose()


class Slow:
    """An async on_due that lasts ``work`` seconds and notes when it is cancelled."""

    def __init__(self, work: float) -> None:
        self.work = work
        self.cancelled: list[str] = []

    async def __call__(self, view: HRView, verdict: Verdict) -> None:
        try:
            await asyncio.sleep(self.work)
        except asyncio.CancelledError:
            self.cancelled.append(view.name)
            raise


async def test_aclose_cancels_the_recoveries_in_flight_and_waits_for_them() -> None:
    slow = Slow(1000)
    tracker = Tracker(EngineSettings(), Clock(epoch=T0), slow)
    tracker.upsert(stuck(since=T0 - 300))
    await asyncio.sleep(1)
    assert tracker.busy == (KEY,)
    await tracker.aclose()
    assert slow.cancelled == ["bp-vpa"]
    assert tracker.busy == ()


async def test_a_failing_async_recovery_is_logged_with_its_release(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom(view: HRView, verdict: Verdict) -> None:
        await asyncio.sleep(5)
        raise RuntimeError("patch failed")

    tracker = Tracker(EngineSettings(), Clock(epoch=T0), boom)
    tracker.upsert(stuck(since=T0 - 300))
    await asyncio.sleep(10)
    [record] = [r for r in caplog.records if r.name == "fluxwatch.engine.tracker"]
    assert (record.levelname, record.getMessage()) == ("ERROR", "on_due failed")
    assert (record.namespace, record.hr) == KEY  # type: ignore[attr-defined]
    assert record.exc_info is not None and str(record.exc_info[1]) == "patch failed"
    assert tracker.busy == ()
    assert tracker.guardrail.attempts(KEY) == 1


async def test_a_recovery_that_ends_or_is_cancelled_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(work=10)
    h.tracker.upsert(stuck("fine", since=T0 - 300))
    await h.until(20)
    assert [n for _, n, _ in h.acts] == ["fine"] and h.tracker.busy == ()
    h.recover = False
    h.tracker.upsert(stuck("cut", since=T0 - 200))
    await h.until(101)
    assert h.tracker.busy == (("flux-system", "cut"),)
    await h.tracker.aclose()
    assert h.tracker.busy == ()
    assert [r for r in caplog.records if r.name == "fluxwatch.engine.tracker"] == []


async def test_a_failing_callback_is_logged_with_its_release(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(view: HRView, verdict: Verdict) -> None:
        raise RuntimeError("patch failed")

    tracker = Tracker(EngineSettings(), Clock(epoch=T0), boom)
    tracker.upsert(stuck(since=T0 - 300))
    await asyncio.sleep(1)
    [record] = [r for r in caplog.records if r.name == "fluxwatch.engine.tracker"]
    assert (record.levelname, record.getMessage()) == ("ERROR", "on_due failed")
    assert (record.namespace, record.hr) == KEY  # type: ignore[attr-defined]
    assert record.exc_info is not None and str(record.exc_info[1]) == "patch failed"
    assert tracker.busy == ()


async def test_guardrail_events_are_logged_at_their_severity_with_their_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fluxwatch.engine.tracker")
    h = Harness()
    objs = [stuck_obj(n, since=T0) for n in names(11)]
    h.tracker.resync([hr_view(o) for o in objs])
    await h.until(350)
    h.tracker.upsert(ready(objs[0], at=T0 + 350))
    await h.until(351)
    trip, cleared = (e for _, e in h.events)
    logged = [
        (r.levelname, r.getMessage(), r.reason)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "fluxwatch.engine.tracker"
    ]
    assert logged == [
        ("ERROR", trip.message, "GuardrailTripped"),
        ("INFO", cleared.message, "GuardrailCleared"),
    ]


async def test_a_failing_guardrail_event_handler_is_logged_and_the_releases_acted_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: GuardEvent) -> None:
        raise RuntimeError("alert queue full")

    acted: list[str] = []
    tracker = Tracker(
        EngineSettings(guardrail=GuardrailSettings(max_recoveries=1)),
        Clock(epoch=T0),
        lambda view, verdict: acted.append(view.name),
        on_guard=broken,
    )
    tracker.resync([stuck("a", since=T0 - 2000), stuck("b", since=T0 - 2000)])
    await asyncio.sleep(1)
    assert acted == ["a"]  # b waits for the budget: an OverBudget event, whose handler fails
    failed = [r for r in caplog.records if r.getMessage() == "guardrail event handler failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert str(failed[0].exc_info[1]) == "alert queue full"


async def test_another_incident_acts_while_one_is_tripped() -> None:
    """The batch guard refuses one incident; two releases of a later incident are each
    acted on in the tick they are due."""
    h = Harness()
    h.tracker.resync([stuck(n, since=T0) for n in names(11)])
    await h.until(400)
    assert h.tracker.guardrail.tripped
    h.tracker.upsert(stuck("b1", since=T0 + 1000))
    h.tracker.upsert(stuck("b2", since=T0 + 1000))
    await h.until(1301)
    assert h.times() == [(1300.0, "b1"), (1300.0, "b2")]
    assert h.tracker.guardrail.tripped


async def test_a_trip_by_suspects_is_looked_at_again_when_their_suspicion_ends() -> None:
    """Tripped at 310 by suspects whose suspicion ends at 321, before the batch window
    of the release acted on at 300 (360): the guard is asked again at 321, not 360."""
    h = Harness(recover=False)
    h.tracker.upsert(stuck("first", since=T0))
    await h.until(301)
    assert h.times() == [(300.0, "first")]
    h.tracker.upsert(stuck("second", since=T0 + 10))
    for n in names(10):
        h.tracker.upsert(stuck(n, since=T0 + 100))
    assert len(h.tracker.mark_suspects("helm-controller changed leader", ttl=20)) == 12
    await h.until(400)
    assert [(t, type(e)) for t, e in h.events][:2] == [(310.0, Tripped), (321.0, TripCleared)]


async def test_eleven_interrupted_suspends_resumed_at_once_trip_nothing() -> None:
    """Resumes belong to no incident: each is a batch of its own, so eleven in flight
    (same name, eleven namespaces) raise no trip, and a stuck release still acts."""
    h = Harness(work=1000)
    namespaces = [f"team-{i:02d}" for i in range(11)]
    h.tracker.resync([suspended_by_fluxwatch(stuck_obj("app", ns, since=T0)) for ns in namespaces])
    await h.until(1)
    assert len(h.tracker.busy) == 11
    h.tracker.upsert(stuck("x", since=T0 - 300))
    await h.until(2)
    assert h.events == []
    assert h.times()[-1] == (1.0, "x")
    await h.tracker.aclose()
