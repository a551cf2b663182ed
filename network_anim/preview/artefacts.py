"""Each channel of a preview as the file a person opens: the email as HTML and as the
.eml the email builder makes, the SMS with its segments, encoding and cost, the letter as
the print transport's PDF page, the portal post as the portal's own page."""

from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

from network_anim.app import App
from network_anim.channels.contract import Outbound
from network_anim.channels.email_mime import build_email, envelope_sender_of
from network_anim.channels.registry import BuildContext, adapter
from network_anim.channels.sms_encoding import sms_segments
from network_anim.config.calendar import describe_local
from network_anim.db.models import Contact
from network_anim.domain import Outcome
from network_anim.preview.render import ChannelPreview, ContactPreview, PortalPage

_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_PANE_STYLE = (
    "font:13px/1.5 Arial,Helvetica,sans-serif;color:#1f2937;background:#fff8db;"
    "border-bottom:1px solid #e9d77a;padding:8px 14px"
)


@dataclass(frozen=True, slots=True)
class Artefact:
    name: str
    data: bytes


@dataclass
class Artefacts:
    files: list[Artefact]
    # What a real send would refuse or fail (an address the builder rejects...).
    notes: list[str]


def artefacts(app: App, preview: ContactPreview, at: datetime) -> Artefacts:
    """The files of every channel of one contact's preview."""
    out = Artefacts([], [])
    writers: dict[str, Callable[[App, ChannelPreview, ContactPreview, datetime, Artefacts], None]]
    writers = {
        "email": _email,
        "sms": _sms,
        "print": _letter,
        "intranet": _post,
        "flash": _post,
    }
    for channel in preview.channels:
        writers.get(channel.channel, _text)(app, channel, preview, at, out)
    return out


def _email(
    app: App, channel: ChannelPreview, preview: ContactPreview, at: datetime, out: Artefacts
) -> None:
    settings = app.config.channels.email
    item = channel.item
    html = item.html
    if html is None:
        out.notes.append("email: no HTML part; email.html shows the text the recipient gets")
        html = f"<!doctype html><html><body><pre>{escape(item.text)}</pre></body></html>"
    out.files.append(Artefact("email.html", email_page(item, settings.sender, html).encode()))
    try:
        eml = build_email(
            item,
            sender=settings.sender,
            reply_to=settings.reply_to,
            date=at,
            return_path=envelope_sender_of(item, settings.sender),
        )
    except ValueError as exc:
        out.notes.append(f"email: the message cannot be built ({exc}): a real send fails too")
        return
    out.files.append(Artefact("email.eml", eml))


def email_page(item: Outbound, sender: str, html: str) -> str:
    """The HTML part with what a mail client shows above it (from, to, subject), in a
    pane of its own after ``<body>``: the rest is the part as sent, byte for byte."""
    to = f"{item.recipient.display_name} <{item.recipient.email or 'no address'}>"
    pane = (
        f'<div id="netanim-preview" style="{_PANE_STYLE}">'
        f"<div><b>From:</b> {escape(sender)}</div>"
        f"<div><b>To:</b> {escape(to)}</div>"
        f"<div><b>Subject:</b> {escape(item.subject)}</div>"
        '<div style="color:#6b7280">Preview: its links are signed with a throwaway key, '
        "so the portal refuses them and records nothing.</div></div>"
    )
    match = _BODY_TAG.search(html)
    if match is None:
        return pane + html
    return html[: match.end()] + pane + html[match.end() :]


def _sms(
    app: App, channel: ChannelPreview, preview: ContactPreview, at: datetime, out: Artefacts
) -> None:
    out.files.append(Artefact("sms.txt", sms_sheet(app, channel, preview, at).encode()))


