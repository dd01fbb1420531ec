"""classifications, outbox and inbox

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
        "classifications",
        sa.Column("feedback_id", sa.String(36), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("category_label", sa.String(200), nullable=False),
        sa.Column("top_level", sa.String(100), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("alternatives", sa.JSON, nullable=False),
        sa.Column("sentiment", sa.String(20), nullable=False),
        sa.Column("sentiment_score", sa.Float, nullable=False),
        sa.Column("polarity", sa.Float, nullable=False),
        sa.Column("taxonomy_version", sa.String(40), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("classifications")
