"""Marshmallow schemas of the broker's API: add-on services and plans, manifest pushes."""
from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import object_session

from berth.broker.attachments import declared_var_names
from berth.httpapi.body import InputSchema
from berth.httpapi.fields import Reference, ScalarString, Timestamp, strict_boolean
from berth.platform.logs import tokens

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


def _named(obj: Any) -> dict[str, str] | None:
    return {"id": obj.id, "name": obj.name} if obj is not None else None


def _addon_plan(addon: Any) -> dict[str, Any]:
    return {"id": addon.plan.id, "name": addon.plan.full_name, "price": _price(addon.plan)}


def _owner_var_names(addon: Any) -> list[str]:
    """The var names on the owning app (what the CLI prints as `Created x as DATABASE_URL`)."""
    owner = next((att for att in addon.attachments if att.app_id == addon.app_id), None)
    return declared_var_names(addon, owner.name) if owner is not None else []


def _log_input_url(attachment: Any) -> str | None:
    """Where the provider writes into this app's stream (`log_input` services only)."""
    session = object_session(attachment)
    token = tokens.owned_input_token(session, attachment.id) if session is not None else None
    if token is None or not has_app_context():
        return None
    return tokens.input_url(current_app.config["BERTH_SETTINGS"].api_url, token)


def _dashboard_url(app: Any, addon: Any) -> str | None:
    """The add-on's page on the dashboard, as seen from `app`: what `heroku addons:open` opens.

    First-party services have no SSO dashboard of a partner's; the page shows every add-on's
    state, plan and attachments, and leads on to the partner's dashboard where there is one."""
    if app is None or not has_app_context():
        return None
    return f"{current_app.config['BERTH_SETTINGS'].api_url}/dashboard/apps/{app.name}/addons/{addon.name}"


# Heroku's states; a failed add-on reads as `deprovisioned`, which is how the Heroku CLI's
# `--wait` learns that creation failed. `failure_message` says why.
PUBLIC_STATE = {"failed": "deprovisioned"}


class AddOnSchema(Schema):
    id = fields.String()
    name = fields.String()
    app = fields.Function(lambda a: _named(a.app))
    addon_service = fields.Function(lambda a: {"id": a.service.id, "name": a.service.name,
                                               "human_name": a.service.human_name})
    plan = fields.Function(_addon_plan)
    billed_price = fields.Function(lambda a: {"cents": a.plan.cents, "contract": a.plan.contract,
                                              "unit": a.plan.unit})
    billing_entity = fields.Function(lambda a: {**_named(a.app), "type": "app"} if a.app else None)
    state = fields.Function(lambda a: PUBLIC_STATE.get(a.state, a.state))
    config_vars = fields.Function(_owner_var_names)
    provider_id = fields.String(allow_none=True)
    provision_message = fields.String(allow_none=True)
    failure_message = fields.String(allow_none=True)
    actions = fields.Function(lambda a: [])
    web_url = fields.Function(lambda a: _dashboard_url(a.app, a))
    created_at = Timestamp()
    updated_at = Timestamp()


class AttachmentNameSchema(InputSchema):
    name = fields.String(allow_none=True, load_default=None)  # the CLI sends {} without --as


class AddOnCreateSchema(InputSchema):
    plan = Reference(required=True)
    name = fields.String(allow_none=True, load_default=None)
    attachment = fields.Nested(AttachmentNameSchema, allow_none=True, load_default=None)
    # Provider options (`addons:create svc -- --size 2 --tls`): strings, numbers and booleans
    # become strings, as the partner API sends them.
    config = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                         values=ScalarString(), allow_none=True, load_default=None)
    confirm = fields.String(allow_none=True, load_default=None)


class AddOnUpdateSchema(InputSchema):
    plan = Reference()
    name = fields.String()


class AddOnActionSchema(InputSchema):
    params = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                         values=fields.Raw(allow_none=True),
                         allow_none=True, load_default=None)


class AddOnActionResultSchema(Schema):
    message = fields.String(allow_none=True)
    result = fields.Raw(allow_none=True)


class AddOnDestroySchema(InputSchema):
    force = strict_boolean(load_default=False)


class AttachmentSchema(Schema):
    id = fields.String()
    name = fields.String()
    namespace = fields.String(allow_none=True)
    addon = fields.Function(lambda a: {"id": a.addon.id, "name": a.addon.name,
                                       "app": _named(a.addon.app), "plan": _addon_plan(a.addon)})
    app = fields.Function(lambda a: _named(a.app))
    config_vars = fields.Function(lambda a: declared_var_names(a.addon, a.name))
    web_url = fields.Function(lambda a: _dashboard_url(a.app, a.addon))
    log_input_url = fields.Function(_log_input_url)
    created_at = Timestamp()
    updated_at = Timestamp()


class AttachmentCreateSchema(InputSchema):
    addon = Reference(required=True)
    app = Reference(required=True)
    name = fields.String(allow_none=True, load_default=None)
    namespace = fields.String(allow_none=True, load_default=None)
    namespace_config = fields.Dict(allow_none=True, load_default=None)
    confirm = fields.String(allow_none=True, load_default=None)


class ResolveSchema(InputSchema):
    addon = fields.String(required=True)
    app = fields.String(allow_none=True, load_default=None)
    addon_service = fields.String(allow_none=True, load_default=None)


class ConfigItemSchema(InputSchema):
    name = fields.String(required=True)
    value = fields.String(required=True, allow_none=True)


class ConfigUpdateSchema(InputSchema):
    config = fields.List(fields.Nested(ConfigItemSchema), required=True)


class ConfigItemsSchema(Schema):
    name = fields.String()
    value = fields.String(allow_none=True)


class SsoSchema(Schema):
    method = fields.String()
    action = fields.String()
    params = fields.Dict(keys=fields.String(), values=fields.String())
