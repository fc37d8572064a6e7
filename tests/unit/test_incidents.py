"""Incidents, pure: grouping by time and by leader change, ids, hand-over; approvals."""

from __future__ import annotations

import re
import time

import pytest

from fluxwatch.engine.config import GuardrailSettings
from fluxwatch.engine.guardrail import (
    Approval,
    Guardrail,
    TripCleared,
    Tripped,
    dump_state,
    load_state,
)
from fluxwatch.engine.incidents import ID_PATTERN, Incidents, incident_id

T = 1_780_000_000.0  # 2026-05-28T20:26:40Z
W = 600.0


def key(i: int) -> tuple[str, str]:
    return ("apps", f"hr-{i:02d}")


def test_the_id_names_the_utc_second_of_the_start() -> None:
    assert incident_id(T) == "inc-20260528t202640"
    assert re.match(ID_PATTERN, incident_id(T))


def test_the_id_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replicas in different zones name an incident alike."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    try:
        assert incident_id(T) == "inc-20260528t202640"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_exactly_at_the_window_joins_a_moment_later_opens_another() -> None:
    incidents = Incidents(W)
    first = incidents.join(key(0), T)
    assert incidents.join(key(1), T + W) is first
    later = incidents.join(key(2), T + W + 0.001)
    assert later is not first and later.start == T + W + 0.001
    assert [i.id for i in incidents] == [first.id, later.id]


def test_anchored_not_chained_a_trickle_does_not_grow_one_endless_incident() -> None:
    incidents = Incidents(W)
    ids = {incidents.join(key(i), T + i * 500).id for i in range(6)}
    assert len(ids) == 3  # 0+500 | 1000+1500 | 2000+2500


def test_a_member_seen_late_from_before_the_start_moves_the_start_not_the_id() -> None:
    """A list delivers releases in name order: an earlier one may come second."""
    incidents = Incidents(W)
    first = incidents.join(key(0), T)
    assert incidents.join(key(1), T - W) is first
    assert (first.start, first.id) == (T - W, incident_id(T))
    assert incidents.holding(T - W) is first
    assert incidents.join(key(2), T - W - 1).id != first.id


def test_the_last_member_leaving_closes_it() -> None:
    incidents = Incidents(W)
    incidents.join(key(0), T)
    incidents.join(key(1), T + 1)
    assert incidents.leave(key(0)) is None
    closed = incidents.leave(key(1))
    assert closed is not None and len(incidents) == 0
    assert incidents.leave(key(1)) is None
    assert incidents.holding(T) is None


def test_a_new_episode_moves_a_member() -> None:
    incidents = Incidents(W)
    old = incidents.join(key(0), T)
    incidents.join(key(1), T)
    new = incidents.join(key(0), T + 5000)
    assert new is not old and incidents.of(key(0)) is new
    assert list(old.members) == [key(1)]


def test_a_leader_change_merges_into_the_oldest_which_keeps_its_id() -> None:
    incidents = Incidents(W)
    a = incidents.join(key(0), T)
    b = incidents.join(key(1), T + 3 * W)
    incidents.join(key(2), T + 3 * W)
    merged = incidents.merge([key(0), key(1), ("apps", "nobody")], "helm-controller leader changed")
    assert merged is a and merged.cause.startswith("helm-controller")
    assert set(a.members) == {key(0), key(1), key(2)}
    assert incidents.get(b.id) is None and len(incidents) == 1
    assert incidents.merge([("x", "y")], "none") is None


def test_the_table_restores_the_same_ids_elsewhere() -> None:
    leader = Incidents(W)
    leader.join(key(0), T - 100)  # the first one seen, gone since on the follower
    leader.join(key(1), T)
    follower = Incidents(W)
    follower.join(key(1), T)  # names it after T, not T - 100
    assert follower.of(key(1)).id != leader.of(key(1)).id  # type: ignore[union-attr]
    follower.restore(leader.table())
    assert follower.of(key(1)).id == leader.of(key(1)).id  # type: ignore[union-attr]
    assert len(follower) == 1  # key(0)'s incident holds key(1): nothing empty kept


