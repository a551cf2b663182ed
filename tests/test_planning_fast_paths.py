"""The planner's fast paths (issue 7) give exactly what the plain code they replace gave."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.postal import _DROPPED_CATEGORIES, _clean
from network_anim.compose.links import LinkSigner, _b64
from network_anim.config.settings import Audience
from network_anim.network.audience import audience_query, iter_audience

BASE = "https://anim.example"
_REFERENCE_HREF = re.compile(r"""\bhref\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)


def _link_ids() -> Callable[[str], int]:
    """A link id per distinct URL, as the links table gives them (1, 2, ...)."""
    ids: dict[str, int] = {}
    return lambda url: ids.setdefault(url, len(ids) + 1)


def _reference_track_html(signer: LinkSigner, body: str, key: str) -> str:
    """``track_html`` as first written: one case-insensitive regular expression."""
    link_id = _link_ids()

    def wrap(match: re.Match[str]) -> str:
        url = html.unescape(match.group(2)).strip()
        own = url == BASE or url.startswith(BASE + "/")
        if own or not url.lower().startswith(("http://", "https://")):
            return match.group(0)
        return f"href={match.group(1)}{signer.click_url(key, link_id(url))}{match.group(1)}"

    tracked = _REFERENCE_HREF.sub(wrap, body)
    pixel = (
        f'<img src="{signer.open_pixel_url(key)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    end = tracked.lower().rfind("</body>")
    return tracked + pixel if end < 0 else tracked[:end] + pixel + tracked[end:]


@pytest.mark.parametrize(
    "body",
    [
        '<a HREF="https://shop.example/a?b=1&amp;c=2">x</a></BODY>',
        "<a hReF = 'http://up.example/'>x</a> <a href=\"https://anim.example/p/1\">p</a>",
        '<a data-xhref="https://no.example/">x</a><a _href="https://no.example/">y</a>',
        '<p>İstanbul</p><a href="https://shop.example/">x</a></body></html>',  # İ lowers to 2
        '<a href="mailto:a@example.com">m</a><a href="https://o.example/\n">o</a>',
        'text href="https://o.example/" and href=no-quotes and href="unterminated',
        "",
    ],
)
def test_track_html_matches_the_single_regex_version(body: str) -> None:
    signer = LinkSigner(b"s" * 32, BASE)
    tracked = signer.track_html(body, "k:1", _link_ids())
    assert tracked == _reference_track_html(signer, body, "k:1")


@pytest.mark.parametrize(
    "payload",
    [[3, 4], [12, "email"], ["k:1", 'https://x.example/é"\\\n'], [True, 1.5, None], [2**70]],
)
def test_tokens_are_those_json_dumps_and_a_fresh_hmac_give(payload: list[object]) -> None:
    signer = LinkSigner(b"s" * 32, BASE)
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    mac = hmac.new(b"s" * 32, b"click\0" + raw, hashlib.sha256).digest()[:12]
    assert signer.sign("click", payload) == f"{_b64(raw)}.{_b64(mac)}"
    assert signer.sign("open", payload) != signer.sign("click", payload)
    assert signer.verify("click", signer.sign("click", payload)) == payload


@pytest.mark.parametrize(
    "value", ["Lyon", "  12  rue\tde la\nPaix ", "A\u200dB\u00a0C", "x\x00y", "Zoë\ufeff", ""]
)
def test_clean_printable_shortcut_keeps_the_character_filter(value: str) -> None:
    kept = "".join(
        ch for ch in value if ch.isspace() or unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    assert _clean(value) == " ".join(kept.split())


def test_audience_streams_every_member_once_in_id_order(network: App) -> None:
    audience = Audience(name="all")
    with Session(network.engine) as session:
        expected = [
            c.external_id
            for c, _ in session.execute(audience_query(audience, now=network.clock.now())).all()
        ]
        batches = list(iter_audience(session, audience, now=network.clock.now(), batch=4))
    assert [len(b) for b in batches[:-1]] == [4] * (len(batches) - 1)
    members = [contact for batch in batches for contact, _company in batch]
    assert [c.external_id for c in members] == expected and len(expected) > 8
    by_company = {company.id: company for batch in batches for _c, company in batch}
    assert all(by_company[c.company_id].id == c.company_id for c in members)


def test_frequency_caps_count_only_live_marketing_rows_in_each_window(network: App) -> None:
    from network_anim.db.models import Delivery, Message
    from network_anim.planning.planner import _recent_counts

    now = network.clock.now()
    with Session(network.engine) as session:
        message = Message(
            campaign_id=_campaign(session, now),
            step="s",
            occurrence="o",
            urgency="info",
            kind="marketing",
            template="welcome",
            created_at=now,
        )
        session.add(message)
        session.flush()
        rows = [
            ("email", "sent", True, 1),  # counted
            ("email", "pending", True, -6),  # counted: planned within the week ahead
            ("email", "failed", True, 1),  # not live
            ("email", "sent", False, 1),  # operational
            ("email", "sent", True, 8),  # outside the 7-day window
            ("print", "sent", True, 20),  # inside print's 30-day window
            ("flash", "sent", True, 1),  # no cap on flash
        ]
        for n, (channel, status, marketing, days_ago) in enumerate(rows):
            session.add(
                Delivery(
                    idempotency_key=f"cap:{n}",
                    message_id=message.id,  # type: ignore[arg-type]
                    contact_id=1,
                    channel=channel,
                    status=status,
                    marketing=marketing,
                    due_at=now - timedelta(days=days_ago),
                    created_at=now,
                    updated_at=now,
                )
            )
        session.flush()
        counts = _recent_counts(network, session, [1, 2], message.id + 1, now)  # type: ignore[operator]
        assert counts == {1: {"email": 2, "print": 1}}
        assert _recent_counts(network, session, [1], message.id, now) == {}  # its own rows
        session.rollback()


def _campaign(session: Session, now: datetime) -> int:
    from network_anim.db.models import Campaign

    campaign = Campaign(key="c", name="c", kind="broadcast", created_at=now)
    session.add(campaign)
    session.flush()
    assert campaign.id is not None
    return campaign.id
