"""write-only params: the secret_params of a batch, kept apart from the params readers see

Revision ID: 0008_guard
Revises: 0007_faults
Create Date: 2026-12-04 19:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008_guard'
down_revision: str | Sequence[str] | None = '0007_faults'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_params', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('secret_params')
