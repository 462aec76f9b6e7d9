"""output.log is rotated past a size (one previous file kept) and followed across rotations: every line
arrives once, in order, or an L10 notice accounts for the ones that are gone; a follower started again
from a line's position continues right after it."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from berth.platform.dynos.backend import DynoSpec, OutputLine
from berth.platform.dynos.local import LocalBackend
from berth.platform.dynos.output import Follower, OutputLog

from .test_lifecycle import app_texts

L10 = "Error L10 (output buffer overflow): "


def follow(path: Path, finished, **options) -> tuple[Follower, list[OutputLine]]:
    lines: list[OutputLine] = []
    options = {"from_start": True, "buffer_lines": 10_000, **options}
    return Follower(path, "web.1", lines.append, finished=finished, **options), lines


def dropped_in(lines: list[OutputLine]) -> int:
    return sum(int(line.text[len(L10):].split()[0]) for line in lines if line.text.startswith(L10))


def numbers(lines: list[OutputLine]) -> list[int]:
    return [int(line.text) for line in lines if line.source == "app"]


def write_lines(log: OutputLog, first: int, last: int) -> None:
    for number in range(first, last + 1):
        log.write("app", str(number))


def paced(output: OutputLog, last: int, per_millisecond: int) -> None:
    """About `per_millisecond` lines a millisecond: a chatty dyno, not a tight loop in this process."""
    for first in range(1, last + 1, per_millisecond):
        write_lines(output, first, min(last, first + per_millisecond - 1))
        time.sleep(0.001)


def test_a_follower_keeps_every_line_across_many_rotations(tmp_path) -> None:
    output = OutputLog(tmp_path / "output.log", rotate_bytes=64 * 1024)
    done = threading.Event()
    follower, lines = follow(tmp_path / "output.log", done.is_set)
    writer = threading.Thread(target=lambda: (paced(output, 40_000, 20), done.set()))
    writer.start()  # ~2.4 MB: more than 30 rotations
    writer.join()
    assert follower.wait(30)
    assert (tmp_path / "output.log.1").stat().st_size < 64 * 1024 + 100  # the disk holds two small files
    got = numbers(lines)
    assert got == sorted(set(got)), "a line came twice or out of order"
    assert len(got) + dropped_in(lines) == 40_000 and follower.dropped == dropped_in(lines)
    assert len(got) > 20_000, follower.dropped  # one that keeps up loses nothing (or little, on a busy machine)


def test_every_line_of_a_tight_loop_is_there_or_accounted_for(tmp_path) -> None:
    output = OutputLog(tmp_path / "output.log", rotate_bytes=4096)
    done = threading.Event()
    follower, lines = follow(tmp_path / "output.log", done.is_set)
    write_lines(output, 1, 20_000)  # ~200 rotations, faster than a follower polls: most files go unread
    done.set()
    assert follower.wait(30)
    got = numbers(lines)
    assert got == sorted(set(got)) and got[-1] == 20_000
    assert len(got) + dropped_in(lines) == 20_000 and follower.dropped == dropped_in(lines)


def test_files_rotated_away_unread_are_reported_as_dropped(tmp_path) -> None:
    output = OutputLog(tmp_path / "output.log", rotate_bytes=4096)
    write_lines(output, 1, 10)
    seen = threading.Event()
    release = threading.Event()
    lines: list[OutputLine] = []

    def stuck(line: OutputLine) -> None:  # holds the follower on its first line
        lines.append(line)
        seen.set()
        release.wait(10)

    done = threading.Event()
    follower = Follower(tmp_path / "output.log", "web.1", stuck, from_start=True, buffer_lines=1,
                        finished=done.is_set)
    assert seen.wait(10)
    write_lines(output, 11, 5000)  # ~25 rotations while it waits: most files are gone before it reads them
    done.set()
    release.set()
    assert follower.wait(30)
    got = numbers(lines)
    assert got == sorted(set(got)) and got[0] == 1 and got[-1] == 5000
    assert dropped_in(lines) > 0 and len(got) + dropped_in(lines) == 5000


def test_following_from_a_position_continues_right_after_that_line(tmp_path) -> None:
    output = OutputLog(tmp_path / "output.log", rotate_bytes=64 * 1024)
    write_lines(output, 1, 1000)
    first, lines = follow(tmp_path / "output.log", lambda: True)
    assert first.wait(10)
    position = next(line.position for line in lines if line.text == "700")
    write_lines(output, 1001, 1500)
    again, more = follow(tmp_path / "output.log", lambda: True, position=position)
    assert again.wait(10)
    assert numbers(more) == list(range(701, 1501)) and again.dropped == 0


def test_a_position_in_a_rotated_file_continues_there_then_in_the_new_one(tmp_path) -> None:
    output = OutputLog(tmp_path / "output.log", rotate_bytes=8 * 1024)
    write_lines(output, 1, 300)
    first, lines = follow(tmp_path / "output.log", lambda: True)
    assert first.wait(10)
    position = lines[-1].position
    write_lines(output, 301, 1000)  # one rotation or more: the file of that position is .1 or gone
    again, more = follow(tmp_path / "output.log", lambda: True, position=position)
    assert again.wait(10)
    got = numbers(more)
    assert got == sorted(set(got)) and got[0] >= 301 and got[-1] == 1000
    assert len(got) + dropped_in(more) == 700  # none repeated, the gone ones accounted for


def test_a_position_from_elsewhere_is_ignored_not_trusted(tmp_path) -> None:
    output = OutputLog(tmp_path / "output.log")
    write_lines(output, 1, 50)
    for bogus, expected in (("garbage", range(1, 51)), ("-1:0:0", range(1, 51)), ("3:1:99999999", []),
                            ("10:1:17", range(10, 51)), ("20:999:0", range(20, 51))):
        again, more = follow(tmp_path / "output.log", lambda: True, position=bogus)
        assert again.wait(10)
        assert numbers(more) == list(expected), bogus  # never a half line, a repeat or a crash


@pytest.mark.slow
def test_a_chatty_dyno_is_followed_across_several_rotations(data_dir, store, stack, checksum) -> None:
    small = LocalBackend(data_dir, store, stack=stack, output_rotate_bytes=256 * 1024)
    status = small.start(DynoSpec(app_id="rotation", name="chatty.1", slug_checksum=checksum,
                                  command="seq 1 100000"))  # ~6 MB of records: about 25 rotations
    lines: list[OutputLine] = []
    follower = small.follow(status.id, lines.append)
    assert follower.wait(60)
    got = [int(text) for text in app_texts(lines)]
    assert got == sorted(set(got)) and got[-1] == 100000
    assert len(got) + dropped_in(lines) == 100000 and follower.dropped == dropped_in(lines)
    directory = data_dir / "dynos" / status.id
    assert (directory / "output.log.1").stat().st_size < 256 * 1024 + 200
    assert [line.text for line in lines][-1] == "State changed from up to crashed"
    small.remove(status.id)


def test_a_follower_from_the_start_that_must_skip_before_its_first_line_counts_every_line(tmp_path) -> None:
    """The dyno wrote more than the follower may lag behind before the follower read anything: the
    lines it jumps over on its first read are counted from the file's first line, not lost silently."""
    output = OutputLog(tmp_path / "output.log", rotate_bytes=64 * 1024 * 1024)
    write_lines(output, 1, 5_000)  # ~300 KB written before anyone follows
    follower, lines = follow(tmp_path / "output.log", lambda: True, max_backlog=64 * 1024)
    assert follower.wait(30)
    got = numbers(lines)
    assert got and got[0] > 1 and got[-1] == 5_000  # it skipped ahead at once
    assert len(got) + dropped_in(lines) == 5_000 and follower.dropped == dropped_in(lines) == got[0] - 1
