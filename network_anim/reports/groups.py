"""The --by dimension: which group a delivery's contact falls in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from network_anim.db import models
from network_anim.reports.model import ALL_GROUPS, UNSCORED

RFM_SCHEME = "rfm"
NO_ROLE = "(no role)"


def company_segments(session: Session) -> dict[int, str]:
    """Each company's latest RFM segment; companies never scored are absent (the caller
    names them "unscored"). Empty while the segment table does not exist."""
    table: Any = getattr(models, "CompanySegment", None)
    if table is None:
        return {}
    rows = session.execute(
        select(table.company_id, table.segment)
        .where(table.scheme == RFM_SCHEME)
        .order_by(table.company_id, table.computed_at)
    ).all()
    # Ordered by time, so the last row written for a company wins.
    return {company_id: segment for company_id, segment in rows}


def segment_of(segments: dict[int, str], company_id: int) -> str:
    return segments.get(company_id, UNSCORED)


def group_label(
    by: str,
    *,
    segments: dict[int, str],
    company_id: int,
    company_external_id: str,
    company_name: str,
    role: str,
) -> str:
    if by == "segment":
        return segment_of(segments, company_id)
    if by == "company":
        return f"{company_external_id} {company_name}"
    if by == "role":
        return role or NO_ROLE
    return ALL_GROUPS
