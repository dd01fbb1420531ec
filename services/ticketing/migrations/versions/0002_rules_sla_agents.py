"""routing rules, scoring settings, SLA policies and clocks, agents, comments, audit, links, CSAT

Seeds the routing rules from the routing table (packaged, or TICKETING_ROUTING_TABLE_PATH) and the
default SLA policies.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from datetime import UTC, datetime
from uuid import uuid4

import sqlalchemy as sa
from alembic import op

from closedloop.messaging.tables import AutoIncrementId

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("language", sa.String(20)))
        batch.add_column(sa.Column("severity", sa.String(20)))
        batch.add_column(sa.Column("tags", sa.JSON))
        batch.add_column(sa.Column("priority_score", sa.Integer))
        batch.add_column(sa.Column("rule_id", sa.String(36)))
        batch.add_column(sa.Column("sla_policy", sa.String(100)))
        batch.add_column(sa.Column("first_response_due_at", TS))
        batch.add_column(sa.Column("resolution_due_at", TS))
        batch.add_column(sa.Column("sla_breached", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("first_responded_at", TS))
        batch.add_column(sa.Column("resolved_at", TS))
        batch.add_column(sa.Column("closed_at", TS))
        batch.add_column(sa.Column("merged_into", sa.String(36)))
    op.create_index("ix_tickets_assignee", "tickets", ["assignee"])
    op.create_index("ix_tickets_customer_category", "tickets", ["customer_id", "category"])

    rules = op.create_table(
        "routing_rules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, index=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("conditions", sa.JSON, nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    policies = op.create_table(
        "sla_policies",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("priority", sa.String(2), nullable=False),
        sa.Column("customer_tier", sa.String(50)),
        sa.Column("first_response_minutes", sa.Integer),
        sa.Column("resolution_minutes", sa.Integer),
        sa.Column("warn_at_share", sa.Float, nullable=False),
        sa.Column("business_hours", sa.JSON),
        sa.Column("escalate_on_breach", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("priority", "customer_tier", name="uq_sla_policies_priority_tier"),
    )
    op.create_table(
        "sla_clocks",
        sa.Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("target_minutes", sa.Integer, nullable=False),
        sa.Column("warn_at_share", sa.Float, nullable=False),
        sa.Column("business_hours", sa.JSON),
        sa.Column("escalate_on_breach", sa.Boolean, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("warn_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("paused_at", TS),
        sa.Column("stopped_at", TS),
        sa.Column("warned_at", TS),
        sa.Column("breached_at", TS),
        sa.UniqueConstraint("ticket_id", "target", name="uq_sla_clocks_ticket_target"),
    )
    op.create_index("ix_sla_clocks_due", "sla_clocks", ["stopped_at", "paused_at", "due_at"])
    op.create_table(
        "agents",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("teams", sa.JSON, nullable=False),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("languages", sa.JSON, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("last_assigned_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "ticket_comments",
        sa.Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("author_type", sa.String(20), nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "ticket_audit",
        sa.Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(36), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "ticket_links",
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("related_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "ticket_feedback",
        sa.Column("feedback_id", sa.String(36), primary_key=True),
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("attached_at", TS, nullable=False),
    )
    op.create_table(
        "csat_responses",
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    _seed(rules, policies)


def _seed(rules: sa.Table, policies: sa.Table) -> None:
    from ticketing.routing import load_routing_table
    from ticketing.settings import TicketingSettings
    from ticketing.sla import DEFAULT_POLICIES

    now = datetime.now(UTC)
    table = load_routing_table(TicketingSettings().routing_table_path or None)
    op.bulk_insert(rules, [
        {"id": str(uuid4()), "name": rule.name, "position": rule.position, "enabled": True,
         "conditions": rule.conditions.model_dump(exclude_defaults=True),
         "actions": rule.actions.model_dump(exclude_defaults=True), "created_at": now, "updated_at": now}
        for rule in table.default_rules()
    ])
    op.bulk_insert(policies, [
        {"id": str(uuid4()), "name": p.name, "priority": p.priority, "customer_tier": p.customer_tier,
         "first_response_minutes": p.first_response_minutes, "resolution_minutes": p.resolution_minutes,
         "warn_at_share": p.warn_at_share, "business_hours": p.business_hours,
         "escalate_on_breach": p.escalate_on_breach, "created_at": now, "updated_at": now}
        for p in DEFAULT_POLICIES
    ])


def downgrade() -> None:
    for name in ("csat_responses", "ticket_feedback", "ticket_links", "ticket_audit", "ticket_comments", "agents",
                 "sla_clocks", "sla_policies", "settings", "routing_rules"):
        op.drop_table(name)
    op.drop_index("ix_tickets_customer_category", "tickets")
    op.drop_index("ix_tickets_assignee", "tickets")
    with op.batch_alter_table("tickets") as batch:
        for column in ("merged_into", "closed_at", "resolved_at", "first_responded_at", "sla_breached",
                       "resolution_due_at", "first_response_due_at", "sla_policy", "rule_id", "priority_score",
                       "tags", "severity", "language"):
            batch.drop_column(column)
