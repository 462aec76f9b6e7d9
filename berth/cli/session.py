"""The authenticated API client for the current environment (URL + key)."""

from berth.cli import credentials
from berth.cli.client import ApiClient, api_host, api_url


def connect() -> ApiClient:
    url = api_url()
    return ApiClient(url, credentials.api_key(api_host(url)))
