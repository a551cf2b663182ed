from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app


@click.command("attendance")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--event", "event_id", required=True, metavar="ID", help="The event's id ([[events]])."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@app_options
def import_attendance_cmd(
    csv_file: Path, event_id: str, as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """Record who came to an event, from CSV_FILE: columns contact_id (the contact's id of
    the network file) and attended (oui/non, yes/no, 1/0). ';' or ',' separated, UTF-8.
    All or nothing: a bad line is named and nothing is written. Importing again updates
    the rows; a contact who came without answering the invitation is added. The
    report's RSVP funnel then counts them (netanim report --campaign ID).

    \b
    Example:
      netanim import attendance examples/attendance.csv --event salon-2027
    """
    import json

    from network_anim.campaigns.attendance_csv import read_attendance_csv
    from network_anim.campaigns.events import record_attendance

    app = open_app(config_path, db_url)
    event = app.config.event(event_id)
    attended = read_attendance_csv(app, csv_file)
    counts = record_attendance(app, event, attended)
    came = sum(attended.values())
    if as_json:
        click.echo(
            json.dumps({"event": event.id, "rows": len(attended), "attended": came, **counts})
        )
        return
    console.print(
        f"{csv_file}: attendance of {event.name} recorded — {came} of {len(attended)} came "
        f"({counts['updated']} answers updated, {counts['added']} added)"
    )
