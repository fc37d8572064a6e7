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

Resuming fluxwatch's own suspend (``urgent``) is a debt, not a recovery: it
skips the batch count, the budget and the attempt limit, since holding it back
would leave a release suspended, the very harm the limits exist to prevent. It
is charged to a count of its own, never to the release's attempts, and obeys
backoff on that count, so a resume that keeps ending unpaid does not spin.

What must survive a change of leader (the budget spent, the batch window,
each release's attempts) is a plain value: :meth:`Guardrail.state` and
:meth:`Guardrail.restore` move it through :func:`dump_state` /
:func:`load_state`, which the daemon keeps in an annotation of its own leader
Lease, so a new leader, or a restarted crash-looping pod, goes on counting
where the last one stopped (README "Running in a cluster").

``dry_run`` changes nothing in the accounting, so a dry run reports exactly
what a live run would have done; the flag travels on the :class:`Admission`
for the recovery layer, which then writes nothing.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fluxwatch.engine.config import GuardrailSettings

__all__ = [
    "LEASE_ANNOTATION",
    "Admission",
    "Exhausted",
    "GuardEvent",
    "Guardrail",
    "GuardrailState",
    "Key",
    "OverBudget",
    "TripCleared",
    "Tripped",
    "dump_state",
    "load_state",
]

Key = tuple[str, str]  # (namespace, name)

# Where the daemon keeps :func:`dump_state` on its own leader Lease.
LEASE_ANNOTATION = "fluxwatch.io/guardrail"

# How many releases' attempts a state keeps, the latest: a Lease's annotations hold 256 KiB,
# and a release stuck for so long that 2000 others were attempted since is a person's by now.
_KEPT = 2000

_NEVER = (0, 0.0)  # no attempt yet

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


@dataclass(frozen=True, slots=True)
class GuardrailState:
    """What a new leader needs to go on counting: epoch seconds, oldest first."""

    spent: tuple[float, ...] = ()  # each action in the budget window
    recent: tuple[tuple[Key, float], ...] = ()  # the batch window
    attempts: tuple[tuple[Key, int, float], ...] = ()  # (key, attempts, last attempt)
    exhausted: tuple[Key, ...] = ()  # reported already


def dump_state(state: GuardrailState) -> str:
    """Compact JSON; keys as ``namespace/name`` (neither may contain a slash)."""
    return json.dumps(
        {
            "v": 1,
            "spent": state.spent,
            "recent": [[f"{ns}/{n}", at] for (ns, n), at in state.recent],
            "attempts": [[f"{ns}/{n}", k, at] for (ns, n), k, at in state.attempts],
            "exhausted": [f"{ns}/{n}" for ns, n in state.exhausted],
        },
        separators=(",", ":"),
    )


def load_state(text: str) -> GuardrailState:
    """The state :func:`dump_state` wrote; ValueError saying what is wrong otherwise."""

    def key(value: Any) -> Key:
        if not isinstance(value, str) or value.count("/") != 1:
            raise _Bad(f"expected namespace/name, got {_short(value)}")
        ns, _, name = value.partition("/")
        if not ns or not name:
            raise _Bad(f"expected namespace/name, got {_short(value)}")
        return ns, name

    def number(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad(f"expected a number, got {_short(value)}")
        return float(value)

    def items(name: str) -> list[Any]:
        found = data.get(name, [])
        if not isinstance(found, list):
            raise _Bad(f"expected a list in {name}, got {_short(found)}")
        return found

    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise _Bad(f"expected an object with v: 1, got {_short(data)}")
        return GuardrailState(
            spent=tuple(number(at) for at in items("spent")),
            recent=tuple((key(k), number(at)) for k, at in items("recent")),
            attempts=tuple((key(k), int(number(n)), number(at)) for k, n, at in items("attempts")),
            exhausted=tuple(key(k) for k in items("exhausted")),
        )
    except _Bad as exc:
        raise ValueError(f"not a guardrail state: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:  # JSON errors, unpacking, depth
        raise ValueError(f"not a guardrail state: {_short(exc)}") from None


class _Bad(Exception):
    """What :func:`load_state` found wrong, already said for a person."""


def _short(value: object) -> str:
    """A value for an error message, cut short: the annotation could be anything."""
    text = repr(value) if not isinstance(value, Exception) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Guardrail:
    """Batch limit, per-release attempts with backoff, and a sliding budget."""

    def __init__(self, settings: GuardrailSettings) -> None:
        self.settings = settings
        self._spent: deque[float] = deque()  # when each action in the window was admitted
        # (how many, when the last one started or ended): attempts, and the urgent
        # resumes, counted apart from them.
        self._attempts: dict[Key, tuple[int, float]] = {}
        self._resumes: dict[Key, tuple[int, float]] = {}
        self._exhausted: set[Key] = set()  # reported already
        self._tripped_since: float | None = None
        self._recent: dict[Key, float] = {}  # acted on within batch_window, oldest first
        self._over_budget = False  # releases waited for the budget at the last admission

    @property
    def tripped(self) -> bool:
        return self._tripped_since is not None

    def attempts(self, key: Key) -> int:
        return self._attempts.get(key, _NEVER)[0]

    def budget_left(self, now: float) -> int:
        self._expire(now)
        return self.settings.max_recoveries - len(self._spent)

    def state(self, now: float) -> GuardrailState:
        """What a new leader needs (see the module docstring); expired entries left out."""
        self._expire(now)
        attempts = sorted(
            ((k, n, at) for k, (n, at) in self._attempts.items()),
            key=lambda item: item[2],
        )
        kept = attempts[-_KEPT:]
        return GuardrailState(
            spent=tuple(self._spent),
            recent=tuple(self._recent.items()),
            attempts=tuple(kept),
            exhausted=tuple(k for k in self._exhausted if k in {a[0] for a in kept}),
        )

    def restore(
        self, state: GuardrailState, now: float, keep: Callable[[Key], bool] = lambda _k: True
    ) -> None:
        """Count from the previous leader's state, which replaces ours: the Lease is the
        ledger (ours, if we led before, is in it up to our last write). The attempts of a
        release ``keep`` rejects (Ready again, gone) are not taken over."""
        self._spent = deque(sorted(state.spent))
        self._recent = dict(sorted(state.recent, key=lambda item: item[1]))
        kept = [(key, n, at) for key, n, at in state.attempts if keep(key)]
        self._attempts = {key: (n, at) for key, n, at in kept}
        self._exhausted = {key for key in state.exhausted if key in self._attempts}
        self._expire(now)

    def finished(self, key: Key, now: float) -> None:
        """The attempt on ``key`` ended at ``now``: the backoff counts from here, so a
        recovery that ran for minutes is not retried the moment it gives up."""
        for tries in (self._attempts, self._resumes):
            if key in tries:
                tries[key] = (tries[key][0], now)

    def forget(self, key: Key) -> None:
        """The release is Ready again or gone: its next stuck episode starts with no attempts."""
        self._attempts.pop(key, None)
        self._exhausted.discard(key)
        self._resumes.pop(key, None)

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
        Admitted keys are charged an attempt and the budget; urgent ones only their own
        resume count, which backs off.
        """
        s = self.settings
        self._expire(now)
        events: list[GuardEvent] = []
        candidates = self._usable(due, now, events)

        inflight = dict.fromkeys(busy)
        # Out of attempts: no longer ours to count (reported once as Exhausted).
        most = s.max_attempts
        attempts = self._attempts
        inflight.update(dict.fromkeys(k for k in self._recent if attempts.get(k, _NEVER)[0] < most))
        inflight.update(dict.fromkeys(k for k in suspects if attempts.get(k, _NEVER)[0] < most))
        count = len(inflight) + sum(1 for key in candidates if key not in inflight)
        checks: list[float] = []  # when to admit again: the earliest of these
        if count > s.max_batch:
            if self._tripped_since is None:
                self._tripped_since = now
                joined = (*inflight, *(k for k in candidates if k not in inflight))
                events.append(Tripped(joined, s.max_batch, now))
            candidates = []
            if self._recent:
                # The count falls when the oldest action leaves the window: ask again then.
                checks.append(next(iter(self._recent.values())) + s.batch_window)
        elif self._tripped_since is not None:
            events.append(TripCleared(count, s.max_batch, self._tripped_since, now))
            self._tripped_since = None

        act: list[Key] = []
        held: dict[Key, str] = {}
        starved: list[Key] = []
        todo = [(key, self._charge_resume) for key in urgent]
        todo += [(key, self._charge) for key in candidates]
        for key, charge in todo:
            wait = charge(key, now)
            if wait is None:
                act.append(key)
                continue
            held[key], until, by_budget = wait
            if by_budget:
                starved.append(key)
            checks.append(until)
        # Releases waiting for the budget are reported once while it stays used up.
        if starved and not self._over_budget:
            events.append(OverBudget(tuple(starved), s.max_recoveries, s.window, now))
        self._over_budget = bool(starved)
        return Admission(tuple(act), tuple(events), held, min(checks, default=None), s.dry_run)

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
            n = attempts.get(key, _NEVER)[0]
            if n < most:
                usable.append(key)
            elif key not in self._exhausted:
                self._exhausted.add(key)
                events.append(Exhausted(key, n, now))
        return usable

    def _charge_resume(self, key: Key, now: float) -> tuple[str, float, bool] | None:
        """Count a resume of ``key`` (not an attempt, not the budget), or say until when it
        backs off: only resumes that ended without resuming come back here."""
        n, last = self._resumes.get(key, _NEVER)
        if n:
            until = last + self.settings.backoff(n)
            if now < until:
                return f"backoff after {n} resume(s) that did not resume it", until, False
        self._resumes[key] = (n + 1, now)
        return None

    def _charge(self, key: Key, now: float) -> tuple[str, float, bool] | None:
        """Charge ``key`` an attempt and the budget, or say why it waits, until when, and
        whether the budget is what holds it."""
        s = self.settings
        n, last = self._attempts.get(key, _NEVER)
        if n:
            until = last + s.backoff(n)
            if now < until:
                return f"backoff after {n} attempt(s)", until, False
        if len(self._spent) >= s.max_recoveries:
            why = f"budget: {s.max_recoveries} recoveries per {s.window:.0f}s used up"
            return why, self._spent[0] + s.window, True
        self._spent.append(now)
        # Moved to the end: the batch window's oldest action is the first entry.
        self._recent.pop(key, None)
        self._recent[key] = now
        self._attempts[key] = (n + 1, now)
        return None
