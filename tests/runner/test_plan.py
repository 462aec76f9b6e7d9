"""The runner's planning, case by case: no processes, just what it decides to do."""
from __future__ import annotations

from berth.platform.dynos.backend import DynoStatus
from berth.platform.runner.crashes import QUICK_SECONDS, CrashBook
from berth.platform.runner.desired import AppWants, WantedDyno
from berth.platform.runner.plan import Remove, Start, Stop, plan_app

APP = "app-1"


def wants(version: int, **quantities: int) -> AppWants:
    dynos = tuple(WantedDyno(APP, kind, number, f"run {kind}", "standard-1x", f"r{version}", version, "SHA256:x", {})
                  for kind, quantity in quantities.items() for number in range(1, quantity + 1))
    return AppWants(APP, "app", version, dynos)


def dyno(name: str, state: str, version: int, *, id: str | None = None, started: float = 0.0) -> DynoStatus:
    return DynoStatus(id=id or f"{name}@v{version}", app_id=APP, name=name, state=state, exit_status=None,
                      address="127.0.0.1:1" if name.startswith("web") else None, started_at=started,
                      release_version=version)


def plan(app_wants: AppWants, observed: list[DynoStatus], *, stopping=(), requested=(), crashes=None, now=1000.0):
    return plan_app(app_wants, observed, stopping=set(stopping), requested=set(requested),
                    crashes=crashes or CrashBook(10, 1200), now=now)


def names(steps, kind) -> list[str]:
    return sorted((step.wanted.name if kind is Start else step.status.id) for step in steps if isinstance(step, kind))


def test_a_new_formation_starts_every_dyno() -> None:
    assert names(plan(wants(1, web=2, worker=1), []), Start) == ["web.1", "web.2", "worker.1"]


def test_nothing_to_do_when_everything_runs() -> None:
    assert plan(wants(1, web=2), [dyno("web.1", "up", 1), dyno("web.2", "starting", 1)]) == []


def test_scaling_down_stops_the_highest_numbers_and_a_type_gone_entirely() -> None:
    steps = plan(wants(1, web=1), [dyno("web.1", "up", 1), dyno("web.2", "up", 1), dyno("worker.1", "up", 1)])
    assert names(steps, Stop) == ["web.2@v1", "worker.1@v1"]
    assert names(steps, Start) == []


def test_a_deploy_rolls_the_old_web_dyno_keeps_serving_until_the_new_one_is_up() -> None:
    old = dyno("web.1", "up", 1)
    first = plan(wants(2, web=1), [old])
    assert names(first, Start) == ["web.1"] and names(first, Stop) == []
    starting = plan(wants(2, web=1), [old, dyno("web.1", "starting", 2)])
    assert starting == []  # still booting: the old one serves
    up = plan(wants(2, web=1), [old, dyno("web.1", "up", 2)])
    assert names(up, Stop) == ["web.1@v1"] and names(up, Start) == []
    ended = plan(wants(2, web=1), [dyno("web.1", "down", 1), dyno("web.1", "up", 2)])
    assert names(ended, Remove) == ["web.1@v1"]


def test_a_dyno_being_stopped_is_left_alone_and_a_restart_waits_for_it_to_end() -> None:
    running = dyno("web.1", "up", 1)
    requested = plan(wants(1, web=1), [running], requested={running.id})
    assert names(requested, Stop) == ["web.1@v1"] and names(requested, Start) == []
    meanwhile = plan(wants(1, web=1), [running], stopping={running.id})
    assert meanwhile == []  # one release's web.1 never runs twice
    after = plan(wants(1, web=1), [dyno("web.1", "down", 1)])
    assert names(after, Remove) == ["web.1@v1"] and names(after, Start) == ["web.1"]


def test_crashes_restart_at_once_then_cool_off_doubling() -> None:
    book = CrashBook(10, 1200)
    first = plan(wants(1, worker=1), [dyno("worker.1", "crashed", 1, id="c1", started=990)], crashes=book)
    assert names(first, Start) == ["worker.1"] and names(first, Remove) == ["c1"]
    second = dyno("worker.1", "crashed", 1, id="c2", started=1001)
    assert plan(wants(1, worker=1), [second], crashes=book, now=1002) == []  # cooling off: 10 s
    assert plan(wants(1, worker=1), [second], crashes=book, now=1011.9) == []
    assert names(plan(wants(1, worker=1), [second], crashes=book, now=1012), Start) == ["worker.1"]
    third = dyno("worker.1", "crashed", 1, id="c3", started=1013)
    assert plan(wants(1, worker=1), [third], crashes=book, now=1014) == []
    assert plan(wants(1, worker=1), [third], crashes=book, now=1033) == []  # now 20 s
    assert names(plan(wants(1, worker=1), [third], crashes=book, now=1034), Start) == ["worker.1"]
    assert [book.cool_off(count) for count in (1, 2, 3, 4, 10, 20)] == [0, 10, 20, 40, 1200, 1200]


def test_a_new_release_a_long_run_or_a_users_restart_ends_the_cool_off() -> None:
    book = CrashBook(10, 1200)
    for number, started in enumerate((990, 1001)):
        plan(wants(1, worker=1), [dyno("worker.1", "crashed", 1, id=f"c{number}", started=started)], crashes=book,
             now=started + 1)
    waiting = dyno("worker.1", "crashed", 1, id="c1", started=1001)
    assert plan(wants(1, worker=1), [waiting], crashes=book, now=1003) == []
    assert names(plan(wants(1, worker=1), [waiting], requested={"c1"}, crashes=book, now=1003), Start) == ["worker.1"]
    new_release = plan(wants(2, worker=1), [waiting], crashes=book, now=1003)
    assert names(new_release, Start) == ["worker.1"] and names(new_release, Remove) == ["c1"]
    long_run = dyno("worker.1", "crashed", 2, id="c9", started=1003 - QUICK_SECONDS - 5)
    book2 = CrashBook(10, 1200)
    for number in range(3):
        book2.restart_at(APP, "worker.1", 2, f"q{number}", 1000, 1001)
    assert names(plan(wants(2, worker=1), [long_run], crashes=book2, now=1003), Start) == ["worker.1"]


def test_an_app_with_no_code_or_gone_stops_everything() -> None:
    steps = plan(AppWants(APP, "app", None, ()), [dyno("web.1", "up", 1), dyno("web.2", "crashed", 1)])
    assert names(steps, Stop) == ["web.1@v1"] and names(steps, Remove) == ["web.2@v1"]
