"""app.json: parsing and checking the manifest (runtime.md §4), every problem as one manifest error.

`parse_manifest(text)` answers a `Manifest` or raises `ManifestInvalid` whose `errors` name each
bad field in Heroku's wording ("env.FOO.generator: ..."). Unknown keys are ignored, as Heroku does.
Whether a required var has a value depends on the app and the overrides, so it is checked where
the manifest is applied (`required_missing`): "config var FOO is required".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

MAX_MANIFEST_BYTES = 256 * 1024
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*\Z")
PROCESS_TYPE = re.compile(r"^[A-Za-z0-9_-]{1,63}\Z")
PLAN = re.compile(r"^[a-z0-9][a-z0-9_-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)?\Z")
ATTACHMENT_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,62}\Z")
DYNO_SIZES = ("eco", "basic", "standard-1x", "standard-2x", "performance-m", "performance-l", "free", "hobby")
DYNO_SIZE_PREFIXES = ("private-", "shield-")
MAX_QUANTITY = 100
SECRET_GENERATOR = "secret"


class ManifestInvalid(Exception):
    """The manifest cannot be used; `errors` says why, one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class EnvVar:
    value: str | None = None
    required: bool = True
    generator: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ProcessFormation:
    quantity: int
    size: str | None = None


@dataclass(frozen=True)
class AddonRequest:
    plan: str                      # "service" or "service:plan"
    attachment_name: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    name: str | None = None
    description: str | None = None
    success_url: str | None = None
    env: dict[str, EnvVar] = field(default_factory=dict)
    formation: dict[str, ProcessFormation] = field(default_factory=dict)
    addons: list[AddonRequest] = field(default_factory=list)
    buildpacks: list[str] = field(default_factory=list)
    postdeploy: str | None = None

    def required_missing(self, present: Mapping[str, str], overrides: Mapping[str, str] = {}) -> list[str]:
        """Manifest errors for required vars with no value anywhere (the app's, the overrides, the manifest)."""
        return [f"config var {name} is required" for name, var in self.env.items()
                if var.required and var.value is None and var.generator is None
                and name not in present and name not in overrides]


def is_dyno_size(size: str) -> bool:
    lowered = size.lower()
    return lowered in DYNO_SIZES or any(lowered.startswith(prefix) and len(lowered) > len(prefix)
                                        for prefix in DYNO_SIZE_PREFIXES)


