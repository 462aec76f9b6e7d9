"""Add-on manifests: validation on push, per `specs/partner-api.md` §1.6 and kensa's checks (§6.1).

Berth extends Heroku's manifest with what Heroku keeps in its partner portal, so that one
document describes a service completely: `description`, `categories`, `state` and `plans`.
Loading returns the manifest normalised (object `production`, filled-in config var prefix);
errors come back per field path (`api.regions`, `plans.0.price.cents`) for the partner portal.
"""
from __future__ import annotations

import ipaddress
import re
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)

SLUG = re.compile(r"^[a-z][a-z0-9-]*\Z")
PLAN_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*\Z")
CONFIG_VAR_NAME = re.compile(r"^[A-Z][0-9A-Z_]+\Z")
# `grants`: the provider makes credentials of their own per grant (an OSB binding), revocable alone
# (`PUT|DELETE <base>/<id>/grants/<grant id>`); without it every binding shares the add-on's config.
REQUIRES_FLAGS = frozenset({"log_input", "syslog_drain", "many_per_app", "attachable", "grants"})
# Heroku's region names (§1.3); an installation adds its own (BERTH_REGION) when validating.
HEROKU_REGIONS = frozenset({"us", "eu", "dublin", "frankfurt", "london", "montreal", "mumbai",
                            "oregon", "singapore", "sydney", "tokyo", "virginia"})
SERVICE_STATES = ("alpha", "beta", "ga", "shutdown")
PLAN_STATES = ("public", "private", "beta", "deprecated")