def sms_sheet(app: App, channel: ChannelPreview, preview: ContactPreview, at: datetime) -> str:
    """The SMS text under a header block: who, encoding, size, segments, cost, when."""
    settings = app.config.channels.sms
    item = channel.item
    text = item.text.strip()
    encoding = sms_segments(text)
    units = "septets" if encoding.encoding == "GSM-7" else "UTF-16 units"
    sender = (
        f"Messaging Service {settings.messaging_service_sid}"
        if settings.messaging_service_sid
        else settings.sender
    )
    currency = app.definitions[channel.channel].cost.currency
    lines = [
        f"To: {item.recipient.phone or 'no mobile'} ({item.recipient.display_name})",
        f"From: {sender}",
        f"Encoding: {encoding.encoding}",
        f"Characters: {len(text)} ({encoding.units} {units})",
        f"Segments: {encoding.segments}",
        f"Estimated cost: {channel.cost:.3f} {currency}",
        f"Sent: {_when(channel, preview.contact, at)}",
        "",
        text,
        "",
    ]
    return "\n".join(lines)


def _when(channel: ChannelPreview, contact: Contact, at: datetime) -> str:
    moment = channel.not_before or at
    shown = describe_local(moment, contact.timezone)
    return f"deferred to {shown}" if channel.not_before else f"at once ({shown})"


def _letter(
    app: App, channel: ChannelPreview, preview: ContactPreview, at: datetime, out: Artefacts
) -> None:
    pdf, problem = letter_pdf(app, channel.item)
    if pdf is None:
        out.notes.append(f"print: the letter would not go out: {problem}")
    else:
        out.files.append(Artefact("letter.pdf", pdf))


def letter_pdf(app: App, item: Outbound) -> tuple[bytes | None, str]:
    """The letter's PDF as the configured print transport makes it (address checks, the
    letter's date from the engine clock), written in a folder of its own and read back."""
    definition = app.definitions[item.channel]
    with tempfile.TemporaryDirectory(prefix="netanim-preview-") as folder:
        context = BuildContext(
            name=item.channel,
            definition=definition,
            config=app.config,
            resolve=lambda _path: Path(folder),  # the mail house's folder: this one
            engine=app.engine,
            clock=app.clock,
        )
        transport = adapter(definition.adapter).build(context)

        async def send() -> list:  # type: ignore[type-arg]
            async with transport:
                return await transport.send_batch([item])

        (result,) = asyncio.run(send())
        if result.outcome != Outcome.SENT:
            return None, result.detail
        pdf = next(Path(folder).glob("*.pdf"))
        return pdf.read_bytes(), ""


def _post(
    app: App, channel: ChannelPreview, preview: ContactPreview, at: datetime, out: Artefacts
) -> None:
    flash = channel.channel == "flash"
    page = preview.pages.get(flash)
    if page is None:
        out.notes.append(f"{channel.channel}: no portal page was made for this contact")
        return
    name = "flash.html" if flash else "post.html"
    out.files.append(Artefact(name, post_page(page, preview.contact).encode()))


def post_page(page: PortalPage, contact: Contact) -> str:
    """The post's page on the portal, as this contact sees it signed in."""
    from network_anim.web.portal.auth import SignedIn
    from network_anim.web.portal.i18n import LANGUAGES
    from network_anim.web.portal.markdown import render_markdown
    from network_anim.web.portal.pages import page_html

    lang = contact.language if contact.language in LANGUAGES else "fr"
    me = SignedIn(contact=contact, session_id=0, token=secrets.token_urlsafe(16))
    return page_html(
        "post.html",
        lang=lang,
        me=me,
        path=f"/portal/posts/{page.post.id}",
        post=page.post,
        body=render_markdown(page.post.body),
        files=list(page.files),
    )


def _text(
    app: App, channel: ChannelPreview, preview: ContactPreview, at: datetime, out: Artefacts
) -> None:
    """Any other channel (a messaging app): its text, and the approved template it names."""
    item = channel.item
    head = [f"To: {item.recipient.phone or 'no mobile'} ({item.recipient.display_name})"]
    if "content_sid" in item.extra:
        head.append(f"Approved template: {item.extra['content_sid']}")
        head.append(f"Its values: {item.extra.get('content_variables', {})}")
    head.append(f"Estimated cost: {channel.cost:.3f}")
    body = "\n".join([*head, "", item.text.strip(), ""])
    out.files.append(Artefact(f"{channel.channel}.txt", body.encode()))
