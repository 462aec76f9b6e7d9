"""One-off dyno records: creating `run.N` for an app's current release, listing and stopping them,
the rendezvous host's single claim of a row by its attach secret's digest, and the sweeps that end
rows nothing runs any more (never attached, outlived, orphaned by a host restart).

A release phase is a one-off dyno too (`release.N`, recorded by release_phase.records with its
phase): the builder runs it, so the rendezvous host never claims, sweeps or orphans those rows."""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Mapping, Sequence

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.db import utcnow
from berth.errors import BerthError, NotFound
from berth.platform import dyno_sizes
from berth.platform.models import App, OneOffDyno, Release, ReleaseStatus, Slug

ATTACH_WINDOW = timedelta(minutes=5)  # an attach secret not used by then never starts its dyno
LIVE_STATES = ("starting", "up")
RUNNING_STATES = ("up", "stopping")  # a process exists (on the host that claimed the row)
# Past its time to live a row's process is stopped by its sandbox; a row still live this long after
# that has no process left (its host died): the sweep ends it.
OUTLIVED_SLACK = timedelta(minutes=2)
RELEASE_TYPE = "release"  # the release phase's dynos: the builder's, never the rendezvous host's
_HOSTED_HERE = OneOffDyno.type != RELEASE_TYPE  # rows the rendezvous host runs


@dataclass(frozen=True)
class Created:
    dyno: OneOffDyno
    secret: str | None  # attached dynos only; shown once, in attach_url


def create(session: Session, app: App, *, command: str, attach: bool, env: Mapping[str, str], size: str,
           time_to_live: int, tty: bool, type: str = "run") -> Created:
    """Record a one-off dyno of the app's current release (its newest succeeded one with code)."""
    release = session.scalars(select(Release).where(
        Release.app_id == app.id, Release.status == ReleaseStatus.SUCCEEDED, Release.slug_id.is_not(None))
        .order_by(Release.version.desc()).limit(1)).first()
    slug = session.get(Slug, release.slug_id) if release else None
    if release is None or slug is None or not slug.checksum:
        raise BerthError(f"{app.name} has no release with code yet: deploy it (git push, or heroku builds:create) "
                         "before running a one-off dyno.", error_id="no_release", status=409)  # the app's state, not the request
    _check_concurrency(session, app, size)
    secret = secrets.token_urlsafe(32) if attach else None
    dyno = add_numbered(session, app.id, lambda number: OneOffDyno(
        app_id=app.id, release_id=release.id, number=number, type=type, command=command, env=json.dumps(dict(env)),
        size=size, attach=attach, tty=tty, time_to_live=time_to_live, state="starting",
        secret_digest=digest(secret) if secret else None))
    return Created(dyno, secret)


def add_numbered(session: Session, app_id: str, make: Callable[[int], OneOffDyno], *, above: int = 0) -> OneOffDyno:
    """Insert the row `make(number)` with the app's next one-off number (above `above`): two
    creations at once may pick the same number, so the unique key decides and the loser retries."""
    for _attempt in range(5):
        highest = session.scalar(select(func.max(OneOffDyno.number)).where(OneOffDyno.app_id == app_id)) or 0
        dyno = make(max(highest, above) + 1)
        try:
            with session.begin_nested():
                session.add(dyno)
                session.flush()
        except IntegrityError:
            continue
        return dyno
    raise BerthError("Too many one-off dynos started at once; try again.", error_id="conflict", status=409)


def _check_concurrency(session: Session, app: App, size: str) -> None:
    """Heroku's limit of one-off dynos of a size running at once per app (eco 1, standard 50,
    performance 5): a loop of `heroku run:detached` cannot fill the machine with sandboxes."""
    wanted = dyno_sizes.of_stored(size)
    live = session.scalars(select(OneOffDyno.size).where(  # a release phase is the builder's to bound
        OneOffDyno.app_id == app.id, OneOffDyno.state.in_((*LIVE_STATES, "stopping")), _HOSTED_HERE))
    if sum(1 for stored in live if dyno_sizes.of_stored(stored) == wanted) >= wanted.one_off_limit:
        raise BerthError(f"Cannot run more than {wanted.one_off_limit} {wanted.name} one-off dynos at once on "
                         f"{app.name}. Stop one (heroku ps:stop run.N) or wait for one to finish.",
                         error_id="cannot_run_above_limit", status=429)


def running(session: Session, app: App) -> list[OneOffDyno]:
    return list(session.scalars(select(OneOffDyno).where(OneOffDyno.app_id == app.id,
                                                         OneOffDyno.state.in_(LIVE_STATES))
                                .order_by(OneOffDyno.number)))


def find(session: Session, app: App, ref: str) -> OneOffDyno:
    """A one-off dyno by name (`run.3`) or id."""
    kind, _, number = ref.rpartition(".")
    query = select(OneOffDyno).where(OneOffDyno.app_id == app.id)
    if kind and number.isdigit():
        query = query.where(OneOffDyno.type == kind, OneOffDyno.number == int(number))
    else:
        query = query.where(OneOffDyno.id == ref)
    dyno = session.scalars(query).first()
    if dyno is None:
        raise NotFound(f"Couldn't find that dyno ({ref}).", resource="dyno")
    return dyno


