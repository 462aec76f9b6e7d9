"""The CGI request git http-backend sees: built from scratch, never from the client's headers."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from berth.platform.git import http_backend, repositories
from berth.platform.git.hooks import refused_commands
from berth.platform.git.pushes import ZERO_SHA

APP_ID = str(uuid.uuid4())


def request(**changes: object) -> http_backend.GitRequest:
    fields: dict[str, object] = dict(method="POST", action="git-receive-pack", service=None,
                                     content_type="application/x-git-receive-pack-request",
                                     content_encoding="", content_length=None, git_protocol="",
                                     account_id="acct", remote_addr="127.0.0.1")
    fields.update(changes)
    return http_backend.GitRequest(**fields)  # type: ignore[arg-type]


def test_the_environment_holds_only_what_berth_sets(tmp_path: Path) -> None:
    env = http_backend.cgi_environment(tmp_path, APP_ID, request(
        git_protocol="version=2\nGIT_DIR=/", content_encoding="gzip", content_length=12), 1000)
    assert env["PATH_INFO"] == f"/{APP_ID}.git/git-receive-pack"
    assert env["GIT_PROJECT_ROOT"] == str(tmp_path / "git" / "repos")
    assert "GIT_PROTOCOL" not in env  # not exactly version=N: dropped
    assert env["HTTP_CONTENT_ENCODING"] == "gzip" and env["CONTENT_LENGTH"] == "12"
    assert {k for k in env if k.startswith("HTTP_")} == {"HTTP_CONTENT_ENCODING"}
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert not any(k.startswith(("BERTH_SECRET", "BERTH_DATABASE", "PYTHON")) for k in env)
    assert http_backend.cgi_environment(tmp_path, APP_ID, request(git_protocol="version=2"), 1000)[
        "GIT_PROTOCOL"] == "version=2"


@pytest.mark.parametrize("app_id", ["../x", "x/../../etc", "", "0" * 36])
def test_a_repository_path_comes_only_from_an_app_id(tmp_path: Path, app_id: str) -> None:
    with pytest.raises(ValueError):
        repositories.repository_path(tmp_path, app_id)


@pytest.mark.parametrize("changes, status", [
    ({"method": "GET", "action": "info/refs", "service": None}, 403),        # the dumb protocol
    ({"method": "GET", "action": "info/refs", "service": "git-x"}, 403),
    ({"method": "GET"}, 405),
    ({"content_type": "text/plain"}, 415),
    ({"content_encoding": "deflate"}, 415),
    ({"content_length": 1000 + http_backend.COMMAND_ALLOWANCE + 1}, 413),
])
def test_requests_git_should_not_see_are_refused(changes: dict[str, object], status: int) -> None:
    with pytest.raises(http_backend.RequestRefused) as refused:
        http_backend.check(request(**changes), 1000)
    assert refused.value.status == status and str(refused.value)


def test_only_updates_of_main_or_master_pass_the_pre_receive_check() -> None:
    sha = "a" * 40
    assert refused_commands([(ZERO_SHA, sha, "refs/heads/main"), (sha, sha, "refs/heads/master")]) == []
    refused = refused_commands([(ZERO_SHA, sha, "refs/heads/dev"), (sha, ZERO_SHA, "refs/heads/main"),
                                (ZERO_SHA, sha, "refs/tags/v1"), (ZERO_SHA, sha, "refs/heads/main/x")])
    assert len(refused) == 4
    assert "git push <remote> dev:main" in refused[0] and "Deleting main" in refused[1]
