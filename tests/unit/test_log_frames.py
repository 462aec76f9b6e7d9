"""Logplex bodies: octet-counted RFC 5424 frames in, HTTPS-drain frames out."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from berth.logplex import format_frame, parse_body, parse_frame, split_message


def counted(*frames: str) -> bytes:
    return b"".join(str(len(f.encode())).encode() + b" " + f.encode() for f in frames)


def test_parses_log_input_frames() -> None:
    body = counted("<190>1 2025-01-01T00:00:00+00:00 host t.abc web.1 - - hello world\n",
                   "<13>1 2025-01-01T10:30:00.123456-02:00 myhost t.abc worker.2 ID7 "
                   '[exampleSDID@32473 iut="3" eventSource="App\\"x\\]"] second')
    first, second = parse_body(body)
    assert (first.priority, first.hostname, first.app_name, first.procid, first.msgid) == \
        (190, "host", "t.abc", "web.1", "-")
    assert first.timestamp == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert (first.structured_data, first.message) == (None, "hello world")
    assert second.timestamp == datetime(2025, 1, 1, 12, 30, 0, 123456, tzinfo=timezone.utc)
    assert second.structured_data == '[exampleSDID@32473 iut="3" eventSource="App\\"x\\]"]'
    assert (second.msgid, second.message) == ("ID7", "second")


def test_message_edge_cases() -> None:
    # nil timestamp, Z zone, 9-digit fraction, a BOM, several SD elements, no message at all
    frame = parse_frame("<0>1 - h a p m - \ufeffcafé ünïcode".encode())
    assert (frame.timestamp, frame.message) == (None, "café ünïcode")
    frame = parse_frame(b"<191>1 2025-06-01T00:00:00.123456789Z h a p m [a x=\"1\"][b] ")
    assert frame.timestamp == datetime(2025, 6, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    assert (frame.structured_data, frame.message) == ('[a x="1"][b]', "")
    assert parse_frame(b"<1>1 - h a p m -").message == ""
    assert parse_body(b"") == []
    # A newline between frames, outside the count, is tolerated.
    assert len(parse_body(counted("<1>1 - h a p m - x") + b"\n" + counted("<1>1 - h a p m - y"))) == 2


@pytest.mark.parametrize("body, problem", [
    (b"abc <1>1 - h a p m - x", "octet count"),
    (b"012 <1>1 - h a p m - x", "octet count"),
    (b"<1>1 - h a p m - x", "octet count"),
    (b"10", "octet count"),
    (b"99 <1>1 - h a p m - x", "truncated, 99 bytes announced but 18 remain"),
    (counted("hello there"), "expected `<PRI>1 `"),
    (counted("<192>1 - h a p m - x"), "priority 192"),
    (counted("<1>2 - h a p m - x"), "version 2"),
    (counted("<1>1 yesterday h a p m - x"), "bad TIMESTAMP"),
    (counted("<1>1 2025-13-01T00:00:00Z h a p m - x"), "bad TIMESTAMP"),
    (counted("<1>1 2025-01-01T00:00:00 h a p m - x"), "bad TIMESTAMP"),  # no zone
    (counted("<1>1 - h a p"), "ends after PROCID"),
    (counted("<1>1 - h  a p m - x"), "APP-NAME is missing"),
    (counted("<1>1 - h " + "a" * 49 + " p m - x"), "APP-NAME must be 1 to 48"),
    (counted("<1>1 - h a p m x"), "STRUCTURED-DATA must be"),
    (counted("<1>1 - h a p m -x"), "STRUCTURED-DATA must be"),
    (counted('<1>1 - h a p m [a x="]'), "not closed"),
    (counted("<1>1 - h a p m [a]x"), "space must follow"),
])
def test_malformed_bodies_say_what_is_wrong(body: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match="^frame 1: ") as raised:
        parse_body(body)
    assert problem in str(raised.value)


def test_error_names_the_bad_frame() -> None:
    with pytest.raises(ValueError, match="^frame 2: not RFC 5424"):
        parse_body(counted("<1>1 - h a p m - fine", "<1>1 nope"))


def test_heroku_drain_example_round_trips() -> None:
    # Heroku's documented HTTPS drain frame: no STRUCTURED-DATA, the count includes the newline.
    body = b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n"
    (frame,) = parse_body(body, structured_data=False)
    assert (frame.app_name, frame.procid, frame.message) == ("app", "web.3", "State changed from starting to up")
    made = format_frame(frame.timestamp or datetime.now(timezone.utc), "app", "web.3", frame.message,
                        priority=40)
    assert made == (b"90 <40>1 2012-11-30T06:45:29.000000+00:00 host app web.3 - "
                    b"State changed from starting to up\n")
    (again,) = parse_body(made, structured_data=False)
    assert again == frame


def test_format_frame_counts_bytes_and_converts_to_utc() -> None:
    moment = datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    made = format_frame(moment, "heroku", "router", "naïve ✓")
    length, _, rest = made.partition(b" ")
    assert int(length) == len(rest)
    assert rest.decode() == "<190>1 2026-11-26T08:00:00.123456+00:00 host heroku router - naïve ✓\n"


def test_split_message_at_10000_bytes_between_characters() -> None:
    assert split_message("short") == ["short"]
    assert split_message("x" * 10000) == ["x" * 10000]
    assert split_message("x" * 25000) == ["x" * 10000, "x" * 10000, "x" * 5000]
    # 9999 ASCII bytes then a 2-byte character: the character moves whole to the next piece.
    pieces = split_message("a" * 9999 + "é" + "b")
    assert pieces == ["a" * 9999, "éb"]
    assert all(len(p.encode()) <= 10000 for p in split_message("✓" * 7000))
    assert "".join(split_message("✓" * 7000)) == "✓" * 7000
