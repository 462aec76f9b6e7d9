"""The built-in nodejs buildpack with the stack's Node, and a multi-buildpack app (needs npm's registry
and PyPI)."""
from __future__ import annotations

import json

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


def test_an_engines_range_the_stacks_node_does_not_satisfy_fails_naming_it(builder) -> None:
    source = builder.source("node")
    package = json.loads((source / "package.json").read_text())
    package["engines"]["node"] = "22.x"
    (source / "package.json").write_text(json.dumps(package))
    built = builder.compile(source)
    assert built.error is not None
    message = next(line for line in built.lines if "engines.node" in line and line.startswith(" !"))
    assert message.startswith(" !     package.json asks for Node 22.x (engines.node), but this stack has Node v18.")
    assert "-----> Installing dependencies with npm ci" not in built.lines


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
