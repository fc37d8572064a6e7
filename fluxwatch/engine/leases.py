"""Leader elections of the Flux controllers, read from their Leases (FLUX-FACTS §5).

The stuck bug starts when helm-controller loses its Lease mid-install (§1),
so who holds each ``<controller>-leader-election`` Lease is worth watching:

- a new holder is a :class:`LeaderChanged` (info); releases that were
  ``Ready=Unknown`` at that moment become suspects in the tracker;
- more than ``flap_threshold`` changes within ``flap_window`` is a
  :class:`LeaderFlapping` (error), once per episode; the episode ends when
  the window holds ``flap_threshold`` changes or fewer again;
- ``leaseDurationSeconds + grace`` passed since the Lease last changed, as
  seen on fluxwatch's clock, is a :class:`ControllerLeaderless` (error), once,
  cleared by a :class:`LeaderRestored` (info) when a holder renews. Like
  client-go's candidates, the monitor never reads the holder's ``renewTime`` as
  a time: it only notices that it changed. A node whose clock runs minutes
  behind writes renewTimes that look expired on arrival, one that runs ahead
  writes renewTimes that look fresh after it died; neither moves the deadline.
  A missing ``leaseDurationSeconds`` counts as 0, as client-go reads it;
- an empty holder is a clean release (graceful shutdown), a
  :class:`LeaderReleased` (info), not a change; if nobody acquires within
  the lease duration and grace, it is leaderless all the same;
- a deleted Lease has no deadline (a controller without leader election has
  no Lease at all), but its last holder is kept: recreated by someone else
  (``leaseTransitions`` back to 0), it is a :class:`LeaderChanged`.

:class:`LeaseMonitor` is pure (time comes in as numbers). Leaderless is the
absence of updates, so something must wake the monitor when time passes:
:class:`LeaseWatch` is the thin asyncio wrapper that feeds it informer
events and sleeps on one timer until :meth:`LeaseMonitor.next_check`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import LeaseSettings
from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.kube.lease import LeaseView
from fluxwatch.kube.watch import DELETED

__all__ = [
    "ControllerLeaderless",
    "Finding",
    "LeaderChanged",
    "LeaderFlapping",
    "LeaderReleased",
    "LeaderRestored",
    "LeaseMonitor",
    "LeaseWatch",
]

log = logging.getLogger(__name__)

LeaseKey = tuple[str, str]  # (namespace, name)

_SUFFIX = "-leader-election"
# Flux appends -<8 hex of sha256(selector)> when a controller runs with --watch-label-selector.
_SHARD = re.compile(r"(?P<base>.+)-[0-9a-f]{8}")


@dataclass(frozen=True, slots=True)
class LeaderChanged:
    lease: LeaseKey
    controller: str
    old: str
    new: str
    transitions: int  # leaseTransitions after the change
    at: float
    reason: ClassVar[str] = "LeaderChanged"
    severity: ClassVar[str] = "info"

    @property
    def message(self) -> str:
        return f"{self.controller} changed leader: {self.old or '(none)'} -> {self.new}"


@dataclass(frozen=True, slots=True)
class LeaderReleased:
    lease: LeaseKey
    controller: str
    holder: str  # who released it
    at: float
    reason: ClassVar[str] = "LeaderReleased"
    severity: ClassVar[str] = "info"

    @property
    def message(self) -> str:
        return f"{self.controller} leader {self.holder or '(unknown)'} released its Lease cleanly"


@dataclass(frozen=True, slots=True)
class LeaderFlapping:
    lease: LeaseKey
    controller: str
    changes: int
    window: float
    holders: tuple[str, ...]  # the holders seen in the episode so far, oldest first
    at: float
    reason: ClassVar[str] = "LeaderFlapping"
    severity: ClassVar[str] = "error"

    @property
    def message(self) -> str:
        return (
            f"{self.controller} changed leader {self.changes} times within "
            f"{self.window:.0f}s ({', '.join(self.holders)}); "
            "releases it was installing may be left Ready=Unknown"
        )


@dataclass(frozen=True, slots=True)
class ControllerLeaderless:
    lease: LeaseKey
    controller: str
    holder: str  # the last holder, "" after a clean release
    expired_at: float  # when it ran out on our clock: last seen to change + its duration
    at: float
    released_by: str = ""  # after a clean release: who released it
    reason: ClassVar[str] = "ControllerLeaderless"
    severity: ClassVar[str] = "error"

    @property
    def message(self) -> str:
        who = f"leader {self.holder}" if self.holder else "no leader since a clean release; it"
        return (
            f"{self.controller} has no leader: {who} stopped renewing, the Lease expired at "
            f"{format_rfc3339(self.expired_at)} and nobody took it over"
        )


@dataclass(frozen=True, slots=True)
class LeaderRestored:
    lease: LeaseKey
    controller: str
    holder: str
    down_for: float  # seconds since leaderless was reported
    at: float
    reason: ClassVar[str] = "LeaderRestored"
    severity: ClassVar[str] = "info"

    @property
    def message(self) -> str:
        return (
            f"{self.controller} has a leader again ({self.holder}) after "
            f"{self.down_for:.0f}s without one"
        )


Finding = LeaderChanged | LeaderReleased | LeaderFlapping | ControllerLeaderless | LeaderRestored


# What a holder writes on every renewal: a change of any of it is a sign of life.
_Record = tuple[str, float | None, float | None, int, int | None]


@dataclass(slots=True)
class _State:
    controller: str
    holder: str  # "" while released
    last_holder: str  # the last non-empty holder
    expires_at: float | None  # on our clock; None while the Lease is deleted
    record: _Record | None = None
    changes: deque[tuple[float, str]] = field(default_factory=deque)  # (when, new holder)
    flapping: bool = False
    leaderless_since: float | None = None


class LeaseMonitor:
    """Holder changes, flapping and leaderless controllers from Lease updates; no I/O."""

    def __init__(self, settings: LeaseSettings) -> None:
        self.settings = settings
        self._leases: dict[LeaseKey, _State] = {}

    def controller(self, namespace: str, name: str) -> str | None:
        """The controller a watched Lease belongs to, or None for a Lease not watched."""
        if namespace != self.settings.namespace:
            return None
        if name not in self.settings.names:
            shard = _SHARD.fullmatch(name)
            if shard is None or shard["base"] not in self.settings.names:
                return None
            name = shard["base"]
        return name.removesuffix(_SUFFIX)

    def observe(self, lease: LeaseView, now: float) -> list[Finding]:
        """Take one update of a Lease seen at ``now``; return what it reveals."""
        controller = self.controller(lease.namespace, lease.name)
        if controller is None:
            return []
        if lease.malformed is not None:
            log.warning(
                "cannot read Lease: %s",
                lease.malformed,
                extra={"namespace": lease.namespace, "lease": lease.name},
            )
            return []
        key = lease.key
        st = self._leases.get(key)
        found: list[Finding] = []
        if st is None:
            # First sight: whoever holds it is the baseline, not a change.
            st = _State(controller, lease.holder, lease.holder, None)
            self._leases[key] = st
        elif lease.holder != st.holder:
            if not lease.holder:
                found.append(LeaderReleased(key, controller, st.holder, now))
            elif lease.holder != st.last_holder:
                found.append(
                    LeaderChanged(
                        key, controller, st.last_holder, lease.holder, lease.transitions, now
                    )
                )
                st.changes.append((now, lease.holder))
            st.holder = lease.holder
            st.last_holder = lease.holder or st.last_holder
        record = (
            lease.holder,
            lease.renew_time,
            lease.acquire_time,
            lease.transitions,
            lease.lease_duration_seconds,
        )
        if record != st.record or st.expires_at is None:
            # Seen to change now (or seen again after a deletion): valid for its duration
            # from this moment on our clock, whatever renewTime says.
            st.record = record
            st.expires_at = now + (lease.lease_duration_seconds or 0)
        found.extend(self._check(key, st, now))
        return found

    def forget(self, namespace: str, name: str) -> None:
        """The Lease was deleted: no deadline until it is back; who held it is kept."""
        st = self._leases.get((namespace, name))
        if st is not None:
            st.expires_at = None
            st.record = None

    def check(self, now: float) -> list[Finding]:
        """What the passing of time alone reveals (leaderless controllers)."""
        found: list[Finding] = []
        for key, st in self._leases.items():
            found.extend(self._check(key, st, now))
        return found

    def next_check(self) -> float | None:
        """The earliest instant at which :meth:`check` can find something new."""
        grace = self.settings.grace
        times = [
            st.expires_at + grace
            for st in self._leases.values()
            if st.expires_at is not None and st.leaderless_since is None
        ]
        return min(times, default=None)

    def _check(self, key: LeaseKey, st: _State, now: float) -> list[Finding]:
        s = self.settings
        found: list[Finding] = []
        changes = st.changes
        while changes and changes[0][0] <= now - s.flap_window:
            changes.popleft()
        if len(changes) > s.flap_threshold:
            if not st.flapping:
                st.flapping = True
                holders = tuple(holder for _, holder in changes)
                found.append(
                    LeaderFlapping(key, st.controller, len(changes), s.flap_window, holders, now)
                )
        else:
            st.flapping = False

        if st.expires_at is None:
            return found
        # Reaching the deadline counts, so a timer set for it finds it.
        late = now >= st.expires_at + s.grace
        if late and st.leaderless_since is None:
            st.leaderless_since = now
            released_by = "" if st.holder else st.last_holder
            found.append(
                ControllerLeaderless(key, st.controller, st.holder, st.expires_at, now, released_by)
            )
        elif not late and st.holder and st.leaderless_since is not None:
            down = now - st.leaderless_since
            st.leaderless_since = None
            found.append(LeaderRestored(key, st.controller, st.holder, down, now))
        return found


class LeaseWatch:
    """Feeds informer events to a :class:`LeaseMonitor`; wakes it when a Lease runs out."""

    def __init__(
        self, monitor: LeaseMonitor, clock: Clock, on_finding: Callable[[Finding], object]
    ) -> None:
        self.monitor = monitor
        self._clock = clock
        self._on_finding = on_finding
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def handle(self, event_type: str, view: LeaseView, old: LeaseView | None) -> None:
        """The Lease informer's handler."""
        if event_type == DELETED:
            self.monitor.forget(view.namespace, view.name)
        else:
            self._report(self.monitor.observe(view, self._clock.now()))
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

    def _arm(self) -> None:
        when = self.monitor.next_check()
        if when == self._timer_at:
            return
        self.close()
        if when is not None:
            self._timer = self._clock.call_at(when, lambda: self._wake(when))
            self._timer_at = when

    def _wake(self, when: float) -> None:
        self._timer = self._timer_at = None
        # A timer may run a clock tick early: judge at the instant it stands for.
        self._report(self.monitor.check(max(self._clock.now(), when)))
        self._arm()

    def _report(self, findings: list[Finding]) -> None:
        for finding in findings:
            try:
                self._on_finding(finding)
            except Exception:
                log.exception(
                    "lease finding handler failed",
                    extra={"namespace": finding.lease[0], "lease": finding.lease[1]},
                )
