"""retry batches, item retry pages, rethrottling, run windows

Revision ID: 0005_features
Revises: 0004_push
Create Date: 2026-12-01 10:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005_features'
down_revision: str | Sequence[str] | None = '0004_push'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('item_retries',
    sa.Column('batch_id', sa.String(length=36), nullable=False),
    sa.Column('stage', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('pos', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('page_no', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('batch_id', 'stage', 'pos', name=op.f('pk_item_retries'))
    )
    with op.batch_alter_table('item_retries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_retries_batch_id_page_no'), ['batch_id', 'page_no'], unique=False)

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_of', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('retry_selection', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('retry_policy', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('retry_jobs', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('retry_jobs_completed', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('max_items_per_second', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('max_concurrent_jobs', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('run_windows', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_batches_retry_of'), ['retry_of'], unique=False)

    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('item_attempt', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch_op.add_column(sa.Column('not_before', sa.DateTime(), nullable=True))

    with op.batch_alter_table('item_errors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default=sa.text('1'), nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('item_errors', schema=None) as batch_op:
        batch_op.drop_column('attempts')

    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_column('not_before')
        batch_op.drop_column('item_attempt')

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batches_retry_of'))
        batch_op.drop_column('run_windows')
        batch_op.drop_column('max_concurrent_jobs')
        batch_op.drop_column('max_items_per_second')
        batch_op.drop_column('retry_jobs_completed')
        batch_op.drop_column('retry_jobs')
        batch_op.drop_column('retry_policy')
        batch_op.drop_column('retry_selection')
        batch_op.drop_column('retry_of')

    with op.batch_alter_table('item_retries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_retries_batch_id_page_no'))

    op.drop_table('item_retries')
