"""OpenAPI 3 document generated from the marshmallow schemas each view declares with @describe.

It has to say what the server does: a schemathesis run in the test suite
(tests/api/test_openapi_conformance.py) sends generated requests and checks the answers against it.
Fields whose rules marshmallow's own mapping cannot express (references, lenient scalars, booleans
that accept 0/1) are described here, from the fields' own settings."""
from __future__ import annotations

import re
from typing import Any, Callable, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields, validate

from berth.httpapi.body import InputSchema
from berth.httpapi.fields import JsonBoolean, Reference, ScalarString

F = TypeVar("F", bound=Callable[..., object])
_PATH_PARAMETER = re.compile(r"<(?:[^:>]+:)?([^>]+)>")
# Strings that reach a database: no NUL (the body loader refuses it before validation).
TEXT = {"type": "string", "pattern": r"^[^\u0000]*$"}
REFERENCE = {"oneOf": [
    {"type": "string", "pattern": r"^[^\u0000]*\S[^\u0000]*$"},
    {"type": "object", "minProperties": 1,
     "properties": {key: {"type": "string", "pattern": r"^[^\u0000]*\S[^\u0000]*$"}
                    for key in ("id", "name", "email")}, "additionalProperties": False,
     # The first of id, name, email that is present is used.
     "anyOf": [{"required": ["id"]}, {"required": ["name"]}, {"required": ["email"]}]}]}
SCALAR = {"oneOf": [TEXT, {"type": "number"}, {"type": "boolean"}]}
NO_NUL_NAMES = {"pattern": TEXT["pattern"]}
# Any JSON, free-form (manifests, provider options), with no NUL in any string or name in it.
ANY_JSON = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE = {"nullable": True, "anyOf": [
    TEXT, {"type": "number"}, {"type": "boolean"}, {"type": "array", "items": ANY_JSON},
    {"type": "object", "propertyNames": NO_NUL_NAMES, "additionalProperties": ANY_JSON}]}


def map_of_scalars(key_pattern: str, max_key_length: int) -> dict[str, Any]:
    """A flat JSON object: names matching `key_pattern` (a Python regex ending in \\Z) to a string,
    number or boolean, or null. `(?![\\s\\S])` is the end of the text in every regex dialect."""
    end = r"(?![\s\S])"
    pattern = key_pattern.removesuffix(r"\Z").removesuffix("$") + end
    return {"type": "object", "additionalProperties": False,
            "patternProperties": {pattern: {**SCALAR, "nullable": True}},
            "propertyNames": {"maxLength": max_key_length}}


class ErrorSchema(Schema):
    id = fields.String(required=True, metadata={"description": "machine-readable error id"})
    message = fields.String(required=True, metadata={"description": "human-readable message"})
    resource = fields.String(metadata={"description": "the missing resource, on 404"})


def describe(*, summary: str, response: type[Schema] | None = None, request: type[Schema] | None = None,
             many: bool = False, status: int = 200, map_of_strings: bool = False,
             request_json: dict[str, Any] | None = None,
             streams: tuple[str, ...] = (), path_patterns: dict[str, str] | None = None) -> Callable[[F], F]:
    """`request_json`: the body as a JSON schema, where no marshmallow schema can say it;
    `streams`: the text media types a streaming answer comes as, instead of JSON;
    `path_patterns`: path parameter -> the pattern it must match (others: any string)."""
    def decorate(view: F) -> F:
        view.berth_doc = {  # type: ignore[attr-defined]
            "summary": summary, "response": response, "request": request, "many": many,
            "status": status, "map_of_strings": map_of_strings, "request_json": request_json,
            "streams": streams, "path_patterns": path_patterns or {}}
        return view
    return decorate


def _body_schema(schema: type[Schema] | None, many: bool, map_of_strings: bool) -> Any:
    if map_of_strings:
        return {"type": "object", "additionalProperties": {"type": "string", "nullable": True}}
    if schema is None:
        return {"type": "object"}
    return {"type": "array", "items": schema} if many else schema


