"""Twilio webhooks: message status callbacks and inbound SMS.

Both check ``X-Twilio-Signature`` with the official ``RequestValidator`` and the auth
token named by ``[channels.sms] auth_token_env``. The URL it signs is rebuilt from
``[engine] base_url`` (the public URL Twilio was given) plus the request's path and
query, never from the request's own scheme and host: behind a reverse proxy that ends
TLS, or on another port, those differ from what Twilio called.

Status callbacks arrive twice and out of order. Each (message, status) is recorded once
(event dedupe key ``twilio:{sid}:{status}``), and ``delivery.extra["provider_status"]``
only moves forward: queued < sending < sent < delivered, undelivered, failed (final; so
is canceled). A late "sent" after "delivered" is recorded as an event and changes nothing.

Inbound SMS: the body is normalised (trimmed, case-folded, accents, spaces and
punctuation removed), then

* STOP, STOPALL, UNSUBSCRIBE, END, QUIT, CANCEL, OPTOUT, ARRET (ARRÊT): SMS consent
  ``opted_out`` and a confirmation; START (or UNSTOP): back to ``consent``;
* HELP (or AIDE): who is sending and how to stop;
* a challenge's ``sms_keyword``: registration to the challenge, with a confirmation;
* from a contact with an open event invitation (campaigns/events.py: the latest one sent
  by SMS whose event has not started, or the event whose ``reply_keyword`` starts the
  text): an RSVP, ``OUI`` (``OUI 2``: two seats), ``NON`` (``Non merci``), ``PEUT-ETRE``
  or ``MAYBE``, answered with its confirmation (seat reserved, waiting list position N,
  answer recorded); any other text gets how to answer. Either is also a ``replied`` event;
* anything else: a ``replied`` event (what a sequence's ``exit_on = ["replied"]`` reads)
  and no answer.

A number that belongs to no contact gets an empty answer; only a log line is kept.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from network_anim.app import App
from network_anim.config.settings import ChallengeConfig
from network_anim.db.models import Contact, Delivery
from network_anim.domain import DeliveryStatus, LawfulBasis
from network_anim.errors import UserError
from network_anim.planning.fallbacks import fail_for_good, plan_fallbacks
from network_anim.web import Web, WebContext
from network_anim.web.events import event_row, insert_event, set_consent

log = logging.getLogger(__name__)

router = APIRouter(prefix="/hooks/twilio", tags=["webhooks"])

# -- status callbacks -----------------------------------------------------------------------

# How far along a message is; a status only replaces one of a lower rank.
STATUS_RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}
# Twilio status -> event type (one normalized vocabulary, django-anymail's habit).
STATUS_EVENTS: dict[str, str] = {
    "accepted": "provider_queued",
    "scheduled": "provider_queued",
    "queued": "provider_queued",
    "sending": "provider_sending",
    "sent": "provider_sent",
    "delivered": "delivered",
    "undelivered": "bounced",
    "failed": "bounced",
    "canceled": "cancelled",
}
# Twilio error 21610: the recipient replied STOP to this sender at the carrier.
OPTED_OUT_ERROR = "21610"


def moves_forward(current: str | None, new: str) -> bool:
    """Whether status ``new`` replaces ``current`` (unknown statuses never do)."""
    if new not in STATUS_RANK:
        return False
    if current not in STATUS_RANK:
        return True
    return STATUS_RANK[new] > STATUS_RANK[current]


_UNDELIVERED = frozenset({"undelivered", "failed"})


def apply_status(app: App, *, sid: str, status: str, error_code: str, now: datetime) -> str:
    """Record one status callback; returns what happened: ``unknown`` (no delivery has
    that SID), ``duplicate`` (already recorded), ``stale`` (an older status arriving
    late: event recorded, status unchanged) or ``applied``. An SMS that Twilio accepted
    and then could not deliver goes on by its next channel, planned by the planner."""
    outcome, fall_back = _apply_status(app, sid=sid, status=status, error_code=error_code, now=now)
    if fall_back is not None:
        # After the commit: were this process to die now, the row stays marked and the
        # next drain's planning stage plans its fallback.
        plan_fallbacks(app, ids=[fall_back])
    return outcome


def _apply_status(
    app: App, *, sid: str, status: str, error_code: str, now: datetime
) -> tuple[str, int | None]:
    """The callback's changes in one transaction; the id of a row now marked for its
    fallback, if any."""
    with Session(app.engine) as session, session.begin():
        delivery = session.scalars(
            select(Delivery).where(Delivery.provider_id == sid).with_for_update()
        ).first()
        if delivery is None:
            return "unknown", None
        data: dict[str, Any] = {"provider": "twilio", "sid": sid, "status": status}
        if error_code:
            data["error_code"] = error_code
        new = insert_event(
            session.connection(),
            event_row(
                type=STATUS_EVENTS.get(status, "provider_status"),
                occurred_at=now,
                channel=delivery.channel,
                contact_id=delivery.contact_id,
                delivery_id=delivery.id,
                message_id=delivery.message_id,
                data=data,
                dedupe_key=f"twilio:{sid}:{status}"[:200],
            ),
        )
        if not new:
            return "duplicate", None
        if error_code == OPTED_OUT_ERROR:
            set_consent(
                session,
                contact_id=delivery.contact_id,
                channel=delivery.channel,
                basis=LawfulBasis.OPTED_OUT,
                source="twilio",
                now=now,
            )
        if not moves_forward(delivery.extra.get("provider_status"), status):
            return "stale", None
        extra = {**delivery.extra, "provider_status": status, "provider_status_at": now.isoformat()}
        if error_code:
            extra["provider_error"] = error_code
        delivery.extra = extra  # a new dict: the JSON column sees the change
        delivery.updated_at = now
        if status in _UNDELIVERED and delivery.status == DeliveryStatus.SENT.value:
            # Accepted by Twilio, then not delivered: as final as an invalid number, so the
            # message goes on by the router's next channel, as a failed send would.
            error = f"Twilio: {status}" + (f" (error {error_code})" if error_code else "")
            # The same path as an email's hard bounce (bounces/apply.py).
            if fail_for_good(delivery, status=DeliveryStatus.FAILED, error=error, now=now):
                return "applied", delivery.id
        return "applied", None


# -- inbound SMS ------------------------------------------------------------------------------

STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "end", "quit", "cancel", "optout", "arret"}
)
START_WORDS = frozenset({"start", "unstop"})
HELP_WORDS = frozenset({"help", "aide"})


def normalise(body: str) -> str:
    """The keyword in a text: case, accents, spaces and punctuation do not matter
    (``"  Arrêt "`` gives ``"arret"``, ``"Stop all!"`` gives ``"stopall"``)."""
    folded = unicodedata.normalize("NFKD", body.strip().casefold())
    return re.sub(r"[\W_]+", "", "".join(c for c in folded if not unicodedata.combining(c)))


@dataclass(frozen=True, slots=True)
class Inbound:
    kind: str  # stop | start | help | challenge | reply
    challenge: ChallengeConfig | None = None


def classify(body: str, challenges: tuple[ChallengeConfig, ...]) -> Inbound:
    word = normalise(body)
    if word in STOP_WORDS:
        return Inbound("stop")
    if word in START_WORDS:
        return Inbound("start")
    if word in HELP_WORDS:
        return Inbound("help")
    for challenge in challenges:
        if challenge.sms_keyword and word == normalise(challenge.sms_keyword):
            return Inbound("challenge", challenge)
    return Inbound("reply")


def handle_inbound(app: App, *, sender: str, body: str, sid: str, now: datetime) -> str | None:
    """Apply one inbound SMS or WhatsApp message (``From`` is ``whatsapp:+33...``);
    returns the text to answer with, or None for no answer. STOP and START change the
    consent of the channel the message came by."""
    channel = "whatsapp" if sender.startswith(WHATSAPP_PREFIX) else "sms"
    sender = sender.removeprefix(WHATSAPP_PREFIX)
    with Session(app.engine) as session:
        contact_ids = list(
            session.scalars(select(Contact.id).where(Contact.mobile == sender).order_by(Contact.id))
        )
    if not contact_ids:
        log.info(
            "inbound %s %s from a number no contact has (%s): ignored", channel, sid, _mask(sender)
        )
        return None
    if channel == "whatsapp":
        return _whatsapp_inbound(app, contact_ids, body=body, sid=sid, now=now)
    sms = app.config.channels.sms
    what = classify(body, app.config.challenges)
    if what.kind == "challenge":
        assert what.challenge is not None
        return _register(app, contact_ids, what.challenge, body=body, sid=sid, now=now)
    if what.kind == "reply":
        rsvp = _rsvp(app, contact_ids, body=body, sid=sid, now=now)
        if rsvp is not None:
            return rsvp or None
    event_type = {"stop": "unsubscribed", "start": "resubscribed", "help": "sms_help"}.get(
        what.kind, "replied"
    )
    for contact_id in contact_ids:
        with Session(app.engine) as session, session.begin():
            new = _record(session, event_type, contact_id, body=body, sid=sid, now=now)
            if new and what.kind in ("stop", "start"):
                set_consent(
                    session,
                    contact_id=contact_id,
                    channel="sms",
                    basis=LawfulBasis.OPTED_OUT if what.kind == "stop" else LawfulBasis.CONSENT,
                    source=f"sms-{what.kind}",
                    now=now,
                )
    if what.kind == "stop":
        return (
            f"{sms.sender_name} : vous ne recevrez plus nos SMS. "
            "Envoyez START pour les recevoir à nouveau."
        )
    if what.kind == "start":
        return f"{sms.sender_name} : vous recevez à nouveau nos SMS. {sms.stop_mention}"
    if what.kind == "help":
        return (
            f"{sms.sender_name} : messages d'animation de votre réseau de partenaires. "
            f"{sms.stop_mention} pour ne plus recevoir de SMS, START pour les recevoir à nouveau."
        )
    return None


WHATSAPP_PREFIX = "whatsapp:"

# -- RSVP by text -----------------------------------------------------------------------------

RSVP_WORDS = {"oui": "yes", "yes": "yes", "ok": "yes", "non": "no", "no": "no"}
RSVP_WORDS |= {"peutetre": "maybe", "maybe": "maybe", "pt": "maybe"}


@dataclass(frozen=True, slots=True)
class RsvpText:
    keyword: str | None  # an event's reply keyword the text starts with
    answer: str | None  # yes | no | maybe; None: not an RSVP word
    seats: int = 1


def parse_rsvp(body: str, keywords: Collection[str]) -> RsvpText:
    """``"OUI 2"`` is yes for 2 seats, ``"Non merci"`` no, ``"peut-être"`` maybe, ``"GALA
    OUI"`` yes to the event whose keyword is GALA; words after the answer are ignored."""
    folded = unicodedata.normalize("NFKD", body.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    words = re.sub(r"[\W_]+", " ", plain).split()
    keyword = None
    if words and words[0].upper() in keywords:
        keyword = words.pop(0).upper()
    if words[:2] == ["peut", "etre"]:
        words[:2] = ["peutetre"]
    answer = RSVP_WORDS.get(words[0]) if words else None
    seats = int(words[1]) if answer == "yes" and len(words) > 1 and words[1].isdigit() else 1
    return RsvpText(keyword, answer, seats)


def _rsvp(app: App, contact_ids: list[int], *, body: str, sid: str, now: datetime) -> str | None:
    """The answer to an RSVP text ("" for a retried webhook), or None when no contact of
    the number has an invitation open: the text is then an ordinary reply."""
    from network_anim.campaigns.events import (
        confirmation_text,
        help_text,
        latest_invitation,
        open_events,
        record_answer,
    )

    events = open_events(app, now)
    keywords = {e.reply_keyword: e for e in events if e.reply_keyword}
    text = parse_rsvp(body, keywords)
    answering = [keywords[text.keyword]] if text.keyword else events
    with Session(app.engine) as session:
        invitations = {
            cid: found
            for cid in contact_ids
            if (
                found := latest_invitation(
                    app, session, cid, events=answering, channel=None if text.keyword else "sms"
                )
            )
        }
        languages = dict(
            session.execute(
                select(Contact.id, Contact.language).where(
                    Contact.id.in_(list(invitations))  # type: ignore[union-attr]
                )
            ).all()
        )
    if not invitations:
        return None
    event = next(iter(invitations.values())).event
    understood = text.answer is not None and (
        text.answer != "yes" or 1 <= text.seats <= event.max_seats
    )
    answer = ""
    for contact_id, invitation in invitations.items():
        extra = {"event": invitation.event.id, "rsvp": text.answer if understood else "unknown"}
        with Session(app.engine) as session, session.begin():
            new = _record(session, "replied", contact_id, body=body, sid=sid, now=now, extra=extra)
        if not new:
            continue  # Twilio retried the webhook: the answer is recorded already
        if not understood:
            answer = answer or help_text(app, invitation.event, languages[contact_id])
            continue
        assert text.answer is not None
        outcome = record_answer(
            app, invitation, contact_id, answer=text.answer, seats=text.seats, by="sms"
        )
        language = languages[contact_id]
        answer = answer or confirmation_text(app, invitation.event, outcome, language)
    return answer


def _whatsapp_inbound(
    app: App, contact_ids: list[int], *, body: str, sid: str, now: datetime
) -> str | None:
    """A WhatsApp message: STOP/START change the WhatsApp consent (START is an opt-in);
    anything else is a reply. Each is an event on the whatsapp channel, which opens the
    24 h session for free text (channels/whatsapp.py)."""
    name = app.config.channels.whatsapp.sender_name
    kind = classify(body, ()).kind
    event_type = {"stop": "unsubscribed", "start": "resubscribed", "help": "sms_help"}.get(
        kind, "replied"
    )
    for contact_id in contact_ids:
        with Session(app.engine) as session, session.begin():
            new = _record(
                session, event_type, contact_id, body=body, sid=sid, now=now, channel="whatsapp"
            )
            if new and kind in ("stop", "start"):
                set_consent(
                    session,
                    contact_id=contact_id,
                    channel="whatsapp",
                    basis=LawfulBasis.OPTED_OUT if kind == "stop" else LawfulBasis.CONSENT,
                    source=f"whatsapp-{kind}",
                    now=now,
                )
    if kind == "stop":
        return f"{name} : vous ne recevrez plus nos messages WhatsApp. Envoyez START pour les recevoir à nouveau."
    if kind == "start":
        return f"{name} : vous recevez nos messages WhatsApp. Envoyez STOP pour les arrêter."
    if kind == "help":
        return (
            f"{name} : messages d'animation de votre réseau de partenaires. STOP pour les arrêter."
        )
    return None


def _register(
    app: App,
    contact_ids: list[int],
    challenge: ChallengeConfig,
    *,
    body: str,
    sid: str,
    now: datetime,
) -> str:
    from network_anim.challenges.calendar import local_day
    from network_anim.challenges.registration import register_by_keyword

    name = app.config.channels.sms.sender_name
    if local_day(app, now) > challenge.end:
        answer, outcome = f"{name} : le {challenge.name} est terminé.", "closed"
    else:
        registered = 0
        for contact_id in contact_ids:
            try:
                register_by_keyword(app, contact_id, challenge.sms_keyword or "")
                registered += 1
            except UserError as exc:
                log.info("SMS registration of contact %s refused: %s", contact_id, exc.summary)
        if registered:
            answer = (
                f"{name} : votre inscription au {challenge.name} est enregistrée. Bonne chance !"
            )
            outcome = "registered"
        else:
            answer = (
                f"{name} : le {challenge.name} n'est pas ouvert à votre profil. "
                "Contactez votre animateur réseau."
            )
            outcome = "refused"
    for contact_id in contact_ids:
        with Session(app.engine) as session, session.begin():
            _record(
                session,
                "sms_keyword",
                contact_id,
                body=body,
                sid=sid,
                now=now,
                extra={"challenge": challenge.id, "outcome": outcome},
            )
    return answer


def _record(
    session: Session,
    event_type: str,
    contact_id: int,
    *,
    body: str,
    sid: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
    channel: str = "sms",
) -> bool:
    """The inbound event, tied to the last message sent to the contact on ``channel``;
    False if Twilio already delivered this message to us (a retried webhook)."""
    last = session.execute(
        select(Delivery.id, Delivery.message_id)
        .where(
            Delivery.contact_id == contact_id,
            Delivery.channel == channel,
            Delivery.sent_at.is_not(None),  # type: ignore[union-attr]
        )
        .order_by(Delivery.sent_at.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()
    return insert_event(
        session.connection(),
        event_row(
            type=event_type,
            occurred_at=now,
            channel=channel,
            contact_id=contact_id,
            delivery_id=last[0] if last else None,
            message_id=last[1] if last else None,
            data={"body": body[:1000], "sid": sid, **(extra or {})},
            dedupe_key=f"twilio:in:{sid}:{contact_id}"[:200] if sid else None,
        ),
    )


def _mask(number: str) -> str:
    return number[:-4] + "****" if len(number) > 6 else "****"


# -- HTTP -----------------------------------------------------------------------------------


def public_url(base_url: str, request: Request) -> str:
    """The URL Twilio called: the configured public base plus this request's path and
    query as received (a path prefix the proxy stripped is part of ``base_url``)."""
    scope = request.scope
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    query = scope.get("query_string", b"").decode("latin-1")
    return base_url.rstrip("/") + path + (f"?{query}" if query else "")


async def signed_form(request: Request, ctx: WebContext) -> FormData:
    """The form of a request Twilio signed, or 403 (503 when no auth token is set)."""
    settings = ctx.app.config.channels.sms
    token = os.environ.get(settings.auth_token_env)
    if not token:
        log.error(
            "Twilio webhook refused: environment variable %s (the auth token) is not set",
            settings.auth_token_env,
        )
        raise HTTPException(status_code=503, detail="Twilio webhooks are not configured")
    form = await request.form()
    signature = request.headers.get(SIGNATURE_HEADER)
    url = public_url(ctx.app.config.engine.base_url, request)
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    if not signature or not RequestValidator(token).validate(url, form, signature, algorithm):
        log.warning(
            "Twilio webhook %s refused: %s signature for %s",
            request.url.path,
            "bad" if signature else "no",
            url,
        )
        raise HTTPException(status_code=403, detail="invalid X-Twilio-Signature")
    return form


def _field(form: FormData, *names: str) -> str:
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


_FORM_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    },
    "parameters": [
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "Twilio's signature of the public URL and the form parameters.",
        }
    ],
}


