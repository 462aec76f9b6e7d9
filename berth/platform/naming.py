"""Readable generated app names, Heroku style (`floating-dragon-4213`)."""
from __future__ import annotations

import re
import secrets

APP_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]\Z")
_ADJECTIVES = ("ancient", "brave", "calm", "crisp", "damp", "eager", "fancy", "floating", "gentle",
               "golden", "hidden", "icy", "jolly", "lively", "lucky", "misty", "noble", "polar",
               "quiet", "rapid", "rustic", "shiny", "silent", "sunny", "swift", "tranquil", "vast",
               "warm", "wild", "young")
_NOUNS = ("anchor", "badlands", "beach", "brook", "canyon", "cliffs", "coast", "dawn", "dragon",
          "dune", "falls", "forest", "garden", "harbor", "island", "lake", "meadow", "mesa",
          "ocean", "peak", "plains", "reef", "ridge", "river", "savannah", "shore", "spire",
          "thicket", "tundra", "wave")


def generate_app_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(9000) + 1000}"
