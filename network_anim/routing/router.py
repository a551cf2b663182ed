"""The channel router: a pure function from a message and a contact to channels, with reasons.

Policy (DESIGN.md §1, overridable in ``[routing]``): each urgency names the channels that
each get a delivery (``send``) and the channels tried next if one is impossible or fails
(``fallback``). On top of it, the contact's profile rules:

* a shared mailbox, no email or an address invalid since a hard bounce replaces email
  by SMS when urgent, by print otherwise;
* no web access: portal channels are dropped, so a message is never intranet-only;
* an opted-out channel is never used; a channel with no recorded lawful basis is not used;
  a ``<channel>:marketing`` opt-out (a spam complaint) refuses marketing messages only;
* promotional messages respect the channel's legal send window (deferred, not dropped)
  and the per-contact frequency caps; operational messages ignore caps;
* non-urgent SMS wait for the end of quiet hours.

Nothing here touches the database or the clock: everything comes in as arguments, so
``plan --explain`` and the tests see exactly what the dispatcher will do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from network_anim.config.calendar import describe_local, in_quiet_hours, next_opening
from network_anim.config.channel_defs import ChannelDefinition, email_stand_in
from network_anim.config.settings import FrequencyCap, QuietHours, UrgencyPolicy
from network_anim.domain import (
    SENDABLE_BASES,
    URGENT_LEVELS,
    EmailKind,
    LawfulBasis,
    MessageKind,
    Urgency,
)


@dataclass(frozen=True, slots=True)
class ContactProfile:
    """What the router knows of one contact."""

    contact_id: int
    email_kind: EmailKind
    has_mobile: bool
    has_postal_address: bool
    web_access: bool
    timezone: str
    # Public holidays follow the company's country (ISO alpha-2).
    country: str = "FR"
    # Recorded basis per channel; a channel absent here has none recorded.
    bases: Mapping[str, LawfulBasis] = field(default_factory=dict)
    # Marketing deliveries per channel already in each channel's cap window.
    recent_counts: Mapping[str, int] = field(default_factory=dict)
    # Why the address is not used (a hard bounce: "email invalid since ...: ..."), if so:
    # the contact is routed as having no email.
    email_invalid: str | None = None


@dataclass(frozen=True, slots=True)
class MessageSpec:
    urgency: Urgency
    kind: MessageKind = MessageKind.MARKETING


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    urgencies: Mapping[Urgency, UrgencyPolicy]
    definitions: Mapping[str, ChannelDefinition]
    frequency_caps: Mapping[str, FrequencyCap] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    channel: str
    reason: str
    # Earliest legal time to send; None means now.
    not_before: datetime | None = None
    # Channels to try next, in order, if this one fails permanently.
    fallback: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Routing:
    choices: tuple[ChannelChoice, ...]
    # Channels considered and refused, with why (shown by plan --explain).
    excluded: tuple[tuple[str, str], ...] = ()
    unreachable: str | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel in the order it would be used: sends first, then fallbacks."""
        ordered: list[str] = [c.channel for c in self.choices]
        for choice in self.choices:
            ordered.extend(ch for ch in choice.fallback if ch not in ordered)
        return tuple(ordered)

    def explain(self) -> str:
        if self.unreachable:
            return f"unreachable: {self.unreachable}"
        parts = [f"{c.channel} ({c.reason})" for c in self.choices]
        return "; ".join(parts)


def marketing_channel(channel: str) -> str:
    """The consent row's channel that refuses only marketing messages on ``channel`` (a
    spam complaint opts a contact out of marketing email; operational email still goes)."""
    return f"{channel}:marketing"


def route(
    message: MessageSpec, contact: ContactProfile, policy: RoutingPolicy, now: datetime
) -> Routing:
    urgency_policy = policy.urgencies[message.urgency]
    urgent = message.urgency in URGENT_LEVELS
    refusals: dict[str, str] = {}

    def refusal(channel: str) -> str | None:
        if channel not in refusals:
            refusals[channel] = _why_not(channel, message, contact, policy) or ""
        return refusals[channel] or None

    chosen: list[tuple[str, str]] = []  # (channel, reason)

    def choose(channel: str, reason: str) -> None:
        if channel not in (c for c, _ in chosen):
            chosen.append((channel, reason))

    for channel in urgency_policy.send:
        why = refusal(channel)
        if why is None:
            choose(channel, f"{message.urgency}: {_role(channel, policy)}")
            continue
        substitute, how = _email_stand_in(channel, why, urgent, refusal, policy)
        if substitute is not None:
            choose(substitute, f"{channel} impossible ({why}): {how}")
    capped = any(refusals[ch].startswith("frequency cap") for ch in urgency_policy.send)
    if not chosen and not capped:
        # Nothing of the urgency's own channels reaches this contact: the first fallback
        # that does stands in (no web access never leaves a message portal-only). Not
        # when a cap refused it: moving a capped message to a more intrusive channel
        # would defeat the cap.
        for candidate in urgency_policy.fallback:
            if refusal(candidate) is None:
                refused = "; ".join(f"{ch}: {refusals[ch]}" for ch in urgency_policy.send)
                choose(candidate, f"fallback to {candidate} ({refused})")
                break

    taken = {c for c, _ in chosen}
    usable_fallbacks = [
        ch for ch in urgency_policy.fallback if ch not in taken and refusal(ch) is None
    ]
    excluded = tuple((ch, why) for ch, why in refusals.items() if why)
    if not chosen:
        details = "; ".join(f"{ch}: {why}" for ch, why in excluded) or "no channel configured"
        return Routing(choices=(), excluded=excluded, unreachable=details)
    choices = []
    for channel, reason in chosen:
        portal = policy.definitions[channel].traits.portal
        fallback = () if portal else tuple(usable_fallbacks)
        not_before, timing = _timing(channel, message, contact, policy, now, urgent)
        choices.append(
            ChannelChoice(
                channel=channel,
                reason=f"{reason}; {timing}" if timing else reason,
                not_before=not_before,
                fallback=fallback,
            )
        )
    return Routing(choices=tuple(choices), excluded=excluded)


