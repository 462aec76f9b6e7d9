"""What a push to main or master reaches: `push_received`, called by git's pre-receive hook before
the branch moves, so that a failed build rejects the push (as on Heroku) and leaves the branch and
the app's release as they were.

The push is handed to the builder process (berth.platform.builds.push_protocol); what it prints
reaches the pusher as `remote:` lines while the build runs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from berth.platform.builds.push_protocol import hand_over

ZERO_SHA = "0" * 40
# The branches a push may update (Heroku builds only these).
DEPLOY_BRANCHES = ("refs/heads/main", "refs/heads/master")


@dataclass(frozen=True)
class PushedRef:
    app_id: str
    account_id: str  # the pusher (git http-backend's REMOTE_USER)
    old: str   # the branch's commit before the push (ZERO_SHA for a new branch)
    new: str   # the commit pushed
    ref: str   # refs/heads/main or refs/heads/master


def push_received(pushed: PushedRef, git_root: Path, say: Callable[[str], None],
                  write: Callable[[bytes], None]) -> bool:
    """Builds the pushed commit; True when the push may go in (the build succeeded, or no builder
    runs and the pusher was told that nothing was built)."""
    say(f"Berth received {pushed.new[:7]} on {pushed.ref.removeprefix('refs/heads/')}: building.")
    status = hand_over(git_root, {"app_id": pushed.app_id, "account_id": pushed.account_id,
                                  "old": pushed.old, "new": pushed.new, "ref": pushed.ref}, say, write)
    if status is None:
        return True
    if status != "succeeded":
        say(" !     Push rejected, failed to compile app. The branch and the app's release are unchanged.")
        return False
    say(f"Verifying deploy... done.")
    return True
