"""Container images for dynos on a Docker Swarm: the stack as an image, and each slug on top of it.

The stack image is the stack's root filesystem (berth.supervise.stack, built by mmdebstrap) imported
with `docker import` (no outside registry is needed), plus a small layer that adds the `dyno` account
and makes it the image's user: `<registry>/berth/stack:<stack key>`. An app image is the stack image
plus one slug unpacked at /app: `<registry>/berth/app:<slug sha256 hex>`. Content-addressed: the
tag names the slug, so a second build of the same slug (a restart, a scale, a rollback) finds it in
the registry and does nothing. The image keeps the stack it was first built on, as a Heroku slug keeps
its stack until it is built again.

The slug is never trusted as a tarball: Berth's own unpacker (checksum verified, no path outside
/app, size limits) unpacks it into a scratch directory, and the build context is a tar Berth writes
from that directory. Symlinks stay links whatever they point at, as in a local dyno's /app: a Python
virtualenv's `bin/python3.11 -> /usr/bin/python3.11` resolves in the container, against the stack.
Nothing on the way follows one (the unpacker, `tarfile.add`, the daemon's COPY), so a link to a host
path names only the container's own file. Files land owned by the dyno account so /app is writable, as on Heroku.
Containers run as that unprivileged account, never root.
"""
from __future__ import annotations

import io
import logging
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from berth.platform.slug_store import SlugStore, unpack_slug
from berth.platform.slugs import normalise_checksum
from berth.supervise.stack import require_stack, stack_key

__all__ = ["ImageError", "DYNO_UID", "DYNO_GID", "DYNO_USER", "DYNO_NAME", "stack_image_ref", "slug_image_ref",
           "ensure_stack_image", "ensure_slug_image", "in_registry"]

log = logging.getLogger(__name__)

# The account dynos run as inside their containers: a fixed uid, the same on every machine, with no
# privileges (not root, not in any group of the stack's), home /app as on Heroku.
DYNO_NAME = "dyno"
DYNO_UID = DYNO_GID = 10000
DYNO_USER = f"{DYNO_UID}:{DYNO_GID}"
DYNO_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STACK_REPOSITORY = "berth/stack"
APP_REPOSITORY = "berth/app"
TREE_REPOSITORY = "berth/stack-tree"  # the raw import, only on the daemon that made it
BUILD_TIMEOUT = 1800

_stack_lock = threading.Lock()  # one import per process; the daemon serialises the rest


class ImageError(RuntimeError):
    """An image could not be made or pushed; the message says what failed, for the operator's log."""


def stack_image_ref(registry: str) -> str:
    return f"{registry}/{STACK_REPOSITORY}:{stack_key()}"


def slug_image_ref(registry: str, checksum: str) -> str:
    """The app image of a slug; SlugError for a malformed checksum (nothing else reaches a tag)."""
    return f"{registry}/{APP_REPOSITORY}:{normalise_checksum(checksum)[len('SHA256:'):]}"


def in_registry(client: docker.DockerClient, reference: str) -> bool:
    """Whether the registry has `reference` (asked through the daemon, which knows how to reach it)."""
    try:
        client.api.inspect_distribution(reference)
        return True
    except (NotFound, APIError):
        return False


def ensure_stack_image(client: docker.DockerClient, registry: str, stack: Path | None = None) -> str:
    """The stack image in `registry`, imported from the stack tree and pushed unless it is there."""
    reference = stack_image_ref(registry)
    with _stack_lock:
        if in_registry(client, reference):
            return reference
        root = stack or require_stack()
        started = time.monotonic()
        try:
            if not _local(client, reference):
                tree = _import_tree(client, root)
                log.info("stack imported in %.1f s", time.monotonic() - started)
                _build(client, _stack_context(tree, root), reference, labels={"berth.stack": stack_key()})
            pushing = time.monotonic()
            _push(client, reference)
        except DockerException as exc:
            raise ImageError(f"could not make the stack image {reference}: {exc}") from exc
        log.info("stack image %s pushed in %.1f s (%.1f s in all)", reference, time.monotonic() - pushing,
                 time.monotonic() - started)
    return reference


