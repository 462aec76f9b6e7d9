"""Servers run as unprivileged system accounts: created on demand, removable, never root."""
from __future__ import annotations

import os
import pwd
import secrets
import stat
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


@pytest.mark.skipif(os.geteuid() != 0, reason="creating system accounts needs root")
def test_let_through_gives_passage_but_no_listing_of_a_private_data_dir(tmp_path: Path) -> None:
    name = f"berth-t{secrets.token_hex(4)}"
    data = tmp_path / "data"
    own = data / "backends" / "server"
    own.mkdir(parents=True)
    for directory in (tmp_path, data, data / "backends"):
        os.chmod(directory, 0o700)  # as Berth makes its data dir
    (data / "secret.keys").write_text("k")
    os.chmod(data / "secret.keys", 0o600)
    try:
        account = service_account(name)
        account.own(own, 0o700)
        run = dict(env=account.environment(dict(os.environ)), capture_output=True, text=True,
                   **account.popen_kwargs())
        assert subprocess.run(["test", "-x", str(own)], **run).returncode != 0  # blocked before
        account.let_through(own)
        assert subprocess.run(["test", "-x", str(own)], **run).returncode == 0
        assert subprocess.run(["ls", str(data)], **run).returncode != 0  # passage, not listing
        assert subprocess.run(["cat", str(data / "secret.keys")], **run).returncode != 0
        assert stat.S_IMODE(data.stat().st_mode) == 0o701
    finally:
        remove_service_account(name)
