"""DESIGN.md's direction of dependencies, checked by parsing every import in berth/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "berth"

# Top-level parts of berth a module may import, by where the module lives.
FOUNDATION = {"config", "db", "errors", "auth", "crypto", "accounts", "hooks", "httpapi", "logplex", "process",
              "certificates", "outbound", "signed_urls", "installation_secrets",
              "nodes"}
# What the lowest layers (supervise, below both addons and platform) may use: DESIGN.md's
# foundation, without the HTTP API's conventions or accounts of users.
CORE = {"config", "db", "errors", "crypto", "hooks", "logplex", "certificates"}
ALLOWED: dict[str, set[str]] = {
    "platform": FOUNDATION | {"platform", "supervise", "jobs"},
    "broker": FOUNDATION | {"platform", "broker", "jobs"},
    "addons": {"db", "errors", "crypto", "config", "logplex", "process", "certificates", "installation_secrets",
               "supervise", "addons",
               "broker.partner_api"},
    "cli": {"cli"},
    "httpapi": FOUNDATION,
    "supervise": CORE | {"supervise"},
    "jobs": CORE | {"jobs"},  # the job queue: below the broker and the platform
    "web": FOUNDATION | {"platform", "broker", "jobs", "web"},  # pages: above both, never below them
}
NEVER_IMPORTED = {"buildpacks"}


def berth_imports(path: Path) -> list[tuple[int, str]]:
    """Every `berth.x[.y]` this file imports, as 'x' or 'x.y' (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module_parts = ["berth", *path.relative_to(PACKAGE).with_suffix("").parts]
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
            if names[0] == "berth":  # `from berth import x`: x is the imported part
                names = [f"berth.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "berth" and len(parts) > 1:
                found.append((node.lineno, ".".join(parts[1:3])))
    return found


def allowed(layer: str, target: str) -> bool:
    top = target.split(".")[0]
    rules = ALLOWED[layer]
    return top in rules or target in rules or any(target.startswith(r + ".") for r in rules)


def python_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_design(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0]
    violations = []
    for line, target in berth_imports(path):
        if target.split(".")[0] in NEVER_IMPORTED:
            violations.append(f"line {line}: imports {target}, which is only ever run as a subprocess")
        elif layer in ALLOWED and not allowed(layer, target):
            violations.append(f"line {line}: {layer} may not import berth.{target}")
    assert not violations, "\n".join(violations)


def test_foundation_modules_import_no_feature_package() -> None:
    for name in FOUNDATION - {"httpapi"}:
        targets = {t.split(".")[0] for _, t in berth_imports(PACKAGE / f"{name}.py")}
        assert not targets & {"platform", "broker", "addons", "cli"}, name


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """Guards the guard: a platform module importing the broker must be reported."""
    assert not allowed("platform", "broker.catalogue")
    assert not allowed("addons", "broker.provisioning")
    assert allowed("addons", "broker.partner_api")
    assert not allowed("cli", "platform.apps")


def test_supervise_is_below_addons_and_platform() -> None:
    """Process supervision serves the add-on backends and the build-and-run core, and knows
    neither; the broker reaches processes only through a provider or the platform."""
    for user in ("addons", "platform"):
        assert allowed(user, "supervise.processes") and allowed(user, "supervise.accounts")
    for above in ("addons.postgres", "platform.apps", "broker.catalogue", "web.pages", "httpapi.errors",
                  "accounts", "process"):
        assert not allowed("supervise", above), above
    assert allowed("supervise", "config") and allowed("supervise", "supervise.ports")
    assert not allowed("broker", "supervise.processes")
