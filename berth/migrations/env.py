"""Alembic environment: runs on the connection Database.migrate hands over."""
from alembic import context

import berth.accounts  # noqa: F401  (registers models on Base.metadata)
import berth.addons.logging.models  # noqa: F401
import berth.addons.models  # noqa: F401
import berth.broker.models  # noqa: F401
import berth.broker.osb.models  # noqa: F401
import berth.installation_secrets  # noqa: F401
import berth.platform.logs.models  # noqa: F401
import berth.platform.models  # noqa: F401
import berth.web.models  # noqa: F401
from berth.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
