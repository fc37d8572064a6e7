"""The clock and the deadline scheduler under looptime: exact instants without waiting.

Loop time 0 is wall time ``EPOCH``; a deadline at ``EPOCH + 10`` falls due when the
loop's clock reads 10.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from fluxwatch.engine.clock import Clock, Scheduler

pytestmark = pytest.mark.looptime

EPOCH = 1_780_000_000.0


class Due:
    """Records each batch the scheduler hands over: (loop time, keys, the instant)."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[str], float]] = []

    def __call__(self, keys: list[str], at: float) -> None:
        self.batches.append((asyncio.get_running_loop().time(), keys, at - EPOCH))


def scheduler(slack: float = 1e-3) -> tuple[Scheduler[str], Due]:
    due = Due()
    return Scheduler(Clock(epoch=EPOCH), due, slack=slack), due


async def test_the_clock_moves_with_the_loop_from_its_epoch() -> None:
    loop = asyncio.get_running_loop()
    clock = Clock(epoch=EPOCH)
    assert clock.now() == EPOCH
    fired: list[float] = []
    clock.call_at(EPOCH + 7, lambda: fired.append(loop.time()))
    await asyncio.sleep(3)
    assert clock.now() == EPOCH + 3
    await asyncio.sleep(10)
    assert fired == [7.0]


async def test_the_epoch_is_the_wall_time_at_the_moment_the_clock_is_made() -> None:
    await asyncio.sleep(5)
    clock = Clock(epoch=EPOCH)
    assert clock.now() == EPOCH
    await asyncio.sleep(2)
    assert clock.now() == EPOCH + 2


def test_a_clock_made_before_its_loop_runs_follows_that_loop() -> None:
    """The loop given is the one read, running or not yet."""

    async def later(clock: Clock) -> float:
        await asyncio.sleep(0.05)
        return clock.now()

    loop = asyncio.new_event_loop()
    try:
        clock = Clock(loop, epoch=EPOCH)
        assert EPOCH + 0.05 <= loop.run_until_complete(later(clock)) < EPOCH + 5
    finally:
        loop.close()


async def test_without_an_epoch_the_clock_starts_at_the_wall_clock() -> None:
    before = time.time()
    for clock in (Clock(), Clock(asyncio.get_running_loop())):
        assert before <= clock.now() <= time.time()


async def test_deadlines_fire_in_their_instant_in_deadline_order() -> None:
    s, due = scheduler()
    s.schedule("b", EPOCH + 20)
    s.schedule("a", EPOCH + 10)
    assert ("a" in s, "z" in s, len(s), sorted(s)) == (True, False, 2, ["a", "b"])
    assert s.deadline("a") == EPOCH + 10
    await asyncio.sleep(30)
    assert due.batches == [(10.0, ["a"], 10.0), (20.0, ["b"], 20.0)]
    assert len(s) == 0 and s.deadline("a") is None


async def test_a_moved_deadline_fires_once_at_its_new_instant() -> None:
    s, due = scheduler()
    s.schedule("a", EPOCH + 10)
    s.schedule("a", EPOCH + 5)  # earlier: the timer moves
    s.schedule("a", EPOCH + 15)  # later: the old entry is stale
    await asyncio.sleep(30)
    assert due.batches == [(15.0, ["a"], 15.0)]


async def test_a_cancelled_deadline_never_fires() -> None:
    s, due = scheduler()
    s.schedule("a", EPOCH + 10)
    s.schedule("b", EPOCH + 20)
    s.cancel("a")
    s.cancel("never-scheduled")
    assert "a" not in s
    await asyncio.sleep(30)
    assert due.batches == [(20.0, ["b"], 20.0)]


async def test_deadlines_within_the_slack_leave_together_at_the_latest() -> None:
    """A timer may run up to a clock tick early; deadlines up to ``slack`` after it go in
    the same batch, and the batch stands for the latest of them."""
    s, due = scheduler(slack=0.5)
    s.schedule("a", EPOCH + 10)
    s.schedule("b", EPOCH + 10.5)  # exactly the slack later: same batch
    s.schedule("c", EPOCH + 10.75)  # beyond it: a batch of its own
    await asyncio.sleep(30)
    assert due.batches == [(10.0, ["a", "b"], 10.5), (10.75, ["c"], 10.75)]


async def test_a_deadline_in_the_past_fires_at_once() -> None:
    s, due = scheduler()
    await asyncio.sleep(10)
    s.schedule("late", EPOCH + 4)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert due.batches == [(10.0, ["late"], 10.0)]


async def test_close_drops_everything_and_the_scheduler_can_be_used_again() -> None:
    s, due = scheduler()
    s.schedule("a", EPOCH + 10)
    s.close()
    assert len(s) == 0
    await asyncio.sleep(20)
    assert due.batches == []
    s.schedule("b", EPOCH + 25)
    await asyncio.sleep(10)
    assert due.batches == [(25.0, ["b"], 25.0)]


async def test_moving_deadlines_again_and_again_keeps_the_heap_bounded() -> None:
    """Every move leaves a stale heap entry; the heap is rebuilt before it holds more than
    two entries per live deadline plus 64, so 10,000 releases re-scheduled by every watch
    event do not grow it without bound. The deadlines come through the rebuild intact."""
    s, due = scheduler()
    keys = [f"hr-{i}" for i in range(10)]
    largest = 0
    for step in range(1, 201):
        for i, key in enumerate(keys):
            s.schedule(key, EPOCH + 1000 + 100 * i + step / 8)
            largest = max(largest, len(s._heap))
    assert largest == 2 * len(keys) + 64
    await asyncio.sleep(2000)
    assert [(keys, at) for _t, keys, at in due.batches] == [
        ([key], 1000 + 100 * i + 25) for i, key in enumerate(keys)
    ]
