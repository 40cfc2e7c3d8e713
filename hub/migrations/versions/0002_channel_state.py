"""channel state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:39:07.261966
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('channel_state',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope', sa.String(length=100), nullable=False),
    sa.Column('namespace', sa.String(length=50), nullable=False),
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_state')),
    sa.UniqueConstraint('scope', 'namespace', 'key', name=op.f('uq_channel_state_scope_namespace_key'))
    )
    with op.batch_alter_table('channel_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_state_expires_at'), ['expires_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('channel_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_state_expires_at'))

    op.drop_table('channel_state')

