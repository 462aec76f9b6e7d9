"""The rendezvous server's claims against the database: a secret from `POST /apps/{app}/dynos`
(kept only as a digest in `one_off_dynos`) starts that dyno's command from its release's slug, with
the release's config, the client's `env` and `DYNO=run.N`; how it ended is recorded on the row."""
from __future__ import annotations

import json

from berth.db import Database
from berth.platform import one_off_dynos, releases
from berth.platform.models import Slug
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
            slug = session.get(Slug, dyno.release.slug_id)
            config = {**releases.release_config(dyno.release), **json.loads(dyno.env)}
            dyno_id, name = dyno.id, dyno.name
            run = OneOffRun(self.runner, slug.checksum if slug else "", dyno.command, name, config,
                            time_to_live=dyno.time_to_live, tty=dyno.tty)

        def record(result: RunResult | None, why: str) -> None:
            with self.database.transaction() as session:
                one_off_dynos.finish(session, dyno_id, exit_code=result.exit_code if result else None,
                                     why=f"{name} {why}", crashed=result is None or result.timed_out)
        run.on_end = record
        return run
