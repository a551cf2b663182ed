"""The TOML configuration a channel manager writes, validated with key paths.

``config.example.toml`` documents every key. Secrets never appear here: the config names
the environment variables that hold them (``*_env`` keys).
"""

from __future__ import annotations

import os
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from network_anim.config.audience_conditions import Condition, parse_condition
from network_anim.config.channel_defs import Weekday
from network_anim.domain import CHANNEL_NAMES, RFM_SEGMENTS, EmailKind, Level, MessageKind, Urgency
from network_anim.errors import UserError

# Subscripting Literal with the tuple spells out every name: domain.CHANNEL_NAMES is the one
# list (a name without channels/<name>.toml is refused by the router: "not defined").
ChannelName = Literal[CHANNEL_NAMES]  # type: ignore[valid-type]
EnvVarName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(Section):
    database: str = "sqlite:///netanim.db"
    timezone: str = "Europe/Paris"
    default_region: str = Field(default="FR", pattern=r"^[A-Z]{2}$")
    language: str = "fr"
    base_url: str = "http://localhost:8000"
    secret_key_env: EnvVarName = "NETANIM_SECRET_KEY"
    # Relative paths are resolved against the folder of the config file.
    data_dir: Path = Path("var")
    templates_dir: Path = Path("templates")
    channels_dir: Path = Path("channels")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like 'Europe/Paris')"
            ) from None
        return value


class EmailSettings(Section):
    transport: Literal["file", "smtp"] = "file"
    sender: str = "Animation réseau <animation@example.com>"
    reply_to: str | None = None
    # smtp transport
    host: str = "localhost"
    port: int = Field(default=25, gt=0, lt=65536)
    security: Literal["none", "starttls", "ssl"] = "none"
    username_env: EnvVarName | None = None
    password_env: EnvVarName | None = None
    timeout: float = Field(default=30.0, gt=0)
    concurrency: int | None = Field(default=None, gt=0)
    rate_per_second: float | None = Field(default=None, gt=0)
    # Sent emails whose result is not yet recorded, at most: what a crash can resend.
    max_unrecorded: int = Field(default=1, ge=1, le=10_000)
    # file transport: one .eml file per message
    directory: Path = Path("var/outbox/email")
    # Address that receives List-Unsubscribe mails (mailto: variant of RFC 2369).
    unsubscribe_mailbox: str | None = None


class SmsSettings(Section):
    transport: Literal["file", "twilio"] = "file"
    # A Twilio number in E.164, or an alphanumeric sender id (max 11 characters).
    sender: str = "ANIMRESEAU"
    # Shown in every promotional SMS with the STOP mention (French rules).
    sender_name: str = "Animation Réseau"
    stop_mention: str = "STOP au 36180"
    messaging_service_sid: str | None = None
    account_sid_env: EnvVarName = "TWILIO_ACCOUNT_SID"
    auth_token_env: EnvVarName = "TWILIO_AUTH_TOKEN"
    # Lets tests and staging point the official client at a stand-in of the Messages API.
    api_base_url: str = "https://api.twilio.com"
    status_callback: bool = True
    timeout: float = Field(default=15.0, gt=0)
    concurrency: int | None = Field(default=None, gt=0)
    rate_per_second: float | None = Field(default=None, gt=0)
    directory: Path = Path("var/outbox/sms")


class IntranetSettings(Section):
    default_expiry_days: int | None = Field(default=None, gt=0)


class FlashSettings(Section):
    default_expiry_hours: int = Field(default=48, gt=0)


class PrintSettings(Section):
    directory: Path = Path("var/exports/print")
    # Sender block printed top left of every letter.
    sender_lines: tuple[str, ...] = ("Animation Réseau", "1 rue de l'Exemple", "75001 PARIS")
    signature: str = "L'équipe animation réseau"
    place: str = "Paris"
    # The letter's date line: the day its batch is handed to the mail house (engine clock,
    # engine time zone) plus this many days (the mail house's lead time before posting).
    date_offset_days: int = Field(default=0, ge=0, le=30)


