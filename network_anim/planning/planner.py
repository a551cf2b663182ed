"""The planner: one message occurrence → outbox rows (audience ► router ► renderer ► insert).

Everything happens in one transaction: any render error (unknown template, undefined
variable, a promotional SMS without its STOP mention) changes nothing. The idempotency
key (campaign, step, occurrence, contact, channel) makes re-planning a no-op for rows
already there, so running the same broadcast twice never sends twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.email_mime import message_key_hash
from network_anim.compose.attachments import attach
from network_anim.compose.composer import Composer, message_context
from network_anim.compose.rendering import Rendered
from network_anim.config.settings import Audience as AudienceConfig
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
from network_anim.network.audience import iter_audience
from network_anim.planning.email_marks import email_invalid_notes
from network_anim.routing.router import ChannelChoice, ContactProfile, MessageSpec, Routing, route

_BATCH = 1000  # contacts per batch: each lookup is one IN query, the rows one executemany
_ROUTES_KEPT = 10_000  # distinct contact profiles remembered per run (a few hundred in practice)
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
    # The outbox rows planned, when asked for (``keep_rows``: a preview shows them).
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return float(sum(self.cost.values()))


def idempotency_key(
    campaign: str, step: str, occurrence: str, contact_id: int, channel: str
) -> str:
    return f"{campaign}:{step}:{occurrence}:{contact_id}:{channel}"


def make_composer(app: App) -> Composer:
    from network_anim.channels.postal import address_block, company_address

    def postal_lines(contact: Contact, company: Company) -> tuple[str, ...]:
        return address_block(
            company_address(
                company,
                civility=contact.civility,
                first_name=contact.first_name,
                last_name=contact.last_name,
            )
        )

    return Composer(
        app.config, app.definitions, app.templates, app.signer, postal_lines, clock=app.clock
    )


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
    keep_rows: bool = False,
) -> PlanResult:
    """Plan inside the caller's transaction, for the request's audience or for the given
    contacts only (a sequence step), so the caller commits it with its own changes.
    ``keep_rows``: the rows planned are also kept in the result (``PlanResult.rows``)."""
    now = app.clock.now()
    due_at = request.due_at or now
    app.templates.require("intranet", request.template)  # every message has its portal page
    composer = make_composer(app)
    result = PlanResult()
    message, campaign, created = _message_row(session, request, now)
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
        fresh=created,
        result=result,
        explain=explain,
    )
    if contacts is None:
        _record_audience(session, request.audience, now)
        batches: Iterable[Sequence[tuple[Any, Any]]] = iter_audience(
            session, request.audience, now=now, min_level=request.level
        )
    else:  # in batches too: every per-batch lookup is one IN query of bounded size
        batches = (contacts[start : start + _BATCH] for start in range(0, len(contacts), _BATCH))
    for batch in batches:
        rows = run.plan_batch(batch)
        if rows and write:
            _insert(session, rows)
        if keep_rows:
            result.rows.extend(rows)
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
    # The message was created by this run: none of its rows can exist yet.
    fresh: bool
    result: PlanResult
    explain: bool
    # Routing depends on a contact's profile, not on who they are: contacts with the same
    # profile (most of a network) share one decision.
    routes: dict[tuple[Any, ...], Routing] = field(default_factory=dict)

    def plan_batch(self, batch: Sequence[tuple[Any, Any]]) -> list[dict[str, Any]]:
        """Outbox rows for a batch of (contact, company): ORM objects (a sequence step) or
        the audience's plain rows, read by attribute alike."""
        routed = self._routed(batch)
        existing = (
            set()
            if self.fresh
            else _existing_keys(self.session, [key for *_, keys in routed for key in keys])
        )
        now = self.app.clock.now()
        rows: list[dict[str, Any]] = []
        for contact, company, routing, keys in routed:
            for choice, key in zip(routing.choices, keys, strict=True):
                if key in existing:
                    self.result.already_planned += 1
                else:
                    rows.append(self._row(contact, company, choice, key, now))
        return rows

    def _routed(
        self, batch: Sequence[tuple[Any, Any]]
    ) -> list[tuple[Any, Any, Routing, list[str]]]:
        """Each reachable contact with its routing and the idempotency key of each choice;
        the explanations and the unreachable contacts go to the result."""
        request, result = self.request, self.result
        contact_ids = [c.id for c, _ in batch if c.id is not None]
        inputs = routing_inputs(
            self.app, self.session, contact_ids, self.message.id, self.spec.kind, self.due_at
        )
        routed = []
        for contact, company in batch:
            assert contact.id is not None
            routing = self._route(contact, company, *inputs.of(contact.id))
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
            keys = [
                idempotency_key(
                    request.campaign_key,
                    request.step,
                    request.occurrence,
                    contact.id,
                    choice.channel,
                )
                for choice in routing.choices
            ]
            routed.append((contact, company, routing, keys))
        return routed

    def _row(
        self, contact: Any, company: Any, choice: ChannelChoice, key: str, now: datetime
    ) -> dict[str, Any]:
        """The outbox row of one choice, composed (rendered, signed, costed)."""
        result, due_at = self.result, self.due_at
        personal = self.request.contact_vars.get(contact.id)
        composed = self.composer.compose(
            channel=choice.channel,
            message=self.message,
            base_context={**self.base_context, **personal} if personal else self.base_context,
            contact=contact,
            company=company,
            post_id=self.posts.post_id(contact.language, flash=choice.channel == "flash"),
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
        if when > due_at:  # held back by a send window or quiet hours: when it was meant for
            extra["deferred_from"] = due_at.isoformat()
        return {
            "idempotency_key": key,
            "key_hash": message_key_hash(key) if choice.channel == "email" else None,
            "message_id": self.message.id,
            "contact_id": contact.id,
            "channel": choice.channel,
            "status": DeliveryStatus.PENDING.value,
            "marketing": self.spec.kind == MessageKind.MARKETING,
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
            "created_at": due_at if due_at < now else now,
            "updated_at": now,
        }

    def _route(
        self,
        contact: Any,
        company: Any,
        bases: dict[str, LawfulBasis] | None,
        counts: dict[str, int] | None,
        email_invalid: str | None = None,
    ) -> Routing:
        key = profile_key(contact, company, bases, counts, email_invalid)
        routing = self.routes.get(key)
        if routing is None:
            profile = contact_profile(contact, company, bases, counts, email_invalid)
            routing = route(self.spec, profile, self.app.policy, self.due_at)
            if len(self.routes) < _ROUTES_KEPT:
                self.routes[key] = routing
        return routing


@dataclass(frozen=True, slots=True)
class RoutingInputs:
    """What the router needs from the database for a batch of contacts, by contact id."""

    bases: dict[int, dict[str, LawfulBasis]]
    counts: dict[int, dict[str, int]]
    # Contacts whose address bounced for good: "email invalid since <date>: <reason>".
    email_invalid: dict[int, str] = field(default_factory=dict)

    def of(
        self, contact_id: int
    ) -> tuple[dict[str, LawfulBasis] | None, dict[str, int] | None, str | None]:
        """One contact's (bases, counts, email invalid note), as ``contact_profile`` takes."""
        return (
            self.bases.get(contact_id),
            self.counts.get(contact_id),
            self.email_invalid.get(contact_id),
        )


def routing_inputs(
    app: App,
    session: Session,
    contact_ids: list[int],
    message_id: int | None,
    kind: MessageKind,
    at: datetime,
) -> RoutingInputs:
    """What the router needs from the database for these contacts, read now (a consent
    withdrawn a minute ago counts): the recorded bases per channel, the addresses marked
    invalid by a bounce, and for a marketing message the other marketing rows in each
    capped channel's window around ``at``."""
    bases = _consents(session, contact_ids)
    counts = (
        _recent_counts(app, session, contact_ids, message_id, at)
        if kind == MessageKind.MARKETING
        else {}
    )
    return RoutingInputs(bases, counts, email_invalid_notes(session, contact_ids))


def profile_key(
    contact: Any,
    company: Any,
    bases: dict[str, LawfulBasis] | None,
    counts: dict[str, int] | None,
    email_invalid: str | None = None,
) -> tuple[Any, ...]:
    """Everything the router reads of a contact: equal keys, equal routing."""
    return (
        email_invalid,
        contact.email_kind,
        bool(contact.mobile),
        _has_postal_address(company),
        contact.web_access,
        contact.timezone,
        company.country,
        frozenset(bases.items()) if bases else None,
        frozenset(counts.items()) if counts else None,
    )


def contact_profile(
    contact: Any,
    company: Any,
    bases: dict[str, LawfulBasis] | None,
    counts: dict[str, int] | None,
    email_invalid: str | None = None,
) -> ContactProfile:
    """The router's view of a contact (an ORM object or a plain row, read by attribute),
    for every delivery the planner decides: a message's rows and their fallbacks.
    ``email_invalid``: why its address is not used any more (a hard bounce), if it is."""
    return ContactProfile(
        contact_id=contact.id,
        email_kind=EmailKind(contact.email_kind),
        has_mobile=bool(contact.mobile),
        has_postal_address=_has_postal_address(company),
        web_access=contact.web_access,
        timezone=contact.timezone,
        # Public holidays in the send windows are the company's country's.
        country=company.country or "FR",
        bases=bases or {},
        recent_counts=counts or {},
        email_invalid=email_invalid,
    )


def _has_postal_address(company: Any) -> bool:
    return bool(company.street and company.postcode and company.city)


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
) -> tuple[Message, Campaign, bool]:
    """The occurrence's message (and its campaign), created if new (the flag says so)."""
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
        return message, campaign, True
    return message, campaign, False


