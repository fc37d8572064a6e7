"""The pieces both sides of a benchmark feed: a tracker as the daemon builds it, and a counter.

The tracker is the real :class:`~fluxwatch.engine.tracker.Tracker` with the
default engine settings; it is built inactive (a follower) so that nothing it
judges due is acted on: the benchmarks that measure reading must not measure
recoveries.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fluxwatch.engine.clock import Clock
from fluxwatch.engine.tracker import Tracker
from fluxwatch.kube.helmrelease import HRView
from fluxwatch.settings import Settings, engine_settings


def make_tracker() -> Tracker:
    settings = Settings.model_validate({"leader": {"enabled": False}})
    return Tracker(engine_settings(settings), Clock(), _never_due, active=False)


def _never_due(view: HRView, verdict: Any) -> None:
    raise AssertionError("an inactive tracker acts on nothing")


def _ignore(etype: str, view: HRView, old: HRView | None) -> None:
    pass


class Counting:
    """A handler ``(type, view, old)`` that feeds the tracker (when given one) and resolves
    ``done`` at the ``target``-th call, with the ``perf_counter`` time of that call."""

    __slots__ = ("_handle", "done", "first", "n", "target")

    def __init__(self, tracker: Tracker | None) -> None:
        self._handle = tracker.handle if tracker is not None else _ignore
        self.n = 0
        self.target = 0
        self.first = 0.0
        self.done: asyncio.Future[float] | None = None

    def arm(self, target: int) -> asyncio.Future[float]:
        self.n = 0
        self.target = target
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def __call__(self, etype: str, view: HRView, old: HRView | None) -> None:
        self._handle(etype, view, old)
        self.n += 1
        if self.n == 1:
            self.first = time.perf_counter()
        if self.n == self.target and self.done is not None and not self.done.done():
            self.done.set_result(time.perf_counter())
