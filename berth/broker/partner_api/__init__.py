"""The published provider contract: manifest, provider calls, partner endpoints (Heroku partner API v3)."""
