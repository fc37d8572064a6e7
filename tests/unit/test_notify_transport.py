"""The retry policy: which failures retry, how long the waits are, when it gives up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.transport import RetryPolicy, parse_retry_after, retrying


def test_waits_double_from_two_seconds_and_stop_at_thirty() -> None:
    """FLUX-FACTS §6: retries up to 4 with waits of 2 s to 30 s."""
    policy = RetryPolicy()
    assert [policy.wait(n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    assert policy.max_retries == 4


def test_retry_after_stretches_the_wait_up_to_the_cap() -> None:
    policy = RetryPolicy()
    assert policy.wait(1, retry_after=10) == 10
    assert policy.wait(3, retry_after=1) == 8
    assert policy.wait(1, retry_after=600) == 30


def test_parse_retry_after() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = format_datetime(now + timedelta(seconds=20), usegmt=True)
    assert parse_retry_after(date, now=now.timestamp()) == pytest.approx(20)
    assert parse_retry_after(format_datetime(now, usegmt=True), now=now.timestamp() + 5) == 0


class Flaky:
    def __init__(self, *failures: DeliveryError) -> None:
        self.failures = list(failures)
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(asyncio.get_running_loop().time())
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def retryable(status: int = 503, retry_after: float | None = None) -> DeliveryError:
    return DeliveryError(
        f"answered {status}", status=status, retryable=True, retry_after=retry_after
    )


@pytest.mark.looptime
async def test_retries_until_success_with_backoff(looptime: float) -> None:
    attempt = Flaky(retryable(), retryable(), retryable(429, retry_after=12))
    start = float(looptime)
    assert await retrying(attempt, RetryPolicy(), what="t") == "ok"
    assert [round(t - start, 3) for t in attempt.calls] == [0, 2, 6, 18]


@pytest.mark.looptime
async def test_gives_up_after_four_retries(looptime: float) -> None:
    attempt = Flaky(*(retryable() for _ in range(10)))
    start = float(looptime)
    with pytest.raises(DeliveryError) as info:
        await retrying(attempt, RetryPolicy(), what="t")
    assert len(attempt.calls) == 5
    assert info.value.attempts == 5
    assert str(info.value) == "answered 503 (after 5 attempts)"
    assert looptime - start == 2 + 4 + 8 + 16


@pytest.mark.looptime
async def test_permanent_failures_are_not_retried(looptime: float) -> None:
    attempt = Flaky(DeliveryError("answered 404", status=404))
    start = float(looptime)
    with pytest.raises(DeliveryError, match="answered 404"):
        await retrying(attempt, RetryPolicy(), what="t")
    assert len(attempt.calls) == 1
    assert looptime == start
