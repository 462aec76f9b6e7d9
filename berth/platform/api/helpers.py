"""Small pieces every Platform API module uses."""
from __future__ import annotations

from flask import current_app

from berth.config import Settings
from berth.hooks import Hooks


def settings() -> Settings:
    return current_app.config["BERTH_SETTINGS"]


def hooks() -> Hooks:
    return current_app.extensions["berth.hooks"]