def _described_field(self: Any, field: fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
    """What the server accepts for the fields apispec cannot map by type alone (request bodies)."""
    if not isinstance(field.root, InputSchema):
        return {}
    if "json_schema" in field.metadata:  # a field that says what it accepts itself
        ret.pop("type", None)
        return dict(field.metadata["json_schema"])
    if isinstance(field, Reference):
        ret.pop("type", None)
        return dict(REFERENCE)
    if isinstance(field, ScalarString):
        ret.pop("type", None)
        return dict(SCALAR)
    if isinstance(field, fields.Boolean) and not isinstance(field, JsonBoolean):
        accepted = field.truthy | field.falsy
        if accepted and accepted <= {True, False}:
            # {True, False} also admits 1 and 0 (equal in Python): heroku3 sends them.
            ret.pop("type", None)
            return {"oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}
    if isinstance(field, fields.String) and "pattern" not in ret:
        return {"pattern": TEXT["pattern"]}
    if isinstance(field, fields.Dict):
        names = dict(NO_NUL_NAMES)
        for rule in getattr(field.key_field, "validators", []):
            if isinstance(rule, validate.Length):
                names.update({k: v for k, v in (("minLength", rule.min), ("maxLength", rule.max)) if v is not None})
        extra = {} if field.value_field is not None else {"additionalProperties": ANY_JSON}
        return {"propertyNames": names, **extra}
    if isinstance(field, fields.Raw) and type(field) is fields.Raw:
        ret.pop("type", None)
        return dict(ANY_JSON)
    return {}


def _responses(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["streams"]:
        body = {"content": {media: {"schema": {"type": "string"}} for media in doc["streams"]}}
    else:
        body = {"content": {"application/json": {
            "schema": _body_schema(doc["response"], doc["many"], doc["map_of_strings"])}}}
    answers = {str(doc["status"]): {"description": "success", **body}}
    if doc["many"]:  # a Range-limited page with more to come (Next-Range says where)
        answers["206"] = {"description": "partial content: more in the next range", **body}
    answers["default"] = {"description": "error", "content": {"application/json": {"schema": "Error"}}}
    return answers


def build_spec(app: Flask, version: str) -> dict[str, Any]:
    marshmallow = MarshmallowPlugin()
    spec = APISpec(title="Berth Platform API", version=version, openapi_version="3.0.3",
                   plugins=[marshmallow],
                   info={"description": "Compatible with the Heroku Platform API v3."})
    assert marshmallow.converter is not None
    marshmallow.converter.add_attribute_function(_described_field)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("JsonValue", component=JSON_VALUE)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        doc = getattr(app.view_functions.get(rule.endpoint), "berth_doc", None)
        if doc is None:
            continue
        path = _PATH_PARAMETER.sub(r"{\1}", rule.rule)
        parameters = [{"in": "path", "name": name, "required": True, "schema": {
            "type": "string", **({"pattern": doc["path_patterns"][name]} if name in doc["path_patterns"] else {})}}
            for name in _PATH_PARAMETER.findall(rule.rule)]
        operations: dict[str, Any] = {}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "summary": doc["summary"], "parameters": parameters, "responses": _responses(doc)}
            if doc["request_json"] is not None and method in ("POST", "PATCH", "PUT"):
                operation["requestBody"] = {"required": False, "content": {"application/json": {
                    "schema": doc["request_json"]}}}
            elif doc["request"] is not None or (doc["map_of_strings"] and method == "PATCH"):
                # Without a body the server reads {}: required when the schema has required fields.
                needed = doc["request"] is not None and any(
                    field.required for field in doc["request"]().fields.values())
                operation["requestBody"] = {"required": needed, "content": {"application/json": {
                    "schema": _body_schema(doc["request"], False, doc["map_of_strings"])}}}
            operations[method.lower()] = operation
        spec.path(path=path, operations=operations)
    return spec.to_dict()
