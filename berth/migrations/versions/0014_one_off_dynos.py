"""One-off dynos (`heroku run`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('one_off_dynos',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('release_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=63), nullable=False),
    sa.Column('command', sa.String(length=10000), nullable=False),
    sa.Column('env', sa.Text(), nullable=False),
    sa.Column('size', sa.String(length=32), nullable=False),
    sa.Column('attach', sa.Boolean(), nullable=False),
    sa.Column('tty', sa.Boolean(), nullable=False),
    sa.Column('time_to_live', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('secret_digest', sa.String(length=64), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('ended_because', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app_id', 'number'),
    sa.UniqueConstraint('secret_digest')
    )
    with op.batch_alter_table('one_off_dynos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_one_off_dynos_app_id'), ['app_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('one_off_dynos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_one_off_dynos_app_id'))
    op.drop_table('one_off_dynos')
