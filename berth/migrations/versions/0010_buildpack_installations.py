"""An app's buildpacks, in build order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('buildpack_installations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('ordinal', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('name', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app_id', 'ordinal')
    )
    with op.batch_alter_table('buildpack_installations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_buildpack_installations_app_id'), ['app_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('buildpack_installations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_buildpack_installations_app_id'))
    op.drop_table('buildpack_installations')
