"""logs (history and --tail), drains, drains:add, drains:remove against the real server."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from berth.db import Database
from berth.platform.logs import store

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, Server


def write_lines(server: Server, app_name: str, *entries: tuple[str, str, str]) -> None:
    """Lines into the server's buffer, as the runner or POST /logs would put them."""
    app_id = server.api("GET", f"/apps/{app_name}").json()["id"]
    database = Database(f"sqlite:///{server.env['BERTH_DATA_DIR']}/berth.sqlite3")
    try:
        with database.transaction() as session:
            store.append(session, app_id, [store.Entry(*entry) for entry in entries])
    finally:
        database.dispose()


def messages(stdout: str) -> list[str]:
    return [line.split("]: ", 1)[1] for line in stdout.splitlines()]


def test_logs_history_and_filters(berth: Berth, server: Server, app_name: str) -> None:
    write_lines(server, app_name, ("app", "web.1", "one"), ("heroku", "router", "two"),
                ("app", "web.2", "three"), ("app", "worker.1", "four"))
    shown = berth("logs", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 4 and lines[0].endswith(" app[web.1]: one") and lines[0][:4].isdigit()
    assert messages(berth("logs", "-n", "2", "-a", app_name).stdout) == ["three", "four"]
    assert messages(berth("logs", "-d", "web", "-a", app_name).stdout) == ["one", "three"]
    assert messages(berth("logs", "--ps", "web.2", "-a", app_name).stdout) == ["three"]
    assert messages(berth("logs", "-p", "worker", "-a", app_name).stdout) == ["four"]
    assert messages(berth("logs", "-s", "heroku", "-a", app_name).stdout) == ["two"]


def test_logs_of_a_quiet_app_and_bad_input(berth: Berth, app_name: str, one_error_line: ErrorLine) -> None:
    quiet = berth("logs", "-a", app_name)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert one_error_line(berth("logs", "-a", "no-such-app-here")) == \
        "Error: Couldn't find that app. (not_found)"
    for args in (["-n", "0"], ["-n", "1501"], ["-d", "web", "-p", "web"]):
        result = berth("logs", *args, "-a", app_name)
        assert result.returncode == 2 and result.stdout == "", (args, result.stderr)


def test_logs_tail_streams_until_ctrl_c(berth: Berth, server: Server, app_name: str) -> None:
    write_lines(server, app_name, ("app", "web.1", "before the tail"))
    proc = subprocess.Popen([sys.executable, "-m", "berth.cli", "logs", "--tail", "-a", app_name],
                            env=berth.env(), cwd=berth.home, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None

    def next_line(timeout: float = 15) -> str:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        assert ready, "no line from berth logs --tail"
        return proc.stdout.readline().decode()  # type: ignore[union-attr]

    try:
        assert next_line().endswith(" app[web.1]: before the tail\n")
        write_lines(server, app_name, ("app", "web.2", "while tailing"))
        assert next_line().endswith(" app[web.2]: while tailing\n")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130 and stderr == b""


def test_drains_add_list_remove(berth: Berth, server: Server, app_name: str, one_error_line: ErrorLine) -> None:
    assert berth("drains", "-a", app_name).stdout == f"{app_name} has no drains.\n"
    url = "https://user:pw@logs.example.com/in?x=1"
    added = berth("drains:add", url, "-a", app_name)
    assert (added.returncode, added.stdout) == (0, f"Successfully added drain {url}\n"), added.stderr
    berth("drains:add", "syslog://logs.example.com:514", "-a", app_name)
    listed = json.loads(berth("drains", "--json", "-a", app_name).stdout)
    assert [d["url"] for d in listed] == [url, "syslog://logs.example.com:514"]
    assert berth("drains", "-a", app_name).stdout.splitlines() == [
        "=== Drains", f"{url} ({listed[0]['token']})", f"syslog://logs.example.com:514 ({listed[1]['token']})"]

    assert one_error_line(berth("drains:add", url, "-a", app_name)) == \
        f"Error: {app_name} already drains to that URL. (invalid_params)"
    assert "drain URL is https://" in one_error_line(berth("drains:add", "ftp://x", "-a", app_name))
    assert one_error_line(berth("drains:remove", "https://nowhere.example.com", "-a", app_name)) == \
        "Error: Couldn't find that log drain. (not_found)"

    removed = berth("drains:remove", url, "-a", app_name)
    assert removed.stdout == f"Successfully removed drain {url}\n", removed.stderr
    by_token = berth("drains:remove", listed[1]["token"], "-a", app_name)
    assert by_token.stdout == "Successfully removed drain syslog://logs.example.com:514\n", by_token.stderr
    assert server.api("GET", f"/apps/{app_name}/log-drains").json() == []


def test_drains_need_an_app(berth: Berth) -> None:
    result = berth("drains", cwd=berth.home)
    assert result.returncode == 2 and "No app specified" in result.stderr


DRAIN_SECRET = "s3cret-drain-password"
DRAIN_QUERY_TOKEN = "q-token-0123456789"


def add_addon_drain(server: Server, app_name: str, url: str) -> str:
    """An attached add-on whose provider gave a drain URL, written into the server's database as
    provisioning would leave it (no partner needed to show how `drains` prints it)."""
    from pathlib import Path

    from berth import crypto
    from berth.broker.catalogue import register_manifest
    from berth.broker.models import AddOn, Attachment
    from berth.platform.logs.drains import add_drain
    from berth.platform.models import App

    data_dir = Path(server.env["BERTH_DATA_DIR"])
    crypto.configure(crypto.load_or_create_keys((), data_dir))
    manifest = {"id": "drainer", "name": "Drainer",
                "api": {"version": "3", "config_vars": ["DRAINER_URL"], "password": "a-long-random-password",
                        "regions": ["*"], "requires": ["syslog_drain"],
                        "production": {"base_url": "https://drainer.example/heroku/resources"}},
                "plans": [{"name": "free", "price": {"cents": 0}, "default": True}]}
    database = Database(f"sqlite:///{data_dir}/berth.sqlite3")
    try:
        with database.transaction() as session:
            service = register_manifest(session, manifest, owner=None)
            app = session.query(App).filter_by(name=app_name).one()
            addon = AddOn(name=f"drainer-{app_name}", service_id=service.id, plan_id=service.plans[0].id,
                          app_id=app.id, state="provisioned", region="us")
            attachment = Attachment(addon=addon, app_id=app.id, name="DRAINER")
            session.add_all([addon, attachment])
            session.flush()
            add_drain(session, app, url, owner=attachment.id)
            return addon.name
    finally:
        database.dispose()


def test_drains_show_addon_drain_urls_without_their_secrets(berth: Berth, server: Server, app_name: str) -> None:
    url = (f"https://drain:{DRAIN_SECRET}@logs.example.com/providers/drainer/drains/d1"
           f"?token={DRAIN_QUERY_TOKEN}&format=rfc5424")
    addon_name = add_addon_drain(server, app_name, url)
    own = "https://me:my-own-password@mine.example.com/in"
    assert berth("drains:add", own, "-a", app_name).returncode == 0
    shown = berth("drains", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    assert DRAIN_SECRET not in shown.stdout and DRAIN_QUERY_TOKEN not in shown.stdout, shown.stdout
    lines = shown.stdout.splitlines()
    assert "=== Add-on Drains" in lines
    assert f"{addon_name} (https://drain:***@logs.example.com/providers/drainer/drains/d1" \
           f"?token=***&format=***)" in lines, lines
    assert any(line.startswith(own) for line in lines)  # the user's own drain, as they typed it