class ApprovedTemplate(Section):
    """A message template the provider approved (WhatsApp: Meta, through Twilio's Content
    API): its SID, and which message values fill its placeholders {{1}}, {{2}}..."""

    content_sid: str = Field(pattern=r"^HX[0-9a-fA-F]{32}$")
    # Names of the template context (first_name, post_url, campaign_name...), in order.
    variables: tuple[str, ...] = ()


class WhatsappSettings(SmsSettings):
    """WhatsApp through Twilio's Messages API: the SMS settings, a WhatsApp sender, and the
    approved templates a business-initiated message must use."""

    # The WhatsApp-enabled Twilio number, E.164 (sent as "whatsapp:+...").
    sender: str = "+14155238886"
    directory: Path = Path("var/outbox/whatsapp")
    # Template name (templates/whatsapp/<name>.*.txt) -> its approved Content template.
    # Outside the session that a contact's message opens, only these may be sent.
    templates: dict[str, ApprovedTemplate] = Field(default_factory=dict)
    session_hours: float = Field(default=24.0, gt=0, le=24.0)


class ChannelsSettings(Section):
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    intranet: IntranetSettings = IntranetSettings()
    flash: FlashSettings = FlashSettings()
    print: PrintSettings = PrintSettings()
    whatsapp: WhatsappSettings = WhatsappSettings()

    def approved_template(self, channel: str, template: str) -> ApprovedTemplate | None:
        """The provider-approved version of ``template`` on ``channel``, if configured."""
        section = getattr(self, channel, None)
        return section.templates.get(template) if isinstance(section, WhatsappSettings) else None


class UrgencyPolicy(Section):
    """Channels that each get a delivery, then the channels tried in order if one fails."""

    send: tuple[ChannelName, ...] = Field(min_length=1)
    fallback: tuple[ChannelName, ...] = ()

    @model_validator(mode="after")
    def _each_channel_once(self) -> UrgencyPolicy:
        listed = [*self.send, *self.fallback]
        repeated = sorted({ch for ch in listed if listed.count(ch) > 1})
        if repeated:
            raise ValueError(
                f"channel(s) listed more than once in send + fallback: {', '.join(repeated)}"
            )
        return self


def _default_policies() -> dict[Urgency, UrgencyPolicy]:
    return {
        Urgency.FLASH: UrgencyPolicy(send=("flash", "sms"), fallback=("email",)),
        Urgency.URGENT: UrgencyPolicy(send=("sms",), fallback=("email",)),
        Urgency.REMINDER: UrgencyPolicy(send=("email",), fallback=("sms", "print")),
        Urgency.IMPORTANT: UrgencyPolicy(send=("print",), fallback=("email",)),
        Urgency.INFO: UrgencyPolicy(send=("intranet", "email"), fallback=("print",)),
    }


class FrequencyCap(Section):
    max: int = Field(gt=0)
    per_days: int = Field(gt=0)


def _default_caps() -> dict[ChannelName, FrequencyCap]:
    return {
        "email": FrequencyCap(max=3, per_days=7),
        "sms": FrequencyCap(max=2, per_days=7),
        "print": FrequencyCap(max=2, per_days=30),
    }


class QuietHours(Section):
    """No operational SMS in these hours unless the message is urgent."""

    start: time = time(21, 0)
    end: time = time(8, 0)


class RoutingSettings(Section):
    urgencies: dict[Urgency, UrgencyPolicy] = Field(default_factory=_default_policies)
    frequency_caps: dict[ChannelName, FrequencyCap] = Field(default_factory=_default_caps)
    quiet_hours: QuietHours | None = QuietHours()

    @field_validator("urgencies")
    @classmethod
    def _complete(cls, value: dict[Urgency, UrgencyPolicy]) -> dict[Urgency, UrgencyPolicy]:
        # A partial table overrides the defaults urgency by urgency.
        return {**_default_policies(), **value}


