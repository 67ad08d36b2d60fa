"""the vendor APIs: an integer alias of every batch (number), the CRM task's fields (task_info)

Revision ID: 0006_vendor_apis
Revises: 0005_features
Create Date: 2026-12-03 09:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0006_vendor_apis'
down_revision: str | Sequence[str] | None = '0005_features'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: existing batches are numbered in the order they were created."""
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        op.execute(sa.schema.CreateSequence(sa.Sequence('batches_number_seq')))
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('task_info', sa.JSON(), nullable=True))
    if postgres:
        op.execute("UPDATE batches SET number = numbered.n FROM (SELECT id, nextval('batches_number_seq') AS n "
                   "FROM (SELECT id FROM batches ORDER BY created_at, id) AS ordered) AS numbered "
                   "WHERE batches.id = numbered.id")
    else:
        op.execute("UPDATE batches SET number = (SELECT count(*) FROM batches AS earlier "
                   "WHERE earlier.created_at < batches.created_at OR "
                   "(earlier.created_at = batches.created_at AND earlier.id <= batches.id))")
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_batches_number'), ['number'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_batches_number'), type_='unique')
        batch_op.drop_column('task_info')
        batch_op.drop_column('number')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(sa.schema.DropSequence(sa.Sequence('batches_number_seq')))
