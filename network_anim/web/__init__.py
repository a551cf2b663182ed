"""The web app: tracking links, one-click unsubscribe, Twilio webhooks (FastAPI).

``network_anim.web.app.create_app(app)`` builds the ASGI application; ``netanim serve``
runs it with uvicorn. What every route shares lives here: the :class:`WebContext` kept in
``fastapi_app.state.netanim`` and the ``Web`` dependency that hands it to a route.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from network_anim.app import App
from network_anim.web.events import EventWriter
from network_anim.web.scanners import DEFAULT_MIN_CLICK_SECONDS


class ForgedBudget:
    """At most ``per_minute`` forged-token events a minute: a flood of made-up tokens is
    logged, not allowed to fill the events table."""

    def __init__(self, per_minute: int = 120) -> None:
        self.per_minute = per_minute
        self._window: tuple[int, int] = (0, 0)
        self._lock = threading.Lock()

    def allow(self, now: datetime) -> bool:
        minute = int(now.timestamp() // 60)
        with self._lock:
            window, count = self._window
            if window != minute:
                window, count = minute, 0
            self._window = (window, count + 1)
            return count < self.per_minute


@dataclass
class WebContext:
    app: App
    events: EventWriter
    min_click_seconds: float = DEFAULT_MIN_CLICK_SECONDS
    forged_budget: ForgedBudget = field(default_factory=ForgedBudget)


def web(request: Request) -> WebContext:
    context: WebContext = request.app.state.netanim
    return context


Web = Annotated[WebContext, Depends(web)]

__all__ = ["ForgedBudget", "Web", "WebContext", "web"]