def _role(channel: str, policy: RoutingPolicy) -> str:
    definition = policy.definitions.get(channel)
    return (definition.traits.role or definition.label) if definition else channel


def _email_stand_in(
    channel: str,
    why: str,
    urgent: bool,
    refusal: Callable[[str], str | None],
    policy: RoutingPolicy,
) -> tuple[str | None, str]:
    """A shared mailbox or no email: the definitions' ``email_stand_in`` channel (SMS
    when urgent, print otherwise)."""
    if channel != "email" or not why.startswith(("shared mailbox", "no email", "email invalid")):
        return None, ""
    preferred = email_stand_in(policy.definitions, urgent=urgent)
    if preferred is None or refusal(preferred) is not None:
        return None, ""
    label = policy.definitions[preferred].label
    return preferred, (
        f"urgent, so {label} instead" if urgent else f"not urgent, so {preferred} instead"
    )


def _why_not(
    channel: str, message: MessageSpec, contact: ContactProfile, policy: RoutingPolicy
) -> str | None:
    """Why ``channel`` cannot carry this message to this contact, or None if it can."""
    definition = policy.definitions.get(channel)
    if definition is None:
        return "channel not defined in channels/"
    for requirement in definition.requires:
        missing = _missing(requirement, contact)
        if missing:
            return missing
    basis = contact.bases.get(channel, definition.default_lawful_basis)
    if basis == LawfulBasis.OPTED_OUT:
        return f"opted out of {channel}"
    if basis not in SENDABLE_BASES:
        return f"no lawful basis recorded for {channel} (consent or legitimate interest)"
    if message.kind == MessageKind.MARKETING:
        if contact.bases.get(marketing_channel(channel)) == LawfulBasis.OPTED_OUT:
            return f"opted out of marketing {channel}"
        cap = policy.frequency_caps.get(channel)
        sent = contact.recent_counts.get(channel, 0)
        if cap is not None and sent >= cap.max:
            return f"frequency cap reached: {sent} {channel} in {cap.per_days} days (max {cap.max})"
    return None


def _missing(requirement: str, contact: ContactProfile) -> str | None:
    if requirement == "email":
        if contact.email_kind == EmailKind.NONE:
            return "no email address"
        if contact.email_invalid:
            return contact.email_invalid
        if contact.email_kind == EmailKind.SHARED:
            return "shared mailbox: email loses relevance"
    elif requirement == "mobile" and not contact.has_mobile:
        return "no mobile number"
    elif requirement == "postal" and not contact.has_postal_address:
        return "no postal address"
    elif requirement == "web" and not contact.web_access:
        return "no web access"
    return None


def _timing(
    channel: str,
    message: MessageSpec,
    contact: ContactProfile,
    policy: RoutingPolicy,
    now: datetime,
    urgent: bool,
) -> tuple[datetime | None, str]:
    """The earliest moment both the legal window and quiet hours allow, and why."""
    window = policy.definitions[channel].send_window
    if window is not None and message.kind not in window.applies_to:
        window = None
    pocket = policy.definitions[channel].traits.pocket
    quiet = policy.quiet_hours if pocket and not urgent else None
    zone = contact.timezone
    moment, reasons = now, []
    # Each constraint can push the time into the other's closed hours: settle both.
    for _ in range(4):
        moved = False
        if window is not None:
            opens = next_opening(window, moment, zone, contact.country)
            if opens is not None:
                if not reasons or "legal" not in reasons[0]:
                    reasons.append(
                        f"outside the legal {channel} window ({describe_local(moment, zone)})"
                    )
                moment, moved = opens, True
        if quiet is not None:
            ends = in_quiet_hours(quiet.start, quiet.end, moment, zone)
            if ends is not None:
                if not any("quiet" in r for r in reasons):
                    reasons.append("quiet hours")
                moment, moved = ends, True
        if not moved:
            break
    if moment == now:
        return None, ""
    return moment, f"{', then '.join(reasons)}: deferred to {describe_local(moment, zone)}"
