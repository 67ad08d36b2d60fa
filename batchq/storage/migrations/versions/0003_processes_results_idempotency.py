"""sources, batch processes, result files, idempotency keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:08:34.955173

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('idempotency_keys',
    sa.Column('user_name', sa.String(length=200), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('batch_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_name', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    op.create_table('result_files',
    sa.Column('batch_id', sa.String(length=36), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('media_type', sa.String(length=200), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_result_files'))
    )
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_cursor', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('source_exhausted', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('source_failures', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('process_run', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_batches_status_type_created_at'), ['status', 'type', 'created_at'], unique=False)
        batch_op.create_index('uq_batches_active_process', ['type'], unique=True, postgresql_where=sa.text("process_run AND status IN ('Waiting', 'Processing', 'Cancelling')"), sqlite_where=sa.text("process_run AND status IN ('Waiting', 'Processing', 'Cancelling')"))

    with op.batch_alter_table('item_errors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_errors_batch_id_seq'), ['batch_id', 'seq'], unique=False)

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_items_batch_id_seq'), ['batch_id', 'seq'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_items_batch_id_seq'))

    with op.batch_alter_table('item_errors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_errors_batch_id_seq'))

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index('uq_batches_active_process', postgresql_where=sa.text("process_run AND status IN ('Waiting', 'Processing', 'Cancelling')"), sqlite_where=sa.text("process_run AND status IN ('Waiting', 'Processing', 'Cancelling')"))
        batch_op.drop_index(batch_op.f('ix_batches_status_type_created_at'))
        batch_op.drop_column('process_run')
        batch_op.drop_column('source_failures')
        batch_op.drop_column('source_exhausted')
        batch_op.drop_column('source_cursor')

    op.drop_table('result_files')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))

    op.drop_table('idempotency_keys')
