"""OpenAPI 3 document generated from the marshmallow schemas each view declares with @describe."""
from __future__ import annotations

import re
from typing import Any, Callable, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields

F = TypeVar("F", bound=Callable[..., object])
_PATH_PARAMETER = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


class ErrorSchema(Schema):
    id = fields.String(required=True, metadata={"description": "machine-readable error id"})
    message = fields.String(required=True, metadata={"description": "human-readable message"})
    resource = fields.String(metadata={"description": "the missing resource, on 404"})


def describe(*, summary: str, response: type[Schema] | None = None, request: type[Schema] | None = None,
             many: bool = False, status: int = 200, map_of_strings: bool = False) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        view.berth_doc = {  # type: ignore[attr-defined]
            "summary": summary, "response": response, "request": request, "many": many,
            "status": status, "map_of_strings": map_of_strings}
        return view
    return decorate


def _body_schema(schema: type[Schema] | None, many: bool, map_of_strings: bool) -> Any:
    if map_of_strings:
        return {"type": "object", "additionalProperties": {"type": "string", "nullable": True}}
    if schema is None:
        return {"type": "object"}
    return {"type": "array", "items": schema} if many else schema


def build_spec(app: Flask, version: str) -> dict[str, Any]:
    spec = APISpec(title="Berth Platform API", version=version, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Compatible with the Heroku Platform API v3."})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        doc = getattr(app.view_functions.get(rule.endpoint), "berth_doc", None)
        if doc is None:
            continue
        path = _PATH_PARAMETER.sub(r"{\1}", rule.rule)
        parameters = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                      for name in _PATH_PARAMETER.findall(rule.rule)]
        operations: dict[str, Any] = {}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "summary": doc["summary"], "parameters": parameters,
                "responses": {
                    str(doc["status"]): {"description": "success", "content": {"application/json": {
                        "schema": _body_schema(doc["response"], doc["many"], doc["map_of_strings"])}}},
                    "default": {"description": "error", "content": {"application/json": {
                        "schema": "Error"}}}}}
            if doc["request"] is not None or (doc["map_of_strings"] and method == "PATCH"):
                operation["requestBody"] = {"required": False, "content": {"application/json": {
                    "schema": _body_schema(doc["request"], False, doc["map_of_strings"])}}}
            operations[method.lower()] = operation
        spec.path(path=path, operations=operations)
    return spec.to_dict()
