"""What GET /apps/{app} reports about an app's code, as Heroku does: the size and buildpack
description of the slug its current release runs, and the size of its git repository."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.platform.git.repositories import repository_path
from berth.platform.models import App, Release, ReleaseStatus, Slug

__all__ = ["current_slug", "repo_size"]


def current_slug(session: Session, app: App) -> Slug | None:
    """The slug of the app's current release (its newest succeeded one); None before any code."""
    slug_id = session.scalar(select(Release.slug_id).where(
        Release.app_id == app.id, Release.status == ReleaseStatus.SUCCEEDED)
        .order_by(Release.version.desc()).limit(1))
    return session.get(Slug, slug_id) if slug_id else None


def repo_size(data_dir: Path, app_id: str) -> int | None:
    """Bytes in the app's bare repository (regular files, links not followed); None when it has none."""
    root = repository_path(data_dir, app_id)
    if not root.is_dir():
        return None
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                found = os.lstat(os.path.join(directory, name))
            except OSError:  # a gc or a push removed it meanwhile
                continue
            if stat.S_ISREG(found.st_mode):
                total += found.st_size
    return total
