"""Bearer tokens of the read API: made by ``netanim api token create``, shown once,
stored as their SHA-256 hash with the scopes they may read, revoked by name."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from network_anim.db.models import ApiToken
from network_anim.errors import UserError

# What a token may read; each /api/v1 path needs one.
SCOPES = ("contacts", "campaigns", "deliveries", "events", "challenges", "points")
PREFIX = "nat_"  # recognisable in a leaked log or a secret scanner's rules
_NAME_MAX = 80


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def create_token(engine: Engine, name: str, scopes: list[str], *, now: datetime) -> str:
    """A new token for ``scopes`` (``all``: every scope), returned once."""
    if not name.strip() or len(name) > _NAME_MAX:
        raise UserError(f"token name {name!r}: give a name of 1 to {_NAME_MAX} characters")
    wanted = list(SCOPES) if "all" in scopes else scopes
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise UserError(
            f"unknown scope(s) {', '.join(map(repr, unknown)) or '(none given)'}",
            [f"give --scope with one of {', '.join(SCOPES)}, or all"],
        )
    token = PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as session, session.begin():
        if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise UserError(
                f"a token named {name!r} exists", ["revoke it first, or choose another name"]
            )
        session.add(
            ApiToken(
                name=name,
                token_hash=token_hash(token),
                scopes=sorted(set(wanted), key=SCOPES.index),
                created_at=now,
            )
        )
    return token


def revoke_token(engine: Engine, name: str, *, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
        if row is None:
            raise UserError(f"no token named {name!r}", ["netanim api token list shows them"])
        if row.revoked_at is None:
            row.revoked_at = now


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with Session(engine) as session:
        rows = session.scalars(select(ApiToken).order_by(ApiToken.name)).all()
        return [
            TokenInfo(r.name, tuple(r.scopes), r.created_at, r.revoked_at, r.last_used_at)
            for r in rows
        ]


def scopes_of(
    session: Session, token: str, *, now: datetime, every: timedelta
) -> tuple[str, ...] | None:
    """The scopes of a live token, None for an unknown or revoked one. Its use is dated
    at most once per ``every``: a system paging through thousands of rows does not write
    at each page."""
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= every:
        row.last_used_at = now
    return tuple(row.scopes)
