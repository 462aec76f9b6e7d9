"""Slugs, and releases that refer to one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('slugs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('checksum', sa.String(length=80), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('process_types', sa.JSON(), nullable=False),
    sa.Column('commit', sa.String(length=64), nullable=True),
    sa.Column('commit_description', sa.String(length=1000), nullable=True),
    sa.Column('buildpack_provided_description', sa.String(length=255), nullable=True),
    sa.Column('stack', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('slugs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slugs_app_id'), ['app_id'], unique=False)
    # No release could name a slug before this revision: any value there is noise.
    op.execute("UPDATE releases SET slug_id = NULL")
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_releases_slug_id'), ['slug_id'], unique=False)
        batch_op.create_foreign_key('fk_releases_slug_id_slugs', 'slugs', ['slug_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_constraint('fk_releases_slug_id_slugs', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_releases_slug_id'))
    with op.batch_alter_table('slugs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slugs_app_id'))
    op.drop_table('slugs')
