"""The guardrail counts first, then acts; pure, time passed in as numbers, no event loop."""

from __future__ import annotations

import pytest

from fluxwatch.engine.config import GuardrailSettings
from fluxwatch.engine.guardrail import (
    Approval,
    Approved,
    Exhausted,
    Guardrail,
    GuardrailState,
    Key,
    OverBudget,
    TripCleared,
    Tripped,
    dump_state,
    load_state,
)

T = 1_777_967_398.0


def keys(n: int, prefix: str = "hr") -> list[Key]:
    return [("apps", f"{prefix}-{i:02d}") for i in range(n)]


def test_eleven_due_at_once_trips_and_touches_none() -> None:
    """FLUX-FACTS §1 (seed defect): the CronJob patched ten and only then refused the
    eleventh; counting comes first, and more than max_batch means acting on none."""
    guard = Guardrail(GuardrailSettings())
    due = keys(11)
    admission = guard.admit(due, T)
    assert admission.act == ()
    assert guard.tripped
    [trip] = admission.events
    assert isinstance(trip, Tripped)
    assert trip.keys == tuple(due)
    # The releases travel once, as keys (the alert's metadata lists them); the message
    # says what was refused and that a person may approve it.
    assert "apps/hr-00" not in trip.message and "approves the incident" in trip.message
    assert admission.next_check is None  # only a change in the count can clear it
    assert guard.budget_left(T) == 10  # nothing was charged


def test_ten_due_at_once_are_all_acted_on() -> None:
    guard = Guardrail(GuardrailSettings())
    admission = guard.admit(keys(10), T)
    assert admission.act == tuple(keys(10))
    assert admission.events == ()
    assert not guard.tripped
    assert guard.budget_left(T) == 0


def test_joining_while_tripped_counts_and_one_trip_per_episode() -> None:
    guard = Guardrail(GuardrailSettings())
    guard.admit(keys(11), T)
    twelve = guard.admit(keys(12), T + 30)
    assert twelve.act == ()
    assert twelve.events == ()  # still the same episode
    assert guard.tripped
    ten = guard.admit(keys(10), T + 60)
    [cleared] = ten.events
    assert isinstance(cleared, TripCleared)
    assert (cleared.count, cleared.since, cleared.at) == (10, T, T + 60)
    assert ten.act == tuple(keys(10))
    assert not guard.tripped


def test_releases_being_recovered_count_towards_the_batch() -> None:
    guard = Guardrail(GuardrailSettings())
    busy = keys(8, "busy")
    admission = guard.admit(keys(3), T, busy=busy)
    assert admission.act == ()
    [trip] = admission.events
    assert isinstance(trip, Tripped)
    assert trip.keys == (*busy, *keys(3))


def test_trip_message_counts_and_leaves_the_names_to_the_alert() -> None:
    """The alert lists the releases once (issue 12: it listed them twice)."""
    guard = Guardrail(GuardrailSettings())
    [trip] = guard.admit(keys(60), T).events
    assert isinstance(trip, Tripped)
    assert "60 HelmReleases" in trip.message and len(trip.keys) == 60
    assert "hr-" not in trip.message


def test_budget_slides() -> None:
    """DESIGN: at most max_recoveries per window, sliding."""
    guard = Guardrail(GuardrailSettings(max_recoveries=10, window=600))
    assert len(guard.admit(keys(5, "a"), T).act) == 5
    assert len(guard.admit(keys(5, "b"), T + 300).act) == 5
    late = guard.admit(keys(3, "c"), T + 400)
    assert late.act == ()
    assert late.next_check == T + 600  # when the first five leave the window
    assert "budget" in late.held[("apps", "c-00")]
    assert len(guard.admit(keys(3, "c"), T + 600).act) == 3
    assert guard.budget_left(T + 600) == 2


