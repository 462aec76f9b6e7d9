"""The built-in python buildpack, compiled by the runner in the real sandbox (needs PyPI)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from berth.platform.buildpack_runner.pythons import language_binds, pythons_dir

pytestmark = pytest.mark.slow


def test_the_flask_app_builds_and_answers(builder) -> None:
    built = builder.compile("flask")
    assert built.error is None, built.output
    assert "-----> Python app detected" in built.lines
    assert "-----> Using Python 3.11 (.python-version asks for 3.11)" in built.lines
    assert "       Procfile declares types -> web" in built.lines
    result = built.result
    assert result.buildpack_provided_description == "Python"
    assert result.buildpacks == ["python"]
    assert result.process_types == {"web": "gunicorn app:app --bind 0.0.0.0:$PORT --workers 1"}
    assert (result.app_dir / ".heroku/python/bin/gunicorn").is_file()
    answer = builder.serve(result)
    assert answer.status_code == 200
    assert answer.text == "Hello from Flask on Python 3.11, in /app\n"
    # The virtualenv comes first on PATH in dynos: `python` is the venv's, with Flask importable.
    code, output = builder.run(result, "command -v python; python -c 'import flask; print(flask.__name__)'")
    assert (code, output) == (0, "/app/.heroku/python/bin/python\nflask")
    # pip's cache is in CACHE_DIR (kept between builds of the app), as pip itself says.
    assert "       pip's cache: /tmp/cache/pip" in built.lines


def test_a_broken_requirements_file_fails_the_build_with_pips_message(builder) -> None:
    built = builder.compile("broken-requirements")
    assert built.error is not None
    assert built.result is None
    assert "-----> Installing requirements with pip" in built.lines
    assert any("Invalid requirement" in line for line in built.lines), built.output
    assert " !     pip could not install requirements.txt: see the error above, fix the file and push again." in built.lines
    assert " !     Push rejected, failed to compile Python app." in built.lines


def test_a_python_version_that_is_not_installed_fails_naming_the_installed_ones(builder) -> None:
    source = builder.source("flask")
    (source / ".python-version").unlink()
    (source / "runtime.txt").write_text("python-3.7.17\n")
    built = builder.compile(source)
    assert built.error is not None
    assert (" !     Python 3.7.17 (runtime.txt) is not installed on this stack. Installed: 3.11. "
            "Ask for one of these in runtime.txt.") in built.lines, built.output


def test_without_a_version_asked_the_newest_installed_python_is_used(builder) -> None:
    source = builder.source("flask")
    (source / ".python-version").unlink()
    (source / "requirements.txt").write_text("")
    built = builder.compile(source)
    assert built.error is None, built.output
    assert "-----> Using Python 3.11 (the newest installed; pin one in .python-version)" in built.lines


def test_a_django_app_gets_collectstatic_and_a_default_web_process(builder) -> None:
    built = builder.compile("django")
    assert built.error is None, built.output
    assert "-----> $ python manage.py collectstatic --noinput" in built.lines
    assert (built.result.app_dir / "staticfiles" / "admin" / "css" / "base.css").is_file()
    assert built.result.process_types == {"web": "gunicorn mysite.wsgi"}
    # .profile.d puts the virtualenv first on PATH: ./manage.py (#!/usr/bin/env python) just works.
    assert builder.run(built.result, "./manage.py check") == (0, "System check identified no issues (0 silenced).")
    answer = builder.serve(built.result)  # gunicorn binds to $PORT by itself

    assert answer.text == "Hello from Django\n"


def test_disable_collectstatic_skips_it(builder) -> None:
    built = builder.compile("django", config={"DISABLE_COLLECTSTATIC": "1"})
    assert built.error is None, built.output
    assert "-----> Skipping Django collectstatic (DISABLE_COLLECTSTATIC is set)" in built.lines
    assert not (built.result.app_dir / "staticfiles").exists()


def test_a_failing_collectstatic_fails_the_build_saying_how_to_skip_it(builder) -> None:
    source = builder.source("django")
    settings = source / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace('STATIC_ROOT = BASE_DIR / "staticfiles"\n', ""))
    built = builder.compile(source)
    assert built.error is not None
    assert (" !     Django's collectstatic failed: fix the error above, or set DISABLE_COLLECTSTATIC=1 to skip it."
            in built.lines), built.output


def test_a_pyproject_apps_dependencies_are_installed(builder) -> None:
    source = builder.source("flask")
    (source / "requirements.txt").unlink()
    (source / "pyproject.toml").write_text('[project]\nname = "sample"\nversion = "1"\n'
                                           'dependencies = ["flask==3.1.3", "gunicorn==23.0.0"]\n')
    built = builder.compile(source)
    assert built.error is None, built.output
    assert "-----> Installing pyproject.toml's dependencies with pip" in built.lines
    assert builder.serve(built.result).text == "Hello from Flask on Python 3.11, in /app\n"


def test_a_broken_pyproject_fails_the_build(builder) -> None:
    source = builder.source("flask")
    (source / "requirements.txt").unlink()
    (source / "pyproject.toml").write_text("[project\n")
    built = builder.compile(source)
    assert built.error is not None
    assert " !     pyproject.toml could not be read: see the error above." in built.lines, built.output


def test_a_uv_lock_is_installed_with_uv_without_dev_dependencies(builder) -> None:
    built = builder.compile("flask-uv")
    assert built.error is None, built.output
    assert "-----> Installing dependencies from uv.lock with uv" in built.lines
    venv = built.result.app_dir / ".heroku" / "python"
    assert (venv / "bin" / "gunicorn").is_file() and not (venv / "bin" / "pytest").exists()
    assert not (venv / "bin" / "uv").exists()  # the tool stays in CACHE_DIR, out of the slug
    assert builder.serve(built.result).text == "Hello from Flask on Python 3.11, in /app\n"


# A second CPython built for Debian 12, from Debian's own packages, installed as an operator would:
# one directory with bin/ and lib/ (python-build-standalone trees, the usual choice, come from a
# download site this project cannot reach).
DEBIAN_CPYTHON = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11-venv")


@pytest.fixture(scope="module")
def operator_pythons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pythons")
    debs, unpacked = root.parent / f"{root.name}-debs", root.parent / f"{root.name}-unpacked"
    debs.mkdir()
    fetched = subprocess.run(["apt-get", "download", *DEBIAN_CPYTHON], cwd=debs, capture_output=True, text=True,
                             timeout=300)
    if fetched.returncode != 0:
        pytest.fail(f"apt-get download {' '.join(DEBIAN_CPYTHON)} failed (run apt-get update):\n{fetched.stderr}")
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    (root / "debian-3.11").mkdir()
    for part in ("bin", "lib"):
        (unpacked / "usr" / part).rename(root / "debian-3.11" / part)
    root.chmod(0o755)  # as an operator installs it: readable by the sandbox account
    assert pythons_dir({"BERTH_PYTHONS_DIR": str(root)}) == root
    return root


def test_an_operators_cpython_is_bound_into_the_build_and_dynos_run_its_virtualenv_with_the_same_bind(
        builder, operator_pythons: Path) -> None:
    builder.runner.pythons = operator_pythons
    try:
        built = builder.compile("flask")
        source = builder.source("flask")
        (source / ".python-version").write_text("3.12\n")
        missing = builder.compile(source)
    finally:
        builder.runner.pythons = None
    assert built.error is None, built.output
    assert "-----> Using Python 3.11 (.python-version asks for 3.11)" in built.lines
    assert "       from the operator's /opt/debian-3.11/bin/python3.11" in built.lines
    venv = built.result.app_dir / ".heroku" / "python"
    assert "home = /opt/debian-3.11/bin" in (venv / "pyvenv.cfg").read_text()
    check = "python -c 'import sys, flask; print(sys.base_prefix)'"
    code, output = builder.run(built.result, check, binds=language_binds(operator_pythons))
    assert code == 0 and output.splitlines()[-1] == "/opt/debian-3.11", output
    code, output = builder.run(built.result, check)  # a dyno without the bind: the link is dangling
    assert code != 0, output
    assert missing.error is not None
    assert any(line.startswith(" !     Python 3.12 (.python-version) is not installed on this stack. Installed: 3.11.")
               for line in missing.lines), missing.output
