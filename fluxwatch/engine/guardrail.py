"""Count first, then act: the limits on how many HelmReleases fluxwatch touches.

A pure object: time comes in as numbers, nothing here sleeps, schedules or
writes. :meth:`Guardrail.admit` takes every release that is due now and
answers which of them may be acted on, what to tell people, and when to ask
again. In that order:

1. batch: the releases due plus those being recovered or acted on within
   the last ``batch_window``, plus the suspects of a helm-controller leader
   change still at Ready=Unknown, are counted first. More than ``max_batch``
   means a cluster-wide incident, not ten unlucky releases: act on none,
   report one :class:`Tripped` naming them all, and stay tripped, holding
   back every release that joins, until the count is ``max_batch`` or less
   (:class:`TripCleared`). The seed's CronJob counted while it acted and
   touched ten before refusing the eleventh. The window matters because an
   incident's releases cross the threshold seconds apart (their installs
   started seconds apart): counted one instant at a time, fifteen would pass
   as two harmless batches.
2. per release: at most ``max_attempts`` attempts until the release is seen
   Ready again (:meth:`Guardrail.forget`), with exponential backoff between
   them; a release out of attempts is reported once (:class:`Exhausted`) and
   no longer counted.
3. budget: at most ``max_recoveries`` actions in any sliding ``window``;
   the first release it holds back is reported (:class:`OverBudget`), once
   for as long as releases keep waiting for it.

:class:`Tripped`, :class:`OverBudget` and :class:`Exhausted` are the
refusals; each names its ``guard`` (``batch``, ``budget``, ``attempts``), the
label ``fluxwatch_guardrail_trips_total`` counts them by.

Resuming fluxwatch's own interrupted suspend (``urgent``) skips the batch
count and the budget: holding it back would leave a release suspended, the
very harm the limits exist to prevent. It still obeys attempts and backoff,
so a resume that keeps failing does not spin.

``dry_run`` changes nothing in the accounting, so a dry run reports exactly
what a live run would have done; the flag travels on the :class:`Admission`
for the recovery layer, which then writes nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from fluxwatch.engine.config import GuardrailSettings

__all__ = [
    "Admission",
    "Exhausted",
    "GuardEvent",
    "Guardrail",
    "Key",
    "OverBudget",
    "TripCleared",
    "Tripped",
]

Key = tuple[str, str]  # (namespace, name)

# How many releases a message names before it says "and N more": alerts stay readable.
_NAMED = 50


def _names(keys: Iterable[Key]) -> str:
    keys = list(keys)
    shown = ", ".join(f"{ns}/{name}" for ns, name in keys[:_NAMED])
    return shown + (f" and {len(keys) - _NAMED} more" if len(keys) > _NAMED else "")


@dataclass(frozen=True, slots=True)
class Tripped:
    """Too many releases stuck at once: none is touched until the count falls."""

    keys: tuple[Key, ...]
    max_batch: int
    at: float
    reason: ClassVar[str] = "GuardrailTripped"
    severity: ClassVar[str] = "error"
    guard: ClassVar[str] = "batch"

    @property
    def message(self) -> str:
        return (
            f"{len(self.keys)} HelmReleases are stuck in the same incident (due now, acted "
            "on moments ago, or caught at Ready=Unknown by a helm-controller leader change), "
            f"more than max_batch={self.max_batch}: fluxwatch acts on none of them until at "
            f"most {self.max_batch} remain. Stuck: {_names(self.keys)}"
        )


@dataclass(frozen=True, slots=True)
class TripCleared:
    """The count fell to ``max_batch`` or below: recoveries resume."""

    count: int
    max_batch: int
    since: float
    at: float
    reason: ClassVar[str] = "GuardrailCleared"
    severity: ClassVar[str] = "info"

    @property
    def message(self) -> str:
        return (
            f"{self.count} HelmReleases stuck, at most max_batch={self.max_batch}: recoveries "
            f"resume after {self.at - self.since:.0f}s on hold"
        )


@dataclass(frozen=True, slots=True)
class Exhausted:
    """A release still stuck after ``max_attempts`` attempts: a person has to look."""

    key: Key
    attempts: int
    at: float
    reason: ClassVar[str] = "RecoveryExhausted"
    severity: ClassVar[str] = "error"
    guard: ClassVar[str] = "attempts"

    @property
    def message(self) -> str:
        ns, name = self.key
        return (
            f"HelmRelease {ns}/{name} is still stuck after {self.attempts} recovery attempts; "
            "fluxwatch gives up on it until it is Ready again"
        )


@dataclass(frozen=True, slots=True)
class OverBudget:
    """``max_recoveries`` actions in the last ``window`` already: these releases wait."""

    keys: tuple[Key, ...]
    max_recoveries: int
    window: float
    at: float
    reason: ClassVar[str] = "GuardrailBudgetSpent"
    severity: ClassVar[str] = "info"
    guard: ClassVar[str] = "budget"

    @property
    def message(self) -> str:
        return (
            f"recovery budget of {self.max_recoveries} per {self.window:.0f}s used up: "
            f"{_names(self.keys)} wait until the oldest recovery leaves the window"
        )


GuardEvent = Tripped | TripCleared | Exhausted | OverBudget


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to one :meth:`Guardrail.admit`."""

    act: tuple[Key, ...] = ()  # act on these now, in this order
    events: tuple[GuardEvent, ...] = ()  # to tell people, once each
    # Why a key waits for backoff or budget. Not listed: all of them while tripped
    # (see Guardrail.tripped), those out of attempts (see Guardrail.attempts).
    held: Mapping[Key, str] = field(default_factory=dict)
    next_check: float | None = None  # admit again then, even if nothing else changes
    dry_run: bool = False


