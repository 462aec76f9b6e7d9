"""The pages the router answers with instead of a dyno, as Heroku shows them. Kept free of `$`,
`'` and `\\` so they embed verbatim in nginx's `return` strings."""
from __future__ import annotations

from dataclasses import dataclass

_PAGE = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
         "<style>body{{font-family:sans-serif;margin:4em auto;max-width:40em;color:#333}}</style>"
         "</head><body><h1>{title}</h1><p>{text}</p></body></html>\n")


@dataclass(frozen=True)
class RouterError:
    code: str          # H14
    desc: str          # the log line's desc="..."
    status: int        # what the client sees
    level: str         # at=error, or at=info for H80
    title: str
    text: str

    @property
    def page(self) -> str:
        return _PAGE.format(title=self.title, text=self.text)


_APP_ERROR = ("An error occurred in the application and your page could not be served. If you are the "
              "application owner, check your logs for details. You can do this from the Berth CLI with "
              "the command <code>berth logs --tail</code>")

ERRORS = {error.code: error for error in (
    RouterError("H10", "App crashed", 503, "error", "Application error", _APP_ERROR),
    RouterError("H12", "Request timeout", 503, "error", "Application error", _APP_ERROR),
    RouterError("H14", "No web processes running", 503, "error", "Application error", _APP_ERROR),
    RouterError("H21", "Backend connection refused", 503, "error", "Application error", _APP_ERROR),
    RouterError("H80", "Maintenance mode", 503, "info", "Offline for Maintenance",
                "This application is undergoing maintenance right now. Please check back later."),
)}

NO_SUCH_APP = _PAGE.format(title="There is nothing here, yet",
                           text="No application answers to this host name. If you own the app, check "
                                "its name or add this domain with <code>berth domains:add</code>.")
