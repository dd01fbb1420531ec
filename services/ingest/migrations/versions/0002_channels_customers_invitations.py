"""standard record columns on feedback; duplicates, customers, invitations

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

def feedback_columns() -> list[sa.Column]:  # fresh objects: a Column belongs to one table
    return [
        sa.Column("original_text", sa.Text),
        sa.Column("original_subject", sa.String(500)),
        sa.Column("pii_masked", sa.JSON),
        sa.Column("text_hash", sa.String(64)),
        sa.Column("thread_id", sa.String(500)),
        sa.Column("app_version", sa.String(50)),
        sa.Column("platform", sa.String(50)),
        sa.Column("nps", sa.Integer),
        sa.Column("csat", sa.Integer),
        sa.Column("customer_locale", sa.String(35)),
        sa.Column("customer_value", sa.Float),
        sa.Column("duplicate_count", sa.Integer, nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        for column in feedback_columns():
            batch.add_column(column)
    op.create_index("ix_feedback_customer_text", "feedback", ["customer_id", "text_hash", "received_at"])
    op.create_table(
        "feedback_duplicates",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("feedback_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_duplicates_feedback_id", "feedback_duplicates", ["feedback_id"])
    op.create_table(
        "customers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(200)),
        sa.Column("tier", sa.String(50), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("locale", sa.String(35)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_table(
        "feedback_invitations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("campaign", sa.String(200)),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_invitations_customer", "feedback_invitations", ["customer_id", "invited_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_invitations_customer", "feedback_invitations")
    op.drop_table("feedback_invitations")
    op.drop_index("ix_customers_email", "customers")
    op.drop_table("customers")
    op.drop_index("ix_feedback_duplicates_feedback_id", "feedback_duplicates")
    op.drop_table("feedback_duplicates")
    op.drop_index("ix_feedback_customer_text", "feedback")
    with op.batch_alter_table("feedback") as batch:
        for column in reversed(feedback_columns()):
            batch.drop_column(column.name)
