"""idempotency keys belong to the stable user id, and name their batches per tenant

A user deleted and added again under the same name is a new user: it must not
be answered with the old user's kept answers (or be shown its batches). A
multi-tenant post records each tenant's batch under its key, one row each.

Revision ID: 0010_idempotency_owner
Revises: 0009_access
Create Date: 2026-12-06 21:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0010_idempotency_owner'
down_revision: str | Sequence[str] | None = '0009_access'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: each key is re-owned by its user's id; keys of no user are dropped."""
    op.execute("DELETE FROM idempotency_keys WHERE NOT EXISTS "
               "(SELECT 1 FROM users WHERE users.name = idempotency_keys.user_name)")
    op.execute("UPDATE idempotency_keys SET user_name = "
               "(SELECT users.id FROM users WHERE users.name = idempotency_keys.user_name)")
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.alter_column('user_name', new_column_name='user_id',
                              existing_type=sa.String(length=200), type_=sa.String(length=36),
                              existing_nullable=False)
    op.create_table(
        'idempotency_key_batches',
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('tenant_id', sa.String(length=200), nullable=False),
        sa.Column('batch_id', sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint('user_id', 'key', 'tenant_id',
                                name=op.f('pk_idempotency_key_batches')),
    )


def downgrade() -> None:
    """Downgrade schema: keys are owned by their user's name again."""
    op.drop_table('idempotency_key_batches')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.alter_column('user_id', new_column_name='user_name',
                              existing_type=sa.String(length=36), type_=sa.String(length=200),
                              existing_nullable=False)
    op.execute("DELETE FROM idempotency_keys WHERE NOT EXISTS "
               "(SELECT 1 FROM users WHERE users.id = idempotency_keys.user_name)")
    op.execute("UPDATE idempotency_keys SET user_name = "
               "(SELECT users.name FROM users WHERE users.id = idempotency_keys.user_name)")
