"""Several control-plane nodes: the runner's shard leases and live runners, the installation
secrets every node shares through the database, and the node whose rendezvous host runs a one-off.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runner_leases',
    sa.Column('shard', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('shard')
    )
    op.create_table('runner_nodes',
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('holder')
    )
    with op.batch_alter_table('one_off_dynos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host', sa.String(length=255), nullable=True))
    op.create_table('installation_secrets',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    with op.batch_alter_table('one_off_dynos', schema=None) as batch_op:
        batch_op.drop_column('host')
    op.drop_table('installation_secrets')
    op.drop_table('runner_nodes')
    op.drop_table('runner_leases')
