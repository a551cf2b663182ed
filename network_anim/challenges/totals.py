"""Running challenge totals: what the leaderboards read instead of aggregating the ledger.

Each ranked ledger entry (earn, bonus, adjust carrying a challenge key) adds its points to
its participant's rows of ``challengetotal`` and its company's rows of ``companytotal``:
the whole challenge (bucket ``""``), its calendar month and its ISO week, cut in the
[engine] time zone (bucket: the local date the period starts). The upsert runs in the
entry's own transaction and adds to the stored value in the database (``points = points
+ excluded.points``), so concurrent approvals for one participant never lose an update.

The ledger stays the source of truth. ``rebuild`` recomputes the totals from it in the
database (``INSERT ... SELECT ... GROUP BY``, bucket by bucket); ``differences`` compares,
one bucket in memory at a time (``netanim challenge verify``). A challenge's totals are kept only
once they are built (``challenge.totals_zone`` set, to the zone the buckets were cut in):
``ensure_built`` builds them on first use and rebuilds them when the zone changes. A
rebuild takes the challenge row ``FOR UPDATE`` and every entry ``FOR SHARE`` on
PostgreSQL, so no entry lands between a rebuild's read and its write.

Example::

    from network_anim.challenges.totals import differences, ensure_built
    with Session(app.engine) as session, session.begin():
        ensure_built(session, "pbx-2027", app.config.engine.timezone)
        assert not differences(session, "pbx-2027", app.config.engine.timezone)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, case, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.db.models import (
    Challenge,
    ChallengeTotal,
    CompanyTotal,
    Contact,
    LedgerEntry,
    Participant,
)
from network_anim.domain import RANKED_KINDS

PERIODS: tuple[str, ...] = ("whole", "month", "week")
SALES_KINDS: tuple[str, ...] = ("earn", "adjust")  # bonuses do not count toward objectives

_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]
_contact_totals = ChallengeTotal.__table__  # type: ignore[attr-defined]
_company_totals = CompanyTotal.__table__  # type: ignore[attr-defined]
_participant = Participant.__table__  # type: ignore[attr-defined]
_contact = Contact.__table__  # type: ignore[attr-defined]
_challenge = Challenge.__table__  # type: ignore[attr-defined]

# (period, bucket, contact or company id) -> [points, sales] or [points, sales, members]
Key = tuple[str, str, int]
_VALUES = ("points", "sales", "members")


# -- buckets --------------------------------------------------------------------------------


def period_start(zone: ZoneInfo, period: str, at: datetime) -> datetime:
    """The local midnight the month or ISO week of ``at`` starts, in ``zone``."""
    local = at.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if period == "month":
        return midnight.replace(day=1)
    if period == "week":
        return midnight - timedelta(days=local.weekday())
    raise ValueError(f"period must be month or week, not {period!r}")


def period_bounds(zone: ZoneInfo, period: str, at: datetime) -> tuple[datetime, datetime]:
    """The UTC interval [start, end) of the month or ISO week of ``at`` in ``zone``."""
    start = period_start(zone, period, at)
    if period == "month":
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        end = start + timedelta(days=7)
    # Aware arithmetic on the same zone keeps wall-clock midnights across DST changes.
    return start.astimezone(UTC), end.astimezone(UTC)


def bucket(zone: ZoneInfo, period: str, at: datetime) -> str:
    """The bucket of ``at`` for a period: "" for the whole challenge, else a local date."""
    if period == "whole":
        return ""
    return period_start(zone, period, at).date().isoformat()


def _buckets(zone: ZoneInfo, at: datetime) -> list[tuple[str, str]]:
    return [(period, bucket(zone, period, at)) for period in PERIODS]


def _buckets_between(zone: ZoneInfo, first: datetime, last: datetime) -> Iterator[tuple[str, str]]:
    """Every month and week bucket from the one of ``first`` to the one of ``last``."""
    end = last.astimezone(zone).date()
    for period in ("month", "week"):
        day = period_start(zone, period, first).date()
        while day <= end:
            yield period, day.isoformat()
            day = (
                (day + timedelta(days=32)).replace(day=1)
                if period == "month"
                else day + timedelta(days=7)
            )


def _bucket_range(zone: ZoneInfo, period: str, key: str) -> tuple[datetime, datetime]:
    start = datetime.combine(date.fromisoformat(key), datetime.min.time(), tzinfo=zone)
    return period_bounds(zone, period, start)


# -- writing --------------------------------------------------------------------------------


def record_entry(session: Session, entry: LedgerEntry) -> None:
    """Add a new ledger entry to its challenge's totals, in the entry's transaction.

    Nothing to do for entries no leaderboard counts, for non-participants (their points
    join the totals when they register) and for challenges whose totals are not built
    yet (the build will read this entry from the ledger)."""
    if entry.challenge_key is None or entry.kind not in RANKED_KINDS:
        return
    found = session.execute(
        select(_challenge.c.totals_zone, _contact.c.company_id)
        .select_from(_challenge)
        .join(_participant, _participant.c.challenge_key == _challenge.c.key)
        .join(_contact, _contact.c.id == _participant.c.contact_id)
        .where(
            _challenge.c.key == entry.challenge_key, _participant.c.contact_id == entry.contact_id
        )
        # Shared with other entries, exclusive with a rebuild (see the module docstring).
        .with_for_update(read=True, of=_challenge)
    ).first()
    if found is None or found.totals_zone is None:
        return
    sales = entry.points if entry.kind in SALES_KINDS else 0
    zone = ZoneInfo(found.totals_zone)
    rows = _buckets(zone, entry.created_at)
    _add(
        session,
        _contact_totals,
        "contact_id",
        entry.challenge_key,
        rows,
        entry.contact_id,
        entry.points,
        sales,
    )
    _add(
        session,
        _company_totals,
        "company_id",
        entry.challenge_key,
        rows,
        found.company_id,
        entry.points,
        sales,
    )


def record_registrations(session: Session, challenge_key: str, contact_ids: Iterable[int]) -> None:
    """New participants join their company's count, with the points they already have."""
    ids = sorted(set(contact_ids))
    if not ids:
        return
    zone_name = session.scalar(
        select(_challenge.c.totals_zone)
        .where(_challenge.c.key == challenge_key)
        .with_for_update(read=True)
    )
    if zone_name is None:
        return
    zone = ZoneInfo(zone_name)
    company_of = dict(
        session.execute(
            select(_contact.c.id, _contact.c.company_id).where(_contact.c.id.in_(ids))
        ).all()
    )
    contacts: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for contact_id, kind, points, created_at in session.execute(
        select(_ledger.c.contact_id, _ledger.c.kind, _ledger.c.points, _ledger.c.created_at).where(
            *_ranked(challenge_key), _ledger.c.contact_id.in_(ids)
        )
    ):
        for period, key in _buckets(zone, created_at):
            values = contacts[(period, key, contact_id)]
            values[0] += points
            values[1] += points if kind in SALES_KINDS else 0
    companies = _company_rows(contacts, company_of, Counter(company_of[i] for i in ids))
    _upsert(session, _contact_totals, "contact_id", challenge_key, contacts)
    _upsert(session, _company_totals, "company_id", challenge_key, companies)