class Guardrail:
    """Batch limit, per-release attempts with backoff, and a sliding budget."""

    def __init__(self, settings: GuardrailSettings) -> None:
        self.settings = settings
        self._spent: deque[float] = deque()  # when each action in the window was admitted
        self._attempts: dict[Key, int] = {}
        self._last_attempt: dict[Key, float] = {}  # when the last attempt started or ended
        self._exhausted: set[Key] = set()  # reported already
        self._tripped_since: float | None = None
        self._recent: dict[Key, float] = {}  # acted on within batch_window, oldest first
        self._over_budget = False  # releases waited for the budget at the last admission

    @property
    def tripped(self) -> bool:
        return self._tripped_since is not None

    def attempts(self, key: Key) -> int:
        return self._attempts.get(key, 0)

    def budget_left(self, now: float) -> int:
        self._expire(now)
        return self.settings.max_recoveries - len(self._spent)

    def finished(self, key: Key, now: float) -> None:
        """The attempt on ``key`` ended at ``now``: the backoff counts from here, so a
        recovery that ran for minutes is not retried the moment it gives up."""
        if key in self._last_attempt:
            self._last_attempt[key] = now

    def forget(self, key: Key) -> None:
        """The release is Ready again or gone: its next stuck episode starts with no attempts."""
        self._attempts.pop(key, None)
        self._last_attempt.pop(key, None)
        self._exhausted.discard(key)

    def admit(
        self,
        due: Iterable[Key],
        now: float,
        *,
        busy: Collection[Key] = (),
        urgent: Iterable[Key] = (),
        suspects: Iterable[Key] = (),
    ) -> Admission:
        """Decide which of the releases due at ``now`` may be acted on.

        ``due``: stuck releases waiting for an action, oldest first. ``busy``:
        releases being recovered right now; they count towards the batch.
        ``urgent``: interrupted suspends to resume (see the module docstring).
        ``suspects``: releases still Ready=Unknown that a helm-controller leader change
        caught mid-flight; they count towards the batch before they are due, so the
        incident is seen whole when its first release crosses the threshold.
        Admitted keys are charged an attempt and, unless urgent, the budget.
        """
        s = self.settings
        self._expire(now)
        events: list[GuardEvent] = []
        resumes = self._usable(urgent, now, events)
        candidates = self._usable(due, now, events)

        inflight = dict.fromkeys(busy)
        # Out of attempts: no longer ours to count (reported once as Exhausted).
        most = s.max_attempts
        inflight.update(dict.fromkeys(k for k in self._recent if self._attempts.get(k, 0) < most))
        inflight.update(dict.fromkeys(k for k in suspects if self._attempts.get(k, 0) < most))
        count = len(inflight) + sum(1 for key in candidates if key not in inflight)
        next_check: float | None = None
        if count > s.max_batch:
            if self._tripped_since is None:
                self._tripped_since = now
                joined = (*inflight, *(k for k in candidates if k not in inflight))
                events.append(Tripped(joined, s.max_batch, now))
            candidates = []
            if self._recent:
                # The count falls when the oldest action leaves the window: ask again then.
                next_check = next(iter(self._recent.values())) + s.batch_window
        elif self._tripped_since is not None:
            events.append(TripCleared(count, s.max_batch, self._tripped_since, now))
            self._tripped_since = None

        act: list[Key] = []
        held: dict[Key, str] = {}
        starved: list[Key] = []
        todo = [(key, False) for key in resumes] + [(key, True) for key in candidates]
        for key, charged in todo:
            wait = self._charge(key, now, budget=charged)
            if wait is None:
                act.append(key)
                continue
            held[key], until, by_budget = wait
            if by_budget:
                starved.append(key)
            next_check = until if next_check is None else min(next_check, until)
        if starved and not self._over_budget:
            events.append(OverBudget(tuple(starved), s.max_recoveries, s.window, now))
        self._over_budget = bool(starved)
        return Admission(tuple(act), tuple(events), held, next_check, s.dry_run)

    def _expire(self, now: float) -> None:
        spent, start = self._spent, now - self.settings.window
        while spent and spent[0] <= start:
            spent.popleft()
        recent, since = self._recent, now - self.settings.batch_window
        while recent:
            key, at = next(iter(recent.items()))
            if at > since:
                break
            del recent[key]

    def _usable(self, keys: Iterable[Key], now: float, events: list[GuardEvent]) -> list[Key]:
        """The keys with attempts left; a key out of attempts is reported the first time only.

        Runs over every due release on each admission, thousands during an incident:
        kept to one dict lookup per key.
        """
        attempts = self._attempts
        if not attempts:
            return list(keys)
        most = self.settings.max_attempts
        usable: list[Key] = []
        for key in keys:
            n = attempts.get(key, 0)
            if n < most:
                usable.append(key)
            elif key not in self._exhausted:
                self._exhausted.add(key)
                events.append(Exhausted(key, n, now))
        return usable

    def _charge(self, key: Key, now: float, *, budget: bool) -> tuple[str, float, bool] | None:
        """Charge ``key`` an attempt (and the budget), or say why it waits, until when, and
        whether the budget is what holds it."""
        s = self.settings
        n = self._attempts.get(key, 0)
        if n:
            until = self._last_attempt[key] + s.backoff(n)
            if now < until:
                return f"backoff after {n} attempt(s)", until, False
        if budget:
            if len(self._spent) >= s.max_recoveries:
                why = f"budget: {s.max_recoveries} recoveries per {s.window:.0f}s used up"
                return why, self._spent[0] + s.window, True
            self._spent.append(now)
            self._recent.pop(key, None)
            self._recent[key] = now
        self._attempts[key] = n + 1
        self._last_attempt[key] = now
        return None
