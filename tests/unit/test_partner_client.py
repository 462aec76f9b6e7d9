"""Berth's provider client (partner-api §2.1–2.4) against the example partner, a real HTTP server
in its own process, in each of its modes; `canned` answers cover the malformed-answer rules."""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Iterator

import pytest

from berth.broker.partner_api import client as client_module
from berth.broker.partner_api.client import Outcome, ProviderAnswer, ProviderClient, ProviderEndpoint
from berth.outbound import TargetPolicy
from tests.live_server import free_port
from tests.partners.harness import ExamplePartner, run_example_partner
from tests.partners.resetting import ResettingPartner, run_resetting_partner

pytestmark = pytest.mark.slow

ACCEPT = "application/vnd.heroku-addons+json; version=3"
LOOPBACK_ALLOWED = TargetPolicy(allow_private=True)  # the example partner listens on 127.0.0.1


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplePartner]:
    with run_example_partner(tmp_path_factory.mktemp("partner"), slow_seconds=1.0,
                             flaky_failures=2) as partner:
        yield partner


@pytest.fixture
def partner(running: ExamplePartner) -> ExamplePartner:
    running.set_mode("sync", slow_seconds=1.0, flaky_failures=2)
    return running


@pytest.fixture(scope="module")
def client() -> Iterator[ProviderClient]:
    made = ProviderClient(connect_timeout=2, read_timeout=10, targets=LOOPBACK_ALLOWED)
    yield made
    made.close()


def endpoint_for(partner: ExamplePartner, **changes: Any) -> ProviderEndpoint:
    fields: dict[str, Any] = {"service": partner.service, "password": partner.password,
                              "base_url": partner.url, "config_vars": ("EXAMPLE_URL",), **changes}
    return ProviderEndpoint(**fields)


def provision(client: ProviderClient, endpoint: ProviderEndpoint, resource: str | None = None,
              **extra: Any) -> ProviderAnswer:
    resource = resource or str(uuid.uuid4())
    return client.provision(endpoint, uuid=resource, name="example-partner-rigid-41822", plan="test",
                            region="amazon-web-services::us-east-1",
                            callback_url=f"http://127.0.0.1:9/addons/{resource}", options={"size": "large"},
                            oauth_grant={"code": "grant-code", "expires_at": "2030-01-01T00:00:00Z",
                                         "type": "authorization_code"}, **extra)


# --- the wire format ------------------------------------------------------------------------------
def test_sync_provision_sends_the_v3_request_and_reads_the_answer(partner: ExamplePartner,
                                                                   client: ProviderClient) -> None:
    resource = str(uuid.uuid4())
    answer = provision(client, endpoint_for(partner), resource)
    assert answer.outcome is Outcome.SUCCEEDED and answer.status == 200
    assert answer.provider_id and answer.provider_id.startswith("ex-")
    assert answer.config == {"EXAMPLE_URL": f"https://example-partner.invalid/r/{resource}"}
    assert answer.message == "Your example resource is ready." and answer.log_drain_url is None
    sent = partner.state()["requests"][-1]
    assert (sent["method"], sent["path"]) == ("POST", "/heroku/resources")
    assert sent["basic_user"] == "example-partner"
    assert sent["headers"]["Accept"] == ACCEPT and sent["headers"]["Content-Type"] == "application/json"
    # Only the §2.2 v3 fields: no v1 heroku_id / logplex_token, no log fields that were not asked for.
    assert set(sent["body"]) == {"uuid", "name", "plan", "region", "callback_url", "options", "oauth_grant"}
    assert sent["body"]["options"] == {"size": "large"}
    assert sent["body"]["oauth_grant"]["code"] == "grant-code"


