"""closing the loop: reply delivery on comments, ticket threads and emotions, CSAT source, macros and
their uses, incidents

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from closedloop.messaging.tables import AutoIncrementId

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("thread_id", sa.String(500)))
        batch.add_column(sa.Column("source_message_id", sa.String(500)))
        batch.add_column(sa.Column("emotions", sa.JSON))
        batch.add_column(sa.Column("incident_id", sa.String(36)))
        batch.create_index("ix_tickets_incident_id", ["incident_id"])
    with op.batch_alter_table("ticket_comments") as batch:
        batch.add_column(sa.Column("kind", sa.String(20)))
        batch.add_column(sa.Column("channel", sa.String(20)))
        batch.add_column(sa.Column("event_id", sa.String(36)))
        batch.add_column(sa.Column("delivery_status", sa.String(20)))
        batch.add_column(sa.Column("delivery_error", sa.Text))
        batch.add_column(sa.Column("macro_id", sa.String(36)))
        batch.add_column(sa.Column("feedback_id", sa.String(36)))
        batch.add_column(sa.Column("message_id", sa.String(500)))
        batch.create_index("ix_ticket_comments_event_id", ["event_id"])
    with op.batch_alter_table("csat_responses") as batch:
        batch.add_column(sa.Column("source", sa.String(20), server_default="page"))
    op.create_table(
        "macros",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("category", sa.String(200)),
        sa.Column("emotions", sa.JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("builtin", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "macro_uses",
        sa.Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        sa.Column("macro_id", sa.String(36), sa.ForeignKey("macros.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ticket_id", sa.String(36), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("language", sa.String(20)),
        sa.Column("emotions", sa.JSON, nullable=False),
        sa.Column("sentiment", sa.String(20)),
        sa.Column("used_at", TS, nullable=False),
    )
    op.create_index("ix_macro_uses_macro_id", "macro_uses", ["macro_id"])
    op.create_index("ix_macro_uses_category", "macro_uses", ["category"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("public_message", sa.JSON, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("alert", sa.JSON),
        sa.Column("confirmed_by", sa.String(200)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incidents")
    op.drop_index("ix_macro_uses_category", "macro_uses")
    op.drop_index("ix_macro_uses_macro_id", "macro_uses")
    op.drop_table("macro_uses")
    op.drop_table("macros")
    with op.batch_alter_table("csat_responses") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("ticket_comments") as batch:
        batch.drop_index("ix_ticket_comments_event_id")
        for column in ("message_id", "feedback_id", "macro_id", "delivery_error", "delivery_status", "event_id",
                       "channel", "kind"):
            batch.drop_column(column)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_incident_id")
        for column in ("incident_id", "emotions", "source_message_id", "thread_id"):
            batch.drop_column(column)
