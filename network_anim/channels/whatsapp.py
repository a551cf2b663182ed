"""WhatsApp: Twilio's Messages API through the official client (as SMS), or a JSON-lines file.

What differs from SMS (WhatsApp Business rules, as Twilio applies them):

* addresses carry the channel: ``whatsapp:+33612345678`` for ``To`` and ``From``;
* a business-initiated message must use a template Meta approved: sent as
  ``content_sid`` (the ``HX...`` SID configured in ``[channels.whatsapp.templates]``) and
  ``content_variables`` (a JSON object ``{"1": ..., "2": ...}``), never as a free body;
* free text (``body``) only inside the customer-service session: 24 hours from the
  contact's last inbound WhatsApp message (its events, recorded by web/twilio_hooks.py).
  Outside it, a message without an approved template is refused here (FAILED, no call),
  so the router's next channel carries it.

Consent: channels/whatsapp.toml has no default lawful basis, so only contacts with a
recorded WhatsApp consent (network CSV ``consent_whatsapp``, a START on WhatsApp) get it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from network_anim.channels.contract import Outbound, SendResult
from network_anim.channels.registry import Adapter, BuildContext
from network_anim.channels.sms import FileSmsTransport, TwilioTransport
from network_anim.clock import Clock
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import WhatsappSettings, secret_from_env
from network_anim.db.models import Event
from network_anim.domain import Outcome

PREFIX = "whatsapp:"
# Events recorded for a message the contact sent us on WhatsApp (web/twilio_hooks.py).
INBOUND_EVENTS = ("replied", "resubscribed", "unsubscribed", "sms_help", "sms_keyword")


def address(number: str) -> str:
    """``+33612345678`` → ``whatsapp:+33612345678`` (an address already prefixed is kept)."""
    return number if number.startswith(PREFIX) else PREFIX + number


def build_whatsapp_params(
    item: Outbound, settings: WhatsappSettings, *, status_callback_url: str | None = None
) -> dict[str, str]:
    """Keyword arguments for ``client.messages.create_async(**params)``: the approved
    template (``content_sid`` + ``content_variables``) when the message has one, else the
    free text as ``body`` (only valid inside the session: see :func:`session_refusal`)."""
    phone = item.recipient.phone
    if not phone:
        raise ValueError(f"delivery {item.delivery_id}: recipient has no mobile number")
    params: dict[str, str] = {"to": address(phone)}
    content_sid = item.extra.get("content_sid")
    if content_sid:
        params["content_sid"] = str(content_sid)
        variables = item.extra.get("content_variables") or {}
        if variables:
            params["content_variables"] = json.dumps(variables, ensure_ascii=False)
    else:
        params["body"] = item.text
    if settings.messaging_service_sid:
        params["messaging_service_sid"] = settings.messaging_service_sid
    else:
        params["from_"] = address(settings.sender)
    if status_callback_url:
        params["status_callback"] = status_callback_url
    return params


def session_refusal(
    item: Outbound, last_inbound: datetime | None, now: datetime, settings: WhatsappSettings
) -> SendResult | None:
    """FAILED when free text would go out of the session (no approved template), else None."""
    if item.extra.get("content_sid"):
        return None  # an approved template may open the conversation
    hours = settings.session_hours
    if last_inbound is not None and now - last_inbound < timedelta(hours=hours):
        return None
    since = (
        "no WhatsApp message from the contact"
        if last_inbound is None
        else (f"the contact's last WhatsApp message is older than {hours:g} h")
    )
    return SendResult(
        Outcome.FAILED,
        detail=f"free text outside the WhatsApp session ({since}) and no approved template: "
        "add its content SID under [channels.whatsapp.templates]",
    )


class _Session:
    """Reads the contacts' last inbound WhatsApp message from the events table."""

    def __init__(self, settings: WhatsappSettings, engine: Engine, clock: Clock) -> None:
        self.settings = settings
        self._engine = engine
        self._clock = clock

    def refusals(self, items: Sequence[Outbound]) -> dict[int, SendResult]:
        free = {item.recipient.contact_id for item in items if not item.extra.get("content_sid")}
        last: dict[int, datetime] = {}
        if free:
            with self._engine.connect() as conn:
                last = dict(
                    conn.execute(
                        select(Event.contact_id, func.max(Event.occurred_at))
                        .where(
                            Event.contact_id.in_(free),  # type: ignore[union-attr]
                            Event.channel == "whatsapp",
                            Event.type.in_(INBOUND_EVENTS),  # type: ignore[attr-defined]
                        )
                        .group_by(Event.contact_id)
                    ).all()
                )
        now = self._clock.now()
        refused = {}
        for index, item in enumerate(items):
            seen = last.get(item.recipient.contact_id)
            if seen is not None and seen.tzinfo is None:  # SQLite gives naive UTC back
                seen = seen.replace(tzinfo=now.tzinfo)
            result = session_refusal(item, seen, now, self.settings)
            if result is not None:
                refused[index] = result
        return refused


