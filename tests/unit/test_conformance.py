"""The conformance harness (partner-api §6.9) against the example partner: it passes a conforming
provider, names what a broken one gets wrong, and leaves nothing provisioned behind."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from berth.broker.partner_api.client import ProviderClient
from berth.outbound import TargetPolicy
from berth.broker.partner_api.conformance import ConformanceReport, run_conformance
from tests.live_server import ROOT, clean_env
from tests.partners.harness import ExamplePartner, run_example_partner

pytestmark = pytest.mark.slow

EVERYTHING = ("many_per_app", "syslog_drain", "log_input")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplePartner]:
    with run_example_partner(tmp_path_factory.mktemp("partner"), async_delay=0.1) as partner:
        yield partner


@pytest.fixture
def partner(running: ExamplePartner) -> ExamplePartner:
    running.set_mode("sync")
    return running


def check(partner: ExamplePartner, **kwargs: object) -> ConformanceReport:
    options: dict[str, object] = {"plan": "test", "other_plan": "premium", "async_timeout": 10,
                                  "client": ProviderClient(read_timeout=5, targets=TargetPolicy(allow_private=True)), **kwargs}
    requires = options.pop("requires", EVERYTHING)
    return run_conformance(partner.manifest(requires=requires), **options)  # type: ignore[arg-type]


def failed(report: ConformanceReport) -> set[str]:
    return {c.name for c in report.failures}


def active_resources(partner: ExamplePartner) -> list[str]:
    return [u for u, r in partner.state()["resources"].items() if r["state"] != "deprovisioned"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_conforming_partner_passes_and_nothing_is_left_behind(partner: ExamplePartner, mode: str) -> None:
    partner.set_mode(mode)
    before = set(partner.state()["async"])  # the module's partner also served other tests' provisions
    report = check(partner)
    assert report.passed, report.render()
    names = {c.name for c in report.checks}
    assert {"provision: the same uuid again returns the same id (idempotency)",
            "provision: another uuid gets another id (many_per_app)", "SSO: a bad token gets 403",
            "SSO: a 6-minute-old timestamp gets 403", "deprovision: a second DELETE answers 2xx, 404 or 410",
            "plan change: the current plan again answers 200 (no-op)"} <= names
    if mode == "async":
        assert "provision (async): grant code exchanged at /oauth/token" in names
        # The partner records its own "completed" just after its last call to Berth, which the
        # harness may see first: wait for this run's records, then check them.
        deadline = time.monotonic() + 10
        while not set(partner.state()["async"]) - before and time.monotonic() < deadline:
            time.sleep(0.05)
        mine = {uuid: a for uuid, a in partner.state()["async"].items() if uuid not in before}
        assert mine and all(a["status"] == "completed" for a in mine.values()), mine
    assert active_resources(partner) == []
    sent = [r["body"] for r in partner.state()["requests"] if r["kind"] == "provision"][-1]
    assert sent["oauth_grant"]["type"] == "authorization_code" and sent["log_drain_token"].startswith("d.")
    assert sent["region"] == "amazon-web-services::us-east-1"


def test_without_sso_or_optional_flags(partner: ExamplePartner) -> None:
    report = check(partner, sso=False, requires=(), other_plan=None)
    assert report.passed, report.render()
    assert not any(c.name.startswith(("SSO", "provision: another uuid")) for c in report.checks)


def test_a_partner_ignoring_credentials_fails_with_the_reasons(partner: ExamplePartner) -> None:
    partner.set_mode("no-auth")
    report = check(partner)
    assert not report.passed
    assert {"provision: wrong credentials get 401", "plan change: wrong credentials get 401",
            "deprovision: wrong credentials get 401", "SSO: a bad token gets 403",
            "SSO: a 6-minute-old timestamp gets 403"} <= failed(report)
    wrong = next(c for c in report.checks if c.name == "provision: wrong credentials get 401")
    assert "200" in wrong.detail
    # The wrong-credential DELETE removed the resource; the harness does not blame the real DELETE.
    assert "deprovision: answers 2xx" not in failed(report)
    partner.set_mode("sync")
    assert active_resources(partner) == []  # even what the wrong-credential POST created


def test_a_partner_breaking_idempotency_fails_that_check_only(partner: ExamplePartner) -> None:
    partner.set_mode("broken-idempotency")
    report = check(partner)
    only = {"provision: the same uuid again returns the same id (idempotency)"}
    assert failed(report) == only, report.render()
    detail = next(c.detail for c in report.failures)
    assert "first id 'ex-" in detail and "then 'ex-" in detail


def test_a_failing_partner_reports_what_could_not_run(partner: ExamplePartner) -> None:
    partner.set_mode("failing")
    report = check(partner)
    assert {"provision: answers 2xx", "plan change, SSO and deprovision checks",
            "clean-up: everything provisioned was deprovisioned"} <= failed(report)
    assert "HTTP 500" in next(c.detail for c in report.checks if c.name == "provision: answers 2xx")


def test_malformed_answers_are_named_and_cleaned_up(partner: ExamplePartner) -> None:
    partner.set_mode("malformed-no-id")
    report = check(partner)
    contract = next(c for c in report.failures if c.name.startswith("provision: answer follows the contract"))
    assert "no string `id`" in contract.detail
    assert active_resources(partner) == []  # the half-made resource was deprovisioned by uuid


def test_an_invalid_manifest_stops_before_any_call(partner: ExamplePartner) -> None:
    before = partner.calls("provision")
    manifest = partner.manifest()
    manifest["api"]["regions"] = []
    report = run_conformance(manifest, plan="test")
    assert [c.passed for c in report.checks] == [False]
    assert "api.regions" in report.checks[0].detail
    assert partner.calls("provision") == before


def test_the_command_line(partner: ExamplePartner, tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(partner.manifest(requires=EVERYTHING)))
    argv = [sys.executable, "-m", "berth.broker.partner_api.conformance", str(path), "--plan", "test",
            "--other-plan", "premium", "--timeout", "5"]
    ran = subprocess.run(argv, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Result: PASSED" in ran.stdout and "FAIL " not in ran.stdout
    assert partner.password not in ran.stdout + ran.stderr
    partner.set_mode("no-auth")
    ran = subprocess.run(argv, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1 and "FAIL  provision: wrong credentials get 401" in ran.stdout
    missing = subprocess.run([*argv[:3], str(tmp_path / "nope.json"), "--plan", "test"], cwd=ROOT,
                             env=clean_env(), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
