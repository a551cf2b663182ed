"""The batched network import (issue 18, point 2): the same rows, counts and refusals as
the row-by-row one, on SQLite and PostgreSQL alike. No timings here: bench/import_network.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Company, Consent, Contact
from network_anim.demo.network import generate_network_csv
from network_anim.errors import UserError
from network_anim.network import network_csv
from network_anim.network.importer import import_network
from network_anim.network.network_csv import (
    ImportDefaults,
    NetworkFile,
    NetworkStream,
    parse_network_csv,
)
from tests.test_network_import import counts


@pytest.fixture(scope="module")
def generated() -> str:
    # 1,200 contacts: three batches of 500 for every stage.
    return generate_network_csv(companies=120, contacts=1200, seed=7)


def parse(text: str) -> NetworkFile:
    return parse_network_csv(text, source="generated.csv", defaults=ImportDefaults())


def rows(app: App) -> dict[str, list[tuple[object, ...]]]:
    """Every imported value, keyed by external ids (database ids differ by backend)."""
    with Session(app.engine) as session:
        companies = {c.id: c.external_id for c in session.scalars(select(Company))}
        contacts = {c.id: c.external_id for c in session.scalars(select(Contact))}
        return {
            "companies": sorted(
                tuple(getattr(c, n) for n in ("external_id", "name", "street", "city", "country"))
                for c in session.scalars(select(Company))
            ),
            "contacts": sorted(
                (
                    c.external_id,
                    companies[c.company_id],
                    c.last_name,
                    c.level,
                    c.email,
                    c.email_kind,
                    c.mobile,
                    c.phone,
                    c.web_access,
                    c.active,
                    c.email_invalid_at,
                    c.email_invalid_reason,
                )
                for c in session.scalars(select(Contact))
            ),
            "consents": sorted(
                (contacts[c.contact_id], c.channel, c.basis, c.source)
                for c in session.scalars(select(Consent))
            ),
        }


def expected_rows(network: NetworkFile, source: str) -> dict[str, list[tuple[object, ...]]]:
    return {
        "companies": sorted(
            (c.external_id, c.name, c.street, c.city, c.country) for c in network.companies
        ),
        "contacts": sorted(
            (
                c.external_id,
                c.company_external_id,
                c.last_name,
                c.level.value,
                c.email,
                c.email_kind.value,
                c.mobile,
                c.phone,
                c.web_access,
                True,
                None,
                "",
            )
            for c in network.contacts
        ),
        "consents": sorted(
            (c.external_id, channel, basis.value, source)
            for c in network.contacts
            for channel, basis in c.consents.items()
        ),
    }


def test_upsert_writes_exactly_the_file_on_both_backends(app: App, generated: str) -> None:
    network = parse(generated)
    summary = import_network(app.engine, network, now=app.clock.now(), source="gen")
    assert (summary.companies_created, summary.contacts_created) == (120, 1200)
    assert summary.consents_set == sum(len(c.consents) for c in network.contacts)
    assert rows(app) == expected_rows(network, "gen")


def test_reimport_counts_unchanged_then_all_updated(app: App, generated: str) -> None:
    import_network(app.engine, parse(generated), now=app.clock.now(), source="gen")
    before = counts(app)
    again = import_network(app.engine, parse(generated), now=app.clock.now(), source="gen")
    assert (again.companies_updated, again.contacts_updated, again.consents_set) == (0, 0, 0)
    assert (again.companies_created, again.contacts_created) == (0, 0)
    # Every contact's last name and every company's name changed: all updates, no inserts.
    header, *lines = generated.splitlines()
    columns = header.split(";")
    name, last = columns.index("company_name"), columns.index("last_name")
    changed_lines = []
    for line in lines:
        cells = line.split(";")
        cells[name] += " SA"
        cells[last] += "-Neuf"
        changed_lines.append(";".join(cells))
    changed = parse("\n".join([header, *changed_lines]) + "\n")
    third = import_network(app.engine, changed, now=app.clock.now(), source="gen")
    assert (third.companies_created, third.companies_updated) == (0, 120)
    assert (third.contacts_created, third.contacts_updated) == (0, 1200)
    assert third.consents_set == 0
    assert counts(app) == before
    assert rows(app) == expected_rows(changed, "gen")


def test_a_new_address_clears_the_bounce_mark_the_same_keeps_it(app: App, generated: str) -> None:
    network = parse(generated)
    import_network(app.engine, network, now=app.clock.now(), source="gen")
    first, second = [c for c in network.contacts if c.email][:2]
    with Session(app.engine) as session, session.begin():
        session.execute(
            update(Contact)
            .where(Contact.external_id.in_([first.external_id, second.external_id]))  # type: ignore[attr-defined]
            .values(email_invalid_at=app.clock.now(), email_invalid_reason="550 no such user")
        )
    header, *lines = generated.splitlines()
    assert first.email and second.email
    edited = [
        line.replace(first.email, "nouvelle." + first.email)
        if f";{first.external_id};" in line
        # The same address in capitals: the same mailbox, it would bounce again.
        else line.replace(second.email, second.email.upper())
        if f";{second.external_id};" in line
        else line
        for line in lines
    ]
    import_network(
        app.engine, parse("\n".join([header, *edited]) + "\n"), now=app.clock.now(), source="gen"
    )
    with Session(app.engine) as session:
        marks = {
            c.external_id: (c.email_invalid_at is not None, c.email_invalid_reason)
            for c in session.scalars(
                select(Contact).where(
                    Contact.external_id.in_([first.external_id, second.external_id])  # type: ignore[attr-defined]
                )
            )
        }
    assert marks == {first.external_id: (False, ""), second.external_id: (True, "550 no such user")}


def test_a_bad_line_in_a_later_batch_changes_nothing(
    app: App, cli, config_path: Path, tmp_path: Path, generated: str
) -> None:
    header, *lines = generated.splitlines()
    path = tmp_path / "network.csv"
    path.write_text(generated, encoding="utf-8")
    assert cli("import", "network", str(path), "-c", str(config_path), "--json").code == 0
    before, snapshot = counts(app), rows(app)
    columns = header.split(";")
    last = columns.index("last_name")
    edited = []
    for number, line in enumerate(lines, start=2):
        cells = line.split(";")
        cells[last] += "-Neuf"  # every row would update...
        if number == 901:  # ...but one line of the second batch is bad
            cells[columns.index("level")] = "boss"
        edited.append(";".join(cells))
    path.write_text("\n".join([header, *edited]) + "\n", encoding="utf-8")
    result = cli("import", "network", str(path), "-c", str(config_path))
    assert result.code == 1
    assert "line 901: level 'boss' is not one of" in result.err
    assert "1 bad line(s); nothing was imported" in result.err
    assert counts(app) == before and rows(app) == snapshot


def test_json_summary_keeps_its_keys(app: App, cli, config_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "network.csv"
    path.write_text(generate_network_csv(companies=3, contacts=12, seed=1), encoding="utf-8")
    result = cli("import", "network", str(path), "-c", str(config_path), "--json")
    assert result.code == 0
    assert list(json.loads(result.out)) == [
        "companies_created",
        "companies_updated",
        "contacts_created",
        "contacts_updated",
        "consents_set",
    ]


def exact_parse(text: str) -> NetworkFile:
    """The file as the exact pass reads it (every row's address checked), in one part."""
    layout = network_csv._Layout(network_csv._open(text, "g.csv")[1], ImportDefaults())
    layout.exact = True
    merger = network_csv._Merger()
    network = merger.add(network_csv._outcomes(text, "g.csv", layout, 0, None))
    assert not merger.problems
    return network


def test_fast_and_exact_parses_agree(generated: str) -> None:
    fast = parse(generated)
    assert fast == exact_parse(generated) and len(fast.contacts) == 1200


def test_an_address_too_long_only_with_a_long_name_is_named_on_its_line() -> None:
    header = "company_id;company_name;building;street;postcode;city;contact_id;last_name;level"
    street = "12 rue des Longues Avenues Fleuries"  # fits 38 characters
    short = f"K1;Kappa;;{street};75011;Paris;P1;Roy;seller"
    # A recipient line of more than 38 characters cannot be printed.
    long = f"K1;Kappa;;{street};75011;Paris;P2;{'Delacroix-Montmorency-Saint-Aubin-Vieux'};seller"
    text = "\n".join([header, short, long, short.replace("P1", "P3")]) + "\n"
    with pytest.raises(UserError) as caught:
        parse(text)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 3"]
    assert "postal address" in problems[0]


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Files of more than 10 rows checked on two cores, the child's rows sent back 100
    at a time; the list hears of each child started."""
    monkeypatch.setattr(network_csv, "PARALLEL_FROM_ROWS", 10)
    monkeypatch.setattr(network_csv, "_CHUNK_ROWS", 100)
    started: list[int] = []
    real = network_csv.ForkedStream.start

    def spy(*args: Any, **kwargs: Any) -> Any:
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(network_csv.ForkedStream, "start", spy)
    return started


def _quoted(text: str) -> str:
    """The file with its company names quoted (its lines might not be its rows)."""
    lines = text.splitlines()
    header = lines[0].split(";")
    at = header.index("company_name")
    for number in range(1, len(lines)):
        cells = lines[number].split(";")
        cells[at] = f'"{cells[at]}"'
        lines[number] = ";".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("form", ["plain", "crlf", "quoted"])
def test_two_cores_give_the_one_core_result(generated: str, forked: list[int], form: str) -> None:
    """The optimistic pass split over a forked child gives the same records, in the same
    order, with the same line numbers, as one process (the exact pass here); addresses
    kept alike. The parts come as the child's chunks do: this process's share (of the
    text, or of the rows for a file with quotes), then 100 rows at a time."""
    text = {
        "plain": generated,
        "crlf": generated.replace("\n", "\r\n"),
        "quoted": _quoted(generated),
    }[form]
    parts = list(NetworkStream(text, source="g.csv", defaults=ImportDefaults()))
    assert forked == [1]
    sizes = [len(p.contacts) for p in parts]
    # A share of the text is a share of the rows give or take their lengths.
    here = network_csv._SHARE_HERE * 1200
    assert 0.8 * here <= sizes[0] <= 1.25 * here
    assert set(sizes[1:-1]) == {100} and sizes[-1] <= 100
    whole = NetworkFile(
        companies=[c for p in parts for c in p.companies],
        contacts=[c for p in parts for c in p.contacts],
    )
    assert whole == exact_parse(text)
    assert [c.line for c in whole.contacts] == list(range(2, 1202))


def test_two_cores_then_a_problem_in_the_child_s_half_is_named_exactly(
    generated: str, forked: list[int]
) -> None:
    lines = generated.splitlines()
    header = lines[0].split(";")
    late = len(lines) - 3  # in the forked half
    cells = lines[late].split(";")
    cells[header.index("level")] = "boss"
    lines[late] = ";".join(cells)
    with pytest.raises(UserError) as caught:
        parse("\n".join(lines) + "\n")
    assert forked == [1]
    assert caught.value.problems == [
        f"line {late + 1}: level 'boss' is not one of seller, correspondent, director"
    ]


@pytest.mark.parametrize("quoted", [False, True])
@pytest.mark.parametrize("sent_before_dying", [0, 250])
def test_a_child_that_dies_leaves_this_process_to_do_the_rest(
    generated: str,
    forked: list[int],
    monkeypatch: pytest.MonkeyPatch,
    sent_before_dying: int,
    quoted: bool,
) -> None:
    """A child killed half-way (nothing sent, or two chunks and a half): the rows it did
    not send are checked here, the same records come out, in the same order."""
    real = network_csv._wired_outcomes

    def dying(*args: Any) -> Iterator[Any]:
        for index, wired in enumerate(real(*args)):
            if index == sent_before_dying:
                os._exit(3)
            yield wired

    monkeypatch.setattr(network_csv, "_wired_outcomes", dying)
    text = _quoted(generated) if quoted else generated
    assert parse(text) == exact_parse(text) and forked == [1]


def test_a_child_that_dies_after_handing_over_addresses_leaves_the_rest_here(
    generated: str, forked: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while it judges the addresses it kept: every row of the child is noted
    here again and every company judged here; the same records come out."""

    def dying(self: Any) -> bool:
        os._exit(3)

    monkeypatch.setattr(network_csv._ChildAddresses, "clean", dying)
    assert parse(generated) == exact_parse(generated) and forked == [1]


@pytest.mark.parametrize("line", [400, 1150])  # a company handed over, one the child keeps
def test_a_bad_address_in_the_child_s_half_is_found_by_whoever_judges_it(
    generated: str, forked: list[int], line: int
) -> None:
    lines = generated.splitlines()
    header = lines[0].split(";")
    company, street = header.index("company_id"), header.index("street")
    target = lines[line - 1].split(";")[company]
    long_street = "12 boulevard de la Très Longue Avenue Industrielle"  # 50 > 38
    on_lines = []
    for number in range(1, len(lines)):
        cells = lines[number].split(";")
        if cells[company] == target:
            cells[street] = long_street
            lines[number] = ";".join(cells)
            on_lines.append(number + 1)
    with pytest.raises(UserError) as caught:
        parse("\n".join(lines) + "\n")
    assert forked == [1]
    named = [problem.split(":")[0] for problem in caught.value.problems]
    assert named == [f"line {n}" for n in on_lines]
    assert all(long_street in problem for problem in caught.value.problems)


def test_a_company_that_differs_across_the_halves_rolls_the_streamed_import_back(
    app: App, generated: str, forked: list[int]
) -> None:
    """The first parts are written before the child's last chunk shows a company whose
    rows differ: nothing stays written, the line is named."""
    lines = generated.splitlines()
    header = lines[0].split(";")
    first, last = lines[1].split(";"), lines[-1].split(";")
    last[: len(network_csv.COMPANY_COLUMNS)] = first[: len(network_csv.COMPANY_COLUMNS)]
    last[header.index("city")] = "Ailleurs"
    lines[-1] = ";".join(last)
    stream = NetworkStream("\n".join(lines) + "\n", source="g.csv", defaults=ImportDefaults())
    heard: list[str] = []
    with pytest.raises(UserError) as caught:
        import_network(
            app.engine,
            stream,
            now=app.clock.now(),
            source="t",
            progress=lambda stage, done: heard.append(stage),
        )
    assert forked == [1] and "consents" in heard  # parts were written before the error
    assert caught.value.problems == [
        f"line {len(lines)}: company {first[0]} differs from line 2 "
        f"(city {first[header.index('city')]!r} vs 'Ailleurs'); every row of a company must "
        "repeat the same company columns"
    ]
    assert counts(app) == (0, 0, 0)


def test_two_cores_an_address_too_long_in_the_child_s_half_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each half judges the addresses of the rows it kept: a recipient line too long for
    the letter, only in the forked half, still sends the file to the exact pass."""
    header = "company_id;company_name;building;street;postcode;city;contact_id;last_name;level"
    street = "12 rue des Longues Avenues Fleuries"
    short = [f"K1;Kappa;;{street};75011;Paris;P{i};Roy;seller" for i in range(10)]
    long = f"K1;Kappa;;{street};75011;Paris;PX;{'Delacroix-Montmorency-Saint-Aubin-Vieux'};seller"
    text = "\n".join([header, *short, long]) + "\n"
    monkeypatch.setattr(network_csv, "PARALLEL_FROM_ROWS", 5)
    monkeypatch.setattr(network_csv, "_CHUNK_ROWS", 2)
    with pytest.raises(UserError) as caught:
        parse(text)
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 12"]


def test_a_first_import_leaves_the_contact_indexes_as_they_were(app: App, generated: str) -> None:
    """A first import builds the contact table's indexes after its rows (SQLite): they are
    all back after it, and after one that fails half-way (nothing written)."""
    if app.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's indexes")

    def indexes() -> list[tuple[str, str]]:
        with app.engine.connect() as conn:
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
            return [tuple(row) for row in conn.exec_driver_sql(query)]  # type: ignore[misc]

    before = indexes()
    assert any(name == "ix_contact_mobile" for name, _ in before)

    def fail_in_consents(stage: str, done: int) -> None:
        if stage == "consents":
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        import_network(
            app.engine, parse(generated), now=app.clock.now(), source="t", progress=fail_in_consents
        )
    assert indexes() == before and counts(app) == (0, 0, 0)
    import_network(app.engine, parse(generated), now=app.clock.now(), source="gen")
    assert indexes() == before
    with app.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM contact WHERE mobile = '+33600000000'"
        ).all()
    assert "ix_contact_mobile" in str(plan)
