"""Add-on actions: addons:action (any action) and the first-party add-ons' commands with the Heroku
CLI's names: pg:*, redis:*, kafka:*.

Each runs `POST /apps/{app}/addons/{addon}/actions/{name}`, after finding the add-on on the app
(`GET /apps/{app}/addons/{ref}`: a clear error for a missing or wrong kind of add-on). `--json`
prints the action's `result` for commands that read something, the whole answer
(`{"message", "result"}`) for those that change something.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import click
import requests

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, _error_from, seg
from berth.cli.commands.addons import confirmed
from berth.cli.errors import ApiError, CliError
from berth.cli.output import json_option
from berth.cli.session import connect

# service name -> (what users call it, the plan to create it with)
SERVICES = {"postgresql": ("Postgres", "heroku-postgresql"), "redis": ("Redis", "heroku-redis"),
            "kafka": ("Kafka", "heroku-kafka")}
DOWNLOAD_CONNECT_TIMEOUT = 10.0
DOWNLOAD_READ_TIMEOUT = 120.0
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_BACKUP_ID = re.compile(r"[a-z][0-9]+")
_DURATION = re.compile(r"([0-9]+)\s*(ms|s|m|h|d|w)?")
_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


# ---- finding the add-on and running the action ---------------------------------------------

class Target:
    """The app, the name the user gave (an attachment name such as DATABASE, or the add-on's
    name) and the add-on it resolved to."""

    def __init__(self, client: ApiClient, app: str, ref: str, addon: dict[str, Any]) -> None:
        self.client, self.app, self.ref, self.addon = client, app, ref, addon

    @property
    def name(self) -> str:
        return str(self.addon.get("name") or self.ref)

    @property
    def label(self) -> str:
        """`DATABASE (postgresql-curved-1234)`, or just the name when that is what was given."""
        return self.name if self.ref in (self.name, self.addon.get("id")) else f"{self.ref} ({self.name})"

    def run(self, action: str, params: dict[str, Any] | None = None, *,
            waiting: str | None = None) -> dict[str, Any]:
        path = f"/apps/{seg(self.app)}/addons/{seg(self.addon['id'])}/actions/{seg(action)}"
        with spinner(waiting):
            answer = self.client.post(path, {"params": params or {}})
        return answer if isinstance(answer, dict) else {"message": None, "result": answer}

    def result(self, action: str, params: dict[str, Any] | None = None, *,
               waiting: str | None = None) -> Any:
        return self.run(action, params, waiting=waiting).get("result")


def service_of(addon: dict[str, Any]) -> str:
    return str((addon.get("addon_service") or {}).get("name") or "")


def find(app: str | None, ref: str, service: str | None = None) -> Target:
    """The add-on `ref` (attachment name, add-on name or id) on the app, of `service` if given."""
    name = appname.resolve(app)
    client = connect()
    try:
        addon = client.get(f"/apps/{seg(name)}/addons/{seg(ref)}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        client.get(f"/apps/{seg(name)}")  # an unknown app gets the server's own error
        if service in SERVICES:
            human, plan = SERVICES[service]
            raise CliError(f"{name} has no add-on {ref}. Create a {human} add-on with "
                           f"berth addons:create {plan} -a {name}, or name one: berth addons -a {name}.") from None
        raise CliError(f"{name} has no add-on {ref}. List its add-ons with berth addons -a {name}.") from None
    actual = service_of(addon)
    if service and actual != service:
        human = SERVICES.get(service, (service, ""))[0]
        raise CliError(f"{ref} on {name} is a {actual or 'different'} add-on ({addon.get('name')}), "
                       f"not {human}.")
    return Target(client, name, ref, addon)


@contextlib.contextmanager
def spinner(message: str | None) -> Iterator[None]:
    """A rich spinner on stderr while the server works, when stderr is a terminal."""
    if not message or not output.err.is_terminal:
        yield
        return
    with output.err.status(message):
        yield


def check_confirmation(app: str, confirm: str | None, warning: str) -> None:
    """--confirm must be the app's name; without it ask on a terminal, otherwise refuse."""
    typed = confirm if confirm is not None else confirmed(app, warning)
    if typed != app:
        raise CliError(f"Confirmation {typed!r} did not match {app}. Nothing was changed.")


