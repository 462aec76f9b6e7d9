"""One dyno's output into its app's log stream: `app[web.1]` for what it prints, `heroku[web.1]` for the
platform's notices about it (state changes, R10/R14/R15, L10), each line with the time it was written.

The runner makes a forwarder for every dyno it runs. Where the forwarding has got to is kept with the
dyno's records in the backend (`save_position`), saved once the lines up to it are committed to the
log store, so a forwarder made again for the same dyno (after a runner restart) resumes right after
the last line forwarded: nothing is repeated and nothing written meanwhile is lost. (A runner killed
between a commit and the save repeats at most that one batch.)
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from berth.db import Database
from berth.platform.dynos.backend import DynoBackend, DynoError, DynoStatus, OutputLine
from berth.platform.logs.app_log import AppLog

__all__ = ["OutputForwarder", "CONSUMER"]

log = logging.getLogger(__name__)
CONSUMER = "log-forwarder"  # the name its position is saved under
FLUSH_LINES = 500  # lines per batch into the log store at most
FLUSH_SECONDS = 0.05  # a line waits for its batch this long at most


class OutputForwarder:
    def __init__(self, database: Database, backend: DynoBackend, status: DynoStatus, *,
                 data_dir: Path | None = None) -> None:
        """With Berth's `data_dir`, tails of the app's stream are woken as lines are committed."""
        self.backend, self.status = backend, status
        self._app_log = AppLog(database, status.app_id, status.name, on_written=self._written, data_dir=data_dir,
                               flush_lines=FLUSH_LINES, flush_seconds=FLUSH_SECONDS)
        self._follower = backend.follow(status.id, self._forward,
                                        position=backend.saved_position(status.id, CONSUMER))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the dyno has ended and all its lines are in the log stream (True), or `timeout`."""
        if not self._follower.wait(timeout):
            return False
        self._app_log.flush()
        return True

    def close(self) -> None:
        """Stop forwarding: the lines already taken from the backend are written, the rest stay for
        the next forwarder of this dyno."""
        self._follower.close()
        self._follower.wait(30)
        self._app_log.close()

    @property
    def dropped(self) -> int:
        return self._follower.dropped

    def _forward(self, line: OutputLine) -> None:
        self._app_log.line(line.text, source=line.source, mark=line.position,
                           logged_at=datetime.fromtimestamp(line.time, timezone.utc))

    def _written(self, position: object) -> None:
        try:
            self.backend.save_position(self.status.id, CONSUMER, str(position))
        except DynoError as exc:  # removed meanwhile: nobody will resume it
            log.info("not saving the log position of dyno %s: %s", self.status.id, exc)
