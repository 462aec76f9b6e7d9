"""The one stack Berth offers: the Debian bookworm root filesystem builds and dynos run on
(berth.supervise.stack), reported by its own name, with the names Heroku's clients send as aliases.

`heroku create` sends no stack, heroku3 sends `cedar`, app.json files and `heroku stack:set` name
Heroku's stacks (`heroku-24`, …): each of them means "the stack this Berth has". Rows written before
the stack had its own name say `heroku-24`; `canonical` reports those as the stack too.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from berth.errors import InvalidParams, NotFound
from berth.supervise.stack import STACK_ALIASES as SUPERVISE_ALIASES
from berth.supervise.stack import STACK_NAME

__all__ = ["STACK_NAME", "ALIASES", "Stack", "stack_id", "resolve_stack", "canonical", "list_stacks", "get_stack"]

# Heroku's current and retired stack names, the generation name heroku3 sends, and the stack's own.
ALIASES = frozenset({*SUPERVISE_ALIASES, "heroku-24", "heroku-22", "heroku-20", "heroku-18", "cedar",
                     "cedar-14", STACK_NAME})
# A fixed catalogue: a fixed date, so the object never changes between calls.
CREATED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stack_id(name: str = STACK_NAME) -> str:
    """Derived from the name (as regions' ids are), so every Berth gives its stack the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"berth:stack:{name}"))


@dataclass(frozen=True)
class Stack:
    name: str = STACK_NAME
    state: str = "public"
    default: bool = True
    created_at: datetime = CREATED_AT
    updated_at: datetime = CREATED_AT

    @property
    def id(self) -> str:
        return stack_id(self.name)


def _known(reference: str) -> bool:
    return reference in ALIASES or reference.lower() in {stack_id(name) for name in ALIASES}


def resolve_stack(reference: str | None) -> str:
    """The stack's name for what a client sent (None: the default); 422 for a stack Berth lacks."""
    if reference is None or _known(reference):
        return STACK_NAME
    raise InvalidParams(f"Couldn't find that stack: {reference}. Berth offers {STACK_NAME} "
                        f"(heroku-24 and cedar name it too).")


def canonical(stored: str) -> str:
    """What a stored stack name is reported as."""
    return STACK_NAME if _known(stored) else stored


def list_stacks() -> list[Stack]:
    return [Stack()]


def get_stack(reference: str) -> Stack:
    if not _known(reference):
        raise NotFound("Couldn't find that stack.", resource="stack")
    return Stack()
