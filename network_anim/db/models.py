"""The tables. One SQLModel class per table; schema changes go through Alembic migrations.

Times are timezone-aware UTC (:class:`UTCDateTime`); enums are stored as their strings so
the database stays readable from ``psql`` or ``sqlite3``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, Text, UniqueConstraint, text
from sqlalchemy import false as sa_false
from sqlmodel import Field, SQLModel

from network_anim.db.types import UTCDateTime


def _utc(**kwargs: Any) -> Any:
    nullable = kwargs.pop("nullable", False)
    index = kwargs.pop("index", False)
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kwargs)


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=Column(JSON, nullable=False), **kwargs)


class Company(SQLModel, table=True):
    """A partner company: distributor, reseller, agency, franchisee."""

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    sector: str = Field(default="", max_length=80)
    size: str = Field(default="", max_length=40)
    tier: str = Field(default="", max_length=40)
    region: str = Field(default="", max_length=80)
    delivery_point: str = Field(default="", max_length=80)
    building: str = Field(default="", max_length=80)
    street: str = Field(default="", max_length=80)
    locality: str = Field(default="", max_length=80)
    postcode: str = Field(default="", max_length=16)
    city: str = Field(default="", max_length=80)
    country: str = Field(default="FR", max_length=2)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class Contact(SQLModel, table=True):
    """A person in a partner company: seller, correspondent or director."""

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, max_length=64)
    company_id: int = Field(foreign_key="company.id", index=True)
    civility: str = Field(default="", max_length=10)
    first_name: str = Field(default="", max_length=80)
    last_name: str = Field(max_length=80)
    role: str = Field(default="", max_length=80)
    level: str = Field(max_length=20, index=True)
    email: str | None = Field(default=None, max_length=254)
    email_kind: str = Field(default="none", max_length=10)
    mobile: str | None = Field(default=None, max_length=20, index=True)  # inbound SMS lookups
    phone: str | None = Field(default=None, max_length=20)
    web_access: bool = True
    timezone: str = Field(default="Europe/Paris", max_length=64)
    language: str = Field(default="fr", max_length=8)
    active: bool = True
    # Set by a hard bounce (or soft_to_hard soft ones): the router treats the contact as
    # having no email until an import brings a new address (network/importer.py).
    email_invalid_at: datetime | None = _utc(default=None, nullable=True)
    email_invalid_reason: str = Field(default="", max_length=300)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class Consent(SQLModel, table=True):
    """The lawful basis recorded for one contact on one channel, or an objection."""

    # Its leading column serves every lookup by contact: no index of contact_id alone.
    __table_args__ = (UniqueConstraint("contact_id", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    channel: str = Field(max_length=20)
    basis: str = Field(max_length=24)
    source: str = Field(default="", max_length=80)
    updated_at: datetime = _utc()


class Audience(SQLModel, table=True):
    """A named audience as last defined in the config (kept for reports and history)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    definition: dict[str, Any] = _json(default_factory=dict)
    updated_at: datetime = _utc()


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=80)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    created_at: datetime = _utc()