def test_log_fields_are_sent_when_given_and_the_drain_url_is_read(partner: ExamplePartner,
                                                                  client: ProviderClient) -> None:
    resource = str(uuid.uuid4())
    answer = provision(client, endpoint_for(partner, requires=("syslog_drain", "log_input")), resource,
                       log_input_url=f"https://token:t.{resource}@logs.example/logs",
                       log_drain_token=f"d.{resource}")
    assert answer.outcome is Outcome.SUCCEEDED
    assert answer.log_drain_url == f"{partner.base}/drains/{resource}"  # plain http allowed to loopback only
    body = partner.state()["requests"][-1]["body"]
    assert body["log_drain_token"] == f"d.{resource}" and body["log_input_url"].startswith("https://token:")


def test_the_same_uuid_gives_the_same_id(partner: ExamplePartner, client: ProviderClient) -> None:
    resource = str(uuid.uuid4())
    first, second = (provision(client, endpoint_for(partner), resource) for _ in range(2))
    assert first.provider_id == second.provider_id and second.outcome is Outcome.SUCCEEDED
    assert len([r for r in partner.state()["resources"] if r == resource]) == 1


def test_plan_change_routes_on_the_uuid(partner: ExamplePartner, client: ProviderClient) -> None:
    endpoint = endpoint_for(partner)
    resource = str(uuid.uuid4())
    provision(client, endpoint, resource)
    changed = client.change_plan(endpoint, resource, "premium")
    assert (changed.outcome, changed.status) == (Outcome.SUCCEEDED, 200)
    assert changed.message == "Plan changed to premium."
    assert changed.config == {"EXAMPLE_URL": f"https://example-partner.invalid/r/{resource}"}
    assert partner.state()["requests"][-1]["body"] == {"plan": "premium"}
    same = client.change_plan(endpoint, resource, "premium")
    assert (same.outcome, same.config, same.message) == (Outcome.SUCCEEDED, {}, "Already on plan premium.")
    assert partner.state()["resources"][resource]["plan"] == "premium"
    unknown = client.change_plan(endpoint, str(uuid.uuid4()), "premium")
    assert (unknown.outcome, unknown.status) == (Outcome.GONE, 404)


def test_deprovision_twice_is_gone_the_second_time(partner: ExamplePartner, client: ProviderClient) -> None:
    endpoint = endpoint_for(partner)
    resource = str(uuid.uuid4())
    provision(client, endpoint, resource)
    first = client.deprovision(endpoint, resource)
    assert (first.outcome, first.status) == (Outcome.SUCCEEDED, 204)
    assert partner.state()["requests"][-1]["body"] == ""  # DELETE carries no body
    second = client.deprovision(endpoint, resource)
    assert (second.outcome, second.status) == (Outcome.GONE, 410)
    assert partner.state()["resources"][resource]["state"] == "deprovisioned"


def test_wrong_password_is_unauthorized_and_never_echoed(partner: ExamplePartner,
                                                         client: ProviderClient) -> None:
    wrong = "not-the-password-" + uuid.uuid4().hex
    answer = provision(client, endpoint_for(partner, password=wrong))
    assert (answer.outcome, answer.status) == (Outcome.UNAUTHORIZED, 401)
    assert wrong not in repr(answer) and wrong not in repr(endpoint_for(partner, password=wrong))
    assert partner.calls("unauthorized") >= 1


