"""Why a contact is in an audience or not: every test's answer for that contact, read in
one query, and the test that decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlmodel import Session

from network_anim.config.audience_conditions import (
    AllOf,
    AnyOf,
    Condition,
    Not,
    Reachable,
    describe,
)
from network_anim.config.settings import Audience
from network_anim.db.models import Company, Contact
from network_anim.domain import Level
from network_anim.errors import UserError
from network_anim.network.audience import audience_query, audience_tests
from network_anim.network.conditions import compile_condition


@dataclass
class Verdict:
    path: str  # "levels", "where.all[1].any[0]"
    label: str
    passed: bool
    group: str = ""  # "all", "any" or "not" for a group; "" for a test
    parts: list[Verdict] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "condition": self.label,
            "passed": self.passed,
            **({"parts": [p.as_json() for p in self.parts]} if self.parts else {}),
        }


@dataclass(frozen=True)
class Explanation:
    member: bool
    tests: list[Verdict]
    # Not a member: the test that keeps the contact out (the first failing one, narrowed
    # down the groups). A member: the alternative of each "any" that lets them in.
    deciding: list[Verdict]


_Node = tuple[Verdict, ColumnElement[bool]]


def explain(
    session: Session,
    audience: Audience,
    contact_external_id: str,
    *,
    now: datetime,
    min_level: Level = Level.SELLER,
) -> Explanation:
    nodes: list[_Node] = []
    tests: list[Verdict] = []
    for label, clause in audience_tests(audience, now=now, min_level=min_level):
        if label == "where" and audience.condition is not None:
            tests.append(_walk(audience.condition, "where", now, nodes))
        else:
            verdict = Verdict(label.split(":")[0], label, False)
            nodes.append((verdict, clause))
            tests.append(verdict)
    answers = session.execute(
        select(*(case((clause, 1), else_=0) for _, clause in nodes))
        .select_from(Contact)
        .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
        .where(Contact.external_id == contact_external_id)
    ).first()
    if answers is None:
        raise UserError(
            f"no contact {contact_external_id!r}",
            ["give a contact's external id, as in the network file's contact_id column"],
        )
    for (verdict, _), answer in zip(nodes, answers, strict=True):
        verdict.passed = bool(answer)
    member = all(t.passed for t in tests)
    if member:
        deciding = [v for t in tests for v in _kept_by(t)]
    else:
        deciding = [_dropped_by(next(t for t in tests if not t.passed))]
    return Explanation(member, tests, deciding)


def _walk(condition: Condition, path: str, now: datetime, nodes: list[_Node]) -> Verdict:
    """The verdict tree of ``condition``, each node's SQL added to ``nodes``."""
    verdict = Verdict(path, describe(condition), False)
    nodes.append((verdict, compile_condition(condition, now=now)))
    if isinstance(condition, AllOf | AnyOf):
        verdict.group = "all" if isinstance(condition, AllOf) else "any"
        verdict.parts = [
            _walk(part, f"{path}.{verdict.group}[{i}]", now, nodes)
            for i, part in enumerate(condition.parts)
        ]
    elif isinstance(condition, Not):
        verdict.group = "not"
        verdict.parts = [_walk(condition.part, f"{path}.not", now, nodes)]
    return verdict


def _dropped_by(verdict: Verdict) -> Verdict:
    """The narrowest failing test under a failing one: an "all" fails by its first
    failing part; an "any" (none passed) and a "not" (its part passed) are the reason
    themselves."""
    if verdict.group == "all":
        return _dropped_by(next(p for p in verdict.parts if not p.passed))
    return verdict


def _kept_by(verdict: Verdict) -> list[Verdict]:
    """For a member: the passing alternative of every "any" on the way."""
    if verdict.group == "any":
        kept = next(p for p in verdict.parts if p.passed)
        return [kept, *_kept_by(kept)]
    if verdict.group == "all":
        return [v for p in verdict.parts for v in _kept_by(p)]
    return []


REACH = ("email", "mobile", "web", "postal")


def audience_counts(
    session: Session, audience: Audience, *, now: datetime, min_level: Level = Level.SELLER
) -> dict[str, int]:
    """The audience's size and how many of them each channel can reach, in one query
    (the same query the planner streams)."""
    columns = [func.count()]
    for channel in REACH:
        reach = compile_condition(Reachable(channel), now=now)
        columns.append(func.coalesce(func.sum(case((reach, 1), else_=0)), 0))
    query = audience_query(audience, now=now, min_level=min_level)
    row = session.execute(query.with_only_columns(*columns).order_by(None)).one()
    return {
        "contacts": int(row[0]),
        **{f"reach_{c}": int(v) for c, v in zip(REACH, row[1:], strict=True)},
    }
