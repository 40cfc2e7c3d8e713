"""indexes for the voice lookups on the interaction log

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:20:00

The queue announcements find a call's conversation by its ARI id (``external_id``) and estimate
the wait from the queue's recent voice assignments (``kind`` within a time window). Without these
indexes both scan the whole append-only log, which only grows.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_interactions_kind_created", "interactions", ["kind", "created_at"])
    op.create_index("ix_interactions_external_id", "interactions", ["external_id"])


def downgrade() -> None:
    op.drop_index("ix_interactions_external_id", table_name="interactions")
    op.drop_index("ix_interactions_kind_created", table_name="interactions")
