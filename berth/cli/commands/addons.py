"""addons, addons:services, addons:plans, addons:info, addons:open (+ helpers for addons_change)."""

from __future__ import annotations

import html
import sys
import tempfile
import time
import webbrowser
from collections.abc import Callable
from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, seg
from berth.cli.errors import ApiError, CliError
from berth.cli.output import json_option
from berth.cli.session import connect

PROVISIONING = "provisioning"


def price(plan_or_price: dict[str, Any] | None) -> str:
    """`free`, `$X/month`, `contract` or `metered` (Berth shows months, not Heroku's ~$/hour)."""
    p = (plan_or_price or {}).get("price", plan_or_price) or {}
    if p.get("contract"):
        return "contract"
    if p.get("metered"):
        return "metered"
    cents = int(p.get("cents") or 0)
    if not cents:
        return "free"
    dollars = f"{cents // 100}" if cents % 100 == 0 else f"{cents / 100:.2f}"
    return f"${dollars}/{p.get('unit') or 'month'}"


def plan_name(addon: dict[str, Any]) -> str:
    return output.text((addon.get("plan") or {}).get("name"))


def app_of(addon: dict[str, Any]) -> str:
    return output.text((addon.get("app") or {}).get("name"))


def optional_app(app: str | None) -> str | None:
    """-a, .berth or git remote when there is one; add-on names are global, so none is fine."""
    try:
        return appname.resolve(app)
    except click.UsageError:
        return None


def resolve(client: ApiClient, addon: str, app: str | None) -> dict[str, Any]:
    found = client.post("/actions/addons/resolve", {"addon": addon, "app": app})
    if not found:
        raise CliError(f"Couldn't find that add-on: {addon}.")
    if len(found) > 1:
        raise CliError(f"Ambiguous add-on {addon}: " + ", ".join(a["name"] for a in found))
    return found[0]


def poll(client: ApiClient, path: str, message: str, interval: float, timeout: float | None,
         until: Callable[[dict[str, Any] | None], bool]) -> dict[str, Any] | None:
    """GET `path` every `interval` s (a rich spinner on a terminal) until `until(answer)`;
    a 404 counts as None. Returns the last answer; stops after `timeout` s if one is given."""
    deadline = None if timeout is None else time.monotonic() + timeout
    status = output.err.status(message) if output.err.is_terminal else None
    if status:
        status.start()
    try:
        while True:
            try:
                current: dict[str, Any] | None = client.get(path)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                current = None
            if until(current) or (deadline is not None and time.monotonic() >= deadline):
                return current
            time.sleep(interval)
    finally:
        if status:
            status.stop()


def confirmed(app: str, message: str) -> str:
    """Ask for the app name as confirmation; without a terminal there is nobody to ask."""
    if not sys.stdin.isatty():
        raise CliError(f"{message} Re-run with --confirm {app} to proceed.")
    output.warn(message)
    return str(click.prompt(f"To proceed, type {app}", default="", show_default=False, err=True))


@click.command("addons")
@app_option
@json_option
def list_addons(app: str | None, as_json: bool) -> None:
    """List add-ons: of an app with -a (owned or attached), else all you can see."""
    client = connect()
    addons = client.get_all(f"/apps/{seg(app)}/addons" if app else "/addons")
    if as_json:
        output.print_json(addons)
    elif not addons:
        click.echo(f"No add-ons for app {app}." if app else "You have no add-ons.")
    else:
        head = ["Add-on", "Plan", "Price", "State"] + ([] if app else ["App"])
        output.columns([head] + [
            [a["name"], plan_name(a), price(a.get("billed_price") or a.get("plan")),
             a.get("state")] + ([] if app else [app_of(a)])
            for a in sorted(addons, key=lambda a: (app_of(a), a["name"]))])


@click.command("addons:services")
@json_option
def services(as_json: bool) -> None:
    """List the add-on services you can install."""
    found = connect().get_all("/addon-services")
    if as_json:
        output.print_json(found)
    elif not found:
        click.echo("No add-on services are available.")
    else:
        output.columns([["Slug", "Name", "State"]] + [
            [s["name"], s.get("human_name"), s.get("state")]
            for s in sorted(found, key=lambda s: s["name"])])


@click.command("addons:plans")
@click.argument("service")
@json_option
def plans(service: str, as_json: bool) -> None:
    """List a service's plans, cheapest first."""
    found = connect().get_all(f"/addon-services/{seg(service)}/plans")
    found.sort(key=lambda p: (bool((p.get("price") or {}).get("contract")),
                              int((p.get("price") or {}).get("cents") or 0)))
    if as_json:
        output.print_json(found)
    elif not found:
        click.echo(f"{service} has no plans.")
    else:
        output.columns([["", "Slug", "Name", "Price"]] + [
            ["default" if p.get("default") else "", p["name"], p.get("human_name"), price(p)]
            for p in found])


@click.command("addons:info")
@click.argument("addon")
@app_option
@json_option
def info(addon: str, app: str | None, as_json: bool) -> None:
    """Show an add-on and where it is attached."""
    client = connect()
    found = resolve(client, addon, app)
    attachments = client.get_all(f"/addons/{seg(found['id'])}/addon-attachments")
    if as_json:
        output.print_json({**found, "attachments": attachments})
        return
    output.heading(found["name"])
    output.fields([
        ("Attachments", ", ".join(f"{app_of(a)}::{a['name']}" for a in attachments)),
        ("Config vars", ", ".join(found.get("config_vars") or [])),
        ("Installed at", found.get("created_at")),
        ("Owning app", app_of(found)),
        ("Plan", plan_name(found)),
        ("Price", price(found.get("billed_price") or found.get("plan"))),
        ("State", found.get("state")),
    ])


def _form(sso: dict[str, Any]) -> str:
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}">'
                     for k, v in (sso.get("params") or {}).items())
    return (f'<!doctype html><html><body onload="document.forms[0].submit()">'
            f'<form method="{html.escape(sso.get("method") or "post")}" '
            f'action="{html.escape(sso["action"])}">{inputs}'
            f'<noscript><button>Continue</button></noscript></form></body></html>')


@click.command("addons:open")
@click.argument("addon")
@app_option
@click.option("--show-url", is_flag=True,
              help="Print the sign-on URL and parameters (JSON) instead of opening a browser.")
def open_(addon: str, app: str | None, show_url: bool) -> None:
    """Open an add-on's dashboard (single sign-on) in your browser."""
    client = connect()
    name = appname.resolve(app)
    found = client.get(f"/apps/{seg(name)}/addons/{seg(addon)}")  # the add-on's own 404 first
    try:
        sso = client.get(f"/apps/{seg(name)}/addons/{seg(found['id'])}/sso")
    except ApiError as exc:
        if exc.status in (404, 405):
            raise CliError("this Berth server does not support opening add-on dashboards "
                           f"(GET /apps/{name}/addons/{addon}/sso answered {exc.status}).") from None
        raise
    if show_url:
        output.print_json({"method": sso.get("method"), "action": sso.get("action"),
                           "params": sso.get("params") or {}})
        return
    with tempfile.NamedTemporaryFile("w", suffix=".html", prefix="berth-sso-", delete=False) as page:
        page.write(_form(sso))
    click.echo(f"Opening {found['name']} dashboard...")
    if not webbrowser.open(f"file://{page.name}"):
        raise CliError(f"could not start a browser; open file://{page.name} yourself.")


COMMANDS = [list_addons, services, plans, info, open_]