class Audience(Section):
    """A named set of contacts; every filter given must match (empty filter = any)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    levels: tuple[Level, ...] = ()
    roles: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    companies: tuple[str, ...] = ()  # company external ids
    email_kinds: tuple[EmailKind, ...] = ()
    languages: tuple[str, ...] = ()
    # Participants of a challenge: registered ones (true), the others (false), or both.
    challenge: str | None = None
    registered: bool | None = None
    # Invited to an event (campaigns/events.py): those who answered yes and hold a seat
    # ("yes"), or who were invited and never answered ("no-answer").
    event: str | None = None
    rsvp: Literal["yes", "no-answer"] | None = None
    # Companies in these RFM segments, as last computed by `netanim segment rfm`.
    rfm_segments: tuple[str, ...] = ()
    # all/any/not groups of conditions (config/audience_conditions.py), on top of the
    # filters above. Kept as written (the audience's stored definition); parsed once.
    where: dict[str, Any] | None = None

    @field_validator("where")
    @classmethod
    def _conditions(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            parse_condition(value)
        return value

    @cached_property
    def condition(self) -> Condition | None:
        return None if self.where is None else parse_condition(self.where)

    @field_validator("rfm_segments")
    @classmethod
    def _known_segments(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in RFM_SEGMENTS]
        if unknown:
            raise ValueError(
                f"unknown RFM segment(s) {', '.join(map(repr, unknown))}: "
                f"use {', '.join(RFM_SEGMENTS)}"
            )
        return value


class Schedule(Section):
    """When a scheduled campaign fires (APScheduler triggers), in [engine] timezone."""

    cron: str | None = None  # crontab: "minute hour day month day_of_week"
    date: datetime | None = None  # once
    interval_days: int | None = Field(default=None, gt=0)
    start: datetime | None = None  # first firing of an interval schedule; none before it
    end: datetime | None = None  # no firing after it

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        given = [k for k in ("cron", "date", "interval_days") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, date, interval_days")
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron)
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r}: {exc}") from None
        return self


class StepWindow(Section):
    """Hours a step may go out, in the contact's own time zone (e.g. office hours)."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(18, 0)

    @model_validator(mode="after")
    def _ordered(self) -> StepWindow:
        if self.end <= self.start:
            raise ValueError("end must be later than start")
        return self


class UnopenedBranch(Section):
    """If the previous step's email was not opened after N days, take another urgency
    for this step (the router then picks SMS or print instead of another email)."""

    after_days: float = Field(gt=0)
    urgency: Urgency


