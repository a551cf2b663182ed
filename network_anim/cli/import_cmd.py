from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from network_anim.cli.common import app_for, app_options, console, default_config
from network_anim.cli.import_attendance_cmd import import_attendance_cmd
from network_anim.cli.import_sales_cmd import import_sales_cmd

if TYPE_CHECKING:  # imported where used: `netanim --help` loads none of them
    from network_anim.config.settings import LoadedConfig
    from network_anim.network.column_mapping import ColumnMapping
    from network_anim.network.network_csv import ImportDefaults, NetworkFile, NetworkStream


@click.group("import")
def import_group() -> None:
    """Import data files. All or nothing: a file with any bad line changes nothing."""


@import_group.command("network")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--dry-run", is_flag=True, help="Validate the file, show its first rows, write nothing."
)
@click.option(
    "--rows",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="With --dry-run: how many rows to show as they would be imported.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--map",
    "map_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Read the file's columns through this column mapping (TOML); instead of "
    "[import.mapping] of the config.",
)
@click.option(
    "--no-map", is_flag=True, help="Read a network CSV as is, even if the config has a mapping."
)
@click.option(
    "--suggest-map",
    is_flag=True,
    help="Print a column mapping proposed from the file's header and first rows; import nothing.",
)
@app_options
def import_network_cmd(
    csv_file: Path,
    dry_run: bool,
    rows: int,
    as_json: bool,
    map_file: Path | None,
    no_map: bool,
    suggest_map: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Import companies and their contacts from CSV_FILE (upsert by external id).

    One row per contact; company columns repeat on each of its contacts. Columns are
    documented in docs/network-csv.md; ';' or ',' separated, UTF-8. A file with other
    columns (a partner's export) imports through a column mapping: --suggest-map
    proposes one from its header, --map FILE reads it (or [import.mapping] in the
    config); error messages name the file's own lines and columns.

    \b
    Example:
      netanim import network examples/network.csv
      netanim import network examples/partner-export.csv --suggest-map > partner-map.toml
      netanim import network examples/partner-export.csv --map partner-map.toml --dry-run
      netanim import network examples/partner-export.csv --map partner-map.toml
    """
    import json
    from contextlib import nullcontext
    from dataclasses import asdict

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from network_anim.network.network_csv import ImportDefaults

    if suggest_map:
        options = (("--map", map_file), ("--no-map", no_map), ("--dry-run", dry_run))
        extra = [name for name, given in (*options, ("--json", as_json)) if given]
        if extra:
            raise click.UsageError(f"--suggest-map imports nothing: drop {', '.join(extra)}")
        click.echo(_suggested(csv_file), nl=False)
        return
    if map_file is not None and no_map:
        raise click.UsageError("--map and --no-map contradict each other: give one")
    # Checked before the database is opened: a bad mapping is reported on its own.
    mapping = _map_file(map_file)
    from network_anim.config.loading import load_config

    # The file's check starts (on the other core) before the database and the engine's
    # modules are opened: only the config is read first, for the defaults.
    loaded = load_config(default_config(config_path))
    engine_cfg = loaded.config.engine
    defaults = ImportDefaults(
        region=engine_cfg.default_region, timezone=engine_cfg.timezone, language=engine_cfg.language
    )
    if mapping is None and not no_map:
        mapping = _config_mapping(loaded)
    show = not as_json and console.is_terminal
    network: NetworkFile | NetworkStream
    if mapping is None and not dry_run:
        # Checked while it is written; a problem found late rolls the import back.
        network = _stream(csv_file, defaults)
        contacts = network.rows_estimate
        app = app_for(loaded, db_url)
    else:
        app = app_for(loaded, db_url)
        with console.status(f"reading {csv_file}", spinner="dots") if show else nullcontext():
            whole, sources = _read(csv_file, mapping, defaults)
        if dry_run:
            _show_dry_run(csv_file, whole, sources, rows=rows, as_json=as_json, mapping=mapping)
            return
        network, contacts = whole, len(whole.contacts)
    from network_anim.network.importer import import_network

    with Progress(
        TextColumn("Importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not show,
    ) as bar:
        task = bar.add_task("contacts", total=contacts)

        def advance(stage: str, done: int) -> None:
            if stage == "contacts":
                bar.update(task, advance=done)

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


def _stream(csv_file: Path, defaults: ImportDefaults) -> NetworkStream:
    from network_anim.network.csv_input import read_text
    from network_anim.network.network_csv import NetworkStream

    return NetworkStream(read_text(csv_file), source=str(csv_file), defaults=defaults)


def _suggested(csv_file: Path) -> str:
    from network_anim.network.csv_input import read_text
    from network_anim.network.mapping_suggestion import as_toml, suggest_mapping

    suggestion = suggest_mapping(read_text(csv_file), source=str(csv_file))
    return as_toml(suggestion, source=csv_file.name)


def _map_file(map_file: Path | None) -> ColumnMapping | None:
    from network_anim.network.column_mapping import load_mapping

    return None if map_file is None else load_mapping(map_file)


def _config_mapping(loaded: LoadedConfig) -> ColumnMapping | None:
    """``[import.mapping]`` of the config, checked, or None."""
    from network_anim.network.column_mapping import checked_mapping

    spec = loaded.config.imports.mapping
    if spec is None:
        return None
    origin = str(loaded.path) if loaded.path else "the config"
    return checked_mapping(spec, origin, "import.mapping")


def _read(
    csv_file: Path, mapping: ColumnMapping | None, defaults: ImportDefaults
) -> tuple[NetworkFile, dict[str, str]]:
    """The network file, and what gives each field when a mapping is used (else {})."""
    from network_anim.network.column_mapping import read_mapped_network_csv
    from network_anim.network.network_csv import read_network_csv

    if mapping is None:
        # A network CSV goes through the parser alone, exactly as before mappings.
        return read_network_csv(csv_file, defaults), {}
    mapped = read_mapped_network_csv(csv_file, mapping, defaults)
    return mapped.network, mapped.sources


def _show_dry_run(
    csv_file: Path,
    network: NetworkFile,
    sources: dict[str, str],
    *,
    rows: int,
    as_json: bool,
    mapping: ColumnMapping | None,
) -> None:
    import json

    from rich.table import Table
    from rich.text import Text

    from network_anim.network.import_preview import first_rows

    summary = {"companies": len(network.companies), "contacts": len(network.contacts)}
    shown = first_rows(network, rows)
    if as_json:
        mapped = {"mapping": mapping.origin if mapping else None, "sources": sources}
        click.echo(json.dumps({"dry_run": True, **summary, **mapped, "rows": shown}))
        return
    through = f" through {mapping.origin}" if mapping else ""
    console.print(
        f"{csv_file}: valid — {summary['companies']} companies, "
        f"{summary['contacts']} contacts (dry run: nothing written){through}"
    )
    if not shown:
        return
    table = Table(title=f"the first {len(shown)} row(s) as they would be imported")
    table.add_column("field")
    if sources:
        table.add_column("from")
    for row in shown:
        table.add_column(f"line {row['line']}")
    for field in [name for name in shown[0] if name != "line"]:
        given = [sources.get(field, "(default)")] if sources else []
        # Text, not markup: a cell reading "[SARL]" is shown as written.
        table.add_row(field, *(Text(str(cell)) for cell in [*given, *(r[field] for r in shown)]))
    console.print(table)


import_group.add_command(import_sales_cmd)
import_group.add_command(import_attendance_cmd)
