"""Marshmallow schemas of the broker's API: add-on services and plans, manifest pushes."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from berth.httpapi.body import InputSchema
from berth.httpapi.fields import Timestamp

CEDAR = {"id": "8c1dc3c9-5eef-51c5-a82a-b80937ca7f69", "name": "cedar"}


def _price(plan: Any) -> dict[str, Any]:
    return {"cents": plan.cents, "unit": plan.unit, "contract": plan.contract, "metered": plan.metered}


class AddonServiceSchema(Schema):
    id = fields.String()
    name = fields.String()
    human_name = fields.String()
    description = fields.String()
    state = fields.String()
    categories = fields.List(fields.String())
    cli_plugin_name = fields.String(allow_none=True)
    config_vars_prefix = fields.String()
    config_vars = fields.List(fields.String())
    regions = fields.List(fields.String())
    supports_multiple_installations = fields.Function(lambda s: "many_per_app" in s.requires)
    supports_sharing = fields.Function(lambda s: "attachable" in s.requires)
    supported_generations = fields.Function(lambda s: [CEDAR])
    default_plan = fields.Function(lambda s: {"id": s.default_plan.id, "name": s.default_plan.full_name}
                                   if s.default_plan else None)
    created_at = Timestamp()
    updated_at = Timestamp()


class PlanSchema(Schema):
    id = fields.String()
    name = fields.Function(lambda p: p.full_name)
    human_name = fields.String()
    description = fields.String()
    price = fields.Function(_price)
    default = fields.Boolean(attribute="is_default")
    state = fields.String()
    visible = fields.Function(lambda p: p.state != "private")
    features = fields.List(fields.Dict())
    compliance = fields.Function(lambda p: None)
    installable_inside_private_network = fields.Function(lambda p: False)
    installable_outside_private_network = fields.Function(lambda p: True)
    space_default = fields.Function(lambda p: False)
    addon_service = fields.Function(lambda p: {"id": p.service.id, "name": p.service.name})
    created_at = Timestamp()
    updated_at = Timestamp()


class ManifestPushSchema(InputSchema):
    contents = fields.Dict(required=True)


class ManifestSchema(Schema):
    contents = fields.Dict()
