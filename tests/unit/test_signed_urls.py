"""Signed URL tokens: valid for their purpose and resource until they expire, across key rotation."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from berth import crypto, signed_urls
from berth.signed_urls import InvalidToken


@pytest.fixture
def keys() -> list[str]:
    keys = [Fernet.generate_key().decode()]
    crypto.configure(keys)
    return keys


def test_a_token_allows_its_purpose_on_its_resource_until_it_expires(keys: list[str]) -> None:
    token = signed_urls.sign("source:get", "abc-123", ttl_seconds=3600, now=1000.0)
    assert signed_urls.verify("source:get", token, now=4600.0) == "abc-123"
    with pytest.raises(InvalidToken):
        signed_urls.verify("source:get", token, now=4601.0)  # expired
    with pytest.raises(InvalidToken):
        signed_urls.verify("source:put", token, now=1000.0)  # another purpose


@pytest.mark.parametrize("tamper", [
    lambda t: "abc-124" + t[7:],                          # another resource, same signature
    lambda t: t.replace(".4600.", ".9999."),              # a later expiry
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),    # the signature altered
    lambda t: t + "x", lambda t: "", lambda t: "../../etc/passwd",
])
def test_forged_or_altered_tokens_are_refused(keys: list[str], tamper: object) -> None:
    token = signed_urls.sign("source:get", "abc-123", ttl_seconds=3600, now=1000.0)
    with pytest.raises(InvalidToken):
        signed_urls.verify("source:get", tamper(token), now=1000.0)  # type: ignore[operator]


def test_tokens_signed_before_a_key_rotation_stay_valid_and_unknown_keys_are_refused(keys: list[str]) -> None:
    token = signed_urls.sign("slug:put", "s1", ttl_seconds=60)
    crypto.configure([Fernet.generate_key().decode(), *keys])  # a new key first, the old kept
    assert signed_urls.verify("slug:put", token) == "s1"
    crypto.configure([Fernet.generate_key().decode()])  # the old key dropped
    with pytest.raises(InvalidToken):
        signed_urls.verify("slug:put", token)


def test_resources_and_purposes_a_token_cannot_carry_are_refused(keys: list[str]) -> None:
    for purpose, resource in (("source:get", "a.b"), ("source:get", ""), ("Bad Purpose", "x")):
        with pytest.raises(ValueError):
            signed_urls.sign(purpose, resource, ttl_seconds=10)
