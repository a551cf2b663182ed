from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from network_anim.cli.challenge_verify_cmd import verify_cmd
from network_anim.cli.common import app_options, console, open_app
from network_anim.cli.leaderboard_cmd import leaderboard


@click.group()
def challenge() -> None:
    """Reseller challenges: registration, declarations to review, rankings, KPIs."""


def _contacts(session: Any, external_ids: tuple[str, ...]) -> list[Any]:
    from sqlalchemy import select

    from network_anim.db.models import Contact
    from network_anim.errors import UserError

    found = {
        c.external_id: c
        for c in session.scalars(select(Contact).where(Contact.external_id.in_(external_ids)))
    }
    missing = [c for c in external_ids if c not in found]
    if missing:
        raise UserError("unknown contact id(s); nothing changed", [", ".join(missing)])
    return [found[c] for c in external_ids]


@challenge.command("register")
@click.argument("challenge_id")
@click.option(
    "--contact", "contacts", multiple=True, required=True, help="Contact external id (repeatable)."
)
@app_options
def register_cmd(
    challenge_id: str, contacts: tuple[str, ...], config_path: Path | None, db_url: str | None
) -> None:
    """Register contacts to a challenge (a manager doing it for them).

    \b
    Example:
      netanim challenge register pbx-2027 --contact C0002
    """
    from sqlmodel import Session

    from network_anim.challenges.registration import register
    from network_anim.challenges.upkeep import sync_challenges

    app = open_app(config_path, db_url)
    definition = app.config.challenge(challenge_id)
    sync_challenges(app)
    with Session(app.engine) as session, session.begin():
        new = register(app, session, definition, _contacts(session, contacts), via="cli")
    console.print(
        f"{len(new)} registered to {challenge_id} ({len(contacts) - len(new)} already were)"
    )


