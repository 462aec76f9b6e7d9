"""The rendezvous server's claims against the database: a secret from `POST /apps/{app}/dynos`
(kept only as a digest in `one_off_dynos`) starts that dyno's command from its release's slug, with
the release's config, the client's `env` and `DYNO=run.N`; how it ended is recorded on the row."""
from __future__ import annotations

import json

from sqlalchemy.orm import Session

from berth.db import Database
from berth.platform import one_off_dynos, releases
from berth.platform.logs.app_log import AppLog
from berth.platform.models import OneOffDyno, Slug
from berth.platform.one_off import OneOffRun
from berth.platform.slug_runs import RunResult, SlugRunner


class DatabaseTickets:
    """What RendezvousServer asks for `claim(secret)`: the one-off dyno that secret starts, once."""

    def __init__(self, database: Database, runner: SlugRunner) -> None:
        self.database, self.runner = database, runner

    def claim(self, secret: str) -> OneOffRun | None:
        with self.database.transaction() as session:
            dyno = one_off_dynos.claim_attached(session, secret)
            if dyno is None:
                return None
            dyno_id, name, run = dyno.id, dyno.name, self._run_of(session, dyno)

        def record(result: RunResult | None, why: str) -> None:
            with self.database.transaction() as session:
                one_off_dynos.finish(session, dyno_id, exit_code=result.exit_code if result else None,
                                     why=f"{name} {why}", crashed=result is None or result.timed_out)
        run.on_end = record
        return run

    def run_next_detached(self) -> bool:
        """Run the oldest waiting detached dyno (`heroku run:detached`) to its end, its output in the
        app's log as `app[run.N]` and its state changes as `heroku[run.N]`; False when none waits."""
        with self.database.transaction() as session:
            dyno = one_off_dynos.claim_detached(session)
            if dyno is None:
                return False
            dyno_id, name, app_id, run = dyno.id, dyno.name, dyno.app_id, self._run_of(session, dyno)
        log = AppLog(self.database, app_id, name)
        log.line(f"Starting process with command `{run.command}`", source="heroku")
        log.line("State changed from starting to up", source="heroku")
        outcome: list[tuple[RunResult | None, str]] = []
        run.on_end = lambda result, why: outcome.append((result, why))
        try:
            run.run_detached(log.line)
        except Exception:  # noqa: BLE001 - the reason is in outcome, and reaches the log below
            pass
        result, why = outcome[-1] if outcome else (None, "could not start")
        log.line(f"Process {why}", source="heroku")
        # Heroku's words for a one-off whatever its status: the status is on the line before.
        log.line("State changed from up to complete" if result else "State changed from up to crashed",
                 source="heroku")
        log.flush()
        with self.database.transaction() as session:
            one_off_dynos.finish(session, dyno_id, exit_code=result.exit_code if result else None,
                                 why=f"{name} {why}", crashed=result is None or result.timed_out)
        return True

    def _run_of(self, session: Session, dyno: OneOffDyno) -> OneOffRun:
        slug = session.get(Slug, dyno.release.slug_id)
        config = {**releases.release_config(dyno.release), **json.loads(dyno.env)}
        return OneOffRun(self.runner, slug.checksum if slug else "", dyno.command, dyno.name, config,
                         time_to_live=dyno.time_to_live, tty=dyno.tty)
