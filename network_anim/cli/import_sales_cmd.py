from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app


@click.command("sales")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--challenge",
    "challenge",
    metavar="ID",
    default=None,
    help="Refuse sales dated outside this challenge's start..end (days in [engine] timezone).",
)
@click.option("--dry-run", is_flag=True, help="Validate the file, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--actor",
    default="import",
    show_default=True,
    metavar="NAME",
    help="Who declares these sales (recorded on each sale as declared_by).",
)
@app_options
def import_sales_cmd(
    csv_file: Path,
    challenge: str | None,
    dry_run: bool,
    as_json: bool,
    actor: str,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Import sales declarations from CSV_FILE: one row per invoice line.

    Columns: invoice_ref, contact_id (the seller), sku, quantity, amount (EUR excl. VAT,
    line total), sold_at (ISO date or date-time; without offset in the [engine] timezone),
    optional company_id. ';' or ',' separated, UTF-8. An invoice_ref is unique per company.
    Sales dated within a challenge with approval = true are pending until a manager
    approves them; the others are approved at once. A sale dated later than now is
    refused: the sample's sales (pbx-2027, January to March 2027) import once the last
    of them, 2027-03-24, has passed.

    \b
    Example:
      netanim import sales examples/sales.csv --challenge pbx-2027
    """
    import json
    from dataclasses import asdict

    from network_anim.challenges.sales_csv import read_sales_csv
    from network_anim.challenges.sales_import import (
        import_sales,
        outside_every_challenge,
        sale_status,
        sales_context,
    )
    from network_anim.errors import UserError

    if not actor.strip() or len(actor) > 80:
        raise UserError(f"--actor {actor!r}: give a name of 1 to 80 characters")
    app = open_app(config_path, db_url)
    config = app.config
    timezone = config.engine.timezone
    records = read_sales_csv(csv_file, sales_context(app, challenge=challenge))
    outside = sum(outside_every_challenge(config.challenges, r.sold_at, timezone) for r in records)
    if dry_run:
        pending = sum(
            sale_status(config.challenges, r.sold_at, timezone) == "pending" for r in records
        )
        summary = {"sales": len(records), "pending": pending, "approved": len(records) - pending}
        if as_json:
            click.echo(json.dumps({"dry_run": True, **summary, "outside_challenges": outside}))
        else:
            console.print(
                f"{csv_file}: valid — {summary['sales']} sales, {pending} would wait for "
                f"approval, {summary['approved']} approved (dry run: nothing written)"
            )
        return
    result = import_sales(app, records, source=csv_file.name, declared_by=actor)
    if as_json:
        click.echo(json.dumps({**asdict(result), "outside_challenges": outside}))
        return
    console.print(
        f"{csv_file}: {result.inserted} sales imported — {result.pending} pending approval, "
        f"{result.approved} approved; products {result.products_created} created, "
        f"{result.products_updated} updated"
    )
    if outside:
        console.print(f"note: {outside} sale(s) dated outside every challenge period")
