"""Failures the CLI reports as one `Error: ...` line (exit 1) instead of a traceback."""


class CliError(Exception):
    """Base: anything the user should see as a single readable line."""


class ApiError(CliError):
    """A non-2xx answer (or an unreachable server), with Heroku's error `id` when present."""

    def __init__(self, message: str, error_id: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.id = error_id
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} ({self.id})" if self.id else self.message


class NotLoggedIn(CliError):
    def __init__(self) -> None:
        super().__init__("not logged in. Run berth login (or set BERTH_API_KEY).")