def _record_audience(session: Session, audience: AudienceConfig, now: datetime) -> None:
    definition = audience.model_dump(mode="json")
    row = session.scalars(select(Audience).where(Audience.name == audience.name)).first()
    if row is None:
        session.add(Audience(name=audience.name, definition=definition, updated_at=now))
    elif row.definition != definition:
        row.definition, row.updated_at = definition, now


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    """Which of these keys are in the outbox already (its unique index answers)."""
    if not keys:
        return set()
    return set(
        session.scalars(
            select(Delivery.idempotency_key).where(Delivery.idempotency_key.in_(keys))  # type: ignore[attr-defined]
        )
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
    """Marketing rows per contact and capped channel in each channel's cap window: one
    query for the batch and every capped channel."""
    caps = app.config.routing.frequency_caps
    if not caps or not contact_ids:
        return {}
    windows = [
        # Any window of per_days around this send: rows already sent and rows planned
        # for the coming days both count, so no sliding week ever exceeds the cap.
        and_(
            Delivery.channel == channel,
            Delivery.due_at >= now - timedelta(days=cap.per_days),
            Delivery.due_at <= now + timedelta(days=cap.per_days),
        )
        for channel, cap in caps.items()
    ]
    # Status and window are counted, not filtered: as WHERE terms, the (status, due_at)
    # index looks best to SQLite without statistics, and to PostgreSQL for a big IN list
    # on a table not analysed since it was small (a first broadcast), so both would walk
    # every row just planned, batch after batch. Here each contact is looked up by index,
    # and a contact has few rows.
    counted = func.sum(
        case(
            (
                and_(
                    Delivery.status.in_([s.value for s in _COUNTED_STATUSES]),  # type: ignore[attr-defined]
                    or_(*windows),
                ),
                1,
            ),
            else_=0,
        )
    )
    query = (
        select(Delivery.contact_id, Delivery.channel, counted)
        .where(Delivery.contact_id.in_(contact_ids))  # type: ignore[attr-defined]
        .where(Delivery.channel.in_(list(caps)))  # type: ignore[attr-defined]
        .where(Delivery.marketing.is_(True))  # type: ignore[attr-defined]
        .where(Delivery.message_id != message_id)
        .group_by(Delivery.contact_id, Delivery.channel)
        .having(counted > 0)
    )
    counts: dict[int, dict[str, int]] = {}
    for contact_id, channel, count in session.execute(query):
        counts.setdefault(contact_id, {})[channel] = int(count)
    return counts


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """One batch's rows in one Core executemany (no ORM objects: several times faster)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    table = Delivery.__table__  # type: ignore[attr-defined]
    # A concurrent planner may have inserted the same key: theirs wins, ours is skipped.
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    session.execute(stmt, rows)


__all__ = [
    "MessageRequest",
    "PlanResult",
    "RoutingInputs",
    "idempotency_key",
    "insert",
    "plan_message",
]
