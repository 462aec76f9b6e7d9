#!/usr/bin/env python3
"""An example third-party add-on provider: Heroku's partner API v3 (`specs/partner-api.md` §2, §4.4).

It stands in for a partner Berth knows nothing about, so it is standard-library only and shares
no code with Berth (its SSO check is written out here, not imported): a test that passes against it
shows Berth speaks the published contract, not merely agrees with itself.

    python tests/partners/example_partner.py --port 8123 --password PASSWORD \
        [--mode sync] [--service example-partner] [--sso-salt SALT] \
        [--client-secret SECRET] [--slow-seconds 40] [--flaky-failures 2] [--async-delay 0.5]

Endpoints (Basic auth `<service>:<password>` on all but SSO and health):
    POST   /heroku/resources          provision (idempotent on `uuid`: same uuid -> same id)
    PUT    /heroku/resources/<uuid>   plan change `{"plan"}` (same plan -> 200 no-op)
    DELETE /heroku/resources/<uuid>   deprovision -> 204; unknown -> 404; already deleted -> 410
    POST   /heroku/sso                SSO form (§4.4 tokens, ±5 min) -> 302 to /dashboard/<uuid>, else 403
    POST   /drains/<uuid>             log drain target returned as `log_drain_url` when asked -> 204
                                      (state: posts, bytes, the last 20 bodies and logplex headers)
    GET    /_admin/health             200 once listening (no auth)
    GET    /_admin/state              what the partner holds and has seen (below)
    POST   /_admin/mode               `{"mode": ..., "slow_seconds"?, "flaky_failures"?, "status"?, "body"?}`

Modes (how resource calls are answered; the mode applies to provision, plan change and deprovision
unless noted):
    sync               200 {id, config, message} (+ log_drain_url when the request has log_drain_token)
    async              provision 202 {id, message}; after --async-delay a thread completes it through
                       the platform: POST <berth>/oauth/token, PATCH <callback_url>/config,
                       POST <callback_url>/actions/provision (Bearer). Plan change / deprovision: sync.
    slow               sleeps --slow-seconds, then answers as sync
    failing            500
    refusing           422 {"message": "That plan is not available in your region."}
    flaky              503 for the first --flaky-failures calls per (call kind, uuid), then sync
    malformed-json     provision creates the resource, then answers 200 with a truncated JSON body
    malformed-no-id    provision creates the resource, then answers 200 JSON without `id`
    no-auth            sync, but accepts any Basic credentials and any SSO token (a broken partner)
    broken-idempotency sync, but every provision makes a new id, even for a uuid seen before
    canned             answers `status` with `body` (a string sent as is, or JSON) from the mode request
Switching mode resets the flaky counters. Admin calls need valid credentials in every mode.

State (kept in memory, so a call costs the same with 10 or 10,000 resources held): mode,
resources by uuid (id, plan, state provisioning|provisioned|deprovisioned, the request fields),
calls (counters per kind: provision, plan_change, deprovision, sso, sso_denied, unauthorized,
drain, admin), async (per uuid: status
completed|failed, step, error), and the last 50 requests (headers without Authorization, body).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("sync", "async", "slow", "failing", "refusing", "flaky", "malformed-json", "malformed-no-id",
         "no-auth", "broken-idempotency", "canned")
SSO_WINDOW = 300
REFUSAL = "That plan is not available in your region."
MAX_BODY = 1 << 20
RESOURCE_PATH = re.compile(r"^/heroku/resources/([^/]+)$")
DRAIN_PATH = re.compile(r"^/drains/([^/]+)$")
DASHBOARD_PATH = re.compile(r"^/dashboard/([^/]+)$")

log = logging.getLogger("example-partner")


class Partner:
    """What the partner holds, guarded by one lock."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.service: str = args.service
        self.password: str = args.password
        self.sso_salt: str = args.sso_salt
        self.client_secret: str | None = args.client_secret
        self.async_delay: float = args.async_delay
        self.port: int = args.port
        self.lock = threading.Lock()
        self.flaky: dict[tuple[str, str], int] = {}
        self.canned: dict[str, Any] = {}
        self.state: dict[str, Any] = {
            "mode": args.mode, "slow_seconds": args.slow_seconds, "flaky_failures": args.flaky_failures,
            "resources": {}, "async": {}, "drains": {}, "requests": [],
            "calls": {kind: 0 for kind in ("provision", "plan_change", "deprovision", "sso", "sso_denied",
                                           "unauthorized", "drain", "admin")},
        }

    @property
    def mode(self) -> str:
        return str(self.state["mode"])

    def update(self, change: Any) -> Any:
        with self.lock:
            return change(self.state)

    def snapshot(self) -> bytes:
        with self.lock:
            return json.dumps(self.state, sort_keys=True).encode()

    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except ValueError:
            return False
        expected = f"{self.service}:{self.password}".encode()
        return hmac.compare_digest(f"{user}:{password}".encode(), expected)

    def example_config(self, uuid: str) -> dict[str, str]:
        return {"EXAMPLE_URL": f"https://example-partner.invalid/r/{uuid}"}


