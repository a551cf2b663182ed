"""Tracking endpoints: open pixel, click redirect, post links, one-click unsubscribe.

Every URL carries a token signed by :class:`network_anim.compose.links.LinkSigner` for one purpose
(``open``, ``click``, ``post``, ``unsubscribe``). A token that does not verify (forged,
altered, truncated, or minted for another purpose) is answered 404, logged, and writes
nothing to the database. A click token names a delivery and a stored link (the ``links``
table, filled when the message was rendered), never a URL: the redirect goes only to a
link the engine stored for that delivery's message, and only to http(s). A correctly
signed token for another message's link, or for a link id never stored, is a 404 too, so
even the holder of the signing secret cannot mint a redirect to a host of their choice.
Tokens minted before links were stored (the URL in the payload) still work while the
delivery's stored HTML holds that very token.

Opens, clicks and reads go through the batch writer (:mod:`network_anim.web.events`);
opens and clicks by prefetchers and scanners are recorded with ``machine = true``
(:mod:`network_anim.web.scanners`). An unsubscribe is written in its own transaction
before the answer leaves, so the next batch of the dispatcher already skips the contact.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.compose.links import BadToken
from network_anim.db.models import Consent, Contact, Delivery, Link, Post
from network_anim.domain import CHANNEL_NAMES, LawfulBasis
from network_anim.web import Web, WebContext
from network_anim.web.events import event_row, insert_event, set_consent
from network_anim.web.scanners import Kind, machine_reason

log = logging.getLogger(__name__)

router = APIRouter(tags=["tracking"])

# The smallest transparent GIF (1x1).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache"}
ONE_CLICK = "One-Click"

CHANNEL_LABELS = {
    "email": "par e-mail",
    "sms": "par SMS",
    "print": "par courrier",
    "intranet": "sur le portail",
    "flash": "en message flash sur le portail",
}

_INVALID = "Lien invalide ou expiré."


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:300]


def _verify(ctx: WebContext, request: Request, purpose: str, token: str, arity: int) -> list:
    """The token's payload, or a 404. A refused token writes nothing to the database (a
    flood of made-up tokens must not fill the events table): it is only logged."""
    try:
        payload = ctx.app.signer.verify(purpose, token)
        if not isinstance(payload, list) or len(payload) != arity:
            raise BadToken("unexpected payload")
        return payload
    except BadToken as exc:
        client = request.client.host if request.client else ""
        log.warning("refused %s token from %s (%s): %.60s", purpose, client, exc, token)
        raise HTTPException(status_code=404, detail=_INVALID) from None


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    id: int | None
    contact_id: int
    message_id: int | None
    channel: str
    sent_at: datetime | None


def _delivery(ctx: WebContext, key: str) -> DeliveryRef | None:
    with Session(ctx.app.engine) as session:
        row = session.execute(
            select(
                Delivery.id,
                Delivery.contact_id,
                Delivery.message_id,
                Delivery.channel,
                Delivery.sent_at,
            ).where(Delivery.idempotency_key == key)
        ).first()
    return DeliveryRef(*row) if row else None


def _seen(
    ctx: WebContext,
    request: Request,
    kind: Kind,
    event_type: str,
    ref: DeliveryRef,
    now: datetime,
    data: dict[str, Any],
) -> bool:
    """Queue an open or click of a delivery; True when a person made it."""
    since = (now - ref.sent_at).total_seconds() if ref.sent_at else None
    agent = _user_agent(request)
    reason = machine_reason(agent, since, kind, min_click_seconds=ctx.min_click_seconds)
    details = {**data, "user_agent": agent}
    if reason:
        details["machine_reason"] = reason
    ctx.events.record(
        event_row(
            type=event_type,
            occurred_at=now,
            channel=ref.channel,
            contact_id=ref.contact_id,
            delivery_id=ref.id,
            message_id=ref.message_id,
            machine=reason is not None,
            data=details,
        )
    )
    return reason is None


def _redirectable(url: Any) -> bool:
    if not isinstance(url, str) or any(ord(c) < 0x21 for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# -- open pixel ---------------------------------------------------------------------------------


@router.get(
    "/o/{token}.gif",
    summary="Open pixel",
    description="A 1x1 transparent GIF that records an open of the delivery in the signed "
    "token. Opens by image proxies that prefetch (Apple Mail Privacy Protection) and by "
    "scanners are recorded with `machine = true`.",
    response_class=Response,
    responses={
        200: {"content": {"image/gif": {}}, "description": "The 1x1 GIF (never cached)."},
        404: {"description": "Forged or altered token (refused, nothing recorded)."},
    },
)
def open_pixel(token: str, request: Request, ctx: Web) -> Response:
    (key,) = _verify(ctx, request, "open", token, 1)
    ref = _delivery(ctx, str(key))
    if ref is None:
        log.info("open of unknown delivery %r", key)
    else:
        _seen(ctx, request, "open", "opened", ref, ctx.app.clock.now(), {})
    return Response(content=PIXEL_GIF, media_type="image/gif", headers=NO_STORE)


# -- click redirect -----------------------------------------------------------------------------


@router.get(
    "/c/{token}",
    summary="Tracked click",
    description="Records a click, then redirects (302) to the link the token names: a link "
    "stored when the delivery's message was rendered. Nothing in the request can change "
    "the target; a token for a link of another message, or for a link never stored, is "
    "refused (404, nothing recorded).",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "Redirect to the link of the message."},
        404: {
            "description": "Forged or altered token, unknown delivery, a link that is not "
            "one of the delivery's message, or a target that is not http(s)."
        },
    },
)
def click(token: str, request: Request, ctx: Web) -> Response:
    key, target = _verify(ctx, request, "click", token, 2)
    found = _click_of(ctx.app, str(key), target, token)
    if found is None:
        # Signed by us but naming nothing we sent: logged, never recorded as a click.
        log.warning("click token for no stored link of its delivery: %.60s", token)
        raise HTTPException(status_code=404, detail=_INVALID)
    _seen(ctx, request, "click", "clicked", found.delivery, ctx.app.clock.now(), found.data)
    return RedirectResponse(found.url, status_code=302, headers=NO_STORE)


@dataclass(frozen=True, slots=True)
class Click:
    """Where a click token leads: the delivery, the stored link's URL and id."""

    delivery: DeliveryRef
    url: str
    link_id: int | None  # None: a token from before stored links, whose URL has no row

    @property
    def data(self) -> dict[str, Any]:
        """The ``clicked`` event's data (the user agent and machine flags aside)."""
        data: dict[str, Any] = {"url": self.url[:1000]}
        if self.link_id is not None:
            data["link_id"] = self.link_id
        return data


