"""The stack: keyed by its package list, nothing of the build host inside, and the languages builds
need work offline inside the sandbox."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.supervise import stack as stacks


def test_the_key_follows_the_package_list_not_its_order_or_comments(tmp_path: Path) -> None:
    listed = tmp_path / "packages.txt"
    listed.write_text("# comment\npython3\n\nnodejs  # inline\n")
    assert stacks.packages(listed) == ["nodejs", "python3"]
    assert stacks.stack_key(["python3", "nodejs"]) == stacks.stack_key(stacks.packages(listed))
    assert stacks.stack_key(["python3", "nodejs", "libpq-dev"]) != stacks.stack_key(["python3", "nodejs"])
    assert stacks.stack_root(tmp_path).name == f"bookworm-{stacks.stack_key()}"


def test_a_missing_stack_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(stacks.StackError, match="make setup"):
        stacks.require_stack(tmp_path)


def test_without_mmdebstrap_the_build_fails_loudly_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # the host's tools, not Berth's code, go missing
    with pytest.raises(stacks.StackError, match="mmdebstrap is not installed"):
        stacks.build(tmp_path / "stacks")
    assert [p.name for p in (tmp_path / "stacks").iterdir()] == [".lock"]


@pytest.mark.slow
def test_the_stack_holds_nothing_of_the_build_host(stack_root: Path) -> None:
    assert (stack_root / "etc/hostname").read_text() == "localhost\n"
    assert (stack_root / "etc/resolv.conf").read_text() == ""
    assert os.uname().nodename not in (stack_root / "etc/hosts").read_text().split()
    assert not (stack_root / "etc/apt/sources.list").exists()
    assert f"key={stacks.stack_key()}" in (stack_root / stacks.MARKER).read_text()
    assert (stack_root / "app").is_dir() and not any((stack_root / "app").iterdir())


PACKAGE = {
    "setup.py": "from setuptools import setup\nsetup(name='hello', version='1.0', py_modules=['hello'])\n",
    "hello.py": "def greet():\n    return 'hello from the venv'\n",
}


@pytest.mark.slow
def test_a_venv_built_offline_with_the_stacks_pip_runs_later_from_a_read_only_slug(sandbox, app_dir: Path) -> None:
    source = app_dir / "vendor" / "hello"
    source.mkdir(parents=True)
    for name, text in PACKAGE.items():
        (source / name).write_text(text)
    build = sandbox.sh("python3 -m venv /app/.venv && /app/.venv/bin/pip install --no-index --quiet "
                       "--no-build-isolation /app/vendor/hello && echo built", network=False)
    assert build.lines[-1] == "built", build.output
    dyno = sandbox("/app/.venv/bin/python", "-c", "import hello, sys; print(hello.greet(), sys.prefix)",
                   app_writable=False, network=False)
    assert dyno.lines == ["hello from the venv /app/.venv"], dyno.output


@pytest.mark.slow
def test_node_and_a_compiler_come_with_the_stack(sandbox, app_dir: Path) -> None:
    (app_dir / "main.c").write_text('#include <stdio.h>\n#include <libpq-fe.h>\n'
                                    'int main(void) { printf("libpq %d\\n", PQlibVersion() > 0); return 0; }\n')
    ran = sandbox.sh("node -e 'console.log(6 * 7)' && cc -I$(pg_config --includedir 2>/dev/null || echo "
                     "/usr/include/postgresql) -o /tmp/m /app/main.c -lpq && /tmp/m")
    assert ran.lines == ["42", "libpq 1"], ran.output