class Message(SQLModel, table=True):
    """One occurrence of one step of a campaign: what is said, to whom it is aimed."""

    __table_args__ = (UniqueConstraint("campaign_id", "step", "occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    step: str = Field(max_length=80)
    occurrence: str = Field(max_length=80)
    urgency: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    template: str = Field(max_length=120)
    level: str = Field(default="seller", max_length=20)
    variables: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = _utc()


class Link(SQLModel, table=True):
    """An outside target (http or https URL) of a message, stored when the message is
    rendered: a click token names a link id and a delivery, never a URL, so ``/c/`` can
    only redirect to a target the engine itself put in that delivery's message.

    One row per message and target: the first render of the message that contains the
    URL stores it (``message_id``), every delivery of that message reuses it.
    """

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("message_id", "url"),)

    id: int | None = Field(default=None, primary_key=True)
    # Longer targets (rare, and not worth a redirect) stay as written, untracked.
    url: str = Field(max_length=2000)
    message_id: int = Field(foreign_key="message.id")
    created_at: datetime = _utc()


class Post(SQLModel, table=True):
    """A message's page on the partner portal (canonical post) or a flash post."""

    __table_args__ = (UniqueConstraint("message_id", "language", "is_flash"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    language: str = Field(default="fr", max_length=8)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))  # Markdown
    level: str = Field(default="seller", max_length=20)
    is_flash: bool = False
    published_at: datetime | None = _utc(default=None, nullable=True)
    expires_at: datetime | None = _utc(default=None, nullable=True)
    created_at: datetime = _utc()


class PostRead(SQLModel, table=True):
    """Read receipt; a flash post is gone for a contact once read."""

    __table_args__ = (UniqueConstraint("post_id", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    read_at: datetime = _utc()


class Delivery(SQLModel, table=True):
    """The outbox: one row per message, contact and channel, written before anything leaves."""

    __table_args__ = (
        # With id: a claim (ORDER BY due_at, id LIMIT n) reads n rows, not every pending one.
        Index("ix_delivery_status_due", "status", "due_at", "id"),
        Index("ix_delivery_contact_channel_created", "contact_id", "channel", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    message_id: int = Field(foreign_key="message.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    channel: str = Field(max_length=20)
    status: str = Field(max_length=20)
    marketing: bool = True
    due_at: datetime = _utc()
    # Why the router chose this channel (plan --explain, reports, support questions).
    reason: str = Field(default="", max_length=500)
    # Channels still to try, in order, if this one fails permanently.
    fallback: list[str] = _json(default_factory=list)
    # Indexed: deleting outbox rows checks this foreign key (a purge was quadratic).
    parent_id: int | None = Field(default=None, foreign_key="delivery.id", index=True)
    # Failed for good and its fallback not planned yet: the outbox only sets it, the
    # planner (planning.fallbacks) picks the row up, plans the next channel and clears it.
    # A flag in the row's own transaction, so a crash in between loses no fallback.
    fallback_due: bool = Field(
        default=False, index=True, sa_column_kwargs={"server_default": sa_false()}
    )
    attempts: int = 0
    last_error: str = Field(default="", max_length=1000)
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = _utc(default=None, nullable=True)
    subject: str = Field(default="", max_length=300)
    body_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    body_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    extra: dict[str, Any] = _json(default_factory=dict)
    cost_estimate: float = 0.0
    cost: float | None = None
    # Indexed: every provider status callback finds its row by the provider's id.
    provider_id: str | None = Field(default=None, max_length=300, index=True)
    # Email rows: the hash of the idempotency key the Message-ID and the signed bounce
    # token carry (channels/email_mime.py key_hash, first 32 hex digits); indexed, so a
    # bounce finds its delivery by either clue.
    key_hash: str | None = Field(default=None, max_length=32, index=True)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    sent_at: datetime | None = _utc(default=None, nullable=True)


class Event(SQLModel, table=True):
    """Everything that happened to a delivery or a contact: sent, delivered, opened, read..."""

    __table_args__ = (
        Index("ix_event_type_time", "type", "occurred_at"),
        # A sequence's exit checks: a due batch's replies and unsubscriptions, by contact.
        Index("ix_event_contact_type_time", "contact_id", "type", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = _utc()
    type: str = Field(max_length=30)
    channel: str = Field(default="", max_length=20)
    # Indexed by ix_event_contact_type_time (contact first), foreign key lookups included.
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    # Opens and clicks by prefetchers and scanners are recorded but flagged.
    machine: bool = False
    data: dict[str, Any] = _json(default_factory=dict)
    # Provider callbacks arrive twice: a unique key makes recording idempotent.
    dedupe_key: str | None = Field(default=None, unique=True, max_length=200)


class Feedback(SQLModel, table=True):
    """One bounce, complaint, auto-reply or unsubscribe request, as read from its source
    (bounces/events.py), recorded once whatever the number of times it is read."""

    __table_args__ = (
        # The soft-to-hard count: one address's soft bounces in a window.
        Index("ix_feedback_contact_kind_time", "contact_id", "kind", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The source's own identity of the report (FeedbackEvent.key): the idempotency key.
    key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=20)
    source: str = Field(max_length=40)
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    # The address the report is about (lower-cased), as resolved: the contact's at the time.
    address: str = Field(default="", max_length=254)
    occurred_at: datetime = _utc()  # the report's own time, else received_at
    received_at: datetime = _utc()  # app.clock when it was applied
    status: str = Field(default="", max_length=40)
    diagnostic: str = Field(default="", max_length=500)
    # What the report changed (bounced, retry planned, marked invalid, opted out...).
    outcome: str = Field(default="", max_length=200)


class Sale(SQLModel, table=True):
    """A declared sale: what conversion, RFM recency and enrolment triggers read."""

    __table_args__ = (
        # One live sale per invoice of a company: a withdrawn declaration leaves its
        # invoice free, for the seller to declare it again corrected.
        Index(
            "uq_sale_company_invoice_live",
            "company_id",
            "invoice_ref",
            unique=True,
            sqlite_where=text("status != 'withdrawn'"),
            postgresql_where=text("status != 'withdrawn'"),
        ),
        Index("ix_sale_contact_time", "contact_id", "sold_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    invoice_ref: str = Field(max_length=80)
    product: str = Field(default="", max_length=120)
    quantity: float = 1.0
    amount: float = 0.0  # EUR, excluding VAT
    # pending | approved | rejected | withdrawn (by its seller, on the portal, while pending)
    status: str = Field(default="approved", max_length=20)
    sold_at: datetime = _utc()
    created_at: datetime = _utc()
    declared_by: str = Field(
        default="", max_length=80
    )  # who entered it (a manager on someone's behalf)
    review_reason: str = Field(default="", max_length=300)  # why rejected, shown to the participant
    reviewed_at: datetime | None = _utc(default=None, nullable=True)
    source: str = Field(default="", max_length=200)  # file and line, or "portal"


class Occurrence(SQLModel, table=True):
    """One firing of a scheduled campaign: planned once, or missed and left to an operator."""

    __table_args__ = (UniqueConstraint("campaign_key", "scheduled_for"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_key: str = Field(max_length=80, index=True)
    scheduled_for: datetime = _utc()
    status: str = Field(max_length=20)  # planned | missed | cancelled
    detail: str = Field(default="", max_length=500)
    planned_at: datetime | None = _utc(default=None, nullable=True)
    created_at: datetime = _utc()


class Enrolment(SQLModel, table=True):
    """A contact's place in a nurturing sequence; per-contact timing lives in next_due_at."""

    __table_args__ = (
        UniqueConstraint("campaign_key", "contact_id"),
        Index("ix_enrolment_status_due", "status", "next_due_at"),
        # The tick's claim: one campaign's due rows in (next_due_at, id) order, no sort.
        Index("ix_enrolment_campaign_due", "campaign_key", "status", "next_due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_key: str = Field(max_length=80)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    status: str = Field(max_length=20)  # active | completed | exited
    cycle: int = 0
    step_index: int = 0
    next_due_at: datetime = _utc()
    trigger: str = Field(default="", max_length=40)
    exit_reason: str = Field(default="", max_length=200)
    enrolled_at: datetime = _utc()
    updated_at: datetime = _utc()


# -- challenges, points and rewards --------------------------------------------------------


class Product(SQLModel, table=True):
    """What partners sell: declarations name a SKU; scoring rules name its family."""

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    family: str = Field(default="", max_length=80)
    unit_price: float = 0.0  # reference price, EUR excl. VAT: flags absurd amounts


class Challenge(SQLModel, table=True):
    """A challenge's anchor in the database (its rules live in the config)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=80)
    name: str = Field(max_length=200)
    starts_at: datetime = _utc()
    ends_at: datetime = _utc()
    status: str = Field(default="scheduled", max_length=20)  # scheduled | live | closed
    created_at: datetime = _utc()
    # The time zone the running totals' month and week buckets were cut in; NULL until
    # they are built, and a zone other than [engine] timezone has them rebuilt.
    totals_zone: str | None = Field(default=None, max_length=64)


class Participant(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("challenge_key", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    challenge_key: str = Field(max_length=80, index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    team_key: str = Field(default="", max_length=80)
    registered_at: datetime = _utc()
    via: str = Field(default="", max_length=20)  # automatic | portal | sms | cli | manager
    public: bool = True  # shown by name on public leaderboards


class Objective(SQLModel, table=True):
    """A SMART objective's milestones: points to reach by a date, per participant or team."""

    __table_args__ = (UniqueConstraint("challenge_key", "scope", "subject", "due"),)

    id: int | None = Field(default=None, primary_key=True)
    challenge_key: str = Field(max_length=80, index=True)
    scope: str = Field(max_length=20)  # participant | team
    subject: str = Field(max_length=80)  # contact external id or team key
    due: datetime = _utc()
    target: float


class LedgerEntry(SQLModel, table=True):
    """Append-only points ledger. A balance is the sum of a contact's entries; every
    entry names its source (unique: the same sale never earns twice), actor and reason."""

    __table_args__ = (
        Index("ix_ledger_contact_time", "contact_id", "created_at"),
        Index("ix_ledger_challenge_contact", "challenge_key", "contact_id"),
        # Month and week leaderboards: 981 -> 640 ms and 670 -> 330 ms on 5M entries
        # (bench/leaderboard.py); INCLUDE lets PostgreSQL answer from the index alone.
        Index(
            "ix_ledger_challenge_time",
            "challenge_key",
            "created_at",
            postgresql_include=["contact_id", "kind", "points"],
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    challenge_key: str | None = Field(default=None, max_length=80)
    kind: str = Field(max_length=20)  # earn | bonus | redeem | refund | adjust | expire
    points: int
    # Credits only: what redemptions and expiry have not consumed yet (oldest first).
    remaining: int = 0
    source_key: str = Field(unique=True, max_length=200)
    actor: str = Field(default="system", max_length=80)
    reason: str = Field(default="", max_length=300)
    sale_id: int | None = Field(default=None, foreign_key="sale.id")
    created_at: datetime = _utc()
    expires_at: datetime | None = _utc(default=None, nullable=True)


class PointsAccount(SQLModel, table=True):
    """The balance kept next to the ledger, so a redemption is one guarded UPDATE."""

    __table_args__ = (CheckConstraint("balance >= 0", name="ck_points_account_not_negative"),)

    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    balance: int = 0
    updated_at: datetime = _utc()


class Reward(SQLModel, table=True):
    __table_args__ = (CheckConstraint("stock IS NULL OR stock >= 0", name="ck_reward_stock"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=80)
    name: str = Field(max_length=200)
    points: int
    stock: int | None = None  # None: unlimited
    active: bool = True


class Redemption(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    reward_key: str = Field(max_length=80)
    points: int
    status: str = Field(default="placed", max_length=20)  # placed | cancelled | exported
    created_at: datetime = _utc()
    cancelled_at: datetime | None = _utc(default=None, nullable=True)
    exported_at: datetime | None = _utc(default=None, nullable=True)


class LeaderboardSnapshot(SQLModel, table=True):
    """Ranks as of a digest, for "up 3 places since last time"."""

    # The latest snapshot's time, then each shown subject's rank in it: one index.
    __table_args__ = (
        Index("ix_snapshot_subject", "challenge_key", "scope", "taken_at", "subject"),
    )

    id: int | None = Field(default=None, primary_key=True)
    challenge_key: str = Field(max_length=80)
    scope: str = Field(max_length=20)  # individual | team
    subject: str = Field(max_length=80)
    rank: int
    points: int
    taken_at: datetime = _utc()


class ChallengeTotal(SQLModel, table=True):
    """A participant's running challenge points, whole challenge (``bucket`` "") and per
    month and ISO week (``bucket``: the local date the period starts). Updated in the
    ledger entry's transaction, so a leaderboard reads an index instead of the ledger;
    ``netanim challenge verify`` rebuilds them from the ledger and compares."""

    __table_args__ = (
        UniqueConstraint("challenge_key", "period", "bucket", "contact_id"),
        # Top N and "how many are ahead of me": a range of this index, never the table.
        Index("ix_challengetotal_rank", "challenge_key", "period", "bucket", "points"),
    )

    id: int | None = Field(default=None, primary_key=True)
    challenge_key: str = Field(max_length=80)
    period: str = Field(max_length=10)  # whole | month | week
    bucket: str = Field(max_length=10)
    contact_id: int = Field(foreign_key="contact.id")
    points: int = 0  # earn + bonus + adjust: what the leaderboards rank
    sales: int = 0  # earn + adjust: what objectives and milestones count


class CompanyTotal(SQLModel, table=True):
    """The same totals per company (teams are groups of companies, named in the config),
    with the company's participants counted on the whole-challenge row."""

    __table_args__ = (UniqueConstraint("challenge_key", "period", "bucket", "company_id"),)

    id: int | None = Field(default=None, primary_key=True)
    challenge_key: str = Field(max_length=80)
    period: str = Field(max_length=10)
    bucket: str = Field(max_length=10)
    company_id: int = Field(foreign_key="company.id")
    points: int = 0
    sales: int = 0
    members: int = 0


class PostAttachment(SQLModel, table=True):
    """A document to download from a post (price list, sales pitch...). Files are stored
    once by content hash under data_dir/attachments; rows say which post shows which."""

    __table_args__ = (UniqueConstraint("post_id", "filename"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    created_at: datetime = _utc()


class CompanySegment(SQLModel, table=True):
    """A company's segment under one scheme (RFM: recency, frequency, monetary), as of the
    last recompute; a recompute replaces all the scheme's rows at once."""

    __table_args__ = (UniqueConstraint("company_id", "scheme"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    scheme: str = Field(default="rfm", max_length=20)
    segment: str = Field(max_length=40)
    recency_days: int | None = None  # None: no approved sale in the window
    frequency: int = 0
    monetary: float = 0.0  # EUR excl. VAT, approved sales in the window
    r_score: int | None = None
    f_score: int | None = None
    m_score: int | None = None
    computed_at: datetime = _utc()


# -- portal: single-use magic links and browser sessions; only SHA-256 hashes of the
# tokens are stored, so a copy of the database signs nobody in.


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


class ApiToken(SQLModel, table=True):
    """A bearer token of the read API (``netanim api token create``): only its SHA-256
    hash is stored, so a copy of the database reads nothing through the API."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    token_hash: str = Field(unique=True, max_length=64)
    # What it may read: contacts, campaigns, deliveries, events, challenges, points.
    scopes: list[str] = _json(default_factory=list)
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc(default=None, nullable=True)
    last_used_at: datetime | None = _utc(default=None, nullable=True)


# -- sales declared on the portal: proof files (issue 17, part 1) ----------------------------


class SaleProof(SQLModel, table=True):
    """The proof file (invoice scan) of a sale declared on the portal, stored once by
    content hash under data_dir/attachments like post documents; never served on the
    portal: the channel manager finds its path in ``netanim challenge claims``."""

    __tablename__ = "sale_proof"

    id: int | None = Field(default=None, primary_key=True)
    sale_id: int = Field(foreign_key="sale.id", unique=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    created_at: datetime = _utc()


# -- events and their RSVPs (issue 17, part 2) ------------------------------------------------


class Rsvp(SQLModel, table=True):
    """One contact's answer to one event's invitation (campaigns/events.py): yes with a
    number of seats (confirmed, or waiting for a seat), no, or maybe; and, once the event
    is over, whether they came (``netanim import attendance``). A row with no answer is
    someone who came without having answered."""

    __table_args__ = (
        UniqueConstraint("event_key", "contact_id"),
        Index("ix_rsvp_event_status", "event_key", "status", "answered_at"),
        Index("ix_rsvp_updated_at_id", "updated_at", "id"),  # the webhook feed's position
    )

    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(max_length=80)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    # The invitation delivery answered, and its channel (the report's funnel groups by it).
    # No foreign key: purging old outbox rows must not be blocked by the answers to them.
    delivery_id: int | None = None
    channel: str = Field(default="", max_length=20)
    answer: str | None = Field(default=None, max_length=10)  # yes | no | maybe
    seats: int = 0
    status: str | None = Field(default=None, max_length=10)  # confirmed | waiting (yes only)
    answered_by: str = Field(default="", max_length=20)  # sms | portal
    answered_at: datetime | None = _utc(default=None, nullable=True)
    attended: bool | None = None
    updated_at: datetime = _utc()
    # What set updated_at: answered | promoted (from the waiting list) | attended.
    last_change: str = Field(
        default="answered", max_length=10, sa_column_kwargs={"server_default": "answered"}
    )


# -- outbound webhooks (issue 17, part 3) -----------------------------------------------------


class WebhookDelivery(SQLModel, table=True):
    """The webhooks' outbox: one row per event and subscriber, its body the exact JSON
    that is signed and POSTed; retried with backoff until a 2xx, dead after N attempts."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        # The feed writes each event once per subscriber, whatever the times it reads it.
        UniqueConstraint("event_key", "subscriber"),
        Index("ix_webhook_delivery_status_due", "status", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The webhook-id header: the receiver's idempotency key, the same on every attempt.
    event_key: str = Field(max_length=200)
    subscriber: str = Field(max_length=80)
    event_type: str = Field(max_length=60)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20)  # pending | claimed | sent | dead
    attempts: int = 0
    due_at: datetime = _utc()
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = _utc(default=None, nullable=True)
    last_error: str = Field(default="", max_length=1000)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    sent_at: datetime | None = _utc(default=None, nullable=True)


class WebhookFeed(SQLModel, table=True):
    """How far the webhook feed has read each source table (webhooks/feed.py): moved in
    the transaction that writes the rows read, so a crash loses and doubles nothing."""

    __tablename__ = "webhook_feed"

    source: str = Field(primary_key=True, max_length=40)
    # The last row read, as its ordering key: [id], or [reviewed_at, id] for reviews.
    position: list[Any] = _json(default_factory=list)
    updated_at: datetime = _utc()
