"""Berth's provider conformance harness (`specs/partner-api.md` §6.9), part of the published contract.

A partner runs it against its own service before listing it; Berth runs it against every provider,
first-party ones included:

    python -m berth.broker.partner_api.conformance MANIFEST.json --plan basic [--other-plan pro]

It makes real calls with Berth's own `ProviderClient`, so "passes here" means "works with Berth".
For asynchronous provisioning it serves a small stand-in for Berth's partner endpoints on loopback
(`/oauth/token`, `/addons/<uuid>/config`, `/addons/<uuid>/actions/provision`) and sends that as
`callback_url`, as kensa did: a provider elsewhere must be able to reach this machine for those
checks. Everything it provisions is deprovisioned at the end, whatever failed.
"""
from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import threading
import time
import uuid as uuid_module
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import requests

from berth.broker.partner_api.client import (
    ACCEPT,
    Outcome,
    ProviderAnswer,
    ProviderClient,
    ProviderEndpoint,
)
from berth.broker.partner_api.manifest import ManifestError, load_manifest
from berth.broker.partner_api.sso import sso_params
from berth.outbound import TargetPolicy

# §1.3: the app's location as providers see it; "*" and unknown names fall back to Virginia.
AWS_REGIONS = {"us": "us-east-1", "virginia": "us-east-1", "eu": "eu-west-1", "dublin": "eu-west-1",
               "frankfurt": "eu-central-1", "oregon": "us-west-2", "singapore": "ap-southeast-1",
               "sydney": "ap-southeast-2", "tokyo": "ap-northeast-1", "london": "eu-west-2",
               "montreal": "ca-central-1", "mumbai": "ap-south-1"}
STALE_SSO_SECONDS = 360  # kensa's "6 minutes old" (§6.7): outside every sane window
SSO_USER = {"user_id": "0f7a9c1e-2b3d-4e5f-8a9b-c0d1e2f3a4b5", "email": "conformance@berth.invalid",
            "app": "conformance-app"}
OK = (Outcome.SUCCEEDED, Outcome.ACCEPTED)
# Partners run the suite against their own servers, often on loopback: a tool, not Berth calling out.
ANY_TARGET = TargetPolicy(allow_private=True)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ConformanceReport:
    service: str
    base_url: str = ""
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def add(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    def render(self) -> str:
        lines = [f"Conformance of {self.service!r} at {self.base_url or '?'}: "
                 f"{len(self.checks)} checks, {len(self.failures)} failed"]
        for check in self.checks:
            lines.append(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}"
                         + (f" — {check.detail}" if check.detail else ""))
        lines.append("Result: " + ("PASSED" if self.passed else "FAILED"))
        return "\n".join(lines)


def run_conformance(manifest: dict[str, Any], *, plan: str, other_plan: str | None = None, sso: bool = True,
                    use_test_block: bool = False, client: ProviderClient | None = None,
                    async_timeout: float = 60.0) -> ConformanceReport:
    """Check the provider `manifest` describes. `use_test_block` targets `api.test` (kensa's default)
    instead of `api.production`; `async_timeout` bounds the wait for a 202's actions/provision."""
    report = ConformanceReport(service=str(manifest.get("id")) if isinstance(manifest, dict) else "?")
    loaded = _check_manifest(report, manifest, plan, other_plan, sso, use_test_block)
    if loaded is None:
        return report
    own_client = client is None
    with _PlatformStub(loaded["api"]["config_vars"]) as platform:
        run = _Run(report, loaded, client or ProviderClient(targets=ANY_TARGET), platform, use_test_block, async_timeout)
        try:
            run.all(plan, other_plan, sso)
        finally:
            run.clean_up()
            if own_client:
                run.client.close()
    return report


def _check_manifest(report: ConformanceReport, manifest: Any, plan: str, other_plan: str | None,
                    sso: bool, use_test_block: bool) -> dict[str, Any] | None:
    try:
        loaded = load_manifest(manifest)
    except ManifestError as error:
        report.add("manifest: valid (§1.6, kensa §6.1)", False, str(error))
        return None
    report.add("manifest: valid (§1.6, kensa §6.1)", True)
    api = loaded["api"]
    report.add("manifest: has a `test` block (kensa §6.1 item 10)", "test" in api,
               "" if "test" in api else "add api.test with http://localhost URLs for local testing")
    if use_test_block and "test" not in api:
        return None
    names = [each["name"] for each in loaded["plans"]]
    for wanted in filter(None, (plan, other_plan)):
        report.add(f"manifest: offers plan {wanted!r}", wanted in names, f"plans: {names}")
    if sso:
        block = api["test" if use_test_block else "production"]
        report.add("manifest: sso_url and sso_salt for SSO", "sso_url" in block and "sso_salt" in api,
                   "" if "sso_url" in block else "no sso_url (run without SSO if there is no dashboard)")
    block = api["test" if use_test_block else "production"]
    report.base_url = block["base_url"]
    return loaded


