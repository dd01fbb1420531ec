"""channels on deliveries (e-mail, Slack), subscriptions, templates, circuit breakers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("channel", sa.String(20), nullable=False, server_default="webhook"))
        batch.add_column(sa.Column("recipient", sa.String(2000)))
        batch.add_column(sa.Column("subscription_id", sa.String(36)))
        batch.add_column(sa.Column("template_key", sa.String(200)))
        batch.add_column(sa.Column("language", sa.String(20)))
        batch.add_column(sa.Column("ticket_id", sa.String(36)))
        batch.add_column(sa.Column("reason", sa.Text))
        batch.alter_column("endpoint_id", existing_type=sa.String(36), nullable=True)
    op.execute("UPDATE deliveries SET recipient = target WHERE recipient IS NULL")
    op.create_index("ix_deliveries_recipient", "deliveries", ["recipient", "created_at"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("teams", sa.JSON, nullable=False),
        sa.Column("priorities", sa.JSON, nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("language", sa.String(20)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("template_key", sa.String(200)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text),
        sa.Column("builtin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key", "channel", "language", name="uq_templates_key_channel_language"),
    )
    op.create_table(
        "circuit_breakers",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("open_until", sa.DateTime(timezone=True)),
        sa.Column("probe_until", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("circuit_breakers")
    op.drop_table("templates")
    op.drop_table("subscriptions")
    op.drop_index("ix_deliveries_recipient", table_name="deliveries")
    op.execute("DELETE FROM deliveries WHERE endpoint_id IS NULL")
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("endpoint_id", existing_type=sa.String(36), nullable=False)
        for column in ("reason", "ticket_id", "language", "template_key", "subscription_id", "recipient", "channel"):
            batch.drop_column(column)