def test_a_merge_moves_members_with_their_instants() -> None:
    incidents = Incidents(W)
    a = incidents.join(key(0), T)
    incidents.join(key(1), T + 3 * W)
    incidents.merge([key(0), key(1)], "helm-controller leader changed")
    assert a.members == {key(0): T, key(1): T + 3 * W}
    assert incidents.of(key(1)) is a


def test_a_failure_inside_a_window_is_a_casualty_with_its_instant() -> None:
    incidents = Incidents(W)
    a = incidents.join(key(0), T)
    assert incidents.enlist(key(1), T + 10) is a
    assert a.members[key(1)] == T + 10 and incidents.of(key(1)) is a
    assert incidents.enlist(key(2), T + W + 1) is None  # no incident opened for a failure
    assert incidents.of(key(2)) is None and len(incidents) == 1


def test_the_only_member_failing_inside_its_own_window_keeps_it_open() -> None:
    """Stuck at T, failed at T + 10: still the incident's casualty, and the incident
    still counts (it used to close and live on unlisted, its id lost to the table)."""
    incidents = Incidents(W)
    a = incidents.join(key(0), T)
    assert incidents.enlist(key(0), T + 10) is a
    assert incidents.get(a.id) is a and incidents.table() == ((a.id, T, ""),)
    assert a.members == {key(0): T + 10}
    assert incidents.leave(key(0)) is a and len(incidents) == 0


def test_a_failure_outside_its_incidents_window_leaves_it() -> None:
    incidents = Incidents(W)
    a = incidents.join(key(0), T)
    incidents.join(key(1), T + 1)
    b = incidents.join(key(2), T + 5000)
    assert incidents.enlist(key(1), T + 5001) is b  # failed inside another window
    assert set(a.members) == {key(0)} and set(b.members) == {key(1), key(2)}
    assert incidents.enlist(key(0), T + 9000) is None  # inside none: a closes
    assert incidents.get(a.id) is None and incidents.of(key(0)) is None


def test_a_merged_member_failing_at_its_own_instant_outside_the_window_leaves() -> None:
    """Merged by a leader change, a member may lie outside its incident's window; a
    failure there makes it a casualty of no incident."""
    incidents = Incidents(W)
    a = incidents.join(key(0), T)
    incidents.join(key(1), T + 3 * W)
    incidents.merge([key(0), key(1)], "helm-controller leader changed")
    assert incidents.enlist(key(1), T + 3 * W) is None
    assert incidents.of(key(1)) is None and set(a.members) == {key(0)}


def test_a_restored_incident_moves_its_start_for_a_member_from_just_before() -> None:
    follower = Incidents(W)
    follower.join(key(0), T - 100)
    follower.restore([(incident_id(T), T, "helm-controller leader changed")])
    assert follower.table() == ((incident_id(T), T - 100, "helm-controller leader changed"),)


def test_a_restore_keeps_causes_and_closes_what_holds_no_member() -> None:
    follower = Incidents(W)
    follower.join(key(0), T + 5)
    table = [(incident_id(T), T, "helm-controller leader changed"), ("inc-gone", T + 5000, "")]
    follower.restore(table)
    assert follower.table() == ((incident_id(T), T, "helm-controller leader changed"),)
    assert follower.get("inc-gone") is None


def test_a_restore_rejoins_members_oldest_first_so_the_id_is_the_earliest() -> None:
    incidents = Incidents(W)
    incidents.join(("apps", "a"), T + 60)  # seen first, named after T + 60
    incidents.join(("apps", "b"), T)
    incidents.restore([])  # a new leader with no table: named as every replica names it
    assert [(i.id, i.start) for i in incidents] == [(incident_id(T), T)]


def test_two_incidents_starting_in_one_second_are_numbered() -> None:
    incidents = Incidents(W)
    incidents.join(key(0), T - 700)
    incidents.restore([(incident_id(T), T - 700, "")])  # moved earlier by a late member
    assert incidents.join(key(1), T).id == incident_id(T) + "-2"
    assert incidents.join(key(2), T + 2 * W).id == incident_id(T + 2 * W)


