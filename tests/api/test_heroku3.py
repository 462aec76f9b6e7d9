"""The real `heroku3` client (spec §4) against a real Berth server: gunicorn, two workers."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.live_server import LiveServer, live_server

try:
    import heroku3
    from heroku3.api import Heroku, RateLimitExceeded
except ImportError as exc:  # e.g. heroku3 5.2.1 imports `six` without declaring it
    heroku3 = None
    IMPORT_ERROR: ImportError | None = exc
else:
    IMPORT_ERROR = None

pytestmark = pytest.mark.slow

EMAIL = "h3@example.com"
PASSWORD = "pw-123456789"


@dataclass
class Server:
    url: str
    key: str
    env: dict[str, str]
    live: LiveServer


@pytest.fixture(scope="module", autouse=True)
def heroku3_importable() -> None:
    # A loud failure, not a skip: the client is a pinned dev dependency and must work.
    if IMPORT_ERROR is not None:
        pytest.fail(f"heroku3 cannot be imported ({IMPORT_ERROR}); requirements-dev.txt must "
                    "install what it needs (heroku3 5.2.1 imports six but does not declare it)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # 360 an hour refills a token every 10 s, so one request shows as one fewer remaining however
    # slow the machine is (at the default 4,500 a token comes back every 0.8 s).
    with live_server(tmp_path_factory.mktemp("berth-heroku3"), workers=2, RATE_LIMIT_PER_HOUR="360") as live:
        yield Server(live.url, live.create_user(EMAIL, PASSWORD), live.env, live)


@pytest.fixture
def base_url(server: Server) -> Iterator[str]:
    """heroku3 copies the module constant when a client is built: set it first, restore it after."""
    saved = heroku3.api.HEROKU_URL
    heroku3.api.HEROKU_URL = server.url
    try:
        yield server.url
    finally:
        heroku3.api.HEROKU_URL = saved


@pytest.fixture
def h(server: Server, base_url: str) -> Heroku:
    client = heroku3.from_key(server.key)
    assert client._heroku_url == server.url
    return client


def unique_name(prefix: str = "h3") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def raw(server: Server, method: str, path: str, **kwargs: object) -> requests.Response:
    """A direct call, to check server state independently of heroku3."""
    return requests.request(method, server.url + path, auth=("", server.key), timeout=30,
                            headers={"Accept": "application/vnd.heroku+json; version=3"},
                            **kwargs)  # type: ignore[arg-type]


def test_from_key_authenticates_and_reads_the_account(h: Heroku) -> None:
    assert h.is_authenticated is True
    assert h.account().email == EMAIL
    remaining = h.ratelimit_remaining()
    assert isinstance(remaining, int) and remaining > 0
    assert int(h.rate_limit.remaining) >= 0
    assert h.last_request_id  # heroku3 stores the Request-Id of every answer


def test_a_wrong_key_fails_to_authenticate(server: Server, base_url: str) -> None:
    client = heroku3.from_key("HRKU-not-a-real-key")
    assert client.is_authenticated is False
    with pytest.raises(requests.HTTPError) as failure:
        client.apps()
    assert failure.value.response.status_code == 401
    assert failure.value.response.json()["id"] == "unauthorized"
    # authenticating again with the right key works on the same client
    assert client.authenticate(server.key) is True
    assert client.account().email == EMAIL


def test_app_lifecycle_config_releases_rename_delete(h: Heroku, server: Server) -> None:
    name = unique_name()
    app = h.create_app(name=name)  # heroku3 sends {"name": ..., "stack": "cedar"}
    assert app.name == name and app.id
    assert app.stack is not None and app.stack.name == "berth-bookworm"  # cedar is an alias
    assert name in [a.name for a in h.apps()]  # Range: id ..; ;
    fetched = h.app(name)
    assert fetched.id == app.id and fetched.owner.email == EMAIL
    assert h.app(app.id).name == name

    config = app.config()
    assert config.to_dict() == {}
    config["FOO"] = "bar"
    assert config["FOO"] == "bar"
    assert app.config().to_dict() == {"FOO": "bar"}
    config.update({"BAZ": "qux ü 🚀", "EMPTY": ""})
    assert app.config().to_dict() == {"FOO": "bar", "BAZ": "qux ü 🚀", "EMPTY": ""}
    del config["FOO"]
    assert "FOO" not in config
    assert app.config().to_dict() == {"BAZ": "qux ü 🚀", "EMPTY": ""}
    assert raw(server, "GET", f"/apps/{name}/config-vars").json() == {"BAZ": "qux ü 🚀", "EMPTY": ""}
    whole = app.update_config({"BAZ": None, "NEW": "1"})
    assert whole.to_dict() == {"EMPTY": "", "NEW": "1"}

    releases = app.releases()  # Range: version ..; ;
    assert [r.version for r in releases] == [1, 2, 3, 4, 5]
    descriptions = [r.description for r in releases]
    assert all(descriptions)
    assert "FOO" in descriptions[1] and "Set" in descriptions[1]
    assert "BAZ" in descriptions[2] and "EMPTY" in descriptions[2]
    assert "FOO" in descriptions[3] and "Remove" in descriptions[3]
    assert "BAZ" in descriptions[4] and "NEW" in descriptions[4]
    assert [r.current for r in releases] == [False, False, False, False, True]
    assert releases[-1].user.email == EMAIL
    (newest,) = app.releases(sort="desc", limit=1)  # Range: version ..; order=desc,max=1;
    assert newest.version == 5 and newest.current is True

    assert app.enable_maintenance_mode().maintenance is True
    assert h.app(name).maintenance is True
    assert app.disable_maintenance_mode().maintenance is False  # heroku3 sends {"maintenance": 0}
    assert h.app(name).maintenance is False

    new_name = unique_name("h3-renamed")
    renamed = app.rename(new_name)
    assert renamed.name == new_name and renamed.id == app.id
    assert h.app(new_name).id == app.id
    with pytest.raises(requests.HTTPError) as gone:
        h.app(name)
    assert gone.value.response.status_code == 404
    assert [r.version for r in h.app(new_name).releases()] == [1, 2, 3, 4, 5]  # no release

    assert app.delete() is True
    assert new_name not in [a.name for a in h.apps()]
    with pytest.raises(requests.HTTPError) as deleted:
        h.app(new_name)
    assert deleted.value.response.status_code == 404


def test_duplicate_name_is_already_taken(h: Heroku, server: Server,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    name = unique_name()
    first = h.create_app(name=name)
    # The raw call heroku3 makes: a 422 HTTPError whose text carries the body.
    with pytest.raises(requests.HTTPError) as taken:
        h._http_resource(method="POST", resource=("apps",),
                         data=json.dumps({"name": name, "stack": "cedar"}))
    assert taken.value.response.status_code == 422
    assert "Name is already taken" in str(taken.value)
    assert "Name is already taken" in taken.value.response.json()["message"]
    # create_app matches that text and answers the existing app instead
    again = h.create_app(name=name)
    assert again.id == first.id
    assert "Name is already taken" in capsys.readouterr().out
    assert [a.name for a in h.apps()].count(name) == 1
    # taken by somebody else: heroku3 cannot fetch it after the 422, so create_app fails
    other_key = server.live.create_user("h3-other@example.com")
    theirs = unique_name("h3-theirs")
    created = requests.post(server.url + "/apps", auth=("", other_key), timeout=30,
                            json={"name": theirs})
    assert created.status_code == 201, created.text
    with pytest.raises(requests.HTTPError):
        h.create_app(name=theirs)
    assert theirs not in [a.name for a in h.apps()]
    assert first.delete() is True


def test_lists_follow_next_range_and_honour_limits(h: Heroku) -> None:
    made = [h.create_app(name=unique_name("h3-page")) for _ in range(4)]
    everything = sorted(a.name for a in h.apps())
    assert {a.name for a in made} <= set(everything)
    # heroku3 follows Next-Range on 206 when no limit was given; it must end (no loop)
    followed = [a.name for a in h.apps(valrange="name ..; max=1")]
    assert followed == everything
    followed_ids = [a.id for a in h.apps(valrange="id ..; max=2")]
    assert len(followed_ids) == len(set(followed_ids)) == len(everything)
    # with a limit it takes one page: Range "name ..; order=desc,max=2;"
    top_two = [a.name for a in h.apps(order_by="name", sort="desc", limit=2)]
    assert top_two == sorted(everything, reverse=True)[:2]
    for app in made:
        assert app.delete() is True


def test_rate_limit_header_is_tracked(h: Heroku) -> None:
    h.apps()
    first = h.ratelimit_remaining()
    h.account()
    assert h.ratelimit_remaining() == first - 1


def test_429_raises_rate_limit_exceeded(server: Server, base_url: str, tmp_path: Path) -> None:
    """A separate server with a budget of 2 per hour: heroku3 raises its own exception."""
    with live_server(tmp_path, workers=1, RATE_LIMIT_PER_HOUR="2") as live:
        heroku3.api.HEROKU_URL = live.url
        # from_key calls GET /account/rate-limits, which is free
        client = heroku3.from_key(live.create_user(f"limited-{uuid.uuid4().hex[:6]}@example.com"))
        assert client.is_authenticated is True
        client.account()
        client.account()
        with pytest.raises(RateLimitExceeded) as limited:
            client.account()
        assert "rate_limit" in str(limited.value)
