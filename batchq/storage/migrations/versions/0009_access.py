"""access: stable user ids that batches are owned by, revocable and expiring tokens

Revision ID: 0009_access
Revises: 0008_guard
Create Date: 2026-12-04 19:00:00

"""
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009_access'
down_revision: str | Sequence[str] | None = '0008_guard'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: every user gets an id; each batch is owned by its creator's."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('token_expires_at', sa.DateTime(), nullable=True))
        batch_op.alter_column('token_hash', existing_type=sa.String(length=64), nullable=True)
    users = sa.table('users', sa.column('name', sa.String), sa.column('id', sa.String))
    bind = op.get_bind()
    for (name,) in bind.execute(sa.select(users.c.name)).all():
        bind.execute(sa.update(users).where(users.c.name == name).values(id=str(uuid.uuid4())))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('id', existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_users_id'), ['id'])
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_batches_owner_id_created_at'),
                              ['owner_id', 'created_at'], unique=False)
    # The users of today own the batches created under their names.
    op.execute("UPDATE batches SET owner_id = (SELECT users.id FROM users "
               "WHERE users.name = batches.create_user_id)")


def downgrade() -> None:
    """Downgrade schema: revoked tokens get an unusable placeholder hash (never a sha256)."""
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batches_owner_id_created_at'))
        batch_op.drop_column('owner_id')
    op.execute("UPDATE users SET token_hash = 'revoked:' || id WHERE token_hash IS NULL")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_id'), type_='unique')
        batch_op.alter_column('token_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('token_expires_at')
        batch_op.drop_column('id')
