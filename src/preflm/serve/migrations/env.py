"""Alembic environment: runs on the connection that :func:`preflm.serve.db.migrate` hands over."""

from alembic import context

from preflm.serve.models import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