def request_stop(session: Session, dyno: OneOffDyno, by: str) -> None:
    """Ask its host to stop it (`by`: who asks, an email): a dyno still `starting` never starts; a
    running one is stopped by its host (the rendezvous host, or the builder for a release dyno),
    which watches for the `stopping` state and reads who asked in `ended_because`."""
    if dyno.state in LIVE_STATES:
        dyno.state = "stopping" if dyno.state == "up" else "down"
        dyno.ended_because = f"stopped by {by}"
        dyno.secret_digest = None
        session.flush()


def claim_attached(session: Session, secret: str, host: str = "") -> OneOffDyno | None:
    """The attached dyno `secret` starts, now `up`; None when unknown, used, stopped or expired.
    The row is found by the secret's digest (no byte-by-byte comparison of secrets), and a
    conditional update makes the claim single-use even across processes."""
    found = digest(secret)
    dyno_id = session.scalar(select(OneOffDyno.id).where(
        OneOffDyno.secret_digest == found, OneOffDyno.state == "starting",
        OneOffDyno.created_at >= utcnow() - ATTACH_WINDOW))
    if dyno_id is None:
        return None
    claimed = session.execute(update(OneOffDyno).where(
        OneOffDyno.id == dyno_id, OneOffDyno.secret_digest == found, OneOffDyno.state == "starting")
        .values(state="up", secret_digest=None, host=host or None, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None  # another claim won
    session.expire_all()
    return session.get(OneOffDyno, dyno_id)


def claim_detached(session: Session, host: str = "") -> OneOffDyno | None:
    """The oldest detached dyno waiting to start, now `up` and `host`'s (a conditional update: one
    host wins)."""
    for dyno_id in session.scalars(select(OneOffDyno.id).where(
            OneOffDyno.attach.is_(False), OneOffDyno.state == "starting", _HOSTED_HERE)
            .order_by(OneOffDyno.created_at).limit(5)):
        claimed = session.execute(update(OneOffDyno).where(OneOffDyno.id == dyno_id, OneOffDyno.state == "starting")
                                  .values(state="up", host=host or None, updated_at=utcnow())
                                  .execution_options(synchronize_session=False))
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            session.expire_all()
            return session.get(OneOffDyno, dyno_id)
    return None


def finish(session: Session, dyno_id: str, *, exit_code: int | None, why: str, crashed: bool) -> None:
    session.execute(update(OneOffDyno).where(OneOffDyno.id == dyno_id).values(
        state="crashed" if crashed else "down", exit_code=exit_code, ended_because=why[:255],
        secret_digest=None, updated_at=utcnow()))


def stop_requests(session: Session, dyno_ids: Sequence[str]) -> list[str]:
    """Those of `dyno_ids` (the host's running dynos) someone asked to stop."""
    if not dyno_ids:
        return []
    return list(session.scalars(select(OneOffDyno.id).where(OneOffDyno.id.in_(list(dyno_ids)),
                                                             OneOffDyno.state == "stopping")))


def sweep_never_attached(session: Session) -> list[OneOffDyno]:
    """Attached dynos whose secret was not used within ATTACH_WINDOW: `down`, so the dyno list
    stops showing them. Returns them (the host says so in the app's log)."""
    stale = list(session.scalars(select(OneOffDyno).where(
        OneOffDyno.attach.is_(True), OneOffDyno.state == "starting",
        OneOffDyno.created_at < utcnow() - ATTACH_WINDOW)))
    return _end(session, stale, "down", "was never attached to (its attach URL expired)")


def sweep_outlived(session: Session) -> list[OneOffDyno]:
    """Live dynos well past their time to live (counted from creation): their process, if any, was
    stopped at that time, so nothing will record their end: `crashed`, and say why."""
    now = utcnow()
    outlived = [dyno for dyno in session.scalars(select(OneOffDyno).where(
        OneOffDyno.state.in_((*LIVE_STATES, "stopping")), _HOSTED_HERE))
        if dyno.created_at + timedelta(seconds=dyno.time_to_live) + OUTLIVED_SLACK < now]
    return _end(session, outlived, "crashed", "outlived its time to live")


def orphan_running(session: Session, host: str = "") -> list[OneOffDyno]:
    """At a rendezvous host's start (one per node): dynos it ran before it stopped had their processes
    end with it; `crashed`, with the reason. Those another node's host runs are left to it (rows
    claimed before hosts were named belong to whichever host starts first)."""
    mine = or_(OneOffDyno.host == host, OneOffDyno.host.is_(None)) if host else true()
    orphans = list(session.scalars(select(OneOffDyno).where(OneOffDyno.state.in_(RUNNING_STATES), _HOSTED_HERE,
                                                            mine)))
    return _end(session, orphans, "crashed", "ended when the rendezvous host restarted")


def _end(session: Session, dynos: list[OneOffDyno], state: str, why: str) -> list[OneOffDyno]:
    for dyno in dynos:
        dyno.state, dyno.secret_digest, dyno.ended_because = state, None, f"{dyno.name} {why}"
    session.flush()
    return dynos


def age_seconds(dyno: OneOffDyno) -> float:
    return max(0.0, (utcnow() - dyno.created_at).total_seconds())


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
