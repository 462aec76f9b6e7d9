"""The Builds tab (builds listed, each one's output escaped, a running build's output followed) and
rollback from the Activity tab (a confirm step, CSRF, the result or the API's refusal shown)."""
from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from berth.db import utcnow
from berth.jobs.queue import JobState
from berth.platform.builds.output import OutputWriter
from berth.platform.models import App, Build, Release, ReleaseStatus
from tests.conftest import Api, User
from tests.web.conftest import Browser, text

HOSTILE = "<script>alert('pwned')</script> & \x1b[31mred\x1b[0m"


def make_app(api: Api, user: User, name: str = "shop") -> str:
    assert api.post("/apps", user, json={"name": name}).status_code == 201
    return name


def add_build(app: Flask, app_name: str, user: User, *, state: JobState, lines: list[str],
              version: str | None = None, message: str | None = None, age_seconds: int = 0,
              release_version: int | None = None) -> str:
    """A build record as the builder leaves one, and its output written by Berth's own writer."""
    with app.extensions["berth.database"].transaction() as session:
        target = session.scalars(select(App).where(App.name == app_name)).one()
        release_id = (session.scalar(select(Release.id).where(Release.app_id == target.id,
                                                              Release.version == release_version))
                      if release_version else None)
        build = Build(app_id=target.id, user_id=user.id, source_url="https://berth.invalid/source",
                      source_version=version, stack=target.build_stack, state=state, attempts=1,
                      message=message, release_id=release_id, created_at=utcnow() - timedelta(seconds=age_seconds))
        session.add(build)
        session.flush()
        build_id = build.id
    writer = OutputWriter(app.config["BERTH_SETTINGS"].data_dir, build_id)
    for line in lines:
        writer.line(line)
    writer.close()
    return build_id


def set_build_state(app: Flask, build_id: str, state: JobState) -> None:
    with app.extensions["berth.database"].transaction() as session:
        session.execute(update(Build).where(Build.id == build_id).values(state=state))


def test_builds_tab_lists_builds_and_each_page_shows_its_output_escaped(
        app: Flask, api: Api, alice: User, signed_in: Browser) -> None:
    make_app(api, alice, "shop")
    assert api.patch("/apps/shop/config-vars", alice, json={"A": "1"}).status_code == 200
    done = add_build(app, "shop", alice, state=JobState.DONE, version="abc1234", age_seconds=60,
                     lines=["-----> Python app detected", HOSTILE, "-----> Released v2"], release_version=2)
    failed = add_build(app, "shop", alice, state=JobState.FAILED, lines=["-----> No buildpack detected"],
                       message="No buildpack could build this app.")

    listing = signed_in.get("/dashboard/apps/shop/builds")
    assert listing.status_code == 200
    page = text(listing)
    assert page.index(failed[:8]) < page.index(done[:8])  # newest first
    assert 'state-succeeded">succeeded<' in page and 'state-failed">failed<' in page
    assert "<code>abc1234</code>" in page and ">v2<" in page and alice.email in page

    shown = text(signed_in.get(f"/dashboard/apps/shop/builds/{done}"))
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp;" in shown and "<script>alert" not in shown
    assert "-----&gt; Released v2" in shown
    assert "data-follow-url" not in shown and "build_output.js" not in shown  # finished: nothing to follow
    refused = text(signed_in.get(f"/dashboard/apps/shop/builds/{failed}"))
    assert "No buildpack could build this app." in refused and 'id="build-status">failed<' in refused


def test_a_running_builds_output_is_followed_from_where_the_page_stopped(
        app: Flask, api: Api, alice: User, signed_in: Browser) -> None:
    make_app(api, alice, "shop")
    running = add_build(app, "shop", alice, state=JobState.RUNNING, lines=["-----> Installing"])
    page = text(signed_in.get(f"/dashboard/apps/shop/builds/{running}"))
    first = len("-----> Installing\n".encode())
    follow_url = f"/dashboard/apps/shop/builds/{running}/output?offset={first}"
    assert f'data-follow-url="{follow_url}"' in page
    assert "build_output.js" in page and '<meta http-equiv="refresh" content="3">' in page

    writer = OutputWriter(app.config["BERTH_SETTINGS"].data_dir, running)
    writer.line("       Collecting <flask>")
    writer.close()
    set_build_state(app, running, JobState.DONE)  # finished: the stream ends after what was written
    rest = signed_in.get(follow_url)
    assert rest.status_code == 200 and rest.mimetype == "text/plain"
    assert rest.get_data(as_text=True) == "       Collecting <flask>\n"
    everything = signed_in.get(f"/dashboard/apps/shop/builds/{running}/output")
    assert everything.get_data(as_text=True) == "-----> Installing\n       Collecting <flask>\n"


