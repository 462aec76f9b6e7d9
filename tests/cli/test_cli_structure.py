"""`berth.cli` is a client of the HTTP API only; and it exits quietly on Ctrl-C."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "berth" / "cli"


def test_cli_imports_nothing_else_from_berth() -> None:
    for path in CLI.rglob("*.py"):
        package_depth = len(path.relative_to(CLI).parts)  # 1 = berth/cli/x.py
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.ImportFrom):
                assert node.level <= package_depth, f"{path}: relative import leaves berth.cli"
                continue
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "berth" or name.startswith("berth.cli"), f"{path}: {name}"


def test_ctrl_c_exits_130_quietly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env |= {"HOME": str(tmp_path), "NETRC": str(tmp_path / ".netrc"), "PYTHONPATH": str(CLI.parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "berth.cli", "login"], env=env, cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert os.read(proc.stdout.fileno(), 100).startswith(b"Email")  # waiting at the prompt
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert stderr == b""
