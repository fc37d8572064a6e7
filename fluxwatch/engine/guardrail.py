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
from enum import StrEnum
from typing import Any, ClassVar

from fluxwatch.engine.config import GuardrailSettings

__all__ = [
    "LEASE_ANNOTATION",
    "Admission",
    "Approval",
    "Approved",
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
    incident: str = ""  # "" when releases are not grouped (one incident: all of them)
    reason: ClassVar[str] = "GuardrailTripped"
    severity: ClassVar[str] = "error"
    guard: ClassVar[str] = "batch"

    @property
    def message(self) -> str:
        which = f"incident {self.incident}" if self.incident else "the same incident"
        return (
            f"{len(self.keys)} HelmReleases are stuck in {which} (due now, acted "
            "on moments ago, or caught at Ready=Unknown by a helm-controller leader change), "
            f"more than max_batch={self.max_batch}: fluxwatch acts on none of them until at "
            f"most {self.max_batch} remain or a person approves the incident"
        )


@dataclass(frozen=True, slots=True)
class TripCleared:
    """The count fell to ``max_batch`` or below: recoveries resume."""

    count: int
    max_batch: int
    since: float
    at: float
    incident: str = ""
    approved_by: str = ""  # a person approved the incident: that, not the count, cleared it
    reason: ClassVar[str] = "GuardrailCleared"
    severity: ClassVar[str] = "info"

    @property
    def message(self) -> str:
        which = f" of incident {self.incident}" if self.incident else ""
        held = f"recoveries resume after {self.at - self.since:.0f}s on hold"
        if self.approved_by:
            return (
                f"incident {self.incident} approved by {self.approved_by}: its {self.count} "
                f"HelmReleases are recovered under the budget, roots first; {held}"
            )
        return f"{self.count} HelmReleases{which} stuck, at most max_batch={self.max_batch}: {held}"


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
    trips: tuple[tuple[str, float], ...] = ()  # (incident, tripped since)
    approvals: tuple[Approved, ...] = ()  # incidents a person approved, not closed yet
    used: tuple[str, ...] = ()  # approval tokens already taken, newest last
    # Open incidents (id, start, cause), so their ids outlive the leader (engine.incidents).
    incidents: tuple[tuple[str, float, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Approved:
    """A person's approval of one incident, as the API server named them."""

    incident: str
    by: str
    token: str
    at: float


class Approval(StrEnum):
    """What became of an approval (:meth:`Guardrail.approve`)."""

    APPLIED = "applied"  # the incident was refused: its releases are recovered now
    PENDING = "pending"  # the incident has not tripped: if it does, it is not refused
    USED = "used"  # this token, or another approval of the incident, was taken already
    UNKNOWN = "unknown"  # no such open incident: nothing taken, nothing changed


def dump_state(state: GuardrailState) -> str:
    """Compact JSON; keys as ``namespace/name`` (neither may contain a slash)."""
    return json.dumps(
        {
            "v": 1,
            "spent": state.spent,
            "recent": [[f"{ns}/{n}", at] for (ns, n), at in state.recent],
            "attempts": [[f"{ns}/{n}", k, at] for (ns, n), k, at in state.attempts],
            "exhausted": [f"{ns}/{n}" for ns, n in state.exhausted],
            "trips": [[i, at] for i, at in state.trips],
            "approvals": [[a.incident, a.by, a.token, a.at] for a in state.approvals],
            "used": state.used,
            "incidents": [[i, start, cause] for i, start, cause in state.incidents],
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

    def string(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad(f"expected a string, got {_short(value)}")
        return value

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
            trips=tuple((string(i), number(at)) for i, at in items("trips")),
            approvals=tuple(
                Approved(string(i), string(by), string(token), number(at))
                for i, by, token, at in items("approvals")
            ),
            used=tuple(string(token) for token in items("used")),
            incidents=tuple(
                (string(i), number(start), string(cause)) for i, start, cause in items("incidents")
            ),
        )
    except _Bad as exc:
        raise ValueError(f"not a guardrail state: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:  # JSON errors, unpacking, depth
        raise ValueError(f"not a guardrail state: {_short(exc)}") from None


def _one_incident(key: Key) -> str:
    return ""


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
        self._trips: dict[str, float] = {}  # incident -> tripped since
        self._approved: dict[str, Approved] = {}  # incident -> a person's approval
        self._used: dict[str, None] = {}  # approval tokens taken, oldest first
        self._recent: dict[Key, float] = {}  # acted on within batch_window, oldest first
        self._over_budget = False  # releases waited for the budget at the last admission

    @property
    def tripped(self) -> bool:
        """Some incident is refused right now."""
        return bool(self._trips)

    def tripped_incidents(self) -> dict[str, float]:
        """Incidents refused right now, and since when."""
        return dict(self._trips)

    def approved(self, incident: str) -> Approved | None:
        return self._approved.get(incident)

    def approve(self, incident: str, by: str, token: str, at: float, *, known: bool) -> Approval:
        """A person approved ``incident`` (``known``: it is open). Each token is taken
        once, each incident approved once; the batch guard then no longer refuses it, the
        budget, the attempts and the order still apply."""
        if token in self._used or incident in self._approved:
            return Approval.USED
        if not known and incident not in self._trips:
            return Approval.UNKNOWN
        self._used[token] = None
        while len(self._used) > _KEPT:
            del self._used[next(iter(self._used))]
        self._approved[incident] = Approved(incident, by, token, at)
        return Approval.APPLIED if incident in self._trips else Approval.PENDING

    def closed(self, incident: str) -> None:
        """The incident has no member left: its approval goes with it (a trip is cleared,
        and reported, by the next admission)."""
        self._approved.pop(incident, None)

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
            trips=tuple(self._trips.items()),
            approvals=tuple(self._approved.values()),
            used=tuple(self._used),
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
        self._trips = dict(state.trips)
        self._approved = {a.incident: a for a in state.approvals}
        self._used = dict.fromkeys(state.used)
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
        incident_of: Callable[[Key], str] | None = None,
        unsettled: Mapping[str, int] | None = None,
    ) -> Admission:
        """Decide which of the releases due at ``now`` may be acted on.

        ``due``: stuck releases waiting for an action, in the order to act (oldest
        incident first, roots first). ``busy``: releases being recovered right now;
        they count towards the batch. ``urgent``: interrupted suspends to resume (see
        the module docstring). ``suspects``: releases still Ready=Unknown that a
        helm-controller leader change caught mid-flight; they count towards the batch
        before they are due, so the incident is seen whole when its first release
        crosses the threshold.

        ``incident_of`` names each release's incident (engine.incidents); the batch is
        counted per incident, so an old backlog of unrelated releases is not one
        outage. Without it every release is in one incident, ``""``. ``unsettled``:
        per incident, how many more of its releases are at Ready=Unknown and not due
        yet. While the incident with them would be more than ``max_batch`` its due
        releases wait (settle) instead of acting: either those go Ready and it was a
        small incident after all, or they become due and the incident trips before any
        write. A lone stuck release never waits for this.

        Admitted keys are charged an attempt and the budget; urgent ones only their own
        resume count, which backs off.
        """
        s = self.settings
        self._expire(now)
        events: list[GuardEvent] = []
        group = incident_of if incident_of is not None else _one_incident
        candidates = self._usable(due, now, events)

        # Counted per incident: in flight (being recovered, acted on within the batch
        # window, caught by a leader change) and due. Out of attempts: no longer ours to
        # count (reported once as Exhausted).
        most = s.max_attempts
        attempts = self._attempts
        inflight: dict[str, dict[Key, None]] = {}
        for keys in (
            busy,
            (k for k in self._recent if attempts.get(k, _NEVER)[0] < most),
            (k for k in suspects if attempts.get(k, _NEVER)[0] < most),
        ):
            for key in keys:
                inflight.setdefault(group(key), {})[key] = None
        waiting: dict[str, list[Key]] = {}
        for key in candidates:
            waiting.setdefault(group(key), []).append(key)

        checks: list[float] = []  # when to admit again: the earliest of these
        refused: set[str] = set()
        held: dict[Key, str] = {}
        for incident in dict.fromkeys([*inflight, *waiting, *self._trips]):
            counted = inflight.get(incident, {})
            joined = (*counted, *(k for k in waiting.get(incident, ()) if k not in counted))
            count = len(joined)
            approval = self._approved.get(incident)
            since = self._trips.get(incident)
            if count > s.max_batch and approval is None:
                if since is None:
                    self._trips[incident] = now
                    events.append(Tripped(joined, s.max_batch, now, incident))
                refused.add(incident)
                if self._recent:
                    # The count falls when the oldest action leaves the window: ask again then.
                    checks.append(next(iter(self._recent.values())) + s.batch_window)
                continue
            if since is not None:
                by = approval.by if approval is not None else ""
                events.append(TripCleared(count, s.max_batch, since, now, incident, by))
                del self._trips[incident]
            more = (unsettled or {}).get(incident, 0)
            if approval is None and count + more > s.max_batch and incident in waiting:
                refused.add(incident)
                why = (
                    f"settling: {more} more release(s) of incident {incident} are at "
                    f"Ready=Unknown; {count + more} would be more than max_batch={s.max_batch}"
                )
                held.update(dict.fromkeys(waiting[incident], why))
        if refused:
            candidates = [k for k in candidates if group(k) not in refused]

        act: list[Key] = []
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
