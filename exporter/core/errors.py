"""The one exception a source raises when a refresh fails, with a bounded reason."""

from __future__ import annotations

from exporter.vocab import Reason

__all__ = ["Reason", "SourceError", "SourceUnavailableError"]


class SourceError(Exception):
    """A failed refresh. `reason` becomes the `reason` label of source_errors_total; the message
    goes to the log only (never to a label). `retry_after` (seconds) asks the scheduler to wait
    at least that long before the next attempt, e.g. from an HTTP 429 Retry-After header."""

    def __init__(self, reason: Reason, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
        self.retry_after = retry_after


class SourceUnavailableError(SourceError):
    """The tenant cannot serve this source at all (an older Teleport without the resource, or a
    role without the rule): not a failure to count every interval. The scheduler marks the
    source down, logs the message once, counts no error and checks again after `retry_after`."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__("other", message, retry_after)