def _add(
    session: Session,
    table: Any,
    subject: str,
    challenge_key: str,
    rows: list[tuple[str, str]],
    subject_id: int,
    points: int,
    sales: int,
) -> None:
    values = {(period, key, subject_id): [points, sales] for period, key in rows}
    _upsert(session, table, subject, challenge_key, values)


def _upsert(
    session: Session, table: Any, subject: str, challenge_key: str, rows: Mapping[Key, list[int]]
) -> None:
    """Add ``rows`` to the stored totals: one ``INSERT ... ON CONFLICT DO UPDATE`` per batch."""
    if not rows:
        return
    names = _VALUES[: len(next(iter(rows.values())))]
    records = _records(challenge_key, subject, rows)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for start in range(0, len(records), 500):
        statement = dialect.insert(table).values(records[start : start + 500])
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["challenge_key", "period", "bucket", subject],
                set_={name: table.c[name] + statement.excluded[name] for name in names},
            )
        )


def _company_rows(
    contacts: Mapping[Key, list[int]], company_of: Mapping[int, int], members: Mapping[int, int]
) -> dict[Key, list[int]]:
    """Company totals from participants' ones; ``members`` on the whole-challenge row."""
    companies: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for company_id, count in members.items():
        companies[("whole", "", company_id)][2] += count
    for (period, key, contact_id), (points, sales) in contacts.items():
        values = companies[(period, key, company_of[contact_id])]
        values[0] += points
        values[1] += sales
    return companies


