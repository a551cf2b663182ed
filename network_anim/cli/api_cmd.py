from __future__ import annotations

import json
from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app


@click.group()
def api() -> None:
    """The read API under /api/v1 of `netanim serve` (docs/api.md): its bearer tokens.

    \b
    Example:
      netanim api token create crm --scope contacts --scope events
    """


@api.group()
def token() -> None:
    """Tokens of the read API: one per system that reads (a CRM, a BI tool).

    \b
    Example:
      netanim api token list
    """


@token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="What it may read (repeatable): contacts, campaigns, deliveries, events, "
    "challenges, points, or all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the token as JSON.")
@app_options
def create_cmd(
    name: str, scopes: tuple[str, ...], as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """Make a read-only token NAME and print it, once: only its hash is kept.

    The system sends it as `Authorization: Bearer TOKEN`; every /api/v1 path needs its
    scope (a wrong one answers 403).

    \b
    Examples:
      netanim api token create crm --scope contacts --scope events
      netanim api token create bi --scope all --json
    """
    from network_anim.web.api_tokens import create_token

    app = open_app(config_path, db_url)
    secret = create_token(app.engine, name, list(scopes), now=app.clock.now())
    if as_json:
        click.echo(json.dumps({"name": name, "token": secret}))
        return
    console.print(f"token {name}: {secret}", markup=False, soft_wrap=True)
    console.print("Keep it now: it is not stored and cannot be shown again.")


@token.command("revoke")
@click.argument("name")
@app_options
def revoke_cmd(name: str, config_path: Path | None, db_url: str | None) -> None:
    """Revoke the token NAME: the API refuses it from now on (401).

    \b
    Example:
      netanim api token create old-crm --scope contacts && netanim api token revoke old-crm
    """
    from network_anim.web.api_tokens import revoke_token

    app = open_app(config_path, db_url)
    revoke_token(app.engine, name, now=app.clock.now())
    console.print(f"token {name} revoked")


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the tokens as JSON.")
@app_options
def list_cmd(as_json: bool, config_path: Path | None, db_url: str | None) -> None:
    """Every token: its scopes, when it was made, last used and revoked (never the token).

    \b
    Example:
      netanim api token list
    """
    from rich.table import Table

    from network_anim.web.api_tokens import list_tokens

    app = open_app(config_path, db_url)
    tokens = list_tokens(app.engine)

    def moment(value: object) -> str | None:
        return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

    if as_json:
        rows = [
            {
                "name": t.name,
                "scopes": list(t.scopes),
                "created_at": moment(t.created_at),
                "last_used_at": moment(t.last_used_at),
                "revoked_at": moment(t.revoked_at),
            }
            for t in tokens
        ]
        click.echo(json.dumps(rows))
        return
    table = Table(title=f"API tokens ({len(tokens)})")
    for column in ("name", "scopes", "created", "last used", "revoked"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            t.name,
            ", ".join(t.scopes),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    console.print(table)
