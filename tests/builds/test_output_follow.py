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
