"""SSO tokens (partner-api §4.4): the spec's worked example, the ±5-minute window, tampering."""
from __future__ import annotations

import pytest

from berth.broker.partner_api.sso import resource_token, sso_params, user_scoped_resource_token, verify_sso
from tests.partners.example_partner import sso_valid as example_partner_accepts

UUID = "5b1f6c2e-9d0a-4a57-8e3c-2f4b7d9a1c60"
SALT = "s3cr3t-salt-value"
STAMP = 1735689600
USER = "0f7a9c1e-2b3d-4e5f-8a9b-c0d1e2f3a4b5"
EMAIL = "dev@example.org"
RESOURCE_TOKEN = "36cc2a289c22512c35b408d2ed4b6819ec633681"
USER_SCOPED_TOKEN = "b27bf1229cbb0386b0a468b5008d8e0b6a61d9454ac3a45a7420044a11b5db2c"


def test_the_worked_example() -> None:
    assert resource_token(UUID, SALT, STAMP) == RESOURCE_TOKEN == resource_token(UUID, SALT, str(STAMP))
    assert user_scoped_resource_token(UUID, SALT, STAMP, USER, EMAIL) == USER_SCOPED_TOKEN


def params(**changes: str) -> dict[str, str]:
    made = sso_params(UUID, SALT, user_id=USER, email=EMAIL, app="shop-api", timestamp=STAMP)
    return {**made, **changes}


def test_the_gateway_form_carries_both_tokens() -> None:
    form = params()
    assert form == {"resource_id": UUID, "timestamp": "1735689600", "resource_token": RESOURCE_TOKEN,
                    "user_scoped_resource_token": USER_SCOPED_TOKEN,
                    "user_id": USER, "email": EMAIL, "app": "shop-api", "context_app": "shop-api"}
    assert verify_sso(form, SALT, now=STAMP)


@pytest.mark.parametrize("offset, accepted", [(0, True), (300, True), (-300, True), (301, False),
                                              (-301, False), (360, False), (-3600, False)])
def test_the_window_is_five_minutes_either_side(offset: int, accepted: bool) -> None:
    assert verify_sso(params(), SALT, now=STAMP + offset) is accepted
    assert verify_sso(params(), SALT, now=STAMP + offset, window=600) is (abs(offset) <= 600)


@pytest.mark.parametrize("changes", [
    {"resource_id": "5b1f6c2e-9d0a-4a57-8e3c-2f4b7d9a1c61"},    # another resource
    {"timestamp": str(STAMP + 1)},                               # a re-stamped form
    {"email": "mallory@example.org"},                            # another user
    {"user_id": "00000000-0000-0000-0000-000000000000"},
    {"resource_token": "0" * 40},
    {"user_scoped_resource_token": "invalid"},
    {"resource_token": RESOURCE_TOKEN + "é"},
    {"timestamp": "1735689600.0"},
    {"timestamp": "-1735689600"},
    {"timestamp": ""},
    {"resource_id": ""},
])
def test_tampering_is_refused(changes: dict[str, str]) -> None:
    assert not verify_sso(params(**changes), SALT, now=STAMP)
    assert not verify_sso(params(), "another-salt", now=STAMP)


def test_either_token_alone_is_enough_and_none_is_not() -> None:
    full = params()
    only_old = {k: v for k, v in full.items() if k != "user_scoped_resource_token"}
    only_new = {k: v for k, v in full.items() if k != "resource_token"}
    neither = {k: v for k, v in only_new.items() if k != "user_scoped_resource_token"}
    assert verify_sso(only_old, SALT, now=STAMP) and verify_sso(only_new, SALT, now=STAMP)
    assert not verify_sso(neither, SALT, now=STAMP)
    # A valid old-style token does not carry a forged user-scoped one.
    assert not verify_sso({**only_old, "user_scoped_resource_token": "f" * 64}, SALT, now=STAMP)


def test_hex_case_does_not_matter() -> None:
    assert verify_sso(params(resource_token=params()["resource_token"].upper()), SALT, now=STAMP)


@pytest.mark.parametrize("changes, offset", [({}, 0), ({}, 299), ({}, 400), ({"email": "x@example.org"}, 0),
                                             ({"resource_token": "bad"}, 0)])
def test_the_example_partners_own_check_agrees(changes: dict[str, str], offset: int) -> None:
    """The example partner verifies tokens with its own code; both sides must agree."""
    form = params(**changes)
    now = STAMP + offset
    assert example_partner_accepts(form, SALT, now=now) is verify_sso(form, SALT, now=now)
