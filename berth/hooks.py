"""One registry of named hooks for reverse flows: a lower layer announces or asks, a higher one answers.

The platform may not import the broker (DESIGN.md), yet destroying an app must deprovision its
add-ons, and some platform answers need the broker's knowledge (which add-on owns a log drain,
which apps a partner's token reaches). `create_app` wires the broker's functions here; the
platform only knows the hooks' names, defined below.

- An `Event` has any number of listeners; firing it calls each inside the caller's transaction.
- A `Question` has at most one answerer; asking one nobody answers gives its default (a platform
  without a broker still works).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

Listener = Callable[..., None]
Answerer = Callable[..., Any]


@dataclass(frozen=True)
class Event:
    name: str


@dataclass(frozen=True)
class Question:
    name: str
    default: Any = None


APP_DESTROYING = Event("app.destroying")  # (session, app): the app's add-ons must go with it
# (session, releases: list[platform.releases.CreatedRelease]): releases were cut in this unit of
# work; a `succeeded` one is the app's current release (the run core rolls its dynos to it)
RELEASE_CREATED = Event("release.created")
# (session, release: platform.releases.CreatedRelease): a pending release's release phase succeeded
# and it is now the app's current release (the run core rolls its dynos to it, as for a
# succeeded RELEASE_CREATED); not fired when a newer release became current meanwhile
RELEASE_CURRENT = Event("release.current")
# (session, app_id, formation: list[platform.formation.ProcessEntry]): an app's formation was scaled or
# resized in this unit of work (the whole formation after the change); the run core reconciles its dynos
FORMATION_CHANGED = Event("formation.changed")
# (session, token) -> the add-on id a partner's OAuth access token reaches, or None
PARTNER_TOKEN_ADDON = Question("partner.token-addon")
# (session, partner_addon_id, app) -> bool: is the partner's add-on attached to the app
PARTNER_MAY_SEE_APP = Question("partner.may-see-app", default=False)
# (session, owner) -> {"id", "name", "app"} of the add-on owning a log drain, or None
LOG_DRAIN_ADDON = Question("log-drain.addon")
# app.json's add-ons (berth.platform.app_setups): the platform records them through the broker's
# normal provisioning path, follows them, and removes them when the deploy they belong to fails.
# (session, settings, app, user, requests: list[app_manifest.AddonRequest]) -> list[str]: the ids of the
# add-ons recorded (a request the app already meets, by attachment name or service, is skipped);
# raises ManifestInvalid naming every request it cannot take, having recorded nothing
MANIFEST_ADDONS = Question("manifest.addons")
# (session, addon_ids) -> {addon_id: (state, message)}: "provisioning", "provisioned", "failed", ...
ADDON_STATES = Question("addon.states")
# (session, addon_ids, user) -> None: the add-ons are destroyed (deprovisioned in the background)
REMOVE_ADDONS = Question("addons.remove")


SESSION_HOOKS = "berth.hooks"  # the key of a Database session's info that holds its Hooks


def hooks_of(session: Any) -> "Hooks":
    """The registry of the Database that made `session` (an empty one for a bare Session)."""
    found = session.info.get(SESSION_HOOKS)
    return found if found is not None else Hooks()


class Hooks:
    def __init__(self) -> None:
        self._listeners: dict[Event, list[Listener]] = defaultdict(list)
        self._answerers: dict[Question, Answerer] = {}

    def register(self, event: Event, listener: Listener) -> None:
        self._listeners[event].append(listener)

    def fire(self, event: Event, **payload: Any) -> None:
        # Listeners run inside the caller's transaction: a failure aborts the whole change.
        for listener in self._listeners.get(event, []):
            listener(**payload)

    def answer(self, question: Question, answerer: Answerer | None) -> None:
        """Install (or, with None, remove) the one function that answers `question`."""
        if answerer is None:
            self._answerers.pop(question, None)
        else:
            self._answerers[question] = answerer

    def answers(self, question: Question) -> bool:
        return question in self._answerers

    def ask(self, question: Question, *args: Any) -> Any:
        answerer = self._answerers.get(question)
        return question.default if answerer is None else answerer(*args)
