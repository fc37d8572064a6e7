"""The lease monitor: leader changes, flapping and leaderless Flux controllers.

The monitor is pure (updates and time in, findings out); the last test drives
the thin asyncio wrapper under looptime.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from engine_objects import T0, lease, lease_obj

from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import LeaseSettings
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
from fluxwatch.kube.lease import lease_view
from fluxwatch.kube.watch import DELETED, MODIFIED

A = "helm-controller-5f7c8d9b6-x2k4p_9e0c1f52-3d7a-4b6e-8c21-5a4f3e2d1c0b"
B = "helm-controller-5f7c8d9b6-q8m2n_1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6"
KEY = ("flux-system", "helm-controller-leader-election")


# The logic's tests pin a 30 s grace; the default's own test is below.
SETTINGS = LeaseSettings(grace=30.0)


@pytest.fixture
def monitor() -> LeaseMonitor:
    return LeaseMonitor(SETTINGS)


def test_first_sight_is_the_baseline(monitor: LeaseMonitor) -> None:
    assert monitor.observe(lease(A, renew=T0), T0) == []


def test_renewals_by_the_same_holder_say_nothing(monitor: LeaseMonitor) -> None:
    monitor.observe(lease(A, renew=T0), T0)
    for i in range(1, 20):
        assert monitor.observe(lease(A, renew=T0 + 2 * i), T0 + 2 * i) == []


def test_new_holder_is_a_leader_change(monitor: LeaseMonitor) -> None:
    """FLUX-FACTS §5: a leader change is a new holderIdentity, a new acquireTime and
    leaseTransitions + 1."""
    monitor.observe(lease(A, renew=T0, transitions=4), T0)
    [change] = monitor.observe(lease(B, renew=T0 + 40, transitions=5), T0 + 40)
    assert change == LeaderChanged(KEY, "helm-controller", A, B, 5, T0 + 40)
    assert change.severity == "info"
    assert A in change.message and B in change.message


def test_clean_release_is_not_a_change(monitor: LeaseMonitor) -> None:
    """FLUX-FACTS §5: a clean release writes an empty holder."""
    monitor.observe(lease(A, renew=T0), T0)
    [released] = monitor.observe(lease("", renew=T0 + 5, duration=1), T0 + 5)
    assert released == LeaderReleased(KEY, "helm-controller", A, T0 + 5)
    # The next holder is compared with the one before the release.
    [change] = monitor.observe(lease(B, renew=T0 + 8, transitions=5), T0 + 8)
    assert isinstance(change, LeaderChanged)
    assert (change.old, change.new) == (A, B)


def test_same_holder_back_after_a_release_is_no_change(monitor: LeaseMonitor) -> None:
    monitor.observe(lease(A, renew=T0), T0)
    monitor.observe(lease("", renew=T0 + 5, duration=1), T0 + 5)
    assert monitor.observe(lease(A, renew=T0 + 8), T0 + 8) == []


def test_flapping_once_per_episode(monitor: LeaseMonitor) -> None:
    """More than flap_threshold (3) changes within flap_window (600 s): one LeaderFlapping."""
    monitor.observe(lease(A, renew=T0), T0)
    found: list[Finding] = []
    for i, holder in enumerate([B, A, B, A, B], start=1):
        found += monitor.observe(lease(holder, renew=T0 + 60 * i), T0 + 60 * i)
    flaps = [f for f in found if isinstance(f, LeaderFlapping)]
    # At the fourth change, naming the holders in the order they took the Lease.
    assert flaps == [LeaderFlapping(KEY, "helm-controller", 4, 600.0, (B, A, B, A), T0 + 240)]
    assert flaps[0].severity == "error"
    assert flaps[0].message == (
        f"helm-controller changed leader 4 times within 600s ({B}, {A}, {B}, {A}); "
        "releases it was installing may be left Ready=Unknown"
    )
    assert sum(isinstance(f, LeaderChanged) for f in found) == 5
    # Calm for a window (B keeps renewing): the episode ends; a new burst is a new episode.
    assert monitor.observe(lease(B, renew=T0 + 1000), T0 + 1000) == []
    later: list[Finding] = []
    for i, holder in enumerate([A, B, A, B], start=1):
        t = T0 + 1000 + 10 * i
        later += monitor.observe(lease(holder, renew=t), t)
    assert sum(isinstance(f, LeaderFlapping) for f in later) == 1


@pytest.mark.parametrize(("last", "flapping"), [(609.0, True), (610.0, False)])
def test_a_change_flap_window_old_has_left_the_window(last: float, flapping: bool) -> None:
    """Changes at 10, 20 and 30 s, the fourth at ``last``: the one at 10 s still counts
    until it is flap_window (600 s) old, and no longer from that instant on."""
    monitor = LeaseMonitor(SETTINGS)
    monitor.observe(lease(A, renew=T0), T0)
    for t, holder in [(10.0, B), (20.0, A), (30.0, B)]:
        monitor.observe(lease(holder, renew=T0 + t), T0 + t)
    found = monitor.observe(lease(A, renew=T0 + last), T0 + last)
    assert any(isinstance(f, LeaderFlapping) for f in found) is flapping


def test_three_changes_are_not_flapping(monitor: LeaseMonitor) -> None:
    monitor.observe(lease(A, renew=T0), T0)
    found: list[Finding] = []
    for i, holder in enumerate([B, A, B], start=1):
        found += monitor.observe(lease(holder, renew=T0 + i), T0 + i)
    assert not any(isinstance(f, LeaderFlapping) for f in found)


def test_flux_s_failover_after_a_lost_lease_is_a_change_not_an_outage() -> None:
    """client-go's failover with Flux's 35s/30s/5s: the leader's last renewal at T0; it
    gives up at its renew deadline (T0+30) and exits; its pod restarts (10 s); the new
    process waits a full lease duration from its first look (T0+40+35) and up to 1.2
    retry periods more. The default grace keeps that a LeaderChanged alone."""
    monitor = LeaseMonitor(LeaseSettings())
    monitor.observe(lease(A, renew=T0, duration=35), T0)
    assert monitor.check(T0 + 81) == []
    found = monitor.observe(lease(B, renew=T0 + 81, transitions=5), T0 + 81)
    assert [type(f) for f in found] == [LeaderChanged]
    # With the old 30 s grace the same failover was an outage and a restore.
    old = LeaseMonitor(SETTINGS)
    old.observe(lease(A, renew=T0, duration=35), T0)
    assert [type(f) for f in old.check(T0 + 81)] == [ControllerLeaderless]


def test_leaderless_once_then_restored(monitor: LeaseMonitor) -> None:
    """FLUX-FACTS §5: a leader is gone when renewTime + leaseDurationSeconds lies in the past;
    the monitor waits `grace` (30 s) more before it says so."""
    monitor.observe(lease(A, renew=T0, duration=35), T0)
    assert monitor.next_check() == T0 + 35 + 30
    assert monitor.check(T0 + 64.9) == []
    [gone] = monitor.check(T0 + 65)
    assert gone == ControllerLeaderless(KEY, "helm-controller", A, T0 + 35, T0 + 65)
    assert gone.severity == "error"
    assert monitor.check(T0 + 120) == []  # once
    assert monitor.next_check() is None
    [back] = monitor.observe(lease(B, renew=T0 + 130, transitions=5), T0 + 130)[1:]
    assert back == LeaderRestored(KEY, "helm-controller", B, 65.0, T0 + 130)


def test_a_second_outage_after_a_restore_is_reported_again(monitor: LeaseMonitor) -> None:
    monitor.observe(lease(A, renew=T0, duration=35), T0)
    assert [type(f) for f in monitor.check(T0 + 65)] == [ControllerLeaderless]
    [back] = monitor.observe(lease(A, renew=T0 + 100, duration=35), T0 + 100)
    assert back == LeaderRestored(KEY, "helm-controller", A, 35.0, T0 + 100)
    # A renews no more: the timer is due again at the new expiry plus grace.
    assert monitor.next_check() == T0 + 100 + 35 + 30
    [again] = monitor.check(T0 + 165)
    assert again == ControllerLeaderless(KEY, "helm-controller", A, T0 + 135, T0 + 165)


def test_leaderless_after_a_clean_release_nobody_took(monitor: LeaseMonitor) -> None:
    monitor.observe(lease(A, renew=T0), T0)
    monitor.observe(lease("", renew=T0 + 5, duration=1), T0 + 5)
    [gone] = monitor.check(T0 + 36)
    assert isinstance(gone, ControllerLeaderless)
    assert (gone.holder, gone.released_by) == ("", A)
    assert "clean release" in gone.message
    # An update that keeps the holder empty restores nothing.
    assert monitor.observe(lease("", renew=T0 + 5, duration=1), T0 + 40) == []


def test_only_the_flux_leases_are_watched(monitor: LeaseMonitor) -> None:
    """FLUX-FACTS §5: `<controller>-leader-election` in the Flux namespace, with a
    `-<8 hex>` suffix under --watch-label-selector."""
    assert monitor.controller("flux-system", "helm-controller-leader-election") == (
        "helm-controller"
    )
    assert monitor.controller("flux-system", "source-controller-leader-election-1a2b3c4d") == (
        "source-controller"
    )
    assert monitor.controller("flux-system", "my-operator-leader-election") is None
    assert monitor.controller("kube-system", "helm-controller-leader-election") is None
    other = lease(A, renew=T0, name="kube-scheduler")
    assert monitor.observe(other, T0 + 3600) == []
    assert monitor.next_check() is None


def test_a_deleted_lease_has_no_deadline_and_its_recreation_by_another_is_a_change(
    monitor: LeaseMonitor,
) -> None:
    """Deleted: no Lease, no deadline (as for a controller without leader election).
    Recreated by another pod, the new Lease counts from 0 and the leader did change;
    recreated by the same holder (its renewal found the Lease gone), nothing changed."""
    monitor.observe(lease(A, renew=T0), T0)
    monitor.forget(*KEY)
    assert monitor.next_check() is None
    assert monitor.check(T0 + 3600) == []
    [change] = monitor.observe(lease(B, renew=T0 + 3600, transitions=0), T0 + 3600)
    assert change == LeaderChanged(KEY, "helm-controller", A, B, 0, T0 + 3600)
    monitor.forget(*KEY)
    assert monitor.observe(lease(B, renew=T0 + 3605, transitions=0), T0 + 3605) == []
    assert monitor.next_check() == T0 + 3605 + 35 + 30


def test_a_leader_whose_clock_runs_behind_is_not_leaderless(monitor: LeaseMonitor) -> None:
    """Its renewTimes arrive already older than the lease duration plus grace; what
    counts is that they change, seen on our clock, as client-go's candidates see it."""
    behind = 20 + 35 + 30  # more than the whole allowance
    found: list[Finding] = []
    for t in range(0, 600, 5):  # Flux's retry period
        found += monitor.observe(lease(A, renew=T0 + t - behind), T0 + t)
        found += monitor.check(T0 + t + 4.9)
    assert found == []


