"""search outbox (filled by a trigger on interactions), media access log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:05:00

The trigger puts an ``upsert`` row into ``search_outbox`` for every interaction insert, inside
the inserting transaction, so no code path can add an interaction the index never hears of.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGER = """
CREATE TRIGGER trg_interactions_search_outbox AFTER INSERT ON interactions
FOR EACH ROW BEGIN
    INSERT INTO search_outbox (interaction_id, op, created_at)
    VALUES (NEW.id, 'upsert', datetime('now'));
END
"""

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION search_outbox_enqueue() RETURNS trigger AS $$
BEGIN
    INSERT INTO search_outbox (interaction_id, op, created_at) VALUES (NEW.id, 'upsert', now());
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

_PG_TRIGGER = """
CREATE TRIGGER trg_interactions_search_outbox AFTER INSERT ON interactions
FOR EACH ROW EXECUTE FUNCTION search_outbox_enqueue()
"""


def upgrade() -> None:
    op.create_table(
        "search_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("interaction_id", sa.String(length=32), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_outbox")),
    )
    op.create_table(
        "media_access",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("range", sa.String(length=100), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_access")),
    )
    op.create_index("ix_media_access_sha256_at", "media_access", ["sha256", "at"], unique=False)
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_interactions_search_outbox ON interactions")
        op.execute("DROP FUNCTION IF EXISTS search_outbox_enqueue()")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_interactions_search_outbox")
    op.drop_index("ix_attachments_sha256", table_name="attachments")
    op.drop_index("ix_media_access_sha256_at", table_name="media_access")
    op.drop_table("media_access")
    op.drop_table("search_outbox")