class WhatsappTransport(TwilioTransport):
    """:class:`~network_anim.channels.sms.TwilioTransport` with WhatsApp's addresses,
    approved templates and session rule (PACED, not resend-safe, like SMS)."""

    def __init__(
        self,
        settings: WhatsappSettings,
        definition: ChannelDefinition,
        *,
        engine: Engine,
        clock: Clock,
        **kwargs: object,
    ) -> None:
        super().__init__(settings, definition, **kwargs)  # type: ignore[arg-type]
        self.whatsapp = settings
        self._session = _Session(settings, engine, clock)

    async def refusals(self, items: Sequence[Outbound]) -> dict[int, SendResult]:
        return self._session.refusals(items)

    def params(self, item: Outbound) -> dict[str, str]:
        return build_whatsapp_params(item, self.whatsapp, status_callback_url=self._callback)

    def accepted(self, item: Outbound, sid: str, status: str) -> SendResult:
        kind = (
            "template " + str(item.extra["content_sid"])
            if item.extra.get("content_sid")
            else "session text"
        )
        return SendResult.sent(
            provider_id=sid, detail=f"{status}, {kind}", cost=self.definition.estimate_cost()
        )


class FileWhatsappTransport(FileSmsTransport):
    """Writes ``whatsapp.jsonl`` (what would have been sent), under the same session rule."""

    FILE_NAME = "whatsapp.jsonl"

    def __init__(
        self,
        path_or_dir: Path,
        definition: ChannelDefinition,
        settings: WhatsappSettings,
        *,
        engine: Engine,
        clock: Clock,
    ) -> None:
        super().__init__(path_or_dir, definition, clock=clock)
        self._session = _Session(settings, engine, clock)

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        refused = self._session.refusals(items)
        rest = [item for i, item in enumerate(items) if i not in refused]
        written = iter(await super().send_batch(rest))
        return [refused[i] if i in refused else next(written) for i in range(len(items))]


def _build(ctx: BuildContext) -> WhatsappTransport | FileWhatsappTransport:
    cfg = ctx.config.channels.whatsapp
    if cfg.transport == "file":
        return FileWhatsappTransport(
            ctx.resolve(cfg.directory), ctx.definition, cfg, engine=ctx.engine, clock=ctx.clock
        )
    return WhatsappTransport(
        cfg,
        ctx.definition,
        engine=ctx.engine,
        clock=ctx.clock,
        account_sid=secret_from_env(cfg.account_sid_env, purpose="Twilio account SID"),
        auth_token=secret_from_env(cfg.auth_token_env, purpose="Twilio auth token"),
        status_callback_url=ctx.callback_url("/hooks/twilio/status"),
        concurrency=cfg.concurrency or ctx.definition.rate.concurrency,
    )


def _resend_safe(ctx: BuildContext) -> bool:
    file = ctx.config.channels.whatsapp.transport == "file"
    return (FileWhatsappTransport if file else WhatsappTransport).resend_safe


ADAPTER = Adapter(build=_build, resend_safe=_resend_safe)

__all__ = [
    "ADAPTER",
    "FileWhatsappTransport",
    "WhatsappTransport",
    "address",
    "build_whatsapp_params",
    "session_refusal",
]