# ---- formatting ----------------------------------------------------------------------------

def mb(size: Any) -> str:
    if not isinstance(size, (int, float)) or isinstance(size, bool):
        return output.text(size)
    value = size / (1024 * 1024)
    if 0 < value < 0.01:
        return "<0.01 MB"
    return f"{value:.2f} MB" if value < 10 else f"{value:.1f} MB"


def duration(ms: Any) -> str:
    """86400000 -> `1d` (the largest unit that divides it), for retention times."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        return output.text(ms)
    if ms <= 0:
        return f"{ms} ms"
    for unit in ("w", "d", "h", "m", "s"):
        if ms % _MS[unit] == 0:
            return f"{ms // _MS[unit]}{unit}"
    return f"{ms} ms"


def retention_ms(value: str | None) -> int | None:
    """`--retention-time`: milliseconds, or a number with a unit (ms, s, m, h, d, w): 36h."""
    if value is None:
        return None
    m = _DURATION.fullmatch(value.strip().lower())
    if not m:
        raise click.BadParameter(f"{value!r} is not a time: give milliseconds (86400000) or "
                                 "a number with a unit (ms, s, m, h, d, w), e.g. 24h.",
                                 param_hint="--retention-time")
    return int(m.group(1)) * _MS[m.group(2) or "ms"]


def label(key: str) -> str:
    for suffix in ("_bytes", "_ms"):
        key = key.removesuffix(suffix)
    return key.replace("_", " ").capitalize()


def value_text(key: str, value: Any) -> str:
    if key.endswith("_bytes"):
        return mb(value)
    if key.endswith("_ms"):
        return duration(value)
    if isinstance(value, (list, dict)):
        return ", ".join(output.text(v) for v in value) if isinstance(value, list) else \
            ", ".join(f"{k}={output.text(v)}" for k, v in value.items())
    return output.text(value)


def show_pairs(data: dict[str, Any]) -> None:
    """A result object as aligned `Label: value` lines (nested objects one level deep)."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            pairs += [(f"{label(key)} {label(k).lower()}", value_text(k, v)) for k, v in value.items()]
        else:
            pairs.append((label(key), value_text(key, value)))
    output.fields(pairs)


def show_result(result: Any) -> None:
    """Any action's result, readably: an object as fields, a list of objects as columns."""
    if result is None:
        return
    if isinstance(result, dict):
        show_pairs(result)
    elif isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        keys = list(dict.fromkeys(k for r in result for k in r))
        output.columns([[label(k) for k in keys]] + [[value_text(k, r.get(k)) for k in keys] for r in result])
    elif isinstance(result, list):
        for item in result:
            click.echo(output.text(item))
    else:
        click.echo(output.text(result))


def show_message(answer: dict[str, Any]) -> None:
    if answer.get("message"):
        click.echo(answer["message"])


# ---- addons:action -------------------------------------------------------------------------

def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: parameters look like KEY=VALUE", param_hint="KEY=VALUE")
        params[key] = int(value) if _INTEGER.fullmatch(value) else value
    return params


@click.command("addons:action")
@click.argument("addon")
@click.argument("name")
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@app_option
@json_option
def addon_action(addon: str, name: str, params: tuple[str, ...], app: str | None, as_json: bool) -> None:
    """Run an add-on's action NAME with parameters (integers are sent as numbers).

    \b
    berth addons:action DATABASE backups-restore backup=b001 -a demo
    berth addons:action KAFKA topics-create name=events partitions=8 -a demo
    """
    body = parse_params(params)
    target = find(app, addon)
    answer = target.run(name, body, waiting=f"Running {name} on {target.label}...")
    if as_json:
        output.print_json(answer)
        return
    output.done(f"Running {name} on {target.label}")
    show_message(answer)
    show_result(answer.get("result"))


# ---- Postgres ------------------------------------------------------------------------------

PG = "postgresql"


def _database_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("database", metavar="[DATABASE]", default="DATABASE", required=False)(func)


