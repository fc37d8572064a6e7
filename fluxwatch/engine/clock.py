"""Wall-clock deadlines served by the event loop: one clock, one heap, one timer.

Stuck deadlines are wall-clock instants (``Ready.lastTransitionTime`` from the
API server plus the threshold), but asyncio schedules on ``loop.time()``, a
monotonic clock with an arbitrary origin. :class:`Clock` joins the two with
one offset captured when it is made: ``now() = loop.time() + offset``. So
``now()`` advances exactly as the loop does, including under looptime's fake
time in tests, where ``assert loop.time() == 200`` proves that an action fired
in the very tick its threshold passed. The price: a wall clock stepped after
start (NTP) is not followed; the error is the size of the step, small next
to a threshold of minutes, and in exchange a deadline never fires twice or
runs backwards.

:class:`Scheduler` keeps every deadline in one heap with lazy deletion and
arms a single loop timer for the earliest. Rather than one ``loop.call_at``
per key:

- deadlines that fall due in the same instant leave together, as one batch,
  so the guardrail counts them all before anything acts (the seed's CronJob
  acted on ten before it counted the eleventh);
- the loop's own heap holds one handle instead of 10,000; re-scheduling to
  the same time (most watch events) costs a dict lookup, a moved deadline
  one tuple on the heap, a cancel one dict deletion.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["Clock", "Scheduler"]

K = TypeVar("K", bound=Hashable)


class Clock:
    """Epoch seconds (UTC) that move with the event loop's clock."""

    __slots__ = ("_loop", "_offset")

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, *, epoch: float | None = None
    ) -> None:
        """Bind to ``loop`` (default: the running loop); ``epoch`` is the wall time at this moment.

        Tests pass a round ``epoch`` so that deadlines map to round loop times, and make
        the clock inside the test body: looptime fakes the loop's clock only while the
        test runs, so a clock made in an async fixture anchors on the real one.
        """
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        start = time.time() if epoch is None else epoch
        self._offset = start - self._loop.time()

    def now(self) -> float:
        return self._loop.time() + self._offset

    def call_at(self, when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        """Run ``callback`` when the wall-clock instant ``when`` arrives (at once if past)."""
        return self._loop.call_at(when - self._offset, callback)


class Scheduler(Generic[K]):
    """One deadline per key; due keys are handed to ``on_due(keys, at)`` in batches.

    ``at`` is the instant the batch stands for: the latest deadline in it, or
    now if later. asyncio runs a timer up to one clock resolution early, so
    the callback should judge the keys at ``at``, not at ``clock.now()``.
    Keys fall due in deadline order within a batch. The callback may
    schedule and cancel freely.
    """

    __slots__ = ("_armed", "_clock", "_deadlines", "_handle", "_heap", "_on_due", "_seq", "_slack")

    def __init__(
        self,
        clock: Clock,
        on_due: Callable[[list[K], float], None],
        *,
        slack: float = 1e-3,
    ) -> None:
        self._clock = clock
        self._on_due = on_due
        self._slack = slack
        self._deadlines: dict[K, float] = {}
        # (when, seq, key); an entry is live while _deadlines[key] == when. The sequence
        # number keeps keys out of comparisons and equal deadlines in scheduling order.
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed: float | None = None

    def schedule(self, key: K, when: float) -> None:
        """Set (or move) the deadline of ``key`` to the epoch instant ``when``."""
        if self._deadlines.get(key) == when:
            return
        self._deadlines[key] = when
        heap = self._heap
        heapq.heappush(heap, (when, next(self._seq), key))
        if len(heap) > 2 * len(self._deadlines) + 64:
            self._compact()
        armed = self._armed
        # A timer armed in the past fires on the next turn of the loop anyway.
        if armed is None or (when < armed and armed > self._clock.now()):
            self._arm()

    def cancel(self, key: K) -> None:
        # The heap entry stays until it surfaces or a compaction drops it; if it was the
        # earliest, the timer wakes once for nothing and re-arms.
        self._deadlines.pop(key, None)

    def deadline(self, key: K) -> float | None:
        return self._deadlines.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._deadlines

    def __len__(self) -> int:
        return len(self._deadlines)

    def __iter__(self) -> Iterator[K]:
        return iter(self._deadlines)

    def close(self) -> None:
        """Drop every deadline and the timer."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._armed = None
        self._deadlines.clear()
        self._heap.clear()

    def _compact(self) -> None:
        seq = self._seq
        self._heap = [(when, next(seq), key) for key, when in self._deadlines.items()]
        heapq.heapify(self._heap)

    def _arm(self) -> None:
        heap, deadlines = self._heap, self._deadlines
        while heap and deadlines.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self._armed = None
            return
        when = heap[0][0]
        if self._handle is not None:
            if self._armed == when:
                return
            self._handle.cancel()
        self._handle = self._clock.call_at(when, self._fire)
        self._armed = when

    def _fire(self) -> None:
        self._handle = self._armed = None
        at = self._clock.now()
        limit = at + self._slack
        heap, deadlines = self._heap, self._deadlines
        due: list[K] = []
        while heap and heap[0][0] <= limit:
            when, _, key = heapq.heappop(heap)
            if deadlines.get(key) == when:
                del deadlines[key]
                due.append(key)
                at = max(at, when)
        self._arm()
        if due:
            self._on_due(due, at)