# --- provider modes -------------------------------------------------------------------------------
def test_refusing_gives_the_providers_message(partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("refusing")
    answer = provision(client, endpoint_for(partner))
    assert (answer.outcome, answer.status) == (Outcome.REFUSED, 422)
    assert answer.message == "That plan is not available in your region."
    refused = client.change_plan(endpoint_for(partner), str(uuid.uuid4()), "premium")
    assert refused.outcome is Outcome.REFUSED and refused.message == answer.message


def test_failing_is_failed(partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("failing")
    answer = provision(client, endpoint_for(partner))
    assert (answer.outcome, answer.status, answer.message) == (Outcome.FAILED, 500, None)
    assert "500" in answer.detail
    assert client.deprovision(endpoint_for(partner), str(uuid.uuid4())).outcome is Outcome.FAILED


@pytest.mark.parametrize("mode, detail", [("malformed-json", "not a JSON object"),
                                          ("malformed-no-id", "no string `id`")])
def test_malformed_answers_fail_though_the_resource_exists(partner: ExamplePartner, client: ProviderClient,
                                                           mode: str, detail: str) -> None:
    partner.set_mode(mode)
    resource = str(uuid.uuid4())
    answer = provision(client, endpoint_for(partner), resource)
    assert (answer.outcome, answer.status, answer.provider_id) == (Outcome.FAILED, 200, None)
    assert detail in answer.detail
    # Why the broker runs orphan mitigation: the provider holds a resource Berth counts as failed.
    assert partner.state()["resources"][resource]["state"] == "provisioned"
    assert client.deprovision(endpoint_for(partner), resource).outcome is Outcome.SUCCEEDED


def test_flaky_fails_the_first_times_per_uuid(partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("flaky", flaky_failures=2)
    resource = str(uuid.uuid4())
    before = partner.calls("provision")
    outcomes = [provision(client, endpoint_for(partner), resource) for _ in range(3)]
    assert [(a.outcome, a.status) for a in outcomes] == [(Outcome.FAILED, 503), (Outcome.FAILED, 503),
                                                         (Outcome.SUCCEEDED, 200)]
    assert partner.calls("provision") - before == 3


def test_slow_provider_times_out(partner: ExamplePartner) -> None:
    partner.set_mode("slow", slow_seconds=2.0)
    impatient = ProviderClient(connect_timeout=1, read_timeout=0.3, targets=LOOPBACK_ALLOWED)
    started = time.monotonic()
    answer = provision(impatient, endpoint_for(partner))
    assert time.monotonic() - started < 1.5
    assert (answer.outcome, answer.status) == (Outcome.FAILED, None)
    assert "no answer within the timeout" in answer.detail


def test_slow_calls_are_logged_without_secrets(partner: ExamplePartner, client: ProviderClient,
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(client_module, "SLOW_CALL_SECONDS", 0.1)
    partner.set_mode("slow", slow_seconds=0.3)
    with caplog.at_level(logging.WARNING, logger=client_module.__name__):
        answer = provision(client, endpoint_for(partner))
    assert answer.outcome is Outcome.SUCCEEDED
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "example-partner provision" in warnings[0] and "status 200" in warnings[0]
    assert partner.password not in caplog.text and "example-partner.invalid" not in caplog.text


def test_async_provision_is_accepted_and_the_partner_survives_an_unreachable_platform(
        partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("async")
    resource = str(uuid.uuid4())
    answer = provision(client, endpoint_for(partner), resource)  # callback_url points at a closed port
    assert (answer.outcome, answer.status, answer.config) == (Outcome.ACCEPTED, 202, {})
    assert answer.provider_id and answer.message
    deadline = time.monotonic() + 10
    while resource not in partner.state()["async"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert partner.state()["async"][resource]["status"] == "failed"
    assert f"async provision of {resource} failed at 'exchange the grant'" in partner.log_text()
    partner.set_mode("sync")  # still serving
    assert provision(client, endpoint_for(partner)).outcome is Outcome.SUCCEEDED


def test_connection_refused_is_failed(client: ProviderClient) -> None:
    endpoint = ProviderEndpoint("example-partner", "password-1",
                                f"http://127.0.0.1:{free_port()}/heroku/resources")
    answer = provision(client, endpoint)
    assert (answer.outcome, answer.status) == (Outcome.FAILED, None) and "ConnectionError" in answer.detail


# --- answer classification (canned answers) -------------------------------------------------------
SECRET_URL = "postgres://user:s3cret-value@db.example:5432/d"


@pytest.mark.parametrize("status, body, requires, outcome, detail", [
    (200, {"id": "r1", "config": {"EXAMPLE_URL": "https://x.example", "EXAMPLE_OTHER": "v"}}, (),
     Outcome.FAILED, "['EXAMPLE_OTHER'] are not declared"),
    (200, {"id": "r1", "config": {"EXAMPLE_URL": 5}}, (), Outcome.FAILED, "not strings"),
    (200, {"id": "r1", "config": {"EXAMPLE_URL": None}}, (), Outcome.FAILED, "not strings"),
    (200, {"id": "r1", "config": {"EXAMPLE_URL": "not a url"}}, (), Outcome.FAILED, "scheme and a host"),
    (200, {"id": "r1", "config": {"EXAMPLE_URL": "https://"}}, (), Outcome.FAILED, "scheme and a host"),
    (200, {"id": "r1", "config": ["EXAMPLE_URL"]}, (), Outcome.FAILED, "`config` is not an object"),
    (200, {"id": "r1", "config": {}}, ("syslog_drain",), Outcome.FAILED, "log_drain_url"),
    (200, {"id": "r1", "log_drain_url": "http://drains.example/x"}, ("syslog_drain",), Outcome.FAILED,
     "log_drain_url"),
    (200, {"id": True}, (), Outcome.FAILED, "no string `id`"),
    (200, {"id": ""}, (), Outcome.FAILED, "no string `id`"),
    (200, ["r1"], (), Outcome.FAILED, "not a JSON object"),
    (204, None, (), Outcome.FAILED, "empty body"),
    (302, None, (), Outcome.FAILED, "redirects are not followed"),
    (503, {"message": "down"}, (), Outcome.FAILED, "HTTP 503"),
    (400, {"message": "Bad option size."}, (), Outcome.REFUSED, "refused"),
    (404, None, (), Outcome.GONE, "does not know"),
    (202, {"message": "later"}, (), Outcome.FAILED, "no string `id`"),
])
def test_provision_answers_are_classified(partner: ExamplePartner, client: ProviderClient, status: int,
                                          body: Any, requires: tuple[str, ...], outcome: Outcome,
                                          detail: str) -> None:
    partner.set_mode("canned", status=status, body=body)
    answer = provision(client, endpoint_for(partner, requires=requires))
    assert (answer.outcome, answer.status) == (outcome, status)
    assert detail in answer.detail
    assert answer.config == {} and answer.provider_id is None


@pytest.mark.parametrize("status, body, expected", [
    (201, {"id": 41822, "config": {"EXAMPLE_URL": SECRET_URL}}, ("41822", Outcome.SUCCEEDED)),
    (202, {"id": "r-9", "config": {"EXAMPLE_URL": SECRET_URL}}, ("r-9", Outcome.ACCEPTED)),
    (200, {"id": "r-1", "config": {"EXAMPLE_URL": SECRET_URL}, "log_drain_url": "syslog://logs.example:601"},
     ("r-1", Outcome.SUCCEEDED)),
])
def test_well_formed_variants_succeed(partner: ExamplePartner, client: ProviderClient, status: int, body: Any,
                                      expected: tuple[str, Outcome]) -> None:
    partner.set_mode("canned", status=status, body=body)
    requires = ("syslog_drain",) if "log_drain_url" in body else ()
    answer = provision(client, endpoint_for(partner, requires=requires))
    assert (answer.provider_id, answer.outcome) == expected
    # 202 carries no config yet: it arrives through PATCH /addons/{uuid}/config.
    assert answer.config == ({} if status == 202 else {"EXAMPLE_URL": SECRET_URL})
    assert answer.log_drain_url == body.get("log_drain_url")


def test_details_name_keys_never_values(partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("canned", status=200, body={"id": "r1", "config": {"EXAMPLE_URL": SECRET_URL,
                                                                         "EXAMPLE_TOKEN": "s3cret-token"}})
    answer = provision(client, endpoint_for(partner))
    assert answer.outcome is Outcome.FAILED and "EXAMPLE_TOKEN" in answer.detail
    assert "s3cret" not in answer.detail


def test_messages_are_trimmed(partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("canned", status=422, body={"message": "x" * 5000})
    answer = provision(client, endpoint_for(partner))
    assert answer.outcome is Outcome.REFUSED and answer.message is not None and len(answer.message) == 1000


@pytest.mark.parametrize("status, body, outcome", [
    (200, "ok", Outcome.SUCCEEDED),       # legacy templates
    (204, None, Outcome.SUCCEEDED),
    (200, {"message": "Done."}, Outcome.SUCCEEDED),
    (202, {"message": "Working on it."}, Outcome.ACCEPTED),
    (410, None, Outcome.GONE),
    (401, None, Outcome.UNAUTHORIZED),
    (500, "boom", Outcome.FAILED),
])
def test_plan_change_and_deprovision_answers(partner: ExamplePartner, client: ProviderClient, status: int,
                                             body: Any, outcome: Outcome) -> None:
    partner.set_mode("canned", status=status, body=body)
    endpoint = endpoint_for(partner)
    for answer in (client.change_plan(endpoint, "some-uuid", "premium"),
                   client.deprovision(endpoint, "some-uuid")):
        assert (answer.outcome, answer.status) == (outcome, status)
        assert answer.message == (body.get("message") if isinstance(body, dict) else None)


def test_plan_change_config_follows_the_same_rules(partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("canned", status=200, body={"config": {"EXAMPLE_URL": "nope"}})
    answer = client.change_plan(endpoint_for(partner), "some-uuid", "premium")
    assert answer.outcome is Outcome.FAILED and "EXAMPLE_URL" in answer.detail


def test_resource_ids_are_one_path_segment(partner: ExamplePartner, client: ProviderClient) -> None:
    partner.set_mode("canned", status=204, body=None)
    client.deprovision(endpoint_for(partner), "a/b?c")
    assert partner.state()["requests"][-1]["path"] == "/heroku/resources/a%2Fb%3Fc"


# --- connection errors: idempotent calls are made again ---------------------------------------------
@pytest.fixture(scope="module")
def resetting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResettingPartner]:
    """A partner process that resets the next N resource calls (a provider being restarted)."""
    with run_resetting_partner(tmp_path_factory.mktemp("resetting")) as running:
        yield running


@pytest.fixture
def quick_retries() -> Iterator[ProviderClient]:
    made = ProviderClient(connect_timeout=2, read_timeout=5, targets=LOOPBACK_ALLOWED, retry_delays=(0.05, 0.1, 0.2))
    yield made
    made.close()


@pytest.mark.parametrize("kind", ["provision", "plan change", "deprovision"])
def test_idempotent_calls_are_made_again_after_a_connection_reset(resetting: ResettingPartner,
                                                                  quick_retries: ProviderClient, kind: str) -> None:
    endpoint = ProviderEndpoint("resetting", "password-1", resetting.url)
    before = resetting.calls(kind)
    resetting.reset_next(2)
    resource = str(uuid.uuid4())
    if kind == "provision":
        answer = provision(quick_retries, endpoint, resource)
    elif kind == "plan change":
        answer = quick_retries.change_plan(endpoint, resource, "premium")
    else:
        answer = quick_retries.deprovision(endpoint, resource)
    assert answer.outcome is Outcome.SUCCEEDED, answer.detail
    assert resetting.calls(kind) == before + 3  # two resets, then the answer


def test_retries_are_bounded(resetting: ResettingPartner, quick_retries: ProviderClient) -> None:
    endpoint = ProviderEndpoint("resetting", "password-1", resetting.url)
    before = resetting.calls("provision")
    resetting.reset_next(10)
    try:
        answer = provision(quick_retries, endpoint)
    finally:
        resetting.reset_next(0)
    assert (answer.outcome, answer.status, answer.connection_error) == (Outcome.FAILED, None, True)
    assert resetting.calls("provision") == before + 4  # the first call and three more


def test_actions_are_not_made_twice(resetting: ResettingPartner, quick_retries: ProviderClient) -> None:
    """An action (capture a backup, create a topic) need not be idempotent: one attempt."""
    endpoint = ProviderEndpoint("resetting", "password-1", resetting.url)
    before = resetting.calls("action")
    resetting.reset_next(1)
    answer = quick_retries.action(endpoint, "r1", "backup", {})
    assert answer.outcome is Outcome.FAILED and resetting.calls("action") == before + 1
