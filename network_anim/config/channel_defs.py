"""Channel definitions: the data in the top-level ``channels/<name>.toml`` files.

A definition says what a channel can carry, what it costs, how fast it may go, when it
may legally be used and which urgencies it serves. The router and the cost estimates read
it; deployment settings (transport, host, credentials) live in the config file instead.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from network_anim.config.validation import parse_model
from network_anim.domain import LawfulBasis, MessageKind, Urgency
from network_anim.errors import UserError

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Requirement = Literal["email", "mobile", "postal", "web"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capabilities(Strict):
    max_length: int = Field(gt=0)
    max_segments: int | None = Field(default=None, gt=0)
    links: bool = True
    html: bool = False
    attachments: bool = False
    address_lines: int | None = Field(default=None, gt=0)
    address_line_length: int | None = Field(default=None, gt=0)


class Cost(Strict):
    currency: str = "EUR"
    per_message: float = Field(default=0.0, ge=0)
    per_segment: float = Field(default=0.0, ge=0)


class Rate(Strict):
    per_second: float = Field(gt=0)
    concurrency: int = Field(default=1, gt=0)


class SendWindow(Strict):
    """When a message of the listed kinds may go out, in the recipient's time zone."""

    applies_to: tuple[MessageKind, ...] = (MessageKind.MARKETING,)
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat")
    start: time = time(8, 0)
    end: time = time(20, 0)
    skip_public_holidays: bool = True

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: time, info: object) -> time:
        start = getattr(info, "data", {}).get("start")
        if start is not None and end <= start:
            raise ValueError(
                "end must be later than start (windows across midnight are not supported)"
            )
        return end


class Traits(Strict):
    """What the rest of the product needs to know of a channel, so that no module keeps
    its own list of channel names (routing, reports, portal, sequences)."""

    # A post on the partner portal: it is the message's page, so nothing falls back after it.
    portal: bool = False
    # Lands in the pocket (a phone): quiet hours apply unless the message is urgent.
    pocket: bool = False
    # Reports: opens are measured (a tracking pixel) / reads are recorded on the portal /
    # clicks on its links are tracked.
    open_tracked: bool = False
    read_tracked: bool = False
    click_tracked: bool = False
    # When a sent row counts as delivered: a provider's status callback confirms it
    # ("confirmed"), as soon as sent ("when_sent"), or unless a bounce comes back.
    delivery: Literal["confirmed", "when_sent", "unless_bounced"] = "unless_bounced"
    # Shown on the portal's preferences page, where the contact may opt out of it.
    preference: bool = False
    preference_order: int = 0  # its place on that page (then by name)
    # Counted by a sequence's "unsubscribed" exit: a contact opted out of every channel
    # that has this trait has unsubscribed.
    unsubscribe: bool = False
    # Stands in for an email the contact cannot use (shared mailbox, no address): the
    # channel that does it for urgent messages, and the one for the others.
    email_stand_in: Literal["urgent", "not_urgent"] | None = None
    # The router's reason when it picks this channel ("SMS: immediate, lands in the pocket").
    role: str = ""


class ChannelDefinition(Strict):
    name: str
    label: str
    adapter: str
    serves: tuple[Urgency, ...]
    requires: tuple[Requirement, ...] = ()
    default_lawful_basis: LawfulBasis | None = None
    capabilities: Capabilities
    cost: Cost = Cost()
    rate: Rate
    send_window: SendWindow | None = None
    traits: Traits = Traits()

    def estimate_cost(self, segments: int = 1) -> float:
        return self.cost.per_message + self.cost.per_segment * segments


def with_trait(definitions: Mapping[str, ChannelDefinition], trait: str) -> frozenset[str]:
    """The channels whose definition sets ``trait`` (a boolean field of :class:`Traits`)."""
    if Traits.model_fields.get(trait) is None or Traits.model_fields[trait].annotation is not bool:
        raise ValueError(f"{trait!r} is not a yes/no channel trait")
    return frozenset(name for name, d in definitions.items() if getattr(d.traits, trait))


def email_stand_in(definitions: Mapping[str, ChannelDefinition], *, urgent: bool) -> str | None:
    """The channel standing in for an unusable email (urgent: SMS; otherwise: print)."""
    wanted = "urgent" if urgent else "not_urgent"
    return next(
        (n for n, d in sorted(definitions.items()) if d.traits.email_stand_in == wanted), None
    )


def load_channel_definitions(directory: Path) -> dict[str, ChannelDefinition]:
    """Read every ``*.toml`` in ``directory``; the file stem must match its ``name``."""
    if not directory.is_dir():
        raise UserError(
            f"{directory}: channel definitions folder not found",
            [
                "set [engine] channels_dir to the folder holding email.toml, sms.toml, ...",
                "or remove the key: a project without a channels/ folder uses the channel "
                "definitions that ship with network-anim",
            ],
        )
    definitions: dict[str, ChannelDefinition] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            definition = parse_model(ChannelDefinition, data, source=str(path))
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: {exc}")
            continue
        except UserError as exc:
            problems.extend(f"{path}: {p}" for p in exc.problems)
            continue
        if definition.name != path.stem:
            problems.append(
                f"{path}: name {definition.name!r} must match the file name {path.stem!r}"
            )
            continue
        definitions[definition.name] = definition
    for wanted in ("urgent", "not_urgent"):
        standing = sorted(n for n, d in definitions.items() if d.traits.email_stand_in == wanted)
        if len(standing) > 1:
            problems.append(
                f"traits.email_stand_in = {wanted!r} in {', '.join(standing)}: one channel at most"
            )
    if problems:
        raise UserError(f"{directory}: invalid channel definitions", problems)
    if not definitions:
        raise UserError(f"{directory}: no channel definition (*.toml) found")
    return definitions
