"""Streamed output: on a terminal one progress line per build stage (and no terminal escapes from the
stream played); anywhere else the plain lines and nothing more."""

from __future__ import annotations

import io
import re

import click
import pytest
from rich.console import Console

from berth.cli.progress import PlainLines, StageLines, stage_lines, stage_name

OUTPUT = ["-----> Python app detected", "hello \x1b[2Jclear\x1b]0;title\x07 \x1b[32mgreen\x1b[0m\tend",
          "-----> Installing requirements with pip", "Successfully installed flask"]
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=100, color_system="standard"), screen


def test_stage_lines_start_at_step_lines() -> None:
    assert stage_name("-----> Installing requirements with pip") == "Installing requirements with pip"
    assert stage_name("       Collecting flask") is None
    assert stage_name("-----> ") is None


def test_on_a_terminal_each_stage_gets_a_progress_line_with_its_outcome() -> None:
    console, screen = terminal()
    with stage_lines(console) as shown:
        assert isinstance(shown, StageLines)
        for line in OUTPUT:
            shown.line(line)
        shown.finish(failed=True)
    text = screen.getvalue()
    assert "\x1b[2J" not in text and "\x1b]0;" not in text  # the stream's own escapes are not played
    final = CONTROL.sub("", text.rsplit("\r", 1)[-1])
    lines = [line.strip() for line in final.splitlines()[-2:]]
    assert re.fullmatch(r"✓ Python app detected\s+\d:\d\d:\d\d", lines[0]), final
    assert re.fullmatch(r"✗ Installing requirements with pip\s+\d:\d\d:\d\d", lines[1]), final
    assert "Successfully installed flask" in text


def test_a_stream_that_breaks_marks_the_running_stage_failed() -> None:
    console, screen = terminal()
    with pytest.raises(RuntimeError), stage_lines(console) as shown:
        shown.line("-----> Compiling")
        raise RuntimeError("the stream broke")
    assert "✗ Compiling" in CONTROL.sub("", screen.getvalue())


def test_elsewhere_the_lines_are_printed_as_they_came(capsys: pytest.CaptureFixture[str]) -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with stage_lines(console) as shown:
        assert isinstance(shown, PlainLines)
        for line in OUTPUT:
            shown.line(line)
        shown.finish(failed=False)
    # click.echo drops colour codes off a terminal; nothing else is changed or added.
    assert capsys.readouterr().out == "".join(f"{click.unstyle(line)}\n" for line in OUTPUT)