def test_a_spent_budget_is_reported_once_while_releases_wait_for_it() -> None:
    """The budget's refusal is a trip of its own (guard ``budget``): reported when it first
    holds a release back, not again at every recheck while they wait, and again once it
    refuses after a time when nothing waited for it."""
    guard = Guardrail(GuardrailSettings(max_recoveries=2, window=600))
    first = guard.admit(keys(3), T)
    assert first.act == tuple(keys(2))
    [spent] = first.events
    assert isinstance(spent, OverBudget) and spent.guard == "budget"
    assert spent.keys == (("apps", "hr-02"),)
    assert (spent.max_recoveries, spent.window, spent.at) == (2, 600, T)
    assert "apps/hr-02 wait" in spent.message and "2 per 600s" in spent.message
    assert guard.admit([*keys(3)[2:], *keys(1, "late")], T + 10).events == ()
    # Backoff is not the budget: a release waiting out its backoff reports nothing, and
    # this admission held none back for the budget.
    assert guard.admit([("apps", "hr-00")], T + 20).events == ()
    assert guard.admit(keys(2, "new"), T + 30).events[0].keys == tuple(keys(2, "new"))
    assert guard.admit(keys(2, "new"), T + 600).act == tuple(keys(2, "new"))


def test_every_refusal_names_its_guard() -> None:
    assert (Tripped.guard, OverBudget.guard, Exhausted.guard) == ("batch", "budget", "attempts")


def test_attempts_back_off_exponentially_then_give_up_once() -> None:
    """DESIGN: per release at most max_attempts, exponential backoff between them."""
    guard = Guardrail(GuardrailSettings(backoff_base=60, backoff_factor=2, max_attempts=3))
    key = ("apps", "web")
    assert guard.admit([key], T).act == (key,)
    held = guard.admit([key], T + 59)
    assert held.act == ()
    assert held.next_check == T + 60
    assert "backoff after 1 attempt" in held.held[key]
    assert guard.admit([key], T + 60).act == (key,)
    assert guard.admit([key], T + 60 + 119).next_check == T + 60 + 120
    assert guard.admit([key], T + 180).act == (key,)
    assert guard.attempts(key) == 3
    out = guard.admit([key], T + 10_000)
    assert out.act == ()
    [gave_up] = out.events
    assert isinstance(gave_up, Exhausted)
    assert (gave_up.key, gave_up.attempts) == (key, 3)
    assert guard.admit([key], T + 20_000).events == ()  # reported once


def test_backoff_counts_from_the_end_of_an_attempt() -> None:
    guard = Guardrail(GuardrailSettings(backoff_base=60))
    key = ("apps", "web")
    guard.admit([key], T)
    guard.finished(key, T + 200)  # a slow ladder: verify timeouts
    assert guard.admit([key], T + 200).next_check == T + 260


def test_backoff_is_capped() -> None:
    settings = GuardrailSettings(backoff_base=60, backoff_factor=10, backoff_max=300)
    assert [settings.backoff(n) for n in (1, 2, 3)] == [60, 300, 300]


def test_exhausted_releases_do_not_count_towards_the_batch() -> None:
    guard = Guardrail(GuardrailSettings(max_attempts=1, max_recoveries=100))
    old = keys(5, "old")
    guard.admit(old, T)
    admission = guard.admit([*old, *keys(10)], T + 10)
    assert not guard.tripped
    assert admission.act == tuple(keys(10))
    assert sum(isinstance(e, Exhausted) for e in admission.events) == 5


def test_forget_starts_the_next_episode_afresh() -> None:
    guard = Guardrail(GuardrailSettings(max_attempts=1))
    key = ("apps", "web")
    guard.admit([key], T)
    guard.forget(key)  # seen Ready again
    assert guard.attempts(key) == 0
    assert guard.admit([key], T + 1).act == (key,)


def test_resuming_our_own_suspend_is_neither_counted_nor_charged() -> None:
    """DESIGN: an HR left suspended by fluxwatch is resumed first, even while tripped."""
    guard = Guardrail(GuardrailSettings())
    resume = ("apps", "half-toggled")
    admission = guard.admit(keys(11), T, urgent=[resume])
    assert admission.act == (resume,)
    assert guard.tripped
    assert guard.budget_left(T) == 10
    # ... but it obeys backoff, so a resume that keeps failing does not spin.
    again = guard.admit([], T + 1, urgent=[resume])
    assert again.act == ()
    assert again.next_check == T + 60


def test_dry_run_keeps_the_same_accounting() -> None:
    """DESIGN: dry_run decides and alerts; the same limits apply, nothing is written."""
    guard = Guardrail(GuardrailSettings(dry_run=True))
    admission = guard.admit(keys(3), T)
    assert admission.dry_run is True
    assert len(admission.act) == 3
    assert guard.budget_left(T) == 7


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_batch", 0), ("max_recoveries", -1), ("window", 0), ("backoff_factor", 0.5)],
)
def test_settings_are_checked(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"guardrail\.{field}"):
        GuardrailSettings(**{field: value})  # type: ignore[arg-type]


