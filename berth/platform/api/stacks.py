"""GET /stacks and /stacks/{name or id}: the one stack this Berth runs apps on."""
from __future__ import annotations

from typing import Any

from berth.httpapi.openapi import describe
from berth.platform import stacks
from berth.platform.api import blueprint
from berth.platform.schemas import StackSchema


@blueprint.get("/stacks")
@describe(summary="The stacks apps can build and run on (Berth has one)", response=StackSchema, many=True)
def list_stacks() -> Any:
    return StackSchema(many=True).dump(stacks.list_stacks())


@blueprint.get("/stacks/<stack_ref>")
@describe(summary="One stack by name or id (Heroku's stack names are aliases of Berth's)", response=StackSchema)
def show_stack(stack_ref: str) -> Any:
    return StackSchema().dump(stacks.get_stack(stack_ref))
