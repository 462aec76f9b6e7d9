"""The classic buildpack API as the runner drives it, in the real build sandbox, with small test
buildpacks (tests/fixtures/buildpacks) named by local path, git URL and tarball URL."""
from __future__ import annotations

import http.server
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from berth.outbound import TargetPolicy
from berth.platform.buildpack_runner import (BuildFailed, BuildpackError, BuildpackFetcher, BuildpackRunner,
                                             configured_runner)

from tests.buildpacks.conftest import Builder

pytestmark = pytest.mark.slow
BUILDPACKS = Path(__file__).resolve().parents[1] / "fixtures" / "buildpacks"


@pytest.fixture(scope="module")
def local_builder(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Builder:
    root = tmp_path_factory.mktemp("runner")
    return Builder(stack_root, root, local_roots=[BUILDPACKS, root / "repos"])


def app(builder: Builder, files: dict[str, str]) -> Path:
    builder.count += 1
    source = builder.root / f"app-{builder.count}"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    return source


def test_buildpacks_run_in_order_and_each_export_reaches_the_next(local_builder: Builder) -> None:
    source = app(local_builder, {"index.txt": "x"})
    built = local_builder.compile(source, [str(BUILDPACKS / "exporter"), str(BUILDPACKS / "greeter")],
                                  {"NAME": "Ada"})
    assert built.error is None, built.output
    assert built.lines[:4] == ["-----> Exporter app detected", "-----> Exporting GREETING for the next buildpack",
                               "-----> Greeter app detected", "-----> Greeting Ada"]
    assert (source / "greeting.txt").read_text() == "hello from exporter Ada\n"
    result = built.result
    assert result.buildpack_provided_description == "Greeter"  # the last buildpack's detect
    assert result.buildpacks == [str(BUILDPACKS / "exporter"), str(BUILDPACKS / "greeter")]
    assert result.process_types == {"web": "cat greeting.txt", "worker": "sleep infinity"}
    assert "       Default types for buildpack -> web, worker" in built.lines
    assert result.config_vars == {"GREETER_MODE": "loud"}
    assert result.addons == ["heroku-postgresql:mini"]
    assert local_builder.run(result, result.process_types["web"]) == (0, "hello from exporter Ada")
    assert (local_builder.cache_dir / "greeter.log").is_file()  # CACHE_DIR is kept on the host


def test_the_procfile_wins_over_bin_release_for_the_types_it_declares(local_builder: Builder) -> None:
    source = app(local_builder, {"Procfile": "web: echo from the Procfile\n"})
    built = local_builder.compile(source, [str(BUILDPACKS / "greeter")])
    assert built.error is None, built.output
    assert built.result.process_types == {"web": "echo from the Procfile", "worker": "sleep infinity"}
    assert "       Procfile declares types -> web" in built.lines
    assert "       Default types for buildpack -> worker" in built.lines


def test_a_failing_compile_stops_the_build_with_the_buildpacks_message(local_builder: Builder) -> None:
    source = app(local_builder, {"index.txt": "x"})
    built = local_builder.compile(source, [str(BUILDPACKS / "failing"), str(BUILDPACKS / "greeter")])
    assert built.error is not None and built.result is None
    assert " !     something broke: the frobnicator is missing" in built.lines
    assert built.lines[-1] == " !     Push rejected, failed to compile Failing app."
    assert "-----> Greeter app detected" not in built.lines
    assert not (source / "greeting.txt").exists()


def test_output_reaches_the_callback_while_the_buildpack_runs(local_builder: Builder) -> None:
    source = app(local_builder, {"index.txt": "x"})
    seen: dict[str, float] = {}
    result = local_builder.runner.compile(source, local_builder.cache_dir, {}, [str(BUILDPACKS / "slow-talker")],
                                          lambda line: seen.setdefault(line, time.monotonic()))
    assert result.buildpack_provided_description == "Slow"
    assert seen["-----> second step"] - seen["-----> first step"] >= 1.2


def test_an_app_no_builtin_detects_fails_saying_what_to_add(builder: Builder) -> None:
    built = builder.compile(app(builder, {"README": "nothing to build"}))
    assert built.error is not None
    assert " !     No default language could be detected for this app." in built.lines


def test_a_buildpack_that_does_not_detect_the_app_fails_the_build(builder: Builder) -> None:
    built = builder.compile(app(builder, {"Procfile": "web: true\n"}), ["heroku/python"])
    assert built.error is not None
    assert " !     App not compatible with buildpack: heroku/python" in built.lines


def test_the_procfile_only_app_builds_with_detection_and_runs(builder: Builder) -> None:
    built = builder.compile("procfile-only")
    assert built.error is None, built.output
    assert built.lines[:2] == ["-----> Procfile app detected", "-----> Procfile-only app: nothing to compile"]
    assert built.result.process_types == {"web": "./serve.sh", "hello": 'echo "procfile-only app says hello from $(pwd)"'}
    assert builder.run(built.result, built.result.process_types["hello"]) == (0, "procfile-only app says hello from /app")
    assert builder.serve(built.result, path="/Procfile").text.startswith("# Nothing to build")


def test_a_procfile_syntax_error_fails_the_build_naming_the_line(builder: Builder) -> None:
    built = builder.compile(app(builder, {"Procfile": "web: ok\nthis line has no colon\n"}))
    assert built.error is not None
    assert " !     Procfile: line 2 is not `<process type>: <command>`: 'this line has no colon'" in built.lines


def test_a_procfile_linked_to_a_host_file_is_not_read(builder: Builder, tmp_path: Path) -> None:
    secret = tmp_path / "host-procfile"
    secret.write_text("web: the host's secret command\n")
    source = app(builder, {"requirements.txt": ""})
    (source / "Procfile").symlink_to(secret)
    built = builder.compile(source)
    assert built.error is None, built.output
    assert built.result.process_types == {}
    assert "host's secret" not in built.output


def test_the_buildpacks_file_is_honoured(local_builder: Builder) -> None:
    source = app(local_builder, {".buildpacks": f"# ours\n{BUILDPACKS / 'exporter'}\n\n{BUILDPACKS / 'greeter'}\n"})
    built = local_builder.compile(source)
    assert built.error is None, built.output
    assert built.lines[0] == f"-----> Using buildpacks from .buildpacks: {BUILDPACKS / 'exporter'}, {BUILDPACKS / 'greeter'}"
    assert (source / "greeting.txt").read_text() == "hello from exporter \n"


def test_buildpack_url_is_honoured_and_kept_out_of_env_dir(local_builder: Builder) -> None:
    source = app(local_builder, {"Procfile": "web: true\n"})
    built = local_builder.compile(source, config={"BUILDPACK_URL": str(BUILDPACKS / "greeter"), "NAME": "Bo"})
    assert built.error is None, built.output
    assert built.result.buildpacks == [str(BUILDPACKS / "greeter")]
    assert (source / "greeting.txt").read_text() == "nobody exported GREETING Bo\n"


def test_local_paths_outside_the_operators_directories_are_refused(tmp_path: Path) -> None:
    fetcher = BuildpackFetcher(tmp_path / "cache", TargetPolicy(), local_roots=[BUILDPACKS])
    for reference in ("/etc", "file:///var/lib", str(BUILDPACKS / ".." / "apps")):
        with pytest.raises(BuildpackError, match="BERTH_LOCAL_BUILDPACK_DIRS"):
            fetcher.resolve(reference)
    with pytest.raises(BuildpackError, match="not a built-in"):
        fetcher.resolve("ext::sh -c touch% /tmp/pwned")


def test_a_git_buildpack_is_fetched_once_at_the_ref_asked(local_builder: Builder) -> None:
    repo = local_builder.root / "repos" / "greeter.git"
    work = local_builder.root / "repos" / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run(["cp", "-a", f"{BUILDPACKS / 'greeter'}/.", str(work)], check=True)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    (work / "bin" / "detect").write_text("#!/bin/bash\necho Greeter-v2\n")
    subprocess.run([*git, "commit", "-qam", "v2"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    for ref, expected in ((f"file://{repo}#v1", "Greeter"), (str(repo), "Greeter-v2")):
        built = local_builder.compile(app(local_builder, {"x": ""}), [ref])
        assert built.error is None, built.output
        assert built.result.buildpack_provided_description == expected
    cached = sorted(p.name for p in local_builder.fetcher.cache_dir.iterdir())
    local_builder.compile(app(local_builder, {"x": ""}), [f"file://{repo}#v1"])
    assert sorted(p.name for p in local_builder.fetcher.cache_dir.iterdir()) == cached  # fetched once


@pytest.fixture
def tarball_server(tmp_path: Path):
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "greeter.tgz", "w:gz") as tar:
        tar.add(BUILDPACKS / "greeter", arcname="heroku-buildpack-greeter-main")
    with tarfile.open(served / "evil.tgz", "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 0
        tar.addfile(info)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_tarball_buildpack_goes_through_the_outbound_policy(local_builder: Builder, tarball_server: str,
                                                                  tmp_path: Path) -> None:
    refused = local_builder.compile(app(local_builder, {"x": ""}), [f"{tarball_server}/greeter.tgz"])
    assert refused.error is not None
    assert any("loopback, private or link-local" in line for line in refused.lines), refused.output
    allowed = BuildpackFetcher(tmp_path / "cache", TargetPolicy(allow_private=True))
    buildpack = allowed.resolve(f"{tarball_server}/greeter.tgz")
    assert (buildpack.path / "bin" / "compile").is_file()
    assert buildpack.path.name == "heroku-buildpack-greeter-main"
    with pytest.raises(BuildpackError, match="cannot be unpacked safely|not a tarball"):
        allowed.resolve(f"{tarball_server}/evil.tgz")
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_the_configured_runner_takes_the_operators_settings(tmp_path: Path, stack_root: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    runner = configured_runner(tmp_path, TargetPolicy(), env={
        "BERTH_LOCAL_BUILDPACK_DIRS": f"{BUILDPACKS}:/srv/packs", "BERTH_BUILD_CA_BUNDLE": str(bundle)})
    assert runner.fetcher.local_roots == (BUILDPACKS, Path("/srv/packs"))
    assert runner.fetcher.cache_dir == tmp_path / "buildpacks" and runner.work_dir == tmp_path / "builds"
    assert runner.ca_bundle == bundle and runner.stack == stack_root
    assert configured_runner(tmp_path, TargetPolicy(), env={}).fetcher.local_roots == ()
    with pytest.raises(ValueError, match="BERTH_BUILD_CA_BUNDLE"):
        configured_runner(tmp_path, TargetPolicy(), env={"BERTH_BUILD_CA_BUNDLE": str(tmp_path / "missing.pem")})


def test_a_config_var_name_that_is_a_path_never_becomes_a_file_outside_env_dir(local_builder: Builder) -> None:
    source = app(local_builder, {"x": ""})
    built = local_builder.compile(source, [str(BUILDPACKS / "greeter")], {"NAME": "Cy", "../../escaped": "x"})
    assert built.error is None, built.output
    assert " !     Config var '../../escaped' is not a valid name; buildpacks do not see it." in built.lines
    assert not list(local_builder.root.rglob("escaped"))
    assert (source / "greeting.txt").read_text() == "nobody exported GREETING Cy\n"


def test_a_build_past_its_time_limit_is_stopped_with_a_clear_message(local_builder: Builder) -> None:
    runner = BuildpackRunner(local_builder.stack, local_builder.fetcher, work_dir=local_builder.root / "work",
                             timeout=1, memory_limit=256 * 1024 * 1024)
    lines: list[str] = []
    with pytest.raises(BuildFailed):
        runner.compile(app(local_builder, {"x": ""}), local_builder.cache_dir, {}, [str(BUILDPACKS / "slow-talker")],
                       lines.append)
    assert lines[-1] == (" !     Build timed out after 1 seconds and was stopped; make the build faster or ask the "
                         "operator for a longer build time limit.")
    assert "-----> second step" not in lines
