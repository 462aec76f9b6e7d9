"""The rendezvous protocol of platform-api.md §2.9 against a real process: the secret line (CRLF or
a short idle), the `rendezvous` greeting, raw bytes both ways, `\\x04` as a non-TTY client's end of
input, close on exit; single-use and expiring secrets."""
from __future__ import annotations

import subprocess
import threading
import time

from berth.platform.rendezvous.bridge import GREETING, UNKNOWN
from berth.platform.rendezvous.tickets import Tickets

from tests.rendezvous.conftest import dial, read_all


class ProcessAttachment:
    """A plain host process standing in for a dyno (the protocol does not care what runs)."""

    def __init__(self, script: str, tty: bool = False) -> None:
        self.script, self.tty = script, tty
        self.process: subprocess.Popen | None = None
        self.stopped = threading.Event()
        self.abandoned = False
        self.exit_code: int | None = None

    def run(self, stdio: int) -> int:
        self.process = subprocess.Popen(["bash", "-c", self.script], stdin=stdio, stdout=stdio, stderr=stdio,
                                        start_new_session=True)
        self.exit_code = self.process.wait()
        return self.exit_code

    def stop(self) -> None:
        self.stopped.set()
        if self.process is not None:
            self.process.kill()

    def abandon(self) -> None:
        self.abandoned = True


def test_stdin_reaches_the_process_and_output_comes_back_until_it_exits(server, ca, tickets) -> None:
    attachment = ProcessAttachment('read line; echo "got $line"; cat; echo "stdin closed"; exit 3')
    secret = tickets.issue(attachment)
    with dial(server, ca) as conn:
        conn.sendall(secret.encode() + b"\r\n")
        assert conn.recv(len(GREETING)) == GREETING
        conn.sendall(b"hello\nrest of input\n\x04")
        output = read_all(conn)
    assert output == b"got hello\nrest of input\nstdin closed\n"
    assert attachment.exit_code == 3 and not attachment.stopped.is_set()


def test_a_secret_without_crlf_is_read_after_a_short_silence(server, ca, tickets) -> None:
    secret = tickets.issue(ProcessAttachment("echo heroku3 style"))
    with dial(server, ca) as conn:
        conn.sendall(secret.encode())  # heroku3 sends no line end
        assert read_all(conn) == GREETING + b"heroku3 style\n"


def test_a_secret_works_once(server, ca, tickets) -> None:
    secret = tickets.issue(ProcessAttachment("echo first"))
    with dial(server, ca) as conn:
        conn.sendall(secret.encode() + b"\r\n")
        assert read_all(conn) == GREETING + b"first\n"
    with dial(server, ca) as again:
        again.sendall(secret.encode() + b"\r\n")
        assert read_all(again) == UNKNOWN
    with dial(server, ca) as guess:
        guess.sendall(b"not-a-secret\r\n")
        assert read_all(guess) == UNKNOWN


def test_an_expired_secret_starts_nothing_and_says_so(server, ca) -> None:
    now = [0.0]
    server.tickets = tickets = Tickets(ttl=60, clock=lambda: now[0])
    attachment = ProcessAttachment("echo should not run")
    secret = tickets.issue(attachment)
    now[0] = 61.0
    with dial(server, ca) as conn:
        conn.sendall(secret.encode() + b"\r\n")
        assert read_all(conn) == UNKNOWN
    assert attachment.abandoned and attachment.process is None


def test_a_tty_client_gets_a_terminal(server, ca, tickets) -> None:
    secret = tickets.issue(ProcessAttachment('test -t 0 && test -t 1 && echo "a tty"; read x; echo "typed $x"',
                                             tty=True))
    with dial(server, ca) as conn:
        conn.sendall(secret.encode() + b"\r\n")
        assert conn.recv(len(GREETING)) == GREETING
        conn.sendall(b"abc\r")
        output = read_all(conn)
    assert b"a tty\r\n" in output and b"typed abc\r\n" in output


def test_a_client_that_hangs_up_stops_the_process(server, ca, tickets) -> None:
    attachment = ProcessAttachment("sleep 60")
    secret = tickets.issue(attachment)
    conn = dial(server, ca)
    conn.sendall(secret.encode() + b"\r\n")
    assert conn.recv(len(GREETING)) == GREETING
    conn.close()
    assert attachment.stopped.wait(10)
    deadline = time.monotonic() + 10
    while attachment.exit_code is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert attachment.exit_code == -9


def test_an_idle_session_is_stopped_and_told_why(server, ca, tickets) -> None:
    server.idle_limit = 0.5
    attachment = ProcessAttachment("sleep 60")
    secret = tickets.issue(attachment)
    with dial(server, ca) as conn:
        conn.sendall(secret.encode() + b"\r\n")
        output = read_all(conn)
    assert output.startswith(GREETING) and b"no input or output for a while" in output
    assert attachment.stopped.is_set()