class Step(Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    template: str
    urgency: Urgency
    kind: MessageKind = MessageKind.MARKETING
    # From the previous step (sequences) or from the firing (scheduled campaigns).
    delay: str = "0d"
    window: StepWindow | None = None
    unopened: UnopenedBranch | None = None
    # Documents to download from the post (relative to the config file's folder).
    attachments: tuple[Path, ...] = ()

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        from network_anim.config.durations import parse_delay

        parse_delay(value)
        return value

    @property
    def parsed_delay(self):  # type: ignore[no-untyped-def]
        from network_anim.config.durations import parse_delay

        return parse_delay(self.delay)


Trigger = Literal["imported", "first_sale", "no_sale", "manual"]
ExitCondition = Literal["converted", "replied", "unsubscribed", "left_audience"]


class Enrol(Section):
    """What puts a contact in a nurturing sequence (re-enrolling an active one is a no-op)."""

    on: tuple[Trigger, ...] = Field(min_length=1)
    # For "no_sale": days without any approved sale (RFM recency).
    no_sale_days: int = Field(default=90, gt=0)


class Campaign(Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    kind: Literal["challenge", "nurture", "newsletter", "broadcast", "event"]
    audience: str
    schedule: Schedule | None = None
    enrol: Enrol | None = None
    exit_on: tuple[ExitCondition, ...] = ("unsubscribed", "left_audience")
    steps: tuple[Step, ...] = Field(min_length=1)
    level: Level = Level.SELLER
    # Values the templates of every step can use ({{ name }}).
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _timing(self) -> Campaign:
        if self.kind == "nurture":
            if self.enrol is None:
                raise ValueError(
                    "a nurture campaign needs [campaigns.enrol] (what enrols a contact)"
                )
            if self.schedule is not None:
                raise ValueError("a nurture campaign follows each contact: no schedule")
        elif self.enrol is not None:
            raise ValueError(f"enrol applies to nurture campaigns, not to {self.kind}")
        names = [s.name for s in self.steps]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"step name(s) used twice: {', '.join(repeated)}")
        return self


class DaemonSettings(Section):
    """How often the daemon looks for work, and how it treats lateness and failures."""

    dispatch_seconds: float = Field(default=5.0, gt=0)  # outbox scan
    sequence_seconds: float = Field(default=30.0, gt=0)  # due sequence steps
    trigger_minutes: float = Field(default=15.0, gt=0)  # enrolment triggers (no sale for N days...)
    leader_check_seconds: float = Field(default=5.0, gt=0)  # scheduler role (PostgreSQL lock)
    # A firing found later than this (daemon down) is recorded as missed, not sent late.
    misfire_grace_minutes: float = Field(default=60.0, gt=0)
    lease_minutes: float = Field(default=5.0, gt=0)  # a claimed row returns after this
    max_attempts: int = Field(default=6, gt=0)  # transient failures, then dead
    batch_size: int = Field(default=200, gt=0)


class BounceMailbox(Section):
    """The mailbox DSNs and complaint reports arrive in, read over IMAP by the daemon."""

    host: str | None = None  # None: no mailbox, the daemon does not poll
    port: int | None = Field(default=None, gt=0, lt=65536)  # None: 993 with ssl, else 143
    security: Literal["none", "starttls", "ssl"] = "ssl"
    username_env: EnvVarName = "NETANIM_BOUNCE_IMAP_USER"
    password_env: EnvVarName = "NETANIM_BOUNCE_IMAP_PASSWORD"
    folder: str = "INBOX"
    # Reports read (classified or not) are moved here, so the inbox holds only new mail;
    # a report that cannot be read goes to unreadable_folder for a person to look at.
    processed_folder: str = "netanim/processed"
    unreadable_folder: str = "netanim/unreadable"
    timeout: float = Field(default=30.0, gt=0)


class BounceSettings(Section):
    """Email feedback: where bounces come back, and what they do."""

    # Envelope sender of every email: bounces+<signed delivery token>@verp_domain when
    # verp_domain is set (VERP), else the plain return_path (or the sender's address).
    verp_domain: str | None = None
    verp_local_part: str = Field(default="bounces", pattern=r"^[A-Za-z0-9._-]+$")
    return_path: str | None = None
    # A soft bounce (mailbox full, relay down) retries at the relay's pace; soft_to_hard
    # soft bounces of one address within soft_window_days make it a hard bounce.
    soft_to_hard: int = Field(default=3, gt=0)
    soft_window_days: int = Field(default=14, gt=0)
    # The daemon's tick reading the mailbox (when [bounces.mailbox] names a host).
    poll_minutes: float = Field(default=5.0, gt=0)
    mailbox: BounceMailbox = BounceMailbox()
    # Warnings in reports and the daemon's log (bulk senders' rules: complaints < 0.3 %).
    complaint_rate_warning: float = Field(default=0.003, gt=0, lt=1)
    hard_bounce_rate_warning: float = Field(default=0.02, gt=0, lt=1)
    # Providers' webhooks on `netanim serve` (/hooks/bounces/<provider>): the variables
    # holding each one's signing secret (SES needs none: SNS messages carry a certificate).
    postmark_token_env: EnvVarName = "NETANIM_POSTMARK_WEBHOOK_TOKEN"
    sendgrid_public_key_env: EnvVarName = "NETANIM_SENDGRID_WEBHOOK_PUBLIC_KEY"
    # SNS topics whose notifications are accepted (empty: none, the SES hook refuses all).
    ses_topic_arns: tuple[str, ...] = ()


class ReportSettings(Section):
    """How ``netanim report`` measures conversion into sales and the gain behind ROI."""

    # A reached contact converts with an approved sale within this many days of the
    # campaign's first delivery to them.
    conversion_window_days: int = Field(default=30, gt=0)
    # Share of a sale's amount kept as gain (gross margin rate): gain = margin_rate x sales.
    margin_rate: float = Field(default=0.3, ge=0, le=1)
    # attributed: every sale of a converted contact in its window; incremental: only what
    # the reached contacts bought beyond the comparison group's rate.
    gain_basis: Literal["attributed", "incremental"] = "attributed"


class Product(Section):
    """What partners sell (declarations name the SKU)."""

    sku: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str
    family: str = ""
    unit_price: float = Field(default=0.0, ge=0)  # reference, EUR excl. VAT


class RewardItem(Section):
    """A gift of the rewards shop: its price in points and the stock (none = unlimited)."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    points: int = Field(gt=0)
    stock: int | None = Field(default=None, ge=0)


class FamilyRule(Section):
    points_per_unit: float = Field(default=0.0, ge=0)
    points_per_euro: float = Field(default=0.0, ge=0)


class Multiplier(Section):
    """Points multiplied on sales dated in [start, end] (a boost fortnight)."""

    start: date
    end: date
    factor: float = Field(gt=0)
    families: tuple[str, ...] = ()  # empty: every family

    @model_validator(mode="after")
    def _ordered(self) -> Multiplier:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class MilestoneBonus(Section):
    """Bonus points once a participant reaches a share of their objective."""

    reached: float = Field(gt=0)  # 0.5 = half of the final objective, 1.0 = all of it
    points: int = Field(gt=0)


class Scoring(Section):
    points_per_unit: float = Field(default=0.0, ge=0)
    points_per_euro: float = Field(default=0.0, ge=0)
    families: dict[str, FamilyRule] = Field(default_factory=dict)
    multipliers: tuple[Multiplier, ...] = ()
    milestones: tuple[MilestoneBonus, ...] = ()


class ChallengeTeam(Section):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    companies: tuple[str, ...] = Field(min_length=1)  # company external ids


class ChallengeConfig(Section):
    """A sales challenge: period, who may take part, how sales become points."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    audience: str
    start: date
    end: date
    modes: tuple[Literal["individual", "team"], ...] = ("individual", "team")
    # Teams: each company by default, or named groups of companies.
    teams: tuple[ChallengeTeam, ...] = ()
    team_ranking: Literal["total", "average"] = "average"
    registration: Literal["automatic", "required"] = "required"
    sms_keyword: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,20}$")
    approval: bool = False  # declarations wait for a manager's approval before earning
    points_expiry_months: int | None = Field(default=None, gt=0)
    objectives: Path | None = None  # CSV of SMART objectives and milestones
    scoring: Scoring = Scoring()
    level: Level = Level.SELLER

    @model_validator(mode="after")
    def _coherent(self) -> ChallengeConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if not self.modes:
            raise ValueError("modes: give individual, team or both")
        rules = self.scoring
        if not (rules.points_per_unit or rules.points_per_euro or rules.families):
            raise ValueError("scoring: give points_per_unit, points_per_euro or families")
        return self


