"""customer replies: delivery audience, partner endpoints per customer channel, e-mail threads

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


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("audience", sa.String(20)))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("customer_channels", sa.JSON))
    op.create_table(
        "thread_messages",
        sa.Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(36), nullable=False),
        sa.Column("message_id", sa.String(500), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("delivery_id", sa.String(36)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("ticket_id", "message_id", name="uq_thread_messages_ticket_message"),
    )
    op.create_index("ix_thread_messages_ticket_id", "thread_messages", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_thread_messages_ticket_id", "thread_messages")
    op.drop_table("thread_messages")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("customer_channels")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("audience")
