"""One event per key per interval, as notification-controller's ``--rate-limit-interval``.

Time is a monotonic clock injected by the caller (the event loop's
``loop.time()``), never the wall clock, so tests move it with looptime and a
system clock step cannot reopen or extend the window.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class Deduplicator:
    """Admits a key once per ``interval`` seconds; 0 admits everything."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._clock = clock
        # Insertion order is expiry order, because every entry lives ``interval``.
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def admit(self, key: str) -> bool:
        if self.interval <= 0:
            return True
        now = self._clock()
        while self._until:
            first_key, until = next(iter(self._until.items()))
            if until > now:
                break
            del self._until[first_key]
        if key in self._until:
            return False
        self._until[key] = now + self.interval
        return True
