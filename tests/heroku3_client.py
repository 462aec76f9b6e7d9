"""heroku3, unmodified, pointed at a live Berth."""
from __future__ import annotations

import heroku3


def heroku3_client(api_url: str, key: str) -> heroku3.api.Heroku:
    """heroku3 reads its base URL from a module constant when a client is built (and never after)."""
    saved = heroku3.api.HEROKU_URL
    heroku3.api.HEROKU_URL = api_url
    try:
        return heroku3.from_key(key)
    finally:
        heroku3.api.HEROKU_URL = saved
