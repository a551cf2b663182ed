from __future__ import annotations

import logging
import signal
from pathlib import Path

import click

from network_anim.cli.common import app_options
from network_anim.cli.logs import configure_logging, log_options

log = logging.getLogger("netanim.serve")


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="NETANIM_SERVE_HOST",
    help="Address to listen on [env NETANIM_SERVE_HOST].",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    envvar="NETANIM_SERVE_PORT",
    help="Port to listen on [env NETANIM_SERVE_PORT].",
)
@log_options
@app_options
def serve(
    host: str,
    port: int,
    log_level: str,
    log_format: str,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Serve the partner portal, tracking links, unsubscribe and Twilio webhooks over HTTP.

    Routes: /portal/ (the partner portal, magic-link login), /o/TOKEN.gif (open pixel), /c/TOKEN (click), /p/TOKEN (post link),
    /u/TOKEN (unsubscribe: GET shows a page, POST unsubscribes), /hooks/twilio/status,
    /hooks/twilio/inbound, /healthz (200 when the database answers and its schema is
    current, 503 otherwise); the OpenAPI document is at /openapi.json. SIGTERM or Ctrl-C:
    finish the requests in flight, exit 0.

    Put it behind a reverse proxy for TLS: links and Twilio signatures use the public
    URL of [engine] base_url, whatever scheme and port the proxy talks to this process.

    \b
    Example:
      netanim serve
      netanim serve --port 8080 --log-format json
    """
    import uvicorn

    from network_anim.cli.common import open_app
    from network_anim.web.app import create_app

    configure_logging(log_level, log_format)
    app = open_app(config_path, db_url)
    stopped_by: list[str] = []
    try:
        log.info("serving on http://%s:%d (public URL %s)", host, port, app.config.engine.base_url)
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again
        # for the handler it found: this one notes it instead of dying with 143.
        previous = {
            sig: signal.signal(
                sig, lambda number, _frame: stopped_by.append(signal.Signals(number).name)
            )
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            uvicorn.run(create_app(app), host=host, port=port, log_level=log_level, log_config=None)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        app.close()
    log.info("stopped%s", f" ({stopped_by[0]})" if stopped_by else "")