@click.command("pg:info")
@_database_argument
@app_option
@json_option
def pg_info(database: str, app: str | None, as_json: bool) -> None:
    """Show a Postgres database's plan, storage, connection limit and status."""
    target = find(app, database, PG)
    info = target.result("info", waiting=f"Reading {target.label}...") or {}
    if as_json:
        output.print_json(info)
        return
    used, limit = info.get("storage_used_bytes"), info.get("storage_limit_bytes")
    size = mb(used)
    if isinstance(limit, int) and limit:
        size += f" / {mb(limit)}"
        if isinstance(used, int):
            size += f" ({100 * used / limit:.2f}%)"
    output.heading(target.label)
    output.fields([("Plan", info.get("plan")), ("Status", info.get("status")), ("Data Size", size),
                   ("Connections", f"{info['connections']} max" if info.get("connections") is not None else ""),
                   ("Server", info.get("server")), ("Backups", info.get("backups")),
                   ("Add-on", target.name)])


@click.command("pg:credentials:rotate")
@_database_argument
@app_option
@click.option("--confirm", metavar="APP", help="Skip the prompt; must equal the app name.")
@json_option
def pg_credentials_rotate(database: str, app: str | None, confirm: str | None, as_json: bool) -> None:
    """Give a Postgres database a new password (its URL changes on every attached app)."""
    target = find(app, database, PG)
    check_confirmation(target.app, confirm,
                       f"This will rotate the credentials of {target.label} on {target.app}: open "
                       "connections are reset and every attached app is restarted with the new URL.")
    answer = target.run("credentials-rotate", waiting=f"Rotating the credentials of {target.label}...")
    if as_json:
        output.print_json(answer)
        return
    output.done(f"Rotating the credentials of {target.label} on {target.app}")
    show_message(answer)


def _backups(target: Target) -> list[dict[str, Any]]:
    found = target.result("backups-list", waiting=f"Listing the backups of {target.label}...")
    return [b for b in found or [] if isinstance(b, dict)]


def _newest_backup(target: Target) -> str:
    found = _backups(target)
    if not found:
        raise CliError(f"{target.label} on {target.app} has no backups. "
                       f"Capture one with berth pg:backups:capture {target.ref} -a {target.app}.")
    return str(max(found, key=lambda b: (str(b.get("created_at") or ""), str(b.get("id"))))["id"])


def _backup_and_database(backup: str | None, database: str | None) -> tuple[str | None, str]:
    """[BACKUP] [DATABASE]: one argument that is not a backup id (b001) names the database."""
    if database is None and backup is not None and not _BACKUP_ID.fullmatch(backup):
        return None, backup
    return backup, database or "DATABASE"


@click.command("pg:backups")
@_database_argument
@app_option
@json_option
def pg_backups(database: str, app: str | None, as_json: bool) -> None:
    """List a Postgres database's backups."""
    target = find(app, database, PG)
    found = _backups(target)
    if as_json:
        output.print_json(found)
        return
    output.heading(f"Backups of {target.label}")
    if not found:
        click.echo(f"No backups. Capture one with berth pg:backups:capture {target.ref} -a {target.app}.")
        return
    output.columns([["ID", "Created at", "Size", "Status"]] + [
        [b.get("id"), b.get("created_at"), mb(b.get("size_bytes")), b.get("status")]
        for b in sorted(found, key=lambda b: str(b.get("created_at") or ""), reverse=True)])


@click.command("pg:backups:capture")
@_database_argument
@app_option
@json_option
def pg_backups_capture(database: str, app: str | None, as_json: bool) -> None:
    """Capture a backup of a Postgres database now (pg_dump)."""
    target = find(app, database, PG)
    answer = target.run("backups-capture", waiting=f"Backing up {target.label}...")
    backup = answer.get("result") or {}
    if as_json:
        output.print_json(backup)
        return
    output.done(f"Backing up {target.label} on {target.app}")
    if backup.get("id"):
        click.echo(f"Backup {backup['id']} ({mb(backup.get('size_bytes'))}, {output.text(backup.get('status'))}). "
                   f"Download it with berth pg:backups:download {backup['id']} -a {target.app}.")
    else:
        show_message(answer)


