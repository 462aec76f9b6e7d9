"""addons:create, addons:attach, addons:detach, addons:upgrade, addons:downgrade, addons:destroy."""

from __future__ import annotations

from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, seg
from berth.cli.commands.addons import PROVISIONING, app_of, confirmed, optional_app, plan_name, poll, resolve
from berth.cli.errors import ApiError, CliError
from berth.cli.output import json_option
from berth.cli.session import connect

wait_interval_option = click.option(
    "--wait-interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
    metavar="SECONDS", help="How often --wait asks the server.")


def config_options(args: tuple[str, ...]) -> dict[str, Any]:
    """`--key value`, `--key=value` and bare `--flag` (true), as the Heroku CLI reads them."""
    config: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise click.BadParameter(f"{arg!r}: provider options look like --key value",
                                     param_hint="-- --KEY VALUE")
        key, sep, value = arg[2:].partition("=")
        if sep:
            config[key] = value
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            i += 1
            config[key] = args[i]
        else:
            config[key] = True
        i += 1
    return config


def send_confirmed(client: ApiClient, path: str, body: dict[str, Any], app: str) -> Any:
    """POST; if the server wants `confirmation_required`, ask for the app name and resend."""
    try:
        return client.post(path, body)
    except ApiError as exc:
        if exc.id != "confirmation_required" or body.get("confirm"):
            raise
        typed = confirmed(app, exc.message)
        if typed != app:
            raise CliError(f"Confirmation {typed!r} did not match {app}. Nothing was changed.") from None
        return client.post(path, {**body, "confirm": typed})


def _failed(addon: dict[str, Any]) -> CliError:
    return CliError(addon.get("failure_message") or f"The add-on {addon['name']} could not be provisioned.")


@click.command("addons:create", context_settings={"ignore_unknown_options": True})
@click.argument("service_plan", metavar="SERVICE[:PLAN]")
@click.argument("options", nargs=-1, type=click.UNPROCESSED, metavar="[-- --KEY VALUE...]")
@app_option
@click.option("--as", "attachment", metavar="NAME", help="Attachment name (config var prefix).")
@click.option("--name", metavar="NAME", help="Name of the add-on (globally unique).")
@click.option("--confirm", metavar="APP", help="Confirm overwriting config vars; must equal the app name.")
@click.option("--wait", is_flag=True, help="Wait until the add-on is provisioned.")
@wait_interval_option
@json_option
def create(service_plan: str, options: tuple[str, ...], app: str | None, attachment: str | None,
           name: str | None, confirm: str | None, wait: bool, wait_interval: float, as_json: bool) -> None:
    """Provision an add-on for an app."""
    target = appname.resolve(app)
    body: dict[str, Any] = {"plan": {"name": service_plan},
                            "attachment": {"name": attachment} if attachment else {},
                            "config": config_options(options)}
    if name:
        body["name"] = name
    if confirm:
        body["confirm"] = confirm
    client = connect()
    addon = send_confirmed(client, f"/apps/{seg(target)}/addons", body, target)
    if addon.get("state") == PROVISIONING:
        # The server can answer with the add-on as it was just before its worker finished
        # (it reads the add-on and its operation separately): look once more before saying so.
        addon = client.get(f"/apps/{seg(target)}/addons/{seg(addon['id'])}")
    if wait and addon.get("state") == PROVISIONING:
        last = poll(client, f"/apps/{seg(target)}/addons/{seg(addon['id'])}",
                    f"Creating {addon['name']} on {target}...", wait_interval, None,
                    lambda a: a is None or a.get("state") != PROVISIONING)
        if last is None:
            raise CliError(f"The add-on {addon['name']} was removed before it was provisioned.")
        addon = last
    if addon.get("state") == "deprovisioned":
        raise _failed(addon)
    if as_json:
        output.print_json(addon)
        return
    pending = addon.get("state") == PROVISIONING
    output.done(f"Creating {addon['name']} on {target}", "done" if not pending else "pending")
    if addon.get("provision_message"):
        click.echo(addon["provision_message"])
    if pending:
        click.echo(f"{addon['name']} is being created in the background. "
                   f"Run berth addons:info {addon['name']} to check its state.")
    else:
        click.echo(f"Created {addon['name']} as {', '.join(addon.get('config_vars') or [])}")


def _release_line(client: ApiClient, verb: str, attachment: str, app: str) -> None:
    release = client.newest_release(app)
    output.done(f"{verb} {attachment} config vars and restarting {app}",
                f"done, v{release['version']}" if release else "done")


@click.command("addons:attach")
@click.argument("addon")
@app_option
@click.option("--as", "attachment", metavar="NAME", help="Attachment name (config var prefix).")
@click.option("--confirm", metavar="APP", help="Confirm overwriting config vars; must equal the app name.")
@json_option
def attach(addon: str, app: str | None, attachment: str | None, confirm: str | None, as_json: bool) -> None:
    """Attach an existing add-on to another app."""
    target = appname.resolve(app)
    body: dict[str, Any] = {"addon": {"name": addon}, "app": {"name": target}}
    if attachment:
        body["name"] = attachment
    if confirm:
        body["confirm"] = confirm
    client = connect()
    made = send_confirmed(client, "/addon-attachments", body, target)
    if as_json:
        output.print_json(made)
        return
    output.done(f"Attaching {(made.get('addon') or {}).get('name') or addon} as {made['name']} to {target}")
    _release_line(client, "Setting", made["name"], target)