class Scalar(fields.Field):
    """A string; numbers and booleans become their JSON text (app.json files write "value": 5)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return json.dumps(value)
        if isinstance(value, str):
            return value
        raise ValidationError("must be a string")


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class EnvVarSchema(_Lenient):
    description = fields.String(load_default=None, allow_none=True)
    value = Scalar(load_default=None, allow_none=True)
    required = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    generator = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        [SECRET_GENERATOR], error='the only generator is "secret"'))

    @pre_load
    def _plain_value(self, data: Any, **_: Any) -> Any:
        return {"value": data} if not isinstance(data, dict) else data


class FormationSchema(_Lenient):
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=0, max=MAX_QUANTITY, error=f"must be a whole number from 0 to {MAX_QUANTITY}"))
    size = fields.String(load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _size(self, data: dict[str, Any], **_: Any) -> None:
        size = data.get("size")
        if size is not None and not is_dyno_size(size):
            raise ValidationError(f"{size!r} is not a dyno size (one of {', '.join(DYNO_SIZES)}, "
                                  "private-* or shield-*)", "size")


class AddonSchema(_Lenient):
    plan = fields.String(required=True)
    as_ = fields.String(data_key="as", load_default=None, allow_none=True, validate=validate.Regexp(
        ATTACHMENT_NAME, error="must be upper case letters, digits and underscores, starting with a letter"))
    options = fields.Dict(keys=fields.String(), values=Scalar(), load_default=dict)

    @pre_load
    def _plan_string(self, data: Any, **_: Any) -> Any:
        return {"plan": data} if isinstance(data, str) else data

    @validates_schema(skip_on_field_errors=False)
    def _plan_form(self, data: dict[str, Any], **_: Any) -> None:
        if "plan" in data and not PLAN.match(data["plan"]):
            raise ValidationError(f"{data.get('plan')!r} is not an add-on plan: write \"service\" or "
                                  "\"service:plan\" (heroku-postgresql:essential-0)", "plan")


class BuildpackSchema(_Lenient):
    url = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ScriptsSchema(_Lenient):
    postdeploy = fields.Raw(load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _postdeploy(self, data: dict[str, Any], **_: Any) -> None:
        script = data.get("postdeploy")
        if isinstance(script, dict):
            script = script.get("command")
        if script is not None and (not isinstance(script, str) or not script.strip()):
            raise ValidationError("must be a command (a non-empty string, or {\"command\": ...})", "postdeploy")


def _keys_matching(pattern: re.Pattern[str], what: str) -> Any:
    return fields.String(validate=validate.Regexp(pattern, error=f"{{input}} is not a valid {what}"))


class ManifestSchema(_Lenient):
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=30))
    description = fields.String(load_default=None, allow_none=True)
    keywords = fields.List(fields.String(), load_default=list)
    website = fields.String(load_default=None, allow_none=True)
    repository = fields.String(load_default=None, allow_none=True)
    logo = fields.String(load_default=None, allow_none=True)
    stack = fields.String(load_default=None, allow_none=True)
    image = fields.String(load_default=None, allow_none=True)
    success_url = fields.String(load_default=None, allow_none=True)
    env = fields.Dict(keys=_keys_matching(ENV_NAME, "config var name (^[A-Z][A-Z0-9_]*$)"),
                      values=fields.Nested(EnvVarSchema), load_default=dict)
    formation = fields.Dict(keys=_keys_matching(PROCESS_TYPE, "process type"),
                            values=fields.Nested(FormationSchema), load_default=dict)
    addons = fields.List(fields.Nested(AddonSchema), load_default=list)
    buildpacks = fields.List(fields.Nested(BuildpackSchema), load_default=list)
    scripts = fields.Nested(ScriptsSchema, load_default=dict)
    environments = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict)

    @validates_schema(skip_on_field_errors=False)
    def _success_url(self, data: dict[str, Any], **_: Any) -> None:
        url = data.get("success_url")
        if url and not (url.startswith("/") or re.match(r"^https?://[^/\s]+", url)):
            raise ValidationError("must be an absolute http(s) URL or a path starting with /", "success_url")


def _flatten(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested messages as "path: message" lines (dict keys' own errors under "key")."""
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            if key == "key" and path:  # a bad key of a mapping (env, formation)
                lines += [f"{path}: {message}" for message in _flatten(value)]
                continue
            if key == "value" and isinstance(value, dict):
                lines += _flatten(value, path)
                continue
            lines += _flatten(value, f"{path}.{key}" if path else str(key))
        return lines
    if isinstance(messages, list):
        if all(isinstance(message, str) for message in messages):
            return [f"{path}: {message}" if path else message for message in messages]
        return [line for message in messages for line in _flatten(message, path)]
    return [f"{path}: {messages}" if path else str(messages)]


def parse_manifest(text: str | bytes) -> Manifest:
    if len(text) > MAX_MANIFEST_BYTES:
        raise ManifestInvalid([f"app.json is larger than {MAX_MANIFEST_BYTES // 1024} kB; keep it to the manifest."])
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestInvalid([f"app.json is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]) \
            from None
    except (ValueError, RecursionError) as exc:
        raise ManifestInvalid([f"app.json is not valid JSON: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ManifestInvalid(["app.json must be a JSON object ({...})"])
    try:
        data = ManifestSchema().load(raw)
    except ValidationError as exc:
        raise ManifestInvalid(sorted(_flatten(exc.messages))) from None
    scripts = data["scripts"]
    postdeploy = scripts.get("postdeploy")
    if isinstance(postdeploy, dict):
        postdeploy = postdeploy.get("command")
    return Manifest(
        name=data["name"], description=data["description"], success_url=data["success_url"],
        env={name: EnvVar(var["value"], var["required"], var["generator"], var["description"])
             for name, var in data["env"].items()},
        formation={kind: ProcessFormation(entry["quantity"], entry["size"].lower() if entry["size"] else None)
                   for kind, entry in data["formation"].items()},
        addons=[AddonRequest(addon["plan"], addon["as_"], dict(addon["options"])) for addon in data["addons"]],
        buildpacks=[entry["url"] for entry in data["buildpacks"]],
        postdeploy=postdeploy.strip() if postdeploy else None)
