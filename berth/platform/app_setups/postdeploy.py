"""app.json's `scripts.postdeploy`, run from the release's slug by the one launcher of commands from
a slug (berth.platform.slug_runs), as a one-off dyno `postdeploy` would be on Heroku."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from berth.platform.app_setups.job import PostdeployResult, PostdeployRun
from berth.platform.slug_runs import SlugRunner
from berth.platform.slug_store import SlugStore


class SlugPostdeploy:
    def __init__(self, store: SlugStore, data_dir: Path, timeout_seconds: float) -> None:
        self.store, self.scratch, self.timeout_seconds = store, data_dir / "runs", timeout_seconds

    def __call__(self, run: PostdeployRun, on_line: Callable[[str], None]) -> PostdeployResult:
        result = SlugRunner(self.store, self.scratch).run(
            run.slug_checksum, run.command, dyno="postdeploy.1", config=run.config, on_line=on_line,
            timeout=self.timeout_seconds)
        return PostdeployResult(result.exit_code if result.succeeded or result.exit_code else 1, result.describe())
