"""The named-hook registry: events reach every listener in order, questions their one answerer."""
from __future__ import annotations

import pytest

from berth.hooks import APP_DESTROYING, LOG_DRAIN_ADDON, PARTNER_MAY_SEE_APP, Event, Hooks


def test_an_event_reaches_every_listener_in_order_and_a_failure_stops_the_change() -> None:
    hooks, seen = Hooks(), []
    hooks.register(APP_DESTROYING, lambda **payload: seen.append(("first", payload["app"])))
    hooks.register(APP_DESTROYING, lambda **payload: seen.append(("second", payload["app"])))
    hooks.fire(APP_DESTROYING, session=None, app="shop")
    hooks.fire(Event("nobody.listens"), app="shop")  # no listener: nothing happens
    assert seen == [("first", "shop"), ("second", "shop")]

    def refuse(**_payload: object) -> None:
        raise RuntimeError("refused")
    hooks.register(APP_DESTROYING, refuse)
    with pytest.raises(RuntimeError):
        hooks.fire(APP_DESTROYING, session=None, app="shop")


def test_a_question_nobody_answers_gives_its_default_and_one_answerer_replaces_another() -> None:
    hooks = Hooks()
    assert not hooks.answers(PARTNER_MAY_SEE_APP)
    assert hooks.ask(PARTNER_MAY_SEE_APP, None, "addon", "app") is False
    assert hooks.ask(LOG_DRAIN_ADDON, None, "owner") is None
    hooks.answer(PARTNER_MAY_SEE_APP, lambda session, addon_id, app: addon_id == "mine")
    assert hooks.ask(PARTNER_MAY_SEE_APP, None, "mine", "app") is True
    assert hooks.ask(PARTNER_MAY_SEE_APP, None, "theirs", "app") is False
    hooks.answer(PARTNER_MAY_SEE_APP, lambda *_args: True)
    assert hooks.ask(PARTNER_MAY_SEE_APP, None, "theirs", "app") is True
    hooks.answer(PARTNER_MAY_SEE_APP, None)
    assert not hooks.answers(PARTNER_MAY_SEE_APP) and hooks.ask(PARTNER_MAY_SEE_APP, None, "x", "y") is False