@challenge.command("claims")
@click.argument("challenge_id")
@click.option(
    "--approve", "approve", multiple=True, type=int, help="Sale id to approve (repeatable)."
)
@click.option("--reject", "reject", multiple=True, type=int, help="Sale id to reject (repeatable).")
@click.option("--reason", default="", help="Why they are rejected: the participant sees it.")
@click.option("--actor", default="manager", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@app_options
def claims_cmd(
    challenge_id: str,
    approve: tuple[int, ...],
    reject: tuple[int, ...],
    reason: str,
    actor: str,
    as_json: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """List the sales declarations waiting for review, or approve / reject them.

    Both sources are listed: imported files (source "FILE:line N") and the portal (source
    "portal", with the path of the proof file the seller attached, if any). Points are
    credited on approval only; a rejection keeps its reason for the participant.

    \b
    Examples, once examples/sales.csv is imported (the list's id column: the sale ids):
      netanim challenge claims pbx-2027
      netanim challenge claims pbx-2027 --approve 12 --approve 13
      netanim challenge claims pbx-2027 --reject 14 --reason "invoice not found"
    """
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.challenges.awarding import PENDING, review
    from network_anim.compose.attachments import stored_path
    from network_anim.db.models import Contact, Sale, SaleProof

    app = open_app(config_path, db_url)
    app.config.challenge(challenge_id)
    if approve:
        result = review(app, list(approve), approve=True, actor=actor)
        console.print(f"{len(approve)} approved: {result.points} points credited")
    if reject:
        review(app, list(reject), approve=False, reason=reason, actor=actor)
        console.print(f"{len(reject)} rejected ({reason})")
    if approve or reject:
        return
    with Session(app.engine) as session:
        rows = session.execute(
            select(Sale, Contact.external_id, SaleProof)
            .join(Contact, Contact.id == Sale.contact_id)
            .join(SaleProof, SaleProof.sale_id == Sale.id, isouter=True)
            .where(Sale.status == PENDING)
            .order_by(Sale.sold_at)
        ).all()
    records = [
        {
            "id": s.id,
            "contact": ext,
            "invoice": s.invoice_ref,
            "sku": s.product,
            "quantity": s.quantity,
            "amount": s.amount,
            "sold_at": s.sold_at.isoformat(),
            "source": s.source,
            "proof": str(stored_path(app.data_dir, proof)) if proof else "",
            "proof_name": proof.filename if proof else "",
        }
        for s, ext, proof in rows
    ]
    if as_json:
        click.echo(json.dumps(records))
        return
    from rich.table import Table

    table = Table(title=f"Declarations waiting for review ({len(records)})")
    for column in ("id", "contact", "invoice", "sku", "quantity", "amount", "sold", "source"):
        table.add_column(column)
    table.add_column("proof", overflow="fold")
    for r in records:
        table.add_row(
            str(r["id"]),
            r["contact"],
            r["invoice"],
            r["sku"],
            f"{r['quantity']:g}",
            f"{r['amount']:.2f}",
            r["sold_at"][:10],
            r["source"],
            f"{r['proof_name']}: {r['proof']}" if r["proof"] else "",
        )
    console.print(table)


@challenge.command("recompute")
@click.argument("challenge_id")
@click.option("--actor", default="manager", show_default=True)
@app_options
def recompute_cmd(
    challenge_id: str, actor: str, config_path: Path | None, db_url: str | None
) -> None:
    """Re-score every approved sale after a rule change, by compensating ledger entries.

    \b
    Example:
      netanim challenge recompute pbx-2027
    """
    from network_anim.challenges.rescoring import recompute

    app = open_app(config_path, db_url)
    result = recompute(app, challenge_id, actor=actor)
    console.print(
        f"{result.changed_sales} sale(s) re-scored, {result.points_delta:+d} points in total"
    )


@challenge.command("rehearse")
@click.argument("challenge_id")
@click.option("--from", "start", required=True, help="First day of past sales (2026-09-01).")
@click.option("--to", "end", required=True, help="Last day (2026-12-31).")
@click.option("--json", "as_json", is_flag=True)
@app_options
def rehearse_cmd(
    challenge_id: str,
    start: str,
    end: str,
    as_json: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """The hidden run: score past sales under the challenge's rules, write nothing.

    Run it before launch to check the rules, and on the period before the challenge for
    the baseline of incremental sales.

    \b
    Example:
      netanim challenge rehearse pbx-2027 --from 2026-09-01 --to 2026-12-31
    """
    from datetime import date

    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.challenges.rescoring import dry_run
    from network_anim.db.models import Contact
    from network_anim.errors import UserError

    app = open_app(config_path, db_url)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise UserError("--from and --to are dates: 2026-09-01") from None
    points = dry_run(app, challenge_id, start=first, end=last)
    with Session(app.engine) as session:
        names = dict(session.execute(select(Contact.id, Contact.external_id)).all())
    ranked = sorted(((names[c], p) for c, p in points.items()), key=lambda item: -item[1])
    if as_json:
        click.echo(json.dumps({"total": sum(points.values()), "contacts": dict(ranked)}))
        return
    console.print(
        f"{len(ranked)} contacts would have scored {sum(points.values())} points; top 10:"
    )
    for external_id, value in ranked[:10]:
        console.print(f"  {external_id:10} {value:>8}")


@challenge.command("kpis")
@click.argument("challenge_id")
@click.option("--json", "as_json", is_flag=True)
@app_options
def kpis_cmd(
    challenge_id: str, as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """Companies registered / targeted, participants, attainment, points, sales vs baseline.

    \b
    Example:
      netanim challenge kpis pbx-2027 --json
    """
    from network_anim.challenges.kpis import kpis

    app = open_app(config_path, db_url)
    figures = kpis(app, challenge_id)
    if as_json:
        click.echo(json.dumps(figures))
        return
    console.print(
        f"{figures['companies_registered']} of {figures['companies_targeted']} companies registered; "
        f"{figures['participants']} participants, {figures['active_participants']} with sales; "
        f"{figures['points_issued']} points issued, {figures['points_redeemed']} redeemed; "
        f"sales {figures['sales_during']:.2f} EUR vs {figures['sales_baseline']:.2f} EUR before"
    )


challenge.add_command(leaderboard, "leaderboard")
challenge.add_command(verify_cmd, "verify")
