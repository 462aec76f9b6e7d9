"""The one-line cause of a failed build, for its API record, picked out of the buildpacks' output."""
from __future__ import annotations

from berth.platform.buildpack_runner.failure import FailureSummary


def summarise(*lines: str) -> tuple[str | None, list[str]]:
    passed: list[str] = []
    seen = FailureSummary(passed.append)
    for line in lines:
        seen(line)
    return seen.summary(), passed


def test_the_first_error_block_is_the_cause_and_every_line_is_passed_on() -> None:
    lines = (" !     Warning: this process runs without a memory limit (no cgroup).",
             "-----> Building", " !     No default language could be detected for this app.",
             "       HINT: add a Procfile.", "", " !     Push rejected, failed to compile app.")
    summary, passed = summarise(*lines)
    assert summary == "No default language could be detected for this app. HINT: add a Procfile."
    assert passed == list(lines)


def test_the_tools_own_error_line_is_kept_with_a_see_above_message() -> None:
    summary, _ = summarise("       ERROR: Invalid requirement: 'x y' (from line 2 of requirements.txt)",
                           " !     pip could not install requirements.txt: see the error above.",
                           " !     Push rejected, failed to compile Python app.")
    assert summary == ("pip could not install requirements.txt: see the error above. "
                       "(ERROR: Invalid requirement: 'x y' (from line 2 of requirements.txt))")


def test_output_without_an_error_line_has_no_summary() -> None:
    assert summarise("-----> Building", "compile: exit 1")[0] is None
