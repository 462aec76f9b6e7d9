"""A dyno's output: every line of a chatty dyno reaches its follower, in order; a follower slower than
the dyno never stalls it, and the lines it cannot keep are dropped with an L10 notice."""
from __future__ import annotations

import time

import pytest

from berth.platform.dynos.backend import DynoSpec, OutputLine

from .conftest import eventually
from .test_lifecycle import app_texts, collect

pytestmark = pytest.mark.slow


def test_a_chatty_dyno_loses_no_line(backend, checksum) -> None:
    lines: list[OutputLine] = []
    status = backend.start(DynoSpec(app_id="output", name="chatty.1", slug_checksum=checksum,
                                    command="seq 1 50000; seq 1 20 >&2"))
    follower = backend.follow(status.id, lines.append)
    assert follower.wait(60)
    assert app_texts(lines) == [str(n) for n in range(1, 50001)] + [str(n) for n in range(1, 21)]
    assert follower.dropped == 0 and {line.dyno for line in lines} == {"chatty.1"}


def test_a_slow_follower_never_stalls_the_dyno_and_gets_an_l10_notice(backend, checksum) -> None:
    received: list[OutputLine] = []

    def slow(line: OutputLine) -> None:
        received.append(line)
        time.sleep(0.002)

    status = backend.start(DynoSpec(app_id="output", name="chatty.2", slug_checksum=checksum,
                                    command="seq 1 30000; echo done"))
    follower = backend.follow(status.id, slow, buffer_lines=200, max_backlog=64 * 1024)
    began = time.monotonic()
    eventually(lambda: backend.status(status.id).state == "crashed", what="the writer's end")
    assert time.monotonic() - began < 15  # 30000 lines × 2 ms would take 60 s if the follower held it back
    assert follower.wait(60)
    notices = [line.text for line in received if line.text.startswith("Error L10 (output buffer overflow)")]
    assert notices and follower.dropped > 0
    dropped = sum(int(text.split(": ")[1].split()[0]) for text in notices)
    assert dropped == follower.dropped
    everything = collect(backend, status.id)  # a fast follower of the same dyno keeps every line
    assert len(app_texts(everything)) == 30001
    kept = [line for line in received if not line.text.startswith("Error L10")]
    assert len(kept) + dropped == len(everything)
    assert kept == [line for line in everything if line in kept]  # in order, none invented


def test_a_follower_ends_when_its_dyno_is_removed_under_it(backend, checksum) -> None:
    status = backend.start(DynoSpec(app_id="output", name="removed.1", slug_checksum=checksum,
                                    command="seq 1 20000"))
    eventually(lambda: backend.status(status.id).state == "crashed", what="the dyno's end")
    received: list[OutputLine] = []

    def slow_at_first(line: OutputLine) -> None:  # holds the reader back until the dyno is gone
        received.append(line)
        if len(received) < 100:
            time.sleep(0.01)

    follower = backend.follow(status.id, slow_at_first, buffer_lines=500)
    backend.remove(status.id)  # while the follower is still reading
    assert follower.wait(15), "the follower kept waiting for a dyno that no longer exists"