# -- building and checking ------------------------------------------------------------------


def _spans(session: Session, challenge_key: str, zone: ZoneInfo) -> list[tuple[str, str]]:
    """Every (period, bucket) the challenge's ranked entries fall in."""
    first, last = session.execute(
        select(func.min(_ledger.c.created_at), func.max(_ledger.c.created_at)).where(
            *_ranked(challenge_key)
        )
    ).one()
    if first is None:
        return []
    return [("whole", ""), *_buckets_between(zone, first, last)]


def _ranked(challenge_key: str) -> tuple[Any, ...]:
    return (_ledger.c.challenge_key == challenge_key, _ledger.c.kind.in_(RANKED_KINDS))


def _expected(challenge_key: str, zone: ZoneInfo, period: str, key: str) -> Any:
    """(contact_id, points, sales) of each participant in one bucket, as the ledger says:
    one ``GROUP BY`` in the database."""
    sales = func.sum(case((_ledger.c.kind.in_(SALES_KINDS), _ledger.c.points), else_=0))
    query = (
        select(
            _ledger.c.contact_id,
            func.sum(_ledger.c.points).label("points"),
            sales.label("sales"),
        )
        .join(
            _participant,
            (_participant.c.contact_id == _ledger.c.contact_id)
            & (_participant.c.challenge_key == challenge_key),
        )
        .where(*_ranked(challenge_key))
    )
    if period != "whole":
        start, end = _bucket_range(zone, period, key)
        query = query.where(_ledger.c.created_at >= start, _ledger.c.created_at < end)
    return query.group_by(_ledger.c.contact_id).subquery("expected")


def _company_of(session: Session, challenge_key: str) -> dict[int, int]:
    return dict(
        session.execute(  # type: ignore[arg-type]
            select(_participant.c.contact_id, _contact.c.company_id)
            .join(_contact, _contact.c.id == _participant.c.contact_id)
            .where(_participant.c.challenge_key == challenge_key)
        ).all()
    )


@dataclass(frozen=True, slots=True)
class Difference:
    """A stored total that is not what the ledger gives (``None``: no such row)."""

    table: str  # participant | company
    period: str
    bucket: str
    subject_id: int
    stored: tuple[int, ...] | None
    expected: tuple[int, ...] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "period": self.period,
            "bucket": self.bucket,
            "id": self.subject_id,
            "stored": self.stored,
            "expected": self.expected,
        }


def differences(session: Session, challenge_key: str, zone: str) -> list[Difference]:
    """Every total that differs from the ledger (empty: the totals are right).

    Bucket by bucket, so memory holds one bucket's participants (not the 1.3 million
    rows of a 100,000-participant challenge's whole history)."""
    local = ZoneInfo(zone)
    company_of = _company_of(session, challenge_key)
    members = Counter(company_of.values())
    buckets = set(_spans(session, challenge_key, local))
    for table in (_contact_totals, _company_totals):
        buckets |= set(
            session.execute(
                select(table.c.period, table.c.bucket)
                .where(table.c.challenge_key == challenge_key)
                .distinct()
            ).all()
        )
    if members:
        buckets.add(("whole", ""))
    found: dict[str, list[Difference]] = {"participant": [], "company": []}
    for period, key in sorted(buckets):
        expected_rows = _expected(challenge_key, local, period, key)
        expected = {
            (period, key, contact_id): [int(points), int(sold)]
            for contact_id, points, sold in session.execute(select(expected_rows))
        }
        companies = _company_rows(expected, company_of, members if period == "whole" else Counter())
        for name, table, subject, want in (
            ("participant", _contact_totals, "contact_id", expected),
            ("company", _company_totals, "company_id", companies),
        ):
            have = _stored(session, table, subject, challenge_key, period, key)
            found[name] += _compare(name, have, want)
    return found["participant"] + found["company"]


