"""The builder's side of a git push: a Unix socket the pre-receive hook connects to (see
push_protocol). Each push becomes a build like any other (its tarball stored as a source of the
pusher's, its version the commit), queued behind a build of the same app already running; the
connection then carries the build's output back until its final status is stored."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Any

from sqlalchemy import select

from berth.accounts import UUID_PATTERN, Account
from berth.config import Settings
from berth.db import Database
from berth.errors import BerthError
from berth.jobs.queue import JobState
from berth.jobs.wakeup import nudge_workers
from berth.platform.builds import records
from berth.platform.builds.output import follow
from berth.platform.builds.push_protocol import STATUS_MARK, socket_path
from berth.platform.git.repositories import git_root
from berth.platform.models import App, Build, Release, ReleasePhase, ReleaseStatus
from berth.platform.release_phase import records as release_phases
from berth.platform.slug_store import StorageUnavailable
from berth.platform.sources.s3_store import S3SourceStore
from berth.platform.sources.store import SourceStore, UploadIncomplete, UploadTooLarge
from berth.platform.sources.urls import source_urls

log = logging.getLogger("berth.builder")
MAX_HEADER_BYTES = 4096


class PushRefused(Exception):
    """The push cannot be built; the message is for the pusher."""


class PushListener:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database, self.settings = database, settings
        root = git_root(settings.data_dir)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = socket_path(root)
        self.path.unlink(missing_ok=True)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)  # the socket is Berth's own user's only
        try:
            self._socket.bind(str(self.path))
        finally:
            os.umask(old_mask)
        self._socket.listen(16)
        self._socket.settimeout(1.0)

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._handle, args=(connection,), name="git-push", daemon=True).start()

    def close(self) -> None:
        self._socket.close()
        self.path.unlink(missing_ok=True)

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(None)
            reader, writer = connection.makefile("rb"), connection.makefile("wb", buffering=0)
            try:
                build_id, waiting = self._accept_push(reader)
            except PushRefused as exc:
                writer.write(f" !     {exc}\n".encode() + STATUS_MARK + b"failed\n")
                return
            except Exception:
                log.exception("a git push could not be turned into a build")
                writer.write(b" !     Berth could not start this build; the operator's log has details.\n"
                             + STATUS_MARK + b"failed\n")
                return
            try:
                if waiting:
                    writer.write(b"-----> Waiting for this app's build in progress to finish\n")
                for chunk in follow(self.settings.data_dir, build_id, lambda: records.finished_by_id(self.database, build_id),
                                    keepalive=None):
                    writer.write(chunk)
                status = self._status(build_id)
                if status == "succeeded":
                    self._relay_release_phase(build_id, writer)
                writer.write(STATUS_MARK + status.encode() + b"\n")
            except (BrokenPipeError, ConnectionError):
                log.info("the pusher of build %s went away; the build goes on", build_id)

    def _accept_push(self, reader: Any) -> tuple[str, bool]:
        line = reader.readline(MAX_HEADER_BYTES)
        try:
            header = json.loads(line)
            app_id, account_id, commit = str(header["app_id"]), str(header["account_id"]), str(header["new"])
            size = int(header["size"])
        except (ValueError, KeyError, TypeError):
            raise PushRefused("The push reached the builder malformed; push again.") from None
        if not (UUID_PATTERN.match(app_id) and UUID_PATTERN.match(account_id)):
            raise PushRefused("The push reached the builder without its app or account; push again.")
        try:
            source_url = self._store_push(account_id, reader, size)
        except UploadTooLarge:
            raise PushRefused(f"The pushed code is larger than {self.settings.source_max_bytes} bytes once "
                              "compressed; leave large files out of the repository.") from None
        except UploadIncomplete:
            raise PushRefused("The push was cut off before the builder had all of it; push again.") from None
        except StorageUnavailable as error:
            raise PushRefused(str(error)) from None
        with self.database.transaction() as session:
            app = session.get(App, app_id)
            user = session.get(Account, account_id)
            if app is None or user is None:
                raise PushRefused("This app no longer exists.")
            waiting = session.scalar(select(Build.id).where(
                Build.app_id == app.id, Build.state.in_((JobState.PENDING, JobState.RUNNING))).limit(1)) is not None
            try:
                build = records.create_build(session, self.settings, app, user,
                                             source_url=source_url,
                                             version=commit)
            except BerthError as exc:
                raise PushRefused(str(exc)) from None
            build_id = build.id
        nudge_workers(self.settings.data_dir)
        return build_id, waiting

    def _store_push(self, account_id: str, reader: Any, size: int) -> str:
        """The pushed code as a source, in the S3 bucket when the slug store is one (any builder
        may build it), else under the data dir; its get_url."""
        s3 = S3SourceStore.of(self.settings) if self.settings.slug_store != "local" else None
        if s3 is not None:
            s3_record = s3.create(account_id)
            s3.receive(s3_record, reader, size, self.settings.source_max_bytes)
            return s3.urls(s3_record)["get_url"]
        store = SourceStore.of(self.settings)
        record = store.create(account_id)
        store.receive(record, reader, size, self.settings.source_max_bytes)
        return source_urls(self.settings.api_url, record.id)["get_url"]

    def _relay_release_phase(self, build_id: str, writer: Any) -> None:
        """Wait for the release phase of the build's release, if it has one, and relay its output.
        A failed release does not reject the push (the build succeeded, as on Heroku): the branch
        moves, and the pusher is told plainly that the app still runs its previous release."""
        with self.database.session(write=False) as session:
            phase = session.scalar(select(ReleasePhase).join(Build, Build.release_id == ReleasePhase.release_id)
                                   .where(Build.id == build_id))
            if phase is None:
                return
            phase_id, version = phase.id, session.get(Release, phase.release_id).version  # type: ignore[union-attr]
        writer.write(b"-----> Running release command...\n")
        for chunk in follow(self.settings.data_dir, phase_id, lambda: release_phases.finished_by_id(self.database, phase_id),
                            kind=release_phases.OUTPUT_KIND, keepalive=None):
            writer.write(chunk)
        with self.database.session(write=False) as session:
            release = session.scalar(select(Release).join(ReleasePhase, ReleasePhase.release_id == Release.id)
                                     .where(ReleasePhase.id == phase_id))
            succeeded = release is not None and release.status == ReleaseStatus.SUCCEEDED
        if succeeded:
            writer.write(b"-----> Waiting for release.... done.\n")
            return
        writer.write(f"-----> Waiting for release.... failed.\n"
                     f" !     Release v{version} failed. The push itself landed (the branch moved to the pushed "
                     "commit), but the app keeps running its previous release. Fix the release command and push "
                     "again, or see `heroku releases:output`.\n".encode())

    def _status(self, build_id: str) -> str:
        with self.database.session(write=False) as session:
            build = session.get(Build, build_id)
            return records.status_of(build) if build is not None else "failed"
