from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@app_options
def serve(
    host: str, port: int, log_level: str, config_path: Path | None, db_url: str | None
) -> None:
    """Serve the partner portal, tracking links, unsubscribe and Twilio webhooks over HTTP.

    Routes: /portal/ (the partner portal, magic-link login), /o/TOKEN.gif (open pixel), /c/TOKEN (click), /p/TOKEN (post link),
    /u/TOKEN (unsubscribe: GET shows a page, POST unsubscribes), /hooks/twilio/status,
    /hooks/twilio/inbound; the OpenAPI document is at /openapi.json.

    Put it behind a reverse proxy for TLS: links and Twilio signatures use the public
    URL of [engine] base_url, whatever scheme and port the proxy talks to this process.

    \b
    Example:
      netanim serve -c config.example.toml
      netanim serve -c netanim.toml --host 0.0.0.0 --port 8080
    """
    import uvicorn

    from network_anim.cli.common import open_app
    from network_anim.web.app import create_app

    app = open_app(config_path, db_url)
    try:
        uvicorn.run(create_app(app), host=host, port=port, log_level=log_level)
    finally:
        app.close()
