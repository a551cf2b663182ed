"""SMART objectives with milestones: read from the challenge's CSV, stored, and each
subject's final target."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.config.settings import ChallengeConfig
from network_anim.db.models import Objective
from network_anim.errors import UserError

_OBJECTIVE_COLUMNS = ("challenge_id", "scope", "subject", "due", "target")


def read_objectives(app: App, challenge: ChallengeConfig) -> list[tuple[str, str, date, float]]:
    """(scope, subject, due, target) rows of the challenge's objectives file, or the
    line-by-line problems as a UserError."""
    assert challenge.objectives is not None
    path = app.loaded.resolve(challenge.objectives)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the objectives file ({exc.strerror})") from None
    reader = csv.reader(io.StringIO(text), delimiter=";" if ";" in text.splitlines()[0] else ",")
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header) != _OBJECTIVE_COLUMNS:
        raise UserError(f"{path} line 1: the header must be {';'.join(_OBJECTIVE_COLUMNS)}")
    rows, problems = [], []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(_OBJECTIVE_COLUMNS):
            problems.append(
                f"line {number}: {len(cells)} cells, expected {len(_OBJECTIVE_COLUMNS)}"
            )
            continue
        challenge_id, scope, subject, due, target = (c.strip() for c in cells)
        if challenge_id != challenge.id:
            continue
        try:
            due_day = date.fromisoformat(due)
            value = float(target)
        except ValueError:
            problems.append(f"line {number}: due must be a date (2027-02-28) and target a number")
            continue
        if scope not in ("participant", "team"):
            problems.append(f"line {number}: scope {scope!r} is not participant or team")
        elif not challenge.start <= due_day <= challenge.end:
            problems.append(
                f"line {number}: due {due_day} is outside the challenge ({challenge.start} to {challenge.end})"
            )
        elif value <= 0:
            problems.append(f"line {number}: target must be positive")
        else:
            rows.append((scope, subject, due_day, value))
    if problems:
        raise UserError(f"{path}: {len(problems)} bad line(s); no objective changed", problems)
    return rows


def store_objectives(session: Session, app: App, challenge: ChallengeConfig) -> None:
    zone = ZoneInfo(app.config.engine.timezone)
    wanted = {
        (scope, subject, datetime.combine(due, time(23, 59), tzinfo=zone)): target
        for scope, subject, due, target in read_objectives(app, challenge)
    }
    existing = {
        (o.scope, o.subject, o.due): o
        for o in session.scalars(select(Objective).where(Objective.challenge_key == challenge.id))
    }
    for (scope, subject, due), target in wanted.items():
        row = existing.get((scope, subject, due.astimezone(ZoneInfo("UTC"))))
        if row is None:
            session.add(
                Objective(
                    challenge_key=challenge.id, scope=scope, subject=subject, due=due, target=target
                )
            )
        else:
            row.target = target


def final_targets(session: Session, challenge_key: str, scope: str) -> dict[str, float]:
    """Each subject's last milestone: the objective of the whole challenge."""
    targets: dict[str, tuple[datetime, float]] = {}
    for objective in session.scalars(
        select(Objective).where(Objective.challenge_key == challenge_key, Objective.scope == scope)
    ):
        if objective.subject not in targets or objective.due > targets[objective.subject][0]:
            targets[objective.subject] = (objective.due, objective.target)
    return {subject: target for subject, (_, target) in targets.items()}
