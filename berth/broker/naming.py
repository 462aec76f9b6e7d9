"""Add-on names (`acme-cache-rigid-41822`) and attachment names (`DATABASE`, `DATABASE_JADE`)."""
from __future__ import annotations

import re
import secrets

ADDON_NAME_PATTERN = re.compile(r"^[a-zA-Z][A-Za-z0-9_-]{1,99}\Z")
ATTACHMENT_NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,62}\Z")
_WORDS = ("amber", "brisk", "clear", "deep", "fluid", "globular", "infinite", "lively", "opaque",
          "polished", "rigid", "round", "shallow", "silky", "smooth", "solid", "sturdy", "tidy",
          "vertical", "vivid")
COLORS = ("AMBER", "AQUA", "BLACK", "BLUE", "BRONZE", "COBALT", "COPPER", "CRIMSON", "CYAN",
          "GOLD", "GRAY", "GREEN", "IVORY", "JADE", "LIME", "MAROON", "NAVY", "OLIVE", "ONYX",
          "ORANGE", "PINK", "PURPLE", "RED", "ROSE", "SILVER", "TEAL", "VIOLET", "WHITE", "YELLOW")


def generate_addon_name(service: str) -> str:
    return f"{service}-{secrets.choice(_WORDS)}-{secrets.randbelow(90000) + 10000}"


def attachment_var_names(config_vars: list[str], prefix: str, attachment: str) -> dict[str, str]:
    """Provider name -> name in the app: the manifest prefix swapped for the attachment name."""
    renamed = {}
    for name in config_vars:
        suffix = name[len(prefix):] if name.startswith(prefix + "_") else "_" + name
        renamed[name] = attachment + suffix
    return renamed
