"""The local backend's dyno lifecycle: start from a slug with the dyno's environment, up once a web
dyno listens on its own $PORT, crashed on any exit of its own, down when stopped (R12 after the grace),
one live dyno per name."""
from __future__ import annotations

import urllib.request
import uuid

import pytest

from berth.platform.dynos.backend import DuplicateDyno, DynoError, DynoSpec, OutputLine, UnknownDyno
from berth.platform.slugs import pack

from .conftest import eventually

pytestmark = pytest.mark.slow


def collect(backend, dyno_id: str) -> list[OutputLine]:
    lines: list[OutputLine] = []
    follower = backend.follow(dyno_id, lines.append)
    assert follower.wait(60), "the dyno's output did not end"
    return lines


def app_texts(lines: list[OutputLine]) -> list[str]:
    return [line.text for line in lines if line.source == "app"]


def test_a_web_dyno_gets_its_env_its_own_port_and_is_up_once_it_listens(backend, checksum) -> None:
    app = str(uuid.uuid4())
    spec = DynoSpec(app_id=app, name="web.1", slug_checksum=checksum, web=True,
                    env={"GREETING": "hi", "DYNO": "web.99", "PORT": "1"},
                    command='echo "$DYNO $PORT $GREETING $ORDER $HOME $(id -un)"; echo scratch > /app/written; '
                            'exec python3 -m http.server "$PORT" --bind 0.0.0.0')
    status = backend.start(spec)
    other = backend.start(DynoSpec(app_id=app, name="web.2", slug_checksum=checksum, web=True,
                                   command='exec python3 -m http.server "$PORT"'))
    assert status.address and other.address and status.address != other.address
    eventually(lambda: backend.status(status.id).state == "up", what="web.1 up")
    eventually(lambda: backend.status(other.id).state == "up", what="web.2 up")  # else its port may refuse
    with urllib.request.urlopen(f"http://{status.address}/index.html", timeout=10) as response:
        assert response.read() == b"hello from the slug\n"
    with urllib.request.urlopen(f"http://{status.address}/written", timeout=10) as response:
        assert response.read() == b"scratch\n"  # /app is writable, and private: web.2 has no such file
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://{other.address}/written", timeout=10)

    with pytest.raises(DuplicateDyno):
        backend.start(spec)

    port = status.address.split(":")[1]
    stopped = backend.stop(status.id, grace=5)
    assert (stopped.state, stopped.exit_status) == ("down", 143)
    lines = collect(backend, status.id)
    assert app_texts(lines)[0] == f"web.1 {port} hi profile.d,profile /app berth-sandbox"
    heroku = [line.text for line in lines if line.source == "heroku"]
    assert heroku == ["Starting process with command `" + spec.command + "`", "State changed from starting to up",
                      "Stopping all processes with SIGTERM", "Process exited with status 143",
                      "State changed from up to down"]
    assert sorted(s.name for s in backend.list(app)) == ["web.1", "web.2"]

    again = backend.start(spec)  # a stopped name may start again
    assert again.id != status.id
    for dyno in (again, other):
        backend.stop(dyno.id, grace=5)
    backend.remove(status.id)
    with pytest.raises(UnknownDyno):
        backend.status(status.id)


def test_any_exit_of_its_own_is_a_crash_with_its_status(backend, checksum) -> None:
    status = backend.start(DynoSpec(app_id="a", name="worker.1", slug_checksum=checksum,
                                    command="echo bye; exit 3"))
    eventually(lambda: backend.status(status.id).state == "crashed", what="the crash")
    assert backend.status(status.id).exit_status == 3
    lines = collect(backend, status.id)
    assert app_texts(lines) == ["bye"]
    assert [line.text for line in lines][-2:] == ["Process exited with status 3", "State changed from up to crashed"]


def test_a_dyno_that_ignores_sigterm_is_killed_after_the_grace_with_r12(backend, checksum) -> None:
    status = backend.start(DynoSpec(app_id="a", name="worker.2", slug_checksum=checksum,
                                    command="trap 'echo got TERM' TERM; echo ready; while true; do sleep 0.1; done"))
    eventually(lambda: "ready" in app_texts(_snapshot(backend, status.id)), what="the dyno's start")
    stopped = backend.stop(status.id, grace=1)
    assert (stopped.state, stopped.exit_status) == ("down", 137)
    texts = [line.text for line in collect(backend, status.id)]
    assert "got TERM" in texts
    assert any(text.startswith("Error R12 (Exit timeout)") for text in texts), texts


def test_bad_requests_are_refused(backend, checksum) -> None:
    with pytest.raises(DynoError, match="invalid dyno name"):
        DynoSpec(app_id="a", name="../web.1", slug_checksum=checksum, command="true")
    with pytest.raises(DynoError, match="cannot prepare the slug"):
        backend.start(DynoSpec(app_id="a", name="web.3", slug_checksum="0" * 64, command="true"))
    with pytest.raises(UnknownDyno):
        backend.stop(str(uuid.uuid4()))
    with pytest.raises(UnknownDyno):
        backend.status("../../etc")


def _snapshot(backend, dyno_id: str) -> list[OutputLine]:
    lines: list[OutputLine] = []
    backend.follow(dyno_id, lines.append).close()
    return lines


def test_a_slug_is_unpacked_once_for_its_dynos_and_swept_after_the_last(backend, store, data_dir, tmp_path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "only-here").write_text("x")
    packed = pack(app, tmp_path / "slug.tgz")
    checksum = store.put(packed.path, packed.checksum)
    dynos = [backend.start(DynoSpec(app_id="sweep", name=f"worker.{n}", slug_checksum=checksum,
                                    command="cat /app/only-here; echo; rm /app/only-here")) for n in (1, 2)]
    assert [entry.name for entry in (data_dir / "dyno-slugs").iterdir()].count(checksum) == 1
    for dyno in dynos:  # each removed its own copy only
        assert app_texts(collect(backend, dyno.id)) == ["x"]
    assert (data_dir / "dyno-slugs" / checksum / "only-here").is_file()
    backend.remove(dynos[0].id)
    assert (data_dir / "dyno-slugs" / checksum).is_dir()
    backend.remove(dynos[1].id)
    assert not (data_dir / "dyno-slugs" / checksum).exists()
