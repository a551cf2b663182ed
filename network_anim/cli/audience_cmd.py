from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from network_anim.cli.common import app_options, console, open_app

_LEVEL = click.option(
    "--level",
    type=click.Choice(["seller", "correspondent", "director"]),
    default="seller",
    show_default=True,
    help="Lowest level counted (a campaign's level): contacts below it are left out.",
)


@click.group()
def audience() -> None:
    """Audiences of the config: who is in, how many, and why (or why not)."""


@audience.command("list")
@_LEVEL
@click.option("--json", "as_json", is_flag=True, help="Print the audiences as JSON.")
@app_options
def list_cmd(level: str, as_json: bool, config_path: Path | None, db_url: str | None) -> None:
    """Every audience of the config with its size and the channels that reach it.

    \b
    Example:
      netanim audience list
    """
    app = open_app(config_path, db_url)
    rows = [
        {"audience": a.name, "description": a.description, **_counts(app, a, level)}
        for a in app.config.audiences
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    _print_counts(rows, title=f"Audiences ({len(rows)}), level {level} and above")


@audience.command("count")
@click.argument("name")
@_LEVEL
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@app_options
def count_cmd(
    name: str, level: str, as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """How many contacts the audience NAME holds now, and how many each channel reaches.

    The count is the planner's own query: a campaign on this audience (at this level)
    plans for exactly these contacts, before consents and channel rules.

    \b
    Examples:
      netanim audience count sellers
      netanim audience count win-back --level director --json
    """
    app = open_app(config_path, db_url)
    row = {"audience": name, **_counts(app, app.config.audience(name), level)}
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
        return
    _print_counts([row], title=f"Audience {name}, level {level} and above")


@audience.command("explain")
@click.argument("name")
@click.option("--contact", "contact_id", required=True, help="The contact's external id.")
@_LEVEL
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@app_options
def explain_cmd(
    name: str,
    contact_id: str,
    level: str,
    as_json: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Whether contact --contact is in the audience NAME, every test's answer for them,
    and the condition that keeps them in or drops them.

    \b
    Examples:
      netanim audience explain sellers --contact C0002
      netanim audience explain sellers-to-text --contact C0005 --json
    """
    from sqlmodel import Session

    from network_anim.domain import Level
    from network_anim.network.audience_explain import explain

    app = open_app(config_path, db_url)
    target = app.config.audience(name)
    with Session(app.engine) as session:
        found = explain(session, target, contact_id, now=app.clock.now(), min_level=Level(level))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "audience": name,
                    "contact": contact_id,
                    "member": found.member,
                    "deciding": [v.as_json() for v in found.deciding],
                    "tests": [v.as_json() for v in found.tests],
                },
                ensure_ascii=False,
            )
        )
        return
    verdict = "[green]in[/]" if found.member else "[red]not in[/]"
    console.print(f"contact {contact_id} is {verdict} audience {name} (level {level} and above)")
    for test in found.tests:
        _print_verdict(test, depth=1)
    if found.member:
        for kept in found.deciding:
            console.print(f"kept by {_named(kept)}", markup=False)
        if not found.deciding:
            console.print("kept: every test passes")
    else:
        (dropped,) = found.deciding
        console.print(f"dropped by {_named(dropped)}", markup=False)


def _counts(app: Any, target: Any, level: str) -> dict[str, int]:
    from sqlmodel import Session

    from network_anim.domain import Level
    from network_anim.network.audience_explain import audience_counts

    with Session(app.engine) as session:
        return audience_counts(session, target, now=app.clock.now(), min_level=Level(level))


def _print_counts(rows: list[dict[str, Any]], *, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("audience")
    for column in ("contacts", "email", "mobile", "web", "postal"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["audience"],
            f"{row['contacts']:,}",
            *(f"{row[f'reach_{c}']:,}" for c in ("email", "mobile", "web", "postal")),
        )
    console.print(table)
    console.print(
        "email: an address not marked invalid, not a 'none' kind; mobile: a number; "
        "web: portal access; postal: street, postcode and city. Consents are the router's."
    )


def _print_verdict(verdict: Any, *, depth: int) -> None:
    mark = "[green]✓[/]" if verdict.passed else "[red]✗[/]"
    console.print(f"{'  ' * depth}{mark} ", end="")
    console.print(_named(verdict), markup=False)
    for part in verdict.parts:
        _print_verdict(part, depth=depth + 1)


def _named(verdict: Any) -> str:
    """A filter's label says its key ("levels: seller"); a condition under where gets its
    key path ("where.all[1]: opened in the last 30 days")."""
    return f"{verdict.path}: {verdict.label}" if verdict.path.startswith("where") else verdict.label
