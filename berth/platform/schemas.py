"""Marshmallow schemas of the Platform API: what comes in (validated) and what goes out."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema
from sqlalchemy.orm import object_session

from berth.config import Settings
from berth.httpapi.body import InputSchema
from berth.httpapi.fields import JsonBoolean, Reference, ScalarString, Timestamp, strict_boolean
from berth.platform import app_facts
from berth.platform.apps import stable_id
from berth.platform.config_vars import NAME_PATTERN
from berth.platform.models import ReleaseStatus
from berth.platform.naming import APP_NAME_PATTERN
from berth.platform.one_off_dynos import RELEASE_TYPE
from berth.platform.stacks import canonical as canonical_stack

TEN_YEARS = 10 * 365 * 24 * 3600


def _named(kind: str, name: str) -> dict[str, str]:
    return {"id": stable_id(kind, name), "name": name}


# ---- account and API keys ----------------------------------------------------------------

class AccountSchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String(allow_none=True)
    allow_tracking = fields.Boolean()
    beta = fields.Boolean()
    verified = fields.Function(lambda a: True)
    two_factor_authentication = fields.Function(lambda a: False)
    federated = fields.Function(lambda a: False)
    last_login = Timestamp()
    default_organization = fields.Function(lambda a: None)
    default_team = fields.Function(lambda a: None)
    identity_provider = fields.Function(lambda a: None)
    sms_number = fields.Function(lambda a: None)
    suspended_at = fields.Function(lambda a: None)
    delinquent_at = fields.Function(lambda a: None)
    country_of_residence = fields.Function(lambda a: None)
    created_at = Timestamp()
    updated_at = Timestamp()


class AccountUpdateSchema(InputSchema):
    allow_tracking = JsonBoolean()
    beta = JsonBoolean()
    name = fields.String(allow_none=True, validate=validate.Length(max=255))


class RateLimitSchema(Schema):
    remaining = fields.Integer()


def _token_shape(auth: Any) -> dict[str, Any]:
    # The clear token exists only on the answer that minted it; afterwards a redacted form.
    token = auth.clear_token or "**********" + auth.token_suffix
    return {"id": auth.id, "token": token, "expires_in": auth.expires_in}


class AuthorizationSchema(Schema):
    id = fields.String()
    description = fields.String()
    scope = fields.List(fields.String())
    default = fields.Boolean(attribute="is_default")
    access_token = fields.Function(_token_shape)
    refresh_token = fields.Function(lambda a: None)
    grant = fields.Function(lambda a: None)
    client = fields.Function(lambda a: None)
    session = fields.Function(lambda a: None)
    user = fields.Function(lambda a: {"id": a.account.id, "email": a.account.email,
                                      "full_name": a.account.name})
    created_at = Timestamp()
    updated_at = Timestamp()


class AuthorizationCreateSchema(InputSchema):
    TOLERATED = frozenset({"client"})
    description = fields.String(load_default="", validate=validate.Length(max=1000))
    scope = fields.List(fields.String(validate=validate.OneOf(
        ["global"], error="Only the global scope is supported.")), load_default=["global"])
    expires_in = fields.Integer(strict=True, allow_none=True, load_default=None,
                                validate=validate.Range(min=1, max=TEN_YEARS))


class AuthorizationUpdateSchema(InputSchema):
    TOLERATED = frozenset({"client"})
    description = fields.String(required=True, validate=validate.Length(max=1000))


# ---- apps ----------------------------------------------------------------------------------

class AppSchema(Schema):
    def __init__(self, *, settings: Settings | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._slugs: dict[str, Any] = {}

    id = fields.String()
    name = fields.String()
    owner = fields.Function(lambda app: {"id": app.owner.id, "email": app.owner.email})
    region = fields.Function(lambda app: _named("region", app.region))
    stack = fields.Function(lambda app: _named("stack", canonical_stack(app.stack)))
    build_stack = fields.Function(lambda app: _named("stack", canonical_stack(app.build_stack)))
    git_url = fields.Method("_git_url")
    web_url = fields.Method("_web_url")
    maintenance = fields.Boolean()
    acm = fields.Function(lambda app: False)
    repo_size = fields.Method("_repo_size")
    slug_size = fields.Method("_slug_size")
    buildpack_provided_description = fields.Method("_buildpack_provided_description")
    space = fields.Function(lambda app: None)
    organization = fields.Function(lambda app: None)
    team = fields.Function(lambda app: None)
    internal_routing = fields.Function(lambda app: None)
    generation = fields.Function(lambda app: _named("generation", "cedar"))
    create_status = fields.Function(lambda app: "complete")
    process_tier = fields.Function(lambda app: "basic")
    locked = fields.Function(lambda app: False)
    archived_at = fields.Function(lambda app: None)
    released_at = Timestamp()
    created_at = Timestamp()
    updated_at = Timestamp()

    def _repo_size(self, app: Any) -> int | None:
        return app_facts.repo_size(self.settings.data_dir, app.id) if self.settings else None

    def _current_slug(self, app: Any) -> Any:
        if app.id not in self._slugs:  # two fields read it: one query per app
            session = object_session(app)
            self._slugs[app.id] = app_facts.current_slug(session, app) if session is not None else None
        return self._slugs[app.id]

    def _slug_size(self, app: Any) -> int | None:
        slug = self._current_slug(app)
        return slug.size if slug is not None else None

    def _buildpack_provided_description(self, app: Any) -> str | None:
        slug = self._current_slug(app)
        return slug.buildpack_provided_description if slug is not None else None

    def _git_url(self, app: Any) -> str:
        return f"{self.settings.git_base_url}/{app.name}.git"

    def _web_url(self, app: Any) -> str:
        return f"http://{app.name}.{self.settings.apps_domain}:{self.settings.router_port}/"


class StackSchema(Schema):
    id = fields.String()
    name = fields.String()
    state = fields.String()
    default = fields.Boolean()
    created_at = Timestamp()
    updated_at = Timestamp()


class AppCreateSchema(InputSchema):
    # Sent by the Heroku CLI and heroku3 even when meaningless here.
    TOLERATED = frozenset({"kernel", "locked", "internal_routing", "feature_flags", "space", "team",
                           "organization", "personal"})
    name = fields.String(allow_none=True, load_default=None)
    region = Reference(allow_none=True, load_default=None)
    stack = Reference(allow_none=True, load_default=None)


class AppUpdateSchema(InputSchema):
    name = fields.String(validate=validate.Regexp(APP_NAME_PATTERN, error=(
        "Name must start with a letter, end with a letter or digit and can only contain "
        "lowercase letters, digits, and dashes; 3 to 30 characters.")))
    maintenance = strict_boolean()
    build_stack = Reference()


@dataclass(frozen=True)
class AppOwnerEntry:
    """The owner, shaped as a collaborator for lists (Heroku lists the owner with role `owner`)."""
    id: str
    app: Any
    account: Any
    created_at: datetime
    updated_at: datetime
    role: str = "owner"

    @classmethod
    def of(cls, app: Any) -> "AppOwnerEntry":
        return cls(id=app.owner.id, app=app, account=app.owner, created_at=app.created_at,
                   updated_at=app.updated_at)


class CollaboratorSchema(Schema):
    id = fields.String()
    app = fields.Function(lambda c: {"id": c.app.id, "name": c.app.name})
    user = fields.Function(lambda c: {"id": c.account.id, "email": c.account.email,
                                      "federated": False})
    role = fields.Function(lambda c: getattr(c, "role", "collaborator"))
    permissions = fields.Function(lambda c: [])
    created_at = Timestamp()
    updated_at = Timestamp()


class CollaboratorCreateSchema(InputSchema):
    user = Reference(required=True)
    silent = strict_boolean(load_default=False)


class DomainSchema(Schema):
    """Heroku's domain shape; certificates (ACM, SNI endpoints) are not managed: Berth's router
    presents a certificate from the installation CA for every domain."""
    id = fields.String()
    app = fields.Function(lambda d: {"id": d.app.id, "name": d.app.name})
    hostname = fields.String()
    kind = fields.String()
    cname = fields.String(allow_none=True)
    status = fields.Function(lambda d: "succeeded" if d.kind == "custom" else "none")
    acm_status = fields.Function(lambda d: None)
    acm_status_reason = fields.Function(lambda d: None)
    sni_endpoint = fields.Function(lambda d: None)
    created_at = Timestamp()
    updated_at = Timestamp()


class SniEndpointSchema(Schema):
    """Uploaded certificates: Berth has none (its router's certificates come from the installation
    CA), so lists of them are empty; the shape is there for clients that ask."""
    id = fields.String()
    name = fields.String()


class DomainCreateSchema(InputSchema):
    hostname = fields.String(required=True, validate=[
        validate.Length(min=1, max=254),
        validate.Regexp(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                        r"[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$",
                        error="Not a host name: use a name like www.example.com.")])
    sni_endpoint = fields.String(allow_none=True, load_default=None)  # the CLI sends it; unused


# ---- config vars and releases -----------------------------------------------------------

class ConfigVarsPatchSchema(InputSchema):
    """Wraps the flat map the API receives, so marshmallow validates names and value types."""

    config = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=255)),
                         values=ScalarString(allow_none=True), required=True)

    @validates_schema
    def _names(self, data: dict[str, Any], **_: Any) -> None:
        bad = sorted(name for name in data["config"] if not NAME_PATTERN.match(name))
        if bad:
            raise ValidationError(f"Invalid config var name {', '.join(map(repr, bad))}: names must "
                                  "match ^[A-Za-z_][A-Za-z0-9_]*$.")


class ReleaseSchema(Schema):
    def __init__(self, *, current_version: int | None = None, output_stream_urls: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current_version = current_version
        self.output_stream_urls = output_stream_urls or {}  # release id → its release phase's output

    id = fields.String()
    version = fields.Integer()
    description = fields.String()
    status = fields.String()
    current = fields.Method("_current")
    eligible_for_rollback = fields.Method("_eligible")
    user = fields.Function(lambda r: {"id": r.user.id, "email": r.user.email} if r.user else None)
    app = fields.Function(lambda r: {"id": r.app.id, "name": r.app.name})
    slug = fields.Function(lambda r: {"id": r.slug_id} if r.slug_id else None)
    addon_plan_names = fields.Function(lambda r: [])
    artifacts = fields.Function(lambda r: [{"type": "slug", "id": r.slug_id}] if r.slug_id else [])
    output_stream_url = fields.Method("_output_stream_url")
    created_at = Timestamp()
    updated_at = Timestamp()

    def _output_stream_url(self, release: Any) -> str | None:
        return self.output_stream_urls.get(release.id)  # None: no release phase ran for it

    def _current(self, release: Any) -> bool:
        return release.version == self.current_version

    def _eligible(self, release: Any) -> bool:
        # The current release too: `heroku releases:rollback` takes the second eligible one.
        return release.status == ReleaseStatus.SUCCEEDED


class ReleaseCreateSchema(InputSchema):
    """Release an uploaded slug (`slug`), or roll back to an earlier release (`release`)."""

    slug = Reference(load_default=None)
    release = Reference(load_default=None)
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("slug") is None) == (data.get("release") is None):
            raise ValidationError("Give exactly one of slug (an uploaded slug's id, to release it) or "
                                  "release (an earlier release's id or version, to roll back to it).")


# ---- slugs ---------------------------------------------------------------------------------

PROCESS_TYPE_PATTERN = r"^[-A-Za-z0-9_]{1,128}\Z"
CHECKSUM_INPUT_PATTERN = r"^[Ss][Hh][Aa]256:[0-9a-fA-F]{64}\Z"


class SlugCreateSchema(InputSchema):
    process_types = fields.Dict(
        keys=fields.String(validate=validate.Regexp(PROCESS_TYPE_PATTERN, error=(
            "Process types are 1 to 128 letters, digits, '_' or '-'."))),
        values=fields.String(validate=validate.Length(min=1, max=10_000)), required=True)
    checksum = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        CHECKSUM_INPUT_PATTERN, error="Checksum must be SHA256: followed by 64 hex digits."))
    commit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    commit_description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    buildpack_provided_description = fields.String(load_default=None, allow_none=True,
                                                   validate=validate.Length(max=255))
    stack = Reference(load_default=None, allow_none=True)


class SlugSchema(Schema):
    """`blob` is where the tarball goes (PUT, until uploaded) or comes from (GET): a URL that
    authorises itself for an hour, so clients send no API key with it."""

    def __init__(self, *, blob_url: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blob_url = blob_url

    id = fields.String()
    blob = fields.Method("_blob")
    buildpack_provided_description = fields.String(allow_none=True)
    checksum = fields.String(allow_none=True)
    commit = fields.String(allow_none=True)
    commit_description = fields.String(allow_none=True)
    process_types = fields.Dict()
    size = fields.Integer(allow_none=True)
    stack = fields.Function(lambda slug: _named("stack", canonical_stack(slug.stack)))
    created_at = Timestamp()
    updated_at = Timestamp()

    def _blob(self, slug: Any) -> dict[str, str]:
        method = "GET" if slug.size is not None else "PUT"
        return {"method": method, "url": self.blob_url(slug, method)}


# ---- buildpack installations ---------------------------------------------------------------

class BuildpackUpdateSchema(InputSchema):
    buildpack = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class BuildpackInstallationsUpdateSchema(InputSchema):
    updates = fields.List(fields.Nested(BuildpackUpdateSchema), required=True)


class BuildpackInstallationSchema(Schema):
    ordinal = fields.Integer()
    buildpack = fields.Function(lambda installed: {"url": installed.url, "name": installed.name})


# ---- one-off dynos -----------------------------------------------------------------------

ONE_OFF_SIZES = ("eco", "basic", "standard-1x", "standard-2x", "performance-m", "performance-l",
                 "free", "hobby")
MAX_TIME_TO_LIVE = 86400  # Heroku's default and maximum for a one-off dyno (seconds)
DEFAULT_ONE_OFF_SIZE = "standard-1x"


class DynoCreateSchema(InputSchema):
    """POST /apps/{app}/dynos as `heroku run`, `run:detached` and heroku3 send it."""

    command = fields.String(required=True, validate=validate.Length(min=1, max=10000))
    attach = JsonBoolean(load_default=False)
    env = fields.Dict(keys=fields.String(validate=validate.Regexp(NAME_PATTERN)),
                      values=ScalarString(validate=validate.Length(max=32768)), load_default=dict)
    force_no_tty = JsonBoolean(load_default=False, allow_none=True)
    size = fields.String(load_default=DEFAULT_ONE_OFF_SIZE, allow_none=True)  # heroku3 sends null
    type = fields.String(load_default="run", validate=[
        validate.Regexp(r"^[a-z][a-z0-9_-]{0,29}$"),
        validate.NoneOf([RELEASE_TYPE], error="release is the type of the release phase's dynos, which deploys "
                                              "start; give a one-off dyno another type (run, the default).")])
    time_to_live = fields.Integer(load_default=MAX_TIME_TO_LIVE, strict=False,
                                  validate=validate.Range(min=1, max=MAX_TIME_TO_LIVE))

    @validates_schema
    def _known_size(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("size") or DEFAULT_ONE_OFF_SIZE).lower() not in ONE_OFF_SIZES:
            raise ValidationError(f"Unknown dyno size; one of {', '.join(ONE_OFF_SIZES)}.", "size")

    @post_load
    def _default_size(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["size"] = data.get("size") or DEFAULT_ONE_OFF_SIZE
        return data


class DynoSchema(Schema):
    """A dynos_view.DynoView: never the router's address or the backend's id."""

    def __init__(self, *, attach_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.attach_url = attach_url

    id = fields.String()
    name = fields.String()
    type = fields.String()
    state = fields.String()
    command = fields.String()
    size = fields.Function(lambda d: d.size.name)  # "Standard-1X", as Heroku prints it
    attach_url = fields.Method("_attach_url")
    release = fields.Function(lambda d: {"id": d.release_id, "version": d.release_version})
    app = fields.Function(lambda d: {"id": d.app.id, "name": d.app.name})
    exit_code = fields.Integer(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()

    def _attach_url(self, dyno: Any) -> str | None:
        return self.attach_url


# A process type as dynos carry it, and a dyno's name: `web`, `web.1` (Heroku numbers from 1).
DYNO_TYPE = r"[A-Za-z0-9_-]{1,63}"
DYNO_NAME = DYNO_TYPE + r"\.[1-9][0-9]{0,8}"
# As /openapi.json states them (a JSON schema pattern has no \Z; the server's checks use it).
DYNO_REF_PATTERN = rf"^(?:{DYNO_TYPE}|{DYNO_NAME})$"
DYNO_TYPE_PATTERN = rf"^{DYNO_TYPE}$"


class DynoTargetSchema(InputSchema):
    """The path segment of a restart or stop: `dyno` a dyno's name or id or a process type (as
    DELETE /apps/{app}/dynos/{dyno} accepts), `type` a process type only (/formations/{type})."""

    dyno = fields.String(validate=validate.Regexp(
        DYNO_REF_PATTERN.removesuffix("$") + r"\Z",
        error="Not a dyno name (a process type and a number from 1, such as web.1), a dyno id or a process "
              "type (letters, digits, - and _, at most 63)."))
    type = fields.String(validate=validate.Regexp(
        DYNO_TYPE_PATTERN.removesuffix("$") + r"\Z",
        error="Not a process type (letters, digits, - and _, at most 63, such as web). To act on one dyno, "
              "use /apps/{{app}}/dynos/{{dyno}}."))
