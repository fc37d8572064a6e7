"""Incidents: the stuck releases one cause left behind, counted and approved as one.

An API blip that makes helm-controller lose its Lease mid-install leaves every
release it was working on at ``Ready=Unknown``, their ``lastTransitionTime`` a
few seconds or minutes apart. Counting releases "due now" sees such an
incident in slices (eleven releases crossing the threshold a second apart pass
as ten and one) and sees an old backlog of unrelated releases as one outage.
So releases are grouped by what they share:

- time: a release whose Ready went Unknown at ``t`` joins the incident whose
  window ``[start, start + window]`` holds ``t`` (both ends included); one
  whose members all lie within ``window`` after ``t`` takes it as its new start
  (a list delivers members in name order, not time order); else it opens a new
  one starting at ``t``. Anchored at the first member rather than chained member to
  member: a trickle of one stuck release every few minutes does not grow one
  endless incident;
- cause: the releases a helm-controller leader change caught at Ready=Unknown
  are one incident whatever their times (:meth:`Incidents.merge`).

Members are the releases of an incident still at Ready=Unknown (progressing
or stuck), being recovered, or failed inside its window (its casualties); a
release leaves when it is none of these, and an incident with no member left
is closed. The id names the UTC second of its start (``inc-20260127t184512``),
so every replica that saw the same releases names it alike, and the leader
hands its table over on its Lease with the guardrail's state (:meth:`restore`).

Pure: no clock, no I/O; times are epoch seconds passed in.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["ID_PATTERN", "Incident", "Incidents", "incident_id"]

Key = tuple[str, str]

# What an incident id looks like (``fluxwatch approve`` checks its argument against it).
ID_PATTERN = r"^inc-[0-9]{8}t[0-9]{6}(-[0-9]+)?$"


def incident_id(start: float) -> str:
    """The id of an incident that starts at ``start``: its UTC second, lowercase."""
    return "inc-" + datetime.fromtimestamp(start, UTC).strftime("%Y%m%dt%H%M%S")


@dataclass(slots=True, eq=False)
class Incident:
    """One incident: its start, its members and, when a leader change made it, why."""

    id: str
    start: float
    # Member -> the instant that put it here (its Ready transition time).
    members: dict[Key, float] = field(default_factory=dict)
    cause: str = ""  # a helm-controller leader change, when one merged it

    def __repr__(self) -> str:
        return f"Incident({self.id}, {len(self.members)} members)"

    def holds(self, at: float, window: float) -> bool:
        return self.start <= at <= self.start + window


class Incidents:
    """Which incident each release belongs to; see the module docstring."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._by_id: dict[str, Incident] = {}
        self._starts: list[tuple[float, str]] = []  # sorted: the incident holding an instant
        self._of: dict[Key, Incident] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Incident]:
        """Open incidents, oldest first."""
        return iter([self._by_id[i] for _, i in self._starts])

    def get(self, incident: str) -> Incident | None:
        return self._by_id.get(incident)

    def of(self, key: Key) -> Incident | None:
        """The incident ``key`` is a member of, if any."""
        return self._of.get(key)

    def holding(self, at: float) -> Incident | None:
        """The incident whose window holds the instant ``at``, if any: the latest that
        starts at or before it (an earlier one ends earlier still)."""
        starts = self._starts
        i = bisect.bisect_right(starts, (at, "\uffff")) - 1
        if i < 0:
            return None
        found = self._by_id[starts[i][1]]
        return found if found.holds(at, self.window) else None

    def _nearest(self, at: float) -> Incident | None:
        """The incident ``at`` belongs to: the one holding it, else one starting at most
        ``window`` after it (a member seen late, from before the first one seen)."""
        found = self.holding(at)
        if found is not None:
            return found
        starts = self._starts
        i = bisect.bisect_right(starts, (at, "\uffff"))
        if i < len(starts) and starts[i][0] - at <= self.window:
            later = self._by_id[starts[i][1]]
            # Its members must still lie within one window of the new start.
            if max(later.members.values(), default=later.start) - at <= self.window:
                # It starts earlier now; its id, already announced maybe, stays.
                starts[i] = (at, later.id)
                later.start = at
                return later
        return None

    def join(self, key: Key, at: float) -> Incident:
        """``key`` is at Ready=Unknown (or failed) since ``at``: its incident, opened if
        need be. A member stays where it is unless ``at`` moved (a new episode)."""
        current = self._of.get(key)
        if current is not None:
            if current.members[key] == at:
                return current
            self.leave(key)
        incident = self._nearest(at) or self._open(at)
        incident.members[key] = at
        self._of[key] = incident
        return incident

    def enlist(self, key: Key, at: float) -> Incident | None:
        """``key`` failed at ``at``: a casualty of the incident whose window holds that
        instant, if one does (no incident is opened or moved for a failure)."""
        incident = self.holding(at)
        current = self._of.get(key)
        if current is not None and current is not incident:
            self.leave(key)  # a member of this incident stays: leaving could close it
        if incident is None:
            return None
        incident.members[key] = at
        self._of[key] = incident
        return incident

    def leave(self, key: Key) -> Incident | None:
        """``key`` is no longer a member; returns its incident if that closed with it."""
        incident = self._of.pop(key, None)
        if incident is None:
            return None
        del incident.members[key]
        if incident.members:
            return None
        self._close(incident)
        return incident

    def merge(self, keys: Iterable[Key], cause: str) -> Incident | None:
        """One leader change caught these releases: their incidents become one, the
        oldest of them, which keeps its id and takes ``cause``. Keys that are no member
        of any incident are left out (the caller joins them first)."""
        found = {id(i): i for key in keys if (i := self._of.get(key)) is not None}
        if not found:
            return None
        target, *others = sorted(found.values(), key=lambda i: (i.start, i.id))
        for other in others:
            for key, at in other.members.items():
                target.members[key] = at
                self._of[key] = target
            other.members.clear()
            self._close(other)
        target.cause = cause
        return target

    def restore(self, incidents: Iterable[tuple[str, float, str]]) -> None:
        """Open these incidents ``(id, start, cause)`` as a previous leader had them, so
        ids stay the same across leaders; current members move into the one holding
        their instant (or stay where they are when none does)."""
        members = [(key, at) for key, at in ((k, i.members[k]) for k, i in self._of.items())]
        self._by_id.clear()
        self._starts.clear()
        self._of.clear()
        for ident, start, cause in incidents:
            if ident not in self._by_id:
                self._add(Incident(ident, start, cause=cause))
        for key, at in sorted(members, key=lambda item: item[1]):
            self.join(key, at)
        for incident in [i for i in self._by_id.values() if not i.members]:
            self._close(incident)

    def table(self) -> tuple[tuple[str, float, str], ...]:
        """What :meth:`restore` takes: every open incident, oldest first."""
        return tuple((i.id, i.start, i.cause) for i in self)

    # -- inside ------------------------------------------------------------------------------

    def _open(self, start: float) -> Incident:
        ident = incident_id(start)
        n = 1
        while ident in self._by_id:  # two starts in one second (a restored table, a merge)
            n += 1
            ident = f"{incident_id(start)}-{n}"
        incident = Incident(ident, start)
        self._add(incident)
        return incident

    def _add(self, incident: Incident) -> None:
        self._by_id[incident.id] = incident
        bisect.insort(self._starts, (incident.start, incident.id))

    def _close(self, incident: Incident) -> None:
        del self._by_id[incident.id]
        self._starts.remove((incident.start, incident.id))
