"""`berth login` against the sign-in throttle the API shares with the sign-in page."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from berth.auth import FAILURES_PER_EMAIL
from tests.live_server import ROOT

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, Server

EMAIL = "throttled@example.com"  # its own account: the session's user must stay able to sign in
PASSWORD = "pw-throttled-123"


def test_login_after_too_many_wrong_passwords_says_so_and_when_to_retry(
        berth: Berth, server: Server, one_error_line: ErrorLine) -> None:
    made = subprocess.run([sys.executable, "-m", "berth.admin", "create-user", EMAIL, "--password", PASSWORD],
                          cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    for _ in range(FAILURES_PER_EMAIL):
        wrong = berth("login", "--email", EMAIL, "--password", "wrong-password", key=None)
        assert "(unauthorized)" in one_error_line(wrong)
    refused = one_error_line(berth("login", "--email", EMAIL, "--password", PASSWORD, key=None))
    assert "Too many failed sign-ins" in refused and "minute" in refused and "(rate_limit)" in refused, refused
    assert not berth.netrc.exists()
