"""What a push to main or master reaches: one function, `push_received`, that the builder replaces.

It runs inside git's post-receive hook, after git stored the commits and moved the branch; what it
writes to `say` reaches the pusher as `remote:` lines while it runs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class PushedRef:
    app_id: str
    old: str   # the branch's commit before the push (ZERO_SHA for a new branch)
    new: str   # the commit pushed
    ref: str   # refs/heads/main or refs/heads/master


def push_received(pushed: PushedRef, say: Callable[[str], None]) -> None:
    """For now: nothing is built. The commit is kept in the app's repository and the pusher is told
    plainly that no build or release follows yet."""
    say(f"Berth received {pushed.new[:7]} on {pushed.ref.removeprefix('refs/heads/')}.")
    say("The build core is not there yet: this push is stored in the app's repository, but nothing "
        "is built or released. Push again once builds are enabled.")
