"""The channel router: every profile rule on the real policy (defaults of ``Config`` plus the
channel definitions of ``channels/``), then properties over every kind of contact."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from network_anim.config.channel_defs import load_channel_definitions, with_trait
from network_anim.config.settings import Config, QuietHours, UrgencyPolicy
from network_anim.domain import (
    CHANNEL_NAMES,
    URGENT_LEVELS,
    EmailKind,
    LawfulBasis,
    MessageKind,
    Urgency,
)
from network_anim.routing.router import (
    ContactProfile,
    MessageSpec,
    Routing,
    RoutingPolicy,
    route,
)

REPO = Path(__file__).resolve().parent.parent
DEFINITIONS = load_channel_definitions(REPO / "channels")
PORTAL_CHANNELS = with_trait(DEFINITIONS, "portal")
# Channels the router may defer: the SMS legal window and quiet hours (WhatsApp keeps them).
TIMED_CHANNELS = {n for n, d in DEFINITIONS.items() if d.send_window or d.traits.pocket}
ROUTING = Config().routing

# A Wednesday, 11:00 in Paris: inside every legal send window, outside quiet hours.
WEDNESDAY_MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PARIS = "Europe/Paris"
GUADELOUPE = "America/Guadeloupe"  # UTC-4 all year
REUNION = "Indian/Reunion"  # UTC+4 all year

MARKETING = MessageKind.MARKETING
OPERATIONAL = MessageKind.OPERATIONAL


def make_policy(
    overrides: dict[Urgency, UrgencyPolicy] | None = None,
    quiet_hours: QuietHours | str | None = "default",
) -> RoutingPolicy:
    """The policy exactly as the app builds it, with optional urgency overrides."""
    return RoutingPolicy(
        urgencies={**ROUTING.urgencies, **(overrides or {})},
        definitions=DEFINITIONS,
        frequency_caps=ROUTING.frequency_caps,
        quiet_hours=ROUTING.quiet_hours if quiet_hours == "default" else quiet_hours,
    )


POLICY = make_policy()
ALL_CONSENT = dict.fromkeys(CHANNEL_NAMES, LawfulBasis.CONSENT)


def contact(**overrides: object) -> ContactProfile:
    """A fully equipped contact with consent on every channel, unless overridden."""
    fields: dict[str, object] = {
        "contact_id": 1,
        "email_kind": EmailKind.PERSONAL,
        "has_mobile": True,
        "has_postal_address": True,
        "web_access": True,
        "timezone": PARIS,
        "bases": ALL_CONSENT,
        "recent_counts": {},
    }
    fields.update(overrides)
    return ContactProfile(**fields)  # type: ignore[arg-type]


def bases(**changes: LawfulBasis | None) -> dict[str, LawfulBasis]:
    """Consent everywhere, with some channels changed (None: no basis recorded)."""
    result = dict(ALL_CONSENT)
    for channel, basis in changes.items():
        if basis is None:
            result.pop(channel)
        else:
            result[channel] = basis
    return result


def run(
    urgency: Urgency,
    profile: ContactProfile | None = None,
    *,
    kind: MessageKind = MARKETING,
    now: datetime = WEDNESDAY_MORNING,
    policy: RoutingPolicy = POLICY,
) -> Routing:
    return route(MessageSpec(urgency, kind), profile or contact(), policy, now)


def chosen(routing: Routing) -> tuple[str, ...]:
    return tuple(c.channel for c in routing.choices)


def choice(routing: Routing, channel: str):  # type: ignore[no-untyped-def]
    matches = [c for c in routing.choices if c.channel == channel]
    assert len(matches) == 1, routing
    return matches[0]


def excluded(routing: Routing) -> dict[str, str]:
    return dict(routing.excluded)


def paris(*args: int) -> datetime:
    """A Paris wall-clock time, as the UTC instant the router receives."""
    return datetime(*args, tzinfo=ZoneInfo(PARIS)).astimezone(UTC)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- 1. the default policy per urgency -------------------------------------------------------


@pytest.mark.parametrize(
    ("urgency", "sends", "channels", "words"),
    [
        (Urgency.FLASH, ("flash", "sms"), ("flash", "sms", "email"), ("flash post", "SMS")),
        (Urgency.URGENT, ("sms",), ("sms", "email"), ("SMS",)),
        (Urgency.REMINDER, ("email",), ("email", "sms", "print"), ("email",)),
        (Urgency.IMPORTANT, ("print",), ("print", "email"), ("print letter",)),
        (
            Urgency.INFO,
            ("intranet", "email"),
            ("intranet", "email", "print"),
            ("portal post", "email"),
        ),
    ],
)
def test_default_policy_for_a_fully_equipped_contact(
    urgency: Urgency, sends: tuple[str, ...], channels: tuple[str, ...], words: tuple[str, ...]
) -> None:
    routing = run(urgency)

    assert chosen(routing) == sends
    assert routing.channels == channels
    assert routing.unreachable is None
    assert routing.excluded == ()
    for c, word in zip(routing.choices, words, strict=True):
        assert c.reason.startswith(f"{urgency}: ")
        assert word in c.reason
        assert c.not_before is None
        # Portal posts never fail over; the other sends carry the urgency's fallbacks.
        expected_fallback = () if c.channel in PORTAL_CHANNELS else channels[len(sends) :]
        assert c.fallback == expected_fallback
    assert routing.explain() == "; ".join(f"{c.channel} ({c.reason})" for c in routing.choices)


# --- 2. shared mailbox or no email -----------------------------------------------------------


@pytest.mark.parametrize(
    ("email_kind", "why"),
    [(EmailKind.SHARED, "shared mailbox"), (EmailKind.NONE, "no email address")],
)
def test_reminder_without_usable_email_goes_to_print(email_kind: EmailKind, why: str) -> None:
    routing = run(Urgency.REMINDER, contact(email_kind=email_kind))

    assert chosen(routing) == ("print",)
    letter = choice(routing, "print")
    assert f"email impossible ({why}" in letter.reason
    assert "not urgent, so print instead" in letter.reason
    assert letter.fallback == ("sms",)
    assert why in excluded(routing)["email"]


@pytest.mark.parametrize("email_kind", [EmailKind.SHARED, EmailKind.NONE])
def test_info_without_usable_email_posts_and_prints(email_kind: EmailKind) -> None:
    routing = run(Urgency.INFO, contact(email_kind=email_kind))

    assert chosen(routing) == ("intranet", "print")
    assert "not urgent, so print instead" in choice(routing, "print").reason
    assert "email" not in routing.channels


@pytest.mark.parametrize("urgency", sorted(URGENT_LEVELS))
@pytest.mark.parametrize(
    ("email_kind", "why"),
    [(EmailKind.SHARED, "shared mailbox"), (EmailKind.NONE, "no email address")],
)
def test_urgent_email_without_usable_mailbox_goes_to_sms(
    urgency: Urgency, email_kind: EmailKind, why: str
) -> None:
    # The default policy never sends urgent messages by email: an override that does.
    policy = make_policy({urgency: UrgencyPolicy(send=("email",), fallback=("print",))})
    routing = run(urgency, contact(email_kind=email_kind), policy=policy)

    assert chosen(routing) == ("sms",)
    sms = choice(routing, "sms")
    assert f"email impossible ({why}" in sms.reason
    assert "urgent, so SMS instead" in sms.reason
    assert sms.fallback == ("print",)


def test_no_stand_in_when_the_stand_in_is_impossible_either() -> None:
    # Shared mailbox and no postal address: print cannot stand in, the policy's
    # fallback (SMS) is used instead.
    routing = run(Urgency.REMINDER, contact(email_kind=EmailKind.SHARED, has_postal_address=False))

    assert chosen(routing) == ("sms",)
    reason = choice(routing, "sms").reason
    assert "fallback to sms" in reason
    assert "email: shared mailbox" in reason


def test_opted_out_email_is_not_replaced_by_the_stand_in() -> None:
    # The stand-in is for a mailbox that loses relevance, not for a refusal.
    routing = run(Urgency.INFO, contact(bases=bases(email=LawfulBasis.OPTED_OUT)))

    assert chosen(routing) == ("intranet",)
    assert "print" not in routing.channels
    assert "opted out of email" in excluded(routing)["email"]


def test_shared_email_is_never_offered_as_a_fallback() -> None:
    routing = run(Urgency.URGENT, contact(email_kind=EmailKind.SHARED))

    assert chosen(routing) == ("sms",)
    assert choice(routing, "sms").fallback == ()
    assert routing.channels == ("sms",)
    # NB: fallbacks dropped after a send was chosen are not listed in ``excluded``.


# --- 3. no web access ------------------------------------------------------------------------


def test_info_without_web_access_is_email_only() -> None:
    routing = run(Urgency.INFO, contact(web_access=False))

    assert chosen(routing) == ("email",)
    assert "info: email" in choice(routing, "email").reason
    assert excluded(routing)["intranet"] == "no web access"
    assert choice(routing, "email").fallback == ("print",)


def test_flash_without_web_access_is_sms_only() -> None:
    routing = run(Urgency.FLASH, contact(web_access=False))

    assert chosen(routing) == ("sms",)
    assert choice(routing, "sms").fallback == ("email",)
    assert excluded(routing)["flash"] == "no web access"


def test_flash_without_web_access_nor_mobile_falls_back_to_email() -> None:
    routing = run(Urgency.FLASH, contact(web_access=False, has_mobile=False))

    assert chosen(routing) == ("email",)
    reason = choice(routing, "email").reason
    assert "fallback to email" in reason
    assert "flash: no web access" in reason
    assert "sms: no mobile number" in reason


def test_no_web_access_never_leaves_info_portal_only() -> None:
    # No usable email: print stands in, the portal post is gone.
    routing = run(Urgency.INFO, contact(web_access=False, email_kind=EmailKind.SHARED))

    assert chosen(routing) == ("print",)
    assert not PORTAL_CHANNELS & set(routing.channels)


@pytest.mark.parametrize("urgency", list(Urgency))
def test_portal_fallback_is_not_offered_without_web_access(urgency: Urgency) -> None:
    policy = make_policy({urgency: UrgencyPolicy(send=("sms",), fallback=("flash", "intranet"))})
    routing = run(urgency, contact(web_access=False), policy=policy)

    assert chosen(routing) == ("sms",)
    assert routing.channels == ("sms",)


# --- 4. opted-out channels -------------------------------------------------------------------


def test_urgent_with_sms_opted_out_falls_back_to_email() -> None:
    routing = run(Urgency.URGENT, contact(bases=bases(sms=LawfulBasis.OPTED_OUT)))

    assert chosen(routing) == ("email",)
    reason = choice(routing, "email").reason
    assert "fallback to email" in reason
    assert "sms: opted out of sms" in reason
    assert excluded(routing)["sms"] == "opted out of sms"


def test_reminder_with_email_opted_out_falls_back_to_sms() -> None:
    routing = run(Urgency.REMINDER, contact(bases=bases(email=LawfulBasis.OPTED_OUT)))

    assert chosen(routing) == ("sms",)
    assert "email: opted out of email" in choice(routing, "sms").reason
    assert choice(routing, "sms").fallback == ("print",)


def test_opted_out_channel_is_dropped_from_fallbacks() -> None:
    routing = run(Urgency.REMINDER, contact(bases=bases(sms=LawfulBasis.OPTED_OUT)))

    assert chosen(routing) == ("email",)
    assert choice(routing, "email").fallback == ("print",)
    assert "sms" not in routing.channels


def test_opt_out_overrides_the_default_basis_of_portal_channels() -> None:
    profile = contact(bases=bases(intranet=LawfulBasis.OPTED_OUT, flash=LawfulBasis.OPTED_OUT))
    info = run(Urgency.INFO, profile)
    flash = run(Urgency.FLASH, profile)

    assert chosen(info) == ("email",)
    assert excluded(info)["intranet"] == "opted out of intranet"
    assert chosen(flash) == ("sms",)
    assert excluded(flash)["flash"] == "opted out of flash"


# --- 5. lawful basis -------------------------------------------------------------------------


def test_email_without_recorded_basis_is_not_used() -> None:
    routing = run(Urgency.REMINDER, contact(bases=bases(email=None)))

    assert chosen(routing) == ("sms",)
    assert "no lawful basis recorded for email" in excluded(routing)["email"]
    assert "no lawful basis" in choice(routing, "sms").reason


@pytest.mark.parametrize("basis", [LawfulBasis.CONSENT, LawfulBasis.LEGITIMATE_INTEREST])
def test_either_sendable_basis_is_enough(basis: LawfulBasis) -> None:
    routing = run(Urgency.REMINDER, contact(bases=dict.fromkeys(CHANNEL_NAMES, basis)))

    assert chosen(routing) == ("email",)


def test_portal_channels_default_to_legitimate_interest() -> None:
    nothing_recorded = contact(bases={})

    info = run(Urgency.INFO, nothing_recorded)
    assert chosen(info) == ("intranet",)
    assert "no lawful basis recorded for email" in excluded(info)["email"]
    assert "print" not in info.channels

    flash = run(Urgency.FLASH, nothing_recorded)
    assert chosen(flash) == ("flash",)
    assert "no lawful basis recorded for sms" in excluded(flash)["sms"]


def test_sms_print_and_email_have_no_default_basis() -> None:
    routing = run(Urgency.IMPORTANT, contact(bases={}, web_access=False))

    assert routing.choices == ()
    assert routing.unreachable is not None
    assert "no lawful basis recorded for print" in routing.unreachable
    assert "no lawful basis recorded for email" in routing.unreachable


# --- 6. legal window of promotional SMS ------------------------------------------------------


def sms_routing(now: datetime, timezone: str = PARIS, kind: MessageKind = MARKETING) -> Routing:
    routing = run(Urgency.URGENT, contact(timezone=timezone), kind=kind, now=now)
    assert chosen(routing) == ("sms",)
    return routing


@pytest.mark.parametrize(
    ("now", "opens", "deferred_to"),
    [
        # Sunday 11:00 -> Monday 08:00.
        (paris(2026, 11, 29, 11, 0), paris(2026, 11, 30, 8, 0), "deferred to Mon 2026-11-30 08:00"),
        # Saturday 20:30 -> Monday 08:00.
        (
            paris(2026, 11, 28, 20, 30),
            paris(2026, 11, 30, 8, 0),
            "deferred to Mon 2026-11-30 08:00",
        ),
        # Saturday 20:00 exactly: the window is closed.
        (paris(2026, 11, 28, 20, 0), paris(2026, 11, 30, 8, 0), "deferred to Mon 2026-11-30 08:00"),
        # A weekday 07:00 -> 08:00 the same day.
        (paris(2026, 11, 25, 7, 0), paris(2026, 11, 25, 8, 0), "deferred to Wed 2026-11-25 08:00"),
        # A weekday 22:00 -> 08:00 the next day.
        (paris(2026, 11, 25, 22, 0), paris(2026, 11, 26, 8, 0), "deferred to Thu 2026-11-26 08:00"),
        # Christmas (a Friday) -> Saturday.
        (paris(2026, 12, 25, 11, 0), paris(2026, 12, 26, 8, 0), "deferred to Sat 2026-12-26 08:00"),
        # Bastille Day (a Tuesday, summer time) -> Wednesday.
        (paris(2026, 7, 14, 12, 0), paris(2026, 7, 15, 8, 0), "deferred to Wed 2026-07-15 08:00"),
        # Saturday evening before Easter Monday: Sunday and the holiday are skipped.
        (paris(2026, 4, 4, 21, 0), paris(2026, 4, 7, 8, 0), "deferred to Tue 2026-04-07 08:00"),
        # Eve of Ascension Day, evening -> the Friday.
        (paris(2026, 5, 13, 20, 15), paris(2026, 5, 15, 8, 0), "deferred to Fri 2026-05-15 08:00"),
    ],
)
def test_marketing_sms_outside_the_window_is_deferred(
    now: datetime, opens: datetime, deferred_to: str
) -> None:
    sms = choice(sms_routing(now), "sms")

    assert sms.not_before == opens
    assert sms.not_before.tzinfo is not None
    assert sms.not_before.utcoffset() == timedelta(0)
    assert "outside the legal sms window" in sms.reason
    assert f"{deferred_to} {PARIS}" in sms.reason


def test_deferral_reason_shows_the_local_time_of_now() -> None:
    sms = choice(sms_routing(paris(2026, 11, 29, 11, 0)), "sms")

    assert "(Sun 2026-11-29 11:00 Europe/Paris)" in sms.reason
    assert sms.not_before == utc(2026, 11, 30, 7, 0)


@pytest.mark.parametrize(
    "now",
    [
        paris(2026, 11, 25, 8, 0),  # opening minute
        paris(2026, 11, 25, 19, 59),  # last minute
        paris(2026, 11, 28, 12, 0),  # Saturdays are open
        paris(2026, 7, 15, 9, 0),  # the day after Bastille Day
    ],
)
def test_marketing_sms_inside_the_window_goes_now(now: datetime) -> None:
    sms = choice(sms_routing(now), "sms")

    assert sms.not_before is None
    assert "window" not in sms.reason


def test_overseas_holiday_defers_in_guadeloupe_while_paris_is_open() -> None:
    # Wednesday 27 May 2026, 14:00 UTC: abolition of slavery in Guadeloupe (10:00 local);
    # 16:00 in Paris, an ordinary working day.
    now = utc(2026, 5, 27, 14, 0)

    guadeloupe = choice(sms_routing(now, GUADELOUPE), "sms")
    assert guadeloupe.not_before == utc(2026, 5, 28, 12, 0)  # Thursday 08:00 local
    assert "outside the legal sms window" in guadeloupe.reason
    assert f"deferred to Thu 2026-05-28 08:00 {GUADELOUPE}" in guadeloupe.reason

    assert choice(sms_routing(now, PARIS), "sms").not_before is None


def test_overseas_holiday_in_reunion_on_a_saturday() -> None:
    # Saturday 20 December 2025, 14:00 in Réunion: abolition of slavery there; Monday next.
    now = utc(2025, 12, 20, 10, 0)

    reunion = choice(sms_routing(now, REUNION), "sms")
    assert reunion.not_before == utc(2025, 12, 22, 4, 0)
    assert f"deferred to Mon 2025-12-22 08:00 {REUNION}" in reunion.reason

    assert choice(sms_routing(now, PARIS), "sms").not_before is None


def test_window_follows_the_contact_time_zone() -> None:
    # Wednesday 13:00 UTC: 09:00 in Guadeloupe, 14:00 in Paris; both open.
    assert choice(sms_routing(utc(2026, 11, 25, 13, 0), GUADELOUPE), "sms").not_before is None
    assert choice(sms_routing(utc(2026, 11, 25, 13, 0), PARIS), "sms").not_before is None

    # Wednesday 11:00 UTC: 07:00 in Guadeloupe (closed until 12:00 UTC), noon in Paris.
    early = choice(sms_routing(utc(2026, 11, 25, 11, 0), GUADELOUPE), "sms")
    assert early.not_before == utc(2026, 11, 25, 12, 0)
    assert choice(sms_routing(utc(2026, 11, 25, 11, 0), PARIS), "sms").not_before is None

    # Wednesday 19:30 UTC: 20:30 in Paris (closed until Thursday 07:00 UTC), 15:30 in Guadeloupe.
    late = choice(sms_routing(utc(2026, 11, 25, 19, 30), PARIS), "sms")
    assert late.not_before == utc(2026, 11, 26, 7, 0)
    assert choice(sms_routing(utc(2026, 11, 25, 19, 30), GUADELOUPE), "sms").not_before is None


@pytest.mark.parametrize(
    "now",
    [
        paris(2026, 11, 29, 11, 0),  # Sunday
        paris(2026, 12, 25, 11, 0),  # Christmas
        paris(2026, 11, 25, 20, 30),  # weekday evening, before quiet hours
    ],
)
def test_operational_sms_ignores_the_legal_window(now: datetime) -> None:
    for urgency in (Urgency.URGENT, Urgency.FLASH):
        routing = run(urgency, contact(), kind=OPERATIONAL, now=now)
        sms = choice(routing, "sms")
        assert sms.not_before is None
        assert "window" not in sms.reason


def test_flash_marketing_sms_is_deferred_but_the_flash_post_is_not() -> None:
    routing = run(Urgency.FLASH, contact(), now=paris(2026, 11, 29, 11, 0))

    assert chosen(routing) == ("flash", "sms")
    assert choice(routing, "flash").not_before is None
    assert choice(routing, "sms").not_before == paris(2026, 11, 30, 8, 0)


def test_the_window_applies_to_sms_chosen_as_fallback() -> None:
    routing = run(
        Urgency.REMINDER,
        contact(bases=bases(email=LawfulBasis.OPTED_OUT)),
        now=paris(2026, 11, 29, 11, 0),
    )

    sms = choice(routing, "sms")
    assert "fallback to sms" in sms.reason
    assert "outside the legal sms window" in sms.reason
    assert sms.not_before == paris(2026, 11, 30, 8, 0)


def test_email_and_print_have_no_legal_window() -> None:
    sunday_night = paris(2026, 11, 29, 23, 30)
    assert choice(run(Urgency.REMINDER, now=sunday_night), "email").not_before is None
    assert choice(run(Urgency.IMPORTANT, now=sunday_night), "print").not_before is None


# --- 7. quiet hours --------------------------------------------------------------------------

# A reminder to a contact with a shared mailbox and no postal address: print cannot stand in
# for the email, so the reminder's own fallback, SMS, carries it.
SHARED_NO_POST = contact(email_kind=EmailKind.SHARED, has_postal_address=False)


def test_operational_reminder_sms_at_night_waits_for_the_morning() -> None:
    routing = run(
        Urgency.REMINDER, SHARED_NO_POST, kind=OPERATIONAL, now=paris(2026, 11, 25, 22, 0)
    )

    assert chosen(routing) == ("sms",)
    sms = choice(routing, "sms")
    assert "fallback to sms" in sms.reason
    assert "quiet hours" in sms.reason
    assert f"deferred to Thu 2026-11-26 08:00 {PARIS}" in sms.reason
    assert sms.not_before == paris(2026, 11, 26, 8, 0)


def test_policy_override_sending_reminders_by_sms_respects_quiet_hours() -> None:
    policy = make_policy({Urgency.REMINDER: UrgencyPolicy(send=("sms",), fallback=("email",))})
    routing = run(Urgency.REMINDER, kind=OPERATIONAL, now=paris(2026, 11, 25, 22, 0), policy=policy)

    sms = choice(routing, "sms")
    assert sms.reason.startswith("reminder: SMS")
    assert "quiet hours: deferred to Thu 2026-11-26 08:00" in sms.reason
    assert sms.not_before == paris(2026, 11, 26, 8, 0)
    assert sms.fallback == ("email",)


@pytest.mark.parametrize(
    ("now", "ends"),
    [
        (paris(2026, 11, 25, 21, 0), paris(2026, 11, 26, 8, 0)),  # quiet hours start
        (paris(2026, 11, 26, 3, 0), paris(2026, 11, 26, 8, 0)),  # after midnight: same day
        (paris(2026, 11, 26, 7, 59), paris(2026, 11, 26, 8, 0)),
        (paris(2026, 11, 25, 20, 59), None),
        (paris(2026, 11, 26, 8, 0), None),
        # Operational: Sundays and holidays are fine outside quiet hours.
        (paris(2026, 12, 25, 12, 0), None),
    ],
)
def test_quiet_hours_boundaries(now: datetime, ends: datetime | None) -> None:
    routing = run(Urgency.REMINDER, SHARED_NO_POST, kind=OPERATIONAL, now=now)

    sms = choice(routing, "sms")
    assert sms.not_before == ends
    assert ("quiet hours" in sms.reason) == (ends is not None)


@pytest.mark.parametrize("urgency", sorted(URGENT_LEVELS))
def test_urgent_operational_sms_ignores_quiet_hours(urgency: Urgency) -> None:
    routing = run(urgency, contact(), kind=OPERATIONAL, now=paris(2026, 11, 25, 22, 0))

    sms = choice(routing, "sms")
    assert sms.not_before is None
    assert "quiet hours" not in sms.reason


def test_quiet_hours_follow_the_contact_time_zone() -> None:
    # 01:00 UTC: 02:00 in Paris (quiet), 21:00 the evening before in Guadeloupe (quiet),
    # 05:00 in Réunion (quiet until 08:00 local = 04:00 UTC).
    now = utc(2026, 11, 26, 1, 0)
    for timezone, ends in [
        (PARIS, utc(2026, 11, 26, 7, 0)),
        (GUADELOUPE, utc(2026, 11, 26, 12, 0)),
        (REUNION, utc(2026, 11, 26, 4, 0)),
    ]:
        profile = contact(email_kind=EmailKind.SHARED, has_postal_address=False, timezone=timezone)
        sms = choice(run(Urgency.REMINDER, profile, kind=OPERATIONAL, now=now), "sms")
        assert sms.not_before == ends, timezone


def test_without_quiet_hours_operational_sms_goes_at_night() -> None:
    policy = make_policy(quiet_hours=None)
    routing = run(
        Urgency.REMINDER,
        SHARED_NO_POST,
        kind=OPERATIONAL,
        now=paris(2026, 11, 25, 23, 0),
        policy=policy,
    )

    assert choice(routing, "sms").not_before is None


def test_custom_quiet_hours_within_the_day() -> None:
    policy = make_policy(quiet_hours=QuietHours(start=time(12, 0), end=time(14, 0)))
    routing = run(
        Urgency.REMINDER,
        SHARED_NO_POST,
        kind=OPERATIONAL,
        now=paris(2026, 11, 25, 12, 30),
        policy=policy,
    )

    assert choice(routing, "sms").not_before == paris(2026, 11, 25, 14, 0)


def test_marketing_sms_at_night_is_deferred_by_the_legal_window_not_quiet_hours() -> None:
    routing = run(Urgency.REMINDER, SHARED_NO_POST, kind=MARKETING, now=paris(2026, 11, 25, 22, 0))

    sms = choice(routing, "sms")
    assert "outside the legal sms window" in sms.reason
    assert "quiet hours" not in sms.reason
    assert sms.not_before == paris(2026, 11, 26, 8, 0)


def test_quiet_hours_do_not_apply_to_email_or_print() -> None:
    night = paris(2026, 11, 25, 23, 0)
    assert choice(run(Urgency.REMINDER, kind=OPERATIONAL, now=night), "email").not_before is None
    assert choice(run(Urgency.IMPORTANT, kind=OPERATIONAL, now=night), "print").not_before is None


# --- 8. frequency caps -----------------------------------------------------------------------


def test_capped_marketing_email_leaves_info_on_the_intranet_only() -> None:
    routing = run(Urgency.INFO, contact(recent_counts={"email": 3}))

    assert chosen(routing) == ("intranet",)
    assert routing.channels == ("intranet",)  # no print substitution
    why = excluded(routing)["email"]
    assert "frequency cap" in why
    assert "3 email in 7 days (max 3)" in why


def test_email_below_its_cap_is_used() -> None:
    routing = run(Urgency.INFO, contact(recent_counts={"email": 2}))

    assert chosen(routing) == ("intranet", "email")


def test_operational_messages_are_never_capped() -> None:
    counts = {"email": 3, "sms": 5, "print": 5}
    for urgency, expected in [
        (Urgency.INFO, ("intranet", "email")),
        (Urgency.URGENT, ("sms",)),
        (Urgency.IMPORTANT, ("print",)),
    ]:
        routing = run(urgency, contact(recent_counts=counts), kind=OPERATIONAL)
        assert chosen(routing) == expected
        assert all("frequency cap" not in why for _, why in routing.excluded)


def test_capped_marketing_message_does_not_move_to_another_channel() -> None:
    # A cap protects the contact from marketing pressure: moving the message to a more
    # intrusive channel would defeat it, so the message does not go this time.
    routing = run(Urgency.URGENT, contact(recent_counts={"sms": 2}))

    assert chosen(routing) == ()
    assert routing.unreachable is not None
    assert "frequency cap reached: 2 sms in 7 days (max 2)" in routing.unreachable


def test_capped_print_is_neither_sent_nor_a_stand_in() -> None:
    capped = {"print": 2}
    important = run(Urgency.IMPORTANT, contact(recent_counts=capped))
    assert chosen(important) == ()
    assert "frequency cap reached: 2 print in 30 days (max 2)" in (important.unreachable or "")

    info = run(Urgency.INFO, contact(email_kind=EmailKind.SHARED, recent_counts=capped))
    assert chosen(info) == ("intranet",)


def test_excluded_lists_refused_fallbacks_too() -> None:
    routing = run(Urgency.URGENT, contact(email_kind=EmailKind.SHARED))

    assert chosen(routing) == ("sms",)
    assert "shared mailbox" in excluded(routing)["email"]


def test_quiet_hours_still_hold_after_a_legal_window_deferral() -> None:
    late_quiet = RoutingPolicy(
        urgencies={**ROUTING.urgencies, Urgency.REMINDER: UrgencyPolicy(send=("sms",))},
        definitions=DEFINITIONS,
        frequency_caps=ROUTING.frequency_caps,
        quiet_hours=QuietHours(start=time(21, 0), end=time(9, 0)),
    )
    sunday_11_paris = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    routing = route(MessageSpec(Urgency.REMINDER), contact(), late_quiet, sunday_11_paris)
    monday_9_paris = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert choice(routing, "sms").not_before == monday_9_paris
    assert "outside the legal sms window" in choice(routing, "sms").reason
    assert "quiet hours" in choice(routing, "sms").reason


def test_holidays_follow_the_company_country() -> None:
    belgian_national_day = datetime(2026, 7, 21, 10, 0, tzinfo=UTC)  # a Tuesday
    belgian = contact(timezone="Europe/Brussels", country="BE")
    routing = route(MessageSpec(Urgency.URGENT), belgian, POLICY, belgian_national_day)
    assert choice(routing, "sms").not_before is not None
    bastille_day = datetime(2026, 7, 14, 10, 0, tzinfo=UTC)
    assert (
        choice(route(MessageSpec(Urgency.URGENT), belgian, POLICY, bastille_day), "sms").not_before
        is None
    )


def test_capped_channel_is_not_offered_as_fallback() -> None:
    routing = run(Urgency.REMINDER, contact(recent_counts={"sms": 2}))

    assert chosen(routing) == ("email",)
    assert choice(routing, "email").fallback == ("print",)


def test_portal_channels_have_no_cap() -> None:
    routing = run(Urgency.FLASH, contact(recent_counts={"flash": 50, "intranet": 50}))

    assert "flash" in chosen(routing)


# --- 9. unreachable --------------------------------------------------------------------------

NOTHING = contact(
    email_kind=EmailKind.NONE, has_mobile=False, has_postal_address=False, web_access=False
)


@pytest.mark.parametrize(
    ("urgency", "reasons"),
    [
        (
            Urgency.FLASH,
            {"flash": "no web access", "sms": "no mobile number", "email": "no email address"},
        ),
        (Urgency.URGENT, {"sms": "no mobile number", "email": "no email address"}),
        (
            Urgency.REMINDER,
            {"email": "no email address", "sms": "no mobile number", "print": "no postal address"},
        ),
        (Urgency.IMPORTANT, {"print": "no postal address", "email": "no email address"}),
        (
            Urgency.INFO,
            {
                "intranet": "no web access",
                "email": "no email address",
                "print": "no postal address",
            },
        ),
    ],
)
def test_contact_with_nothing_usable_is_unreachable(
    urgency: Urgency, reasons: dict[str, str]
) -> None:
    routing = run(urgency, NOTHING)

    assert routing.choices == ()
    assert routing.channels == ()
    assert routing.unreachable is not None
    for channel, why in reasons.items():
        assert f"{channel}: {why}" in routing.unreachable
    assert excluded(routing) == reasons
    assert routing.explain().startswith("unreachable: ")


def test_contact_opted_out_everywhere_is_unreachable() -> None:
    everything_out = contact(bases=dict.fromkeys(CHANNEL_NAMES, LawfulBasis.OPTED_OUT))
    for urgency in Urgency:
        routing = run(urgency, everything_out)
        assert routing.choices == ()
        assert routing.unreachable is not None
        for channel in (*POLICY.urgencies[urgency].send, *POLICY.urgencies[urgency].fallback):
            assert f"{channel}: opted out of {channel}" in routing.unreachable


def test_policy_tables_must_send_somewhere_and_name_each_channel_once() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 1 item"):
        UrgencyPolicy(send=())
    with pytest.raises(ValidationError, match="listed more than once in send \\+ fallback: email"):
        UrgencyPolicy(send=("sms", "email"), fallback=("email",))


# --- 10. policy overrides --------------------------------------------------------------------


def test_policy_override_is_followed() -> None:
    policy = make_policy({Urgency.INFO: UrgencyPolicy(send=("intranet",), fallback=("email",))})

    routing = run(Urgency.INFO, policy=policy)
    assert chosen(routing) == ("intranet",)
    assert choice(routing, "intranet").reason.startswith("info: portal post")

    offline = run(Urgency.INFO, contact(web_access=False), policy=policy)
    assert chosen(offline) == ("email",)
    assert "fallback to email (intranet: no web access)" in choice(offline, "email").reason

    # Other urgencies keep their defaults.
    assert chosen(run(Urgency.FLASH, policy=policy)) == ("flash", "sms")


def test_partial_routing_table_from_the_config_overrides_one_urgency() -> None:
    config = Config.model_validate(
        {"routing": {"urgencies": {"important": {"send": ["print", "email"]}}}}
    )
    policy = RoutingPolicy(
        urgencies=config.routing.urgencies,
        definitions=DEFINITIONS,
        frequency_caps=config.routing.frequency_caps,
        quiet_hours=config.routing.quiet_hours,
    )

    assert chosen(run(Urgency.IMPORTANT, policy=policy)) == ("print", "email")
    assert chosen(run(Urgency.INFO, policy=policy)) == ("intranet", "email")


def test_undefined_channel_in_a_policy_is_refused() -> None:
    policy = RoutingPolicy(
        urgencies={Urgency.URGENT: UrgencyPolicy(send=("sms",), fallback=("email",))},
        definitions={"email": DEFINITIONS["email"]},
    )
    routing = run(Urgency.URGENT, policy=policy)

    assert chosen(routing) == ("email",)
    assert "channel not defined" in excluded(routing)["sms"]


def test_router_is_a_pure_function() -> None:
    profile = contact(email_kind=EmailKind.SHARED, recent_counts={"sms": 1})
    first = run(Urgency.INFO, profile, now=paris(2026, 11, 29, 11, 0))
    second = run(Urgency.INFO, profile, now=paris(2026, 11, 29, 11, 0))

    assert first == second


# --- properties ------------------------------------------------------------------------------

TIMEZONES = [PARIS, GUADELOUPE, REUNION, "Europe/Brussels", "America/Martinique"]
_SUBDIVISIONS = {GUADELOUPE: "GP", REUNION: "RE", "America/Martinique": "MQ"}


def _legal_day(day: date, timezone: str) -> bool:
    if day.weekday() == 6:
        return False
    return day not in holidays.country_holidays(
        "FR", subdiv=_SUBDIVISIONS.get(timezone), years=day.year
    )


def legal_sms_moment(moment: datetime, timezone: str) -> bool:
    """Mon-Sat, 08:00-20:00 local, not a public holiday: the French rule, stated afresh."""
    local = moment.astimezone(ZoneInfo(timezone))
    return _legal_day(local.date(), timezone) and time(8) <= local.time() < time(20)


def next_legal_opening(moment: datetime, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    day = local.date()
    if local.time() >= time(8):
        day += timedelta(days=1)
    while not _legal_day(day, timezone):
        day += timedelta(days=1)
    return datetime.combine(day, time(8), tzinfo=zone).astimezone(UTC)


basis_or_missing = st.one_of(st.none(), st.sampled_from(list(LawfulBasis)))


@st.composite
def profiles(draw: st.DrawFn) -> ContactProfile:
    recorded = {ch: draw(basis_or_missing) for ch in CHANNEL_NAMES}
    return ContactProfile(
        contact_id=draw(st.integers(1, 10_000)),
        email_kind=draw(st.sampled_from(list(EmailKind))),
        has_mobile=draw(st.booleans()),
        has_postal_address=draw(st.booleans()),
        web_access=draw(st.booleans()),
        timezone=draw(st.sampled_from(TIMEZONES)),
        bases={ch: b for ch, b in recorded.items() if b is not None},
        recent_counts={ch: draw(st.integers(0, 5)) for ch in CHANNEL_NAMES},
    )


messages = st.builds(
    MessageSpec, urgency=st.sampled_from(list(Urgency)), kind=st.sampled_from(list(MessageKind))
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31, 23, 59), timezones=st.just(UTC)
)


@st.composite
def urgency_policies(draw: st.DrawFn) -> UrgencyPolicy:
    """Any valid table: at least one channel to send on, each channel listed once."""
    channels = draw(st.permutations(CHANNEL_NAMES))
    n_send = draw(st.integers(1, 4))
    n_fallback = draw(st.integers(0, len(channels) - n_send))
    return UrgencyPolicy(
        send=tuple(channels[:n_send]), fallback=tuple(channels[n_send : n_send + n_fallback])
    )


@st.composite
def policies(draw: st.DrawFn) -> RoutingPolicy:
    """The default policy, or one with an arbitrary table for some urgencies."""
    overrides = draw(
        st.dictionaries(st.sampled_from(list(Urgency)), urgency_policies(), max_size=3)
    )
    return make_policy(overrides)


def check_invariants(
    message: MessageSpec, profile: ContactProfile, now: datetime, routing: Routing
) -> None:
    choices = routing.choices
    names = [c.channel for c in choices]

    # Some choice, or an explanation: never both, never neither.
    assert bool(choices) != bool(routing.unreachable), routing

    # Never an opted-out channel, neither sent nor offered as fallback.
    opted_out = {ch for ch, b in profile.bases.items() if b == LawfulBasis.OPTED_OUT}
    assert not opted_out & set(routing.channels), routing

    # Never a channel without a lawful basis (portal channels have one by default).
    for channel in routing.channels:
        default = DEFINITIONS[channel].default_lawful_basis
        assert profile.bases.get(channel, default) in (
            LawfulBasis.CONSENT,
            LawfulBasis.LEGITIMATE_INTEREST,
        ), routing

    assert len(names) == len(set(names)), routing
    for c in choices:
        assert c.reason.strip(), routing
        assert not set(c.fallback) & set(names), routing
        assert len(c.fallback) == len(set(c.fallback)), routing

    if not profile.web_access:
        assert not PORTAL_CHANNELS & set(routing.channels), routing

    # A shared mailbox or no email: email is never used.
    if profile.email_kind != EmailKind.PERSONAL:
        assert "email" not in routing.channels, routing

    # Marketing caps; operational messages are never capped.
    for channel in routing.channels:
        cap = POLICY.frequency_caps.get(channel)
        if message.kind == MARKETING and cap is not None:
            assert profile.recent_counts.get(channel, 0) < cap.max, routing
    if message.kind == OPERATIONAL:
        assert all("frequency cap" not in why for _, why in routing.excluded), routing

    urgent = message.urgency in URGENT_LEVELS
    for c in choices:
        if c.channel not in TIMED_CHANNELS:
            assert c.not_before is None, routing
            continue
        if c.not_before is not None:
            assert c.not_before > now, routing
            assert "deferred to" in c.reason, routing
        if message.kind == MARKETING:
            if legal_sms_moment(now, profile.timezone):
                assert c.not_before is None, routing
            else:
                assert c.not_before == next_legal_opening(now, profile.timezone), routing
                assert legal_sms_moment(c.not_before, profile.timezone), routing
                assert f"outside the legal {c.channel} window" in c.reason, routing
        else:
            local = now.astimezone(ZoneInfo(profile.timezone)).time()
            quiet = local >= time(21) or local < time(8)
            if urgent or not quiet:
                assert c.not_before is None, routing
            else:
                assert c.not_before is not None, routing
                assert c.not_before.astimezone(ZoneInfo(profile.timezone)).time() == time(8)
                assert c.not_before - now <= timedelta(hours=11), routing
                assert "quiet hours" in c.reason, routing


@settings(max_examples=300, deadline=None)
@given(message=messages, profile=profiles(), now=moments)
def test_default_policy_invariants(
    message: MessageSpec, profile: ContactProfile, now: datetime
) -> None:
    routing = route(message, profile, POLICY, now)
    check_invariants(message, profile, now, routing)

    # With the default table, every urgency keeps at least one non-portal way out.
    sends = POLICY.urgencies[message.urgency].send
    for c in routing.choices:
        assert (
            c.channel in sends
            or c.channel in POLICY.urgencies[message.urgency].fallback
            or ("email" in sends and c.channel in ("sms", "print"))
        ), routing


@settings(max_examples=300, deadline=None)
@given(message=messages, profile=profiles(), now=moments, policy=policies())
def test_overridden_policy_invariants(
    message: MessageSpec, profile: ContactProfile, now: datetime, policy: RoutingPolicy
) -> None:
    routing = route(message, profile, policy, now)
    check_invariants(message, profile, now, routing)

    table = policy.urgencies[message.urgency]
    for c in routing.choices:
        assert (
            c.channel in table.send
            or c.channel in table.fallback
            or ("email" in table.send and c.channel in ("sms", "print"))
        ), routing
        # Fallbacks come from the table, in its order.
        assert [ch for ch in table.fallback if ch in c.fallback] == list(c.fallback), routing
