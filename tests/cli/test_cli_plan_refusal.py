"""`berth addons:upgrade` when the provider refuses the new plan: an error and exit 1, not "done"."""
from __future__ import annotations

from typing import TYPE_CHECKING

from tests.cli.test_cli_addons import SERVICE, _create, partner  # noqa: F401 (partner: the fixture)
from tests.partners.harness import ExamplePartner

if TYPE_CHECKING:
    from tests.cli.conftest import Berth, ErrorLine, Server


def test_a_refused_upgrade_fails_with_the_providers_message(berth: "Berth", server: "Server",
                                                            partner: ExamplePartner, app_name: str,
                                                            one_error_line: "ErrorLine") -> None:
    partner.set_mode("sync")
    addon = _create(berth, app_name)
    partner.set_mode("refusing")
    try:
        line = one_error_line(berth("addons:upgrade", addon["name"], "premium", "-a", app_name))
    finally:
        partner.set_mode("sync")
    assert "That plan is not available in your region." in line
    assert server.api("GET", f"/addons/{addon['id']}").json()["plan"]["name"] == f"{SERVICE}:test"
