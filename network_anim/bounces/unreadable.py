"""The one error of the report readers: this input is not a report we can read."""

from __future__ import annotations


class UnreadableReport(ValueError):
    """Malformed or unrecognised input (truncated MIME, no recipient, not a report at all).

    Callers log ``reason`` and skip the input (the mailbox moves it to its unreadable
    folder for a person to look at); it never stops a batch.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


__all__ = ["UnreadableReport"]
