"""taxonomy versions, training examples, model versions, config, alerts; richer classifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

from closedloop.messaging.tables import AutoIncrementId

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_CLASSIFICATION_COLUMNS = (
    ("suggestions", sa.JSON),
    ("severity", sa.String(20)),
    ("signals", sa.JSON),
    ("emotions", sa.JSON),
    ("language", sa.String(10)),
    ("language_confidence", sa.Float),
    ("duplicate_of", sa.String(36)),
    ("near_duplicates", sa.JSON),
    ("embedding", sa.LargeBinary),
)


def upgrade() -> None:
    op.add_column("classifications", sa.Column("needs_triage", sa.Boolean, nullable=False,
                                               server_default=sa.false()))
    for name, type_ in NEW_CLASSIFICATION_COLUMNS:
        op.add_column("classifications", sa.Column(name, type_, nullable=True))
    op.create_index("ix_classifications_created_at", "classifications", ["created_at"])

    op.create_table(
        "taxonomy_versions",
        sa.Column("version", sa.String(40), primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "training_examples",
        sa.Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, index=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("feedback_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=True),
        sa.Column("embedding_model", sa.String(200), nullable=True),
    )
    op.create_index("ix_training_examples_text_hash_label", "training_examples", ["text_hash", "label"],
                    unique=True)
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("taxonomy_version", sa.String(40), nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("n_examples", sa.Integer, nullable=True),
        sa.Column("artefact", sa.LargeBinary, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "engine_config",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("engine_config")
    op.drop_table("model_versions")
    op.drop_index("ix_training_examples_text_hash_label", table_name="training_examples")
    op.drop_table("training_examples")
    op.drop_table("taxonomy_versions")
    op.drop_index("ix_classifications_created_at", table_name="classifications")
    with op.batch_alter_table("classifications") as batch:
        for name, _ in reversed(NEW_CLASSIFICATION_COLUMNS):
            batch.drop_column(name)
        batch.drop_column("needs_triage")
