"""voice: the agent's phone endpoint

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 07:15:00

``agents.voice_endpoint`` is the Asterisk dial string (``PJSIP/agent1``) the hub rings when the
router offers a call to that agent; NULL means the agent has no phone and is never rung.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voice_endpoint", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("voice_endpoint")
