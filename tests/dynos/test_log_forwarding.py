"""OutputForwarder: a real dyno's output into the app's log stream (SQLite and PostgreSQL) as
`app[<dyno>]` and `heroku[<dyno>]` lines with the times they were written; a forwarder made again for
the same dyno (a runner restart) neither repeats nor loses a line, and lines gone meanwhile are
accounted for with an L10 line."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from flask import Flask
from sqlalchemy import select

from berth.platform.dynos.backend import DynoSpec
from berth.platform.dynos.local import LocalBackend
from berth.platform.dynos.log_forwarding import OutputForwarder
from berth.platform.logs.store import format_line
from berth.platform.logs.models import LogLine
from tests.conftest import Api, User

from .conftest import eventually

pytestmark = pytest.mark.slow


def stream(app: Flask, app_id: str) -> list[LogLine]:
    with app.extensions["berth.database"].session(write=False) as session:
        return list(session.scalars(select(LogLine).where(LogLine.app_id == app_id).order_by(LogLine.id)))


def texts(lines: list[LogLine], source: str = "app") -> list[str]:
    return [line.message for line in lines if line.source == source]


@pytest.fixture
def app_id(api: Api, alice: User) -> str:
    created = api.post("/apps", alice, json={"name": f"fwd-{int(time.time() * 1000) % 10**8}"})
    assert created.status_code == 201, created.json
    return created.json["id"]


def test_a_dynos_lines_enter_the_stream_with_their_source_dyno_and_own_time(app: Flask, app_id, backend,
                                                                            checksum) -> None:
    status = backend.start(DynoSpec(app_id=app_id, name="worker.1", slug_checksum=checksum,
                                    command="echo hello; sleep 1; echo world >&2; exit 3"))
    eventually(lambda: backend.status(status.id).state == "crashed", what="the dyno's end")
    time.sleep(1)
    forwarding_began = datetime.now(timezone.utc)
    forwarder = OutputForwarder(app.extensions["berth.database"], backend, status)
    assert forwarder.wait(30)
    lines = stream(app, app_id)
    shown = [format_line(line).split(" ", 1)[1] for line in lines]
    assert "app[worker.1]: hello" in shown and "app[worker.1]: world" in shown
    assert shown.index("app[worker.1]: hello") < shown.index("app[worker.1]: world")
    assert shown[-2:] == ["heroku[worker.1]: Process exited with status 3",
                          "heroku[worker.1]: State changed from up to crashed"]
    assert shown[0] == "heroku[worker.1]: Starting process with command `echo hello; sleep 1; echo world >&2; exit 3`"
    by_text = {line.message: line.logged_at for line in lines}
    assert by_text["world"] < forwarding_began  # when the dyno wrote it, not when it was forwarded
    assert 0.8 < (by_text["world"] - by_text["hello"]).total_seconds() < 3
    forwarder.close()


def test_a_forwarder_made_again_resumes_right_after_the_last_line_forwarded(app: Flask, app_id, backend, data_dir,
                                                                            store, stack, checksum) -> None:
    status = backend.start(DynoSpec(app_id=app_id, name="web.1", slug_checksum=checksum,
                                    command='for n in $(seq 1 400); do echo "line $n"; sleep 0.01; done'))
    database = app.extensions["berth.database"]
    first = OutputForwarder(database, backend, status)
    eventually(lambda: len(texts(stream(app, app_id))) >= 50, what="the first forwarded lines")
    first.close()  # the runner stops; the dyno writes on
    stopped_at = len(texts(stream(app, app_id)))
    time.sleep(1)
    restarted = LocalBackend(data_dir, store, stack=stack)  # a new runner process's backend
    second = OutputForwarder(database, restarted, restarted.status(status.id))
    assert second.wait(60)
    lines = stream(app, app_id)
    assert texts(lines) == [f"line {n}" for n in range(1, 401)]  # each once, in order
    assert stopped_at < 400
    assert texts(lines, "heroku").count("State changed from starting to up") == 1
    assert texts(lines, "heroku")[-1] == "State changed from up to crashed"
    second.close()


def test_lines_gone_before_a_forwarder_resumes_are_reported_with_l10(app: Flask, app_id, data_dir, store, stack,
                                                                    checksum) -> None:
    small = LocalBackend(data_dir, store, stack=stack, output_rotate_bytes=64 * 1024)
    status = small.start(DynoSpec(app_id=app_id, name="worker.2", slug_checksum=checksum,
                                  command="echo first; sleep 2; seq 1 50000"))  # ~3 MB: dozens of rotations
    database = app.extensions["berth.database"]
    first = OutputForwarder(database, small, status)
    eventually(lambda: "first" in texts(stream(app, app_id)), what="the first line")
    first.close()
    eventually(lambda: small.status(status.id).state == "crashed", what="the dyno's end")
    second = OutputForwarder(database, small, status)
    assert second.wait(60)
    lines = stream(app, app_id)
    notices = [text for text in texts(lines, "heroku") if text.startswith("Error L10 (output buffer overflow): ")]
    assert len(notices) == 1 and second.dropped > 40_000
    assert notices[0].startswith(f"Error L10 (output buffer overflow): {second.dropped} messages dropped since ")
    assert texts(lines).count("first") == 1 and texts(lines)[-1] == "50000"
    second.close()
    small.remove(status.id)
