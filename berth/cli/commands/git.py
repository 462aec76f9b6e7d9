"""git:remote: point a git remote of the current repository at an app's repository on Berth."""

from __future__ import annotations

import subprocess

import click

from berth.cli import appname, output
from berth.cli.appname import GIT_REMOTE, app_option
from berth.cli.client import seg
from berth.cli.errors import CliError
from berth.cli.session import connect


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise CliError("git is not installed: install it, then run this again.") from None


@click.command("git:remote")
@app_option
@click.option("-r", "--remote", default=GIT_REMOTE, show_default=True, help="Name of the git remote.")
def remote(app: str | None, remote: str) -> None:
    """Add (or re-point) a git remote for an app: `git push REMOTE main` then deploys it."""
    if _git("rev-parse", "--git-dir").returncode != 0:
        raise CliError("not inside a git repository: run `git init` first, or cd into your project.")
    data = connect().get(f"/apps/{seg(appname.resolve(app))}")
    url = str(data["git_url"])
    exists = _git("remote", "get-url", remote).returncode == 0
    done = _git("remote", "set-url" if exists else "add", remote, url)
    if done.returncode != 0:
        raise CliError(f"git could not {'update' if exists else 'add'} remote {remote}: {done.stderr.strip()}")
    output.done(f"set git remote {remote} to {url}")
    click.echo(f"Push with: git push {remote} main (git must trust Berth's CA: "
               f"git config http.sslCAInfo <file from GET /ca.pem>)")


COMMANDS = [remote]