def click_target(app: App, token: str) -> Click | None:
    """What ``GET /c/{token}`` redirects to, or ``None`` where it answers 404: the check
    the endpoint makes, for callers that follow a message's links without HTTP (the demo's
    simulated readers)."""
    try:
        payload = app.signer.verify("click", token)
    except BadToken:
        return None
    if not isinstance(payload, list) or len(payload) != 2:
        return None
    return _click_of(app, str(payload[0]), payload[1], token)


def _click_of(app: App, key: str, target: Any, token: str) -> Click | None:
    if isinstance(target, int) and not isinstance(target, bool):
        found = _stored_link_click(app, key, target)
    elif isinstance(target, str):
        found = _legacy_click(app, key, target, token)
    else:
        return None
    if found is not None and not _redirectable(found.url):
        log.error("stored click target is not an http(s) URL: %.200r", found.url)
        return None
    return found


_DELIVERY_COLUMNS = (
    Delivery.id,
    Delivery.contact_id,
    Delivery.message_id,
    Delivery.channel,
    Delivery.sent_at,
)


def _stored_link_click(app: App, key: str, link_id: int) -> Click | None:
    """The delivery and the link's URL, when the link is one of the delivery's message."""
    with Session(app.engine) as session:
        row = session.execute(
            select(*_DELIVERY_COLUMNS, Link.url)
            .join(Link, Link.message_id == Delivery.message_id)  # type: ignore[arg-type]
            .where(Delivery.idempotency_key == key, Link.id == link_id)
        ).first()
    if row is None:
        return None
    *delivery, url = row
    return Click(DeliveryRef(*delivery), url, link_id)