@click.command("pg:backups:restore")
@click.argument("backup", required=False)
@click.argument("database", required=False)
@app_option
@click.option("--confirm", metavar="APP", help="Skip the prompt; must equal the app name.")
@json_option
def pg_backups_restore(backup: str | None, database: str | None, app: str | None, confirm: str | None,
                       as_json: bool) -> None:
    """Restore a backup (default: the newest) into a Postgres database, replacing its data."""
    backup, database = _backup_and_database(backup, database)
    target = find(app, database, PG)
    backup = backup or _newest_backup(target)
    check_confirmation(target.app, confirm,
                       f"This will replace all data in {target.label} on {target.app} with backup {backup}.")
    answer = target.run("backups-restore", {"backup": backup}, waiting=f"Restoring {backup} into {target.label}...")
    if as_json:
        output.print_json(answer)
        return
    output.done(f"Restoring {backup} into {target.label} on {target.app}")
    show_message(answer)


def _backup_url(target: Target, backup: str | None) -> tuple[str, dict[str, Any]]:
    backup = backup or _newest_backup(target)
    result = target.result("backups-url", {"backup": backup}, waiting=f"Getting a URL for {backup}...") or {}
    if not result.get("url"):
        raise CliError(f"The server gave no download URL for {backup}.")
    return backup, result


@click.command("pg:backups:url")
@click.argument("backup", required=False)
@click.argument("database", required=False)
@app_option
@json_option
def pg_backups_url(backup: str | None, database: str | None, app: str | None, as_json: bool) -> None:
    """Print a download URL for a backup (default: the newest); it works for 10 minutes."""
    backup, database = _backup_and_database(backup, database)
    _, result = _backup_url(find(app, database, PG), backup)
    if as_json:
        output.print_json(result)
    else:
        click.echo(result["url"])


def _download(url: str, destination: str) -> int:
    """Stream `url` into `destination` (`-`: stdout); a partial file never takes its name."""
    part = None if destination == "-" else Path(f"{destination}.part")
    written = 0
    try:
        # No API key: the URL is its own credential, and the key must not travel elsewhere.
        with requests.get(url, headers={"User-Agent": "berth-cli"}, stream=True,
                          timeout=(DOWNLOAD_CONNECT_TIMEOUT, DOWNLOAD_READ_TIMEOUT)) as resp:
            if not 200 <= resp.status_code < 300:
                raise _error_from(resp)
            with (open(part, "wb") if part else contextlib.nullcontext(sys.stdout.buffer)) as sink:
                for chunk in resp.iter_content(chunk_size=1 << 16):
                    sink.write(chunk)
                    written += len(chunk)
                sink.flush()
        if part:
            os.replace(part, destination)
    except requests.Timeout:
        raise ApiError("timed out downloading the backup") from None
    except requests.RequestException as exc:
        raise ApiError(f"the download failed: {type(exc).__name__}") from None
    except OSError as exc:
        raise CliError(f"could not write {destination}: {exc.strerror or exc}") from None
    finally:
        if part and part.exists():
            part.unlink()
    return written


@click.command("pg:backups:download")
@click.argument("backup", required=False)
@click.argument("database", required=False)
@app_option
@click.option("-o", "--output", "destination", default="latest.dump", show_default=True, metavar="FILE",
              help="Where to write the dump (- for stdout).")
def pg_backups_download(backup: str | None, database: str | None, app: str | None, destination: str) -> None:
    """Download a backup (default: the newest) as a pg_restore-able dump file."""
    backup, database = _backup_and_database(backup, database)
    target = find(app, database, PG)
    backup, result = _backup_url(target, backup)
    with spinner(None if destination == "-" else f"Downloading {backup} to {destination}..."):
        size = _download(str(result["url"]), destination)
    if destination != "-":
        output.done(f"Downloading {backup} of {target.label} to {destination}", f"done, {mb(size)}")


# ---- psql / redis-cli ----------------------------------------------------------------------

def _url_var(target: Target) -> str:
    """The `*_URL` config var the add-on gives this app: that of the attachment named, else of
    the add-on's first attachment on the app."""
    attachments = [a for a in target.client.get_all(f"/apps/{seg(target.app)}/addon-attachments")
                   if (a.get("addon") or {}).get("id") == target.addon["id"]]
    attachments.sort(key=lambda a: (a.get("name") != target.ref, str(a.get("name"))))
    if not attachments:
        raise CliError(f"{target.name} is not attached to {target.app}; attach it with "
                       f"berth addons:attach {target.name} -a {target.app}.")
    chosen = attachments[0]
    names = [v for v in chosen.get("config_vars") or [] if v.endswith("_URL")]
    names.sort(key=lambda name: "_TLS_" in name)  # REDIS_URL before its REDIS_TLS_URL variant
    return names[0] if names else f"{chosen['name']}_URL"