def test_a_burst_spread_over_seconds_is_still_one_batch() -> None:
    """An incident's releases cross the threshold seconds apart: eight acted on, then seven
    more due five seconds later make fifteen in the batch window, and none of the seven is
    touched; when the eight leave the window the count is seven and the guard clears."""
    guard = Guardrail(GuardrailSettings(batch_window=60, max_recoveries=100))
    first = guard.admit(keys(8, "early"), T)
    assert len(first.act) == 8
    late = guard.admit(keys(7, "late"), T + 5)
    assert late.act == ()
    [trip] = late.events
    assert isinstance(trip, Tripped)
    assert len(trip.keys) == 15
    assert late.next_check == T + 60  # when the first action leaves the window
    cleared = guard.admit(keys(7, "late"), T + 60)
    assert isinstance(cleared.events[0], TripCleared)
    assert cleared.act == tuple(keys(7, "late"))


def test_without_a_batch_window_only_the_same_instant_counts() -> None:
    guard = Guardrail(GuardrailSettings(batch_window=0, max_recoveries=100))
    guard.admit(keys(8, "early"), T)
    assert len(guard.admit(keys(7, "late"), T + 5).act) == 7


# -- behaviours mutation testing found unguarded (make mutate) -----------------------------


def test_a_second_episode_that_runs_out_of_attempts_is_reported_again() -> None:
    """Ready in between (forget) starts a new episode: running out again is a new report."""
    guard = Guardrail(GuardrailSettings(max_attempts=1))
    key = ("apps", "web")
    guard.admit([key], T)
    [first] = guard.admit([key], T + 1000).events
    assert isinstance(first, Exhausted)
    guard.forget(key)
    assert guard.admit([key], T + 2000).act == (key,)
    [second] = guard.admit([key], T + 3000).events
    assert isinstance(second, Exhausted)
    assert second.at == T + 3000


def test_a_resume_is_admitted_whatever_the_attempts_and_never_exhausted() -> None:
    """DESIGN: fluxwatch's own suspend is a debt, paid whatever the attempt count; before,
    a resume out of attempts went through the exhausted path (and, mutated, crashed)."""
    guard = Guardrail(GuardrailSettings(max_attempts=1, backoff_base=60, backoff_factor=2))
    key = ("apps", "web")
    guard.admit([key], T)  # the one recovery attempt (suspend-toggle), cut short
    resumed = guard.admit([], T + 1, urgent=[key])
    assert resumed.act == (key,)
    assert resumed.events == ()
    assert guard.attempts(key) == 1  # not charged to the recovery's attempts
    held = guard.admit([], T + 2, urgent=[key])
    assert held.act == ()
    assert held.next_check == T + 61
    assert "backoff after 1 resume" in held.held[key]
    assert guard.admit([], T + 61, urgent=[key]).act == (key,)
    assert guard.admit([], T + 61 + 120, urgent=[key]).act == (key,)
    assert guard.budget_left(T + 200) == 9


def test_an_exhausted_suspect_does_not_count_towards_the_batch() -> None:
    guard = Guardrail(GuardrailSettings(max_attempts=1, max_batch=2, batch_window=0))
    tired = ("apps", "tired")
    guard.admit([tired], T)
    admission = guard.admit(keys(2), T + 10, suspects=[tired])
    assert not guard.tripped
    assert admission.act == tuple(keys(2))


def test_the_next_check_is_the_earliest_held_release() -> None:
    guard = Guardrail(GuardrailSettings(backoff_base=60, max_recoveries=100))
    early, late = ("apps", "early"), ("apps", "late")
    guard.admit([early], T)
    guard.admit([late], T + 30)
    held = guard.admit([late, early], T + 40)
    assert held.act == ()
    assert held.next_check == T + 60  # early's backoff ends first, whatever the order