class _Run:
    """One pass over a provider; remembers every uuid it may have created, for the clean-up."""

    def __init__(self, report: ConformanceReport, manifest: dict[str, Any], client: ProviderClient,
                 platform: _PlatformStub, use_test_block: bool, async_timeout: float) -> None:
        api = manifest["api"]
        self.report, self.client, self.platform, self.async_timeout = report, client, platform, async_timeout
        self.block = api["test" if use_test_block else "production"]
        self.endpoint = ProviderEndpoint(service=manifest["id"], password=api["password"],
                                         base_url=self.block["base_url"],
                                         config_vars=tuple(api["config_vars"]),
                                         requires=tuple(api["requires"]))
        self.salt: str | None = api.get("sso_salt")
        regions = api["regions"]
        self.region = "amazon-web-services::" + AWS_REGIONS.get(regions[0] if regions else "*", "us-east-1")
        self.to_clean: list[str] = []
        self.timeouts = (client.connect_timeout, client.read_timeout)

    # --- calls ----------------------------------------------------------------------------------
    def body(self, plan: str) -> dict[str, Any]:
        """A fresh §2.2 v3 provision body, with what the manifest's `requires` asks for."""
        resource = str(uuid_module.uuid4())
        self.to_clean.append(resource)  # before the call: a timed-out call may still have created it
        body: dict[str, Any] = {
            "uuid": resource, "name": f"{self.endpoint.service}-conformance-{secrets.randbelow(10**5)}",
            "plan": plan, "region": self.region, "callback_url": f"{self.platform.url}/addons/{resource}",
            "options": {}, "oauth_grant": self.platform.mint_grant(resource),
        }
        if "log_input" in self.endpoint.requires:
            body["log_input_url"] = f"{self.platform.url.replace('://', f'://token:t.{resource}@')}/logs"
        if "syslog_drain" in self.endpoint.requires:
            body["log_drain_token"] = f"d.{resource}"
        return body

    def provision(self, body: dict[str, Any]) -> ProviderAnswer:
        return self.client.provision(self.endpoint, **body)

    def raw(self, method: str, url: str, *, auth: tuple[str, str] | None = None, **kwargs: Any) -> str | int:
        """A call outside the client (bad credentials, SSO): the status, or what went wrong."""
        headers = {"Accept": ACCEPT, **kwargs.pop("headers", {})}
        try:
            return requests.request(method, url, auth=auth, headers=headers, timeout=self.timeouts,
                                    allow_redirects=False, **kwargs).status_code
        except requests.RequestException as error:
            return f"{type(error).__name__}: {error}"[:300]

    def wrong_credentials(self, method: str, url: str, **kwargs: Any) -> tuple[bool, str]:
        """kensa's `wrong:secret`, then the right user with a wrong password: both must get 401."""
        wrong = (("wrong", "secret"), (self.endpoint.service, "wrong-" + secrets.token_hex(8)))
        json_header = {"Content-Type": "application/json"}
        statuses = [self.raw(method, url, auth=auth, headers=json_header, **kwargs) for auth in wrong]
        return all(status == 401 for status in statuses), f"got {statuses}"

    # --- the checks -----------------------------------------------------------------------------
    def all(self, plan: str, other_plan: str | None, sso: bool) -> None:
        first = self.body(plan)
        provider_id = self.check_provision(first)
        ok, detail = self.wrong_credentials("POST", self.endpoint.base_url, json=self.body(plan))
        self.report.add("provision: wrong credentials get 401", ok, detail)
        if provider_id is None:
            self.report.add("plan change, SSO and deprovision checks", False, "not run: provisioning failed")
            return
        again = self.provision(first)
        self.report.add("provision: the same uuid again returns the same id (idempotency)",
                        again.outcome in OK and again.provider_id == provider_id,
                        _describe(again, f"first id {provider_id!r}, then {again.provider_id!r}"))
        if "many_per_app" in self.endpoint.requires:
            second = self.body(plan)
            other = self.provision(second)
            if other.outcome is Outcome.ACCEPTED:  # its calls back must find this stand-in still serving
                self.platform.wait_provisioned(second["uuid"], self.async_timeout)
            self.report.add("provision: another uuid gets another id (many_per_app)",
                            other.outcome in OK and other.provider_id not in (None, provider_id),
                            _describe(other, f"ids {provider_id!r} and {other.provider_id!r}"))
        self.check_plan_change(first["uuid"], plan, other_plan)
        if "grants" in self.endpoint.requires:
            self.check_grants(first["uuid"])
        if sso and self.salt and "sso_url" in self.block:
            self.check_sso(first["uuid"])
        self.check_deprovision(first["uuid"])

    def check_provision(self, body: dict[str, Any]) -> str | None:
        answer = self.provision(body)
        status_ok = answer.status is not None and 200 <= answer.status < 300
        self.report.add("provision: answers 2xx", status_ok, _describe(answer))
        if not status_ok:
            return None
        if not self.report.add("provision: answer follows the contract (JSON object, id, declared string "
                               "config, *_URL values, log_drain_url when required)", answer.outcome in OK,
                               answer.detail):
            return None
        if answer.outcome is Outcome.ACCEPTED:
            return answer.provider_id if self.check_async(body["uuid"]) else None
        missing = sorted(set(self.endpoint.config_vars) - set(answer.config))
        self.report.add("provision: config keys are declared, values are strings", True,
                        f"warning: declared but not set: {missing}" if missing else "")
        return answer.provider_id

    def check_async(self, resource: str) -> bool:
        started = time.monotonic()
        done = self.platform.wait_provisioned(resource, self.async_timeout)
        seen = self.platform.seen(resource)
        self.report.add("provision (async): grant code exchanged at /oauth/token", seen["exchanged"],
                        "" if seen["exchanged"] else "the provider never exchanged oauth_grant.code")
        if seen["config_names"] or seen["undeclared"]:
            self.report.add("provision (async): PATCH config sets only declared names",
                            not seen["undeclared"], f"undeclared: {seen['undeclared']}" if seen["undeclared"]
                            else f"set {sorted(seen['config_names'])}")
        return self.report.add(f"provision (async): actions/provision called within {self.async_timeout:g} s",
                               done, f"after {time.monotonic() - started:.1f} s" if done else "never called")

    def check_plan_change(self, resource: str, plan: str, other_plan: str | None) -> None:
        current = plan
        if other_plan:
            answer = self.client.change_plan(self.endpoint, resource, other_plan)
            self.report.add(f"plan change: to {other_plan!r} answers 2xx with a valid body",
                            answer.outcome in OK, _describe(answer, _path_hint(answer)))
            if answer.outcome in OK:
                current = other_plan
        answer = self.client.change_plan(self.endpoint, resource, current)
        self.report.add("plan change: the current plan again answers 200 (no-op)",
                        answer.outcome is Outcome.SUCCEEDED, _describe(answer, _path_hint(answer)))
        ok, detail = self.wrong_credentials("PUT", _url(self.endpoint, resource), json={"plan": current})
        self.report.add("plan change: wrong credentials get 401", ok, detail)

    def check_grants(self, resource: str) -> None:
        """Berth's extension (`requires` `grants`): credentials per grant, revoked alone."""
        grant_url = f"{_url(self.endpoint, resource)}/grants/conformance-1"
        ok, detail = self.wrong_credentials("PUT", grant_url)
        self.report.add("grants: wrong credentials get 401", ok, detail)
        first = self.client.grant(self.endpoint, resource, "conformance-1")
        if not self.report.add("grants: PUT answers 200 with declared config", first.outcome is Outcome.SUCCEEDED,
                               _describe(first, _path_hint(first))):
            return
        again = self.client.grant(self.endpoint, resource, "conformance-1")
        self.report.add("grants: the same grant again answers the same config (idempotency)",
                        again.outcome is Outcome.SUCCEEDED and again.config == first.config, _describe(again))
        other = self.client.grant(self.endpoint, resource, "conformance-2")
        self.report.add("grants: another grant gets other credentials",
                        other.outcome is Outcome.SUCCEEDED and other.config != first.config, _describe(other))
        for grant in ("conformance-1", "conformance-2"):
            revoked = self.client.revoke(self.endpoint, resource, grant)
            self.report.add(f"grants: DELETE {grant} answers 2xx", revoked.outcome in OK, _describe(revoked))
        gone = self.client.revoke(self.endpoint, resource, "conformance-1")
        self.report.add("grants: a second DELETE answers 404 or 410", gone.outcome is Outcome.GONE, _describe(gone))

    def check_sso(self, resource: str) -> None:
        url = self.block["sso_url"]
        assert self.salt is not None
        valid = sso_params(resource, self.salt, **SSO_USER)
        status = self.raw("POST", url, data=valid)
        self.report.add("SSO: valid tokens get 2xx or 3xx (redirects not followed)",
                        isinstance(status, int) and 200 <= status < 400, f"got {status}")
        forged = {**valid, "resource_token": "invalid", "user_scoped_resource_token": "invalid"}
        status = self.raw("POST", url, data=forged)
        self.report.add("SSO: a bad token gets 403", status == 403, f"got {status}")
        stale = sso_params(resource, self.salt, **SSO_USER, timestamp=int(time.time()) - STALE_SSO_SECONDS)
        status = self.raw("POST", url, data=stale)
        self.report.add("SSO: a 6-minute-old timestamp gets 403", status == 403, f"got {status}")

    def check_deprovision(self, resource: str) -> None:
        ok, detail = self.wrong_credentials("DELETE", _url(self.endpoint, resource))
        self.report.add("deprovision: wrong credentials get 401", ok, detail)
        answer = self.client.deprovision(self.endpoint, resource)
        if not ok and answer.outcome is Outcome.GONE:
            pass  # the DELETE with wrong credentials removed it, already reported above
        elif self.report.add("deprovision: answers 2xx", answer.outcome in OK,
                             _describe(answer, _path_hint(answer))):
            self.to_clean.remove(resource)
        again = self.client.deprovision(self.endpoint, resource)
        self.report.add("deprovision: a second DELETE answers 2xx, 404 or 410",
                        again.outcome in (*OK, Outcome.GONE), _describe(again))

    def clean_up(self) -> None:
        """Deprovision whatever this run may have created; unknown uuids (404/410) are fine."""
        left = [(resource, self.client.deprovision(self.endpoint, resource)) for resource in self.to_clean]
        stuck = [f"{resource}: {_describe(answer)}" for resource, answer in left
                 if answer.outcome not in (*OK, Outcome.GONE)]
        if stuck:
            self.report.add("clean-up: everything provisioned was deprovisioned", False, "; ".join(stuck))


