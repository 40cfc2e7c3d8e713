"""transcription jobs (filled by a trigger on attachments)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:30:00

The trigger adds a ``pending`` job for every audio attachment of a ``voice`` interaction (a call
recording, a voicemail) inside the inserting transaction, so a recording can never be stored
without its transcription job. Recordings stored before this migration get a job here too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGER = """
CREATE TRIGGER trg_attachments_transcription_job AFTER INSERT ON attachments
FOR EACH ROW WHEN NEW.content_type LIKE 'audio/%'
    AND (SELECT channel FROM interactions WHERE id = NEW.interaction_id) = 'voice'
BEGIN
    INSERT OR IGNORE INTO transcription_jobs
        (interaction_id, status, attempts, next_attempt_at, created_at, updated_at)
    VALUES (NEW.interaction_id, 'pending', 0, datetime('now'), datetime('now'), datetime('now'));
END
"""

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION transcription_job_enqueue() RETURNS trigger AS $$
BEGIN
    IF NEW.content_type LIKE 'audio/%'
       AND (SELECT channel FROM interactions WHERE id = NEW.interaction_id) = 'voice' THEN
        INSERT INTO transcription_jobs
            (interaction_id, status, attempts, next_attempt_at, created_at, updated_at)
        VALUES (NEW.interaction_id, 'pending', 0, now(), now(), now())
        ON CONFLICT (interaction_id) DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

_PG_TRIGGER = """
CREATE TRIGGER trg_attachments_transcription_job AFTER INSERT ON attachments
FOR EACH ROW EXECUTE FUNCTION transcription_job_enqueue()
"""

_BACKFILL = """
INSERT INTO transcription_jobs
    (interaction_id, status, attempts, next_attempt_at, created_at, updated_at)
SELECT DISTINCT a.interaction_id, 'pending', 0, {now}, {now}, {now}
FROM attachments a JOIN interactions i ON i.id = a.interaction_id
WHERE a.content_type LIKE 'audio/%' AND i.channel = 'voice'
"""


def upgrade() -> None:
    op.create_table(
        "transcription_jobs",
        sa.Column("interaction_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("transcript_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_transcription_jobs_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_transcription_jobs")),
    )
    op.create_index(
        "ix_transcription_jobs_status_next",
        "transcription_jobs",
        ["status", "next_attempt_at"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_BACKFILL.format(now="now()"))
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_BACKFILL.format(now="datetime('now')"))
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_attachments_transcription_job ON attachments")
        op.execute("DROP FUNCTION IF EXISTS transcription_job_enqueue()")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_attachments_transcription_job")
    op.drop_index("ix_transcription_jobs_status_next", table_name="transcription_jobs")
    op.drop_table("transcription_jobs")
