"""Marshmallow shapes of dyno sizes and the formation (Heroku Platform API §2.9)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from berth.httpapi.body import InputSchema
from berth.httpapi.fields import Reference, Timestamp
from berth.platform.dyno_sizes import MAX_DYNOS_PER_APP, SIZES

PROCESS_TYPE = r"^[-\w]{1,128}$"


class DynoSizeSchema(Schema):
    id = fields.String()
    name = fields.String()
    architecture = fields.Constant("amd64")
    compute = fields.Integer()
    memory = fields.Float(attribute="memory_gb")
    cost = fields.Function(lambda s: {"cents": s.monthly_cost_cents, "unit": "month"})
    dedicated = fields.Boolean()
    dyno_units = fields.Integer()
    precise_dyno_units = fields.Function(lambda s: float(s.dyno_units))
    private_space_only = fields.Constant(False)
    generation = fields.Constant({"id": "cedar", "name": "cedar"})


class FormationSchema(Schema):
    id = fields.String()
    type = fields.String()
    quantity = fields.Integer()
    size = fields.Function(lambda e: e.size.name)
    dyno_size = fields.Function(lambda e: {"id": e.size.id, "name": e.size.name})
    command = fields.String()
    app = fields.Function(lambda e: {"id": e.app.id, "name": e.app.name})
    created_at = Timestamp()
    updated_at = Timestamp()


class Quantity(fields.Field):
    """An integer, or a string of one, possibly relative ("+1", "-1", as `ps:scale` sends it); the
    service reads the string, this field only refuses what is neither."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValidationError("Must be a whole number, such as 2, or a string such as \"2\", \"+1\" or \"-1\".")
        return value


# What /openapi.json promises (the server accepts more: sizes in any case and their old names).
QUANTITY_SCHEMA = {"oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_DYNOS_PER_APP},
                             {"type": "string", "pattern": r"^[+-]?[0-9]{1,9}$"}]}
SIZE_SCHEMA = {"type": "string", "enum": [size.key for size in SIZES]}
DYNO_SIZE_SCHEMA = {"oneOf": [SIZE_SCHEMA, {"type": "object", "properties": {"name": SIZE_SCHEMA},
                                            "required": ["name"], "additionalProperties": False}]}


class FormationChangeSchema(InputSchema):
    quantity = Quantity(metadata={"json_schema": QUANTITY_SCHEMA})
    size = fields.String(validate=validate.Length(min=1, max=64), metadata={"json_schema": SIZE_SCHEMA})
    dyno_size = Reference(metadata={"json_schema": DYNO_SIZE_SCHEMA})


class FormationUpdateSchema(FormationChangeSchema):
    type = fields.String(required=True, validate=validate.Regexp(PROCESS_TYPE))


class FormationBatchSchema(InputSchema):
    updates = fields.List(fields.Nested(FormationUpdateSchema), required=True,
                          validate=validate.Length(min=1, max=100))