def test_a_release_acted_on_again_moves_to_the_end_of_the_batch_window() -> None:
    """The batch window expires oldest first; a release acted on again is as young as its
    latest action, and must not shield an older one from expiring."""
    settings = GuardrailSettings(
        batch_window=60, max_batch=2, max_recoveries=100, backoff_base=10, backoff_factor=1
    )
    guard = Guardrail(settings)
    a, b, c = ("apps", "a"), ("apps", "b"), ("apps", "c")
    guard.admit([a], T)
    guard.admit([b], T + 10)
    assert guard.admit([a], T + 20).act == (a,)
    # At T+75 b (T+10) left the window, a (T+20) did not: a and c make two, not three.
    admission = guard.admit([c], T + 75)
    assert not guard.tripped
    assert admission.act == (c,)


# -- the state a new leader takes over ------------------------------------------------------


def test_state_round_trips_and_a_new_leader_goes_on_counting() -> None:
    """DESIGN "Guardrail state": budget, batch window, attempts and what was reported
    survive a change of leader; a second guardrail restored from the first's state
    refuses exactly what the first would have."""
    settings = GuardrailSettings(max_recoveries=3, max_attempts=1, window=600)
    first = Guardrail(settings)
    first.admit(keys(3), T)
    first.admit(keys(1), T + 100)  # hr-00 out of attempts: reported
    text = dump_state(first.state(T + 100))
    assert load_state(text) == first.state(T + 100)

    second = Guardrail(settings)
    second.restore(load_state(text), T + 200)
    assert second.budget_left(T + 200) == 0
    assert second.attempts(("apps", "hr-01")) == 1
    assert second.admit([("apps", "other")], T + 200).act == ()  # budget spent
    assert second.admit(keys(1), T + 700).events == ()  # reported once, by the first
    assert second.admit([("apps", "other")], T + 700).act == (("apps", "other"),)


def test_restore_leaves_out_releases_ready_since() -> None:
    first = Guardrail(GuardrailSettings(max_attempts=1))
    first.admit(keys(2), T)
    second = Guardrail(GuardrailSettings(max_attempts=1))
    second.restore(first.state(T), T + 1, keep=lambda key: key != ("apps", "hr-00"))
    assert second.attempts(("apps", "hr-00")) == 0
    assert second.attempts(("apps", "hr-01")) == 1
    assert second.budget_left(T + 1) == 8  # the budget was spent all the same


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a guardrail state: Expecting value"),
        ("[]", "expected an object with v: 1, got []"),
        ('{"v": 2}', "expected an object with v: 1, got {'v': 2}"),
        ('{"v": 1, "spent": ["x"]}', "expected a number, got 'x'"),
        ('{"v": 1, "spent": {"a": 1}}', "expected a list in spent, got {'a': 1}"),
        ('{"v": 1, "recent": [["apps", 1]]}', "expected namespace/name, got 'apps'"),
        ('{"v": 1, "recent": [["apps/", 1]]}', "expected namespace/name, got 'apps/'"),
        ('{"v": 1, "recent": [["/web", 1]]}', "expected namespace/name, got '/web'"),
        ('{"v": 1, "recent": [["a/b/c", 1]]}', "expected namespace/name, got 'a/b/c'"),
        ('{"v": 1, "exhausted": [7]}', "expected namespace/name, got 7"),
        ('{"v": 1, "attempts": [["apps/a", true, 1]]}', "expected a number, got True"),
        ('{"v": 1, "attempts": [["apps/a", 1]]}', "not a guardrail state: not enough values"),
        ("[" * 5000, "not a guardrail state: "),
        ('{"v": 1, "spent": ["' + "x" * 100 + '"]}', "expected a number, got '" + "x" * 56 + "..."),
        ('{"v": 1, "spent": ["' + "x" * 58 + '"]}', "expected a number, got '" + "x" * 58 + "'"),
        ('{"v": 1, "spent": ["' + "x" * 59 + '"]}', "expected a number, got '" + "x" * 56 + "..."),
    ],
)
def test_a_bad_state_is_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        load_state(text)
    prefix = "not a guardrail state: "
    assert str(raised.value).startswith(prefix + problem.removeprefix(prefix))
    assert len(str(raised.value)) <= len(prefix) + 60 + len("expected a number, got ")


def test_a_state_with_nothing_in_it_is_empty() -> None:
    assert load_state('{"v": 1}') == GuardrailState()


