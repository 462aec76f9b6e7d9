"""One-off dynos end to end, as users run them: a live Berth with its rendezvous process (`python -m
berth.rendezvous`, as `make run` starts it), the official Heroku CLI, `berth run` and heroku3, real
slugs in the real sandbox; stdin, output, exit codes, detached output in the log stream, stops."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.api.test_slugs import slug_tarball
from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.live_server import ROOT, LiveServer, clean_env, free_port, live_server, stop, wait_for_tls
from tests.rendezvous.conftest import read_all, read_terminal_until

pytestmark = pytest.mark.slow


@dataclass
class Platform:
    server: LiveServer
    key: str
    rendezvous_log: Path

    @property
    def ca_file(self) -> Path:
        return Path(self.server.env["BERTH_DATA_DIR"]) / "ca" / "ca.pem"

    def call(self, method: str, path: str, json: Any = None) -> requests.Response:
        return self.server.api(method, path, self.key, json=json)

    def deploy(self, app: str) -> None:
        """An app whose current release has a slug (a Procfile is all the commands need)."""
        assert self.call("POST", "/apps", {"name": app}).status_code == 201
        slug = self.call("POST", f"/apps/{app}/slugs", {"process_types": {"web": "echo v1"}}).json()
        put = requests.put(slug["blob"]["url"], data=slug_tarball("v1"), headers={"Content-Type": ""}, timeout=30)
        assert put.status_code == 200, put.text
        assert self.call("POST", f"/apps/{app}/releases", {"slug": slug["id"]}).status_code == 201

    def log_lines(self, app: str) -> list[str]:
        """The app's log as `heroku logs` reads it, without timestamps."""
        session = self.call("POST", f"/apps/{app}/log-sessions", {"lines": 1500}).json()
        text = requests.get(session["logplex_url"], timeout=30).text
        return [line.split(" ", 1)[1] for line in text.splitlines() if " " in line]

    def wait_for_log(self, app: str, line: str, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while line not in (lines := self.log_lines(app)):
            assert time.monotonic() < deadline, f"no {line!r} in {lines}\n{self.rendezvous_log.read_text()[-3000:]}"
            time.sleep(0.2)
        return lines

    def wait_for_state(self, app: str, dyno: str, state: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (shown := self.call("GET", f"/apps/{app}/dynos/{dyno}").json())["state"] != state:
            assert time.monotonic() < deadline, shown
            time.sleep(0.1)
        return shown


@pytest.fixture(scope="module")
def platform(stack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("one-off-clients")
    port = free_port()
    with live_server(base, workers=1, threads=8, RENDEZVOUS_PORT=str(port)) as server:
        log = base / "rendezvous.log"
        with log.open("wb") as out:
            host = subprocess.Popen([sys.executable, "-m", "berth.rendezvous"], cwd=ROOT, env=server.env,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_tls(port, host, log)
            yield Platform(server, server.create_user("runner@example.com"), log)
        finally:
            stop(host)


@pytest.fixture(scope="module")
def heroku(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(platform.server.url, platform.key, tmp_path_factory.mktemp("heroku-home"))


def berth(platform: Platform, home: Path, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    env = {**clean_env(), "HOME": str(home), "BERTH_API_URL": platform.server.url, "BERTH_API_KEY": platform.key,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "berth.cli", *args], env=env, cwd=home, input=input,
                          capture_output=True, text=True, timeout=120)


def test_heroku_run_passes_stdin_and_output_and_exits_with_the_commands_status(platform: Platform,
                                                                               heroku: HerokuCLI) -> None:
    platform.deploy("cli-attached")
    done = heroku.run("run", "--exit-code", "-a", "cli-attached", "--", "read x; echo got $x; exit 3",
                      input="hello\n", NODE_EXTRA_CA_CERTS=str(platform.ca_file))
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "got hello" in done.stdout
    lines = [line for line in platform.log_lines("cli-attached") if "[run.1]" in line]
    assert lines == ["heroku[run.1]: Starting process with command `read x; echo got $x; exit 3 ; "
                     "echo \"\uFFFF heroku-command-exit-status: $?\"`",
                     "heroku[run.1]: State changed from starting to up",
                     "heroku[run.1]: Process exited with status 3",
                     "heroku[run.1]: State changed from up to complete"]  # the output stays on the terminal
    assert platform.call("GET", "/apps/cli-attached/dynos").json() == []


def test_heroku_run_detached_prints_the_dyno_and_its_output_reaches_heroku_logs(platform: Platform,
                                                                                heroku: HerokuCLI) -> None:
    platform.deploy("cli-detached")
    done = heroku.run("run:detached", "-a", "cli-detached", "--", "echo detached as $DYNO; exit 2")
    assert done.returncode == 0, done.stderr
    name = re.search(r"run\.\d+", done.stdout + done.stderr).group(0)  # type: ignore[union-attr]
    platform.wait_for_log("cli-detached", f"heroku[{name}]: State changed from up to complete")
    logs = heroku.ok("logs", "-a", "cli-detached")
    assert f"app[{name}]: detached as {name}" in logs
    assert f"heroku[{name}]: Process exited with status 2" in logs


def test_berth_run_with_stdin_env_size_and_exit_code(platform: Platform, tmp_path: Path) -> None:
    platform.deploy("berth-attached")
    done = berth(platform, tmp_path / "home", "run", "-a", "berth-attached", "--env", "GREETING=hi;OTHER=x y",
                 "--size", "standard-2x", "--", 'read x; echo "$GREETING $OTHER $x"; exit 4', input="there\n")
    assert done.returncode == 4, (done.stdout, done.stderr)
    assert done.stdout == "hi x y there\n"
    assert platform.call("GET", "/apps/berth-attached/dynos/run.1").json()["size"] == "Standard-2X"
    ok = berth(platform, tmp_path / "home", "run", "-a", "berth-attached", "--", "cat", input="a\nb\n")
    assert (ok.returncode, ok.stdout) == (0, "a\nb\n")


def test_berth_run_detached_prints_the_dyno_and_its_output_reaches_berth_logs(platform: Platform,
                                                                              tmp_path: Path) -> None:
    platform.deploy("berth-detached")
    done = berth(platform, tmp_path / "home", "run:detached", "-a", "berth-detached", "--env", "WHO=berth",
                 "--", "echo from $WHO on $DYNO")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "run.1\n"
    platform.wait_for_log("berth-detached", "heroku[run.1]: State changed from up to complete")
    logs = berth(platform, tmp_path / "home", "logs", "-a", "berth-detached")
    assert "app[run.1]: from berth on run.1" in logs.stdout


def test_berth_run_says_why_when_the_app_has_no_code(platform: Platform, tmp_path: Path) -> None:
    assert platform.call("POST", "/apps", {"name": "berth-empty"}).status_code == 201
    done = berth(platform, tmp_path / "home", "run", "-a", "berth-empty", "--", "true")
    assert done.returncode == 1
    assert "has no release with code yet: deploy it" in done.stderr and "Traceback" not in done.stderr


def test_stopping_a_running_detached_dyno_ends_it_with_sigterm(platform: Platform) -> None:
    platform.deploy("stop-detached")
    made = platform.call("POST", "/apps/stop-detached/dynos", {"command": "echo started; sleep 600"}).json()
    platform.wait_for_log("stop-detached", f"app[{made['name']}]: started")
    assert platform.call("DELETE", f"/apps/stop-detached/dynos/{made['name']}").status_code == 202
    shown = platform.wait_for_state("stop-detached", made["name"], "down", timeout=15)
    assert shown["exit_code"] == 143
    lines = platform.wait_for_log("stop-detached", f"heroku[{made['name']}]: State changed from up to down")
    assert f"heroku[{made['name']}]: Stopping all processes with SIGTERM" in lines
    assert f"heroku[{made['name']}]: Process exited with status 143" in lines
    assert platform.call("GET", "/apps/stop-detached/dynos").json() == []


def test_stopping_an_attached_dyno_ends_its_session(platform: Platform) -> None:
    import socket
    import ssl

    platform.deploy("stop-attached")
    made = platform.call("POST", "/apps/stop-attached/dynos", {"command": "echo started; sleep 600",
                                                               "attach": True}).json()
    host, port = made["attach_url"].split("//", 1)[1].split("/", 1)[0].split(":")
    context = ssl.create_default_context(cafile=str(platform.ca_file))
    with context.wrap_socket(socket.create_connection((host, int(port)), timeout=30), server_hostname=host) as conn:
        conn.sendall(made["attach_url"].rsplit("/", 1)[1].encode() + b"\r\n")
        assert conn.recv(12) == b"rendezvous\r\n"
        started = conn.recv(100)
        assert started == b"started\n"
        stopped = platform.call("POST", f"/apps/stop-attached/dynos/{made['name']}/actions/stop")
        assert stopped.status_code == 202
        assert read_all(conn, deadline=15) == b""  # the process is gone: the server closes
    assert platform.wait_for_state("stop-attached", made["name"], "down")["exit_code"] == 143


def heroku3_client(platform: Platform) -> Any:
    import heroku3

    saved = heroku3.api.HEROKU_URL
    heroku3.api.HEROKU_URL = platform.server.url  # copied when a client is built
    try:
        return heroku3.from_key(platform.key)
    finally:
        heroku3.api.HEROKU_URL = saved


def test_heroku3_runs_a_detached_command_into_the_log(platform: Platform) -> None:
    platform.deploy("h3-detached")
    dyno = heroku3_client(platform).app("h3-detached").run_command_detached("echo from heroku3 as $DYNO")
    assert dyno.name == "run.1"
    platform.wait_for_log("h3-detached", "app[run.1]: from heroku3 as run.1")


def test_heroku3_cannot_attach_because_it_trusts_only_its_bundled_cas(platform: Platform) -> None:
    """heroku3's Rendezvous loads only its own data/cacert.pem (no SSL_CERT_FILE, no system store), so
    no installation CA can be trusted without patching heroku3; the dyno is then never attached to."""
    import ssl

    platform.deploy("h3-attached")
    with pytest.raises(ssl.SSLCertVerificationError):
        heroku3_client(platform).app("h3-attached").run_command("echo never", printout=False)
    assert platform.call("GET", "/apps/h3-attached/dynos/run.1").json()["state"] == "starting"


def test_berth_run_on_a_terminal_gives_the_dyno_one(platform: Platform, tmp_path: Path) -> None:
    import pty

    platform.deploy("berth-tty")
    home = tmp_path / "home"
    home.mkdir()
    env = {**clean_env(), "HOME": str(home), "BERTH_API_URL": platform.server.url, "BERTH_API_KEY": platform.key,
           "TERM": "xterm", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "berth.cli", "run", "-a", "berth-tty", "--",
                                'test -t 0 && echo "on a tty as $TERM"; read x; echo "typed $x"; exit 5'],
                               env=env, cwd=home, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 60
    try:
        seen = read_terminal_until(master, b"on a tty as xterm", deadline)  # not the command in the status line
        os.write(master, b"abc\r")
        seen += read_terminal_until(master, b"typed abc", deadline)
    finally:
        if process.poll() is None:
            time.sleep(2)
        os.close(master)
    assert process.wait(10) == 5, seen
    assert b"on a tty as xterm" in seen and b"typed abc" in seen, seen
    assert platform.call("GET", "/apps/berth-tty/dynos/run.1").json()["state"] == "down"


def test_heroku_ps_stop_stops_a_running_one_off(platform: Platform, heroku: HerokuCLI) -> None:
    platform.deploy("cli-stop")
    made = platform.call("POST", "/apps/cli-stop/dynos", {"command": "echo started; sleep 600"}).json()
    platform.wait_for_log("cli-stop", f"app[{made['name']}]: started")
    heroku.ok("ps:stop", made["name"], "-a", "cli-stop")
    assert platform.wait_for_state("cli-stop", made["name"], "down", timeout=15)["exit_code"] == 143
