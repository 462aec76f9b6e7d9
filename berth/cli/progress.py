"""Streamed output (build output, release output) with a progress line per stage on a terminal.

A stage starts at a buildpack step line (`-----> Installing requirements`), as Heroku's build output
marks them. On a terminal each stage gets a line of its own under the output, with a spinner while it
runs, its time, and a mark when it ended; output lines scroll above. Anywhere else (a pipe, a file, CI)
the lines are printed as they came and nothing else: scripts and logs stay plain.
"""
from __future__ import annotations

from types import TracebackType

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

STAGE_PREFIX = "-----> "
DONE_MARK, FAILED_MARK = "✓ ", "✗ "


def stage_name(line: str) -> str | None:
    """The stage a line starts, if it is a step line."""
    return line[len(STAGE_PREFIX):].strip() or None if line.startswith(STAGE_PREFIX) else None


class PlainLines:
    """Each line as it came, nothing added (click drops colour codes off a terminal): for pipes and files."""

    def __enter__(self) -> PlainLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def line(self, text: str) -> None:
        click.echo(text)

    def finish(self, failed: bool) -> None:
        return None


class StageLines:
    """On a terminal: the output above, one progress line per stage below it."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(SpinnerColumn(finished_text=""), TextColumn("{task.fields[mark]}{task.description}"),
                                 TimeElapsedColumn(), console=console, transient=False)
        self.current: TaskID | None = None
        self.finished = False

    def __enter__(self) -> StageLines:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.finished:  # interrupted, or the stream broke: the stage did not end well
            self._end_current(FAILED_MARK if exc_type is not None else "")
        self.progress.stop()

    def line(self, text: str) -> None:
        stage = stage_name(text)
        if stage is not None:
            self._end_current(DONE_MARK)
            self.current = self.progress.add_task(stage, total=None, mark="", start=True)
        # from_ansi keeps a build tool's colours and drops other escape sequences (cursor moves,
        # window titles) that output written by an app's code could otherwise play on the terminal.
        self.progress.console.print(Text.from_ansi(text), soft_wrap=True)

    def finish(self, failed: bool) -> None:
        self._end_current(FAILED_MARK if failed else DONE_MARK)
        self.finished = True

    def _end_current(self, mark: str) -> None:
        if self.current is None:
            return
        self.progress.update(self.current, mark=mark, total=1, completed=1)
        self.progress.stop_task(self.current)
        self.current = None


def stage_lines(console: Console) -> PlainLines | StageLines:
    return StageLines(console) if console.is_terminal else PlainLines()