def test_a_leader_whose_clock_ran_ahead_is_leaderless_on_our_time(
    monitor: LeaseMonitor,
) -> None:
    """A stopped leader's last renewTime lies an hour ahead: still leaderless once its
    duration and the grace have passed since the Lease last changed."""
    for t in range(0, 55, 5):
        monitor.observe(lease(A, renew=T0 + t + 3600), T0 + t)
    assert monitor.next_check() == T0 + 50 + 35 + 30
    [gone] = monitor.check(T0 + 115)
    assert gone == ControllerLeaderless(KEY, "helm-controller", A, T0 + 85, T0 + 115)


def test_the_same_lease_seen_again_is_no_sign_of_life(monitor: LeaseMonitor) -> None:
    """A relist delivers the Lease unchanged: the deadline stays where it was."""
    monitor.observe(lease(A, renew=T0), T0)
    assert monitor.observe(lease(A, renew=T0), T0 + 50) == []
    assert [type(f) for f in monitor.check(T0 + 65)] == [ControllerLeaderless]


def test_a_lease_without_a_duration_runs_out_after_the_grace(monitor: LeaseMonitor) -> None:
    """client-go reads a missing leaseDurationSeconds as 0: any candidate may take it."""
    obj = lease_obj(A, renew=T0)
    del obj["spec"]["leaseDurationSeconds"]
    monitor.observe(lease_view(obj), T0)
    assert monitor.next_check() == T0 + 30
    [gone] = monitor.check(T0 + 30)
    assert isinstance(gone, ControllerLeaderless) and gone.holder == A