def test_the_state_is_compact_and_complete() -> None:
    """Everything goes into the annotation, without a byte of padding (256 KiB for all of
    a Lease's annotations)."""
    guard = Guardrail(GuardrailSettings(max_attempts=1, max_recoveries=100))
    guard.admit(keys(2), T)
    guard.admit(keys(1), T + 10)  # hr-00 exhausted
    state = guard.state(T + 10)
    assert len(state.spent) == 2
    assert [k for k, _at in state.recent] == keys(2)
    assert [(k, n) for k, n, _at in state.attempts] == [(k, 1) for k in keys(2)]
    assert state.exhausted == (("apps", "hr-00"),)
    text = dump_state(state)
    assert " " not in text
    assert load_state(text) == state


def test_the_state_keeps_the_latest_attempts_only() -> None:
    guard = Guardrail(GuardrailSettings(max_recoveries=10_000, max_batch=10_000))
    guard.admit([("zz", "oldest")], T)
    guard.admit(keys(2000, "newer"), T + 1)
    attempted = {k for k, _n, _at in guard.state(T + 2).attempts}
    assert len(attempted) == 2000
    assert ("zz", "oldest") not in attempted


def test_a_restored_batch_window_expires_oldest_first() -> None:
    """The window is restored in time order, whatever the order of the state's entries."""
    settings = GuardrailSettings(batch_window=60, max_batch=2, max_recoveries=100)
    # Listed newest first, and name order is not time order either.
    state = GuardrailState(recent=((("apps", "a"), T + 10), (("apps", "b"), T)))
    guard = Guardrail(settings)
    guard.restore(state, T + 10)
    # At T+65 b (T) left the window, a (T+10) did not: a and c make two.
    assert guard.admit([("apps", "c")], T + 65).act == (("apps", "c"),)
    assert not guard.tripped


def test_a_cleared_trip_says_how_long_it_held() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=1, batch_window=0))
    guard.admit(keys(2), T)
    [cleared] = guard.admit(keys(1), T + 90).events
    assert cleared == TripCleared(1, 1, T, T + 90)
    assert cleared.message.endswith("resume after 90s on hold")


def test_a_release_acted_on_counts_in_the_batch_window_even_when_ready_since() -> None:
    """Acted on within the batch window is part of the incident, Ready again or not."""
    guard = Guardrail(GuardrailSettings(max_attempts=1, max_batch=1, batch_window=60))
    guard.admit([("apps", "a")], T)
    guard.forget(("apps", "a"))
    assert guard.admit([("apps", "b")], T + 10).act == ()
    assert guard.tripped


def test_a_suspect_never_attempted_counts_even_with_one_attempt_allowed() -> None:
    guard = Guardrail(GuardrailSettings(max_attempts=1, max_batch=2))
    assert guard.admit(keys(2), T, suspects=[("apps", "suspect")]).act == ()
    assert guard.tripped


def test_a_resume_backs_off_from_when_it_ended_and_forget_resets_it() -> None:
    guard = Guardrail(GuardrailSettings(backoff_base=60))
    key = ("apps", "web")
    assert guard.admit([], T, urgent=[key]).act == (key,)
    guard.finished(key, T + 100)  # the resume ran (and gave up) for 100 s
    held = guard.admit([], T + 101, urgent=[key])
    assert held.act == ()
    assert held.next_check == T + 160
    guard.forget(key)
    assert guard.admit([], T + 102, urgent=[key]).act == (key,)


def test_a_suspect_with_attempts_left_counts_towards_the_batch() -> None:
    guard = Guardrail(GuardrailSettings(max_attempts=3, max_batch=2, batch_window=0))
    tried = ("apps", "tried")
    guard.admit([tried], T)
    assert guard.admit(keys(2), T + 10, suspects=[tried]).act == ()
    assert guard.tripped


def test_a_state_with_approvals_tokens_and_incidents_round_trips() -> None:
    """Issue 12's fields of state v1: what a person approved, the tokens taken and the
    open incidents reach the next leader as they were."""
    state = GuardrailState(
        trips=(("inc-a", T),),
        approvals=(Approved("inc-a", "jane", "tok-1", T + 1),),
        used=("tok-0", "tok-1"),
        incidents=(("inc-a", T - 60, "helm-controller leader changed"), ("inc-b", T, "")),
    )
    text = dump_state(state)
    assert load_state(text) == state
    assert '"used":["tok-0","tok-1"]' in text
    assert '"incidents":[["inc-a",' in text


