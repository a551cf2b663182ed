"""Plan a source for some contacts exactly as a real send would, and keep nothing.

The planner itself routes, renders, signs and costs the deliveries
(``plan_in_session``, its rows kept in the result), in a transaction rolled back at the
end; the router's fallbacks are composed the way the fallback stage composes them (key
``"<row's key>><channel>"``, the row's post, the contact's own variables). The app
planned with signs its links with a throwaway key (see the package docstring).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.contract import Outbound, Recipient
from network_anim.compose.composer import Composer, message_context
from network_anim.compose.links import LinkSigner
from network_anim.compose.rendering import Rendered
from network_anim.db.models import Campaign, Company, Contact, Message, Post, PostAttachment
from network_anim.errors import UserError
from network_anim.planning.messages import step_request
from network_anim.planning.planner import (
    MessageRequest,
    PlanResult,
    make_composer,
    plan_in_session,
)
from network_anim.preview.contacts import Pair, in_audience, named_contacts, sample_contacts
from network_anim.preview.sources import Source, check_templates
from network_anim.routing.router import Routing

SEND, FALLBACK = "send", "fallback"


@dataclass(frozen=True, slots=True)
class ChannelPreview:
    channel: str
    role: str  # SEND: a delivery is planned on it; FALLBACK: tried if a send fails for good
    reason: str
    item: Outbound  # what the channel's transport would be handed
    cost: float
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class PortalPage:
    post: Post
    files: tuple[PostAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ContactPreview:
    contact: Contact
    company: Company
    routing: Routing
    in_audience: bool
    channels: tuple[ChannelPreview, ...] = ()
    # The message's portal page (False) and flash post (True) in the contact's language.
    pages: Mapping[bool, PortalPage] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def external_id(self) -> str:
        return self.contact.external_id

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.contact.first_name, self.contact.last_name) if p)


@dataclass(frozen=True, slots=True)
class Preview:
    source: Source
    at: datetime  # the engine clock's time the message is planned for
    occurrence: str
    contacts: tuple[ContactPreview, ...]


def preview(
    app: App, source: Source, *, contacts: Sequence[str] = (), sample: int | None = None
) -> Preview:
    """The source planned for the named contacts, or for a sample of its audience."""
    check_templates(app, source)
    now = app.clock.now()
    occurrence = f"preview-{now:%Y%m%d-%H%M%S}"
    twin = _with_throwaway_signer(app)
    level = source.campaign.level
    with Session(app.engine) as session:
        session.begin()
        try:
            pairs = (
                named_contacts(session, contacts)
                if contacts
                else sample_contacts(app, session, source.audience, level, sample or 1, now)
            )
            ids = [contact.id for contact, _ in pairs if contact.id is not None]
            members = in_audience(session, source.audience, level, now, ids)
            request = step_request(
                twin,
                session,
                source.campaign,
                source.step,
                occurrence=occurrence,
                due_at=None,
                contact_ids=ids,
                audience=source.audience,
            )
            result = _plan(twin, session, request, pairs, members, source)
            built = _Assembler(twin, session, request, result).build(pairs, members)
            session.expunge_all()  # what the files need stays readable after the rollback
        finally:
            session.rollback()
    return Preview(source, now, occurrence, tuple(built))


def _with_throwaway_signer(app: App) -> App:
    """The app, sharing its engine, templates and policy, whose signer's key no server
    holds: every link of the preview is signed by the real code and refused by the web
    app."""
    app.engine  # noqa: B018 (built before the copy, so both share the one engine)
    twin = copy.copy(app)
    twin.__dict__["signer"] = LinkSigner(secrets.token_bytes(32), app.config.engine.base_url)
    return twin


def _plan(
    app: App,
    session: Session,
    request: MessageRequest,
    pairs: list[Pair],
    members: set[int],
    source: Source,
) -> PlanResult:
    try:
        return plan_in_session(
            app, session, request, contacts=pairs, write=False, explain=True, keep_rows=True
        )
    except UserError as exc:
        outside = [c.external_id for c, _ in pairs if c.id not in members]
        if not outside:
            raise
        hint = (
            f"not in audience {source.audience.name!r} (a real send would not reach them, "
            f"nor give them its variables): {', '.join(outside)}"
        )
        raise UserError(exc.summary, [*exc.problems, hint]) from None


class _Assembler:
    """Each contact's channels (the planned rows, then the composed fallbacks) and pages."""

    def __init__(
        self, app: App, session: Session, request: MessageRequest, result: PlanResult
    ) -> None:
        self.app, self.session, self.request = app, session, request
        self.message = session.get(Message, result.message_id)
        assert self.message is not None
        campaign = session.get(Campaign, self.message.campaign_id)
        assert campaign is not None
        self.context = message_context(app.config, campaign, self.message, app.clock.now().date())
        self.routings = {item.contact: item.routing for item in result.explanations}
        self.rows: dict[int, list[dict[str, Any]]] = {}
        for row in result.rows:
            self.rows.setdefault(row["contact_id"], []).append(row)
        self.composer: Composer = make_composer(app)
        self.pages = self._pages()

    def build(self, pairs: list[Pair], members: set[int]) -> list[ContactPreview]:
        built = []
        for contact, company in pairs:
            routing = self.routings[contact.external_id]
            channels, notes = self._channels(contact, company, routing)
            pages = {
                flash: page
                for (language, flash), page in self.pages.items()
                if language == contact.language
            }
            if contact.id not in members:
                notes.insert(0, f"not in audience {self.request.audience.name!r}")
            built.append(
                ContactPreview(
                    contact,
                    company,
                    routing,
                    in_audience=contact.id in members,
                    channels=tuple(channels),
                    pages=pages,
                    notes=tuple(notes),
                )
            )
        return built

    def _channels(
        self, contact: Contact, company: Company, routing: Routing
    ) -> tuple[list[ChannelPreview], list[str]]:
        rows = {row["channel"]: row for row in self.rows.get(contact.id or 0, [])}
        channels: list[ChannelPreview] = []
        notes: list[str] = []
        for choice in routing.choices:
            row = rows[choice.channel]
            rendered = Rendered(row["subject"], row["body_text"], row["body_html"])
            extra = dict(row["extra"])
            headers = extra.pop("headers", {})
            item = _outbound(
                contact, choice.channel, row["idempotency_key"], rendered, headers, extra
            )
            channels.append(
                ChannelPreview(
                    choice.channel,
                    SEND,
                    choice.reason,
                    item,
                    row["cost_estimate"],
                    choice.not_before,
                )
            )
        for choice in routing.choices:
            for channel in choice.fallback:
                if any(c.channel == channel for c in channels):
                    continue
                try:
                    channels.append(self._fallback(contact, company, rows[choice.channel], channel))
                except (UserError, ValueError) as exc:
                    # What the fallback stage does too: the fallback is held, and says why.
                    notes.append(f"fallback to {channel} impossible: {exc}")
        return channels, notes

    def _fallback(
        self, contact: Contact, company: Company, row: dict[str, Any], channel: str
    ) -> ChannelPreview:
        personal = self.request.contact_vars.get(contact.id or 0) or {}
        key = f"{row['idempotency_key']}>{channel}"
        composed = self.composer.compose(
            channel=channel,
            message=self.message,  # type: ignore[arg-type]
            base_context={**self.context, **personal},
            contact=contact,
            company=company,
            post_id=int(row["extra"].get("post_id", 0)),
            delivery_key=key,
        )
        item = _outbound(contact, channel, key, composed.rendered, composed.headers, composed.extra)
        reason = f"if {row['channel']} fails for good"
        return ChannelPreview(channel, FALLBACK, reason, item, composed.cost_estimate)

    def _pages(self) -> dict[tuple[str, bool], PortalPage]:
        assert self.message is not None
        posts = list(self.session.scalars(select(Post).where(Post.message_id == self.message.id)))
        files = list(
            self.session.scalars(
                select(PostAttachment)
                .where(PostAttachment.post_id.in_([p.id for p in posts]))  # type: ignore[attr-defined]
                .order_by(PostAttachment.filename)
            )
        )
        return {
            (post.language, post.is_flash): PortalPage(
                post, tuple(f for f in files if f.post_id == post.id)
            )
            for post in posts
        }


def _outbound(
    contact: Contact,
    channel: str,
    key: str,
    rendered: Rendered,
    headers: Mapping[str, str],
    extra: Mapping[str, Any],
) -> Outbound:
    """What the dispatcher would hand the channel's transport (outbox/leases.py)."""
    return Outbound(
        delivery_id=0,
        idempotency_key=key,
        channel=channel,
        recipient=Recipient(
            contact_id=contact.id or 0,
            external_id=contact.external_id,
            display_name=" ".join(p for p in (contact.first_name, contact.last_name) if p),
            email=contact.email,
            phone=contact.mobile,
            postal_lines=tuple(extra.get("postal_lines", ())),
            language=contact.language,
        ),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        headers=dict(headers),
        extra=dict(extra),
    )
