"""Compile an app with classic buildpacks, inside the build sandbox.

Everything the tenant controls (its source, its buildpacks' scripts, their output) stays inside one
sandbox run: the driver (driver/compile-all) runs bin/detect, bin/compile BUILD_DIR CACHE_DIR ENV_DIR
and bin/release for each buildpack in order, sourcing each one's `export` before the next. Berth only
prepares the directories (the app at /app, CACHE_DIR at /tmp/cache, ENV_DIR at /tmp/env, each
buildpack read-only at /tmp/buildpack-src/<i>) and afterwards reads what the driver left, never
following a link the build planted.
"""
from __future__ import annotations

import os
import re
import stat
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import yaml

from berth.supervise.sandbox import Bind, SandboxError, SandboxSpec, run, sandbox_account
from berth.supervise.stack import STACK_ALIASES

from .failure import FailureSummary
from .node_versions import SANDBOX_DIR as NODE_DIR
from .node_versions import NodeUnavailable, NodeVersions, engines_node
from .procfile import ProcfileError, parse_procfile
from .pythons import language_binds
from .references import Buildpack, BuildpackError, BuildpackFetcher

__all__ = ["BuildFailed", "BuildResult", "BuildpackRunner", "chosen_buildpacks"]

DRIVER_DIR = Path(__file__).resolve().parent / "driver"
MAX_META_BYTES = 256 * 1024  # bin/release's YAML, detect's output
DEFAULT_TIMEOUT = 15 * 60
DEFAULT_MEMORY = 2 * 1024 * 1024 * 1024
CONFIG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
CA_DIR = "/tmp/berth-ca"
CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                "NODE_EXTRA_CA_CERTS", "npm_config_cafile")
# Config vars no buildpack gets to see (Heroku's customary deny-list is applied by buildpacks, but
# BUILDPACK_URL is the platform's).
HIDDEN_CONFIG = frozenset({"BUILDPACK_URL"})


class BuildFailed(RuntimeError):
    """The build failed; the message (already in the output) says why and what to do."""


@dataclass
class BuildResult:
    app_dir: Path  # the built /app, to be packed into a slug
    process_types: dict[str, str]  # Procfile, then bin/release's default_process_types
    buildpack_provided_description: str | None
    buildpacks: list[str]  # the references that compiled, in order
    config_vars: dict[str, str] = field(default_factory=dict)  # bin/release's legacy defaults
    addons: list[str] = field(default_factory=list)  # bin/release's addons (first deploy only)


def chosen_buildpacks(installed: Sequence[str], source_dir: Path, config: Mapping[str, str]) -> tuple[list[str], str]:
    """Which references build the app, and why: the app's buildpack installations, else
    `BUILDPACK_URL`, else the source's `.buildpacks` file (one URL a line, `#` comments allowed),
    else none (detection over the built-ins)."""
    if installed:
        return list(installed), "the app's buildpacks"
    if config.get("BUILDPACK_URL", "").strip():
        return [config["BUILDPACK_URL"].strip()], "BUILDPACK_URL"
    listed = _read_tenant_file(source_dir, ".buildpacks")
    if listed is not None:
        lines = [line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
                 for line in listed.splitlines()]
        references = [line for line in lines if line]
        if references:
            return references, ".buildpacks"
    return [], "detection"


