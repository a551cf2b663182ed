"""One-off broadcasts end to end on the embedded transports, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Contact, Delivery, Message, Post
from tests.conftest import SAMPLE_NETWORK, STOCK_ALERT, WELCOME, broadcast, run_at


def _import(cli, config_path: Path) -> None:
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0


def _deliveries(app: App) -> list[Delivery]:
    with Session(app.engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_dry_run_counts_costs_samples_and_writes_nothing(app: App, cli, config_path: Path) -> None:
    _import(cli, config_path)
    result = broadcast(
        cli,
        config_path,
        *WELCOME,
        "--id",
        "w1",
        "--dry-run",
        "--json",
    )
    assert result.code == 0, result
    summary = json.loads(result.out)
    # 13 contacts with web access get the post; 11 personal emails; 3 letters stand in
    # for a shared mailbox or no email (see examples/network.csv).
    assert summary["planned"] == {"intranet": 13, "email": 11, "print": 3}
    assert summary["total_cost"] == round(11 * 0.001 + 3 * 1.65, 4)
    with Session(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    table = broadcast(
        cli,
        config_path,
        *WELCOME,
        "--id",
        "w1",
        "--dry-run",
    )
    assert "sample: email" in table.out and "sample: print" in table.out
    assert "Bienvenue dans le réseau" in table.out


def test_broadcast_sends_each_contact_on_its_channel_once(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    _import(cli, config_path)
    args = (
        "broadcast",
        "-c",
        str(config_path),
        "--audience",
        "all",
        *WELCOME,
        "--id",
        "w1",
        "--json",
    )
    first = json.loads(cli(*args).out)
    assert first["outcomes"] == {
        "intranet": {"sent": 13},
        "email": {"sent": 11},
        "print": {"sent": 3},
    }
    emails = sorted((tmp_path / "var/outbox/email").glob("*.eml"))
    assert len(emails) == 11
    letters = list((tmp_path / "var/exports/print").glob("letters-*.pdf"))
    assert len(letters) == 1
    # The second run with the same id plans nothing and sends nothing.
    second = json.loads(cli(*args).out)
    assert second["planned"] == {} and second["outcomes"] == {}
    assert second["already_planned"] == 27
    assert len(list((tmp_path / "var/outbox/email").glob("*.eml"))) == 11
    assert len(list((tmp_path / "var/exports/print").glob("letters-*.pdf"))) == 1
    deliveries = _deliveries(app)
    assert len(deliveries) == 27 and all(d.status == "sent" for d in deliveries)
    assert len({d.idempotency_key for d in deliveries}) == 27


def test_email_points_to_the_post_and_offers_one_click_unsubscribe(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    _import(cli, config_path)
    broadcast(
        cli,
        config_path,
        *WELCOME,
        "--id",
        "w1",
    )
    with Session(app.engine) as session:
        delivery = session.scalars(select(Delivery).where(Delivery.channel == "email")).first()
        assert delivery is not None
        post = session.scalars(
            select(Post).where(Post.message_id == delivery.message_id, Post.language == "fr")
        ).one()
        assert (
            post.title == "Bienvenue sur votre espace partenaire" and post.published_at is not None
        )
    raw = Path(delivery.provider_id or "").read_bytes()
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    post_links = [w for w in text.split() if "/p/" in w]
    assert post_links and post_links[0] in html
    token = post_links[0].rsplit("/", 1)[1]
    assert app.signer.verify("post", token) == [post.id, delivery.contact_id]
    assert app.signer.verify("unsubscribe", unsubscribe.rsplit("/", 1)[1]) == [
        delivery.contact_id,
        "email",
    ]


def test_english_contact_gets_english_template(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    _import(cli, config_path)
    broadcast(
        cli,
        config_path,
        *WELCOME,
        "--id",
        "w1",
    )
    subjects = {}
    for path in (tmp_path / "var/outbox/email").glob("*.eml"):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        subjects[mail["To"].addresses[0].username] = str(mail["Subject"])
    assert subjects["j.peeters"] == "Welcome to the network, James"
    assert subjects["helene.dupre"] == "Bienvenue dans le réseau, Hélène"


def test_promotional_sms_outside_legal_window_waits(
    app: App, cli, config_path: Path, clock, tmp_path: Path
) -> None:
    _import(cli, config_path)
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    result = run_at(
        cli,
        config_path,
        sunday,
        *STOCK_ALERT,
        "--id",
        "s1",
        "--json",
    )
    summary = json.loads(result.out)
    assert summary["outcomes"].get("sms", {}).get("sent", 0) == 0
    assert summary["deferred"]["sms"] == 12
    sms_rows = [d for d in _deliveries(app) if d.channel == "sms"]
    monday_8_paris = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert {d.due_at for d in sms_rows if d.status == "pending"} >= {monday_8_paris}
    assert all("outside the legal sms window" in d.reason for d in sms_rows)
    assert not (tmp_path / "var/outbox/sms/sms.jsonl").exists()
    # Monday morning the dispatcher sends them; nothing twice.
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    dispatched = run_at(cli, config_path, monday, command="dispatch")
    assert json.loads(dispatched.out)["outcomes"]["sms"]["sent"] >= 11
    lines = (tmp_path / "var/outbox/sms/sms.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(line)["idempotency_key"] for line in lines})


def test_frequency_cap_drops_email_but_keeps_the_post(app: App, cli, config_path: Path) -> None:
    _import(cli, config_path)
    for n in range(3):
        assert (
            broadcast(
                cli,
                config_path,
                "--urgency",
                "reminder",
                "--template",
                "welcome",
                "--id",
                f"r{n}",
            ).code
            == 0
        )
    fourth = json.loads(
        broadcast(
            cli,
            config_path,
            *WELCOME,
            "--id",
            "i4",
            "--json",
            "--explain",
        ).out
    )
    helene = next(e for e in fourth["explain"] if e["contact"] == "C0001")
    assert [c["channel"] for c in helene["choices"]] == ["intranet"]
    assert any(
        "frequency cap reached: 3 email in 7 days" in x["reason"] for x in helene["excluded"]
    )
    # Operational messages are neither counted nor blocked.
    operational = json.loads(
        broadcast(
            cli,
            config_path,
            *WELCOME,
            "--id",
            "o5",
            "--kind",
            "operational",
            "--json",
        ).out
    )
    assert operational["planned"]["email"] == 11


def test_unknown_audience_and_template_change_nothing(app: App, cli, config_path: Path) -> None:
    _import(cli, config_path)
    mistakes = [
        (("--audience", "nobody", *WELCOME), "unknown audience 'nobody'"),
        (
            ("--audience", "all", "--urgency", "info", "--template", "nope"),
            "unknown template 'nope'",
        ),
        (
            ("--audience", "all", "--urgency", "urgent", "--template", "stock-alert"),
            "'product' is undefined",
        ),
        (("--audience", "all", *WELCOME, "--var", "oops"), "NAME=VALUE"),
    ]
    for args, message in mistakes:
        result = cli("broadcast", "-c", str(config_path), *args)
        assert result.code == 1 and message in result.err, (args, result)
    assert _deliveries(app) == []


def test_uninitialised_database_is_a_clear_error(cli, tmp_path: Path) -> None:
    from tests.conftest import write_config

    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    result = cli(
        "broadcast",
        "-c",
        str(config),
        "--audience",
        "all",
        *WELCOME,
    )
    assert result.code == 1 and "netanim init" in result.err


def test_broadcast_attaches_documents_to_the_post(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    _import(cli, config_path)
    document = tmp_path / "argumentaire.pdf"
    document.write_bytes(b"%PDF-1.4 argumentaire")
    missing = broadcast(
        cli, config_path, *WELCOME, "--id", "a0", "--attach", str(tmp_path / "nope.pdf")
    )
    assert missing.code == 1 and "nope.pdf: file not found" in missing.err
    assert broadcast(cli, config_path, *WELCOME, "--id", "a1", "--attach", str(document)).code == 0
    from network_anim.db.models import PostAttachment

    with Session(app.engine) as session:
        files = session.scalars(select(PostAttachment)).all()
    # One per canonical page (French and English), the bytes stored once by content hash.
    assert {f.filename for f in files} == {"argumentaire.pdf"} and len(files) == 2
    stored = tmp_path / "var" / "attachments" / files[0].sha256
    assert stored.read_bytes() == b"%PDF-1.4 argumentaire"


def test_a_french_holiday_holds_french_sms_but_not_belgian_ones(
    app: App, cli, config_path: Path
) -> None:
    """The SMS window skips public holidays of the contact's company's country: on
    Bastille Day the French contacts' SMS wait for the next day, the Brussels one goes."""
    _import(cli, config_path)
    bastille_day = datetime(2026, 7, 14, 9, 0, tzinfo=UTC)  # a Tuesday, 11:00 in Paris
    assert run_at(cli, config_path, bastille_day, *STOCK_ALERT, "--id", "b1").code == 0
    with Session(app.engine) as session:
        rows = session.execute(
            select(Delivery.due_at, Contact.external_id)
            .join(Contact)
            .where(Delivery.channel == "sms")
        ).all()
    due = {external_id: due_at for due_at, external_id in rows}
    assert due["C0012"] == bastille_day  # Brussels: an ordinary Tuesday
    french = [when for external_id, when in due.items() if external_id != "C0012"]
    assert french and all(when.date() == date(2026, 7, 15) for when in french)


def test_the_dry_run_and_the_real_broadcast_give_the_same_json_keys(
    app: App, cli, config_path: Path
) -> None:
    _import(cli, config_path)
    dry = json.loads(broadcast(cli, config_path, *WELCOME, "--id", "k1", "--dry-run", "--json").out)
    real = json.loads(broadcast(cli, config_path, *WELCOME, "--id", "k1", "--json").out)
    assert sorted(dry) == sorted(real)
    assert (dry["dry_run"], real["dry_run"]) == (True, False)
    assert dry["planned"] == real["planned"] and dry["cost"] == real["cost"]
    assert dry["message_id"] is None and isinstance(real["message_id"], int)
    assert dry["outcomes"] == {} and sum(real["outcomes"]["email"].values()) == 11
