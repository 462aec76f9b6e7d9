"""releases, releases:info, releases:rollback."""

from __future__ import annotations

from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, seg
from berth.cli.errors import CliError
from berth.cli.output import json_option
from berth.cli.session import connect
from berth.cli.streams import follow_output

# The Heroku CLI's wording for releases that did not (yet) succeed.
_STATUS_NOTE = {"pending": "release command executing", "failed": "release command failed",
                "expired": "release expired"}


def _description(release: dict[str, Any]) -> str:
    description = output.text(release.get("description"))
    note = _STATUS_NOTE.get(str(release.get("status")))
    return f"{description} ({note})" if note else description


def _email(release: dict[str, Any]) -> str:
    return output.text((release.get("user") or {}).get("email"))


@click.command("releases")
@click.option("-n", "--num", type=click.IntRange(1, 1000), default=15, show_default=True,
              help="Number of releases to show.")
@app_option
@json_option
def list_releases(num: int, app: str | None, as_json: bool) -> None:
    """List an app's releases, newest first."""
    name = appname.resolve(app)
    releases: list[dict[str, Any]] = connect().get(
        f"/apps/{seg(name)}/releases", headers={"Range": f"version ..; max={num}, order=desc"}) or []
    if as_json:
        output.print_json(releases)
        return
    if not releases:
        click.echo(f"{name} has no releases.")
        return
    current = next((r for r in releases if r.get("current")), None)
    output.heading(f"{name} Releases" + (f" - Current: v{current['version']}" if current else ""))
    output.columns([[f"v{r.get('version')}", _description(r), _email(r), r.get("created_at"),
                     "(current)" if r.get("current") else ""] for r in releases])


@click.command("releases:info")
@click.argument("version", required=False)
@app_option
@json_option
def info(version: str | None, app: str | None, as_json: bool) -> None:
    """Show one release (default: the newest)."""
    name = appname.resolve(app)
    client = connect()
    if version:
        release = client.get(f"/apps/{seg(name)}/releases/{seg(version.removeprefix('v'))}")
    else:
        release = client.newest_release(name)
        if not release:
            raise CliError(f"{name} has no releases.")
    if as_json:
        output.print_json(release)
        return
    output.heading(f"Release v{release.get('version')}")
    output.fields([
        ("By", _email(release)),
        ("Change", _description(release)),
        ("Current", release.get("current")),
        ("Status", release.get("status")),
        ("When", release.get("created_at")),
    ])


def _rollback_target(client: ApiClient, name: str, version: str | None) -> dict[str, Any]:
    """The release named, else the one before the current: the second marked eligible, as Heroku picks it."""
    if version:
        return client.get(f"/apps/{seg(name)}/releases/{seg(version.removeprefix('v'))}")
    recent = client.get(f"/apps/{seg(name)}/releases", headers={"Range": "version ..; max=200, order=desc"}) or []
    eligible = [r for r in recent if r.get("eligible_for_rollback")]
    if len(eligible) < 2:
        raise CliError(f"No eligible release found for {name} to roll back to: it needs an earlier release "
                       "that succeeded.")
    return eligible[1]


@click.command("releases:rollback")
@click.argument("version", required=False)
@app_option
def rollback(version: str | None, app: str | None) -> None:
    """Roll back to an earlier release's code and config (default: the release before the current one)."""
    name = appname.resolve(app)
    client = connect()
    target = _rollback_target(client, name, version)
    made = client.post(f"/apps/{seg(name)}/releases", {"release": target["id"]})
    output.done(f"Rolling back {name} to v{target['version']}", f"done, v{made['version']}")
    output.warn("Rollback affects code and config vars; it doesn't add or remove add-ons.")
    output.warn(f"To undo, run: berth releases:rollback v{int(made['version']) - 1} -a {name}")
    if made.get("output_stream_url"):
        click.echo("Running release command...")
        ended = follow_output(client, str(made["output_stream_url"]), f"/apps/{seg(name)}/releases/{seg(str(made['id']))}")
        if ended.get("status") == "failed":
            raise CliError(f"The release command of v{made['version']} failed, so v{made['version']} did not go "
                           "live: see its output above, fix it and deploy again.")


COMMANDS = [list_releases, info, rollback]
