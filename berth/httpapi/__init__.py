"""HTTP conventions shared by every JSON API blueprint: errors, auth, sessions, Range, rate limits, OpenAPI."""
