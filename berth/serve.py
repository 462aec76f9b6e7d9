"""`make run`: the web process (gunicorn), the broker's worker and the add-on backends
supervisor, kept running together.

One exiting is restarted after a short pause; Ctrl-C or SIGTERM stops them all.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from berth.config import load_settings

RESTART_PAUSE_SECONDS = 1.0


def commands() -> dict[str, list[str]]:
    settings = load_settings()
    return {
        "web": [sys.executable, "-m", "gunicorn", "--workers", str(settings.web_workers),
                "--worker-class", "gthread", "--threads", str(settings.web_threads),
                "--bind", f"{settings.host}:{settings.port}", "--access-logfile", "-", "app:app"],
        "worker": [sys.executable, "-m", "berth.broker.worker"],
        "drains": [sys.executable, "-m", "berth.platform.logs.forwarder"],
        **({"backends": [sys.executable, "-m", "berth.addons.backends"]} if settings.builtin_addons else {}),
    }


def main() -> None:
    running = {name: subprocess.Popen(argv) for name, argv in commands().items()}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    argvs = commands()
    while not stopping:
        time.sleep(0.5)
        for name, process in list(running.items()):
            if process.poll() is not None and not stopping:
                print(f"berth: {name} exited with {process.returncode}; restarting", file=sys.stderr)
                time.sleep(RESTART_PAUSE_SECONDS)
                running[name] = subprocess.Popen(argvs[name])
    for process in running.values():
        process.terminate()
    for process in running.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
