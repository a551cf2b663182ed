"""An audience's ``where`` conditions: ``all``/``any``/``not`` groups of tests on the
contact, its company, RFM segments, challenges, engagement and reachability.

Written in TOML as nested inline tables, one key naming the test::

    where = { all = [
      { field = "company.region", in = ["Bretagne", "Normandie"] },
      { any = [{ event = "opened", within_days = 30 }, { event = "clicked", within_days = 90 }] },
      { not = { reachable = "web" } },
    ] }

Parsed here into plain frozen values (``network.conditions`` compiles them into one SQL
clause); a mistake is reported with its key path below ``where``, as the rest of the
config is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from network_anim.domain import CHANNEL_NAMES, RFM_SEGMENTS, EmailKind, Level

CONTACT_FIELDS = (
    "external_id",
    "civility",
    "first_name",
    "last_name",
    "role",
    "level",
    "email",
    "email_kind",
    "mobile",
    "phone",
    "timezone",
    "language",
)
COMPANY_FIELDS = (
    "external_id",
    "name",
    "sector",
    "size",
    "tier",
    "region",
    "locality",
    "postcode",
    "city",
    "country",
)
FIELDS = tuple(f"contact.{n}" for n in CONTACT_FIELDS) + tuple(
    f"company.{n}" for n in COMPANY_FIELDS
)
# Engagement events as the tracking, the portal, the bounce intake and the SMS webhooks
# record them. Opens and clicks count a person's only (not a scanner's or a prefetch).
EVENTS = ("opened", "clicked", "read", "replied", "bounced", "unsubscribed")
HUMAN_ONLY_EVENTS = frozenset({"opened", "clicked"})
REACHABLE = ("email", "mobile", "web", "postal")
CONSENT_CHANNELS = CHANNEL_NAMES  # a consent row per channel name
# Fields whose values are one of a fixed set: a value outside it can never match.
_CHOICES: dict[str, tuple[str, ...]] = {
    "contact.level": tuple(level.value for level in Level),
    "contact.email_kind": tuple(kind.value for kind in EmailKind),
}


class ConditionError(ValueError):
    """A problem at ``path`` below the audience's ``where`` (``all[1].within_days``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Condition


@dataclass(frozen=True, slots=True)
class FieldTest:
    """One of ``values`` (``in``), starting with one of ``prefixes`` (``starts_with``),
    or empty / filled (``empty``): exactly one of the three is set."""

    field: str
    values: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    empty: bool | None = None


@dataclass(frozen=True, slots=True)
class InSegment:
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChallengeTest:
    """Registered or not, and/or the challenge points within bounds."""

    challenge: str
    registered: bool | None = None
    points_at_least: int | None = None
    points_below: int | None = None


@dataclass(frozen=True, slots=True)
class Engaged:
    """At least one ``event`` (within the last ``within_days`` days, on ``channel``)."""

    event: str
    within_days: int | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Reachable:
    channel: str


@dataclass(frozen=True, slots=True)
class OptedOut:
    channel: str


Condition = (
    AllOf | AnyOf | Not | FieldTest | InSegment | ChallengeTest | Engaged | Reachable | OptedOut
)


