"""The read API (/api/v1): bearer tokens stored hashed and scoped, pages behind a cursor
that lose and repeat nothing while rows are added, and the figures other systems read
(consents, engagement, a campaign's funnel, standings, points). Both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import ApiToken, Contact, Event
from network_anim.web.api_tokens import create_token, revoke_token, token_hash
from network_anim.web.app import create_app
from tests.test_web_tracking import contact_id, make_delivery


@pytest.fixture
def client(network: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    yield TestClient(create_app(network))


def _token(app: App, name: str = "crm", *scopes: str) -> dict[str, str]:
    secret = create_token(app.engine, name, list(scopes or ("all",)), now=app.clock.now())
    return {"Authorization": f"Bearer {secret}"}


def _events(app: App, count: int, *, contact: str = "C0002", kind: str = "opened") -> list[int]:
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        rows = [
            Event(
                type=kind,
                channel="email",
                contact_id=contact_id(app, contact),
                occurred_at=now - timedelta(minutes=n),
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]  # type: ignore[misc]


def test_no_token_unknown_revoked_or_wrong_scope_is_refused(
    network: App, client: TestClient
) -> None:
    assert client.get("/api/v1/contacts").status_code == 401
    assert client.get("/api/v1/contacts").headers["www-authenticate"] == "Bearer"
    assert (
        client.get("/api/v1/contacts", headers={"Authorization": "Basic eDp5"}).status_code == 401
    )
    wrong = {"Authorization": "Bearer nat_not-a-token"}
    assert client.get("/api/v1/contacts", headers=wrong).status_code == 401
    events_only = _token(network, "events-reader", "events")
    refused = client.get("/api/v1/contacts", headers=events_only)
    assert (
        refused.status_code == 403
        and refused.json()["detail"] == "this token may not read contacts"
    )
    assert client.get("/api/v1/events", headers=events_only).status_code == 200
    for path in ("/api/v1/campaigns", "/api/v1/deliveries", "/api/v1/points/C0001"):
        assert client.get(path, headers=events_only).status_code == 403, path
    revoke_token(network.engine, "events-reader", now=network.clock.now())
    gone = client.get("/api/v1/events", headers=events_only)
    assert gone.status_code == 401 and gone.json()["detail"] == "unknown or revoked token"


def test_tokens_are_stored_hashed_and_their_use_dated(network: App, client: TestClient) -> None:
    headers = _token(network, "bi", "contacts")
    secret = headers["Authorization"].removeprefix("Bearer ")
    with Session(network.engine) as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash == token_hash(secret) and secret not in json.dumps(
            row.model_dump(mode="json")
        )
        assert row.last_used_at is None and row.scopes == ["contacts"]
    assert client.get("/api/v1/contacts?limit=1", headers=headers).status_code == 200
    with Session(network.engine) as session:
        assert session.scalars(select(ApiToken)).one().last_used_at == network.clock.now()


def test_pages_lose_and_repeat_nothing_while_rows_are_added(
    network: App, client: TestClient
) -> None:
    headers = _token(network)
    expected = _events(network, 23)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/events", params=params, headers=headers).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        pages += 1
        if pages == 1:
            expected += _events(network, 7, contact="C0003")  # arrive while paging
        if not page["has_more"]:
            break
    assert seen == sorted(expected) and len(set(seen)) == len(seen) == 30
    # Later, from the kept cursor: only what was added since, then nothing.
    later = _events(network, 3, kind="clicked")
    page = client.get("/api/v1/events", params={"cursor": cursor}, headers=headers).json()
    assert [e["id"] for e in page["data"]] == later and not page["has_more"]
    again = client.get(
        "/api/v1/events", params={"cursor": page["next_cursor"]}, headers=headers
    ).json()
    assert again["data"] == [] and again["next_cursor"] == page["next_cursor"]
    assert (
        client.get("/api/v1/events", params={"cursor": "garbage!"}, headers=headers).status_code
        == 400
    )
    clicked = client.get("/api/v1/events", params={"type": "clicked"}, headers=headers).json()
    assert [e["id"] for e in clicked["data"]] == later


def test_contacts_carry_consents_and_engagement(network: App, client: TestClient) -> None:
    headers = _token(network)
    _events(network, 2, contact="C0002")
    now = network.clock.now()
    with Session(network.engine) as session, session.begin():
        session.add(
            Event(
                type="opened",
                channel="email",
                contact_id=contact_id(network, "C0002"),
                occurred_at=now,
                machine=True,
            )
        )
    found = client.get("/api/v1/contacts/C0002", headers=headers).json()
    assert (found["first_name"], found["last_name"], found["company_id"]) == (
        "Julien",
        "Garnier",
        "D001",
    )
    assert found["mobile"] == "+33623456789"
    assert {c["channel"]: c["basis"] for c in found["consents"]} == {
        "email": "consent",
        "sms": "consent",
        "print": "legitimate_interest",
    }
    # Two openings by a person; the scanner's is not counted.
    assert [(e["event"], e["count"]) for e in found["engagement"]] == [("opened", 2)]
    everyone = []
    cursor = None
    while True:
        page = client.get(
            "/api/v1/contacts",
            params={"limit": 4, **({"cursor": cursor} if cursor else {})},
            headers=headers,
        ).json()
        everyone += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    with Session(network.engine) as session:
        assert everyone == list(session.scalars(select(Contact.external_id).order_by(Contact.id)))
    assert client.get("/api/v1/contacts/C9999", headers=headers).status_code == 404


def test_deliveries_campaigns_and_the_funnel(
    network: App, client: TestClient, cli, config_path: Path
) -> None:  # type: ignore[no-untyped-def]
    headers = _token(network)
    make_delivery(network, contact="C0001")
    make_delivery(network, contact="C0002", channel="sms")
    deliveries = client.get("/api/v1/deliveries", headers=headers).json()["data"]
    assert [(d["contact_id"], d["channel"], d["campaign"]) for d in deliveries] == [
        ("C0001", "email", "web-test"),
        ("C0002", "sms", "web-test"),
    ]
    campaigns = client.get("/api/v1/campaigns", headers=headers).json()["data"]
    assert [(c["key"], c["messages"]) for c in campaigns] == [("web-test", 2)]
    funnel = client.get("/api/v1/campaigns/web-test/funnel", headers=headers).json()
    report = cli("report", "-c", str(config_path), "--campaign", "web-test", "--json")
    assert report.code == 0, report.err
    totals = {row["channel"]: row for row in json.loads(report.out)["funnel_totals"]}
    for row in funnel["channels"]:
        for key, value in row.items():
            if key != "channel":
                assert totals[row["channel"]][key] == value, (row["channel"], key)
    assert {r["channel"]: r["sent"] for r in funnel["channels"]}["sms"] == 1
    assert client.get("/api/v1/campaigns/nope/funnel", headers=headers).status_code == 404


def test_standings_and_points(network: App, client: TestClient) -> None:
    from network_anim.challenges.leaderboard import leaderboard
    from network_anim.challenges.ledger import credit
    from network_anim.challenges.registration import register

    headers = _token(network)
    challenge = network.config.challenge("pbx-2027")
    now = network.clock.now()
    ids = {c: contact_id(network, c) for c in ("C0002", "C0007", "C0010")}
    with Session(network.engine) as session, session.begin():
        people = session.scalars(
            select(Contact).where(Contact.external_id.in_(["C0002", "C0007", "C0010"]))  # type: ignore[attr-defined]
        ).all()
        register(network, session, challenge, list(people), via="cli")
        for contact, points in (("C0002", 300), ("C0007", 500), ("C0010", 100)):
            credit(
                session,
                contact_id=ids[contact],
                points=points,
                kind="bonus",
                source_key=f"api-test:{contact}",
                reason="test",
                now=now,
                challenge_key="pbx-2027",
            )
    board = client.get(
        "/api/v1/challenges/pbx-2027/standings", params={"limit": 2}, headers=headers
    ).json()
    expected = leaderboard(network, "pbx-2027", limit=2)
    assert (
        [(r["rank"], r["id"], r["points"]) for r in board["rows"]]
        == [(r.rank, r.subject, r.points) for r in expected]
        == [(1, "C0007", 500), (2, "C0002", 300)]
    )
    points = client.get("/api/v1/points/C0007", headers=headers).json()
    assert points["challenges"] == [{"challenge": "pbx-2027", "registered": True, "points": 500}]
    assert client.get("/api/v1/challenges/nope/standings", headers=headers).status_code == 404
    assert client.get("/api/v1/points/C9999", headers=headers).status_code == 404


def test_cli_makes_lists_and_revokes_tokens(network: App, cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    made = cli(
        "api",
        "token",
        "create",
        "crm",
        "--scope",
        "contacts",
        "--scope",
        "events",
        "-c",
        str(config_path),
        "--json",
    )
    assert made.code == 0, made.err
    secret = json.loads(made.out)["token"]
    assert secret.startswith("nat_") and len(secret) > 40
    listed = json.loads(cli("api", "token", "list", "-c", str(config_path), "--json").out)
    assert [(t["name"], t["scopes"], t["revoked_at"]) for t in listed] == [
        ("crm", ["contacts", "events"], None)
    ]
    assert secret not in cli("api", "token", "list", "-c", str(config_path)).out
    again = cli("api", "token", "create", "crm", "--scope", "all", "-c", str(config_path))
    assert again.code == 1 and "a token named 'crm' exists" in again.err
    bad = cli("api", "token", "create", "x", "--scope", "everything", "-c", str(config_path))
    assert bad.code == 1 and "unknown scope(s) 'everything'" in bad.err
    assert cli("api", "token", "revoke", "crm", "-c", str(config_path)).code == 0
    listed = json.loads(cli("api", "token", "list", "-c", str(config_path), "--json").out)
    assert listed[0]["revoked_at"] is not None
    assert cli("api", "token", "revoke", "nope", "-c", str(config_path)).code == 1
    with Session(network.engine) as session:
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 1
