"""The errors of the notify room, one tree so callers catch what they mean.

::

    NotifyError
    ├── NotifyConfigError     a provider or alert cannot work as configured
    ├── DeliveryError         an event did not reach its receiver
    ├── NotifyTaskDied        a worker or the secret refresher ended: the daemon stops
    └── NotDelivered          the receiver was not meant to get it (not a failure)
        ├── Deduplicated      the receiver already had it (notification-controller's 429)
        └── Skipped           the provider has nothing to say for this event

Messages never hold a secret: whoever raises one scrubs it first (see
``redact.Redactor``), and third-party errors are translated, not chained, so a
traceback cannot carry a URL with a token either.
"""

from __future__ import annotations


class NotifyError(Exception):
    """Base of every error raised by ``fluxwatch.notify``."""


class NotifyConfigError(NotifyError):
    """A provider or alert cannot work as configured; the message names the field."""


class DeliveryError(NotifyError):
    """An event did not reach its receiver.

    ``retryable`` says whether the same request may succeed later (connection
    errors, 5xx, 429); ``retry_after`` is the receiver's own hint in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        if self.attempts > 1:
            return f"{self.message} (after {self.attempts} attempts)"
        return self.message


class NotifyTaskDied(NotifyError):
    """A router worker or the secret refresher ended; ``Router.supervise`` raises it."""


class NotDelivered(NotifyError):
    """The provider chose not to deliver; counted under its own result, never as a failure."""

    result = "skipped"


class Deduplicated(NotDelivered):
    """The receiver said it already had this event (notification-controller answers 429)."""

    result = "deduplicated"


class Skipped(NotDelivered):
    """The provider has nothing to send for this event (e.g. PagerDuty and a plain info event)."""

    result = "skipped"