def _url(endpoint: ProviderEndpoint, resource: str) -> str:
    return endpoint.base_url.rstrip("/") + "/" + quote(resource, safe="")


def _describe(answer: ProviderAnswer, extra: str = "") -> str:
    parts = [f"HTTP {answer.status}" if answer.status is not None else "no answer", answer.outcome.value,
             answer.detail, f"message: {answer.message!r}" if answer.message else "", extra]
    return "; ".join(part for part in parts if part)


def _path_hint(answer: ProviderAnswer) -> str:
    if answer.outcome is Outcome.GONE:
        return "the path carries the resource uuid, not the provider id (§2.3)"
    return ""


# --- a stand-in for Berth's partner endpoints, for asynchronous provisioning ------------------------
class _PlatformStub:
    """Just enough of §4.1, §4.5 and §5.3 for a provider to finish a 202: grant exchange (any
    non-empty client secret: the harness cannot know the partner's), config PATCH, actions/provision."""

    def __init__(self, config_vars: list[str]) -> None:
        self.config_vars = set(config_vars)
        self.lock = threading.Lock()
        self.grants: dict[str, str] = {}     # code -> uuid (single use)
        self.tokens: dict[str, str] = {}     # access or refresh token -> uuid
        self.events: dict[str, threading.Event] = {}
        self.record: dict[str, dict[str, Any]] = {}
        stub = self

        class Handler(_StubHandler):
            platform = stub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "_PlatformStub":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def mint_grant(self, resource: str) -> dict[str, str]:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.grants[code] = resource
            self.events[resource] = threading.Event()
            self.record[resource] = {"exchanged": False, "config_names": set(), "undeclared": []}
        expires = datetime.now(timezone.utc) + timedelta(minutes=5)
        return {"code": code, "expires_at": expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "type": "authorization_code"}

    def wait_provisioned(self, resource: str, timeout: float) -> bool:
        return self.events[resource].wait(timeout)

    def seen(self, resource: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.record[resource])


