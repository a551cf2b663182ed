"""``netanim bounces``: email bounces and complaints read from files."""

from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, err_console, open_app


@click.group()
def bounces() -> None:
    """Email bounces and complaints (DSNs, ARF reports, auto-replies).

    The daemon reads them from the bounce mailbox ([bounces.mailbox]) and `netanim serve`
    from providers' webhooks; this command reads saved messages.
    """


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.eml")) if path.is_dir() else [path])
    return files


@bounces.command("process")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@app_options
def process(
    paths: tuple[Path, ...], as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """Read bounce messages saved as files (FILE.eml, or every *.eml of a folder) and apply
    them: a hard bounce marks the delivery bounced, the address invalid and plans the
    fallback; a complaint opts the contact out of marketing email.

    Files that are no report, or broken, are named and skipped; the others are applied
    together in one transaction. The exit status is 1 when a file was unreadable. Reading
    the same report again changes nothing.

    The project's examples/bounce-user-unknown.eml is a Postfix DSN for Julien Garnier's
    address in examples/network.csv.

    \b
    Example, in a project made by `netanim new` (FILE.eml or a folder of them):
      netanim init
      netanim import network examples/network.csv
      netanim bounces process examples/bounce-user-unknown.eml
      netanim bounces process --json examples
    """
    import json

    from network_anim.bounces.intake import apply_files, read_files

    app = open_app(config_path, db_url)
    readings = read_files(app, _expand(paths))
    stats = apply_files(app, readings)
    unreadable = [r for r in readings if r.unreadable is not None]
    if as_json:
        files = [
            {
                "file": str(r.path),
                "unreadable": r.unreadable,
                "note": r.note,
                "events": [
                    {
                        "kind": e.kind.value,
                        "recipient": e.ref.recipient,
                        "status": e.status,
                        "key": e.key,
                    }
                    for e in r.events
                ],
            }
            for r in readings
        ]
        click.echo(json.dumps({"files": files, "applied": stats.to_json()}))
    else:
        for r in readings:
            if r.unreadable is None:
                console.print(f"{r.path}: {r.note}", highlight=False, markup=False)
        applied = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.applied.items()))
        console.print(
            f"{len(readings) - len(unreadable)} report(s) read, "
            f"{applied or 'nothing new'} applied, {stats.duplicates} already known",
            highlight=False,
        )
        if stats.fallbacks:
            moved = ", ".join(f"{n} to {ch}" for ch, n in sorted(stats.fallbacks.items()))
            console.print(f"fallbacks planned: {moved}", highlight=False)
    for r in unreadable:
        err_console.print(
            f"{r.path}: unreadable, skipped: {r.unreadable}", highlight=False, markup=False
        )
    if unreadable:
        click.get_current_context().exit(1)
