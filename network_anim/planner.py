"""The planner: one message occurrence → outbox rows (audience ► router ► renderer ► insert).

Everything happens in one transaction: any render error (unknown template, undefined
variable, a promotional SMS without its STOP mention) changes nothing. The idempotency
key (campaign, step, occurrence, contact, channel) makes re-planning a no-op for rows
already there, so running the same broadcast twice never sends twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.app import App
from network_anim.attachments import attach
from network_anim.audience import iter_audience
from network_anim.composer import Composer, message_context
from network_anim.config import Audience as AudienceConfig
from network_anim.db.models import (
    Audience,
    Campaign,
    Company,
    Consent,
    Contact,
    Delivery,
    Message,
    Post,
)
from network_anim.domain import DeliveryStatus, EmailKind, LawfulBasis, Level, MessageKind, Urgency
from network_anim.rendering import Rendered
from network_anim.router import ContactProfile, MessageSpec, Routing, route

_INSERT_BATCH = 1000
_COUNTED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED, DeliveryStatus.SENT)


@dataclass(frozen=True, slots=True)
class MessageRequest:
    campaign_key: str
    campaign_name: str
    campaign_kind: str
    step: str
    occurrence: str
    audience: AudienceConfig
    urgency: Urgency
    template: str
    kind: MessageKind = MessageKind.MARKETING
    level: Level = Level.SELLER
    variables: Mapping[str, Any] = field(default_factory=dict)
    due_at: datetime | None = None
    # Per-contact template values (a participant's rank and points...), by contact id.
    contact_vars: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    # Documents to download from the message's portal page (absolute paths).
    attachments: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    contact: str
    name: str
    routing: Routing


@dataclass
class PlanResult:
    message_id: int | None = None
    audience_size: int = 0
    new_rows: Counter[str] = field(default_factory=Counter)
    deferred: Counter[str] = field(default_factory=Counter)
    already_planned: int = 0
    unreachable: list[tuple[str, str]] = field(default_factory=list)
    cost: Counter[str] = field(default_factory=Counter)
    samples: dict[str, Rendered] = field(default_factory=dict)
    explanations: list[Explanation] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return float(sum(self.cost.values()))


def idempotency_key(
    campaign: str, step: str, occurrence: str, contact_id: int, channel: str
) -> str:
    return f"{campaign}:{step}:{occurrence}:{contact_id}:{channel}"


def make_composer(app: App) -> Composer:
    from network_anim.postal import address_block, company_address

    def postal_lines(contact: Contact, company: Company) -> tuple[str, ...]:
        return address_block(
            company_address(
                company,
                civility=contact.civility,
                first_name=contact.first_name,
                last_name=contact.last_name,
            )
        )

    return Composer(app.config, app.definitions, app.templates, app.signer, postal_lines)


def plan_message(
    app: App,
    request: MessageRequest,
    *,
    dry_run: bool = False,
    explain: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PlanResult:
    """Plan one occurrence for its audience; with ``dry_run`` compute everything and
    write nothing."""
    with Session(app.engine) as session:
        session.begin()
        try:
            result = plan_in_session(
                app, session, request, write=not dry_run, explain=explain, progress=progress
            )
            if dry_run:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
    return result


def plan_in_session(
    app: App,
    session: Session,
    request: MessageRequest,
    *,
    contacts: list[tuple[Contact, Company]] | None = None,
    write: bool = True,
    explain: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PlanResult:
    """Plan inside the caller's transaction, for the request's audience or for the given
    contacts only (a sequence step), so the caller commits it with its own changes."""
    now = app.clock.now()
    due_at = request.due_at or now
    app.templates.require("intranet", request.template)  # every message has its portal page
    composer = make_composer(app)
    result = PlanResult()
    message, campaign = _message_row(session, request, now)
    base_context = message_context(app.config, campaign, message, due_at.date())
    run = _PlanRun(
        app=app,
        session=session,
        composer=composer,
        posts=_PostCache(
            session, composer, message, base_context, app, due_at, request.attachments
        ),
        message=message,
        base_context=base_context,
        spec=MessageSpec(request.urgency, request.kind),
        request=request,
        due_at=due_at,
        existing_keys=_existing_keys(session, message.id),
        result=result,
        explain=explain,
    )
    if contacts is None:
        _record_audience(session, request.audience, now)
        batches: Iterable[list[tuple[Contact, Company]]] = iter_audience(
            session, request.audience, min_level=request.level
        )
    else:
        batches = [contacts]
    for batch in batches:
        rows = run.plan_batch(batch)
        if rows and write:
            _insert(session, rows)
        result.audience_size += len(batch)
        if progress is not None:
            progress(len(batch))
    result.message_id = message.id
    return result


@dataclass
class _PlanRun:
    """The state shared by every batch of one planning run."""

    app: App
    session: Session
    composer: Composer
    posts: _PostCache
    message: Message
    base_context: dict[str, Any]
    spec: MessageSpec
    request: MessageRequest
    due_at: datetime
    existing_keys: set[str]
    result: PlanResult
    explain: bool

    def plan_batch(self, batch: list[tuple[Contact, Company]]) -> list[dict[str, Any]]:
        app, session, message, spec, result = (
            self.app,
            self.session,
            self.message,
            self.spec,
            self.result,
        )
        due_at, request = self.due_at, self.request
        contact_ids = [c.id for c, _ in batch if c.id is not None]
        bases = _consents(session, contact_ids)
        counts = (
            _recent_counts(app, session, contact_ids, message.id, due_at)
            if spec.kind == MessageKind.MARKETING
            else {}
        )
        rows: list[dict[str, Any]] = []
        for contact, company in batch:
            assert contact.id is not None
            profile = ContactProfile(
                contact_id=contact.id,
                email_kind=EmailKind(contact.email_kind),
                has_mobile=bool(contact.mobile),
                has_postal_address=bool(company.street and company.postcode and company.city),
                web_access=contact.web_access,
                timezone=contact.timezone,
                bases=bases.get(contact.id, {}),
                recent_counts=counts.get(contact.id, {}),
            )
            routing = route(spec, profile, app.policy, due_at)
            if self.explain:
                result.explanations.append(
                    Explanation(
                        contact.external_id,
                        f"{contact.first_name} {contact.last_name}".strip(),
                        routing,
                    )
                )
            if routing.unreachable:
                result.unreachable.append((contact.external_id, routing.unreachable))
                continue
            for choice in routing.choices:
                key = idempotency_key(
                    request.campaign_key,
                    request.step,
                    request.occurrence,
                    contact.id,
                    choice.channel,
                )
                if key in self.existing_keys:
                    result.already_planned += 1
                    continue
                post_id = self.posts.post_id(contact.language, flash=choice.channel == "flash")
                personal = request.contact_vars.get(contact.id)
                composed = self.composer.compose(
                    channel=choice.channel,
                    message=message,
                    base_context={**self.base_context, **personal}
                    if personal
                    else self.base_context,
                    contact=contact,
                    company=company,
                    post_id=post_id,
                    delivery_key=key,
                )
                result.samples.setdefault(choice.channel, composed.rendered)
                when = choice.not_before or due_at
                if when > due_at:
                    result.deferred[choice.channel] += 1
                result.new_rows[choice.channel] += 1
                result.cost[choice.channel] += composed.cost_estimate
                extra = {**composed.extra}
                if personal:
                    extra["vars"] = dict(personal)  # a fallback channel renders with them too
                if composed.headers:
                    extra["headers"] = composed.headers
                rows.append(
                    {
                        "idempotency_key": key,
                        "message_id": message.id,
                        "contact_id": contact.id,
                        "channel": choice.channel,
                        "status": DeliveryStatus.PENDING.value,
                        "marketing": spec.kind == MessageKind.MARKETING,
                        "due_at": when,
                        "reason": choice.reason[:500],
                        "fallback": list(choice.fallback),
                        "attempts": 0,
                        "last_error": "",
                        "subject": composed.rendered.subject[:300],
                        "body_text": composed.rendered.text,
                        "body_html": composed.rendered.html,
                        "extra": extra,
                        "cost_estimate": composed.cost_estimate,
                        "created_at": due_at if due_at < app.clock.now() else app.clock.now(),
                        "updated_at": app.clock.now(),
                    }
                )
        return rows


class _PostCache:
    """The message's portal pages, created on first use, one per language (and flash)."""

    def __init__(
        self,
        session: Session,
        composer: Composer,
        message: Message,
        context: dict[str, Any],
        app: App,
        due_at: datetime,
        attachments: tuple[Path, ...] = (),
    ) -> None:
        self._session = session
        self._composer = composer
        self._attachments = attachments
        self._message = message
        self._context = context
        self._app = app
        self._due_at = due_at
        self._ids: dict[tuple[str, bool], int] = {
            (p.language, p.is_flash): p.id  # type: ignore[misc]
            for p in session.scalars(select(Post).where(Post.message_id == message.id))
        }

    def post_id(self, language: str, *, flash: bool) -> int:
        key = (language, flash)
        if key not in self._ids:
            # Canonical pages exist in every language the audience reads.
            if flash and (language, False) not in self._ids:
                self.post_id(language, flash=False)
            self._ids[key] = self._create(language, flash)
        return self._ids[key]

    def _create(self, language: str, flash: bool) -> int:
        rendered = self._composer.compose_post(self._message, self._context, language, flash=flash)
        settings = self._app.config.channels
        if flash:
            expires: datetime | None = self._due_at + timedelta(
                hours=settings.flash.default_expiry_hours
            )
        elif settings.intranet.default_expiry_days:
            expires = self._due_at + timedelta(days=settings.intranet.default_expiry_days)
        else:
            expires = None
        post = Post(
            message_id=self._message.id,
            language=language,
            title=rendered.subject or self._message.template,
            body=rendered.text,
            level=self._message.level,
            is_flash=flash,
            published_at=self._due_at,
            expires_at=expires,
            created_at=self._app.clock.now(),
        )
        self._session.add(post)
        self._session.flush()
        assert post.id is not None
        if not flash and self._attachments:
            attach(self._session, self._app.data_dir, post.id, self._attachments, post.created_at)
        return post.id