def _config_url(target: Target) -> str:
    var = _url_var(target)
    url = (target.client.get(f"/apps/{seg(target.app)}/config-vars") or {}).get(var)
    if not url:
        raise CliError(f"{target.app} has no config var {var}; is {target.name} still being provisioned?")
    return str(url)


def _without_password(url: str) -> tuple[str, str | None]:
    """The URL minus its password (kept out of `ps`), and the password."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, colon, password = userinfo.partition(":")
    if not colon:
        return url, None
    netloc = f"{user}@{hostport}" if user else hostport
    return urlunsplit(parts._replace(netloc=netloc)), unquote(password)


def _require(program: str, package: str) -> str:
    path = shutil.which(program)
    if not path:
        raise CliError(f"{program} is not installed (or not on PATH). Install {package} and try again.")
    return path


def _exec(argv: list[str], env: dict[str, str], target: Target) -> None:
    click.echo(f"--> Connecting to {target.label}", err=True)
    os.environ.update(env)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise CliError(f"could not run {argv[0]}: {exc.strerror or exc}") from None


@click.command("pg:psql")
@_database_argument
@app_option
def pg_psql(database: str, app: str | None) -> None:
    """Open psql on a Postgres database (reads SQL from stdin when it is not a terminal)."""
    _require("psql", "the PostgreSQL client (apt-get install postgresql-client)")
    target = find(app, database, PG)
    url, password = _without_password(_config_url(target))
    _exec(["psql", url], {"PGPASSWORD": password} if password else {}, target)


@click.command("redis:cli")
@click.argument("redis_name", metavar="[REDIS]", default="REDIS", required=False)
@app_option
def redis_cli(redis_name: str, app: str | None) -> None:
    """Open redis-cli on a Redis add-on (reads commands from stdin when it is not a terminal)."""
    _require("redis-cli", "the Redis tools (apt-get install redis-tools)")
    target = find(app, redis_name, "redis")
    url, password = _without_password(_config_url(target))
    # REDISCLI_AUTH rather than the password in -u: no "unsafe" warning, and nothing in `ps`.
    _exec(["redis-cli", "-u", url], {"REDISCLI_AUTH": password} if password else {}, target)


# ---- Redis ---------------------------------------------------------------------------------

def _redis_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("redis_name", metavar="[REDIS]", default="REDIS", required=False)(func)


@click.command("redis:info")
@_redis_argument
@app_option
@json_option
def redis_info(redis_name: str, app: str | None, as_json: bool) -> None:
    """Show a Redis add-on's plan, memory, client limit and eviction policy."""
    target = find(app, redis_name, "redis")
    info = target.result("info", waiting=f"Reading {target.label}...") or {}
    if as_json:
        output.print_json(info)
        return
    output.heading(target.label)
    output.fields([("Plan", info.get("plan")), ("Maxmemory", mb(info.get("maxmemory_bytes"))),
                   ("Maxmemory policy", info.get("maxmemory_policy")), ("Max clients", info.get("maxclients")),
                   ("Persistent", info.get("persistent")),
                   ("Host", f"{output.text(info.get('host'))}:{output.text(info.get('port'))}"),
                   ("Add-on", target.name)])


@click.command("redis:maxmemory")
@_redis_argument
@app_option
@click.option("-p", "--policy", required=True, metavar="POLICY",
              help="Eviction policy: noeviction, allkeys-lru, volatile-lru, allkeys-lfu, ...")
@json_option
def redis_maxmemory(redis_name: str, app: str | None, policy: str, as_json: bool) -> None:
    """Set a Redis add-on's key eviction policy (used when its memory is full)."""
    target = find(app, redis_name, "redis")
    answer = target.run("maxmemory", {"policy": policy}, waiting=f"Setting the policy of {target.label}...")
    if as_json:
        output.print_json(answer)
        return
    output.done(f"Setting maxmemory policy of {target.label} on {target.app} to {policy}")
    show_message(answer)


# ---- Kafka ---------------------------------------------------------------------------------

KAFKA = "kafka"


def _kafka_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("kafka", metavar="[KAFKA]", default="KAFKA", required=False)(func)


