"""feedback, idempotency keys, outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

from closedloop.messaging.tables import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("subject", sa.String(500)),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("customer_tier", sa.String(50), nullable=False),
        sa.Column("customer_email", sa.String(320)),
        sa.Column("customer_name", sa.String(200)),
        sa.Column("rating", sa.Float),
        sa.Column("language", sa.String(20)),
        sa.Column("external_id", sa.String(200)),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("category", sa.String(200)),
        sa.Column("sentiment", sa.String(20)),
        sa.Column("ticket_id", sa.String(36)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("channel", "external_id", name="uq_feedback_channel_external_id"),
    )
    op.create_index("ix_feedback_customer_id", "feedback", ["customer_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("feedback_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("idempotency_keys")
    op.drop_index("ix_feedback_customer_id", "feedback")
    op.drop_table("feedback")
