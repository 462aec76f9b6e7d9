"""What every long-running Berth process does first (worker, drain forwarder, backends): logging,
settings, the keyring, the database at its newest schema, and a stop event set by SIGTERM/SIGINT."""
from __future__ import annotations

import logging
import signal
import threading

from berth import crypto
from berth.config import Settings, load_settings, prepare_data_dir
from berth.db import Database
from berth.nodes import NodeConfigError, prepare_node


def start_process() -> tuple[Settings, Database, threading.Event]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    prepare_data_dir(settings.data_dir)
    try:
        prepare_node(settings)
    except NodeConfigError as error:
        raise SystemExit(f"berth: {error}") from None
    crypto.configure(crypto.load_or_create_keys(settings.secret_keys, settings.data_dir))
    database = Database(settings.database_url)
    database.migrate(settings.data_dir)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return settings, database, stop
