"""The web app: tracking links, one-click unsubscribe, Twilio webhooks (FastAPI).

``network_anim.web.app.create_app(app)`` builds the ASGI application; ``netanim serve``
runs it with uvicorn. What every route shares lives here: the :class:`WebContext` kept in
``fastapi_app.state.netanim`` and the ``Web`` dependency that hands it to a route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from network_anim.app import App
from network_anim.web.events import EventWriter
from network_anim.web.scanners import DEFAULT_MIN_CLICK_SECONDS


@dataclass
class WebContext:
    app: App
    events: EventWriter
    min_click_seconds: float = DEFAULT_MIN_CLICK_SECONDS


def web(request: Request) -> WebContext:
    context: WebContext = request.app.state.netanim
    return context


Web = Annotated[WebContext, Depends(web)]

__all__ = ["Web", "WebContext", "web"]
