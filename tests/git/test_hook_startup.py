"""git starts Berth's hook programs twice on every push (pre-receive, post-receive), in a fresh
interpreter each time: what they import is paid on every deploy. They import no ORM or database
driver, and importing Berth's accounts module hashes no password (argon2 takes about a second)."""
from __future__ import annotations

import subprocess
import sys

from tests.live_server import ROOT

HEAVY = ("sqlalchemy", "psycopg", "flask", "marshmallow")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_hook_program_imports_nothing_heavy() -> None:
    done = run_python("import sys\nimport berth.platform.git.hooks\n"
                      f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_importing_accounts_hashes_no_password() -> None:
    done = run_python("import argon2\n"
                      "def refuse(*args, **kwargs):\n    raise SystemExit('a password was hashed at import')\n"
                      "argon2.PasswordHasher.hash = refuse\n"
                      "import berth.accounts\n")
    assert done.returncode == 0, done.stderr