class _StubHandler(BaseHTTPRequestHandler):
    platform: _PlatformStub
    protocol_version = "HTTP/1.1"
    ADDON = re.compile(r"^/addons/([^/]+)(/config|/actions/provision|/actions/deprovision)?$")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass  # the report says what matters

    def answer(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    def do_PATCH(self) -> None:
        self.route()

    def route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        if (self.command, parts.path) == ("POST", "/oauth/token"):
            return self.token(dict(parse_qsl(parts.query)) | _form_or_json(raw))
        if (self.command, parts.path) == ("POST", "/logs"):  # log_input: accepted and dropped
            return self._no_content()
        match = self.ADDON.match(parts.path)
        if match is None:
            return self.answer(404, {"id": "not_found", "message": "Not part of the conformance stand-in."})
        resource, action = match.group(1), match.group(2) or ""
        if self.bearer_resource() != resource:
            return self.answer(401, {"id": "unauthorized",
                                     "message": "Bearer token missing or not for this add-on."})
        if (self.command, action) == ("PATCH", "/config"):
            return self.config(resource, raw)
        if (self.command, action) == ("POST", "/actions/provision"):
            self.platform.events[resource].set()
            return self.answer(200, {"id": resource, "state": "provisioned"})
        if (self.command, action) in (("GET", ""), ("GET", "/config"), ("POST", "/actions/deprovision")):
            return self.answer(200, [] if action == "/config" else {"id": resource})
        return self.answer(404, {"id": "not_found", "message": "Not part of the conformance stand-in."})

    def _no_content(self) -> None:
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def bearer_resource(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        with self.platform.lock:
            return self.platform.tokens.get(header[7:]) if header.startswith("Bearer ") else None

    def token(self, params: dict[str, str]) -> None:
        platform = self.platform
        with platform.lock:
            if not params.get("client_secret"):
                resource = None
            elif params.get("grant_type") == "authorization_code":
                resource = platform.grants.pop(params.get("code", ""), None)
            elif params.get("grant_type") == "refresh_token":
                resource = platform.tokens.get(params.get("refresh_token", ""))
            else:
                resource = None
            if resource is None:
                body: dict[str, Any] = {"id": "invalid_grant", "message": "Unknown, used or expired grant."}
            else:
                access, refresh = str(uuid_module.uuid4()), str(uuid_module.uuid4())
                platform.tokens[access] = platform.tokens[refresh] = resource
                platform.record[resource]["exchanged"] = True
                body = {"access_token": access, "expires_in": 28800, "refresh_token": refresh,
                        "token_type": "Bearer", "user_id": SSO_USER["user_id"], "session_nonce": None}
        self.answer(400 if resource is None else 200, body)

    def config(self, resource: str, raw: bytes) -> None:
        items = _form_or_json(raw, keep_lists=True).get("config")
        if not isinstance(items, list) or not all(isinstance(i, dict) and "name" in i for i in items):
            return self.answer(422, {"id": "invalid_params",
                                     "message": 'Expected {"config": [{"name", "value"}]}.'})
        names = {str(item["name"]) for item in items}
        undeclared = sorted(names - self.platform.config_vars)
        with self.platform.lock:
            record = self.platform.record[resource]
            record["config_names"] = record["config_names"] | names
            record["undeclared"] = record["undeclared"] + undeclared
        if undeclared:
            return self.answer(422, {"id": "invalid_params",
                                     "message": f"Undeclared config vars: {undeclared}"})
        self.answer(200, [{"name": item["name"], "value": item.get("value")} for item in items])


def _form_or_json(raw: bytes, *, keep_lists: bool = False) -> dict[str, Any]:
    """Token requests come as a form or JSON (§4.5); config updates as JSON."""
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return {}
        if not isinstance(value, dict):
            return {}
        return value if keep_lists else {k: v for k, v in value.items() if isinstance(v, str)}
    return dict(parse_qsl(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m berth.broker.partner_api.conformance",
        description="Check an add-on provider against Berth's partner API v3 contract "
                    "(partner-api.md §6.9).")
    parser.add_argument("manifest", help="the provider's manifest (JSON file)")
    parser.add_argument("--plan", required=True, help="plan slug to provision")
    parser.add_argument("--other-plan", help="plan slug to change to (optional)")
    parser.add_argument("--without-sso", action="store_true", help="skip the SSO checks")
    parser.add_argument("--test", action="store_true", help="target api.test instead of api.production")
    parser.add_argument("--timeout", type=float, default=30.0, help="read timeout per call, seconds")
    parser.add_argument("--async-timeout", type=float, default=60.0,
                        help="how long to wait for actions/provision after a 202, seconds")
    args = parser.parse_args(argv)
    try:
        with open(args.manifest, encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError) as error:
        print(f"cannot read {args.manifest}: {error}", file=sys.stderr)
        return 2
    report = run_conformance(manifest, plan=args.plan, other_plan=args.other_plan, sso=not args.without_sso,
                             use_test_block=args.test, client=ProviderClient(read_timeout=args.timeout, targets=ANY_TARGET),
                             async_timeout=args.async_timeout)
    print(report.render())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