# -- approvals in the guardrail -------------------------------------------------------------


def tripped_guard() -> tuple[Guardrail, list[tuple[str, str]]]:
    guard = Guardrail(GuardrailSettings(max_batch=2))
    due = [key(i) for i in range(3)]
    [trip] = guard.admit(due, T, incident_of=lambda k: "inc-a").events
    assert isinstance(trip, Tripped) and trip.incident == "inc-a"
    assert "incident inc-a" in trip.message
    return guard, due


def test_an_approval_after_the_trip_lifts_it_under_the_budget() -> None:
    guard, due = tripped_guard()
    assert guard.approve("inc-a", "jane", "t1", T + 5, known=True) is Approval.APPLIED
    admission = guard.admit(due, T + 6, incident_of=lambda k: "inc-a")
    assert admission.act == tuple(due)
    [cleared] = admission.events
    assert isinstance(cleared, TripCleared) and cleared.approved_by == "jane"
    assert "approved by jane" in cleared.message
    assert guard.budget_left(T + 6) == 7


def test_an_approval_before_the_trip_keeps_it_from_refusing() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=2))
    assert guard.approve("inc-a", "jane", "t1", T, known=True) is Approval.PENDING
    admission = guard.admit([key(i) for i in range(3)], T + 1, incident_of=lambda k: "inc-a")
    assert len(admission.act) == 3 and admission.events == ()


def test_an_approval_is_used_once() -> None:
    guard, _ = tripped_guard()
    assert guard.approve("inc-a", "jane", "t1", T, known=True) is Approval.APPLIED
    assert guard.approve("inc-a", "jane", "t1", T + 1, known=True) is Approval.USED
    assert guard.approve("inc-a", "bob", "t2", T + 1, known=True) is Approval.USED
    assert guard.approved("inc-a").by == "jane"  # type: ignore[union-attr]


def test_an_approval_of_no_open_incident_takes_nothing() -> None:
    guard = Guardrail(GuardrailSettings())
    assert guard.approve("inc-x", "jane", "t1", T, known=False) is Approval.UNKNOWN
    assert guard.approve("inc-x", "jane", "t1", T, known=True) is Approval.PENDING


def test_approvals_and_trips_travel_with_the_state() -> None:
    guard, due = tripped_guard()
    guard.approve("inc-a", "jane", "t1", T, known=True)
    text = dump_state(guard.state(T + 1))
    heir = Guardrail(GuardrailSettings(max_batch=2))
    heir.restore(load_state(text), T + 2)
    assert heir.tripped_incidents() == {"inc-a": T}
    assert heir.approve("inc-a", "jane", "t1", T + 3, known=True) is Approval.USED
    assert len(heir.admit(due, T + 3, incident_of=lambda k: "inc-a").act) == 3


def test_a_closed_incident_takes_its_approval_with_it() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=2))
    guard.approve("inc-a", "jane", "t1", T, known=True)
    guard.closed("inc-a")
    assert guard.approved("inc-a") is None
    assert guard.approve("inc-a", "jane", "t1", T, known=True) is Approval.USED  # token spent


def test_the_batch_is_counted_per_incident() -> None:
    """Issue 12: an old backlog is not one outage: 12 releases in three incidents of four."""
    guard = Guardrail(GuardrailSettings(max_batch=10, max_recoveries=100))
    due = [key(i) for i in range(12)]
    admission = guard.admit(due, T, incident_of=lambda k: f"inc-{int(k[1][3:]) // 4}")
    assert admission.act == tuple(due) and not guard.tripped


def test_an_incident_with_releases_still_on_their_way_settles_first() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=10))
    admission = guard.admit([key(0)], T, incident_of=lambda k: "i", unsettled={"i": 10})
    assert admission.act == () and admission.events == ()
    assert "settling: 10 more release(s) of incident i" in admission.held[key(0)]
    lone = guard.admit([key(0)], T, incident_of=lambda k: "i", unsettled={"i": 9})
    assert lone.act == (key(0),)
