"""Send what is due now with the configured transports (used by broadcast and dispatch)."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Awaitable, Callable

from network_anim.app import App
from network_anim.outbox.dispatcher import Dispatcher, DispatchStats
from network_anim.outbox.rate_limit import RateLimits
from network_anim.outbox.transports import ConfiguredTransports, configured_rates

# How a caller above the outbox drives a drain: network_anim.planning.fallbacks'
# drain_with_fallbacks, which plans the fallbacks of what failed and drains again. The
# outbox cannot import the planner (a lower layer), so the loop is handed in.
Drive = Callable[[App, Callable[[], Awaitable[DispatchStats]]], Awaitable[DispatchStats]]


def worker_id() -> str:
    """Host, process and a random part: two daemons in one process stay distinct."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def send_due(
    app: App,
    *,
    message_id: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    drive: Drive | None = None,
) -> DispatchStats:
    """Drain the rows due now, with the transports of the config. Like a daemon, it holds
    a liveness lock while it sends: a daemon running beside it leaves its rows alone, and
    takes them back at once if it dies. With ``drive`` (the planner's
    ``drain_with_fallbacks``), failures are followed by their fallbacks in the same run;
    without it, the rows failed for good stay marked for the next run that plans them."""
    from network_anim.outbox.liveness import liveness_for

    transports = ConfiguredTransports(app)
    worker = worker_id()
    liveness = liveness_for(app.engine, worker)
    liveness.start()
    try:
        async with Dispatcher(
            app,
            transports,
            worker_id=worker,
            resend_safe=transports.resend_safe,
            rate_limits=RateLimits(configured_rates(app)),
            dead_owners=liveness.dead,
        ) as dispatcher:

            def drain() -> Awaitable[DispatchStats]:
                return dispatcher.drain(message_id=message_id, on_progress=on_progress)

            return await (drive(app, drain) if drive is not None else drain())
    finally:
        liveness.stop()
