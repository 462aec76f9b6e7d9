"""The catalogue: register services from manifests, find services and plans by id or name."""
from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, case, select, true
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.broker.models import AddOn, AddonService, Plan
from berth.broker.partner_api.manifest import HEROKU_REGIONS, ManifestError, load_manifest
from berth.errors import InvalidParams, NotFound
from berth.outbound import TargetPolicy, TargetRefused

SERVICE_NOT_FOUND = "Couldn't find that add-on service."
PLAN_NOT_FOUND = "Couldn't find that add-on plan."


def services_query() -> Select[tuple[AddonService]]:
    return select(AddonService)


# Heroku's names for the first-party services still work (app.json files name `heroku-postgresql`).
SERVICE_ALIASES = {"heroku-postgresql": "postgresql", "heroku-redis": "redis", "heroku-kafka": "kafka"}


def find_service(session: Session, ref: str) -> AddonService | None:
    if UUID_PATTERN.match(ref):
        return session.get(AddonService, ref.lower())
    found = session.scalar(select(AddonService).where(AddonService.name == ref))
    if found is None and ref in SERVICE_ALIASES:
        found = session.scalar(select(AddonService).where(AddonService.name == SERVICE_ALIASES[ref]))
    return found


def get_service(session: Session, ref: str) -> AddonService:
    service = find_service(session, ref)
    if service is None:
        raise NotFound(SERVICE_NOT_FOUND, resource="addon_service")
    return service


def plan_form(ref: str, *, within: str | None = None) -> tuple[str, dict[str, Any]]:
    """How `ref` names a plan, with the parameters of `plan_match(form)`: a plan's uuid,
    `<service uuid>:slug`, `service:slug`, or a bare word: the plan of that slug of the service
    `within` (an id), else the default plan of the service so named."""
    if UUID_PATTERN.match(ref):
        return "plan_id", {"plan_id": ref.lower()}
    service, sep, slug = ref.rpartition(":")
    if not sep:
        if within is not None:
            return "service_id", {"service_id": within, "slug": ref}
        return "default", {"service_name": ref, "service_alias": SERVICE_ALIASES.get(ref, ref)}
    if UUID_PATTERN.match(service):
        return "service_id", {"service_id": service.lower(), "slug": slug}
    return "service_name", {"service_name": service, "service_alias": SERVICE_ALIASES.get(service, service),
                            "slug": slug}


def plan_match(form: str) -> tuple[ColumnElement[bool], list[Any]]:
    """SQL over plans joined with their services: the condition and the order (first row wins)
    that find a plan named in `form`, with bind parameters named as `plan_form` gives them."""
    # A service's own name wins over a Heroku alias naming another (`heroku-postgresql`).
    named = AddonService.name.in_([bindparam("service_name", type_=String()),
                                   bindparam("service_alias", type_=String())])
    own_name_first = case((AddonService.name == bindparam("service_name", type_=String()), 0), else_=1)
    return {
        "plan_id": (Plan.id == bindparam("plan_id", type_=String()), []),
        "service_id": (and_(AddonService.id == bindparam("service_id", type_=String()),
                            Plan.name == bindparam("slug", type_=String())), []),
        "service_name": (and_(named, Plan.name == bindparam("slug", type_=String())), [own_name_first]),
        # The default plan: the first by price and name, as `default_plan` picks it.
        "default": (and_(named, Plan.is_default == true()), [own_name_first, Plan.cents, Plan.name]),
    }[form]


def get_plan(session: Session, ref: str, *, service: AddonService | None = None) -> Plan:
    """A plan by UUID, `service:plan`, or (within `service`) its bare slug."""
    form, params = plan_form(ref, within=service.id if service is not None else None)
    if form == "default":  # a bare word names a plan only within a service
        raise NotFound(PLAN_NOT_FOUND, resource="plan")
    condition, order = plan_match(form)
    query = select(Plan).join(AddonService, AddonService.id == Plan.service_id).where(condition)
    if service is not None:
        query = query.where(Plan.service_id == service.id)
    plan = session.scalar(query.order_by(*order).limit(1), params)
    if plan is None:
        raise NotFound(PLAN_NOT_FOUND, resource="plan")
    return plan


def manifest_of(service: AddonService) -> dict[str, Any]:
    """The manifest as its owner last pushed it (normalised), secrets included: owner's eyes only."""
    production = {"base_url": service.base_url}
    if service.sso_url:
        production["sso_url"] = service.sso_url
    api: dict[str, Any] = {
        "version": "3", "config_vars_prefix": service.config_vars_prefix,
        "config_vars": list(service.config_vars), "password": service.password,
        "regions": list(service.regions), "requires": list(service.requires), "production": production}
    if service.sso_salt:
        api["sso_salt"] = service.sso_salt
    api["client_secret"] = service.client_secret
    if service.test_endpoints:
        api["test"] = service.test_endpoints
    document: dict[str, Any] = {
        "id": service.name, "name": service.human_name, "$base": service.manifest_base, "api": api,
        "description": service.description, "categories": list(service.categories),
        "state": service.state, "plans": [{
            "name": p.name, "human_name": p.human_name, "description": p.description,
            "price": {"cents": p.cents, "unit": p.unit, "contract": p.contract, "metered": p.metered},
            "default": p.is_default, "state": p.state, "features": list(p.features)}
            for p in service.plans]}
    if service.cli_plugin_name:
        document["cli_plugin_name"] = service.cli_plugin_name
    return document


def _comparable(manifest: dict[str, Any], with_secret: bool) -> dict[str, Any]:
    """A manifest without what a push itself changes (`$base`) or, unless named, generates
    (`client_secret`)."""
    api = {k: v for k, v in manifest["api"].items() if with_secret or k != "client_secret"}
    return {**{k: v for k, v in manifest.items() if k not in ("$base", "base")}, "api": api}


