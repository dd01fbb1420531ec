"""Identity's own tables: users, API keys, token signing keys, pending OpenID Connect logins."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.messaging.models import messaging_models


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


# Identity publishes no events yet; the runtime's outbox and inbox tables are kept for the day it does.
OutboxMessage, InboxMessage, outbox = messaging_models(Base)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_subject"),)

    # The id is the login name: stable, and what the audit logs of the services record (`user:<id>`).
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    # argon2id hash; None for people who log in through the identity provider only.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(10))  # local | oidc
    oidc_issuer: Mapped[str | None] = mapped_column(String(500))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    channels: Mapped[list[str] | None] = mapped_column(JSON)
    # SHA-256 of the key (the key itself is shown once, at creation or rotation, and never stored).
    secret_hash: Mapped[str] = mapped_column(String(64))
    # The key it replaced at the last rotation, still accepted until previous_expires_at.
    previous_hash: Mapped[str | None] = mapped_column(String(64))
    previous_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(220))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_four: Mapped[str] = mapped_column(String(4))


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(10))
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # No longer signs from this time; published until retired_at + token lifetime, then deleted.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OidcLogin(Base):
    """A login in flight (state → PKCE verifier and nonce), then its one-time code for the console."""

    __tablename__ = "oidc_logins"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    return_to: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set by the callback: sha256 of the one-time code the console trades for a token, and whose it is.
    login_code_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(200))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
