"""Providers' bounce and complaint webhooks: ``POST /hooks/bounces/ses|postmark|sendgrid``.

Each request is checked with its provider's documented signing (bounces/providers), read
into feedback events and applied (bounces/apply, idempotent per event key: a provider's
retry changes nothing). A bad signature or wrong credentials: 403 (401 for Postmark's
credentials), nothing read. A webhook whose secret is not configured refuses everything
(403) and logs which variable to set. A body that is not the provider's format: 400.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from network_anim.bounces.apply import apply_feedback
from network_anim.bounces.providers import postmark, sendgrid, ses
from network_anim.bounces.providers.common import ForgedRequest, WebhookResult
from network_anim.bounces.unreadable import UnreadableReport
from network_anim.web import Web, WebContext

log = logging.getLogger(__name__)

router = APIRouter(prefix="/hooks/bounces", tags=["webhooks"])

# Larger than any provider's batch (SendGrid posts up to a few thousand events).
MAX_BODY = 5 * 1024 * 1024

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Read and applied (or nothing to apply): counts and a note."},
    400: {"description": "Not the provider's format."},
    403: {"description": "Bad signature, unknown topic, or the webhook is not configured."},
    413: {"description": "Body too large."},
}


class CertificateCache:
    """SNS signing certificates by URL: fetched once per process, not per notification."""

    def __init__(self, fetch: Callable[[str], bytes] = ses.fetch_https) -> None:
        self.fetch_url = fetch
        self.known: dict[str, bytes] = {}

    def fetch(self, url: str) -> bytes:
        if url not in self.known:
            self.known[url] = self.fetch_url(url)
        return self.known[url]


def _certificates(request: Request) -> CertificateCache:
    """The app's cache; tests put one with their own fetcher in ``state.sns_certificates``."""
    state = request.app.state
    if getattr(state, "sns_certificates", None) is None:
        state.sns_certificates = CertificateCache()
    cache: CertificateCache = state.sns_certificates
    return cache


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(status_code=413, detail="body too large")
    return body


def _secret(name: str, provider: str) -> str:
    value = os.environ.get(name)
    if not value:
        log.error("%s webhook refused: environment variable %s is not set", provider, name)
        raise HTTPException(status_code=403, detail=f"the {provider} webhook is not configured")
    return value


async def _apply(ctx: WebContext, provider: str, read: Callable[[], WebhookResult]) -> JSONResponse:
    try:
        result = await run_in_threadpool(read)
    except ForgedRequest as exc:
        log.warning("%s webhook refused: %s", provider, exc.reason)
        raise HTTPException(status_code=exc.status, detail=exc.reason) from exc
    except UnreadableReport as exc:
        log.warning("%s webhook: unreadable body: %s", provider, exc.reason)
        raise HTTPException(status_code=400, detail=exc.reason) from exc
    stats = await run_in_threadpool(apply_feedback, ctx.app, result.events)
    return JSONResponse({"note": result.note, **stats.to_json()})


@router.post(
    "/ses",
    summary="Amazon SES feedback through SNS",
    description="An SNS HTTPS subscription of the SES feedback topic: bounces, complaints "
    "(deliveries ignored). The SNS signature is checked (SignatureVersion 1 and 2, the "
    "certificate from sns.<region>.amazonaws.com only), the topic must be in [bounces] "
    "ses_topic_arns; a SubscriptionConfirmation is confirmed.",
    responses=_RESPONSES,
)
async def ses_hook(request: Request, ctx: Web) -> JSONResponse:
    body = await _body(request)
    settings = ctx.app.config.bounces
    cache = _certificates(request)
    return await _apply(
        ctx,
        "SES",
        lambda: ses.parse_sns(
            body,
            topic_arns=tuple(settings.ses_topic_arns),
            verp_local_part=settings.verp_local_part,
            fetch=cache.fetch,
            confirm=cache.fetch_url,
        ),
    )


@router.post(
    "/postmark",
    summary="Postmark bounce, spam complaint and subscription change webhook",
    description="Authenticated as Postmark documents it: HTTP Basic credentials in the "
    "webhook URL, or a custom X-Netanim-Webhook-Token header, matching the variable "
    "named by [bounces] postmark_token_env.",
    responses={**_RESPONSES, 401: {"description": "Missing or wrong credentials."}},
)
async def postmark_hook(request: Request, ctx: Web) -> JSONResponse:
    body = await _body(request)
    secret = _secret(ctx.app.config.bounces.postmark_token_env, "Postmark")
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await _apply(
        ctx, "Postmark", lambda: postmark.parse_postmark(body, headers, secret=secret)
    )


@router.post(
    "/sendgrid",
    summary="SendGrid Event Webhook",
    description="Signed events (ECDSA over X-Twilio-Email-Event-Webhook-Timestamp and the "
    "body, checked with the public key in the variable named by [bounces] "
    "sendgrid_public_key_env): bounce, blocked, dropped, spamreport, unsubscribe, "
    "group_unsubscribe; other events are ignored.",
    responses=_RESPONSES,
)
async def sendgrid_hook(request: Request, ctx: Web) -> JSONResponse:
    body = await _body(request)
    name = ctx.app.config.bounces.sendgrid_public_key_env
    try:
        key = sendgrid.load_public_key(_secret(name, "SendGrid"))
    except ValueError as exc:
        log.error("SendGrid webhook refused: %s holds %s", name, exc)
        raise HTTPException(
            status_code=403, detail="the SendGrid webhook is not configured"
        ) from exc
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await _apply(
        ctx, "SendGrid", lambda: sendgrid.parse_sendgrid(body, headers, public_key=key)
    )


__all__ = ["CertificateCache", "router"]
