"""Compose one delivery: the template context, the rendered parts, headers, cost.

Used by the planner for every planned row and by the dispatcher when a permanent failure
moves a message to the router's next channel, so both paths produce the same message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import object_session

from network_anim.channels.email_mime import message_key_hash
from network_anim.channels.sms_encoding import sms_segments
from network_anim.clock import Clock
from network_anim.compose.bounce_token import (
    DELIVERY_HEADER,
    ENVELOPE_EXTRA,
    envelope_sender,
    token_for,
)
from network_anim.compose.links import LinkSigner
from network_anim.compose.rendering import Rendered, TemplateStore
from network_anim.compose.stored_links import LinkBook
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import ApprovedTemplate, Config
from network_anim.db.models import Campaign, Company, Contact, Message
from network_anim.domain import MessageKind
from network_anim.errors import UserError

_STOP = re.compile(r"\bstop\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Composed:
    rendered: Rendered
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    cost_estimate: float = 0.0


_SALUTATIONS = {"m": "Monsieur", "mr": "Monsieur", "mme": "Madame", "mrs": "Madame", "ms": "Madame"}


def salutation(civility: str) -> str:
    """The French letter opening for a civility: "Monsieur", "Madame", else both."""
    return _SALUTATIONS.get(civility.strip().rstrip(".").lower(), "Madame, Monsieur")


def contact_context(contact: Contact, company: Company) -> dict[str, Any]:
    full_name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    return {
        "contact": {
            "id": contact.external_id,
            "civility": contact.civility,
            "salutation": salutation(contact.civility),
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "full_name": full_name,
            "role": contact.role,
            "level": contact.level,
            "company": {
                "id": company.external_id,
                "name": company.name,
                "city": company.city,
                "region": company.region,
                "sector": company.sector,
                "size": company.size,
                "tier": company.tier,
            },
        }
    }


def message_context(
    config: Config, campaign: Campaign, message: Message, today: date
) -> dict[str, Any]:
    sms = config.channels.sms
    return {
        **message.variables,
        "campaign": {"id": campaign.key, "name": campaign.name, "kind": campaign.kind},
        "sender_name": sms.sender_name,
        "stop_mention": sms.stop_mention,
        "today": today.isoformat(),
    }


def sms_mention_problem(text: str, sender_name: str) -> str | None:
    """French rules: a promotional SMS names its sender and offers a free STOP."""
    missing = []
    if sender_name.lower() not in text.lower():
        missing.append(f"the sender's name ({sender_name!r}, {{{{ sender_name }}}})")
    if not _STOP.search(text):
        missing.append("the free STOP mention ({{ stop_mention }})")
    if missing:
        return "a promotional SMS must show " + " and ".join(missing)
    return None


class Composer:
    def __init__(
        self,
        config: Config,
        definitions: dict[str, ChannelDefinition],
        templates: TemplateStore,
        signer: LinkSigner,
        postal_lines: Any,
        *,
        clock: Clock,
    ) -> None:
        self.config = config
        self.definitions = definitions
        self.templates = templates
        self.signer = signer
        # The outside targets of the messages composed, stored once per message.
        self.links = LinkBook(clock)
        # A function (contact, company) -> tuple[str, ...] of the letter's address block.
        self._postal_lines = postal_lines
        self._last_people: tuple[Contact, Company, dict[str, Any]] | None = None
        self._last_post_url: tuple[tuple[int, int] | None, str] = (None, "")

    def compose(
        self,
        *,
        channel: str,
        message: Message,
        base_context: dict[str, Any],
        contact: Contact,
        company: Company,
        post_id: int,
        delivery_key: str | None = None,
    ) -> Composed:
        contact_id = contact.id or 0
        context = {
            **base_context,
            **self._people_context(contact, company),
            "post_url": self._post_url(post_id, contact_id),
            "unsubscribe_url": self.signer.unsubscribe_url(contact_id, channel),
        }
        rendered = self.templates.render(channel, message.template, contact.language, context)
        definition = self.definitions[channel]
        self._check_length(channel, message, rendered, definition)
        headers: dict[str, str] = {}
        extra: dict[str, Any] = {"post_id": post_id}
        cost = definition.estimate_cost()
        approved = self.config.channels.approved_template(channel, message.template)
        if approved is not None:
            # A provider-approved template (WhatsApp): its SID and its placeholders' values.
            extra["content_sid"] = approved.content_sid
            extra["content_variables"] = self._content_variables(
                channel, message, approved, context
            )
        if channel == "email":
            headers = self._email_headers(context["unsubscribe_url"], message)
            if delivery_key:
                # Every email can be traced back: a bounce comes to the envelope sender
                # and often quotes the headers, both carrying the signed token.
                token = token_for(self.signer, message_key_hash(delivery_key))
                headers[DELIVERY_HEADER] = token
                extra[ENVELOPE_EXTRA] = envelope_sender(
                    self.config.bounces, self.config.channels.email.sender, token
                )
            if rendered.html and delivery_key:
                # Outside links become signed click URLs naming their stored link; an
                # open pixel is added.
                rendered = Rendered(
                    rendered.subject,
                    rendered.text,
                    self.signer.track_html(rendered.html, delivery_key, self._link_ids(message)),
                )
        elif channel == "sms":
            if message.kind == MessageKind.MARKETING:
                problem = sms_mention_problem(rendered.text, self.config.channels.sms.sender_name)
                if problem:
                    raise UserError(
                        f"{self.templates.directory / 'sms' / message.template}.*.txt: {problem}"
                    )
            encoding = sms_segments(rendered.text.strip())
            extra.update(encoding=encoding.encoding, segments=encoding.segments)
            cost = definition.estimate_cost(encoding.segments)
        elif channel == "print":
            extra["postal_lines"] = list(self._postal_lines(contact, company))
        elif channel == "flash":
            extra["flash"] = True
        return Composed(rendered=rendered, headers=headers, extra=extra, cost_estimate=cost)

    @staticmethod
    def _content_variables(
        channel: str, message: Message, approved: ApprovedTemplate, context: dict[str, Any]
    ) -> dict[str, str]:
        """{"1": value, ...} from the template context; names may be dotted (contact.first_name)."""
        values: dict[str, str] = {}
        for position, name in enumerate(approved.variables, 1):
            value: Any = context
            for part in name.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise UserError(
                        f"channels.{channel}.templates.{message.template}.variables: "
                        f"{name!r} is not a value of the message",
                        [f"known: {', '.join(sorted(context))} (and contact.first_name...)"],
                    )
                value = value[part]
            values[str(position)] = str(value)
        return values

    def _link_ids(self, message: Message) -> Callable[[str], int | None]:
        """url -> stored link id of ``message``, written in the session the message was
        read from (the planning transaction, so a plan rolled back stores no link)."""
        session = object_session(message)
        if session is None or message.id is None:
            raise RuntimeError("compose a message read or flushed in the planning session")
        message_id = message.id
        return lambda url: self.links.link_id(session, message_id, url)  # type: ignore[arg-type]

    def _people_context(self, contact: Contact, company: Company) -> dict[str, Any]:
        """``contact_context``, built once for the channels of one contact in a row (the
        planner composes them one after the other)."""
        last = self._last_people
        if last is None or last[0] is not contact or last[1] is not company:
            last = self._last_people = (contact, company, contact_context(contact, company))
        return last[2]

    def _post_url(self, post_id: int, contact_id: int) -> str:
        """The signed post link, signed once for the channels of one contact in a row."""
        if self._last_post_url[0] != (post_id, contact_id):
            self._last_post_url = ((post_id, contact_id), self.signer.post_url(post_id, contact_id))
        return self._last_post_url[1]

    def compose_post(
        self, message: Message, base_context: dict[str, Any], language: str, *, flash: bool
    ) -> Rendered:
        """The post's title and body: one page per message and language, not per contact."""
        channel = "flash" if flash else "intranet"
        return self.templates.render(channel, message.template, language, base_context)

    def _email_headers(self, unsubscribe_url: str, message: Message) -> dict[str, str]:
        targets = [f"<{unsubscribe_url}>"]
        mailbox = self.config.channels.email.unsubscribe_mailbox
        if mailbox:
            targets.append(f"<mailto:{mailbox}?subject=unsubscribe>")
        headers = {
            "List-Unsubscribe": ", ".join(targets),
            # RFC 8058: the link works with one POST, no login, no confirmation page.
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        if message.kind == MessageKind.MARKETING:
            headers["Precedence"] = "bulk"
        return headers

    def _check_length(
        self, channel: str, message: Message, rendered: Rendered, definition: ChannelDefinition
    ) -> None:
        limit = definition.capabilities.max_length
        if len(rendered.text) > limit:
            raise UserError(
                f"{self.templates.directory / channel / message.template}.*.txt renders "
                f"{len(rendered.text)} characters; {definition.label} carries at most {limit}"
            )