def _stored(
    session: Session, table: Any, subject: str, challenge_key: str, period: str, key: str
) -> dict[Key, list[int]]:
    columns = ["points", "sales"] + (["members"] if subject == "company_id" else [])
    query = select(table.c[subject], *(table.c[c] for c in columns)).where(
        table.c.challenge_key == challenge_key, table.c.period == period, table.c.bucket == key
    )
    return {(period, key, i): list(values) for i, *values in session.execute(query)}


def _compare(
    name: str, have: Mapping[Key, list[int]], want: Mapping[Key, list[int]]
) -> list[Difference]:
    found = []
    for key in sorted(have.keys() | want.keys()):
        a, b = have.get(key), want.get(key)
        if a != b and not (_is_zero(a) and _is_zero(b)):
            found.append(
                Difference(
                    name,
                    *key,
                    stored=None if a is None else tuple(a),
                    expected=None if b is None else tuple(b),
                )
            )
    return found


def _is_zero(values: list[int] | None) -> bool:
    # An entry and its exact reversal leave a row of zeros: the same as no row.
    return values is None or not any(values)


def rebuild(session: Session, challenge_key: str, zone: str) -> int:
    """Replace the challenge's totals with the ledger's, and mark them built in ``zone``.
    Returns the number of rows written. Written by ``INSERT ... SELECT`` in the database,
    bucket by bucket: no row comes to Python."""
    session.execute(
        select(_challenge.c.id).where(_challenge.c.key == challenge_key).with_for_update()
    )
    for table in (_contact_totals, _company_totals):
        session.execute(delete(table).where(table.c.challenge_key == challenge_key))
    local = ZoneInfo(zone)
    written = 0
    for period, key in _spans(session, challenge_key, local):
        expected = _expected(challenge_key, local, period, key)
        source = select(
            literal(challenge_key, String()),
            literal(period, String()),
            literal(key, String()),
            expected.c.contact_id,
            expected.c.points,
            expected.c.sales,
        )
        written += _insert_from(
            session,
            _contact_totals,
            ["challenge_key", "period", "bucket", "contact_id", "points", "sales"],
            source,
        )
    written += _rebuild_companies(session, challenge_key)
    session.execute(
        update(_challenge).where(_challenge.c.key == challenge_key).values(totals_zone=zone)
    )
    # Built in this zone now, and no longer in any other (a zone changed back and forth).
    seen = _SEEN_BUILT.setdefault(session.get_bind(), set())
    seen -= {pair for pair in seen if pair[0] == challenge_key}
    return written