def test_builds_of_apps_the_visitor_may_not_see_are_not_found(
        app: Flask, api: Api, alice: User, bob: User, signed_in: Browser) -> None:
    make_app(api, bob, "bobs")
    make_app(api, alice, "shop")
    theirs = add_build(app, "bobs", bob, state=JobState.DONE, lines=["secret output"])
    for path in (f"/dashboard/apps/bobs/builds/{theirs}", f"/dashboard/apps/bobs/builds/{theirs}/output",
                 f"/dashboard/apps/shop/builds/{theirs}", f"/dashboard/apps/shop/builds/{theirs}/output",
                 "/dashboard/apps/bobs/builds"):
        answer = signed_in.get(path)
        assert answer.status_code == 404, path
        assert "secret output" not in text(answer)


def _versions(api: Api, user: User, app_name: str) -> list[dict[str, object]]:
    return api.get(f"/apps/{app_name}/releases", user).get_json()


def _set_status(app: Flask, app_name: str, version: int, status: ReleaseStatus) -> None:
    with app.extensions["berth.database"].transaction() as session:
        target = session.scalars(select(App).where(App.name == app_name)).one()
        session.execute(update(Release).where(Release.app_id == target.id, Release.version == version)
                        .values(status=status))


def test_activity_offers_rollback_with_a_confirm_step_and_shows_the_result(
        app: Flask, api: Api, alice: User, signed_in: Browser) -> None:
    make_app(api, alice, "shop")
    for mode in ("one", "two", "three"):
        assert api.patch("/apps/shop/config-vars", alice, json={"MODE": mode}).status_code == 200
    versions = [r["version"] for r in _versions(api, alice, "shop")]
    current, previous, oldest = versions[-1], versions[-2], versions[-3]

    activity = text(signed_in.get("/dashboard/apps/shop/activity"))
    assert f"/dashboard/apps/shop/activity/rollback/{previous}" in activity
    assert f"/dashboard/apps/shop/activity/rollback/{current}" not in activity  # the current one: no button
    confirm = signed_in.get(f"/dashboard/apps/shop/activity/rollback/{oldest}")
    assert confirm.status_code == 200
    assert f"Roll back to v{oldest}?" in text(confirm) and 'name="csrf_token"' in text(confirm)

    forged = signed_in.submit(f"/dashboard/apps/shop/activity/rollback/{oldest}", csrf=False)
    assert forged.status_code == 400 and len(_versions(api, alice, "shop")) == len(versions)
    rolled = signed_in.submit(f"/dashboard/apps/shop/activity/rollback/{oldest}")
    assert rolled.status_code == 303 and rolled.headers["Location"].endswith("/dashboard/apps/shop/activity")
    newest = _versions(api, alice, "shop")[-1]
    assert newest["description"] == f"Rollback to v{oldest}" and newest["version"] == current + 1
    assert api.get("/apps/shop/config-vars", alice).get_json()["MODE"] == "one"
    after = text(signed_in.get("/dashboard/apps/shop/activity"))
    assert f"Rolled back to v{oldest}: v{current + 1} is now the current release." in after


def test_expired_and_failed_releases_show_why_and_are_refused(
        app: Flask, api: Api, alice: User, bob: User, signed_in: Browser) -> None:
    make_app(api, alice, "shop")
    for mode in ("one", "two", "three"):
        assert api.patch("/apps/shop/config-vars", alice, json={"MODE": mode}).status_code == 200
    versions = [r["version"] for r in _versions(api, alice, "shop")]
    expired, failed = versions[-3], versions[-2]
    _set_status(app, "shop", expired, ReleaseStatus.EXPIRED)
    _set_status(app, "shop", failed, ReleaseStatus.FAILED)

    activity = text(signed_in.get("/dashboard/apps/shop/activity"))
    assert "Expired: its code was deleted by slug retention" in activity
    assert "Failed: its release command failed" in activity
    assert f"/activity/rollback/{expired}" not in activity and f"/activity/rollback/{failed}" not in activity
    confirm = text(signed_in.get(f"/dashboard/apps/shop/activity/rollback/{expired}"))
    assert "Expired: its code was deleted" in confirm and "<form method=\"post\" action=\"/dashboard/apps/shop/activity" not in confirm

    refused = signed_in.submit(f"/dashboard/apps/shop/activity/rollback/{expired}")
    assert refused.status_code == 422
    assert f"Release v{expired} has expired" in text(refused) and 'role="alert"' in text(refused)
    refused = signed_in.submit(f"/dashboard/apps/shop/activity/rollback/{failed}")
    assert refused.status_code == 422 and "only a release that succeeded can be rolled back to" in text(refused)
    missing = signed_in.submit("/dashboard/apps/shop/activity/rollback/999")
    assert missing.status_code == 404
    assert [r["version"] for r in _versions(api, alice, "shop")] == versions
    assert api.get("/apps/shop/config-vars", alice).get_json()["MODE"] == "three"

    make_app(api, bob, "bobs")
    assert signed_in.submit("/dashboard/apps/bobs/activity/rollback/1").status_code == 404
