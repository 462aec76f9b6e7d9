"""Logplex HTTP bodies (`Content-Type: application/logplex-1`): octet-counted RFC 5424 frames.

A body is `<len> <frame><len> <frame>...` (RFC 6587 octet counting), each frame
`<PRI>1 <timestamp> <host> <app-name> <procid> <msgid> <structured-data> <msg>`. Log input
(`POST /logs`) sends full RFC 5424 frames; HTTPS drains receive frames without the
STRUCTURED-DATA field (runtime.md §8.4), so parsing takes a flag for either form.

A foundation module (it imports nothing of Berth): the platform writes and reads the format, and
so does the log store add-on, which may not import the platform.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

MAX_LINE_BYTES = 10000          # runtime.md §8.1: longer dyno lines become several lines
DEFAULT_PRIORITY = 190          # local7.info, what Logplex writes for app lines
_MAX_LENGTH_DIGITS = 9          # more than any body Berth accepts; stops absurd numbers early
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
# RFC 5424 header fields: printable US-ASCII, with these maximum lengths.
_FIELD_LIMITS = (("HOSTNAME", 255), ("APP-NAME", 48), ("PROCID", 128), ("MSGID", 32))
_BOM = "\ufeff"


@dataclass(frozen=True)
class Frame:
    priority: int
    timestamp: datetime | None  # None for the nil value `-`
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str | None  # the raw `[...]` elements, None for `-` (or when absent)
    message: str


def parse_body(body: bytes, *, structured_data: bool = True) -> list[Frame]:
    """Every frame of a logplex body, in order; ValueError naming the first problem."""
    frames: list[Frame] = []
    position = 0
    while True:
        # Some shippers end each frame with a newline outside the count: tolerate it.
        while position < len(body) and body[position] in b"\r\n":
            position += 1
        if position == len(body):
            return frames
        number = len(frames) + 1
        space = body.find(b" ", position, position + _MAX_LENGTH_DIGITS + 1)
        digits = body[position:space] if space != -1 else b""
        if not digits.isdigit() or digits.startswith(b"0"):
            raise ValueError(f"frame {number}: expected an octet count followed by a space "
                             f"at byte {position}")
        length = int(digits)
        start = space + 1
        if start + length > len(body):
            raise ValueError(f"frame {number}: truncated, {length} bytes announced but "
                             f"{len(body) - start} remain")
        try:
            frames.append(parse_frame(body[start:start + length], structured_data=structured_data))
        except ValueError as exc:
            raise ValueError(f"frame {number}: {exc}") from None
        position = start + length


def parse_frame(frame: bytes, *, structured_data: bool = True) -> Frame:
    """One RFC 5424 message (without its octet count)."""
    text = frame.decode("utf-8", errors="replace")
    header = re.match(r"^<(\d{1,3})>(\d{1,3}) ", text)
    if header is None:
        raise ValueError("not RFC 5424: expected `<PRI>1 ` at the start")
    priority, version = int(header.group(1)), header.group(2)
    if priority > 191:
        raise ValueError(f"not RFC 5424: priority {priority} is over 191")
    if version != "1":
        raise ValueError(f"not RFC 5424: version {version}, expected 1")
    rest = text[header.end():]
    timestamp_text, rest = _field(rest, "TIMESTAMP")
    fields = []
    for name, limit in _FIELD_LIMITS:
        value, rest = _field(rest, name)
        if len(value) > limit or not all(33 <= ord(c) <= 126 for c in value):
            raise ValueError(f"not RFC 5424: {name} must be 1 to {limit} printable ASCII characters")
        fields.append(value)
    data: str | None = None
    if structured_data:
        data, rest = _structured_data(rest)
    message = rest.removeprefix(_BOM).removesuffix("\n").removesuffix("\r")
    return Frame(priority, _timestamp(timestamp_text), *fields, structured_data=data,
                 message=message)


def _field(rest: str, name: str) -> tuple[str, str]:
    """The next space-separated header field, and what follows its space."""
    value, space, after = rest.partition(" ")
    if not value:
        raise ValueError(f"not RFC 5424: {name} is missing")
    if not space and name != "MSGID":
        raise ValueError(f"not RFC 5424: the frame ends after {name}")
    return value, after


def _structured_data(rest: str) -> tuple[str | None, str]:
    if rest.startswith("-"):
        if len(rest) > 1 and rest[1] != " ":
            raise ValueError("not RFC 5424: STRUCTURED-DATA must be `-` or `[...]`")
        return None, rest[2:]
    if not rest.startswith("["):
        raise ValueError("not RFC 5424: STRUCTURED-DATA must be `-` or `[...]`")
    index, quoted = 0, False
    while index < len(rest):
        char = rest[index]
        if quoted and char == "\\":
            index += 2  # an escaped `"`, `\` or `]` inside a parameter value
            continue
        if char == '"':
            quoted = not quoted
        elif char == "]" and not quoted and (index + 1 == len(rest) or rest[index + 1] != "["):
            end = index + 1
            if end < len(rest) and rest[end] != " ":
                raise ValueError("not RFC 5424: a space must follow STRUCTURED-DATA")
            return rest[:end], rest[end + 1:]
        index += 1
    raise ValueError("not RFC 5424: STRUCTURED-DATA is not closed with `]`")


def _timestamp(text: str) -> datetime | None:
    if text == "-":
        return None
    match = _TIMESTAMP.match(text)
    if match is None:
        raise ValueError(f"not RFC 5424: bad TIMESTAMP {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0)
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "0").ljust(6, "0")[:6]), tzinfo=timezone(offset))
    except ValueError:
        raise ValueError(f"not RFC 5424: bad TIMESTAMP {text[:40]!r}") from None


def split_message(message: str, limit: int = MAX_LINE_BYTES) -> list[str]:
    """Pieces of at most `limit` UTF-8 bytes, cut between characters (never inside one)."""
    if len(message) * 4 <= limit:
        return [message]  # a character is at most 4 bytes: short enough without encoding it
    encoded = message.encode("utf-8")
    if len(encoded) <= limit:
        return [message]
    pieces = []
    while encoded:
        cut = min(limit, len(encoded))
        while cut < len(encoded) and (encoded[cut] & 0xC0) == 0x80:  # a continuation byte
            cut -= 1
        pieces.append(encoded[:cut].decode("utf-8"))
        encoded = encoded[cut:]
    return pieces


def rfc5424_time(moment: datetime) -> str:
    """`2026-11-26T08:00:00.123456+00:00`: UTC, microseconds, numeric offset (Logplex's form)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def format_frame(logged_at: datetime, source: str, process: str, message: str, *,
                 priority: int = DEFAULT_PRIORITY) -> bytes:
    """One HTTPS-drain frame: `<len> <PRI>1 <time> host <source> <dyno> - <msg>\\n` (no
    STRUCTURED-DATA; HOSTNAME literally `host`), the count including the final newline."""
    frame = f"<{priority}>1 {rfc5424_time(logged_at)} host {source} {process} - {message}\n"
    encoded = frame.encode("utf-8")
    return str(len(encoded)).encode() + b" " + encoded