@click.command("kafka:info")
@_kafka_argument
@app_option
@json_option
def kafka_info(kafka: str, app: str | None, as_json: bool) -> None:
    """Show a Kafka add-on's plan, topic prefix, topics and limits."""
    target = find(app, kafka, KAFKA)
    info = target.result("info", waiting=f"Reading {target.label}...") or {}
    if as_json:
        output.print_json(info)
        return
    output.heading(target.label)
    show_pairs({**info, "add-on": target.name} if isinstance(info, dict) else {"info": info})


@click.command("kafka:topics")
@_kafka_argument
@app_option
@json_option
def kafka_topics(kafka: str, app: str | None, as_json: bool) -> None:
    """List a Kafka add-on's topics."""
    target = find(app, kafka, KAFKA)
    found = [t for t in target.result("topics-list", waiting=f"Listing topics of {target.label}...") or []
             if isinstance(t, dict)]
    if as_json:
        output.print_json(found)
        return
    output.heading(f"Topics of {target.label}")
    if not found:
        click.echo(f"No topics. Create one with berth kafka:topics:create TOPIC {target.ref} -a {target.app}.")
        return
    output.columns([["Name", "Partitions", "Retention"]] + [
        [t.get("name"), t.get("partitions"), duration(t.get("retention_ms"))]
        for t in sorted(found, key=lambda t: str(t.get("name")))])


_retention_help = "How long messages are kept: milliseconds, or with a unit (ms, s, m, h, d, w): 24h."


@click.command("kafka:topics:create")
@click.argument("topic")
@_kafka_argument
@app_option
@click.option("--partitions", type=click.IntRange(min=1), metavar="N", help="Number of partitions.")
@click.option("--retention-time", metavar="MS", help=_retention_help)
@json_option
def kafka_topics_create(topic: str, kafka: str, app: str | None, partitions: int | None,
                        retention_time: str | None, as_json: bool) -> None:
    """Create a topic on a Kafka add-on."""
    params: dict[str, Any] = {"name": topic}
    if partitions is not None:
        params["partitions"] = partitions
    if retention_time is not None:
        params["retention_ms"] = retention_ms(retention_time)
    target = find(app, kafka, KAFKA)
    answer = target.run("topics-create", params, waiting=f"Creating topic {topic}...")
    if as_json:
        output.print_json(answer)
        return
    output.done(f"Creating topic {topic} on {target.label}")
    show_message(answer)


@click.command("kafka:topics:configure")
@click.argument("topic")
@_kafka_argument
@app_option
@click.option("--retention-time", required=True, metavar="MS", help=_retention_help)
@json_option
def kafka_topics_configure(topic: str, kafka: str, app: str | None, retention_time: str, as_json: bool) -> None:
    """Change a Kafka topic's retention time."""
    params = {"name": topic, "retention_ms": retention_ms(retention_time)}
    target = find(app, kafka, KAFKA)
    answer = target.run("topics-configure", params, waiting=f"Configuring topic {topic}...")
    if as_json:
        output.print_json(answer)
        return
    output.done(f"Setting the retention time of {topic} on {target.label} to {duration(params['retention_ms'])}")
    show_message(answer)


@click.command("kafka:topics:destroy")
@click.argument("topic")
@_kafka_argument
@app_option
@click.option("--confirm", metavar="APP", help="Skip the prompt; must equal the app name.")
@json_option
def kafka_topics_destroy(topic: str, kafka: str, app: str | None, confirm: str | None, as_json: bool) -> None:
    """Delete a Kafka topic and its messages."""
    target = find(app, kafka, KAFKA)
    check_confirmation(target.app, confirm,
                       f"This will delete topic {topic} of {target.label} on {target.app} and all its messages.")
    answer = target.run("topics-delete", {"name": topic}, waiting=f"Deleting topic {topic}...")
    if as_json:
        output.print_json(answer)
        return
    output.done(f"Deleting topic {topic} on {target.label}")
    show_message(answer)


COMMANDS = [addon_action,
            pg_info, pg_credentials_rotate, pg_backups, pg_backups_capture, pg_backups_restore, pg_backups_url,
            pg_backups_download, pg_psql,
            redis_info, redis_maxmemory, redis_cli,
            kafka_info, kafka_topics, kafka_topics_create, kafka_topics_configure, kafka_topics_destroy]
