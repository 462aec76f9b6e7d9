"""Servers run as unprivileged system accounts: created on demand, removable, never root."""
from __future__ import annotations

import os
import pwd
import secrets
import subprocess
from pathlib import Path

import pytest

from berth.supervise.accounts import remove_service_account, service_account


@pytest.mark.parametrize("name", ["root", "berth-", "berth-UPPER", "berth-a/b", "berth-" + "x" * 26, "postgres"])
def test_names_outside_berths_namespace_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        service_account(name)
    with pytest.raises(ValueError):
        remove_service_account(name)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating system accounts needs root")
def test_an_account_is_made_once_and_a_child_runs_as_it_without_roots_groups(tmp_path: Path) -> None:
    name = f"berth-t{secrets.token_hex(4)}"
    try:
        account = service_account(name)
        assert account.switches and account.uid != 0 and account.gid != 0
        entry = pwd.getpwnam(name)
        assert entry.pw_shell.endswith(("nologin", "false"))
        assert service_account(name).uid == account.uid  # found, not made again
        target = tmp_path / "data"
        target.mkdir()
        (target / "file").write_text("x")
        account.own_tree(target)
        assert (target / "file").stat().st_uid == account.uid
        done = subprocess.run(["sh", "-c", "id -u; id -G"], capture_output=True, text=True, check=True,
                              env=account.environment(dict(os.environ)), **account.popen_kwargs())
        uid, groups = done.stdout.splitlines()
        assert int(uid) == account.uid
        assert groups.split() == [str(account.gid)]  # root's supplementary groups are dropped
    finally:
        remove_service_account(name)
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
