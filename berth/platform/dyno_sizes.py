"""Dyno sizes: what `GET /dyno-sizes` shows (Heroku's catalogue) and what a dyno of each size may
use when it runs (memory in bytes for its cgroup, a process-count limit against fork bombs).

Sizes are answered to case-insensitively by name, by id, and by the old names Heroku still accepts
(`1X`, `2X`, `free`, `hobby`, `PX`). The app's formation stores the canonical lowercase `key`."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from berth.errors import InvalidParams, NotFound

_NAMESPACE = uuid.UUID("0b6a3f3e-5d1c-4b8e-9a55-6c2f7d3e1a90")
GIB = 1024 ** 3


@dataclass(frozen=True)
class DynoSize:
    name: str                   # Heroku's spelling, as the CLIs print it: Standard-1X
    memory_gb: float            # what the API shows as `memory`
    compute: int                # Heroku's relative compute units
    dyno_units: int
    monthly_cost_cents: int
    max_per_type: int           # dynos of this size one process type may have
    process_limit: int          # processes and threads a dyno of this size may run
    dedicated: bool = False
    one_off_limit: int = 50     # concurrent one-off dynos of this size (runtime.md §6.9)

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.key))

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gb * GIB)


SIZES: tuple[DynoSize, ...] = (
    DynoSize("Eco", 0.5, 1, 0, 0, max_per_type=1, process_limit=256, one_off_limit=1),
    DynoSize("Basic", 0.5, 1, 1, 700, max_per_type=1, process_limit=256),
    DynoSize("Standard-1X", 0.5, 1, 1, 2500, max_per_type=100, process_limit=256),
    DynoSize("Standard-2X", 1, 2, 2, 5000, max_per_type=100, process_limit=256),
    DynoSize("Performance-M", 2.5, 11, 8, 25000, max_per_type=10, process_limit=16384, dedicated=True,
             one_off_limit=5),
    DynoSize("Performance-L", 14, 46, 16, 50000, max_per_type=10, process_limit=32768, dedicated=True,
             one_off_limit=5),
)
DEFAULT_SIZE = "standard-1x"  # what a process type runs on until someone resizes it
MAX_DYNOS_PER_APP = 100       # runtime.md §6.8

# Names Heroku retired but its clients and old app.json files still send.
_ALIASES = {"1x": "standard-1x", "2x": "standard-2x", "free": "eco", "hobby": "basic",
            "px": "performance-l", "performance": "performance-l"}
_BY_KEY = {size.key: size for size in SIZES}
_BY_ID = {size.id: size for size in SIZES}


def find(ref: str) -> DynoSize | None:
    key = ref.strip().lower()
    return _BY_KEY.get(_ALIASES.get(key, key)) or _BY_ID.get(key)


def get(ref: str) -> DynoSize:
    """For GET /dyno-sizes/{ref}: 404 when there is no such size."""
    size = find(ref)
    if size is None:
        raise NotFound("Couldn't find that dyno size.", resource="dyno_size")
    return size


def resolve(ref: str) -> DynoSize:
    """For a requested size: 422 naming the sizes there are."""
    size = find(ref)
    if size is None:
        raise InvalidParams(f"No such dyno size as {ref!r}. Use one of: {', '.join(s.key for s in SIZES)}.")
    return size


def of_stored(key: str | None) -> DynoSize:
    """The size a formation row stands for (None: the default)."""
    return find(key or DEFAULT_SIZE) or _BY_KEY[DEFAULT_SIZE]
