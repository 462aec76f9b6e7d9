"""berth ps, ps:scale, ps:type and ps:resize against a live server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.formation.deploying import deploy_over_http

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, Server


def _formation(server: Server, app: str) -> dict[str, tuple[int, str]]:
    return {e["type"]: (e["quantity"], e["size"]) for e in server.api("GET", f"/apps/{app}/formation").json()}


def test_scale_absolute_relative_and_with_a_size(berth: Berth, server: Server, app_name: str) -> None:
    deploy_over_http(server.api, app_name)
    shown = berth("ps:scale", "-a", app_name)
    assert (shown.returncode, shown.stdout) == (0, "web=1:Standard-1X worker=0:Standard-1X\n"), shown.stderr
    scaled = berth("ps:scale", "web=2", "worker+1:standard-2X", "-a", app_name)
    assert scaled.returncode == 0, scaled.stderr
    assert scaled.stdout == "Scaling dynos... done, now running web at 2:Standard-1X, worker at 1:Standard-2X\n"
    assert _formation(server, app_name) == {"web": (2, "Standard-1X"), "worker": (1, "Standard-2X")}
    assert berth("ps:scale", "web-1", "-a", app_name).returncode == 0
    assert _formation(server, app_name)["web"] == (1, "Standard-1X")


def test_scale_refusals_change_nothing(berth: Berth, server: Server, app_name: str,
                                       one_error_line: ErrorLine) -> None:
    deploy_over_http(server.api, app_name)
    before = _formation(server, app_name)
    usage = berth("ps:scale", "web=two", "-a", app_name)
    assert usage.returncode == 2 and "TYPE=N" in usage.stderr
    assert "clock" in one_error_line(berth("ps:scale", "clock=1", "-a", app_name))
    assert "100" in one_error_line(berth("ps:scale", "web=101", "-a", app_name))
    assert "standard-1x" in one_error_line(berth("ps:scale", "web=1:huge", "-a", app_name))
    assert _formation(server, app_name) == before


def test_an_app_without_code_has_no_process_types(berth: Berth, app_name: str, one_error_line: ErrorLine) -> None:
    assert "No process types on" in one_error_line(berth("ps:scale", "-a", app_name))
    assert "Procfile" in one_error_line(berth("ps", "-a", app_name))


def test_type_sets_every_type_or_some_and_resize_is_its_alias(berth: Berth, server: Server, app_name: str,
                                                               one_error_line: ErrorLine) -> None:
    deploy_over_http(server.api, app_name)
    every = berth("ps:type", "standard-2x", "-a", app_name)
    assert every.returncode == 0, every.stderr
    assert _formation(server, app_name) == {"web": (1, "Standard-2X"), "worker": (0, "Standard-2X")}
    lines = every.stdout.splitlines()
    assert lines[0] == f"Scaling dynos on {app_name}... done" and "=== Process Types" in lines
    assert "web     Standard-2X  1" in lines and "Standard-2X  1" in lines  # the totals
    assert berth("ps:resize", "worker=performance-m", "-a", app_name).returncode == 0
    assert _formation(server, app_name)["worker"] == (0, "Performance-M")
    assert "not found in process formation" in one_error_line(berth("ps:type", "clock=eco", "-a", app_name))
    assert _formation(server, app_name)["worker"] == (0, "Performance-M")


def test_ps_shows_the_formation_and_says_no_dynos_run_yet(berth: Berth, server: Server, app_name: str) -> None:
    deploy_over_http(server.api, app_name)
    shown = berth("ps", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == ["=== web (Standard-1X): gunicorn app:app (1)",
                                              "=== worker (Standard-1X): python worker.py (0)"]
    assert "No dynos on" in shown.stdout
