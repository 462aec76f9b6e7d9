"""Printing: raw JSON (`--json`), headings, aligned fields and columns, status lines.

Data values go through click.echo untouched (rich would expand tabs and strip control
characters); rich only adds colour to headings, status words, errors and JSON on a terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.text import Text

out = Console(highlight=False, markup=False, emoji=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)

json_option: Callable[[Any], Any] = click.option(
    "--json", "as_json", is_flag=True, help="Print the raw API JSON instead of text.")


def print_json(data: Any) -> None:
    out.print_json(data=data, default=str)


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def heading(title: str) -> None:
    out.print(Text(f"=== {title}", style="bold"))


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """`Label: value` lines with the values aligned, as the Heroku CLI prints them."""
    pairs = list(pairs)
    width = max((len(label) for label, _ in pairs), default=0) + 1
    for label, value in pairs:
        click.echo(f"{label + ':':<{width}} {text(value)}".rstrip(" "))


def columns(rows: Sequence[Sequence[Any]]) -> None:
    """Left-aligned columns separated by two spaces, no borders (easy to grep and cut)."""
    cells = [[text(c) for c in row] for row in rows]
    widths = [max(len(c) for c in column) for column in zip(*cells, strict=True)]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def done(action: str, result: str = "done") -> None:
    out.print(Text.assemble(f"{action}... ", (result, "green")))


def warn(message: str) -> None:
    err.print(Text.assemble(("Warning: ", "yellow"), message))


def error(message: str) -> None:
    err.print(Text.assemble(("Error: ", "red"), message))
