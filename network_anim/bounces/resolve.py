"""From a report's clues to our delivery and contact, strongest clue first.

A signed token (VERP envelope address or ``X-Netanim-Delivery`` header) that verifies
names the delivery; one that does not verify is ignored as a clue and logged, never
trusted (anyone can send us a DSN). Then the original's Message-ID (its local part is the
delivery's key hash, else the provider id an SMTP send recorded). Last, the recipient
address: the contacts holding it, without a delivery.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.bounces.events import DeliveryRef
from network_anim.compose.bounce_token import key_hash_of
from network_anim.db.models import Contact, Delivery

log = logging.getLogger(__name__)

_OUR_MESSAGE_ID = re.compile(r"^<([0-9a-f]{32})@", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Resolved:
    delivery: Delivery | None = None
    contact_ids: list[int] = field(default_factory=list)
    # The address the report is about, lower-cased: the report's, else the contact's now.
    address: str | None = None
    forged: bool = False  # a token was given and did not verify


@dataclass
class Resolver:
    app: App
    session: Session

    def resolve(self, ref: DeliveryRef) -> Resolved:
        forged = False
        delivery: Delivery | None = None
        if ref.token:
            key_hash = key_hash_of(self.app.signer, ref.token)
            if key_hash is None:
                forged = True
                log.warning(
                    "bounce token %r does not verify (forged, altered or from another "
                    "key): ignored as a clue",
                    ref.token[:60],
                )
            else:
                delivery = self._by_key_hash(key_hash)
        if delivery is None and ref.message_id:
            delivery = self._by_message_id(ref.message_id.strip())
        recipient = ref.recipient.strip().lower() if ref.recipient else None
        if delivery is not None:
            contact = self.session.get(Contact, delivery.contact_id)
            current = (contact.email or "").lower() if contact is not None else ""
            return Resolved(delivery, [delivery.contact_id], recipient or current or None, forged)
        if recipient:
            ids = list(
                self.session.scalars(
                    select(Contact.id)
                    .where(func.lower(Contact.email) == recipient)
                    .order_by(Contact.id)
                )
            )
            return Resolved(None, ids, recipient, forged)  # type: ignore[arg-type]
        return Resolved(forged=forged)

    def _by_key_hash(self, key_hash: str) -> Delivery | None:
        return self.session.scalars(
            select(Delivery)
            .where(Delivery.key_hash == key_hash.lower())
            # The bounce and a Twilio-like callback or a second process: one at a time.
            .with_for_update()
        ).first()

    def _by_message_id(self, message_id: str) -> Delivery | None:
        ours = _OUR_MESSAGE_ID.match(message_id)
        if ours:
            found = self._by_key_hash(ours.group(1))
            if found is not None:
                return found
        return self.session.scalars(
            select(Delivery).where(Delivery.provider_id == message_id).with_for_update()
        ).first()


__all__ = ["Resolved", "Resolver"]
