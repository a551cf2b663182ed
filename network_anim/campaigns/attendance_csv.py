"""The attendance file of an event (``netanim import attendance``): ``contact_id;attended``,
one row per contact, read all or nothing with every bad line named."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Contact
from network_anim.errors import UserError
from network_anim.network.csv_input import data_rows, formula_problem, open_rows, read_text

COLUMNS = ("contact_id", "attended")
_YES = frozenset({"oui", "yes", "1", "true", "o", "x"})
_NO = frozenset({"non", "no", "0", "false", "n", ""})


def read_attendance_csv(app: App, path: Path) -> dict[int, bool]:
    """Contact id -> came, from the file; a bad line is a :class:`UserError` naming it."""
    source = str(path)
    reader, header = open_rows(
        read_text(path),
        source=source,
        known=COLUMNS,
        required=COLUMNS,
        hint="the columns are contact_id;attended",
    )
    problems: list[str] = []
    found: dict[str, tuple[int, bool]] = {}
    for start, cells in data_rows(reader, header, lambda n, p: problems.append(f"line {n}: {p}")):
        formula = next(filter(None, (formula_problem(k, v) for k, v in cells.items())), None)
        contact, came = cells["contact_id"].strip(), cells["attended"].strip().casefold()
        if formula:
            problems.append(f"line {start}: {formula}")
        elif not contact:
            problems.append(f"line {start}: contact_id is empty")
        elif came not in _YES | _NO:
            problems.append(
                f"line {start}: attended {cells['attended']!r}: write oui or non (yes/no, 1/0)"
            )
        elif contact in found:
            problems.append(f"line {start}: {contact} is also on line {found[contact][0]}")
        else:
            found[contact] = (start, came in _YES)
    with Session(app.engine) as session:
        ids = dict(
            session.execute(
                select(Contact.external_id, Contact.id).where(
                    Contact.external_id.in_(list(found))  # type: ignore[attr-defined]
                )
            ).all()
        )
    problems += [
        f"line {at}: unknown contact {contact!r} (import the network first)"
        for contact, (at, _) in found.items()
        if contact not in ids
    ]
    if problems:
        problems.sort(key=lambda p: int(p.split(":")[0].removeprefix("line ")))
        raise UserError(f"{source}: {len(problems)} bad line(s); nothing was imported", problems)
    if not found:
        raise UserError(f"{source}: no rows under the header")
    return {ids[contact]: came for contact, (_, came) in found.items()}
