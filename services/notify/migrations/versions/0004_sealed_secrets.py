"""secrets at rest: webhook signing secrets and Slack hook URLs sealed (closedloop.secretbox)

Existing rows are sealed here, with the keys of NOTIFY_SECRET_KEYS (the development key in development
mode); production without keys stops the migration rather than leave secrets in clear. Slack hook URLs
move from subscriptions.target to the sealed column, and targets, deliveries and recipients keep only
the hook's name `slack-hook:<fingerprint>`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from closedloop.secretbox import Keyring, fingerprint, is_sealed

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _name(url: str) -> str:
    return "slack-hook:" + fingerprint(url)


def upgrade() -> None:
    from notify.settings import NotifySettings

    keyring = Keyring.from_settings(NotifySettings())
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.Text, existing_type=sa.String(200), existing_nullable=False)
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("target_sealed", sa.Text))

    bind = op.get_bind()
    endpoints = sa.table("webhook_endpoints", sa.column("id", sa.String), sa.column("secret", sa.Text))
    for row in bind.execute(sa.select(endpoints.c.id, endpoints.c.secret)).all():
        if not is_sealed(row.secret):
            bind.execute(endpoints.update().where(endpoints.c.id == row.id)
                         .values(secret=keyring.seal(row.secret)))
    subscriptions = sa.table("subscriptions", sa.column("id", sa.String), sa.column("channel", sa.String),
                             sa.column("target", sa.String), sa.column("target_sealed", sa.Text))
    for row in bind.execute(sa.select(subscriptions.c.id, subscriptions.c.target)
                            .where(subscriptions.c.channel == "slack")).all():
        if not row.target.startswith("slack-hook:"):
            bind.execute(subscriptions.update().where(subscriptions.c.id == row.id)
                         .values(target=_name(row.target), target_sealed=keyring.seal(row.target)))
    deliveries = sa.table("deliveries", sa.column("id", sa.String), sa.column("channel", sa.String),
                          sa.column("target", sa.String), sa.column("recipient", sa.String))
    for row in bind.execute(sa.select(deliveries.c.id, deliveries.c.target)
                            .where(deliveries.c.channel == "slack")).all():
        if not row.target.startswith("slack-hook:"):
            bind.execute(deliveries.update().where(deliveries.c.id == row.id)
                         .values(target=_name(row.target), recipient=_name(row.target)))


def downgrade() -> None:
    """Back to secrets in clear (the keys are needed to open them); a Slack delivery whose hook has no
    subscription any more keeps its name."""
    from notify.settings import NotifySettings

    keyring = Keyring.from_settings(NotifySettings())
    bind = op.get_bind()
    endpoints = sa.table("webhook_endpoints", sa.column("id", sa.String), sa.column("secret", sa.Text))
    for row in bind.execute(sa.select(endpoints.c.id, endpoints.c.secret)).all():
        bind.execute(endpoints.update().where(endpoints.c.id == row.id).values(secret=keyring.open(row.secret)))
    subscriptions = sa.table("subscriptions", sa.column("id", sa.String), sa.column("target", sa.String),
                             sa.column("target_sealed", sa.Text))
    urls = {}
    for row in bind.execute(sa.select(subscriptions.c.id, subscriptions.c.target_sealed)
                            .where(subscriptions.c.target_sealed.is_not(None))).all():
        url = keyring.open(row.target_sealed)
        urls[_name(url)] = url
        bind.execute(subscriptions.update().where(subscriptions.c.id == row.id).values(target=url))
    deliveries = sa.table("deliveries", sa.column("target", sa.String), sa.column("recipient", sa.String))
    for name, url in urls.items():
        bind.execute(deliveries.update().where(deliveries.c.target == name).values(target=url, recipient=url))
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("target_sealed")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(200), existing_type=sa.Text, existing_nullable=False)
