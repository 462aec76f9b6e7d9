"""Git smart HTTP at /<app>.git: info/refs, git-upload-pack, git-receive-pack.

The caller is authenticated like every API request (Basic with any user name and the API key as
password, as git sends it); a 401 says `WWW-Authenticate: Basic`, which is what makes git ask its
credential helper. Only the app's owner and collaborators reach its repository; anyone else gets
the answer for an app that does not exist."""
from __future__ import annotations

from flask import Response, request

from berth.errors import BerthError, Unauthorized
from berth.httpapi.context import current_account_id, database
from berth.httpapi.conventions import render_error
from berth.platform import apps
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.git import http_backend

REALM = 'Basic realm="Berth git", charset="UTF-8"'


def _serve(app_ref: str, action: str) -> Response:
    with database().session(write=False) as session:
        app_id = apps.get_app(session, current_account_id(), app_ref).id
    length = request.headers.get("Content-Length")
    git_request = http_backend.GitRequest(
        method=request.method, action=action, service=request.args.get("service"),
        content_type=request.headers.get("Content-Type", ""),
        content_encoding=request.headers.get("Content-Encoding", "").strip().lower(),
        content_length=int(length) if length and length.isdigit() else None,
        git_protocol=request.headers.get("Git-Protocol", ""),
        account_id=current_account_id(), remote_addr=request.remote_addr or "")
    try:
        answer = http_backend.serve(settings().data_dir, app_id, git_request,
                                    request.environ["wsgi.input"], settings().git_max_push_bytes)
    except http_backend.RequestRefused as refused:
        raise BerthError(str(refused), error_id="git_request_refused", status=refused.status) from None
    return Response(answer.body, status=answer.status, headers=answer.headers, direct_passthrough=True)


@blueprint.get("/<app_ref>.git/info/refs")
def git_info_refs(app_ref: str) -> Response:
    return _serve(app_ref, "info/refs")


@blueprint.post("/<app_ref>.git/git-upload-pack")
def git_upload_pack(app_ref: str) -> Response:
    return _serve(app_ref, "git-upload-pack")


@blueprint.post("/<app_ref>.git/git-receive-pack")
def git_receive_pack(app_ref: str) -> Response:
    return _serve(app_ref, "git-receive-pack")


@blueprint.errorhandler(Unauthorized)
def _ask_for_credentials(error: Unauthorized) -> Response:
    response = render_error(error)
    if request.endpoint and request.endpoint.startswith("platform.git_"):
        response.headers["WWW-Authenticate"] = REALM
    return response
