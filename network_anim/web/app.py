"""``create_app(app)``: the FastAPI application of one :class:`network_anim.app.App`.

Nothing is built at import time: the engine, signer and config come from the ``App``
given, so tests, ``netanim serve`` and a daemon embedding the web app each bring theirs.
The lifespan starts the batch event writer and, on shutdown, writes what it still holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from network_anim.app import App
from network_anim.web import WebContext
from network_anim.web.events import EventWriter
from network_anim.web.scanners import DEFAULT_MIN_CLICK_SECONDS

OPENAPI_TAGS = [
    {
        "name": "tracking",
        "description": "Signed links carried by messages: open pixel, click redirect, post "
        "links, one-click unsubscribe (RFC 8058).",
    },
    {
        "name": "operations",
        "description": "Health check for load balancers and service managers.",
    },
    {
        "name": "api",
        "description": "The read API for other systems (CRM, BI): contacts, campaigns and "
        "their funnel, deliveries and events since a cursor, standings, points. A bearer "
        "token per system, read-only, scoped: `netanim api token create NAME --scope ...`.",
    },
    {
        "name": "webhooks",
        "description": "Twilio status callbacks and inbound SMS, checked with "
        "X-Twilio-Signature against the public URL of [engine] base_url.",
    },
]


def _version() -> str:
    try:
        return version("network-anim")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def create_app(
    app: App,
    *,
    events: EventWriter | None = None,
    min_click_seconds: float = DEFAULT_MIN_CLICK_SECONDS,
) -> FastAPI:
    """The web app over ``app``. ``events`` replaces the default writer (flush every 0.5 s
    or 200 rows); ``min_click_seconds``: clicks sooner after delivery count as machines."""
    from network_anim.web import api, bounce_hooks, health, tracking, twilio_hooks
    from network_anim.web.portal import declarations as portal_declarations
    from network_anim.web.portal import pages as portal_pages
    from network_anim.web.portal import rsvp as portal_rsvp

    writer = events or EventWriter(app.engine)

    @asynccontextmanager
    async def lifespan(fastapi_app: FastAPI) -> AsyncIterator[None]:
        await writer.start()
        try:
            yield
        finally:
            await writer.stop()

    fastapi_app = FastAPI(
        title="network-anim",
        summary="Tracking links, one-click unsubscribe, Twilio webhooks and the read API of network-anim.",
        version=_version(),
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
    )
    fastapi_app.state.netanim = WebContext(
        app=app, events=writer, min_click_seconds=min_click_seconds
    )
    fastapi_app.include_router(tracking.router)
    fastapi_app.include_router(twilio_hooks.router)
    fastapi_app.include_router(bounce_hooks.router)
    fastapi_app.include_router(portal_pages.router)
    fastapi_app.include_router(portal_rsvp.router)
    fastapi_app.include_router(portal_declarations.router)
    fastapi_app.include_router(api.router)
    fastapi_app.include_router(health.router)
    return fastapi_app


__all__ = ["create_app"]
