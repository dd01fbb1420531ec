"""region and product on feedback: first-class dimensions for insights

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("region", sa.String(50)))
        batch.add_column(sa.Column("product", sa.String(100)))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("product")
        batch.drop_column("region")
