"""customer erasure requests (data rights)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_hash", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(200)),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("services", sa.JSON, nullable=False),
    )
    op.create_index("ix_erasures_customer_hash", "erasures", ["customer_hash"])


def downgrade() -> None:
    op.drop_index("ix_erasures_customer_hash", table_name="erasures")
    op.drop_table("erasures")
