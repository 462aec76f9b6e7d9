"""Formation dynos as the runner sees them, and users' restart/stop requests for it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dynos',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('release_id', sa.String(length=36), nullable=True),
    sa.Column('release_version', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(length=63), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('command', sa.String(length=10000), nullable=False),
    sa.Column('size', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('exit_status', sa.Integer(), nullable=True),
    sa.Column('backend_id', sa.String(length=255), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('backend_id')
    )
    with op.batch_alter_table('dynos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dynos_app_id'), ['app_id'], unique=False)
    op.create_table('dyno_actions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('type', sa.String(length=63), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['accounts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dyno_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dyno_actions_app_id'), ['app_id'], unique=False)


def downgrade() -> None:
    op.drop_table('dyno_actions')
    op.drop_table('dynos')
