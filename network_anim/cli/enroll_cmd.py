from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app


@click.command()
@click.argument("campaign")
@click.option("--contact", "contacts", multiple=True, help="Contact external id (repeatable).")
@click.option("--audience", default=None, help="Every contact of this audience.")
@app_options
def enroll(
    campaign: str,
    contacts: tuple[str, ...],
    audience: str | None,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Put contacts into a nurturing sequence by hand (an active one is left as it is).

    \b
    Example:
      netanim enroll onboarding --contact C0002 --contact C0007
    """
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.campaigns.sequences import enrol
    from network_anim.db.models import Contact
    from network_anim.errors import UserError
    from network_anim.network.audience import audience_query

    app = open_app(config_path, db_url)
    target = app.config.campaign(campaign)
    if target is None or target.kind != "nurture":
        known = ", ".join(c.id for c in app.config.campaigns if c.kind == "nurture") or "none"
        raise UserError(
            f"{campaign!r} is not a nurture campaign of the config", [f"sequences: {known}"]
        )
    if not contacts and audience is None:
        raise UserError("say whom to enrol: --contact ID (repeatable) or --audience NAME")
    with Session(app.engine) as session, session.begin():
        rows: list[Contact] = []
        if contacts:
            found = {
                c.external_id: c
                for c in session.scalars(select(Contact).where(Contact.external_id.in_(contacts)))  # type: ignore[attr-defined]
            }
            missing = [c for c in contacts if c not in found]
            if missing:
                raise UserError("unknown contact id(s); nothing enrolled", [", ".join(missing)])
            rows.extend(found.values())
        if audience is not None:
            query = audience_query(
                app.config.audience(audience), now=app.clock.now(), min_level=target.level
            )
            rows.extend(row[0] for row in session.execute(query))
        rows = list({c.id: c for c in rows}.values())
        count = enrol(app, session, target, rows, trigger="manual")
    console.print(f"{count} contact(s) enrolled in {campaign} ({len(rows) - count} already active)")
