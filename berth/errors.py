"""BerthError tree: every failure is one of these and renders as Heroku's {"id", "message"}."""
from __future__ import annotations

from typing import Any


class BerthError(Exception):
    status = 400
    error_id = "bad_request"

    def __init__(self, message: str, *, error_id: str | None = None, status: int | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if error_id:
            self.error_id = error_id
        if status:
            self.status = status
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.error_id, "message": self.message, **self.extra}


class BadRequest(BerthError):
    status, error_id = 400, "bad_request"


class Unauthorized(BerthError):
    status, error_id = 401, "unauthorized"

    def __init__(self, message: str = "Invalid credentials provided.", **extra: Any) -> None:
        super().__init__(message, **extra)


class Forbidden(BerthError):
    status, error_id = 403, "forbidden"


class NotFound(BerthError):
    status, error_id = 404, "not_found"

    def __init__(self, message: str, *, resource: str, **extra: Any) -> None:
        super().__init__(message, resource=resource, **extra)


class MethodNotAllowed(BerthError):
    status, error_id = 405, "method_not_allowed"


class Conflict(BerthError):
    status, error_id = 409, "conflict"


class Gone(BerthError):
    status, error_id = 410, "gone"


class PayloadTooLarge(BerthError):
    status, error_id = 413, "request_entity_too_large"


class RangeNotSatisfiable(BerthError):
    status, error_id = 416, "requested_range_not_satisfiable"


class InvalidParams(BerthError):
    status, error_id = 422, "invalid_params"


class ConfirmationRequired(BerthError):
    status, error_id = 422, "confirmation_required"


class RateLimited(BerthError):
    status, error_id = 429, "rate_limit"

    def __init__(self, message: str = "Your account reached the API rate limit. Please wait a few "
                 "minutes before making new requests.", **extra: Any) -> None:
        super().__init__(message, **extra)


class ServiceUnavailable(BerthError):
    status, error_id = 503, "service_unavailable"


class InternalError(BerthError):
    status, error_id = 500, "internal_server_error"
