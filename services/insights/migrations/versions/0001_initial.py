"""the insights read model: aggregates, facts, what was raised, report subscribers, outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-12-02 01:11:26.005040
"""
import sqlalchemy as sa
from alembic import op

from closedloop.messaging.tables import create_messaging_tables, drop_messaging_tables

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "aggregates",
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("d1", sa.String(length=20), nullable=False),
        sa.Column("d2", sa.String(length=20), nullable=False),
        sa.Column("v1", sa.String(length=200), nullable=False),
        sa.Column("v2", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        # Written out (not imported from the models): a migration must not change when the code does.
        *(sa.Column(name, sa.Float(), server_default="0", nullable=False) for name in (
            "items", "negative", "neutral", "positive", "sentiment_sum", "repeat_contacts",
            "nps_n", "nps_promoters", "nps_detractors", "csat_sum", "csat_n", "csat_low",
            "tickets", "tickets_negative", "reassignments", "sla_breaches", "resolved", "resolution_sum_h",
            "resolution_n", "reopened", "agent_replies", "frt_sum_min", "frt_n", "rated", "rated_satisfied",
            "deliveries", "deliveries_failed")),
        sa.PrimaryKeyConstraint("grain", "d1", "d2", "v1", "v2", "bucket", name=op.f("pk_aggregates")),
        sqlite_with_rowid=False,
    )
    op.create_table('customer_facts',
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('tier', sa.String(length=50), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('first_contact_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_contact_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('negatives', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_facts'))
    )
    op.create_table('feedback_facts',
    sa.Column('feedback_id', sa.String(length=36), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('tier', sa.String(length=50), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('region', sa.String(length=50), nullable=True),
    sa.Column('product', sa.String(length=100), nullable=True),
    sa.Column('language', sa.String(length=20), nullable=True),
    sa.Column('nps', sa.Integer(), nullable=True),
    sa.Column('csat', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=200), nullable=True),
    sa.Column('sentiment', sa.String(length=20), nullable=True),
    sa.Column('sentiment_score', sa.Float(), nullable=True),
    sa.Column('classified', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('feedback_id', name=op.f('pk_feedback_facts'))
    )
    with op.batch_alter_table('feedback_facts', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_facts_customer', ['customer_id', 'received_at'], unique=False)

    op.create_table('insights_config',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_insights_config'))
    )
    op.create_table('need_mentions',
    sa.Column('feedback_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('category', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('feedback_id', name=op.f('pk_need_mentions'))
    )
    with op.batch_alter_table('need_mentions', schema=None) as batch_op:
        batch_op.create_index('ix_need_mentions_received', ['received_at'], unique=False)

    op.create_table('pending_contributions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('feedback_id', sa.String(length=36), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dims', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_contributions'))
    )
    with op.batch_alter_table('pending_contributions', schema=None) as batch_op:
        batch_op.create_index('ix_pending_contributions_feedback', ['feedback_id'], unique=False)

    op.create_table('raised_anomalies',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('dimension', sa.String(length=20), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('observed', sa.JSON(), nullable=False),
    sa.Column('expected', sa.JSON(), nullable=False),
    sa.Column('z', sa.Float(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_raised_anomalies'))
    )
    op.create_table('raised_churn_risks',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('risk_score', sa.Float(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_raised_churn_risks'))
    )
    op.create_table('raised_opportunities',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_raised_opportunities'))
    )
    op.create_table('report_runs',
    sa.Column('week_start', sa.String(length=10), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_to', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('week_start', name=op.f('pk_report_runs'))
    )
    op.create_table('report_subscribers',
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('email', name=op.f('pk_report_subscribers'))
    )
    op.create_table('ticket_facts',
    sa.Column('ticket_id', sa.String(length=36), nullable=False),
    sa.Column('feedback_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('team', sa.String(length=100), nullable=False),
    sa.Column('category', sa.String(length=200), nullable=False),
    sa.Column('sentiment', sa.String(length=20), nullable=False),
    sa.Column('priority', sa.String(length=5), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('tier', sa.String(length=50), nullable=True),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolutions', sa.Integer(), nullable=False),
    sa.Column('reopens', sa.Integer(), nullable=False),
    sa.Column('reassignments', sa.Integer(), nullable=False),
    sa.Column('breaches', sa.Integer(), nullable=False),
    sa.Column('agent_replies', sa.Integer(), nullable=False),
    sa.Column('csat', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_ticket_facts'))
    )
    with op.batch_alter_table('ticket_facts', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_facts_created', ['created_at'], unique=False)
        batch_op.create_index('ix_ticket_facts_feedback', ['feedback_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ticket_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_facts_feedback')
        batch_op.drop_index('ix_ticket_facts_created')

    op.drop_table('ticket_facts')
    op.drop_table('report_subscribers')
    op.drop_table('report_runs')
    op.drop_table('raised_opportunities')
    op.drop_table('raised_churn_risks')
    op.drop_table('raised_anomalies')
    with op.batch_alter_table('pending_contributions', schema=None) as batch_op:
        batch_op.drop_index('ix_pending_contributions_feedback')

    op.drop_table('pending_contributions')
    with op.batch_alter_table('need_mentions', schema=None) as batch_op:
        batch_op.drop_index('ix_need_mentions_received')

    op.drop_table('need_mentions')
    op.drop_table('insights_config')
    with op.batch_alter_table('feedback_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_facts_customer')

    op.drop_table('feedback_facts')
    op.drop_table('customer_facts')
    op.drop_table('aggregates')
    drop_messaging_tables(op)
