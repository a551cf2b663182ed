"""A preview sent for real to a member of the team, marked as a test.

Through the configured transport of each channel directly, with no outbox row (see the
package docstring): the email gets "[TEST] " before its subject and the header
``X-Netanim-Test: 1``, the SMS "[TEST] " before its text. Only email and SMS are sent: a
test letter would be printed and posted, a test post published to the network.
Bounces of a test go to the sender's own address, not to a delivery's VERP address.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from network_anim.app import App
from network_anim.channels.contract import Outbound, Recipient, SendResult, Transport
from network_anim.channels.email_mime import ENVELOPE_EXTRA
from network_anim.config.settings import TeamMember
from network_anim.outbox.transports import ConfiguredTransports
from network_anim.preview.render import ContactPreview

TEST_MARK = "[TEST] "
TEST_HEADER = "X-Netanim-Test"
SENT_AS_TESTS = ("email", "sms")


@dataclass(frozen=True, slots=True)
class TestSend:
    contact: str  # whose preview it was
    channel: str
    to: str
    outcome: str
    detail: str


def send_to_member(
    app: App, member: TeamMember, previews: Sequence[ContactPreview]
) -> list[TestSend]:
    """Send each contact's email and SMS previews to ``member``; what happened to each."""
    reports: list[TestSend] = []
    batches: dict[str, list[tuple[str, Outbound]]] = {}
    for preview in previews:
        for channel in preview.channels:
            if channel.channel not in SENT_AS_TESTS:
                continue
            address = member.email if channel.channel == "email" else member.mobile
            if not address:
                reports.append(
                    TestSend(
                        preview.external_id,
                        channel.channel,
                        member.name,
                        "skipped",
                        f"no {'email' if channel.channel == 'email' else 'mobile'} "
                        f"for {member.name} in [[team]]",
                    )
                )
                continue
            test = _as_test(channel.item, member, preview.contact.language)
            batches.setdefault(channel.channel, []).append((preview.external_id, test))
    transports = ConfiguredTransports(app)
    for channel, items in batches.items():
        results = asyncio.run(_send(transports[channel], [item for _, item in items]))
        for (contact, item), result in zip(items, results, strict=True):
            to = item.recipient.email if channel == "email" else item.recipient.phone
            detail = result.detail or (result.provider_id or "")
            reports.append(
                TestSend(contact, channel, f"{member.name} <{to}>", result.outcome, detail)
            )
    return reports


async def _send(transport: Transport, items: list[Outbound]) -> list[SendResult]:
    async with transport:
        return await transport.send_batch(items)


def _as_test(item: Outbound, member: TeamMember, language: str) -> Outbound:
    recipient = Recipient(
        contact_id=0,
        external_id=f"team:{member.name}",
        display_name=member.name,
        email=member.email,
        phone=member.mobile,
        language=language,
    )
    extra = {k: v for k, v in item.extra.items() if k != ENVELOPE_EXTRA}
    if item.channel == "email":
        return dataclasses.replace(
            item,
            idempotency_key=f"test:{item.idempotency_key}",
            recipient=recipient,
            subject=TEST_MARK + item.subject,
            headers={**item.headers, TEST_HEADER: "1"},
            extra=extra,
        )
    return dataclasses.replace(
        item,
        idempotency_key=f"test:{item.idempotency_key}",
        recipient=recipient,
        text=TEST_MARK + item.text,
        extra=extra,
    )