def ensure_slug_image(client: docker.DockerClient, registry: str, store: SlugStore, checksum: str) -> str:
    """The app image of slug `checksum` in `registry`, built and pushed unless it is there. A slug
    whose content does not match its checksum, or that would escape /app, is refused (SlugError)."""
    reference = slug_image_ref(registry, checksum)
    if in_registry(client, reference):
        return reference
    base = ensure_stack_image(client, registry)
    with tempfile.TemporaryDirectory(prefix="berth-image-") as scratch:
        app = Path(scratch) / "app"
        unpack_slug(store, checksum, app, links_anywhere=True)
        # Copying the tree above /app (not /app's content) hands /app itself to the dyno too.
        dockerfile = f"FROM {base}\nCOPY --chown={DYNO_USER} slug/ /\n"
        context = Path(scratch) / "context.tar"
        with tarfile.open(context, "w") as tar:
            _add_text(tar, "Dockerfile", dockerfile)
            tar.add(app, arcname="slug/app")  # symlinks stay links: never followed on the host
        try:
            with open(context, "rb") as stream:
                _build(client, stream, reference, labels={"berth.slug": normalise_checksum(checksum)})
            _push(client, reference)
        except DockerException as exc:
            raise ImageError(f"could not make the app image {reference}: {exc}") from exc
    log.info("app image %s built and pushed", reference)
    return reference


def _local(client: docker.DockerClient, reference: str) -> bool:
    try:
        client.images.get(reference)
        return True
    except ImageNotFound:
        return False


def _import_tree(client: docker.DockerClient, root: Path) -> str:
    """`docker import` of the stack tree, streamed from tar (numeric owners, as built); local only."""
    reference = f"{TREE_REPOSITORY}:{stack_key()}"
    if _local(client, reference):
        return reference
    log.info("importing the stack %s as %s", root, reference)
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert tar.stdout is not None
    try:
        client.api.import_image(src=tar.stdout, repository=TREE_REPOSITORY, tag=stack_key())
    finally:
        tar.stdout.close()
        _, errors = tar.communicate()
    if tar.returncode != 0:
        raise ImageError(f"could not read the stack at {root}: {errors.decode(errors='replace').strip()}")
    if not _local(client, reference):
        raise ImageError(f"docker import of the stack at {root} made no image {reference}")
    return reference


def _stack_context(tree: str, root: Path) -> io.BytesIO:
    """A build context that adds the dyno account to the stack's passwd and group files."""
    passwd = (root / "etc/passwd").read_text()
    group = (root / "etc/group").read_text()
    if f"\n{DYNO_NAME}:" not in f"\n{passwd}":
        passwd += f"{DYNO_NAME}:x:{DYNO_UID}:{DYNO_GID}:Berth dyno:/app:/bin/bash\n"
    if f"\n{DYNO_NAME}:" not in f"\n{group}":
        group += f"{DYNO_NAME}:x:{DYNO_GID}:\n"
    dockerfile = (f"FROM {tree}\n"
                  "COPY passwd group /etc/\n"
                  f"ENV PATH={DYNO_PATH} HOME=/app LANG=C.UTF-8\n"
                  "WORKDIR /app\n"
                  f"USER {DYNO_USER}\n"
                  'CMD ["/bin/bash"]\n')
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        _add_text(tar, "Dockerfile", dockerfile)
        _add_text(tar, "passwd", passwd)
        _add_text(tar, "group", group)
    context.seek(0)
    return context


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    entry = tarfile.TarInfo(name)
    entry.size, entry.mode = len(data), 0o644
    tar.addfile(entry, io.BytesIO(data))


def _build(client: docker.DockerClient, context, reference: str, labels: dict[str, str]) -> None:
    """`docker build` of a context tar; ImageError with the builder's own message on failure."""
    stream = client.api.build(fileobj=context, custom_context=True, tag=reference, rm=True, forcerm=True,
                              labels=labels, decode=True, timeout=BUILD_TIMEOUT)
    _raise_on_error(stream, f"building {reference}")


def _push(client: docker.DockerClient, reference: str) -> None:
    repository, _, tag = reference.rpartition(":")
    _raise_on_error(client.api.push(repository, tag=tag, stream=True, decode=True), f"pushing {reference}")


def _raise_on_error(events: Iterable[dict], doing: str) -> None:
    for event in events:
        if "error" in event:
            raise ImageError(f"{doing} failed: {event.get('error')}")
