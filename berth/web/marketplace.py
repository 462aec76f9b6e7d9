"""The add-on marketplace: the catalogue, a page per service, installing an add-on.

Installing goes through the same schema and service functions as `POST /apps/{app}/addons`;
the page commits and wakes a worker like the API, but redirects at once instead of waiting:
the add-on page follows the progress.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import redirect, request, url_for
from sqlalchemy import func, select

from berth.broker import catalogue, provisioning
from berth.broker.models import AddonService, Plan
from berth.jobs.wakeup import nudge_workers
from berth.broker.schemas import AddOnCreateSchema
from berth.errors import BerthError
from berth.httpapi.body import load
from berth.httpapi.context import current_account, db_session
from berth.platform import apps
from berth.platform.models import App
from berth.web.pages import blueprint, login_required, render, settings, signed_in_account

Reply = Any


# -- what the templates show --------------------------------------------------------------------

def listed_plans(service: AddonService) -> list[Plan]:
    """Plans anyone may pick: private ones are for the partner's chosen customers (API: visible)."""
    return [plan for plan in service.plans if plan.state != "private"]


def dollars(cents: int) -> str:
    return f"${cents // 100}" if cents % 100 == 0 else f"${cents / 100:.2f}"


def feature_names(plans: list[Plan]) -> list[str]:
    """Every feature any plan lists, in first-seen order: the comparison table's columns."""
    names: dict[str, None] = {}
    for plan in plans:
        for feature in plan.features:
            names.setdefault(str(feature.get("name", "")), None)
    return [name for name in names if name]


def feature_value(plan: Plan, name: str) -> str | None:
    return next((str(f.get("value", "")) for f in plan.features if f.get("name") == name), None)


@blueprint.app_template_global()
def price_text(cents: int) -> str:
    return dollars(cents)


# -- the catalogue ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    """What a catalogue card shows: a row, not an entity, so 200 services cost one small query."""
    name: str
    human_name: str
    description: str
    categories: list[str]
    state: str
    cheapest_cents: int | None


def _all_services() -> list[Card]:
    """The API's catalogue, one query whatever its size: the cheapest listed plan comes from an
    aggregate, not from loading every plan (and its JSON features)."""
    cheapest = (select(Plan.service_id, func.min(Plan.cents).label("cents"))
                .where(Plan.state != "private").group_by(Plan.service_id).subquery())
    query = (catalogue.services_query()
             .with_only_columns(AddonService.name, AddonService.human_name, AddonService.description,
                                AddonService.categories, AddonService.state, cheapest.c.cents)
             .outerjoin(cheapest, cheapest.c.service_id == AddonService.id).order_by(AddonService.name))
    return [Card(*row) for row in db_session().execute(query)]


def _card_price(card: Card) -> str | None:
    return None if card.cheapest_cents is None else dollars(card.cheapest_cents)


def _matches(service: Card, words: str, category: str) -> bool:
    """Filtered in Python: categories are a JSON list, which SQLite and Postgres query differently."""
    if category and category not in service.categories:
        return False
    text = f"{service.name}\n{service.human_name}\n{service.description}".casefold()
    return all(word in text for word in words.casefold().split())


@blueprint.get("/marketplace")
def catalogue_page() -> Reply:
    services = _all_services()
    words = (request.args.get("q") or "").strip()
    category = (request.args.get("category") or "").strip()
    categories = sorted({c for service in services for c in service.categories}, key=str.casefold)
    shown = [service for service in services if _matches(service, words, category)]
    return render("web/marketplace/catalogue.html", services=shown, total=len(services), q=words,
                  category=category, categories=categories, card_price=_card_price)


# -- one service, and installing it ----------------------------------------------------------------

def _my_apps() -> list[App]:
    account = signed_in_account()
    if account is None:
        return []
    return list(db_session().scalars(apps.visible_apps_query(account.id).order_by(App.name)))


def _service_page(service_ref: str, status: int = 200, **context: Any) -> Reply:
    service = catalogue.get_service(db_session(), service_ref)
    plans = listed_plans(service)
    default = service.default_plan
    context.setdefault("form", {"plan": default.name if default else "", "app": request.args.get("app", "")})
    return render("web/marketplace/service.html", status, service=service, plans=plans,
                  features=feature_names(plans), feature_value=feature_value, my_apps=_my_apps(),
                  next_page=request.full_path.rstrip("?") if request.method == "GET"
                  else url_for("web.service_page", service_ref=service.name), **context)


@blueprint.get("/marketplace/<service_ref>")
def service_page(service_ref: str) -> Reply:
    return _service_page(service_ref)


def _create_params(service: AddonService) -> dict[str, Any]:
    """The form as the API's create body; the plan is always looked up within this service."""
    plan = (request.form.get("plan") or "").strip()
    attachment = (request.form.get("attachment_name") or "").strip()
    return load(AddOnCreateSchema(), {"plan": f"{service.name}:{plan}" if plan else "",
                                      "attachment": {"name": attachment} if attachment else None})


@blueprint.post("/marketplace/<service_ref>/install")
@login_required
def install_addon(service_ref: str) -> Reply:
    session, account = db_session(), current_account()
    service = catalogue.get_service(session, service_ref)
    try:
        params = _create_params(service)
        attachment_name = (params["attachment"] or {}).get("name")
        addon = provisioning.create_addon(session, settings(), account.id, (request.form.get("app") or "").strip(),
                                          params["plan"], attachment_name=attachment_name)
    except BerthError as error:
        session.rollback()  # nothing of a refused install stays
        return _service_page(service_ref, error.status, error=error.message, form=request.form)
    target = url_for("web.addon_page", app_ref=addon.app.name, addon_ref=addon.name)
    session.commit()  # the worker sees the operation only once committed
    nudge_workers(settings().data_dir)
    return redirect(target, 303)
