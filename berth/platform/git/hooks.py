"""The hook programs git runs on a push (installed by repositories.install_hooks; never a tenant's).

pre-receive runs before git applies anything: a push that touches any ref other than main or master,
or deletes one, is refused whole, with a message, and git then discards its objects too. Otherwise
the deploy branch's new commit goes to pushes.push_received, which builds it: a failed build
refuses the push the same way.
post-receive runs after the refs moved: HEAD is pointed at a deploy branch that exists.
Lines written to stdout reach the pusher as `remote:` lines.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

# Only light modules: git starts this program twice on every push (no database, no ORM here).
from berth.platform.git.pushes import DEPLOY_BRANCHES, ZERO_SHA, PushedRef, push_received
from berth.platform.builds.push_protocol import write_stdout


def refused_commands(lines: list[tuple[str, str, str]]) -> list[str]:
    """A message per command that is not an update of main or master."""
    messages = []
    for _old, new, ref in lines:
        if ref not in DEPLOY_BRANCHES:
            messages.append(f"Pushing to {ref} is not allowed: Berth deploys only main or master. "
                            f"Push your branch as main instead: git push <remote> {_short(ref)}:main")
        elif new == ZERO_SHA:
            messages.append(f"Deleting {_short(ref)} is not allowed: it holds the app's deployed code.")
    return messages


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


def _read_commands(stream: TextIO) -> list[tuple[str, str, str]]:
    commands = []
    for line in stream:
        old, new, ref = line.rstrip("\n").split(" ", 2)
        commands.append((old, new, ref))
    return commands


def _say(line: str) -> None:
    print(line, flush=True)


def pre_receive(commands: list[tuple[str, str, str]], app_id: str, account_id: str, git_root: Path) -> int:
    messages = refused_commands(commands)
    for message in messages:
        _say(message)
    if messages:
        _say("Nothing was changed.")
        return 1
    for old, new, ref in commands[-1:]:  # main and master in one push: the last one is built
        pushed = PushedRef(app_id=app_id, account_id=account_id, old=old, new=new, ref=ref)
        if not push_received(pushed, git_root, _say, _write):
            return 1
    return 0


def _write(data: bytes) -> None:
    sys.stdout.flush()
    write_stdout(data)


def post_receive(commands: list[tuple[str, str, str]]) -> int:
    for _old, new, ref in commands:
        if ref in DEPLOY_BRANCHES and new != ZERO_SHA:
            _point_head_at(ref)
    return 0


def _point_head_at(ref: str) -> None:
    """A clone checks out HEAD: when it names a branch that does not exist (main, and only master
    was pushed), point it at the branch pushed."""
    head = subprocess.run(["git", "symbolic-ref", "HEAD"], capture_output=True, text=True)
    exists = subprocess.run(["git", "rev-parse", "--verify", "--quiet", head.stdout.strip() or "HEAD"],
                            capture_output=True)
    if exists.returncode != 0:
        subprocess.run(["git", "symbolic-ref", "HEAD", ref], capture_output=True)


def main(name: str, git_root: str) -> int:
    app_id = os.environ.get("BERTH_APP_ID", "")
    account_id = os.environ.get("REMOTE_USER", "")
    commands = _read_commands(sys.stdin)
    if name == "pre-receive":
        return pre_receive(commands, app_id, account_id, Path(git_root))
    if name == "post-receive":
        return post_receive(commands)
    _say(f"Berth has no {name} hook.")
    return 1
