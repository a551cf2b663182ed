from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app
from network_anim.cli.import_sales_cmd import import_sales_cmd


@click.group("import")
def import_group() -> None:
    """Import data files. All or nothing: a file with any bad line changes nothing."""


@import_group.command("network")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate the file, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@app_options
def import_network_cmd(
    csv_file: Path, dry_run: bool, as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """Import companies and their contacts from CSV_FILE (upsert by external id).

    One row per contact; company columns repeat on each of its contacts. Columns are
    documented in docs/network-csv.md; ';' or ',' separated, UTF-8.

    \b
    Example:
      netanim import network examples/network.csv
    """
    import json
    from contextlib import nullcontext
    from dataclasses import asdict

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from network_anim.network.importer import import_network
    from network_anim.network.network_csv import ImportDefaults, read_network_csv

    app = open_app(config_path, db_url)
    engine_cfg = app.config.engine
    defaults = ImportDefaults(
        region=engine_cfg.default_region, timezone=engine_cfg.timezone, language=engine_cfg.language
    )
    show = not as_json and console.is_terminal
    with console.status(f"reading {csv_file}", spinner="dots") if show else nullcontext():
        network = read_network_csv(csv_file, defaults)
    if dry_run:
        summary = {"companies": len(network.companies), "contacts": len(network.contacts)}
        if as_json:
            click.echo(json.dumps({"dry_run": True, **summary}))
        else:
            console.print(
                f"{csv_file}: valid — {summary['companies']} companies, "
                f"{summary['contacts']} contacts (dry run: nothing written)"
            )
        return
    with Progress(
        TextColumn("Importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not show,
    ) as bar:
        task = bar.add_task("companies", total=len(network.companies) + 2 * len(network.contacts))

        def advance(stage: str, done: int) -> None:
            bar.update(task, advance=done, description=stage)

        result = import_network(
            app.engine,
            network,
            now=app.clock.now(),
            source=f"import:{csv_file.name}",
            progress=advance,
        )
    if as_json:
        click.echo(json.dumps(asdict(result)))
        return
    console.print(
        f"{csv_file}: companies {result.companies_created} created, {result.companies_updated} updated; "
        f"contacts {result.contacts_created} created, {result.contacts_updated} updated; "
        f"{result.consents_set} consent records set"
    )


import_group.add_command(import_sales_cmd)
