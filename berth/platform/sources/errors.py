"""What a build prints when its source cannot be had: one exception with a user-safe message."""
from __future__ import annotations


class SourceError(Exception):
    """The source could not be fetched, verified or unpacked. The message says why and what to do
    next, names no secret and no server path, and is safe to print in a build's output."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
