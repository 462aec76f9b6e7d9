"""builds:cache:purge: asks for the app's name (or takes --confirm APP) as Heroku does, then the cache is gone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from berth.platform.builds.job import cache_dir

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, Server


def filled_cache(server: Server, app: str) -> Path:
    app_id = server.api("GET", f"/apps/{app}").json()["id"]
    directory = cache_dir(Path(server.env["BERTH_DATA_DIR"]), app_id)
    (directory / "pip").mkdir(parents=True)
    (directory / "pip" / "wheel").write_text("cached")
    return directory


def test_purge_with_confirm_and_by_typing_the_name(berth: Berth, server: Server, app_name: str) -> None:
    cache = filled_cache(server, app_name)
    done = berth("builds:cache:purge", "--confirm", app_name, "-a", app_name)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Purging build cache for {app_name}... done\n"
    assert not cache.exists()

    cache = filled_cache(server, app_name)
    typed = berth("builds:cache:purge", "-a", app_name, input=f"{app_name}\n")
    assert typed.returncode == 0, typed.stderr
    assert f"This will delete the build cache for {app_name}" in typed.stderr
    assert not cache.exists()


def test_purge_refused_without_the_right_name(berth: Berth, server: Server, app_name: str,
                                              one_error_line: ErrorLine) -> None:
    cache = filled_cache(server, app_name)
    wrong = berth("builds:cache:purge", "-c", "other-app", "-a", app_name)
    assert one_error_line(wrong) == f"Error: Confirmation 'other-app' did not match {app_name}. The build cache was kept."
    mistyped = berth("builds:cache:purge", "-a", app_name, input="nope\n")
    assert mistyped.returncode == 1 and "did not match" in mistyped.stderr
    nobody = berth("builds:cache:purge", "-a", app_name)  # no terminal, no input
    assert nobody.returncode == 1
    assert f"No confirmation given. Re-run with --confirm {app_name}" in nobody.stderr
    assert (cache / "pip" / "wheel").read_text() == "cached"
    unknown = berth("builds:cache:purge", "--confirm", "no-such-app-here", "-a", "no-such-app-here")
    assert one_error_line(unknown).endswith("(not_found)")
