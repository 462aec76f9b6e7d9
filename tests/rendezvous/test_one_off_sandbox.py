"""One-off dynos attached through the rendezvous server, run from a real slug in the sandbox: stdin
and output cross, the exit status comes back, the time limit stops the dyno and says so, and the dyno
sees neither Berth's data nor another app's files."""
from __future__ import annotations

from pathlib import Path

import pytest

from berth.platform.one_off import OneOffRun
from berth.platform.rendezvous.bridge import GREETING
from berth.platform.slug_runs import SlugRunner
from berth.platform.slug_store import LocalSlugStore
from berth.platform.slugs import pack

from tests.rendezvous.conftest import dial, read_all

pytestmark = pytest.mark.slow


@pytest.fixture
def runner(tmp_path: Path, stack: Path) -> SlugRunner:
    return SlugRunner(LocalSlugStore(tmp_path / "slugs"), tmp_path / "runs", stack=stack)


@pytest.fixture
def checksum(runner: SlugRunner, tmp_path: Path) -> str:
    app = tmp_path / "build"
    (app / "bin").mkdir(parents=True)
    (app / "bin" / "hello").write_text("#!/bin/sh\necho hello from the slug\n")
    (app / "bin" / "hello").chmod(0o755)
    packed = pack(app, tmp_path / "slug.tgz")
    return runner.store.put(packed.path, packed.checksum)


def attach(server, ca, tickets, one_off: OneOffRun, stdin: bytes) -> bytes:
    secret = tickets.issue(one_off)
    with dial(server, ca) as conn:
        conn.sendall(secret.encode() + b"\r\n")
        assert conn.recv(len(GREETING)) == GREETING
        conn.sendall(stdin)
        return read_all(conn, deadline=60)


def test_an_attached_one_off_dyno_talks_both_ways_and_ends_with_its_status(server, ca, tickets, runner,
                                                                           checksum) -> None:
    ended = []
    one_off = OneOffRun(runner, checksum, 'bin/hello; read x; echo "got $x as $DYNO with $GREETING"; exit 3',
                        dyno="run.1", config={"GREETING": "config"}, time_to_live=60,
                        on_end=lambda result, why: ended.append(why))
    output = attach(server, ca, tickets, one_off, b"typed\n\x04")
    assert output == b"hello from the slug\ngot typed as run.1 with config\n"
    assert ended == ["exited with status 3"]


def test_a_one_off_dyno_past_its_time_to_live_is_stopped_and_says_so(server, ca, tickets, runner,
                                                                     checksum) -> None:
    ended = []
    one_off = OneOffRun(runner, checksum, "echo started; sleep 120", dyno="run.2", config={},
                        time_to_live=2, on_end=lambda result, why: ended.append(why))
    output = attach(server, ca, tickets, one_off, b"")
    assert output.startswith(b"started\n")
    assert b"run.2 reached its time limit of 2 s and was stopped" in output
    assert ended == ["timed out and was stopped"]


def test_a_one_off_dyno_sees_neither_berths_data_nor_another_apps_files(server, ca, tickets, runner, checksum,
                                                                        tmp_path: Path) -> None:
    berth_secret = tmp_path / "data" / "secret.key"
    berth_secret.parent.mkdir()
    berth_secret.write_text("berth-only")
    other_slug = tmp_path / "slugs"  # every app's slugs live here, on the host
    one_off = OneOffRun(runner, checksum, f"cat {berth_secret}; ls {other_slug}; ls {tmp_path / 'runs'}; "
                        "echo end", dyno="run.3", config={}, time_to_live=60)
    output = attach(server, ca, tickets, one_off, b"\x04").decode()
    assert "berth-only" not in output and output.count("No such file or directory") == 3, output
    assert output.endswith("end\n")