def manifest_unchanged(session: Session, document: dict[str, Any],
                       known_regions: frozenset[str] = HEROKU_REGIONS, *, own_paths: bool = False) -> bool:
    """True when `document` would register exactly what is there already (first-party add-ons
    re-register on every start: an unchanged one is left alone, its `$base` not bumped)."""
    existing = find_service(session, str(document.get("id")))
    if existing is None:
        return False
    try:
        wanted = load_manifest(document, known_regions=known_regions, own_paths=own_paths)
        current = load_manifest(manifest_of(existing), known_regions=known_regions, own_paths=own_paths)
    except ManifestError:
        return False
    # A secret the document names (first-party Kafka derives one) must match; one it leaves out is
    # generated on first registration and kept.
    named_secret = bool(wanted["api"].get("client_secret"))
    return _comparable(wanted, named_secret) == _comparable(current, named_secret)


def register_manifest(session: Session, document: Any, *, owner: Account | None,
                      known_regions: frozenset[str] = HEROKU_REGIONS, targets: TargetPolicy | None = None,
                      own_paths: bool = False) -> AddonService:
    """Create or update a service from a pushed manifest.

    `owner` None is the operator (`admin register-addon`), who may replace any service; an
    account may create a new service or update one it owns. Another account's service is
    reported as taken, without revealing more. An account's base URLs must be addresses the
    installation's `targets` policy lets Berth call (public ones only, by default); the
    operator's are checked when they are called. `own_paths`: first-party providers only.
    """
    service_id = document.get("id") if isinstance(document, dict) else None
    existing = find_service(session, service_id) if isinstance(service_id, str) else None
    if existing is not None and owner is not None and existing.owner_id != owner.id:
        raise InvalidParams(f"The add-on id {service_id!r} is already taken.")
    try:
        previous = {"id": existing.name, "base": existing.manifest_base} if existing else None
        manifest = load_manifest(document, known_regions=known_regions, previous=previous,
                                 own_paths=own_paths and owner is None)
    except ManifestError as error:
        raise InvalidParams(f"Invalid manifest. {error}", errors=error.errors) from None
    if owner is not None or targets is not None:
        _check_targets(manifest, targets or TargetPolicy())
    if existing is not None:
        _keep_plans_in_use(session, existing, {plan["name"] for plan in manifest["plans"]})
    service = existing or AddonService(name=manifest["id"], owner_id=owner.id if owner else None)
    _apply(service, manifest)
    if existing is None:
        session.add(service)
    session.flush()
    return service


def _check_targets(manifest: dict[str, Any], targets: TargetPolicy) -> None:
    """The URLs Berth's workers will call must be ones it may call (server-side request forgery)."""
    errors: dict[str, list[str]] = {}
    for block in ("production", "test"):
        url = (manifest["api"].get(block) or {}).get("base_url")
        try:
            if url:
                targets.check_url(url, what=f"{block} base_url")
        except TargetRefused as refused:
            errors[f"api.{block}.base_url"] = [str(refused)]
    if errors:
        detail = " ".join(message for messages in errors.values() for message in messages)
        raise InvalidParams(f"Invalid manifest. {detail}", errors=errors)


def _keep_plans_in_use(session: Session, service: AddonService, kept: set[str]) -> None:
    """A plan some add-on was ever made on stays: its add-ons (and their history) name it.
    Partners retire one by marking it `deprecated` instead."""
    dropped = [plan.id for plan in service.plans if plan.name not in kept]
    if not dropped:
        return
    in_use = sorted(set(session.scalars(select(Plan.name).join(AddOn, AddOn.plan_id == Plan.id)
                                        .where(Plan.id.in_(dropped)))))
    if in_use:
        raise InvalidParams(f"Invalid manifest. Plan {', '.join(map(repr, in_use))} has add-ons and "
                            "cannot be removed; keep it in the manifest with \"state\": \"deprecated\" "
                            "to stop new installs.", errors={"plans": ["a plan in use cannot be removed"]})


def _apply(service: AddonService, manifest: dict[str, Any]) -> None:
    api = manifest["api"]
    service.human_name, service.description = manifest["name"], manifest["description"]
    service.categories, service.state = manifest["categories"], manifest["state"]
    service.cli_plugin_name = manifest.get("cli_plugin_name")
    service.config_vars_prefix, service.config_vars = api["config_vars_prefix"], api["config_vars"]
    service.regions, service.requires = api["regions"], api["requires"]
    service.base_url, service.sso_url = api["production"]["base_url"], api["production"].get("sso_url")
    service.test_endpoints = api.get("test")
    service.password, service.sso_salt = api["password"], api.get("sso_salt")
    if api.get("client_secret"):
        service.client_secret = api["client_secret"]
    elif not service.client_secret:
        service.client_secret = secrets.token_urlsafe(32)
    service.manifest_base = (service.manifest_base or 0) + 1
    current = {plan.name: plan for plan in service.plans}
    plans = []
    for spec in manifest["plans"]:
        plan = current.get(spec["name"]) or Plan(name=spec["name"])
        plan.human_name, plan.description = spec["human_name"], spec["description"]
        price = spec["price"]
        plan.cents, plan.unit = price["cents"], price["unit"]
        plan.contract, plan.metered = price["contract"], price["metered"]
        plan.is_default, plan.state, plan.features = spec["default"], spec["state"], spec["features"]
        plans.append(plan)
    # Plans left out of the manifest go (delete-orphan); `_keep_plans_in_use` has refused
    # the manifest already if one of them has add-ons.
    service.plans = plans
