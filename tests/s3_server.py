"""A real S3 server for the tests: versitygw (posix backend), built once by scripts/build-versitygw.sh
(`make setup`), started on a free loopback port as an unprivileged account, one per test session;
each test gets a bucket of its own."""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.client import Config

from berth.supervise.accounts import service_account
from tests.live_server import ROOT, free_port, stop

BUILD_SCRIPT = ROOT / "scripts" / "build-versitygw.sh"
ACCOUNT = "berth-s3-test"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    root: Path

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def new_bucket(self) -> str:
        name = f"berth-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """BERTH_* variables (without the prefix) that point Berth at `bucket`."""
        return {"SLUG_STORE": f"s3://{bucket}" + (f"/{prefix}" if prefix else ""), "S3_ENDPOINT": self.endpoint,
                "S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": self.access_key,
                "S3_SECRET_ACCESS_KEY": self.secret_key}


def versitygw_binary() -> Path:
    built = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-path"], capture_output=True, text=True, timeout=1800)
    if built.returncode != 0:
        pytest.fail(f"versitygw could not be built (make setup runs {BUILD_SCRIPT.name}):\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip())


@contextlib.contextmanager
def running_versitygw(base: Path) -> Iterator[S3Server]:
    account = service_account(ACCOUNT)
    root = base / "gateway"
    root.mkdir(parents=True)
    account.own(root, 0o700)
    account.let_through(root)
    access, secret = "berth" + secrets.token_hex(6), secrets.token_hex(20)
    port = free_port()
    log = base / "versitygw.log"
    env = account.environment({"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "ROOT_ACCESS_KEY_ID": access, "ROOT_SECRET_ACCESS_KEY": secret})
    with log.open("wb") as out:
        process = subprocess.Popen([str(versitygw_binary()), "--port", f"127.0.0.1:{port}", "--quiet", "posix",
                                    str(root)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                   **account.popen_kwargs())
    try:
        wait_for_port(port, process, log)
        yield S3Server(f"http://127.0.0.1:{port}", access, secret, root)
    finally:
        stop(process)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"versitygw exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"versitygw did not listen on {port} within {timeout} s")