def _message_row(
    session: Session, request: MessageRequest, now: datetime
) -> tuple[Message, Campaign]:
    campaign = session.scalars(select(Campaign).where(Campaign.key == request.campaign_key)).first()
    if campaign is None:
        campaign = Campaign(
            key=request.campaign_key,
            name=request.campaign_name,
            kind=request.campaign_kind,
            created_at=now,
        )
        session.add(campaign)
        session.flush()
    message = session.scalars(
        select(Message).where(
            Message.campaign_id == campaign.id,
            Message.step == request.step,
            Message.occurrence == request.occurrence,
        )
    ).first()
    if message is None:
        message = Message(
            campaign_id=campaign.id,  # type: ignore[arg-type]
            step=request.step,
            occurrence=request.occurrence,
            urgency=request.urgency.value,
            kind=request.kind.value,
            template=request.template,
            level=request.level.value,
            variables=dict(request.variables),
            created_at=now,
        )
        session.add(message)
        session.flush()
    return message, campaign


def _record_audience(session: Session, audience: AudienceConfig, now: datetime) -> None:
    definition = audience.model_dump(mode="json")
    row = session.scalars(select(Audience).where(Audience.name == audience.name)).first()
    if row is None:
        session.add(Audience(name=audience.name, definition=definition, updated_at=now))
    elif row.definition != definition:
        row.definition, row.updated_at = definition, now


