"""The official Heroku CLI (npm `heroku`, installed by scripts/install-heroku-cli.sh into .cache),
run unmodified against a live Berth: HEROKU_HOST points it at Berth, HEROKU_API_KEY signs it in."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import ROOT, clean_env

VERSION = "11.10.0"  # keep in step with scripts/install-heroku-cli.sh
BINARY = ROOT / ".cache" / "heroku-cli" / VERSION / "node_modules" / ".bin" / "heroku"
# The CLI's data directory with the heroku-builds plugin installed (HEROKU_DATA_DIR), by the same script.
BUILDS_PLUGIN_DATA = ROOT / ".cache" / "heroku-cli" / f"{VERSION}-plugins" / "data"


@dataclass
class HerokuCLI:
    api_url: str
    api_key: str
    home: Path
    data_dir: Path | None = None  # where the CLI finds user plugins; its own default when None

    def env(self, **extra: str) -> dict[str, str]:
        plugins = {"HEROKU_DATA_DIR": str(self.data_dir)} if self.data_dir else {}
        return {**clean_env(), **plugins, "HEROKU_HOST": self.api_url, "HEROKU_API_KEY": self.api_key,
                "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_CACHE_HOME": str(self.home / ".cache"), "XDG_DATA_HOME": str(self.home / ".local"),
                "HEROKU_SKIP_NEW_VERSION_CHECK": "1", "HEROKU_UPDATE_INSTRUCTIONS": "",
                "DISABLE_TELEMETRY": "true", "HEROKU_DISABLE_TELEMETRY": "true", "NO_COLOR": "1",
                "CI": "true", **extra}

    def run(self, *args: str, input: str | None = None, timeout: float = 120,
            **extra_env: str) -> subprocess.CompletedProcess[str]:
        """`heroku ARGS…`; the completed process (check `returncode`, `stdout`, `stderr`)."""
        return subprocess.run([str(BINARY), *args], env=self.env(**extra_env), input=input,
                              capture_output=True, text=True, timeout=timeout, cwd=self.home)

    def ok(self, *args: str, **kwargs: object) -> str:
        """`heroku ARGS…` that must succeed; its standard output."""
        done = self.run(*args, **kwargs)  # type: ignore[arg-type]
        assert done.returncode == 0, f"heroku {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def heroku_cli(api_url: str, api_key: str, home: Path, *, builds_plugin: bool = False) -> HerokuCLI:
    """The CLI signed in with `api_key`; with `builds_plugin`, with heroku-builds (`heroku builds`)."""
    if not BINARY.exists():
        pytest.fail(f"the Heroku CLI is not installed at {BINARY}: run `make setup` "
                    "(scripts/install-heroku-cli.sh)")
    if builds_plugin and not (BUILDS_PLUGIN_DATA.parent / ".complete").exists():
        pytest.fail(f"the heroku-builds plugin is not installed in {BUILDS_PLUGIN_DATA}: run `make setup` "
                    "(scripts/install-heroku-cli.sh)")
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    return HerokuCLI(api_url, api_key, home, BUILDS_PLUGIN_DATA if builds_plugin else None)