def _legacy_click(app: App, key: str, url: str, token: str) -> Click | None:
    """A token from before stored links, carrying its URL: honoured only when it is the
    very token the delivery's stored HTML holds (so it cannot be minted anew); the click
    counts for the stored link of that URL when there is one. A compatibility path: drop
    it once no such email is still read."""
    with Session(app.engine) as session:
        row = session.execute(
            select(*_DELIVERY_COLUMNS, Delivery.body_html).where(Delivery.idempotency_key == key)
        ).first()
        if row is None or not row.body_html or f"/c/{token}" not in row.body_html:
            return None
        link_id = session.scalar(
            select(Link.id).where(Link.message_id == row.message_id, Link.url == url)
        )
    return Click(DeliveryRef(*row[:5]), url, link_id)


# -- post link ----------------------------------------------------------------------------------


@router.get(
    "/p/{token}",
    summary="Post link",
    description="The link every message carries to its post on the portal: records a click "
    "and, when a person (not a scanner) follows it, a read of the post; then redirects to "
    "`/portal/posts/{post_id}`.",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "Redirect to the post on the portal."},
        404: {"description": "Forged or altered token (refused, nothing recorded)."},
    },
)
def post_link(token: str, request: Request, ctx: Web) -> Response:
    post_id, contact_id = _verify(ctx, request, "post", token, 2)
    base = ctx.app.config.engine.base_url.rstrip("/")
    now = ctx.app.clock.now()
    with Session(ctx.app.engine) as session:
        post = session.get(Post, post_id) if isinstance(post_id, int) else None
        contact = session.get(Contact, contact_id) if isinstance(contact_id, int) else None
        latest = None
        if post is not None and contact is not None and post.message_id is not None:
            # The message's delivery to this contact the link came from (the latest sent).
            row = session.execute(
                select(
                    Delivery.id,
                    Delivery.contact_id,
                    Delivery.message_id,
                    Delivery.channel,
                    Delivery.sent_at,
                )
                .where(
                    Delivery.message_id == post.message_id,
                    Delivery.contact_id == contact.id,
                    Delivery.sent_at.is_not(None),  # type: ignore[union-attr]
                )
                .order_by(Delivery.sent_at.desc())  # type: ignore[union-attr]
                .limit(1)
            ).first()
            latest = DeliveryRef(*row) if row else None
    if post is None or contact is None:
        log.info("post link to unknown post %r or contact %r", post_id, contact_id)
        return RedirectResponse(f"{base}/portal/", status_code=302, headers=NO_STORE)
    target = f"{base}/portal/posts/{post.id}"
    ref = latest or DeliveryRef(None, contact.id or 0, post.message_id, "", None)
    human = _seen(
        ctx,
        request,
        "click",
        "clicked",
        ref,
        now,
        {"url": target, "post_id": post.id},
    )
    if human:
        # A scanner following the link must not mark the post read (a flash post would
        # vanish before its reader saw it).
        ctx.events.record_read(post_id=post.id or 0, contact_id=contact.id or 0, read_at=now)
        ctx.events.record(
            event_row(
                type="read",
                occurred_at=now,
                channel=ref.channel,
                contact_id=contact.id,
                delivery_id=latest.id if latest else None,
                message_id=post.message_id,
                data={"post_id": post.id, "via": "link"},
                dedupe_key=f"read:{post.id}:{contact.id}",
            )
        )
    return RedirectResponse(target, status_code=302, headers=NO_STORE)


# -- one-click unsubscribe ------------------------------------------------------------------------

