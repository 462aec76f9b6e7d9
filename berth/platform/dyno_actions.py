"""Users' requests to restart or stop dynos: every dyno, one process type, or one dyno.

A request about formation dynos is recorded as a `DynoAction` row for the runner, which carries it
out (a restart replaces the dynos; a stopped formation dyno is started again, as on Heroku) and is
nudged once the row is committed. One-off dynos are never restarted: restarting or stopping one
asks its host (the rendezvous host; the builder for a release phase's `release.N`) to stop it,
except that a release dyno's restart is refused (it would have to run the release command again).
Each request leaves an `app[api]` line in the app's log (`Restart web.1 by user@example.com`).
Nothing here starts or signals a process."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import event
from sqlalchemy.orm import Session

from berth.accounts import Account
from berth.errors import InvalidParams, NotFound
from berth.jobs.wakeup import nudge_rendezvous, nudge_runner, signal_waiters
from berth.platform import dynos_view, formation, one_off_dynos
from berth.platform.logs import store
from berth.platform.models import App, DynoAction, OneOffDyno

Action = Literal["restart", "stop"]


@dataclass(frozen=True)
class Targets:
    """What a request names, resolved: the formation dynos' type and/or name for the runner (both
    None: every formation dyno), and the one-off dynos to stop; `label` names them in the log."""

    label: str | None
    type: str | None
    name: str | None
    one_offs: tuple[str, ...]  # one-off dyno ids
    for_runner: bool


def request(session: Session, data_dir: Path, app: App, account: Account, action: Action,
            ref: str | None, *, kind: Literal["dyno", "type"] = "dyno") -> None:
    """Restart or stop what `ref` names (a dyno name or id, or a process type; None: every dyno,
    for a restart). `ref` was validated by DynoTargetSchema; an unknown one is a 404 and nothing
    is recorded. The runner is nudged only once the caller's transaction commits."""
    targets = _resolve(session, app, ref, kind)
    one_offs = [session.get_one(OneOffDyno, dyno_id) for dyno_id in targets.one_offs]
    if action == "restart":
        _refuse_release_dynos(one_offs)
    for dyno in one_offs:
        one_off_dynos.request_stop(session, dyno, account.email)
    if one_offs:  # their hosts stop the processes once they see `stopping`
        event.listen(session, "after_commit", lambda _session: _wake_hosts(data_dir, targets.one_offs), once=True)
    if targets.for_runner:
        session.add(DynoAction(app_id=app.id, action=action, type=targets.type, name=targets.name,
                               user_id=account.id))
        event.listen(session, "after_commit", lambda _session: nudge_runner(data_dir), once=True)
    said = "Restart" if action == "restart" and (targets.for_runner or not targets.one_offs) else "Stop"
    subject = f" {targets.label}" if targets.label else ""
    store.append(session, app.id, [store.Entry("app", "api", f"{said}{subject} by {account.email}")])
    session.flush()


def _refuse_release_dynos(one_offs: list[OneOffDyno]) -> None:
    for dyno in one_offs:
        if dyno.type == one_off_dynos.RELEASE_TYPE:
            raise InvalidParams(
                f"{dyno.name} runs the release command of v{dyno.release.version} and cannot be restarted: a "
                f"release phase runs once. Stop it with `heroku ps:stop {dyno.name}` (the release fails and the "
                "previous release stays current), then deploy again or roll back to run the command again.")


def _wake_hosts(data_dir: Path, dyno_ids: tuple[str, ...]) -> None:
    nudge_rendezvous(data_dir)
    for dyno_id in dyno_ids:  # a builder running a release dyno waits on its id
        signal_waiters(data_dir, dyno_id)


def _resolve(session: Session, app: App, ref: str | None, kind: str) -> Targets:
    if ref is None:
        return Targets(None, None, None, (), True)
    views = dynos_view.app_dynos(session, app)
    if kind == "dyno" and (dynos_view.is_id(ref) or "." in ref):
        named = [view for view in views if ref in (view.id, view.name)]
        if not named:
            raise NotFound(f"Couldn't find that dyno ({ref}). List the app's dynos with berth ps or heroku ps.",
                           resource="dyno")
        dyno = named[0]
        if dyno.one_off:
            return Targets(dyno.name, None, None, (dyno.id,), False)
        return Targets(dyno.name, dyno.type, dyno.name, (), True)
    one_offs = tuple(view.id for view in views if view.one_off and view.type == ref)
    formation_types = set(formation.process_types(session, app)[0])
    has_formation = ref in formation_types or any(not view.one_off and view.type == ref for view in views)
    if not one_offs and not has_formation:
        known = ", ".join(sorted(formation_types)) or "none"
        raise NotFound(f"Couldn't find that process type ({ref}). Process types of the current release: {known}.",
                       resource="formation")
    return Targets(ref, ref, None, one_offs, has_formation)
