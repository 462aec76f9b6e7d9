"""One smart-HTTP request, served by the real `git http-backend` (CGI), streamed both ways.

The CGI environment is built from scratch: the repository's path comes from the app's id (never
the URL), and of the request's headers only Content-Type, Content-Encoding (gzip: http-backend
inflates it) and Git-Protocol reach git, each checked first. The request body is copied to git as
it arrives, at most `max_push_bytes` plus room for the commands, and git's answer is passed on as
git writes it: no push is ever held in memory.
"""
from __future__ import annotations

import logging
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from berth.platform.git import repositories

log = logging.getLogger(__name__)

SERVICES = ("git-upload-pack", "git-receive-pack")
CHUNK = 64 * 1024
# Room beyond the pack's limit for the ref commands and capabilities that precede it.
COMMAND_ALLOWANCE = 1024 * 1024
# What upload-pack's negotiation may send (http-backend buffers it whole; git's default is 10 MB).
MAX_NEGOTIATION_BYTES = 10 * 1024 * 1024
_GIT_PROTOCOL = re.compile(r"^version=[0-9]$")


class RequestRefused(Exception):
    """The request cannot be given to git: `status` and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GitRequest:
    method: str                    # GET or POST
    action: str                    # "info/refs" or one of SERVICES
    service: str | None            # info/refs?service=…
    content_type: str
    content_encoding: str
    content_length: int | None
    git_protocol: str
    account_id: str
    remote_addr: str


@dataclass
class GitResponse:
    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]


def check(request: GitRequest, max_push_bytes: int) -> None:
    """Refuses what git should never see (each with what to do instead)."""
    if request.action == "info/refs":
        if request.method != "GET" or request.service not in SERVICES:
            raise RequestRefused(403, "Only the smart HTTP protocol is served: use git 1.6.6 or newer.")
        return
    if request.method != "POST":
        raise RequestRefused(405, f"{request.action} takes POST.")
    if request.content_type != f"application/x-{request.action}-request":
        raise RequestRefused(415, f"{request.action} takes a body of type application/x-{request.action}-request.")
    if request.content_encoding not in ("", "gzip", "x-gzip"):
        raise RequestRefused(415, "Request bodies may be sent as they are or gzip-compressed.")
    if request.content_length is not None and request.content_length > body_limit(request, max_push_bytes):
        raise RequestRefused(413, push_too_large_message(max_push_bytes))


def body_limit(request: GitRequest, max_push_bytes: int) -> int:
    return max_push_bytes + COMMAND_ALLOWANCE if request.action == "git-receive-pack" else MAX_NEGOTIATION_BYTES


def push_too_large_message(max_push_bytes: int) -> str:
    return (f"This push is larger than the {max_push_bytes // (1024 * 1024)} MiB Berth accepts. "
            "Leave large files out of the repository (build artefacts, data) and push again.")


def cgi_environment(data_dir: Path, app_id: str, request: GitRequest, max_push_bytes: int) -> dict[str, str]:
    path_info = f"/{repositories.repository_name(app_id)}/{request.action}"
    env = {
        **repositories.git_environment(data_dir),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GIT_PROJECT_ROOT": str(repositories.repos_root(data_dir)),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_HTTP_MAX_REQUEST_BUFFER": str(MAX_NEGOTIATION_BYTES),
        "PATH_INFO": path_info,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": f"service={request.service}" if request.service else "",
        "REMOTE_USER": request.account_id,
        "REMOTE_ADDR": request.remote_addr,
        "BERTH_APP_ID": app_id,
    }
    if request.method == "POST":
        env["CONTENT_TYPE"] = request.content_type
        if request.content_length is not None:
            env["CONTENT_LENGTH"] = str(request.content_length)
        if request.content_encoding:
            env["HTTP_CONTENT_ENCODING"] = request.content_encoding
    if _GIT_PROTOCOL.match(request.git_protocol):
        env["GIT_PROTOCOL"] = request.git_protocol
    return env


def serve(data_dir: Path, app_id: str, request: GitRequest, body: BinaryIO, max_push_bytes: int) -> GitResponse:
    """Runs http-backend for `request` on the app's repository (made on first use)."""
    check(request, max_push_bytes)
    repositories.ensure_repository(data_dir, app_id)
    argv = ["git", *repositories.fixed_config(data_dir, max_push_bytes), "http-backend"]
    process = subprocess.Popen(argv, env=cgi_environment(data_dir, app_id, request, max_push_bytes),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=repositories.git_root(data_dir))
    assert process.stdin and process.stdout and process.stderr
    limit = body_limit(request, max_push_bytes) if request.method == "POST" else 0
    feeder = threading.Thread(target=_feed, args=(body, process, limit, max_push_bytes), daemon=True)
    feeder.start()
    threading.Thread(target=_log_stderr, args=(process, app_id), daemon=True).start()
    try:
        status, headers, rest = _read_head(process.stdout)
    except Exception:
        _end(process)
        raise
    return GitResponse(status, headers, _stream(process, rest))


def _feed(body: BinaryIO, process: subprocess.Popen[bytes], limit: int, max_push_bytes: int) -> None:
    """Copies the request body to git, chunk by chunk; past the limit git is stopped (it would
    refuse the pack itself first: receive.maxInputSize)."""
    sent = 0
    stdin = process.stdin
    assert stdin is not None
    try:
        while limit:
            chunk = body.read(min(CHUNK, limit + 1 - sent))
            if not chunk:
                break
            sent += len(chunk)
            if sent > limit:
                log.warning("git push to %s stopped: %s", process.args, push_too_large_message(max_push_bytes))
                process.kill()
                return
            stdin.write(chunk)
    except (BrokenPipeError, ConnectionError, OSError):
        pass  # git stopped reading (it refused the request) or the client went away
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _log_stderr(process: subprocess.Popen[bytes], app_id: str) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        log.info("git http-backend (app %s): %s", app_id, line.decode(errors="replace").rstrip())


def _read_head(stdout: BinaryIO) -> tuple[int, list[tuple[str, str]], bytes]:
    """The CGI header block: (status, headers, the body bytes already read)."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        chunk = stdout.read1(CHUNK) if hasattr(stdout, "read1") else stdout.read(CHUNK)  # type: ignore[attr-defined]
        if not chunk:
            raise RequestRefused(500, "git ended without an answer; the server's log says why.")
        data += chunk
        if len(data) > 64 * 1024:
            raise RequestRefused(500, "git answered with an unreadable header.")
    separator = b"\r\n\r\n" if b"\r\n\r\n" in data and (b"\n\n" not in data or
                                                       data.index(b"\r\n\r\n") < data.index(b"\n\n")) else b"\n\n"
    head, _, rest = data.partition(separator)
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return status, headers, rest


def _stream(process: subprocess.Popen[bytes], first: bytes) -> Iterator[bytes]:
    stdout = process.stdout
    assert stdout is not None
    try:
        if first:
            yield first
        while chunk := stdout.read1(CHUNK):  # type: ignore[attr-defined]
            yield chunk
    finally:
        _end(process)  # also when the client went away mid-answer


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdout,):
        if pipe:
            pipe.close()
    if process.returncode:
        log.info("git http-backend exited with %s", process.returncode)