class ManifestError(ValueError):
    """A refused manifest; `errors` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in sorted(errors.items())))
        self.errors = errors


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_partner_url(url: str) -> None:
    """https, or plain http to this machine only (first-party providers and local partners)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ValidationError("Must be an absolute https URL.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValidationError("Must use https (plain http is allowed only to a loopback address).")
    if parts.username or parts.password:
        raise ValidationError("Must not carry credentials.")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


OWN_PATH = re.compile(r"^/providers/[a-z][a-z0-9-]*(/[A-Za-z0-9._~-]+)*\Z")


# Set by load_manifest(own_paths=True) while it loads (marshmallow 4 has no schema context):
# Berth's own first-party providers name their endpoints as paths under `/providers/`, which
# every Berth process resolves against its own URL. A partner's manifest never may.
_OWN_PATHS: ContextVar[bool] = ContextVar("own_paths", default=False)


class EndpointsSchema(_Strict):
    base_url = fields.String(required=True)
    sso_url = fields.String()

    @validates("base_url", "sso_url")
    def _endpoint(self, value: str, **_: Any) -> None:
        if _OWN_PATHS.get() and OWN_PATH.match(value) and ".." not in value.split("/"):
            return
        check_partner_url(value)


class _Endpoints(fields.Field):
    """The object form `{base_url, sso_url}`, or the legacy single URL (no SSO URL)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, str]:
        if isinstance(value, str):
            value = {"base_url": value}
        if not isinstance(value, dict):
            raise ValidationError("Must be an object with base_url (and sso_url), or a URL.")
        return EndpointsSchema().load(value)


class ApiSchema(_Strict):
    version = fields.String(required=True, validate=validate.Equal(
        "3", error='Must be "3": Berth speaks version 3 of the partner API.'))
    config_vars_prefix = fields.String(validate=validate.Regexp(
        CONFIG_VAR_NAME, error="Must be upper-case letters, digits and underscores."))
    config_vars = fields.List(fields.String(), load_default=list)
    password = fields.String(required=True, validate=validate.Length(
        min=8, max=72, error="Must be 8 to 72 characters."))
    sso_salt = fields.String(validate=validate.Length(min=8, error="Must be at least 8 characters."))
    # Berth's extension: the OAuth client secret partners exchange grant codes with (Heroku
    # issues it in its partner portal). Generated when absent; pull the manifest to read it.
    client_secret = fields.String(validate=validate.Length(min=16, max=200,
                                                           error="Must be 16 to 200 characters."))
    regions = fields.List(fields.String(), required=True, validate=validate.Length(
        min=1, error="Must list at least one region, or \"*\"."))
    requires = fields.List(fields.String(), load_default=list)
    production = _Endpoints(required=True)
    test = _Endpoints()
    username = fields.Raw()

    @validates("username")
    def _no_username(self, value: Any, **_: Any) -> None:
        raise ValidationError("Must be absent: the Basic-auth user is always the manifest id.")

    @validates("requires")
    def _known_flags(self, value: list[str], **_: Any) -> None:
        unknown = sorted(set(value) - REQUIRES_FLAGS)
        if unknown:
            raise ValidationError(f"Unknown flags {unknown}; known: {sorted(REQUIRES_FLAGS)}.")


class PriceSchema(_Strict):
    cents = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    unit = fields.String(load_default="month", validate=validate.Equal("month"))
    contract = fields.Boolean(load_default=False)
    metered = fields.Boolean(load_default=False)


class FeatureSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    value = fields.String(required=True, validate=validate.Length(max=200))


class PlanSchema(_Strict):
    name = fields.String(required=True, validate=validate.Regexp(
        PLAN_SLUG, error="Must be lower-case letters, digits and dashes."))
    human_name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    price = fields.Nested(PriceSchema, required=True)
    default = fields.Boolean(load_default=False)
    state = fields.String(load_default="public", validate=validate.OneOf(PLAN_STATES))
    features = fields.List(fields.Nested(FeatureSchema), load_default=list)


class ManifestSchema(_Strict):
    id = fields.String(required=True, validate=validate.Regexp(
        SLUG, error="Must be lower-case letters, digits and dashes, starting with a letter."))
    name = fields.String(validate=validate.Length(min=1, max=100))
    cli_plugin_name = fields.String()
    base = fields.Integer(data_key="$base", strict=True)
    api = fields.Nested(ApiSchema, required=True)
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    categories = fields.List(fields.String(validate=validate.Length(min=1, max=50)), load_default=list)
    state = fields.String(load_default="ga", validate=validate.OneOf(SERVICE_STATES))
    plans = fields.List(fields.Nested(PlanSchema), required=True,
                        validate=validate.Length(min=1, error="Must offer at least one plan."))

    def __init__(self, *, known_regions: frozenset[str] = HEROKU_REGIONS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.known_regions = known_regions

    @pre_load
    def _must_be_object(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            raise ValidationError("A manifest is a JSON object.")
        return data

    @validates_schema(skip_on_field_errors=True)
    def _cross_field_rules(self, data: dict[str, Any], **_: Any) -> None:
        api = data["api"]
        errors: dict[str, list[str]] = {}
        unknown_regions = sorted(set(api["regions"]) - self.known_regions - {"*"})
        if unknown_regions:
            errors["api.regions"] = [f"Unknown regions {unknown_regions}; known: "
                                     f"{sorted(self.known_regions)} or \"*\"."]
        prefix = api.get("config_vars_prefix") or default_prefix(data["id"])
        bad_vars = [name for name in api["config_vars"]
                    if not CONFIG_VAR_NAME.match(name) or not name.startswith(prefix + "_")]
        if bad_vars:
            errors["api.config_vars"] = [f"{bad_vars} must be upper-case names starting with {prefix}_."]
        if "sso_url" in api["production"] and "sso_salt" not in api:
            errors["api.sso_salt"] = ["Required when production.sso_url is given."]
        names = [plan["name"] for plan in data["plans"]]
        if len(set(names)) != len(names):
            errors["plans"] = ["Plan names must be unique."]
        elif sum(plan["default"] for plan in data["plans"]) != 1:
            errors["plans"] = ["Exactly one plan must be the default."]
        if errors:
            raise ValidationError(errors)  # type: ignore[arg-type]

    @post_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["api"].setdefault("config_vars_prefix", default_prefix(data["id"]))
        data.setdefault("name", data["id"])
        for plan in data["plans"]:
            plan.setdefault("human_name", plan["name"].replace("-", " ").title())
        return data


def default_prefix(service_id: str) -> str:
    return service_id.upper().replace("-", "_")


def _paths(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages into {"api.regions": [...]}."""
    if isinstance(messages, list):
        return {prefix or "manifest": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
        if key == "_schema" and isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:  # cross-field errors arrive as dicts of paths
                for sub_path, sub_messages in item.items():
                    flat.setdefault(sub_path, []).extend(sub_messages)
            continue
        for sub_path, sub_messages in _paths(value, path).items():
            flat.setdefault(sub_path, []).extend(sub_messages)
    return flat


def load_manifest(document: Any, *, previous: dict[str, Any] | None = None,
                  known_regions: frozenset[str] = HEROKU_REGIONS, own_paths: bool = False) -> dict[str, Any]:
    """Validate a pushed manifest (against the previous push of the same service, if any).
    `own_paths`: endpoints may be paths of Berth's own (first-party providers only)."""
    own = _OWN_PATHS.set(own_paths)
    try:
        manifest = ManifestSchema(known_regions=known_regions).load(document)
    except ValidationError as error:
        raise ManifestError(_paths(error.messages)) from None
    finally:
        _OWN_PATHS.reset(own)
    if previous is not None:
        if manifest["id"] != previous["id"]:
            raise ManifestError({"id": [f"Cannot change from {previous['id']!r}: ids are permanent."]})
        if "base" in manifest and manifest["base"] != previous.get("base"):
            raise ManifestError({"$base": ["Stale: pull the current manifest and push again."]})
    return manifest