def _doc(fields: dict[str, str]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": text} for name, text in fields.items()
        },
        "additionalProperties": {"type": "string"},
    }
    body = {"content": {"application/x-www-form-urlencoded": {"schema": schema}}, "required": True}
    return {**_FORM_DOC, "requestBody": body}


@router.post(
    "/status",
    summary="Twilio message status callback",
    description="Twilio's StatusCallback for each SMS sent. Duplicates and late statuses "
    "are recorded once and never move a delivery's provider status backwards.",
    status_code=204,
    response_class=Response,
    responses={
        403: {"description": "Missing or invalid X-Twilio-Signature."},
        503: {"description": "No Twilio auth token in the environment."},
    },
    openapi_extra=_doc(
        {
            "MessageSid": "The message's SID (the delivery's provider id).",
            "MessageStatus": "queued, sending, sent, delivered, undelivered, failed...",
            "ErrorCode": "Twilio error code for undelivered and failed messages.",
        }
    ),
)
async def status_callback(request: Request, ctx: Web) -> Response:
    form = await signed_form(request, ctx)
    sid = _field(form, "MessageSid", "SmsSid")
    status = _field(form, "MessageStatus", "SmsStatus").strip().lower()
    if not sid or not status:
        raise HTTPException(status_code=400, detail="MessageSid and MessageStatus are required")
    outcome = await run_in_threadpool(
        apply_status,
        ctx.app,
        sid=sid,
        status=status,
        error_code=_field(form, "ErrorCode"),
        now=ctx.app.clock.now(),
    )
    if outcome == "unknown":
        log.info("status %s for message %s, which no delivery has sent", status, sid)
    return Response(status_code=204)


@router.post(
    "/inbound",
    summary="Twilio inbound SMS",
    description="Messages sent to our number: STOP and its variants (opt-out), START, "
    "HELP, a challenge's registration keyword; anything else is recorded as a reply. "
    "Answers TwiML.",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "TwiML (empty: no reply)."},
        403: {"description": "Missing or invalid X-Twilio-Signature."},
        503: {"description": "No Twilio auth token in the environment."},
    },
    openapi_extra=_doc(
        {
            "MessageSid": "The inbound message's SID.",
            "From": "The sender's number, E.164.",
            "To": "Our number.",
            "Body": "The text.",
        }
    ),
)
async def inbound_sms(request: Request, ctx: Web) -> Response:
    form = await signed_form(request, ctx)
    answer = await run_in_threadpool(
        handle_inbound,
        ctx.app,
        sender=_field(form, "From").strip(),
        body=_field(form, "Body"),
        sid=_field(form, "MessageSid", "SmsSid"),
        now=ctx.app.clock.now(),
    )
    twiml = MessagingResponse()
    if answer:
        twiml.message(answer)
    return Response(content=twiml.to_xml(), media_type="application/xml")
