"""token signing keys sealed at rest (closedloop.secretbox)

Existing private keys are sealed with the keys of IDENTITY_SECRET_KEYS (the development key in
development mode); production without keys stops the migration rather than leave them in clear.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from closedloop.secretbox import Keyring, is_sealed

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

keys = sa.table("signing_keys", sa.column("kid", sa.String), sa.column("private_pem", sa.Text))


def _keyring() -> Keyring:
    from identity.settings import IdentitySettings

    return Keyring.from_settings(IdentitySettings())


def upgrade() -> None:
    keyring, bind = _keyring(), op.get_bind()
    for row in bind.execute(sa.select(keys.c.kid, keys.c.private_pem)).all():
        if not is_sealed(row.private_pem):
            bind.execute(keys.update().where(keys.c.kid == row.kid).values(private_pem=keyring.seal(row.private_pem)))


def downgrade() -> None:
    keyring, bind = _keyring(), op.get_bind()
    for row in bind.execute(sa.select(keys.c.kid, keys.c.private_pem)).all():
        bind.execute(keys.update().where(keys.c.kid == row.kid).values(private_pem=keyring.open(row.private_pem)))
