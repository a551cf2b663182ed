"""RFM segmentation: the pure scoring by hand-computed quintiles, storage on SQLite and
PostgreSQL, the `netanim segment` commands and audiences filtered on segments."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from network_anim.app import App
from network_anim.config.settings import Audience
from network_anim.db.models import Company, CompanySegment, Sale
from network_anim.network.audience import count_audience, iter_audience
from network_anim.network.rfm import (
    INACTIVE,
    SEGMENTS,
    Activity,
    fm_score,
    months_before,
    quintile_scores,
    score_companies,
    segment_for,
    summarize,
)
from network_anim.network.rfm_store import recompute_rfm, replace_scores, stale_rfm_warnings
from tests.conftest import WEDNESDAY_MORNING, write_config

# -- pure scoring --------------------------------------------------------------------------


def test_ten_distinct_values_give_two_per_quintile_whatever_the_order() -> None:
    values = [float(v) for v in range(10, 110, 10)]
    assert quintile_scores(values) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    shuffled = values[:]
    random.Random(7).shuffle(shuffled)
    expected = {v: s for v, s in zip(values, quintile_scores(values), strict=True)}
    assert quintile_scores(shuffled) == [expected[v] for v in shuffled]


def test_equal_values_get_the_same_score() -> None:
    # 1: (0 + 3/2) / 5 = 0.3 -> 2; 2: (3 + 1/2) / 5 = 0.7 -> 4; 3: (4 + 1/2) / 5 = 0.9 -> 5
    assert quintile_scores([1.0, 3.0, 1.0, 2.0, 1.0]) == [2, 5, 2, 4, 2]
    assert quintile_scores([7.0, 7.0, 7.0]) == [3, 3, 3]


@pytest.mark.parametrize(
    ("values", "scores"),
    [([5.0], [3]), ([1.0, 2.0], [2, 4]), ([1.0, 2.0, 3.0], [1, 3, 5])],
)
def test_small_networks_score_around_the_middle(values: list[float], scores: list[int]) -> None:
    assert quintile_scores(values) == scores


def test_fm_is_the_mean_rounded_up_and_the_grid_corners() -> None:
    assert [fm_score(1, 2), fm_score(3, 3), fm_score(4, 5), fm_score(5, 1)] == [2, 3, 5, 3]
    assert segment_for(5, 5) == "champions"
    assert segment_for(5, 1) == "new"
    assert segment_for(1, 5) == "cant_lose"
    assert segment_for(1, 1) == "lost"
    assert segment_for(3, 3) == "need_attention"
    grid = {segment_for(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert grid == set(SEGMENTS) - {INACTIVE}
    with pytest.raises(ValueError):
        segment_for(0, 3)


def _active(company_id: int, days: int, count: int, amount: float) -> Activity:
    return Activity(company_id, recency_days=days, frequency=count, monetary=amount)


def test_five_companies_by_hand() -> None:
    activities = [
        _active(1, 5, 4, 5800.0),  # R5, F5, M4 -> FM5: champions
        _active(2, 15, 1, 200.0),  # R4, F2 (tied), M2 -> FM2: potential
        _active(3, 200, 3, 17000.0),  # R2, F4, M5 -> FM5: cant_lose
        _active(4, 330, 1, 100.0),  # R1, F2 (tied), M1 -> FM2: hibernating
        _active(5, 30, 2, 900.0),  # R3, F3, M3: need_attention
        Activity(6, recency_days=None, frequency=0, monetary=0.0),
    ]
    scores = score_companies(activities)
    assert [(s.r_score, s.f_score, s.m_score) for s in scores] == [
        (5, 5, 4),
        (4, 2, 2),
        (2, 4, 5),
        (1, 2, 1),
        (3, 3, 3),
        (None, None, None),
    ]
    assert [s.segment for s in scores] == [
        "champions",
        "potential",
        "cant_lose",
        "hibernating",
        "need_attention",
        INACTIVE,
    ]


def test_one_company_and_no_sales() -> None:
    (only,) = score_companies([_active(1, 10, 2, 300.0)])
    assert (only.r_score, only.f_score, only.m_score, only.segment) == (3, 3, 3, "need_attention")
    idle = score_companies([Activity(1, None, 0, 0.0), Activity(2, None, 0, 0.0)])
    assert [s.segment for s in idle] == [INACTIVE, INACTIVE]
    assert score_companies([]) == []


def test_amounts_equal_to_the_cent_tie() -> None:
    scores = score_companies([_active(1, 10, 1, 0.1 + 0.2), _active(2, 10, 1, 0.3)])
    assert scores[0].m_score == scores[1].m_score == 3


def test_a_company_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="once"):
        score_companies([_active(1, 1, 1, 1.0), _active(1, 2, 1, 1.0)])


def test_months_before_clamps_to_the_end_of_the_month() -> None:
    assert months_before(datetime(2026, 5, 31, 8, tzinfo=UTC), 3) == datetime(
        2026, 2, 28, 8, tzinfo=UTC
    )
    assert months_before(datetime(2024, 3, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 12) == datetime(2025, 1, 15, tzinfo=UTC)


def test_summary_medians_and_shares() -> None:
    # Same R and F (tied: 3); M 100 -> 2, 300 -> 4; FM 3 and 4 with R 3.
    scores = score_companies(
        [_active(1, 10, 2, 100.0), _active(2, 10, 2, 300.0), Activity(3, None, 0, 0.0)]
    )
    lines = summarize(scores)
    assert [line.segment for line in lines] == ["loyal", "need_attention", INACTIVE]
    assert [line.companies for line in lines] == [1, 1, 1]
    assert lines[0].share == pytest.approx(1 / 3)
    assert (lines[0].median_recency_days, lines[0].median_monetary) == (10, 300.0)
    assert lines[2].median_recency_days is None and lines[2].total_monetary == 0.0


# -- storage, on both backends ---------------------------------------------------------------

AS_OF = WEDNESDAY_MORNING
# company -> (days before AS_OF, amount, status); hand-scored in test_five_companies_by_hand.
SALES: dict[str, list[tuple[float, float, str]]] = {
    "D001": [
        (5, 900, "approved"),
        (40, 1200, "approved"),
        (80, 700, "approved"),
        (120, 3000, "approved"),
    ],
    "D002": [(15, 200, "approved"), (3, 90000, "pending")],
    "D003": [(200, 5000, "approved"), (250, 8000, "approved"), (300, 4000, "approved")],
    "D004": [(330, 100, "approved")],
    "D005": [(30, 400, "approved"), (60, 500, "approved")],
    "D006": [(400, 9999, "approved")],  # outside the 12-month window
    "D007": [(1, 100000, "rejected"), (2, 50000, "pending")],
    "D008": [(-3, 7777, "approved")],  # after the as-of moment
}
EXPECTED = {
    "D001": "champions",
    "D002": "potential",
    "D003": "cant_lose",
    "D004": "hibernating",
    "D005": "need_attention",
    "D006": INACTIVE,
    "D007": INACTIVE,
    "D008": INACTIVE,
}


def _sell(app: App, sales: dict[str, list[tuple[float, float, str]]]) -> None:
    with Session(app.engine) as session, session.begin():
        ids = dict(session.execute(select(Company.external_id, Company.id)).all())
        for company, lines in sales.items():
            for n, (days, amount, status) in enumerate(lines):
                session.add(
                    Sale(
                        company_id=ids[company],
                        invoice_ref=f"{company}-{n}-{days}",
                        amount=amount,
                        status=status,
                        sold_at=AS_OF - timedelta(days=days),
                        created_at=AS_OF,
                    )
                )


def _stored(app: App) -> dict[str, CompanySegment]:
    with Session(app.engine) as session:
        rows = session.execute(
            select(Company.external_id, CompanySegment).join(
                Company,
                Company.id == CompanySegment.company_id,  # type: ignore[arg-type]
            )
        ).all()
        session.expunge_all()
    return {external_id: row for external_id, row in rows}


def test_recompute_scores_approved_sales_in_the_window(network: App) -> None:
    _sell(network, SALES)
    run = recompute_rfm(network, as_of=AS_OF)
    assert run.written and run.since == datetime(2025, 11, 25, 10, tzinfo=UTC)
    stored = _stored(network)
    assert {c: row.segment for c, row in stored.items()} == EXPECTED
    d001, d002 = stored["D001"], stored["D002"]
    assert (d001.recency_days, d001.frequency, d001.monetary) == (5, 4, 5800.0)
    assert (d001.r_score, d001.f_score, d001.m_score) == (5, 5, 4)
    assert (d002.frequency, d002.monetary) == (1, 200.0)  # the pending sale is ignored
    assert stored["D006"].recency_days is None and stored["D006"].r_score is None
    assert d001.computed_at == network.clock.now()


def test_the_window_start_is_excluded(network: App) -> None:
    since = months_before(AS_OF, 12)
    _sell(network, {"D001": [((AS_OF - since).days, 10, "approved")]})
    _sell(network, {"D002": [((AS_OF - since).days - 1, 10, "approved")]})
    recompute_rfm(network, as_of=AS_OF)
    stored = _stored(network)
    assert stored["D001"].segment == INACTIVE
    assert stored["D002"].frequency == 1


def test_recompute_replaces_the_rows_and_dry_run_writes_nothing(network: App) -> None:
    dry = recompute_rfm(network, as_of=AS_OF, dry_run=True)
    assert not dry.written and len(dry.scores) == 8
    assert _stored(network) == {}
    recompute_rfm(network, as_of=AS_OF)
    assert {row.segment for row in _stored(network).values()} == {INACTIVE}
    _sell(network, SALES)
    recompute_rfm(network, as_of=AS_OF)
    stored = _stored(network)
    assert len(stored) == 8 and stored["D001"].segment == "champions"


def test_a_failed_replacement_keeps_the_previous_segments(network: App) -> None:
    _sell(network, SALES)
    before = recompute_rfm(network, as_of=AS_OF).scores
    # The same company twice breaks the unique key after the old rows were deleted.
    broken = [before[0], before[0]]
    with pytest.raises(IntegrityError), Session(network.engine) as session, session.begin():
        replace_scores(session, broken, computed_at=network.clock.now())
    assert {c: row.segment for c, row in _stored(network).items()} == EXPECTED


# -- audiences -------------------------------------------------------------------------------


def _contacts(app: App, audience: Audience) -> list[str]:
    with Session(app.engine) as session:
        return [
            contact.external_id
            for batch in iter_audience(session, audience, now=app.clock.now())
            for contact, _company in batch
        ]


def test_audience_selects_the_contacts_of_the_segments(network: App) -> None:
    audience = Audience(name="best", rfm_segments=("champions", "cant_lose"))
    assert _contacts(network, audience) == []  # no scores yet: nobody
    _sell(network, SALES)
    recompute_rfm(network, as_of=AS_OF)
    assert _contacts(network, audience) == ["C0001", "C0002", "C0003", "C0006", "C0007", "C0008"]
    directors = Audience(name="d", levels=("director",), rfm_segments=("champions", "cant_lose"))
    assert _contacts(network, directors) == ["C0001", "C0006"]
    win_back = network.config.audience("win-back")  # config.example.toml
    with Session(network.engine) as session:
        assert (
            count_audience(session, win_back, now=network.clock.now()) == 2
        )  # directors of D003 and D004
    assert _contacts(network, win_back) == ["C0006", "C0009"]


def test_daemon_warnings_for_missing_or_old_scores(network: App) -> None:
    assert stale_rfm_warnings(network) == []  # no campaign uses an RFM audience
    config = network.config
    campaign = config.campaigns[0].model_copy(update={"audience": "win-back"})
    network.replace_config(
        network.loaded.model_copy(
            update={"config": config.model_copy(update={"campaigns": (campaign,)})}
        ),
        network.definitions,
    )
    (missing,) = stale_rfm_warnings(network)
    assert campaign.id in missing and "no RFM scores" in missing
    recompute_rfm(network)
    assert stale_rfm_warnings(network) == []
    network.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    (old,) = stale_rfm_warnings(network)
    assert "40 days old" in old


def test_unknown_segment_in_an_audience_is_a_config_error(cli, tmp_path: Path) -> None:
    extra = '[[audiences]]\nname = "oops"\nrfm_segments = ["champions", "champion"]\n'
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", extra)
    result = cli("validate", str(config))
    assert result.code == 1, result
    assert "rfm_segments: unknown RFM segment(s) 'champion'" in result.err
    assert "audiences[" in result.err and "Traceback" not in result.err


# -- the command line ------------------------------------------------------------------------


def _segment(cli, config_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return cli("segment", *args, "-c", str(config_path))


def test_cli_rfm_table_then_show(cli, network: App, config_path: Path) -> None:
    _sell(network, SALES)
    result = _segment(cli, config_path, "rfm", "--as-of", "2026-11-25")
    assert result.code == 0, result
    assert "champions" in result.out and "cant_lose" in result.out
    assert "8 company segments stored" in result.out
    shown = _segment(cli, config_path, "show", "--segment", "cant_lose")
    assert shown.code == 0, shown
    assert "D003" in shown.out and "D001" not in shown.out
    listed = json.loads(_segment(cli, config_path, "show", "--json").out)
    assert [row["company"] for row in listed][:2] == ["D001", "D002"]  # best segment first


def test_cli_rfm_json_and_dry_run(cli, network: App, config_path: Path) -> None:
    _sell(network, SALES)
    result = _segment(cli, config_path, "rfm", "--as-of", "2026-11-25", "--json", "--dry-run")
    assert result.code == 0, result
    data = json.loads(result.out)
    assert data["written"] is False and data["companies"] == 8
    # End of 25 November in Paris: every sale of the day counts.
    assert data["as_of"] == "2026-11-25T23:00:00+00:00"
    assert {row["company"]: row["segment"] for row in data["scores"]} == EXPECTED
    champions = next(line for line in data["segments"] if line["segment"] == "champions")
    assert champions["companies"] == 1 and champions["total_monetary"] == 5800.0
    with Session(network.engine) as session:
        assert session.scalar(select(func.count()).select_from(CompanySegment)) == 0


def test_cli_user_mistakes(cli, network: App, config_path: Path) -> None:
    no_scores = _segment(cli, config_path, "show")
    assert no_scores.code == 1 and "no RFM scores yet" in no_scores.err
    bad_date = _segment(cli, config_path, "rfm", "--as-of", "30/06/2026")
    assert bad_date.code == 1 and "--as-of '30/06/2026' is not a date" in bad_date.err
    bad_segment = _segment(cli, config_path, "show", "--segment", "vip")
    assert bad_segment.code == 1 and "not an RFM segment" in bad_segment.err
    for result in (no_scores, bad_date, bad_segment):
        assert "Traceback" not in result.err
