"""add-ons, attachments, operations, partner authorizations; config var owners

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('addons',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('service_id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('provider_id', sa.String(length=255), nullable=True),
    sa.Column('provision_message', sa.String(length=1000), nullable=True),
    sa.Column('failure_message', sa.String(length=1000), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('config', sa.Text(), nullable=False),
    sa.Column('deadline_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], ),
    sa.ForeignKeyConstraint(['service_id'], ['addon_services.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('addons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addons_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_addons_service_id'), ['service_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_addons_state'), ['state'], unique=False)

    op.create_table('addon_attachments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('addon_id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('namespace', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app_id', 'name')
    )
    with op.batch_alter_table('addon_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addon_attachments_addon_id'), ['addon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_addon_attachments_app_id'), ['app_id'], unique=False)

    op.create_table('operations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('addon_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('target_plan_id', sa.String(length=36), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('message', sa.String(length=1000), nullable=True),
    sa.Column('detail', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('operations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operations_addon_id'), ['addon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_operations_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_operations_state'), ['state'], unique=False)

    op.create_table('partner_authorizations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('addon_id', sa.String(length=36), nullable=False),
    sa.Column('grant_code_hash', sa.String(length=64), nullable=True),
    sa.Column('grant_expires_at', sa.DateTime(), nullable=True),
    sa.Column('access_token_hash', sa.String(length=64), nullable=True),
    sa.Column('access_expires_at', sa.DateTime(), nullable=True),
    sa.Column('refresh_token_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('access_token_hash'),
    sa.UniqueConstraint('addon_id'),
    sa.UniqueConstraint('grant_code_hash'),
    sa.UniqueConstraint('refresh_token_hash')
    )
    with op.batch_alter_table('addon_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_secret', sa.Text(), nullable=True))

    with op.batch_alter_table('config_vars', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_config_vars_owner'), ['owner'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('config_vars', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_config_vars_owner'))
        batch_op.drop_column('owner')

    with op.batch_alter_table('addon_services', schema=None) as batch_op:
        batch_op.drop_column('client_secret')

    op.drop_table('partner_authorizations')
    with op.batch_alter_table('operations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operations_state'))
        batch_op.drop_index(batch_op.f('ix_operations_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_operations_addon_id'))

    op.drop_table('operations')
    with op.batch_alter_table('addon_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addon_attachments_app_id'))
        batch_op.drop_index(batch_op.f('ix_addon_attachments_addon_id'))

    op.drop_table('addon_attachments')
    with op.batch_alter_table('addons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addons_state'))
        batch_op.drop_index(batch_op.f('ix_addons_service_id'))
        batch_op.drop_index(batch_op.f('ix_addons_app_id'))

    op.drop_table('addons')
