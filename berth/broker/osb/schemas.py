"""OSB request schemas (unknown fields ignored, as the spec demands) and version-gated answers:
a field newer than the request's `X-Broker-API-Version`, or one without a value, is never sent
(deployed 2.13 clients reject both)."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_dump, validate, validates

from berth.broker.osb import protocol

MAX_PARAMETERS = 50
PARAMETER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}\Z")
# What the catalogue publishes for a plan's parameters: add-on options, a flat map of strings.
PARAMETERS_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "maxProperties": MAX_PARAMETERS,
    "patternProperties": {PARAMETER_NAME.pattern.replace("\\Z", "$"): {"type": "string", "maxLength": 1000}},
    "additionalProperties": False}
# Bindings take no parameters: every binding of an instance gets its credentials.
BINDING_PARAMETERS_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "additionalProperties": False}


def check_parameters(parameters: dict[str, Any]) -> None:
    """The published PARAMETERS_SCHEMA, checked by hand (a flat map needs no schema engine)."""
    if len(parameters) > MAX_PARAMETERS:
        raise protocol.bad_request(f"At most {MAX_PARAMETERS} parameters.")
    for name, value in parameters.items():
        if not PARAMETER_NAME.match(name):
            raise protocol.bad_request(f"Parameter {name[:100]!r} does not fit the plan's schema: names start with "
                                       "a letter and hold letters, digits, '_', '.', '-'.")
        if not isinstance(value, str) or len(value) > 1000:
            raise protocol.bad_request(f"Parameter {name} does not fit the plan's schema: values are strings "
                                       "of at most 1000 characters.")


class _Request(Schema):
    class Meta:
        unknown = EXCLUDE


class MaintenanceInfoSchema(_Request):
    version = fields.String(required=True)
    description = fields.String()


_ref = {"required": True, "validate": validate.Length(min=1, max=255)}


class ProvisionSchema(_Request):
    service_id = fields.String(**_ref)
    plan_id = fields.String(**_ref)
    context = fields.Dict(load_default=dict)
    organization_guid = fields.String(load_default=None, validate=validate.Length(min=1, max=255))
    space_guid = fields.String(load_default=None, validate=validate.Length(min=1, max=255))
    parameters = fields.Dict(load_default=dict)
    maintenance_info = fields.Nested(MaintenanceInfoSchema, load_default=None)


class UpdateSchema(_Request):
    service_id = fields.String(**_ref)
    plan_id = fields.String(validate=validate.Length(min=1, max=255))
    context = fields.Dict()
    parameters = fields.Dict()
    previous_values = fields.Dict(load_default=dict)
    maintenance_info = fields.Nested(MaintenanceInfoSchema)


class BindSchema(_Request):
    service_id = fields.String(**_ref)
    plan_id = fields.String(**_ref)
    context = fields.Dict(load_default=dict)
    bind_resource = fields.Dict(load_default=dict)
    app_guid = fields.String(load_default=None)
    parameters = fields.Dict(load_default=dict)
    predecessor_binding_id = fields.String(load_default=None)


class DeleteQuerySchema(_Request):
    """`service_id` and `plan_id` must be sent on DELETE (the spec's 400 otherwise)."""

    service_id = fields.String(**_ref)
    plan_id = fields.String(**_ref)
    accepts_incomplete = fields.String()

    @validates("accepts_incomplete")
    def _flag(self, value: str, **_: Any) -> None:
        if value.lower() not in ("true", "false"):
            raise ValidationError("must be true or false")


def load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        return schema.load(data)  # type: ignore[no-any-return]
    except ValidationError as error:
        problems = "; ".join(f"{field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
                             for field, messages in sorted(error.normalized_messages().items()))
        raise protocol.bad_request(f"Invalid request: {problems}.") from None


# -- answers --------------------------------------------------------------------------------------

class _Answer(Schema):
    """`SINCE`: the minor version that introduced a field (absent: 2.13 or older)."""

    SINCE: dict[str, int] = {}

    @post_dump
    def _drop_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value is not None}


def dump(schema_class: type[_Answer], value: Any) -> dict[str, Any]:
    """`value` as the request's version may see it."""
    minor = protocol.version()[1]
    only = [name for name in schema_class._declared_fields if schema_class.SINCE.get(name, 13) <= minor]
    return schema_class(only=only).dump(value)  # type: ignore[no-any-return]


class PlanSchema(_Answer):
    SINCE = {"plan_updateable": 15, "maximum_polling_duration": 15, "maintenance_info": 15,
             "binding_rotatable": 17}
    id = fields.String()
    name = fields.String()
    description = fields.String()
    metadata = fields.Dict()
    free = fields.Boolean()
    bindable = fields.Boolean()
    schemas = fields.Dict()
    plan_updateable = fields.Boolean()
    maintenance_info = fields.Dict()
    binding_rotatable = fields.Boolean()


class ServiceSchema(_Answer):
    SINCE = {"instances_retrievable": 14, "bindings_retrievable": 14, "allow_context_updates": 15}
    name = fields.String()
    id = fields.String()
    description = fields.String()
    tags = fields.List(fields.String())
    requires = fields.List(fields.String())
    bindable = fields.Boolean()
    instances_retrievable = fields.Boolean()
    bindings_retrievable = fields.Boolean()
    allow_context_updates = fields.Boolean()
    metadata = fields.Dict()
    dashboard_client = fields.Dict()
    plan_updateable = fields.Boolean()
    plans = fields.Method("_plans")

    def _plans(self, service: dict[str, Any]) -> list[dict[str, Any]]:
        return [dump(PlanSchema, plan) for plan in service["plans"]]


class ProvisionAnswerSchema(_Answer):
    SINCE = {"metadata": 16}
    dashboard_url = fields.String()
    operation = fields.String()
    metadata = fields.Dict()


UpdateAnswerSchema = ProvisionAnswerSchema  # the same fields, gated alike


class OperationAnswerSchema(_Answer):
    """An async deprovision or unbind: `{"operation"}`; a synchronous one dumps to exactly `{}`."""

    operation = fields.String()


class LastOperationSchema(_Answer):
    SINCE = {"instance_usable": 16, "update_repeatable": 16}
    state = fields.String()
    description = fields.String()
    instance_usable = fields.Boolean()
    update_repeatable = fields.Boolean()


class InstanceSchema(_Answer):
    SINCE = {"maintenance_info": 15, "metadata": 17}
    service_id = fields.String()
    plan_id = fields.String()
    dashboard_url = fields.String()
    parameters = fields.Dict()
    maintenance_info = fields.Dict()
    metadata = fields.Dict()


class BindingSchema(_Answer):
    SINCE = {"endpoints": 16, "parameters": 14, "metadata": 17}
    credentials = fields.Dict()
    syslog_drain_url = fields.String()
    route_service_url = fields.String()
    volume_mounts = fields.List(fields.Dict())
    endpoints = fields.List(fields.Dict())
    parameters = fields.Dict()
    metadata = fields.Dict()
