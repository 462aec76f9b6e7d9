"""`make run`: the web process (gunicorn), the broker's worker, the builder, the runner (dynos and
the router), the rendezvous host (one-off dynos) and the add-on backends supervisor, kept running
together.

One exiting is restarted after a short pause; Ctrl-C or SIGTERM stops them all.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from gunicorn import glogging, util
from gunicorn.workers.gthread import ThreadWorker

from berth import signed_urls, tls_listener
from berth.config import Settings, load_settings, prepare_data_dir
from berth.nodes import NodeConfigError, prepare_node

RESTART_PAUSE_SECONDS = 1.0
# What a client can do about an answer gunicorn gives before Flask sees the request.
_NEXT_STEP = {
    400: "Send a well-formed HTTP/1.1 request.",
    414: "Send a shorter request line (at most 4094 bytes).",
    431: "Send fewer or smaller headers (at most 8190 bytes each, 100 in all).",
    501: "Send the body with Content-Length or chunked transfer coding.",
}


class JsonErrorWorker(ThreadWorker):
    """gunicorn's threaded worker, except that the errors gunicorn answers itself (a request
    line or header it cannot parse, headers too large) are JSON in Heroku's shape like every
    other answer, not an HTML page.

    gunicorn decides the status; its HTML answer is captured instead of sent, and replaced."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        captured = _CapturedSocket()
        super().handle_error(req, captured, addr, exc)  # type: ignore[arg-type]
        status, reason = captured.status()
        if status is None:
            return
        if status >= 500:
            message = "Internal server error."
        else:
            message = f"{reason}: {exc}. {_NEXT_STEP.get(status, '')}".strip()
        body = json.dumps({"id": reason.lower().replace(" ", "_"), "message": message}).encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except OSError:
            self.log.debug("Failed to send error message.")


class _CapturedSocket:
    """Stands in for the client socket while gunicorn writes its HTML error answer."""

    def __init__(self) -> None:
        self.sent = b""

    def gettimeout(self) -> float:
        return 0.0  # "non-blocking already": gunicorn then writes without switching modes

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def status(self) -> tuple[int | None, str]:
        line = self.sent.split(b"\r\n", 1)[0].decode("latin-1")
        _version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        return (int(code), reason) if code.isdigit() else (None, "")


class RedactingLogger(glogging.Logger):
    """gunicorn's logger, minus the signatures of self-authorising URLs (source uploads and
    downloads) in access log lines: each is a credential for an hour."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = signed_urls.redact(atoms[key])
        return atoms


def web_command(settings: Settings) -> list[str]:
    """gunicorn with Berth's worker class; no control socket (gunicorn's default is one shared
    path per user, ~/.gunicorn/gunicorn.ctl, so a second Berth on the machine would clash with
    it, and Berth never uses it)."""
    return [sys.executable, "-m", "gunicorn", "--workers", str(settings.web_workers),
            "--worker-class", "berth.serve.JsonErrorWorker", "--threads", str(settings.web_threads),
            "--bind", f"{settings.host}:{settings.port}", "--no-control-socket",
            "--access-logfile", "-", "--logger-class", "berth.serve.RedactingLogger", "app:app"]


def tls_web_command(settings: Settings) -> list[str]:
    """The same app on BERTH_TLS_PORT over TLS (git's remotes, and the whole API). A second
    gunicorn, because one gunicorn applies its certificate to every address it binds: the plain
    port would turn into TLS too. Its certificate is (re)issued here, before it starts."""
    cert, key = tls_listener.ensure_certificate(settings)
    argv = web_command(settings)
    bind = argv.index("--bind")
    argv[bind + 1] = f"{settings.host}:{settings.tls_port}"
    return [*argv[:-1], "--certfile", str(cert), "--keyfile", str(key), argv[-1]]


def commands() -> dict[str, list[str]]:
    settings = load_settings()
    return {
        "web": web_command(settings),
        "tls-web": tls_web_command(settings),
        "worker": [sys.executable, "-m", "berth.worker"],
        "builder": [sys.executable, "-m", "berth.builder"],
        "runner": [sys.executable, "-m", "berth.runner"],
        "rendezvous": [sys.executable, "-m", "berth.rendezvous"],
        "drains": [sys.executable, "-m", "berth.platform.logs.forwarder"],
        **({"backends": [sys.executable, "-m", "berth.addons.backends"]} if settings.builtin_addons else {}),
    }


def main() -> None:
    settings = load_settings()
    try:
        prepare_data_dir(settings.data_dir)
        prepare_node(settings)  # before any process starts: each would refuse alike, and be restarted
    except NodeConfigError as error:
        print(f"berth: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    running = {name: subprocess.Popen(argv) for name, argv in commands().items()}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    argvs = commands()
    while not stopping:
        time.sleep(0.5)
        for name, process in list(running.items()):
            if process.poll() is not None and not stopping:
                print(f"berth: {name} exited with {process.returncode}; restarting", file=sys.stderr)
                time.sleep(RESTART_PAUSE_SECONDS)
                running[name] = subprocess.Popen(argvs[name])
    for process in running.values():
        process.terminate()
    for process in running.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    # The apps' dynos and the router outlive the runner (a restarted runner adopts them); stopping
    # `make run` itself stops them too.
    subprocess.run([sys.executable, "-m", "berth.runner", "stop-all"], check=False, timeout=120)


if __name__ == "__main__":
    main()
