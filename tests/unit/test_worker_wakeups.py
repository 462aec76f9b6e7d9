"""The worker's thread wake-ups: as many threads as there is work for, none lost."""
from __future__ import annotations

import threading
import time

from berth.jobs.worker import Wakeups


def _waiting_threads(wakeups: Wakeups, count: int, timeout: float) -> tuple[list[threading.Thread], list[bool]]:
    results: list[bool] = []
    lock = threading.Lock()

    def wait() -> None:
        woken = wakeups.wait(timeout)
        with lock:
            results.append(woken)
    threads = [threading.Thread(target=wait) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def test_one_signal_wakes_one_thread_and_the_others_time_out() -> None:
    wakeups = Wakeups(limit=8)
    threads, results = _waiting_threads(wakeups, 4, timeout=0.5)
    time.sleep(0.1)  # all four are waiting
    wakeups.signal()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]


def test_a_signal_before_anyone_waits_is_kept_for_the_next_waiter() -> None:
    wakeups = Wakeups(limit=8)
    wakeups.signal(2)
    assert wakeups.wait(0.01) is True
    assert wakeups.wait(0.01) is True
    assert wakeups.wait(0.01) is False


def test_permits_are_capped_at_the_thread_count() -> None:
    wakeups = Wakeups(limit=2)
    wakeups.signal(10)
    assert [wakeups.wait(0.01) for _ in range(3)] == [True, True, False]
