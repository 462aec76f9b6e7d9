"""Following a build's output file: everything written is read, and the end comes as soon as the
builder signals the final status (a git push returns then), not at the follower's next poll."""
from __future__ import annotations

import statistics
import threading
import time
import uuid
from pathlib import Path

from berth.jobs.wakeup import signal_waiters
from berth.platform.builds.output import POLL_SECONDS, OutputWriter, follow


def follow_one_build(data_dir: Path) -> tuple[bytes, float]:
    """A build that writes two lines and finishes; what the follower read, and how long after the
    builder's signal it ended."""
    build_id, finished, signalled = str(uuid.uuid4()), threading.Event(), [0.0]
    writer = OutputWriter(data_dir, build_id)
    writer.line("-----> first")

    def builder() -> None:
        time.sleep(0.05)
        writer.line("       Released v2")
        writer.close()
        finished.set()  # the final status is committed ...
        signalled[0] = time.monotonic()
        signal_waiters(data_dir, build_id)  # ... then followers are woken, as BuildJobs._finish does

    threading.Thread(target=builder, daemon=True).start()
    output = b"".join(follow(data_dir, build_id, finished.is_set, keepalive=None))
    return output, time.monotonic() - signalled[0]


def test_the_follower_ends_at_the_builders_signal_with_all_output_read(tmp_path: Path) -> None:
    latencies = []
    for _ in range(8):
        output, latency = follow_one_build(tmp_path)
        assert output == b"-----> first\n       Released v2\n"
        latencies.append(latency)
    # Polling alone ends on average POLL_SECONDS / 2 after the signal; woken, within milliseconds.
    assert statistics.median(latencies) < POLL_SECONDS / 4, latencies
    assert list((tmp_path / "run").iterdir()) == []  # each follower's socket went with it


def test_without_a_socket_the_follower_still_reads_everything_by_polling(tmp_path: Path) -> None:
    data_dir = tmp_path / ("a-data-dir-too-deep-for-a-unix-socket-path-" * 3)  # over 108 bytes with run/
    output, latency = follow_one_build(data_dir)
    assert output == b"-----> first\n       Released v2\n"
    assert latency <= POLL_SECONDS * 4


# Long enough that a line the follower was not woken for could not arrive by polling in these tests.
NO_POLLING = 60.0


def test_each_line_reaches_the_follower_at_once_without_a_query_per_line(tmp_path: Path) -> None:
    """Each line is read as soon as it is written (the writer signals it: with polling slowed to a
    minute, nothing else could bring it), yet the follower asks whether the job finished (a
    database query in Berth) only on the runner's signal, not once per line."""
    build_id, finished = str(uuid.uuid4()), threading.Event()
    asked: list[float] = []

    def is_finished() -> bool:
        asked.append(time.monotonic())
        return finished.is_set()

    writer = OutputWriter(tmp_path, build_id)
    last_written = threading.Event()

    def builder() -> None:
        time.sleep(0.1)  # the follower is waiting by now
        for number in range(40):
            writer.line(f"line {number}")
            time.sleep(0.02)
        last_written.set()
        writer.close()
        finished.set()
        signal_waiters(tmp_path, build_id)

    threading.Thread(target=builder, daemon=True).start()
    began, chunks, while_writing = time.monotonic(), [], 0
    for chunk in follow(tmp_path, build_id, is_finished, keepalive=None, poll_seconds=NO_POLLING):
        chunks.append(chunk)
        while_writing += chunk.count(b"\n") if not last_written.is_set() else 0
    assert b"".join(chunks) == b"".join(f"line {number}\n".encode() for number in range(40))
    assert time.monotonic() - began < NO_POLLING / 2  # the end came by the runner's signal
    assert while_writing >= 10, while_writing  # lines arrived as written, not all at the end
    assert len(asked) == 2, asked  # the first question, and the one after the runner's signal


def test_a_follower_that_starts_after_the_writer_is_still_woken_per_line(tmp_path: Path) -> None:
    """The writer looks its followers up again at most every REFRESH_SECONDS: a late follower is
    signalled from then on (it polls meanwhile)."""
    from berth.jobs.wakeup import WaiterSignaller

    build_id, finished = str(uuid.uuid4()), threading.Event()
    writer = OutputWriter(tmp_path, build_id)
    writer.line("before anyone follows")  # the writer's lookup found no follower
    follower_ready, last_written = threading.Event(), threading.Event()

    def builder() -> None:
        follower_ready.wait(10)
        time.sleep(WaiterSignaller.REFRESH_SECONDS + 0.1)  # past the next lookup
        for number in range(20):
            writer.line(f"line {number}")
            time.sleep(0.05)
        last_written.set()
        writer.close()
        finished.set()
        signal_waiters(tmp_path, build_id)

    threading.Thread(target=builder, daemon=True).start()
    began, text, while_writing = time.monotonic(), b"", 0
    for chunk in follow(tmp_path, build_id, finished.is_set, keepalive=None, poll_seconds=NO_POLLING):
        text += chunk
        while_writing += chunk.count(b"\n") if follower_ready.is_set() and not last_written.is_set() else 0
        follower_ready.set()  # its first read (the line before it came) is done: it waits now
    assert text == b"before anyone follows\n" + b"".join(f"line {number}\n".encode() for number in range(20))
    assert time.monotonic() - began < NO_POLLING / 2
    assert while_writing >= 5, while_writing  # woken per line once the writer looked it up