def _existing_keys(session: Session, message_id: int | None) -> set[str]:
    return set(
        session.scalars(select(Delivery.idempotency_key).where(Delivery.message_id == message_id))
    )


def _consents(session: Session, contact_ids: Iterable[int]) -> dict[int, dict[str, LawfulBasis]]:
    bases: dict[int, dict[str, LawfulBasis]] = {}
    rows = session.execute(
        select(Consent.contact_id, Consent.channel, Consent.basis).where(
            Consent.contact_id.in_(list(contact_ids))
        )  # type: ignore[attr-defined]
    )
    for contact_id, channel, basis in rows:
        bases.setdefault(contact_id, {})[channel] = LawfulBasis(basis)
    return bases


def _recent_counts(
    app: App, session: Session, contact_ids: list[int], message_id: int | None, now: datetime
) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    for channel, cap in app.config.routing.frequency_caps.items():
        rows = session.execute(
            select(Delivery.contact_id, func.count())
            .where(Delivery.contact_id.in_(contact_ids))  # type: ignore[attr-defined]
            .where(Delivery.channel == channel)
            .where(Delivery.marketing.is_(True))  # type: ignore[attr-defined]
            .where(Delivery.message_id != message_id)
            .where(Delivery.status.in_([s.value for s in _COUNTED_STATUSES]))  # type: ignore[attr-defined]
            # Any window of per_days around this send: rows already sent and rows planned
            # for the coming days both count, so no sliding week ever exceeds the cap.
            .where(Delivery.due_at >= now - timedelta(days=cap.per_days))
            .where(Delivery.due_at <= now + timedelta(days=cap.per_days))
            .group_by(Delivery.contact_id)
        )
        for contact_id, count in rows:
            counts.setdefault(contact_id, {})[channel] = int(count)
    return counts


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    table = Delivery.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), _INSERT_BATCH):
        # A concurrent planner may have inserted the same key: theirs wins, ours is skipped.
        stmt = module.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
        session.execute(stmt, rows[start : start + _INSERT_BATCH])


__all__ = ["MessageRequest", "PlanResult", "idempotency_key", "insert", "plan_message"]