class Handler(BaseHTTPRequestHandler):
    server: "PartnerServer"
    protocol_version = "HTTP/1.1"  # keep-alive, as the client pools connections
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (40 ms on Linux) and every answer would look 40 ms slower than it is.
    disable_nagle_algorithm = True

    # --- plumbing -------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""

    def send(self, status: int, body: Any = None, *, raw: bytes | None = None,
             content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        try:
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up (slow mode)
            log.info("caller hung up before the answer to %s %s", self.command, self.path)

    def count(self, kind: str) -> None:
        self.server.partner.update(lambda s: s["calls"].__setitem__(kind, s["calls"][kind] + 1))

    def dispatch(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        body = self.read_body()
        partner = self.server.partner
        match = RESOURCE_PATH.match(path)
        if (self.command, path) == ("GET", "/_admin/health"):
            return self.send(200, {"ok": True})
        if (self.command, path) == ("POST", "/_admin/mode"):
            return self.admin_mode(body)
        if (self.command, path) == ("GET", "/_admin/state"):
            if not partner.authorized(self.headers.get("Authorization")):
                return self.send(401, {"message": "Invalid credentials."})
            return self.send(200, raw=partner.snapshot())
        if (self.command, path) == ("POST", "/heroku/sso"):
            return self.sso(body)
        if self.command == "POST" and DRAIN_PATH.match(path):
            return self.drain(DRAIN_PATH.match(path).group(1), body)  # type: ignore[union-attr]
        if self.command == "GET" and DASHBOARD_PATH.match(path):
            return self.send(200, raw=b"<!doctype html><title>Example dashboard</title><h1>Dashboard</h1>",
                             content_type="text/html; charset=utf-8")
        if (self.command, path) == ("POST", "/heroku/resources"):
            kind, uuid = "provision", None
        elif self.command == "PUT" and match:
            kind, uuid = "plan_change", urllib.parse.unquote(match.group(1))
        elif self.command == "DELETE" and match:
            kind, uuid = "deprovision", urllib.parse.unquote(match.group(1))
        else:
            return self.send(404, {"message": "Not found."})
        document = self.parse_json(body)
        if kind == "provision" and isinstance(document, dict) and isinstance(document.get("uuid"), str):
            uuid = document["uuid"]
        self.record(kind, document if document is not None else body.decode("utf-8", "replace"))
        if partner.mode != "no-auth" and not partner.authorized(self.headers.get("Authorization")):
            self.count("unauthorized")
            return self.send(401, {"message": "Invalid credentials."})
        if self.answered_by_mode(kind, uuid or ""):
            return
        if kind == "provision":
            return self.provision(document)
        if kind == "plan_change":
            return self.plan_change(uuid or "", document)
        return self.deprovision(uuid or "")

    @staticmethod
    def parse_json(body: bytes) -> Any:
        try:
            return json.loads(body) if body.strip() else None
        except ValueError:
            return None

    def record(self, kind: str, body: Any) -> None:
        authorization = self.headers.get("Authorization") or ""
        try:
            user = base64.b64decode(authorization[6:]).decode().partition(":")[0]
        except ValueError:
            user = None
        entry = {"kind": kind, "method": self.command, "path": self.path, "basic_user": user,
                 "headers": {name: self.headers.get(name)
                             for name in ("Accept", "Content-Type", "User-Agent")},
                 "body": body}

        def change(state: dict[str, Any]) -> None:
            state["calls"][kind] += 1
            state["requests"] = (state["requests"] + [entry])[-50:]
        self.server.partner.update(change)

    # --- modes ----------------------------------------------------------------------------------
    def answered_by_mode(self, kind: str, uuid: str) -> bool:
        """Answer for modes that replace the normal behaviour; False to go on normally."""
        partner = self.server.partner
        mode = partner.mode
        if mode == "slow":
            time.sleep(float(partner.state["slow_seconds"]))
        elif mode == "failing":
            self.send(500, {"message": "Internal error (failing mode)."})
            return True
        elif mode == "refusing":
            self.send(422, {"message": REFUSAL})
            return True
        elif mode == "flaky":
            with partner.lock:
                seen = partner.flaky[(kind, uuid)] = partner.flaky.get((kind, uuid), 0) + 1
            if seen <= int(partner.state["flaky_failures"]):
                self.send(503, {"message": f"Temporarily unavailable (flaky mode, failure {seen})."})
                return True
        elif mode == "canned":
            canned = partner.canned
            body = canned.get("body")
            raw = (body.encode() if isinstance(body, str)
                   else b"" if body is None else json.dumps(body).encode())
            self.send(int(canned.get("status", 200)), raw=raw)
            return True
        return False

    # --- the partner API ------------------------------------------------------------------------
    def provision(self, document: Any) -> None:
        partner = self.server.partner
        if not isinstance(document, dict) or not isinstance(document.get("uuid"), str) \
                or not isinstance(document.get("plan"), str):
            return self.send(422, {"message": "uuid and plan are required."})
        uuid, mode = document["uuid"], partner.mode

        def create(state: dict[str, Any]) -> tuple[dict[str, Any], bool]:
            existing = state["resources"].get(uuid)
            if existing is not None and mode != "broken-idempotency":
                return existing, False  # at-least-once delivery: the same uuid is the same resource
            record = {key: document.get(key) for key in ("uuid", "name", "plan", "region", "callback_url",
                                                          "options", "oauth_grant", "log_input_url",
                                                          "log_drain_token")}
            record.update(id=f"ex-{secrets.token_hex(8)}", config=partner.example_config(uuid),
                          state="provisioning" if mode == "async" else "provisioned",
                          created_at=time.time())
            if document.get("log_drain_token"):
                record["log_drain_url"] = f"http://127.0.0.1:{partner.port}/drains/{uuid}"
            state["resources"][uuid] = record
            return record, True

        record, created = partner.update(create)
        if record["state"] == "deprovisioned":
            return self.send(410, {"message": "This resource was deprovisioned."})
        if record["state"] == "provisioning":
            if created:
                threading.Thread(target=complete_async, args=(partner, uuid), daemon=True).start()
            return self.send(202, {"id": record["id"], "message": "Your example resource is being created."})
        if mode == "malformed-json":
            return self.send(200, raw=b'{"id": "' + record["id"].encode() + b'", "config": {')
        answer = {"id": record["id"], "config": record["config"],
                  "message": "Your example resource is ready."}
        if mode == "malformed-no-id":
            del answer["id"]
        if record.get("log_drain_url"):
            answer["log_drain_url"] = record["log_drain_url"]
        self.send(200, answer)

    def plan_change(self, uuid: str, document: Any) -> None:
        partner = self.server.partner
        plan = document.get("plan") if isinstance(document, dict) else None
        if not isinstance(plan, str) or not plan:
            return self.send(422, {"message": "plan is required."})

        def change(state: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            record = state["resources"].get(uuid)
            if record is None:
                return 404, {"message": "No such resource."}
            if record["state"] == "deprovisioned":
                return 410, {"message": "This resource was deprovisioned."}
            if record["plan"] == plan:
                return 200, {"message": f"Already on plan {plan}."}
            record["plan"] = plan
            return 200, {"config": record["config"], "message": f"Plan changed to {plan}."}
        self.send(*partner.update(change))

    def deprovision(self, uuid: str) -> None:
        def remove(state: dict[str, Any]) -> int:
            record = state["resources"].get(uuid)
            if record is None:
                return 404
            if record["state"] == "deprovisioned":
                return 410
            record.update(state="deprovisioned", deprovisioned_at=time.time())
            return 204
        status = self.server.partner.update(remove)
        self.send(status, None if status == 204 else {"message": "No such resource." if status == 404
                                                       else "This resource was deprovisioned."})

    def sso(self, body: bytes) -> None:
        partner = self.server.partner
        self.count("sso")
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        params = {key: values[-1] for key, values in form.items()}
        record = partner.state["resources"].get(params.get("resource_id", ""))
        if record is None or record["state"] == "deprovisioned":
            self.count("sso_denied")
            return self.send(404, raw=b"Unknown resource.", content_type="text/plain")
        if partner.mode != "no-auth" and not sso_valid(params, partner.sso_salt):
            self.count("sso_denied")
            return self.send(403, raw=b"Invalid or expired token.", content_type="text/plain")
        session = f"example-session={secrets.token_urlsafe(16)}; HttpOnly; Path=/"
        self.send(302, headers={"Location": f"/dashboard/{record['uuid']}", "Set-Cookie": session})

    def drain(self, uuid: str, body: bytes) -> None:
        def add(state: dict[str, Any]) -> None:
            state["calls"]["drain"] += 1
            drain = state["drains"].setdefault(uuid, {"posts": 0, "bytes": 0, "bodies": [], "headers": []})
            drain["posts"] += 1
            drain["bytes"] += len(body)
            drain["bodies"] = (drain["bodies"] + [body.decode("utf-8", "replace")])[-20:]
            drain["headers"] = (drain["headers"] + [{name: self.headers.get(name) for name in (
                "Content-Type", "Logplex-Msg-Count", "Logplex-Frame-Id", "Logplex-Drain-Token")}])[-20:]
        self.server.partner.update(add)
        self.send(204)

    def admin_mode(self, body: bytes) -> None:
        partner = self.server.partner
        if not partner.authorized(self.headers.get("Authorization")):
            return self.send(401, {"message": "Invalid credentials."})
        document = self.parse_json(body)
        if not isinstance(document, dict) or document.get("mode") not in MODES:
            return self.send(422, {"message": f"mode must be one of {', '.join(MODES)}."})

        def switch(state: dict[str, Any]) -> dict[str, Any]:
            state["calls"]["admin"] += 1
            state["mode"] = document["mode"]
            for option in ("slow_seconds", "flaky_failures"):
                if option in document:
                    state[option] = document[option]
            partner.flaky.clear()
            partner.canned = {k: document[k] for k in ("status", "body") if k in document}
            return {"mode": state["mode"]}
        log.info("mode is now %s", document["mode"])
        self.send(200, partner.update(switch))


def sso_valid(params: dict[str, str], salt: str, now: float | None = None) -> bool:
    """§4.4, written out independently of Berth: every token given must match, one at least."""
    uuid, stamp = params.get("resource_id", ""), params.get("timestamp", "")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > SSO_WINDOW:
        return False
    user = f"{params.get('user_id', '')}:{params.get('email', '')}"
    expected = {
        "resource_token": hashlib.sha1(f"{uuid}:{salt}:{stamp}".encode()).hexdigest(),
        "user_scoped_resource_token": hashlib.sha256(f"{uuid}:{salt}:{stamp}:{user}".encode()).hexdigest(),
    }
    given = {name: params[name] for name in expected if name in params}
    return bool(given) and all(hmac.compare_digest(value.encode(), expected[name].encode())
                               for name, value in given.items())


# --- async provisioning: finishing through the platform's partner endpoints (§3.2, §4.5) -----------
class AsyncFailure(Exception):
    pass


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the platform is called directly


def platform_call(method: str, url: str, *, data: bytes | None, headers: dict[str, str],
                  retry: bool = True) -> Any:
    """One call, tried up to 3 times on connection errors and 5xx (`retry=False`: only when the
    connection was refused); the JSON answer, or AsyncFailure."""
    for attempt in range(1, 4):
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with _OPENER.open(request, timeout=10) as response:
                raw = response.read()
                return json.loads(raw) if raw.strip() else None
        except urllib.error.HTTPError as error:
            text = error.read()[:300].decode("utf-8", "replace")
            if error.code < 500 or attempt == 3 or not retry:
                raise AsyncFailure(f"HTTP {error.code} from {method} {url}: {text}") from None
        except (urllib.error.URLError, OSError) as error:
            # A refused connection never reached the platform, so even a single-use call may retry.
            refused = isinstance(getattr(error, "reason", error), ConnectionRefusedError)
            if attempt == 3 or not (retry or refused):
                raise AsyncFailure(f"{method} {url} failed: {error}") from None
        except ValueError:
            raise AsyncFailure(f"{method} {url} answered something that is not JSON") from None
        time.sleep(0.5 * attempt)
    raise AsyncFailure("unreachable")


def complete_async(partner: Partner, uuid: str) -> None:
    """Exchange the grant, set the config, declare the resource provisioned. Never raises: any failure
    is logged to stderr and recorded in the state file under async[uuid]."""
    time.sleep(partner.async_delay)
    step = "start"
    try:
        record = partner.state["resources"][uuid]
        callback_url = str(record.get("callback_url") or "").rstrip("/")
        suffix = f"/addons/{uuid}"
        step = "derive the platform URL"
        if not callback_url.endswith(suffix):
            raise AsyncFailure(f"callback_url {callback_url!r} does not end with {suffix}")
        platform = callback_url[: -len(suffix)]
        grant = record.get("oauth_grant") or {}
        if not isinstance(grant, dict) or not grant.get("code"):
            raise AsyncFailure("the provision request carried no oauth_grant code")
        if not partner.client_secret:
            raise AsyncFailure("no --client-secret: cannot exchange the grant")
        step = "exchange the grant"
        form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": grant["code"],
                                       "client_secret": partner.client_secret}).encode()
        # Grant codes are single use: a second try after a lost answer could not succeed.
        tokens = platform_call("POST", platform + "/oauth/token", data=form, retry=False, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        access = (tokens or {}).get("access_token") if isinstance(tokens, dict) else None
        if isinstance(access, dict):  # the Platform API form {"access_token": {"token": ...}}
            access = access.get("token")
        if not isinstance(access, str) or not access:
            raise AsyncFailure("the token answer has no access_token")
        headers = {"Authorization": f"Bearer {access}", "Accept": "application/vnd.heroku+json; version=3",
                   "Content-Type": "application/json"}
        step = "set the config"
        config = [{"name": name, "value": value} for name, value in record["config"].items()]
        platform_call("PATCH", callback_url + "/config", data=json.dumps({"config": config}).encode(),
                      headers=headers)
        step = "declare it provisioned"
        platform_call("POST", callback_url + "/actions/provision", data=b"", headers=headers)
    except AsyncFailure as failure:
        log.error("async provision of %s failed at %r: %s", uuid, step, failure)
        reason = str(failure)
        partner.update(lambda s: s["async"].__setitem__(uuid, {"status": "failed", "step": step,
                                                              "error": reason}))
        return
    except Exception as crash:  # a bug here must show in the log, not kill the thread silently
        log.exception("async provision of %s crashed at %r", uuid, step)
        reason = repr(crash)
        partner.update(lambda s: s["async"].__setitem__(uuid, {"status": "failed", "step": step,
                                                              "error": reason}))
        return

    def done(state: dict[str, Any]) -> None:
        state["async"][uuid] = {"status": "completed", "step": step, "error": None}
        if state["resources"][uuid]["state"] == "provisioning":
            state["resources"][uuid]["state"] = "provisioned"
    partner.update(done)
    log.info("async provision of %s completed", uuid)


class PartnerServer(ThreadingHTTPServer):
    daemon_threads = True  # a sleeping slow-mode handler must not keep the process alive

    def __init__(self, address: tuple[str, int], partner: Partner) -> None:
        super().__init__(address, Handler)
        self.partner = partner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--mode", choices=MODES, default="sync")
    parser.add_argument("--service", default="example-partner", help="the manifest id (Basic-auth user)")
    parser.add_argument("--sso-salt", default="example-sso-salt-0123456789")
    parser.add_argument("--client-secret", default=None, help="OAuth client secret for async mode")
    parser.add_argument("--slow-seconds", type=float, default=40.0)
    parser.add_argument("--flaky-failures", type=int, default=2)
    parser.add_argument("--async-delay", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s example-partner %(levelname)s %(message)s")
    server = PartnerServer((args.host, args.port), Partner(args))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("listening on http://%s:%d (mode %s)", args.host, args.port, args.mode)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
