"""Portal tables: single-use magic links and browser sessions.

Only SHA-256 hashes of the tokens are stored: a copy of the database signs nobody in.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from network_anim.db.models import _utc


class PortalLogin(SQLModel, table=True):
    """A magic link sent to a contact: valid 15 minutes, once."""

    __tablename__ = "portal_login"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    channel: str = Field(max_length=20)  # email | sms
    created_at: datetime = _utc()
    expires_at: datetime = _utc()
    used_at: datetime | None = _utc(default=None, nullable=True)


class PortalSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds the token, this row its hash."""

    __tablename__ = "portal_session"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    login_id: int | None = Field(default=None, foreign_key="portal_login.id")
    created_at: datetime = _utc()
    expires_at: datetime = _utc()
    revoked_at: datetime | None = _utc(default=None, nullable=True)
