"""Stack and app images for the Swarm backend, against the harness's daemons and registry: pushed,
content-addressed (a second build is a no-op), a tampered slug refused, containers never root."""
from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import requests

from berth.platform.dynos.images import (DYNO_UID, ensure_slug_image, ensure_stack_image, in_registry,
                                         slug_image_ref, stack_image_ref)
from berth.platform.slug_store import LocalSlugStore
from berth.platform.slugs import ChecksumMismatch, SlugError, pack
from tests.cluster.conftest import swarm_cluster, swarm_stack_image  # noqa: F401
from tests.cluster.machines import Cluster
from tests.dynos.conftest import stack  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.swarm]


@pytest.fixture(scope="module")
def image_store(tmp_path_factory: pytest.TempPathFactory) -> LocalSlugStore:
    return LocalSlugStore(tmp_path_factory.mktemp("image-slugs"))


def new_slug(store: LocalSlugStore, directory: Path) -> tuple[str, str]:
    """A slug no registry has seen (its marker is random); (checksum, marker)."""
    marker = secrets.token_hex(8)
    app = directory / "app"
    (app / "bin").mkdir(parents=True)
    (app / "marker").write_text(marker + "\n")
    (app / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (app / "bin" / "hello").chmod(0o755)
    (app / "hello-link").symlink_to("bin/hello")
    (app / "python").symlink_to("/usr/bin/python3")  # as a virtualenv's bin/python3.11 is
    (app / "host-secret").symlink_to(HOST_SECRET)  # a host file: must name the container's own path
    packed = pack(app, directory / "slug.tgz")
    return store.put(packed.path, packed.checksum), marker


HOST_SECRET = Path("/tmp/berth-test-image-host-secret")


def run(cluster: Cluster, machine: str, image: str, script: str) -> str:
    """`script` in a container of `image` on `machine` (which pulls it from the registry)."""
    client = cluster.machine(machine).client()
    return client.containers.run(image, ["sh", "-c", script], remove=True).decode()


def test_the_stack_image_is_pushed_once_and_runs_as_the_dyno_user(swarm_cluster: Cluster, stack: Path) -> None:
    client = swarm_cluster.manager.client()
    started = time.monotonic()
    reference = ensure_stack_image(client, swarm_cluster.registry, stack)
    first = time.monotonic() - started
    assert reference == stack_image_ref(swarm_cluster.registry)
    assert in_registry(client, reference)
    digest = client.api.inspect_distribution(reference)["Descriptor"]["digest"]

    started = time.monotonic()
    assert ensure_stack_image(client, swarm_cluster.registry, stack) == reference
    assert time.monotonic() - started < 2, "the second call imported again"
    assert client.api.inspect_distribution(reference)["Descriptor"]["digest"] == digest
    print(f"stack image ready in {first:.1f} s")

    assert run(swarm_cluster, "m2", reference, "id -u; id -un; echo $HOME; pwd").split() == [
        str(DYNO_UID), "dyno", "/app", "/app"]


def test_a_slug_image_holds_the_slug_at_app_writable_by_its_unprivileged_user(
        swarm_cluster: Cluster, image_store: LocalSlugStore, tmp_path: Path, swarm_stack_image: str) -> None:
    checksum, marker = new_slug(image_store, tmp_path)
    client = swarm_cluster.manager.client()

    reference = ensure_slug_image(client, swarm_cluster.registry, image_store, checksum)

    assert reference == slug_image_ref(swarm_cluster.registry, checksum)
    assert reference.endswith(":" + checksum.split(":")[1].lower())
    tags = requests.get(f"http://{swarm_cluster.registry}/v2/berth/app/tags/list", timeout=5).json()["tags"]
    assert checksum.split(":")[1].lower() in tags
    out = run(swarm_cluster, "m2", reference,
              "id -u; cat /app/marker; /app/hello-link; touch /app/written && echo writable; "
              "stat -c %u /app/marker; stat -c %u /; touch /etc/x 2>/dev/null || echo read-only")
    assert out.split() == [str(DYNO_UID), marker, "hello", "writable", str(DYNO_UID), "0", "read-only"]


def test_a_link_out_of_app_resolves_in_the_container_never_on_the_host(
        swarm_cluster: Cluster, image_store: LocalSlugStore, tmp_path: Path, swarm_stack_image: str) -> None:
    """A Python slug's virtualenv links to the stack's interpreter: the image keeps the link, and it
    runs. A link to a host file was never followed while the image was made."""
    HOST_SECRET.write_text("host-only " + secrets.token_hex(8))
    try:
        checksum, _ = new_slug(image_store, tmp_path)
        reference = ensure_slug_image(swarm_cluster.manager.client(), swarm_cluster.registry, image_store, checksum)
    finally:
        HOST_SECRET.unlink()
    out = run(swarm_cluster, "m2", reference,
              "/app/python -c 'import sys; print(sys.version_info[0])'; readlink /app/python; "
              "readlink /app/host-secret; cat /app/host-secret 2>/dev/null || echo no-such-file")
    assert out.split() == ["3", "/usr/bin/python3", str(HOST_SECRET), "no-such-file"]


def test_building_the_same_slug_again_reuses_the_image_in_the_registry(
        swarm_cluster: Cluster, image_store: LocalSlugStore, tmp_path: Path, swarm_stack_image: str) -> None:
    """A rollback or a restart on another machine: the registry has the image, nothing is built."""
    checksum, _ = new_slug(image_store, tmp_path)
    client = swarm_cluster.manager.client()
    reference = ensure_slug_image(client, swarm_cluster.registry, image_store, checksum)
    digest = client.api.inspect_distribution(reference)["Descriptor"]["digest"]
    client.images.remove(reference)  # a build would put it back on this daemon

    assert ensure_slug_image(client, swarm_cluster.registry, image_store, checksum) == reference

    assert not client.images.list(name=reference), "the image was built again"
    assert client.api.inspect_distribution(reference)["Descriptor"]["digest"] == digest
    # Another daemon (a fresh machine) asking gets the same reference without building either.
    other = swarm_cluster.machine("m2").client()
    assert ensure_slug_image(other, swarm_cluster.registry, image_store, checksum) == reference
    assert not other.images.list(name=reference)


def test_a_tampered_slug_is_refused_and_no_image_is_pushed(
        swarm_cluster: Cluster, image_store: LocalSlugStore, tmp_path: Path, swarm_stack_image: str) -> None:
    checksum, _ = new_slug(image_store, tmp_path)
    blob = image_store._path(checksum)
    other, _ = new_slug(LocalSlugStore(tmp_path / "other-store"), tmp_path / "other")
    blob.write_bytes(LocalSlugStore(tmp_path / "other-store")._path(other).read_bytes())
    client = swarm_cluster.manager.client()

    with pytest.raises(ChecksumMismatch, match="altered or truncated"):
        ensure_slug_image(client, swarm_cluster.registry, image_store, checksum)

    assert not in_registry(client, slug_image_ref(swarm_cluster.registry, checksum))


def test_a_malformed_checksum_never_reaches_a_tag(swarm_cluster: Cluster, image_store: LocalSlugStore) -> None:
    client = swarm_cluster.manager.client()
    with pytest.raises(SlugError, match="Not a slug checksum"):
        ensure_slug_image(client, swarm_cluster.registry, image_store, "SHA256:latest")
