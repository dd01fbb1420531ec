"""The console's own tables: login sessions and per-user preferences. Nothing else is stored here;
tickets, agents, reports and configuration are read from the services' APIs on every page."""

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.messaging.models import messaging_models


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


# The shared runtime expects them; the console publishes nothing and consumes no durable stream.
OutboxMessage, InboxMessage, outbox = messaging_models(Base)


class LoginSession(Base):
    __tablename__ = "login_sessions"

    # SHA-256 of the cookie value: a leaked table does not hand out live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # What the console sends upstream for this user: a JWT from the identity service (or, with the
    # development stand-in, nothing: the service API key is used).
    access_token: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Preference(Base):
    __tablename__ = "preferences"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    locale: Mapped[str] = mapped_column(String(10))
    timezone: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
