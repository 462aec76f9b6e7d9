"""`berth` entry point: the click group, error reporting and Ctrl-C handling."""

from __future__ import annotations

import os
import signal
from typing import Any, NoReturn

import click

from berth.cli import output
from berth.cli.commands import (addon_actions, addons, addons_change, apps, auth, buildpacks, builds, config, domains,
                                 git, logs, ps, releases, run)
from berth.cli.errors import CliError


class Failure(click.ClickException):
    """Shown as one `Error: ...` line on stderr, exit 1."""

    def show(self, file: Any = None) -> None:
        output.error(self.format_message())


def _interrupted(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(130)  # quiet: click would print "Aborted!" and exit 1


class BerthGroup(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        signal.signal(signal.SIGINT, _interrupted)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            raise Failure(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click reports these itself
        except Exception as exc:  # e.g. a server answer missing a field: still one line
            if os.environ.get("BERTH_DEBUG"):
                raise
            raise Failure(f"unexpected {type(exc).__name__}: {exc} "
                          "(set BERTH_DEBUG=1 for a traceback)") from None


@click.group(cls=BerthGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Berth: deploy and manage apps on a Berth server (Heroku-style)."""


for module in (auth, apps, config, domains, releases, builds, buildpacks, addons, addons_change, addon_actions, logs,
               git, ps, run):
    for command in module.COMMANDS:
        cli.add_command(command)
