"""App setups (app.json applied to an app, a job table) and each app's formation.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('formations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=63), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('size', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app_id', 'type')
    )
    with op.batch_alter_table('formations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_formations_app_id'), ['app_id'], unique=False)
    op.create_table('app_setups',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('app_name', sa.String(length=30), nullable=False),
    sa.Column('build_id', sa.String(length=36), nullable=True),
    sa.Column('build_status', sa.String(length=16), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('overrides', sa.Text(), nullable=True),
    sa.Column('manifest_errors', sa.JSON(), nullable=False),
    sa.Column('applied', sa.JSON(), nullable=False),
    sa.Column('postdeploy_command', sa.String(length=4000), nullable=True),
    sa.Column('postdeploy_output', sa.Text(), nullable=True),
    sa.Column('postdeploy_exit_code', sa.Integer(), nullable=True),
    sa.Column('success_url', sa.String(length=2000), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('message', sa.String(length=1000), nullable=True),
    sa.Column('detail', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('app_setups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_setups_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_setups_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_setups_build_id'), ['build_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_setups_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_setups_state'), ['state'], unique=False)


def downgrade() -> None:
    op.drop_table('app_setups')
    op.drop_table('formations')
