from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from network_anim.cli.broadcast_cmd import _parse_vars
from network_anim.cli.common import app_options, console, open_app
from network_anim.cli.message_options import message_options
from network_anim.domain import Level, MessageKind, Urgency


@click.command()
@click.option("--template", default=None, help="Template name under templates/<channel>/.")
@click.option(
    "--urgency",
    type=click.Choice([u.value for u in Urgency]),
    default=None,
    help="With --template: the urgency the router picks the channels from.",
)
@message_options("With --template: ")
@click.option(
    "--audience",
    default="all",
    show_default=True,
    help="With --template: the audience --sample draws from.",
)
@click.option("--campaign", "campaign_key", default=None, help="A campaign id of the config.")
@click.option(
    "--step", default=None, help="With --campaign or --challenge: the step (default: the first)."
)
@click.option("--challenge", "challenge_key", default=None, help="A challenge id of the config.")
@click.option(
    "--message",
    "challenge_message",
    default=None,
    help="With --challenge: launch, reminder, invitation, digest, last-week, results, "
    "welcome or milestone.",
)
@click.option(
    "--contact",
    "contacts",
    multiple=True,
    metavar="ID",
    help="A contact's id from the network CSV (repeatable).",
)
@click.option(
    "--sample",
    type=click.IntRange(1, 100),
    default=None,
    help="N contacts of the audience, each routing profile first.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("preview"),
    show_default=True,
    help="Folder of the files, one sub-folder per contact.",
)
@click.option(
    "--send-to-me",
    "send_to",
    default=None,
    metavar="NAME",
    help="Also send the email and SMS, marked [TEST], to this [[team]] member.",
)
@click.option("--json", "as_json", is_flag=True, help="The files and routing per contact as JSON.")
@app_options
def preview(
    template: str | None,
    urgency: str | None,
    variables: tuple[str, ...],
    kind: str,
    level: str,
    audience: str,
    campaign_key: str | None,
    step: str | None,
    challenge_key: str | None,
    challenge_message: str | None,
    contacts: tuple[str, ...],
    sample: int | None,
    out: Path,
    send_to: str | None,
    as_json: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Show a message as chosen contacts would get it, on every channel the router picks.

    For each contact, a folder under --out: email.html and email.eml, sms.txt (segments,
    encoding, cost), letter.pdf, post.html (the portal page), and routing.txt (the
    router's reasons and the order of the channels, fallbacks included). Planned by the
    real planner in a transaction that is rolled back: the database keeps nothing, and
    the preview's links are signed with a throwaway key (the portal refuses them and
    records no click). --send-to-me sends the email and SMS through the configured
    transports, marked [TEST], with no outbox row: never in reports, caps or
    idempotency keys.

    \b
    Examples:
      netanim preview --template welcome --urgency info --contact C0002 --contact C0004
      netanim preview --campaign restock --step alert --sample 5 --out var/preview
      netanim preview --challenge pbx-2027 --message reminder --contact C0001 --json
      netanim preview --template stock-alert --urgency urgent --var product="Routeur X200" \\
          --var quantity=40 --contact C0003 --send-to-me anne
    """
    from network_anim.preview.files import LINKS_NOTE, write_preview
    from network_anim.preview.render import preview as make_preview
    from network_anim.preview.send import send_to_member
    from network_anim.preview.sources import team_member

    app = open_app(config_path, db_url)
    source = _source(
        app,
        template=template,
        urgency=urgency,
        variables=variables,
        kind=kind,
        level=level,
        audience=audience,
        campaign_key=campaign_key,
        step=step,
        challenge_key=challenge_key,
        challenge_message=challenge_message,
    )
    if bool(contacts) == (sample is not None):
        raise click.UsageError("name the contacts with --contact ID, or ask for --sample N")
    member = team_member(app, send_to) if send_to else None  # a wrong name changes nothing
    made = make_preview(app, source, contacts=contacts, sample=sample)
    written = write_preview(app, made, out)
    sent = send_to_member(app, member, made.contacts) if member else []
    if as_json:
        summary = {
            "source": source.label,
            "out": str(out),
            "contacts": [w.summary() for w in written],
            "sent": [dataclasses.asdict(report) for report in sent],
        }
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    console.print(f"Preview of {source.label}", markup=False, highlight=False)
    for item in written:
        routing = item.preview.routing
        channels = routing.explain() if routing.unreachable else ", ".join(routing.channels)
        console.print(
            f"  {item.preview.external_id} {item.preview.name}: {channels}\n"
            f"    {item.folder}/ ({', '.join(item.files)})",
            markup=False,
            highlight=False,
        )
        for note in item.notes:
            console.print(f"    note: {note}", markup=False, highlight=False)
    for report in sent:
        console.print(
            f"  test {report.channel} of {report.contact} to {report.to}: {report.outcome}"
            + (f" ({report.detail})" if report.detail else ""),
            markup=False,
            highlight=False,
        )
    console.print(LINKS_NOTE, markup=False, highlight=False)


def _source(
    app: Any,
    *,
    template: str | None,
    urgency: str | None,
    variables: tuple[str, ...],
    kind: str,
    level: str,
    audience: str,
    campaign_key: str | None,
    step: str | None,
    challenge_key: str | None,
    challenge_message: str | None,
) -> Any:
    """The one source the options name (a usage error otherwise)."""
    from network_anim.preview.sources import campaign_source, challenge_source, template_source

    named = [
        flag
        for flag, given in (
            ("--template", template),
            ("--campaign", campaign_key),
            ("--challenge", challenge_key),
        )
        if given
    ]
    if len(named) != 1:
        raise click.UsageError(
            "preview one thing: --template NAME --urgency U, --campaign ID [--step NAME], "
            "or --challenge ID --message NAME"
        )
    if template:
        if urgency is None:
            raise click.UsageError("--template needs --urgency")
        return template_source(
            app,
            template=template,
            urgency=Urgency(urgency),
            kind=MessageKind(kind),
            level=Level(level),
            variables=_parse_vars(variables),
            audience=audience,
        )
    if campaign_key:
        return campaign_source(app, campaign_key, step)
    if not challenge_message:
        raise click.UsageError("--challenge needs --message (launch, reminder, results...)")
    return challenge_source(app, challenge_key or "", challenge_message, step)