class EventConfig(Section):
    """An event with RSVP by text (docs/events.md): its invitation, the reminders to those
    who said yes, the last call to those who did not answer."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    audience: str  # who is invited
    start: datetime  # in [engine] timezone
    place: str
    capacity: int = Field(gt=0)  # seats; a yes beyond them goes on the waiting list
    invite_at: datetime  # when the invitation goes out
    # "GALA": the answers "GALA OUI", "GALA NON 2"... (plain OUI/NON work anyway).
    reply_keyword: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,20}$")
    max_seats: int = Field(default=4, gt=0)  # per answer ("OUI 2": two seats)
    urgency: Urgency = Urgency.URGENT  # of the invitation and the last call
    remind_days_before: tuple[int, ...] = (1,)  # at 10:00, to the confirmed yes
    last_call_days_before: int | None = Field(default=3, gt=0)  # at 10:00, no answer
    level: Level = Level.SELLER

    @model_validator(mode="after")
    def _ordered(self) -> EventConfig:
        if self.invite_at >= self.start:
            raise ValueError("invite_at must be before start")
        if any(days <= 0 for days in self.remind_days_before):
            raise ValueError("remind_days_before: give whole days above 0")
        return self


class TeamMember(Section):
    """Someone of the team: ``netanim preview --send-to-me NAME`` sends them a test of a
    message (never counted in reports, caps or the outbox)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    email: str | None = Field(default=None, pattern=r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
    mobile: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")  # E.164


class ImportMapping(Section):
    """How ``import network`` reads a file whose columns are not the network CSV's; the
    same keys as a ``--map`` file. Only the shape is checked here: the field names are
    checked against the network columns, and the source columns against the file's
    header, at import (network/column_mapping.py)."""

    columns: dict[str, str] = Field(default_factory=dict)  # source column -> field
    constants: dict[str, str] = Field(default_factory=dict)  # field -> value on every row
    values: dict[str, dict[str, str]] = Field(default_factory=dict)  # field -> {source: value}
    ignore: tuple[str, ...] = ()  # source columns left out


class ImportSettings(Section):
    mapping: ImportMapping | None = None


# What a [[webhooks]] entry may subscribe to (network_anim/webhooks/sources.py produces
# them, docs/webhooks.md describes each): exact types, "<family>.*" or "*".
WEBHOOK_EVENT_TYPES: frozenset[str] = frozenset(
    [f"delivery.{t}" for t in ("sent", "deferred", "failed", "unknown", "opted_out", "dead",
                               "provider_queued", "provider_sending", "provider_sent",
                               "delivered", "cancelled", "provider_status", "bounced",
                               "soft_bounced", "complained")]
    + [f"engagement.{t}" for t in ("opened", "clicked", "read")]
    + [f"contact.{t}" for t in ("unsubscribed", "resubscribed", "consented", "replied",
                                "sms_help", "complained")]
    + ["challenge.registered", "sale.declared", "sale.approved", "sale.rejected",
       "sale.withdrawn", "points.redeemed", "rsvp.answered", "rsvp.promoted", "rsvp.attended",
       "webhook.ping"]
)  # fmt: skip
# Event types the code may add later arrive as "event.<type>" (docs/webhooks.md).
WEBHOOK_FAMILIES = frozenset(t.partition(".")[0] for t in WEBHOOK_EVENT_TYPES) | {"event"}


class WebhookSubscriber(Section):
    """Someone told of what happens, by signed HTTP POSTs (docs/webhooks.md)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    url: str = Field(pattern=r"^https?://[^\s/]+")
    events: tuple[str, ...] = Field(default=("*",), min_length=1)
    # The variable holding the signing secret, "whsec_" + base64 (never the secret itself).
    secret_env: EnvVarName
    max_attempts: int = Field(default=8, gt=0, le=50)  # then the row is dead
    timeout: float = Field(default=10.0, gt=0, le=120)  # seconds per POST

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [
            e
            for e in events
            if e != "*"
            and e not in WEBHOOK_EVENT_TYPES
            and not (e.endswith(".*") and e[:-2] in WEBHOOK_FAMILIES)
        ]
        if unknown:
            raise ValueError(
                f"unknown event type(s) {', '.join(unknown)}: give '*', a family "
                f"({', '.join(sorted(f + '.*' for f in WEBHOOK_FAMILIES))}) or a type of "
                "docs/webhooks.md"
            )
        return events

    def wants(self, event_type: str) -> bool:
        family = event_type.partition(".")[0]
        return any(e in ("*", event_type, f"{family}.*") for e in self.events)


class Config(Section):
    engine: EngineSettings = EngineSettings()
    daemon: DaemonSettings = DaemonSettings()
    channels: ChannelsSettings = ChannelsSettings()
    routing: RoutingSettings = RoutingSettings()
    audiences: tuple[Audience, ...] = ()
    campaigns: tuple[Campaign, ...] = ()
    products: tuple[Product, ...] = ()
    rewards: tuple[RewardItem, ...] = ()
    challenges: tuple[ChallengeConfig, ...] = ()
    events: tuple[EventConfig, ...] = ()
    reports: ReportSettings = ReportSettings()
    bounces: BounceSettings = BounceSettings()
    imports: ImportSettings = Field(default=ImportSettings(), alias="import")
    team: tuple[TeamMember, ...] = ()
    webhooks: tuple[WebhookSubscriber, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Config:
        names = [a.name for a in self.audiences]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"audiences: duplicate name(s) {', '.join(dupes)}")
        for section, keys in (
            ("campaigns", [c.id for c in self.campaigns]),
            ("challenges", [c.id for c in self.challenges]),
            ("events", [e.id for e in self.events]),
            ("products", [p.sku for p in self.products]),
            ("rewards", [r.key for r in self.rewards]),
            ("team", [m.name for m in self.team]),
            ("webhooks", [w.name for w in self.webhooks]),
        ):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"{section}: duplicate id(s) {', '.join(dupes)}")
        events = {e.id for e in self.events}
        for n, event in enumerate(self.events):
            if event.audience not in names:
                raise ValueError(f"events[{n}].audience: unknown audience {event.audience!r}")
        for n, audience in enumerate(self.audiences):
            if audience.event is not None and audience.event not in events:
                raise ValueError(f"audiences[{n}].event: unknown event {audience.event!r}")
        return self

    def challenge(self, key: str) -> ChallengeConfig:
        for challenge in self.challenges:
            if challenge.id == key:
                return challenge
        known = ", ".join(c.id for c in self.challenges) or "none defined"
        raise UserError(f"unknown challenge {key!r}", [f"challenges in the config: {known}"])

    def event(self, key: str) -> EventConfig:
        for event in self.events:
            if event.id == key:
                return event
        known = ", ".join(e.id for e in self.events) or "none defined"
        raise UserError(f"unknown event {key!r}", [f"events in the config: {known}"])

    def campaign(self, key: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.id == key), None)

    def audience(self, name: str) -> Audience:
        for audience in self.audiences:
            if audience.name == name:
                return audience
        known = ", ".join(a.name for a in self.audiences) or "none defined"
        raise UserError(f"unknown audience {name!r}", [f"audiences in the config: {known}"])


class LoadedConfig(BaseModel):
    """A validated config plus where it came from, with paths made absolute."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    config: Config
    path: Path | None
    base_dir: Path

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def engine(self) -> EngineSettings:
        return self.config.engine


def secret_from_env(name: str | None, *, purpose: str) -> str:
    """Read a secret named by the config; a missing one is a user error naming the variable."""
    if not name:
        raise UserError(f"{purpose}: no environment variable configured")
    value = os.environ.get(name)
    if not value:
        raise UserError(f"{purpose}: environment variable {name} is not set")
    return value


__all__ = ["CHANNEL_NAMES", "Config", "LoadedConfig"]