def parse_condition(data: Any, path: str = "") -> Condition:
    """The condition ``data`` (a TOML table) describes; ConditionError names the key."""
    if not isinstance(data, Mapping):
        raise ConditionError(path, 'write a condition as a table, e.g. { reachable = "web" }')
    kinds = [key for key in _PARSERS if key in data]
    if len(kinds) != 1:
        found = ", ".join(sorted(map(str, data))) or "nothing"
        what = "several tests" if kinds else "no test"
        raise ConditionError(
            path,
            f"{what} in one condition ({found}): give exactly one of "
            f"{', '.join(_PARSERS)} (combine several with all or any)",
        )
    return _PARSERS[kinds[0]](data, path)


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _only(data: Mapping[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise ConditionError(
                _at(path, key), f"unknown key here (this condition takes {', '.join(allowed)})"
            )


def _group(data: Mapping[str, Any], path: str, key: str) -> tuple[Condition, ...]:
    _only(data, path, (key,))
    items = data[key]
    if not isinstance(items, list) or not items:
        raise ConditionError(_at(path, key), "give a non-empty list of conditions")
    where = _at(path, key)
    return tuple(parse_condition(item, _at(where, i)) for i, item in enumerate(items))


def _all(data: Mapping[str, Any], path: str) -> Condition:
    return AllOf(_group(data, path, "all"))


def _any(data: Mapping[str, Any], path: str) -> Condition:
    return AnyOf(_group(data, path, "any"))


def _not(data: Mapping[str, Any], path: str) -> Condition:
    _only(data, path, ("not",))
    return Not(parse_condition(data["not"], _at(path, "not")))


def _strings(data: Mapping[str, Any], path: str, key: str) -> tuple[str, ...]:
    value = data[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConditionError(_at(path, key), "give a text or a non-empty list of texts")
    return tuple(value)


def _one_of(data: Mapping[str, Any], path: str, key: str, allowed: tuple[str, ...]) -> str:
    value = data[key]
    if value not in allowed:
        raise ConditionError(_at(path, key), f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _field(data: Mapping[str, Any], path: str) -> Condition:
    _only(data, path, ("field", "in", "starts_with", "empty"))
    name = _one_of(data, path, "field", FIELDS)
    tests = [key for key in ("in", "starts_with", "empty") if key in data]
    if len(tests) != 1:
        raise ConditionError(path, f"give {name} exactly one of in, starts_with, empty")
    if tests[0] == "empty":
        if not isinstance(data["empty"], bool):
            raise ConditionError(_at(path, "empty"), "write true or false")
        return FieldTest(name, empty=data["empty"])
    values = _strings(data, path, tests[0])
    choices = _CHOICES.get(name)
    if tests[0] == "in" and choices is not None:
        for i, value in enumerate(values):
            if value not in choices:
                raise ConditionError(
                    _at(_at(path, "in"), i), f"{value!r} is not one of {', '.join(choices)}"
                )
    if tests[0] == "in":
        return FieldTest(name, values=values)
    return FieldTest(name, prefixes=values)


def _segment(data: Mapping[str, Any], path: str) -> Condition:
    _only(data, path, ("segment",))
    segments = _strings(data, path, "segment")
    for i, segment in enumerate(segments):
        if segment not in RFM_SEGMENTS:
            raise ConditionError(
                _at(_at(path, "segment"), i) if len(segments) > 1 else _at(path, "segment"),
                f"unknown RFM segment {segment!r}: use {', '.join(RFM_SEGMENTS)}",
            )
    return InSegment(segments)


def _whole(data: Mapping[str, Any], path: str, key: str, *, least: int) -> int | None:
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConditionError(_at(path, key), f"write a whole number of at least {least}")
    return value


def _challenge(data: Mapping[str, Any], path: str) -> Condition:
    _only(data, path, ("challenge", "registered", "points_at_least", "points_below"))
    key = data["challenge"]
    if not isinstance(key, str) or not key:
        raise ConditionError(_at(path, "challenge"), "write the challenge's id")
    registered = data.get("registered")
    if registered is not None and not isinstance(registered, bool):
        raise ConditionError(_at(path, "registered"), "write true or false")
    at_least = _whole(data, path, "points_at_least", least=-(10**9))
    below = _whole(data, path, "points_below", least=-(10**9))
    if registered is None and at_least is None and below is None:
        raise ConditionError(
            path, "say what to test: registered = true/false, points_at_least, points_below"
        )
    return ChallengeTest(key, registered, at_least, below)


def _engagement(data: Mapping[str, Any], path: str, key: str) -> Engaged:
    _only(data, path, (key, "within_days", "channel"))
    event = _one_of(data, path, key, EVENTS)
    within = _whole(data, path, "within_days", least=1)
    channel = _one_of(data, path, "channel", CHANNEL_NAMES) if "channel" in data else None
    return Engaged(event, within, channel)


def _event(data: Mapping[str, Any], path: str) -> Condition:
    return _engagement(data, path, "event")


def _never(data: Mapping[str, Any], path: str) -> Condition:
    """``{ never = "opened" }``: no such event at all (``within_days``: none in the last
    N days)."""
    return Not(_engagement(data, path, "never"))


def _reachable(data: Mapping[str, Any], path: str) -> Condition:
    _only(data, path, ("reachable",))
    return Reachable(_one_of(data, path, "reachable", REACHABLE))


def _opted_out(data: Mapping[str, Any], path: str) -> Condition:
    _only(data, path, ("opted_out",))
    return OptedOut(_one_of(data, path, "opted_out", CONSENT_CHANNELS))


_PARSERS: dict[str, Callable[[Mapping[str, Any], str], Condition]] = {
    "all": _all,
    "any": _any,
    "not": _not,
    "field": _field,
    "segment": _segment,
    "challenge": _challenge,
    "event": _event,
    "never": _never,
    "reachable": _reachable,
    "opted_out": _opted_out,
}


def describe(condition: Condition) -> str:
    """One line a channel manager reads (explain's output)."""
    match condition:
        case AllOf(parts):
            return f"all of {len(parts)}"
        case AnyOf(parts):
            return f"any of {len(parts)}"
        case Not(part):
            return f"not: {describe(part)}"
        case FieldTest(field, values, prefixes, empty):
            if empty is not None:
                return f"{field} is {'empty' if empty else 'filled'}"
            if prefixes:
                return f"{field} starts with {' or '.join(map(repr, prefixes))}"
            return f"{field} is {' or '.join(map(repr, values))}"
        case InSegment(segments):
            return f"company in RFM segment {' or '.join(segments)}"
        case ChallengeTest(challenge, registered, at_least, below):
            tests = []
            if registered is not None:
                tests.append("registered" if registered else "not registered")
            if at_least is not None:
                tests.append(f"at least {at_least} points")
            if below is not None:
                tests.append(f"fewer than {below} points")
            return f"challenge {challenge}: {', '.join(tests)}"
        case Engaged(event, within, channel):
            where = f" on {channel}" if channel else ""
            when = f" in the last {within} days" if within else " ever"
            return f"{event}{where}{when}"
        case Reachable(channel):
            return f"reachable by {channel}"
        case OptedOut(channel):
            return f"opted out of {channel}"
    raise AssertionError(condition)


def challenges_named(condition: Condition) -> set[str]:
    """The challenge ids the condition tests (the config checks they exist)."""
    match condition:
        case AllOf(parts) | AnyOf(parts):
            return set().union(*(challenges_named(p) for p in parts))
        case Not(part):
            return challenges_named(part)
        case ChallengeTest(challenge):
            return {challenge}
    return set()
