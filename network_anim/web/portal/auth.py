"""Magic links and sessions of the partner portal.

* A login link carries 256 random bits from :mod:`secrets`; the database keeps only the
  SHA-256 of the token. It expires 15 minutes after it was issued (the app clock) and
  works once: the sign-in is one ``UPDATE ... WHERE used_at IS NULL AND expires_at > now``
  whose row count must be 1, so two simultaneous POSTs of the same link give one session.
* The link's GET only shows a confirmation page (mail scanners open every link); its
  POST signs in.
* A session cookie holds another 256-bit token (HttpOnly, SameSite=Lax, Secure when the
  base URL is https); the ``portal_session`` row holds its hash and expiry.
* POST forms carry a CSRF token derived from the session token (HMAC), checked in
  constant time: a page of another site cannot produce it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from sqlalchemy import func, select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.contract import Outbound, Recipient
from network_anim.db.models import Contact, PortalLogin, PortalSession
from network_anim.domain import Outcome

log = logging.getLogger(__name__)

LOGIN_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(days=14)
MAX_LINKS_PER_TTL = 5  # per contact and 15 minutes: a form cannot be used to flood a mailbox
TOKEN_BYTES = 32  # 256 bits
SESSION_COOKIE = "netanim_session"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"netanim-portal-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_token: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_for(session_token), submitted or "")


# -- finding who asks -----------------------------------------------------------------------


def _e164(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find_contacts(session: Session, identifier: str) -> tuple[str, list[Contact]]:
    """The channel (email or sms) and the active web-enabled contacts an identifier names."""
    ident = identifier.strip()
    if not ident or len(ident) > 254:
        return "email", []
    base = select(Contact).where(Contact.active.is_(True), Contact.web_access.is_(True))  # type: ignore[attr-defined]
    if "@" in ident:
        rows = session.scalars(
            base.where(func.lower(Contact.email) == ident.lower()).limit(5)
        ).all()
        return "email", list(rows)
    number = _e164(ident)
    if number is None:
        return "sms", []
    return "sms", list(session.scalars(base.where(Contact.mobile == number).limit(5)).all())


# -- magic links ------------------------------------------------------------------------------


def issue_login(app: App, contact_id: int, channel: str) -> tuple[int, str] | None:
    """A new login token for a contact (``None`` when too many were asked for lately)."""
    now = app.clock.now()
    token = new_token()
    with Session(app.engine) as session, session.begin():
        recent = session.scalar(
            select(func.count())
            .select_from(PortalLogin)
            .where(PortalLogin.contact_id == contact_id, PortalLogin.created_at > now - LOGIN_TTL)
        )
        if (recent or 0) >= MAX_LINKS_PER_TTL:
            return None
        row = PortalLogin(
            contact_id=contact_id,
            token_hash=token_hash(token),
            channel=channel,
            created_at=now,
            expires_at=now + LOGIN_TTL,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id, token


def login_is_usable(app: App, token: str) -> bool:
    """Whether a link would sign in now (for the confirmation page; changes nothing)."""
    now = app.clock.now()
    with Session(app.engine) as session:
        row = session.scalars(
            select(PortalLogin).where(PortalLogin.token_hash == token_hash(token))
        ).first()
    return row is not None and row.used_at is None and row.expires_at > now


def consume_login(app: App, token: str) -> tuple[int, str] | None:
    """Use a link once: (contact id, new session token), or ``None`` if it is unknown,
    expired or already used. The guarded UPDATE makes concurrent uses give one session."""
    now = app.clock.now()
    digest = token_hash(token)
    with Session(app.engine) as session, session.begin():
        used = session.execute(
            update(PortalLogin)
            .where(
                PortalLogin.token_hash == digest,
                PortalLogin.used_at.is_(None),  # type: ignore[union-attr]
                PortalLogin.expires_at > now,
            )
            .values(used_at=now)
        ).rowcount
        if used != 1:
            return None
        login = session.scalars(select(PortalLogin).where(PortalLogin.token_hash == digest)).one()
        contact = session.get(Contact, login.contact_id)
        if contact is None or not contact.active:
            return None
        session_token = new_token()
        session.add(
            PortalSession(
                contact_id=login.contact_id,
                token_hash=token_hash(session_token),
                login_id=login.id,
                created_at=now,
                expires_at=now + SESSION_TTL,
            )
        )
        return login.contact_id, session_token


# -- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    contact: Contact
    session_id: int
    token: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)


def signed_in(app: App, token: str | None) -> SignedIn | None:
    if not token or len(token) > 200:
        return None
    now = app.clock.now()
    with Session(app.engine) as session:
        row = session.scalars(
            select(PortalSession).where(PortalSession.token_hash == token_hash(token))
        ).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        contact = session.get(Contact, row.contact_id)
        if contact is None or not contact.active:
            return None
        session.expunge(contact)
        assert row.id is not None
        return SignedIn(contact=contact, session_id=row.id, token=token)


def revoke(app: App, session_id: int) -> None:
    with Session(app.engine) as session, session.begin():
        session.execute(
            update(PortalSession)
            .where(PortalSession.id == session_id, PortalSession.revoked_at.is_(None))  # type: ignore[union-attr]
            .values(revoked_at=app.clock.now())
        )


# -- sending the link ------------------------------------------------------------------------

_MAIL = {
    "fr": (
        "Votre lien de connexion au portail partenaires",
        "Bonjour {name},\n\nPour vous connecter au portail partenaires, ouvrez ce lien "
        "(valable 15 minutes, une seule fois) :\n\n{url}\n\nSi vous n'avez rien demandé, "
        "ignorez ce message : personne ne peut se connecter sans ce lien.\n",
    ),
    "en": (
        "Your sign-in link to the partner portal",
        "Hello {name},\n\nTo sign in to the partner portal, open this link (valid for 15 "
        "minutes, once):\n\n{url}\n\nIf you did not ask for it, ignore this message: nobody "
        "can sign in without the link.\n",
    ),
}
_SMS = {
    "fr": "Portail partenaires : votre lien de connexion (15 min) {url}",
    "en": "Partner portal: your sign-in link (15 min) {url}",
}


async def send_login_link(
    app: App, contact: Contact, channel: str, login_id: int, url: str, language: str
) -> bool:
    """Send one link by email or SMS through the configured transport; True if it left."""
    from network_anim.outbox.transports import ConfiguredTransports

    lang = language if language in _MAIL else "fr"
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p).strip()
    recipient = Recipient(
        contact_id=contact.id or 0,
        external_id=contact.external_id,
        display_name=name,
        email=contact.email,
        phone=contact.mobile,
        language=lang,
    )
    if channel == "email":
        subject, body = _MAIL[lang]
        item = Outbound(
            delivery_id=0,
            idempotency_key=f"portal-login:{login_id}",
            channel="email",
            recipient=recipient,
            subject=subject,
            text=body.format(name=name or contact.external_id, url=url),
        )
    else:
        item = Outbound(
            delivery_id=0,
            idempotency_key=f"portal-login:{login_id}",
            channel="sms",
            recipient=recipient,
            text=_SMS[lang].format(url=url),
        )
    try:
        transport = ConfiguredTransports(app)[channel]
        async with transport:
            (result,) = await transport.send_batch([item])
    except Exception:  # a misconfigured transport must not turn into a 500 for the visitor
        log.exception("portal login link to contact %s by %s failed", contact.id, channel)
        return False
    if result.outcome != Outcome.SENT:
        log.warning("portal login link to contact %s: %s", contact.id, result.detail)
        return False
    return True
