"""hung items: the positions of a page's items that ignored their deadline

An item whose handler ignored the deadline's alarm has its worker process
ended; its page is run again, and that run fails the item at once with the
deadline's message instead of running it (and hanging) again.

Revision ID: 0011_hung_items
Revises: 0010_idempotency_owner
Create Date: 2026-12-06 22:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0011_hung_items'
down_revision: str | Sequence[str] | None = '0010_idempotency_owner'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hung_positions', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_column('hung_positions')