def test_malformed_lease_is_skipped_and_logged_by_name(
    monitor: LeaseMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    obj = lease_obj(A, renew=T0)
    obj["spec"]["renewTime"] = "yesterday"
    view = lease_view(obj)
    assert view.malformed
    with caplog.at_level(logging.WARNING, logger="fluxwatch.engine.leases"):
        assert monitor.observe(view, T0) == []
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"cannot read Lease: {view.malformed}"
    assert (record.namespace, record.lease) == KEY


@pytest.mark.looptime
async def test_a_failing_finding_handler_is_logged_and_the_next_findings_still_arrive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Finding] = []

    def on_finding(finding: Finding) -> None:
        seen.append(finding)
        if isinstance(finding, LeaderChanged):
            raise RuntimeError("router closed")

    watch = LeaseWatch(LeaseMonitor(SETTINGS), Clock(epoch=T0), on_finding)
    watch.handle(MODIFIED, lease(A, renew=T0), None)
    await asyncio.sleep(100)  # leaderless at 65
    with caplog.at_level(logging.ERROR, logger="fluxwatch.engine.leases"):
        watch.handle(MODIFIED, lease(B, renew=T0 + 100, transitions=5), None)
    assert [type(f) for f in seen] == [ControllerLeaderless, LeaderChanged, LeaderRestored]
    [record] = caplog.records
    assert record.getMessage() == "lease finding handler failed"
    assert (record.namespace, record.lease) == KEY
    assert record.exc_info is not None and "router closed" in str(record.exc_info[1])
    watch.close()


