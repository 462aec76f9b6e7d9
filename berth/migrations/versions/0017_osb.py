"""Open Service Broker: platform clients, instances (add-ons by the platform's id) and bindings.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('osb_clients',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.String(length=36), nullable=False),
    sa.Column('lenient_org_space', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    with op.batch_alter_table('osb_clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_osb_clients_owner_id'), ['owner_id'], unique=False)
    op.create_table('osb_instances',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=True),
    sa.Column('addon_id', sa.String(length=36), nullable=False),
    sa.Column('service_id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('organization_guid', sa.String(length=255), nullable=True),
    sa.Column('space_guid', sa.String(length=255), nullable=True),
    sa.Column('maintenance_version', sa.String(length=255), nullable=True),
    sa.Column('operation_kind', sa.String(length=16), nullable=False),
    sa.Column('operation_id', sa.String(length=36), nullable=True),
    sa.Column('operation_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['osb_clients.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('osb_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_osb_instances_addon_id'), ['addon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_osb_instances_client_id'), ['client_id'], unique=False)
    op.create_table('osb_bindings',
    sa.Column('instance_id', sa.String(length=255), nullable=False),
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('service_id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('bind_resource', sa.JSON(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('credentials', sa.Text(), nullable=True),
    sa.Column('syslog_drain_url', sa.Text(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['osb_instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('instance_id', 'id')
    )


def downgrade() -> None:
    op.drop_table('osb_bindings')
    with op.batch_alter_table('osb_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_osb_instances_client_id'))
        batch_op.drop_index(batch_op.f('ix_osb_instances_addon_id'))
    op.drop_table('osb_instances')
    with op.batch_alter_table('osb_clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_osb_clients_owner_id'))
    op.drop_table('osb_clients')