@click.command("addons:detach")
@click.argument("attachment")
@app_option
@json_option
def detach(attachment: str, app: str | None, as_json: bool) -> None:
    """Detach an add-on attachment from an app."""
    target = appname.resolve(app)
    client = connect()
    found = client.get(f"/apps/{seg(target)}/addon-attachments/{seg(attachment)}")
    gone = client.delete(f"/addon-attachments/{seg(found['id'])}")
    if as_json:
        output.print_json(gone if gone is not None else found)
        return
    output.done(f"Detaching {found['name']} to {(found.get('addon') or {}).get('name')} from {target}")
    _release_line(client, "Unsetting", found["name"], target)


def _change_plan(addon: str, plan: str, app: str | None, wait_timeout: float, as_json: bool) -> None:
    client = connect()
    found = resolve(client, addon, optional_app(app))
    service = (found.get("addon_service") or {}).get("name") or plan_name(found).partition(":")[0]
    new = plan if ":" in plan else f"{service}:{plan}"
    owner, old = app_of(found), plan_name(found)
    path = f"/apps/{seg(owner)}/addons/{seg(found['id'])}"
    changed = client.patch(f"/apps/{seg(owner)}/addons/{seg(found['name'])}", {"plan": {"name": new}})
    # The server answers at once (with the old plan while a worker asks the partner): poll a little.
    if plan_name(changed) == old and new != old:
        changed = poll(client, path, f"Changing {found['name']} to {new}...", 0.2, wait_timeout,
                       lambda a: a is None or plan_name(a) != old) or changed
    if as_json:
        output.print_json(changed)
        return
    result = "done" if plan_name(changed) == new else "pending"
    output.done(f"Changing {found['name']} on {owner} from {old} to {new}", result)
    if result == "pending":
        click.echo(f"The plan change has not been applied yet. Check with berth addons:info {found['name']}.")
    if changed.get("provision_message"):
        click.echo(changed["provision_message"])


def _plan_command(command_name: str, summary: str) -> click.Command:
    @click.command(command_name, help=summary)
    @click.argument("addon")
    @click.argument("plan")
    @app_option
    @click.option("--wait-timeout", type=click.FloatRange(min=0), default=10.0, show_default=True,
                  metavar="SECONDS", help="How long to wait for the new plan to apply.")
    @json_option
    def command(addon: str, plan: str, app: str | None, wait_timeout: float, as_json: bool) -> None:
        _change_plan(addon, plan, app, wait_timeout, as_json)
    return command


upgrade = _plan_command("addons:upgrade", "Change an add-on's plan (SERVICE:PLAN or PLAN).")
downgrade = _plan_command("addons:downgrade", "Change an add-on's plan (SERVICE:PLAN or PLAN).")


@click.command("addons:destroy")
@click.argument("addon")
@app_option
@click.option("--confirm", metavar="APP", help="Skip the prompt; must equal the owning app's name.")
@click.option("--wait", is_flag=True, help="Wait until the add-on is deprovisioned.")
@wait_interval_option
@json_option
def destroy(addon: str, app: str | None, confirm: str | None, wait: bool, wait_interval: float,
            as_json: bool) -> None:
    """Permanently destroy an add-on (detaching it everywhere)."""
    client = connect()
    found = resolve(client, addon, optional_app(app))
    owner = app_of(found)
    if confirm is None:
        output.warn(f"This will destroy {found['name']} on {owner} and remove its config vars.")
        confirm = click.prompt(f"To proceed, type {owner}", default="", show_default=False, err=True)
    if confirm != owner:
        raise CliError(f"Confirmation {confirm!r} did not match {owner}. Nothing was destroyed.")
    path = f"/apps/{seg(owner)}/addons/{seg(found['id'])}"
    gone = client.call("DELETE", path, body={"force": False})
    state = (gone or {}).get("state")
    if wait and state != "deprovisioned":
        last = poll(client, path, f"Destroying {found['name']} on {owner}...", wait_interval, None,
                    lambda a: a is None or a.get("state") not in ("deprovisioning", PROVISIONING))
        if last is not None and last.get("state") != "deprovisioned":
            raise CliError(last.get("failure_message") or f"{found['name']} is {last.get('state')}, "
                           "not deprovisioned.")
        state = "deprovisioned"
    if as_json:
        output.print_json(gone)
        return
    output.done(f"Destroying {found['name']} on {owner}",
                "done" if state == "deprovisioned" or wait else f"pending ({state})")


COMMANDS = [create, attach, detach, upgrade, downgrade, destroy]
