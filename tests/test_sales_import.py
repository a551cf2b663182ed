"""Sales import: validation line by line against the network, products and recorded sales,
all or nothing; pending or approved according to the challenges' approval."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

import network_anim.app as app_module
from network_anim.app import App
from network_anim.cli.import_cmd import import_group
from network_anim.cli.import_sales_cmd import import_sales_cmd
from network_anim.clock import SimulatedClock
from network_anim.db.models import Company, Product, Sale
from tests.conftest import REPO

# Until import_cmd.py registers it.
if "sales" not in import_group.commands:
    import_group.add_command(import_sales_cmd)

EXAMPLE = REPO / "examples" / "sales.csv"
HEADER = "invoice_ref;contact_id;company_id;sku;quantity;amount;sold_at"
GOOD = "F-100;C0002;D001;PBX-S40;2;2450.00;2026-11-10"
BASE = "F-200;C0005;D002;RTR-X200;2;760;2026-11-05"
AFTER_CHALLENGE = datetime(2027, 5, 3, 8, 0, tzinfo=UTC)
# For what the database backend cannot change (checks on the file alone, output).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def clock_cli(cli, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``cli`` whose app reads the test's simulated clock (2026-11-25 10:00 UTC)."""
    original = app_module.open_app

    def with_clock(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["clock"] = clock
        return original(*args, **kwargs)

    monkeypatch.setattr(app_module, "open_app", with_clock)
    return cli


def sales(app: App) -> list[tuple]:
    with Session(app.engine) as session:
        return list(
            session.execute(
                select(
                    Sale.id,
                    Company.external_id,
                    Sale.invoice_ref,
                    Sale.product,
                    Sale.quantity,
                    Sale.amount,
                    Sale.status,
                    Sale.sold_at,
                    Sale.source,
                    Sale.declared_by,
                )
                .join(Company, Sale.company_id == Company.id)
                .order_by(Sale.id)
            )
        )


def state(app: App) -> tuple[list[tuple], int]:
    with Session(app.engine) as session:
        products = session.scalar(select(func.count()).select_from(Product)) or 0
    return sales(app), products


def write(tmp_path: Path, *lines: str, header: str = HEADER, name: str = "sales.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def run(clock_cli, config_path: Path, path: Path, *args: str):  # type: ignore[no-untyped-def]
    return clock_cli("import", "sales", str(path), "-c", str(config_path), *args)


def test_example_file_imports_pending_in_an_approval_challenge(
    network: App, clock_cli, clock: SimulatedClock, config_path: Path
) -> None:
    clock.set(AFTER_CHALLENGE)
    result = run(clock_cli, config_path, EXAMPLE, "--challenge", "pbx-2027", "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert summary["inserted"] == 18 and summary["pending"] == 18 and summary["approved"] == 0
    assert summary["products_created"] == 4 and summary["approved_sale_ids"] == []
    rows = sales(network)
    assert [r.id for r in rows] == summary["sale_ids"]
    assert {r.status for r in rows} == {"pending"}
    first = rows[0]
    assert (first.external_id, first.invoice_ref, first.product) == (
        "D001",
        "F2027-0012",
        "PBX-S40",
    )
    assert (first.quantity, first.amount) == (2.0, 2450.0)
    assert first.source == "sales.csv:line 2" and first.declared_by == "import"
    # A date alone is midnight in the engine time zone (Paris, UTC+1 in winter).
    assert first.sold_at == datetime(2027, 1, 11, 23, 0, tzinfo=UTC)
    by_ref = {r.invoice_ref: r for r in rows}
    assert by_ref["F2027-0058"].sold_at == datetime(2027, 3, 8, 9, 30, tzinfo=UTC)
    assert by_ref["NRD-27-0021"].sold_at == datetime(2027, 3, 4, 14, 45, tzinfo=UTC)
    assert by_ref["AB-27-003"].external_id == "D007"  # company taken from the contact
    assert rows[-1].source == "sales.csv:line 19"
    with Session(network.engine) as session:
        products = {p.sku: (p.family, p.unit_price) for p in session.scalars(select(Product))}
    assert products == {
        "PBX-S40": ("pbx", 1250.0),
        "PBX-S80": ("pbx", 2400.0),
        "DECT-D12": ("accessories", 89.0),
        "RTR-X200": ("network", 390.0),
    }


@SQLITE_ONLY
def test_human_summary_and_actor(
    network: App, clock_cli, config_path: Path, tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD, BASE)
    result = run(clock_cli, config_path, path, "--actor", "manager:alice")
    assert result.code == 0, result
    assert "2 sales imported — 0 pending approval, 2 approved" in result.out
    assert "2 sale(s) dated outside every challenge period" in result.out
    assert {r.declared_by for r in sales(network)} == {"manager:alice"}


def test_status_follows_any_covering_challenge_with_approval(
    network: App, clock_cli, clock: SimulatedClock, config_path: Path, tmp_path: Path
) -> None:
    # A second challenge without approval overlaps pbx-2027 (approval = true) in January.
    extra = """
[[challenges]]
id = "winter"
name = "Winter"
audience = "all"
start = 2026-10-01
end = 2027-01-31
approval = false
scoring = { points_per_euro = 1 }
"""
    config_path.write_text(config_path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    clock.set(AFTER_CHALLENGE)
    path = write(
        tmp_path,
        "F-1;C0002;;PBX-S40;1;1250;2026-11-10",  # winter only: approved
        "F-2;C0002;;PBX-S40;1;1250;2027-01-20",  # winter and pbx-2027: pending
        "F-3;C0002;;PBX-S40;1;1250;2027-02-20",  # pbx-2027 only: pending
        "F-4;C0002;;PBX-S40;1;1250;2027-05-02",  # none: approved
    )
    result = run(clock_cli, config_path, path, "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert (summary["pending"], summary["approved"], summary["outside_challenges"]) == (2, 2, 1)
    statuses = {r.invoice_ref: r.status for r in sales(network)}
    assert statuses == {"F-1": "approved", "F-2": "pending", "F-3": "pending", "F-4": "approved"}
    approved_ids = {r.id for r in sales(network) if r.status == "approved"}
    assert set(summary["approved_sale_ids"]) == approved_ids


def test_without_approval_sales_are_approved(
    network: App, clock_cli, clock: SimulatedClock, config_path: Path
) -> None:
    text = config_path.read_text(encoding="utf-8")
    assert "approval = true" in text
    config_path.write_text(text.replace("approval = true", "approval = false"), encoding="utf-8")
    clock.set(AFTER_CHALLENGE)
    result = run(clock_cli, config_path, EXAMPLE, "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert summary["approved"] == 18 and summary["pending"] == 0
    assert len(summary["approved_sale_ids"]) == 18
    assert {r.status for r in sales(network)} == {"approved"}


def test_reimport_refuses_every_line_as_duplicate(
    network: App, clock_cli, clock: SimulatedClock, config_path: Path
) -> None:
    clock.set(AFTER_CHALLENGE)
    assert run(clock_cli, config_path, EXAMPLE).code == 0
    before = state(network)
    again = run(clock_cli, config_path, EXAMPLE)
    assert again.code == 1, again
    assert "18 bad line(s); nothing was imported" in again.err
    problem_lines = [
        line.strip() for line in again.err.splitlines() if line.strip().startswith("- line")
    ]
    assert [line.split(":")[0] for line in problem_lines] == [f"- line {n}" for n in range(2, 20)]
    assert all("is already recorded (sale #" in line for line in problem_lines)
    assert "from sales.csv:line 2" in problem_lines[0]
    assert state(network) == before


def test_invoice_ref_is_unique_per_company_not_globally(
    network: App, clock_cli, config_path: Path, tmp_path: Path
) -> None:
    first = write(tmp_path, GOOD, name="first.csv")
    assert run(clock_cli, config_path, first).code == 0
    before = state(network)
    # Same reference, another contact of the same company D001: refused.
    same_company = write(tmp_path, "F-100;C0003;;DECT-D12;1;89;2026-11-12", name="second.csv")
    result = run(clock_cli, config_path, same_company)
    assert result.code == 1, result
    assert "line 2: invoice_ref F-100 of company D001 is already recorded" in result.err
    assert state(network) == before
    # Same reference at another company: a different invoice.
    other_company = write(tmp_path, "F-100;C0007;;DECT-D12;1;89;2026-11-12", name="third.csv")
    assert run(clock_cli, config_path, other_company).code == 0
    assert [(r.external_id, r.invoice_ref) for r in sales(network)] == [
        ("D001", "F-100"),
        ("D003", "F-100"),
    ]


# Checked against the database: on both backends.
DB_CASES = [
    (BASE.replace("C0005", "C0099"), "contact_id C0099 is not in the network"),
    (
        BASE.replace("D002", "D001"),
        "company_id D001 is not the company of contact C0005 (D002)",
    ),
    # Another contact of D001 reusing line 2's invoice reference.
    (
        "F-100;C0001;;DECT-D12;1;89;2026-11-05",
        "invoice_ref F-100 of company D001 already on line 2",
    ),
]
# Checked on the line alone: SQLite is enough.
LINE_CASES = [
    (BASE.replace("RTR-X200", "RTR-X300"), "sku 'RTR-X300' is not a known product"),
    (BASE.replace("RTR-X200", "rtr-x200"), "(did you mean RTR-X200?)"),
    (BASE.replace(";2;760;", ";0;760;"), "quantity 0 is not positive"),
    (BASE.replace(";2;760;", ";-2;760;"), "quantity -2 is not positive"),
    (BASE.replace(";2;760;", ";deux;760;"), "quantity 'deux' is not a number"),
    (BASE.replace(";760;", ";0;"), "amount 0 is not positive"),
    (BASE.replace(";760;", ";7.6.0;"), "amount '7.6.0' is not a number"),
    (BASE.replace(";760;", ";nan;"), "amount 'nan' is not a number"),
    (BASE.replace(";760;", ";;"), "amount is empty; it is required"),
    (BASE.replace(";760;", ";78000;"), "amount 78000.00 is too high: more than 10 x"),
    (BASE.replace(";760;", ";5;"), "amount 5.00 is too low: less than 1 % of quantity"),
    (BASE.replace("2026-11-05", "2026-11-26"), "sold_at 2026-11-26 is in the future"),
    (
        BASE.replace("2026-11-05", "2026-11-25T12:00"),
        "sold_at 2026-11-25T12:00 is in the future",
    ),
    (BASE.replace("2026-11-05", "05/11/2026"), "sold_at '05/11/2026' is not an ISO date"),
    (BASE.replace("F-200", '=HYPERLINK("x")'), "formula-like cells are refused"),
    (BASE.replace("F-200", "@SUM(A1)"), "invoice_ref '@SUM(A1)' starts with '@'"),
    (BASE.replace("F-200", "+F200"), "invoice_ref '+F200' starts with '+'"),
    (BASE.replace("F-200", "-F200"), "invoice_ref '-F200' starts with '-'"),
    (BASE.replace("F-200", "\tF200"), "starts with '\\t'"),
    (BASE.replace(";760;", ";=760;"), "amount '=760' starts with '='"),
    (BASE.replace(";C0005;", ";;"), "contact_id is empty; it is required"),
    (BASE.replace("F-200", "F" * 81), "invoice_ref is 81 characters; at most 80"),
    (BASE.rsplit(";", 1)[0], "6 cells, the header has 7"),
]


def check_bad_line(
    clock_cli, app: App, config_path: Path, tmp_path: Path, line: str, expected: str
):  # type: ignore[no-untyped-def]
    before = state(app)
    result = run(clock_cli, config_path, write(tmp_path, GOOD, line))
    assert result.code == 1, result
    assert "1 bad line(s); nothing was imported" in result.err
    assert "line 3:" in result.err and expected in result.err, result.err
    assert "line 2:" not in result.err
    assert "Traceback" not in result.err
    assert state(app) == before


@pytest.mark.parametrize(("line", "expected"), DB_CASES)
def test_bad_line_against_the_database(
    network: App, clock_cli, config_path: Path, tmp_path: Path, line: str, expected: str
) -> None:
    check_bad_line(clock_cli, network, config_path, tmp_path, line, expected)


@SQLITE_ONLY
@pytest.mark.parametrize(("line", "expected"), LINE_CASES)
def test_bad_line_is_named_and_nothing_changes(
    network: App, clock_cli, config_path: Path, tmp_path: Path, line: str, expected: str
) -> None:
    check_bad_line(clock_cli, network, config_path, tmp_path, line, expected)


def test_every_bad_line_is_listed_in_order(
    network: App, clock_cli, config_path: Path, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        GOOD,
        BASE.replace("C0005", "C0099"),  # found when the file is checked against the db
        BASE.replace("F-200", "F-201").replace(";760;", ";abc;"),
        BASE.replace("F-200", "F-202"),
        BASE.replace("F-200", "F-100").replace("C0005;D002", "C0003;"),
    )
    result = run(clock_cli, config_path, path)
    assert result.code == 1
    problem_lines = [line for line in result.err.splitlines() if line.strip().startswith("- line")]
    assert [line.split(":")[0].strip() for line in problem_lines] == [
        "- line 3",
        "- line 4",
        "- line 6",
    ]
    assert state(network) == ([], 0)


@SQLITE_ONLY
def test_every_problem_of_a_line_is_listed(
    network: App, clock_cli, config_path: Path, tmp_path: Path
) -> None:
    bad = "F-300;C0005;D002;NOPE;0;-1;tomorrow"
    result = run(clock_cli, config_path, write(tmp_path, bad))
    assert result.code == 1
    for expected in ("sku 'NOPE'", "quantity 0", "amount -1", "sold_at 'tomorrow'"):
        assert f"line 2: {expected}" in result.err, result.err


def test_challenge_period_inclusive_days_in_engine_timezone(
    network: App, clock_cli, clock: SimulatedClock, config_path: Path, tmp_path: Path
) -> None:
    clock.set(AFTER_CHALLENGE)
    path = write(
        tmp_path,
        "F-1;C0002;;PBX-S40;1;1250;2027-01-04",  # first day
        "F-2;C0002;;PBX-S40;1;1250;2027-04-30T23:59",  # last day, late evening in Paris
        "F-3;C0002;;PBX-S40;1;1250;2027-01-03T23:30:00Z",  # 00:30 on the 4th in Paris
        "F-4;C0002;;PBX-S40;1;1250;2027-01-03T23:59",  # the day before
        "F-5;C0002;;PBX-S40;1;1250;2027-04-30T22:30:00Z",  # 00:30 on May 1st in Paris
    )
    result = run(clock_cli, config_path, path, "--challenge", "pbx-2027")
    assert result.code == 1, result
    assert "2 bad line(s)" in result.err
    assert (
        "line 5: sold_at 2027-01-03T23:59 is outside challenge pbx-2027 (2027-01-04 to 2027-04-30)"
        in result.err
    )
    assert "line 6: sold_at 2027-04-30T22:30:00Z is outside challenge pbx-2027" in result.err
    assert "without --challenge" in result.err
    assert state(network) == ([], 0)
    # Without --challenge, the same dates are accepted.
    assert run(clock_cli, config_path, path).code == 0
    assert len(sales(network)) == 5


@SQLITE_ONLY
def test_unknown_challenge(network: App, clock_cli, config_path: Path, tmp_path: Path) -> None:
    result = run(clock_cli, config_path, write(tmp_path, GOOD), "--challenge", "nope")
    assert result.code == 1
    assert "unknown challenge 'nope'" in result.err and "pbx-2027" in result.err
    assert state(network) == ([], 0)


@SQLITE_ONLY
def test_header_problems(network: App, clock_cli, config_path: Path, tmp_path: Path) -> None:
    header = "invoice_ref;seller;sku;quantity;amount;sold_at;sku"
    result = run(clock_cli, config_path, write(tmp_path, header=header))
    assert result.code == 1
    assert "line 1 (header)" in result.err
    assert "unknown column(s): seller" in result.err
    assert "missing required column(s): contact_id" in result.err
    assert "column(s) given twice: sku" in result.err


@SQLITE_ONLY
def test_comma_separated_with_bom_and_french_numbers(
    network: App, clock_cli, config_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "excel.csv"
    text = (
        "Invoice_Ref,Contact_ID,SKU,Quantity,Amount,Sold_At\n"
        'F-9,C0010,PBX-S80,1,"2 350,50",2026-11-20T09:15\n'
    )
    path.write_bytes(text.encode("utf-8-sig"))
    result = run(clock_cli, config_path, path)
    assert result.code == 0, result
    (row,) = sales(network)
    assert (row.external_id, row.amount, row.product) == ("D004", 2350.5, "PBX-S80")


def test_products_from_the_table_and_config_upsert(
    network: App, clock_cli, config_path: Path, tmp_path: Path
) -> None:
    with Session(network.engine) as session, session.begin():
        session.add(Product(sku="LEGACY-1", name="Old handset", family="legacy", unit_price=0))
        session.add(Product(sku="PBX-S40", name="Old name", family="", unit_price=1.0))
    path = write(tmp_path, GOOD, "F-101;C0002;;LEGACY-1;3;9999;2026-11-10")
    result = run(clock_cli, config_path, path, "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert (summary["products_created"], summary["products_updated"]) == (3, 1)
    with Session(network.engine) as session:
        products = {
            p.sku: (p.name, p.family, p.unit_price) for p in session.scalars(select(Product))
        }
    assert products["PBX-S40"] == ("Standard IP S40", "pbx", 1250.0)
    assert products["LEGACY-1"] == ("Old handset", "legacy", 0.0)  # kept; no price, no check
    assert len(products) == 5


@SQLITE_ONLY
def test_dry_run_writes_nothing(
    network: App, clock_cli, clock: SimulatedClock, config_path: Path, tmp_path: Path
) -> None:
    clock.set(AFTER_CHALLENGE)
    result = run(clock_cli, config_path, EXAMPLE, "--dry-run")
    assert result.code == 0, result
    assert "valid — 18 sales, 18 would wait for approval, 0 approved" in result.out
    as_json = run(clock_cli, config_path, EXAMPLE, "--dry-run", "--json")
    assert json.loads(as_json.out) == {
        "dry_run": True,
        "sales": 18,
        "pending": 18,
        "approved": 0,
        "outside_challenges": 0,
    }
    assert state(network) == ([], 0)
    bad = run(clock_cli, config_path, write(tmp_path, GOOD, GOOD), "--dry-run")
    assert bad.code == 1 and "already on line 2" in bad.err


@SQLITE_ONLY
def test_example_dates_are_refused_before_they_happen(
    network: App, clock_cli, config_path: Path
) -> None:
    result = run(clock_cli, config_path, EXAMPLE)
    assert result.code == 1
    assert "18 bad line(s)" in result.err and "is in the future" in result.err
    assert state(network) == ([], 0)


def test_help_has_an_example(clock_cli) -> None:
    result = clock_cli("import", "sales", "--help")
    assert result.code == 0
    assert "Example:" in result.out
    assert "netanim import sales examples/sales.csv" in result.out
    assert "--challenge ID" in result.out and "--actor NAME" in result.out


def test_import_is_one_transaction_checked_again_at_write_time(
    network: App, clock: SimulatedClock, tmp_path: Path
) -> None:
    """Records checked, then a sale recorded by someone else: the write refuses them all,
    products upsert included; records that collide with each other hit the unique key."""
    from network_anim.challenges.sales_csv import read_sales_csv
    from network_anim.challenges.sales_import import import_sales, sales_context
    from network_anim.errors import UserError

    path = write(tmp_path, GOOD, BASE)
    records = read_sales_csv(path, sales_context(network))
    assert [(r.line, r.company_external_id) for r in records] == [(2, "D001"), (3, "D002")]
    with Session(network.engine) as session, session.begin():
        company = session.scalars(select(Company).where(Company.external_id == "D002")).one()
        session.add(
            Sale(
                company_id=company.id,
                invoice_ref="F-200",
                sold_at=clock.now(),
                created_at=clock.now(),
                source="portal",
            )
        )
    before = state(network)
    with pytest.raises(UserError) as refused:
        import_sales(network, records, source="sales.csv", declared_by="test")
    assert "line 3: invoice_ref F-200 is already recorded" in str(refused.value)
    assert state(network) == before
    assert before[1] == 0  # the products upsert was rolled back too

    twice = [records[0], records[0]]
    with pytest.raises(UserError) as collided:
        import_sales(network, twice, source="sales.csv", declared_by="test")
    assert "nothing was imported" in str(collided.value)
    assert state(network) == before

    summary = import_sales(network, records[:1], source="x" * 300, declared_by="test")
    assert summary.inserted == 1 and summary.approved_sale_ids == summary.sale_ids
    (row,) = [r for r in sales(network) if r.id == summary.sale_ids[0]]
    assert len(row.source) == 200 and row.source.endswith("x:line 2")