_PAGE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Désinscription – {{ sender }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }
button { font-size: 1rem; padding: .6rem 1.2rem; cursor: pointer; }
</style>
</head>
<body>
<h1>Désinscription</h1>
{% if opted_out %}
<p>Vous ne recevez plus les messages de {{ sender }} {{ channel_label }}.</p>
<p>Vous continuez de recevoir ceux des autres canaux que vous n'avez pas refusés.</p>
{% else %}
<p>Ce lien vous désinscrit des messages de {{ sender }} envoyés {{ channel_label }}.
Les autres canaux (et le portail partenaires) ne changent pas.</p>
<p>Rien n'est encore fait : cliquez sur le bouton pour confirmer.</p>
<form method="post" action="{{ action }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Me désinscrire des messages {{ channel_label }}</button>
</form>
{% endif %}
</body>
</html>
"""
)


def _unsubscribe_target(ctx: WebContext, request: Request, token: str) -> tuple[int, str]:
    contact_id, channel = _verify(ctx, request, "unsubscribe", token, 2)
    if not isinstance(contact_id, int) or channel not in CHANNEL_NAMES:
        raise HTTPException(status_code=404, detail=_INVALID)
    return contact_id, channel


def _sender(ctx: WebContext) -> str:
    return ctx.app.config.channels.sms.sender_name


@router.get(
    "/u/{token}",
    summary="Unsubscribe page",
    description="A page that says what the link does, with a button that POSTs to the same "
    "URL. A GET never unsubscribes: mail scanners follow every link.",
    response_class=HTMLResponse,
    responses={404: {"description": "Forged or altered token, or unknown contact."}},
)
def unsubscribe_page(token: str, request: Request, ctx: Web) -> HTMLResponse:
    contact_id, channel = _unsubscribe_target(ctx, request, token)
    with Session(ctx.app.engine) as session:
        if session.get(Contact, contact_id) is None:
            raise HTTPException(status_code=404, detail=_INVALID)
        basis = session.scalar(
            select(Consent.basis).where(
                Consent.contact_id == contact_id, Consent.channel == channel
            )
        )
    page = _PAGE.render(
        sender=_sender(ctx),
        channel_label=CHANNEL_LABELS.get(channel, channel),
        opted_out=basis == LawfulBasis.OPTED_OUT.value,
        action=f"{ctx.app.config.engine.base_url.rstrip('/')}/u/{token}",
    )
    return HTMLResponse(page, headers=NO_STORE)


@router.post(
    "/u/{token}",
    summary="One-click unsubscribe (RFC 8058)",
    description="What mail clients POST for `List-Unsubscribe-Post: List-Unsubscribe=One-Click`"
    ": no login, no redirect. The channel's consent is `opted_out` (source `one-click`) "
    "before the answer is sent, so no later batch reaches the contact on that channel.",
    response_class=PlainTextResponse,
    responses={
        400: {"description": "The body is not `List-Unsubscribe=One-Click`."},
        404: {"description": "Forged or altered token, or unknown contact."},
    },
)
def unsubscribe(
    token: str,
    request: Request,
    ctx: Web,
    list_unsubscribe: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> PlainTextResponse:
    contact_id, channel = _unsubscribe_target(ctx, request, token)
    if list_unsubscribe != ONE_CLICK:
        raise HTTPException(status_code=400, detail="expected List-Unsubscribe=One-Click")
    now = ctx.app.clock.now()
    with Session(ctx.app.engine) as session, session.begin():
        if session.get(Contact, contact_id) is None:
            raise HTTPException(status_code=404, detail=_INVALID)
        previous = set_consent(
            session,
            contact_id=contact_id,
            channel=channel,
            basis=LawfulBasis.OPTED_OUT,
            source="one-click",
            now=now,
        )
        if previous != LawfulBasis.OPTED_OUT.value:
            insert_event(
                session.connection(),
                event_row(
                    type="unsubscribed",
                    occurred_at=now,
                    channel=channel,
                    contact_id=contact_id,
                    data={"source": "one-click", "previous": previous or ""},
                ),
            )
    label = CHANNEL_LABELS.get(channel, channel)
    return PlainTextResponse(
        f"Désinscription enregistrée : vous ne recevrez plus les messages de {_sender(ctx)} "
        f"{label}.\n",
        headers=NO_STORE,
    )