class BuildpackRunner:
    def __init__(self, stack: Path, fetcher: BuildpackFetcher, *, work_dir: Path,
                 timeout: float = DEFAULT_TIMEOUT, memory_limit: int | None = DEFAULT_MEMORY,
                 require_memory_limit: bool = True, stack_name: str = STACK_ALIASES[0],
                 ca_bundle: Path | None = None, node_versions: NodeVersions | None = None,
                 pythons: Path | None = None) -> None:
        self.stack = stack
        self.fetcher = fetcher
        self.work_dir = work_dir  # Berth's own: scratch ENV_DIR and driver output go here
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.require_memory_limit = require_memory_limit
        self.stack_name = stack_name
        # Extra certificate authorities builds trust (a TLS-intercepting egress proxy's, say): the
        # operator's PEM bundle replaces the stack's for pip, npm, git and curl inside the build.
        self.ca_bundle = ca_bundle
        # Node versions other than the stack's (None: only the stack's Node).
        self.node_versions = node_versions
        self.pythons = pythons  # BERTH_PYTHONS_DIR: the operator's CPythons, bound at /opt

    def compile(self, source_dir: Path, cache_dir: Path, config: Mapping[str, str],
                installed: Sequence[str], on_line: Callable[[str], None]) -> BuildResult:
        """Build `source_dir` in place (it becomes /app). Raises BuildFailed after telling `on_line`."""
        def fail(message: str) -> BuildFailed:
            for line in message.splitlines():
                on_line(f" !     {line}")
            return BuildFailed(message)

        references, why = chosen_buildpacks(installed, source_dir, config)
        try:
            if references:
                if why != "the app's buildpacks":
                    on_line(f"-----> Using buildpacks from {why}: {', '.join(references)}")
                buildpacks = [self.fetcher.resolve(reference) for reference in references]
            else:
                buildpacks = self.fetcher.builtins()
        except BuildpackError as exc:
            raise fail(str(exc)) from None
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = Path(tempfile.mkdtemp(prefix="build-", dir=self.work_dir))
        try:
            return self._run(source_dir, cache_dir, config, buildpacks, not references, scratch, on_line, fail)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(self, source_dir: Path, cache_dir: Path, config: Mapping[str, str], buildpacks: list[Buildpack],
             detect_first: bool, scratch: Path, on_line: Callable[[str], None],
             fail: Callable[[str], BuildFailed]) -> BuildResult:
        account = sandbox_account()
        env_dir, meta_dir = scratch / "env", scratch / "meta"
        env_dir.mkdir(mode=0o755)
        meta_dir.mkdir(mode=0o755)
        for key, value in config.items():
            if not CONFIG_NAME.match(key):  # a file name: never `..` or a path
                on_line(f" !     Config var {key[:64]!r} is not a valid name; buildpacks do not see it.")
            elif key not in HIDDEN_CONFIG:
                path = env_dir / key
                path.write_text(value)
                account.own(path, 0o600)  # secrets: readable by the sandbox only
        env = {"STACK": self.stack_name, "BERTH_BUILDPACK_COUNT": str(len(buildpacks)),
               "CNB_STACK_ID": self.stack_name}
        if detect_first:
            env["BERTH_DETECT_FIRST"] = "1"
        binds = [Bind(DRIVER_DIR, "/tmp/berth-driver"), Bind(cache_dir, "/tmp/cache", writable=True),
                 Bind(env_dir, "/tmp/env"), Bind(meta_dir, "/tmp/berth-meta", writable=True),
                 *language_binds(self.pythons)]
        if self.ca_bundle is not None:
            binds.append(Bind(self._ca_dir(scratch), CA_DIR))
            env.update({name: f"{CA_DIR}/ca.pem" for name in CA_VARIABLES})
        if self.node_versions is not None:
            try:
                node = self.node_versions.for_app(engines_node(source_dir, _read_tenant_file), on_line)
            except NodeUnavailable as exc:
                raise fail(str(exc)) from None
            if node is not None:  # read-only: the nodejs buildpack copies it into the slug
                binds.append(Bind(node[1], NODE_DIR))
                env.update({"BERTH_NODE_VERSION": node[0], "BERTH_NODE_DIR": NODE_DIR})
        for index, buildpack in enumerate(buildpacks):
            env[f"BERTH_BUILDPACK_NAME_{index}"] = buildpack.name
            binds.append(Bind(buildpack.path, f"/tmp/buildpack-src/{index}"))
        spec = SandboxSpec(stack=self.stack, app_dir=source_dir, argv=["/bin/bash", "/tmp/berth-driver/compile-all"],
                           account=account, app_writable=True, binds=binds, env=env,
                           memory_limit=self.memory_limit, require_memory_limit=self.require_memory_limit,
                           timeout=self.timeout, network=True, name="build")
        seen = FailureSummary(on_line)
        try:
            result = run(spec, seen)
        except SandboxError as exc:
            raise fail(f"The build could not start: {exc}") from None
        if result.timed_out:
            limit = f"{int(self.timeout // 60)} minutes" if self.timeout >= 120 else f"{int(self.timeout)} seconds"
            raise fail(f"Build timed out after {limit} and was stopped; make the build faster or ask the "
                       "operator for a longer build time limit.")
        if result.oom_killed:
            raise fail("The build ran out of memory and was stopped.")
        if result.exit_code != 0:
            raise BuildFailed(seen.summary() or "Build failed: see the buildpack's output above.")
        used = [int(line) for line in (_read_tenant_file(meta_dir, "used") or "").split() if line.isdigit()]
        used = [index for index in used if 0 <= index < len(buildpacks)]
        if not used:
            raise fail("No buildpack ran.")
        description = (_read_tenant_file(meta_dir, f"detected-{used[-1]}") or "").strip().splitlines()
        release = self._release(_read_tenant_file(meta_dir, "release"), fail)
        process_types = self._process_types(source_dir, release, on_line, fail)
        return BuildResult(app_dir=source_dir, process_types=process_types,
                           buildpack_provided_description=(description[0][:255] if description else None),
                           buildpacks=[buildpacks[index].name for index in used],
                           config_vars=release["config_vars"], addons=release["addons"])

    def _ca_dir(self, scratch: Path) -> Path:
        directory = scratch / "ca"
        directory.mkdir(mode=0o755)
        shutil.copyfile(self.ca_bundle, directory / "ca.pem")
        os.chmod(directory / "ca.pem", 0o644)
        return directory

    @staticmethod
    def _release(text: str | None, fail: Callable[[str], BuildFailed]) -> dict:
        """bin/release's YAML, checked: default_process_types and config_vars map strings to strings."""
        found = {"default_process_types": {}, "config_vars": {}, "addons": []}
        if not text or not text.strip():
            return found
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise fail(f"bin/release printed YAML that does not parse: {exc}") from None
        if not isinstance(data, dict):
            raise fail("bin/release must print a YAML mapping (at least `--- {}`).")
        for key in ("default_process_types", "config_vars"):
            value = data.get(key) or {}
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise fail(f"bin/release's {key} must map names to strings.")
            found[key] = {k: "" if v is None else str(v) for k, v in value.items()}
        addons = data.get("addons") or []
        if not isinstance(addons, list):
            raise fail("bin/release's addons must be a list of plan names.")
        found["addons"] = [str(addon) for addon in addons]
        return found

    @staticmethod
    def _process_types(source_dir: Path, release: dict, on_line: Callable[[str], None],
                       fail: Callable[[str], BuildFailed]) -> dict[str, str]:
        on_line("-----> Discovering process types")
        text = _read_tenant_file(source_dir, "Procfile")
        declared: dict[str, str] = {}
        if text is not None:
            try:
                declared = parse_procfile(text)
            except ProcfileError as exc:
                raise fail(f"Procfile: {exc}") from None
            on_line(f"       Procfile declares types -> {', '.join(declared) or '(none)'}")
        defaults = {k: v for k, v in release["default_process_types"].items() if k not in declared}
        if defaults:
            on_line(f"       Default types for buildpack -> {', '.join(defaults)}")
        return {**declared, **defaults}


def _read_tenant_file(directory: Path, name: str, limit: int = MAX_META_BYTES) -> str | None:
    """A regular file the build wrote, read without following a link in its name (the build may
    have planted one to make Berth read a host file); None when absent or not a regular file."""
    try:
        fd = os.open(directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        return file.read(limit).decode("utf-8", errors="replace")
