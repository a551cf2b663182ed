"""The words of the HTML report: French names of channels, segments and stages, and the
order things are listed in (the report is read by channel managers, in French)."""

from __future__ import annotations

from collections.abc import Iterable

from network_anim.network.rfm import SEGMENTS
from network_anim.reports.model import ALL_GROUPS, UNSCORED

CHANNEL_ORDER: tuple[str, ...] = ("email", "sms", "intranet", "flash", "print")
CHANNEL_LABELS: dict[str, str] = {
    "email": "E-mail",
    "sms": "SMS",
    "intranet": "Portail (post)",
    "flash": "Message flash",
    "print": "Courrier",
}

SEGMENT_LABELS: dict[str, str] = {
    "champions": "Champions",
    "loyal": "Fidèles",
    "potential": "Fidèles en devenir",
    "new": "Nouveaux",
    "promising": "Prometteurs",
    "need_attention": "À surveiller",
    "about_to_sleep": "En perte de vitesse",
    "at_risk": "À risque",
    "cant_lose": "À ne pas perdre",
    "hibernating": "En sommeil",
    "lost": "Perdus",
    "inactive": "Sans vente récente",
    UNSCORED: "Non segmentés",
}

GROUPING_LABELS: dict[str, str] = {
    "channel": "canal",
    "segment": "segment RFM",
    "company": "entreprise",
    "role": "fonction",
}

COMPARISON_LABELS: dict[str, str] = {
    "unreached": "cible non touchée",
    "baseline": "période précédente",
    "none": "aucune",
}

# Channels whose messages can be opened (a tracking pixel), carry a link, or are read on
# the portal: a rate is only shown, and only summed, where it can be measured.
OPENABLE = frozenset({"email"})
LINKED = frozenset({"email", "sms"})
READABLE = frozenset({"intranet", "flash"})


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


def segment_label(segment: str) -> str:
    return SEGMENT_LABELS.get(segment, segment)


def group_label(by: str, group: str) -> str:
    if group == ALL_GROUPS:
        return "Tous"
    return segment_label(group) if by == "segment" else group


def ordered_channels(channels: Iterable[str]) -> list[str]:
    """Known channels in the usual order, then any other alphabetically."""
    present = set(channels)
    known = [c for c in CHANNEL_ORDER if c in present]
    return known + sorted(present - set(CHANNEL_ORDER))


def ordered_segments(segments: Iterable[str]) -> list[str]:
    """Best segment first (the RFM order), unscored companies last."""
    present = set(segments)
    rank = {name: i for i, name in enumerate(SEGMENTS)}
    rank[UNSCORED] = len(SEGMENTS) + 1
    return sorted(present, key=lambda s: (rank.get(s, len(SEGMENTS)), s))


__all__ = [
    "CHANNEL_LABELS",
    "LINKED",
    "OPENABLE",
    "READABLE",
    "channel_label",
    "group_label",
    "ordered_channels",
    "ordered_segments",
    "segment_label",
]
