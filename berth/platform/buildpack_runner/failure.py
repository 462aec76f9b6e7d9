"""The reason a buildpack failed, for the build's API record (`failure_message`).

The output says it all, but a client that only reads the build (the dashboard, `heroku builds`,
an API script) needs the cause in one line. Buildpacks state it, Heroku's way, as ` !     ` lines
(continued by indented ones); the first such block is the cause, the later ones are consequences
("Push rejected, failed to compile ..."); ` !     Warning:` lines are not causes. A tool's own `ERROR` line just before it (pip's, npm's)
is kept with it, because "see the error above" means nothing without the output.
"""
from __future__ import annotations

from typing import Callable

ERROR_MARK = " !     "
CONTINUATION = "       "
TOOL_ERRORS = ("ERROR", "error:", "npm ERR!", "npm error")
MAX_CHARS = 1000


class FailureSummary:
    """Passes each output line on, remembering the first error block and the line before it."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.block: list[str] = []
        self.tool_error: str | None = None
        self._previous = ""
        self._in_block = False

    def __call__(self, line: str) -> None:
        self.on_line(line)
        text = line.rstrip()
        if text.startswith(ERROR_MARK) and not self.block and not _is_warning(text):
            self.block, self._in_block = [text[len(ERROR_MARK):].strip()], True
            previous = self._previous.strip()
            if previous.startswith(TOOL_ERRORS):
                self.tool_error = previous
        elif self._in_block and text.startswith(CONTINUATION) and text.strip():
            self.block.append(text.strip())
        else:
            self._in_block = False
        if text.strip():
            self._previous = text

    def summary(self) -> str | None:
        """One line: the first error block (and the tool's error it refers to), or None."""
        if not self.block:
            return None
        text = " ".join(self.block)
        if self.tool_error:
            text = f"{text} ({self.tool_error})"
        return text[:MAX_CHARS]


def _is_warning(text: str) -> bool:
    return text[len(ERROR_MARK):].lstrip().lower().startswith("warning")