def _rebuild_companies(session: Session, challenge_key: str) -> int:
    """Company rows from the participants' ones just written: the whole-challenge row of
    every company with participants (its member count), then each bucket's points."""
    members = (
        select(
            literal(challenge_key, String()),
            literal("whole", String()),
            literal("", String()),
            _contact.c.company_id,
            literal(0, Integer()),
            literal(0, Integer()),
            func.count(),
        )
        .select_from(_participant.join(_contact, _contact.c.id == _participant.c.contact_id))
        .where(_participant.c.challenge_key == challenge_key)
        .group_by(_contact.c.company_id)
    )
    columns = ["challenge_key", "period", "bucket", "company_id", "points", "sales", "members"]
    written = _insert_from(session, _company_totals, columns, members)
    by_company = (
        select(
            _contact_totals.c.period,
            _contact_totals.c.bucket,
            _contact.c.company_id,
            func.sum(_contact_totals.c.points).label("points"),
            func.sum(_contact_totals.c.sales).label("sales"),
        )
        .join(_contact, _contact.c.id == _contact_totals.c.contact_id)
        .where(_contact_totals.c.challenge_key == challenge_key)
        .group_by(_contact_totals.c.period, _contact_totals.c.bucket, _contact.c.company_id)
        .subquery("by_company")
    )
    buckets = select(
        literal(challenge_key, String()),
        by_company.c.period,
        by_company.c.bucket,
        by_company.c.company_id,
        by_company.c.points,
        by_company.c.sales,
        literal(0, Integer()),
    ).where(by_company.c.period != "whole")
    written += _insert_from(session, _company_totals, columns, buckets)

    def whole_sum(column: str) -> Any:
        # Correlated on the company row: its participants' rows, by index, never a scan.
        return (
            select(func.coalesce(func.sum(_contact_totals.c[column]), 0))
            .select_from(
                _contact_totals.join(_contact, _contact.c.id == _contact_totals.c.contact_id)
            )
            .where(
                _contact_totals.c.challenge_key == challenge_key,
                _contact_totals.c.period == "whole",
                _contact_totals.c.bucket == "",
                _contact.c.company_id == _company_totals.c.company_id,
            )
            .scalar_subquery()
        )

    session.execute(
        update(_company_totals)
        .where(
            _company_totals.c.challenge_key == challenge_key, _company_totals.c.period == "whole"
        )
        .values(points=whole_sum("points"), sales=whole_sum("sales"))
    )
    return written


def _insert_from(session: Session, table: Any, columns: list[str], source: Any) -> int:
    statement = (
        table.insert()
        .from_select(columns, source)
        .execution_options(preserve_rowcount=True)  # INSERT rowcount is opt-in since 2.0.28
    )
    return int(session.execute(statement).rowcount or 0)


def _records(
    challenge_key: str, subject: str, rows: Mapping[Key, list[int]]
) -> list[dict[str, Any]]:
    return [
        {
            "challenge_key": challenge_key,
            "period": period,
            "bucket": key,
            subject: subject_id,
            **dict(zip(_VALUES, values, strict=False)),  # members: company rows only
        }
        for (period, key, subject_id), values in rows.items()
    ]


# (challenge, zone) pairs seen built, per engine: once built, totals stay built (only a
# rebuild writes the zone, and it writes the zone it built in), so a leaderboard page
# need not ask again. A new zone in the config is a new pair: asked, and rebuilt.
_SEEN_BUILT: WeakKeyDictionary[Any, set[tuple[str, str]]] = WeakKeyDictionary()


def is_built(session: Session, challenge_key: str, zone: str) -> bool:
    """Whether the challenge's totals are kept, with buckets cut in ``zone``."""
    seen = _SEEN_BUILT.setdefault(session.get_bind(), set())
    if (challenge_key, zone) in seen:
        return True
    built = session.execute(
        select(_challenge.c.totals_zone).where(_challenge.c.key == challenge_key)
    ).first()
    if built is None or built.totals_zone != zone:
        return False
    seen.add((challenge_key, zone))
    return True


def ensure_built(session: Session, challenge_key: str, zone: str) -> bool:
    """Build the totals if they are not built in ``zone`` yet; True if it did. A challenge
    without its row (not synced from the config yet) has nowhere to mark them built, and no
    entry keeps them: they are rebuilt at each use until the row exists."""
    if is_built(session, challenge_key, zone):
        return False
    rebuild(session, challenge_key, zone)
    return True


__all__ = [
    "PERIODS",
    "Difference",
    "bucket",
    "differences",
    "ensure_built",
    "is_built",
    "period_bounds",
    "rebuild",
    "record_entry",
    "record_registrations",
]