def test_a_token_taken_under_one_leader_is_taken_under_the_next() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=2))
    assert guard.approve("inc-a", "jane", "tok-1", T, known=True) is Approval.PENDING
    heir = Guardrail(GuardrailSettings(max_batch=2))
    heir.restore(load_state(dump_state(guard.state(T))), T + 1)
    assert heir.approve("inc-b", "bob", "tok-1", T + 2, known=True) is Approval.USED


def test_the_oldest_tokens_are_forgotten_past_two_thousand() -> None:
    guard = Guardrail(GuardrailSettings())
    for i in range(2001):
        guard.approve(f"inc-{i}", "jane", f"tok-{i}", T, known=True)
    kept = guard.state(T).used
    assert (len(kept), kept[0], kept[-1]) == (2000, "tok-1", "tok-2000")
    assert guard.approve("inc-x", "jane", "tok-1", T, known=True) is Approval.USED
    assert guard.approve("inc-y", "jane", "tok-0", T, known=True) is Approval.PENDING


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"v": 1, "trips": [[5, 1]]}', "expected a string, got 5"),
        ('{"v": 1, "used": {"t": 1}}', "expected a list in used, got {'t': 1}"),
        ('{"v": 1, "used": [1]}', "expected a string, got 1"),
        ('{"v": 1, "incidents": [["inc-a", "x", ""]]}', "expected a number, got 'x'"),
        ('{"v": 1, "incidents": [[1, 1, ""]]}', "expected a string, got 1"),
        ('{"v": 1, "incidents": [["inc-a", 1, null]]}', "expected a string, got None"),
        ('{"v": 1, "approvals": [["inc-a", 1, "t", 1]]}', "expected a string, got 1"),
        ('{"v": 1, "approvals": [["inc-a", "j", 1, 1]]}', "expected a string, got 1"),
        ('{"v": 1, "approvals": [["inc-a", "j", "t", "x"]]}', "expected a number, got 'x'"),
    ],
)
def test_a_bad_state_v1_field_is_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        load_state(text)
    assert str(raised.value) == "not a guardrail state: " + problem


def test_a_trip_says_its_max_batch() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=2))
    [trip] = guard.admit(keys(3), T, incident_of=lambda k: "inc-a").events
    assert isinstance(trip, Tripped) and (trip.max_batch, trip.at) == (2, T)
    assert "more than max_batch=2: fluxwatch acts on none of them until at most 2" in (trip.message)


@pytest.mark.parametrize(
    ("n", "tail"),
    [
        (2, "apps/hr-00, apps/hr-01 wait"),
        (50, "apps/hr-49 wait"),
        (53, "apps/hr-49 and 3 more wait"),
    ],
)
def test_a_spent_budget_names_fifty_releases_then_counts(n: int, tail: str) -> None:
    guard = Guardrail(GuardrailSettings(max_recoveries=1, max_batch=1000))
    [spent] = guard.admit([("apps", "first"), *keys(n)], T).events
    assert isinstance(spent, OverBudget)
    assert spent.message.startswith("recovery budget of 1 per 600s used up: apps/hr-00, apps/hr-01")
    assert tail in spent.message and ("more" in spent.message) is (n > 50)


def test_a_resume_backing_off_is_not_held_by_the_budget() -> None:
    """A resume's backoff is no budget refusal: no OverBudget for it."""
    guard = Guardrail(GuardrailSettings())
    key = ("apps", "resume")
    guard.admit([], T, urgent=[key])
    held = guard.admit([], T + 1, urgent=[key])
    assert held.act == () and held.events == ()
    assert held.held[key].startswith("backoff after 1 resume(s)")


def test_every_incident_over_the_batch_trips_not_only_the_first() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=2))
    admission = guard.admit(
        [*keys(3, "a"), *keys(3, "b")], T, incident_of=lambda k: f"inc-{k[1][0]}"
    )
    assert admission.act == ()
    assert [e.incident for e in admission.events if isinstance(e, Tripped)] == ["inc-a", "inc-b"]
    assert guard.tripped_incidents() == {"inc-a": T, "inc-b": T}


def test_a_settling_incident_says_how_many_it_would_be() -> None:
    guard = Guardrail(GuardrailSettings(max_batch=10))
    admission = guard.admit(keys(2), T, incident_of=lambda k: "i", unsettled={"i": 9})
    assert admission.held[("apps", "hr-00")] == (
        "settling: 9 more release(s) of incident i are at Ready=Unknown; "
        "11 would be more than max_batch=10"
    )