@pytest.mark.looptime
async def test_deleting_a_lease_never_seen_is_nothing() -> None:
    watch = LeaseWatch(LeaseMonitor(SETTINGS), Clock(epoch=T0), lambda f: None)
    watch.handle(DELETED, lease(A, renew=T0, name="kube-scheduler"), None)
    watch.handle(DELETED, lease(A, renew=T0), None)
    assert watch.monitor.next_check() is None


@pytest.mark.looptime
async def test_watch_reports_leaderless_in_the_tick_the_grace_runs_out() -> None:
    """Leaderless is the absence of updates: the wrapper's timer finds it without one."""
    loop = asyncio.get_running_loop()
    found: list[tuple[float, Finding]] = []
    watch = LeaseWatch(
        LeaseMonitor(SETTINGS), Clock(epoch=T0), lambda f: found.append((loop.time(), f))
    )
    watch.handle(MODIFIED, lease(A, renew=T0), None)
    await asyncio.sleep(50)
    watch.handle(MODIFIED, lease(A, renew=T0 + 50), None)  # renewed: the deadline moves
    await asyncio.sleep(200)
    assert [(t, type(f)) for t, f in found] == [(115.0, ControllerLeaderless)]
    watch.handle(MODIFIED, lease(B, renew=T0 + 250, transitions=5), None)
    assert [type(f) for _, f in found[1:]] == [LeaderChanged, LeaderRestored]
    watch.handle(DELETED, lease(B, renew=T0 + 250), None)
    await asyncio.sleep(1000)
    assert len(found) == 3
    watch.close()
