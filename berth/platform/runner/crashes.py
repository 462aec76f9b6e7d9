"""Heroku's crash restart policy (runtime.md §6.5): any exit of a formation dyno is a crash. The
first crash restarts at once; crashes that follow cool off for `base`, 2×`base`, 4×`base` … up to
`cap`. A dyno that ran longer than QUICK_SECONDS before crashing starts the count again, and so
does a new release."""
from __future__ import annotations

from dataclasses import dataclass, field

QUICK_SECONDS = 600.0


@dataclass
class CrashRecord:
    release_version: int | None
    count: int = 0
    restart_at: float = 0.0
    seen: set[str] = field(default_factory=set)  # backend ids of crashes already counted


class CrashBook:
    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap = base, cap
        self._records: dict[tuple[str, str], CrashRecord] = {}

    def restart_at(self, app_id: str, name: str, release_version: int | None, dyno_id: str, started_at: float,
                   now: float) -> float:
        """When the crashed dyno `dyno_id` may be replaced; counted once per dyno."""
        key = (app_id, name)
        record = self._records.get(key)
        if record is None or record.release_version != release_version:
            record = self._records[key] = CrashRecord(release_version)
        if dyno_id not in record.seen:
            record.seen.add(dyno_id)
            if now - started_at > QUICK_SECONDS:
                record.count = 0
            record.count += 1
            record.restart_at = now + self.cool_off(record.count)
        return record.restart_at

    def crashed_before(self, app_id: str, name: str, release_version: int | None) -> bool:
        """Whether this release's dyno of that name has crashed (it is restarting after a crash)."""
        record = self._records.get((app_id, name))
        return record is not None and record.release_version == release_version and record.count > 0

    def cool_off(self, count: int) -> float:
        return 0.0 if count <= 1 else min(self.cap, self.base * 2 ** (count - 2))

    def forget(self, app_id: str) -> None:
        for key in [key for key in self._records if key[0] == app_id]:
            del self._records[key]
