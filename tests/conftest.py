"""Shared fixtures: one storage fixture parametrized over SQLite and PostgreSQL, an App
built on a throwaway config, the sample network, a simulated clock."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text

from network_anim.app import App, open_app
from network_anim.clock import SimulatedClock
from network_anim.db.engine import make_engine
from network_anim.db.migrate import upgrade

pytest_plugins = ["tests.peers.smtp_server", "tests.peers.twilio_standin"]

REPO = Path(__file__).resolve().parent.parent
SAMPLE_NETWORK = REPO / "examples" / "network.csv"
PG_ADMIN_URL = os.environ.get("NETANIM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# A Wednesday, 11:00 in Paris: inside every legal send window.
WEDNESDAY_MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database created for this test run and dropped after it."""
    name = f"netanim_test_{uuid.uuid4().hex[:12]}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {admin} ({exc}); start it or set NETANIM_TEST_PG"
        )
    base = admin.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_TABLES = (
    "webhook_delivery",
    "webhook_feed",
    "sale_proof",
    "rsvp",
    "api_token",
    "companysegment",
    "postattachment",
    "portal_session",
    "portal_login",
    "leaderboardsnapshot",
    "redemption",
    "reward",
    "pointsaccount",
    "ledgerentry",
    "objective",
    "participant",
    "challenge",
    "product",
    "enrolment",
    "occurrence",
    "sale",
    "event",
    "postread",
    "delivery",
    "post",
    "links",
    "message",
    "campaign",
    "audience",
    "consent",
    "contact",
    "company",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on both backends: a fresh SQLite file, or an emptied PostgreSQL db."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'netanim.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
    engine.dispose()
    yield url


def write_config(
    folder: Path, database_url: str, extra: str = "", *, example_campaigns: bool = True
) -> Path:
    """A config like config.example.toml, writing every output under ``folder``; without
    the example campaigns, ``extra`` can bring a test's own."""
    body = (REPO / "config.example.toml").read_text(encoding="utf-8")
    if not example_campaigns:
        body = body[: body.index("\n[[campaigns]]")]
    body = body.replace('database = "sqlite:///var/netanim.db"', f'database = "{database_url}"')
    body = body.replace('templates_dir = "templates"', f'templates_dir = "{REPO / "templates"}"')
    body = body.replace('channels_dir = "channels"', f'channels_dir = "{REPO / "channels"}"')
    path = folder / "netanim.toml"
    path.write_text(body + "\n" + extra, encoding="utf-8")
    return path


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(WEDNESDAY_MORNING)


@pytest.fixture
def config_path(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path, database_url)


@pytest.fixture
def app(config_path: Path, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    from network_anim.challenges.standings import variable_sources

    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    # Built as the CLI builds its engine: with the per-contact variable sources.
    application = open_app(config_path, clock=clock, variables=variable_sources())
    yield application
    application.close()


@pytest.fixture
def engine(app: App) -> Engine:
    return app.engine


@pytest.fixture
def network(app: App) -> App:
    """The app with the sample network of examples/ imported."""
    from network_anim.network.importer import import_network
    from network_anim.network.network_csv import ImportDefaults, read_network_csv

    import_network(
        app.engine,
        read_network_csv(SAMPLE_NETWORK, ImportDefaults()),
        now=app.clock.now(),
        source="test",
    )
    return app


@pytest.fixture
def artifacts_dir() -> Path:
    folder = REPO / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-500:]!r})"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``netanim ARGS`` in-process, as a user would: exit code, stdout, stderr."""
    from network_anim.cli import main

    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


WELCOME = ("--urgency", "info", "--template", "welcome")
STOCK_ALERT = (
    "--urgency",
    "urgent",
    "--template",
    "stock-alert",
    "--var",
    "product=Routeur X200",
    "--var",
    "quantity=40",
)


def broadcast(cli, config_path: Path, *args: str) -> CliResult:  # type: ignore[no-untyped-def]
    """``netanim broadcast -c CONFIG --audience all ARGS``."""
    return cli("broadcast", "-c", str(config_path), "--audience", "all", *args)


def run_at(cli, config_path: Path, moment: datetime, *args: str, command: str = "broadcast"):  # type: ignore[no-untyped-def]
    """Run a command with the app's clock set to ``moment`` (every command reads one clock)."""
    import network_anim.app as app_module
    from network_anim.clock import SimulatedClock

    original = app_module.open_app

    def at_moment(*a, **kw):  # type: ignore[no-untyped-def]
        kw["clock"] = SimulatedClock(moment)
        return original(*a, **kw)

    app_module.open_app = at_moment
    try:
        if command == "dispatch":
            return cli("dispatch", "-c", str(config_path), "--json")
        return broadcast(cli, config_path, *args)
    finally:
        app_module.open_app = original


def use_smtp(config_path: Path, peer) -> None:  # type: ignore[no-untyped-def]
    """Point the config's email channel at a test SMTP server."""
    text = config_path.read_text(encoding="utf-8")
    text = text.replace('transport = "file"\ndirectory = "var/outbox/email"', 'transport = "smtp"')
    text = text.replace("port = 25\n", f"port = {peer.port}\n")
    text = text.replace('host = "localhost"', 'host = "127.0.0.1"')
    config_path.write_text(text, encoding="utf-8")


def use_twilio(config_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Point the config's SMS channel at the Twilio stand-in, credentials in the env."""
    text = config_path.read_text(encoding="utf-8")
    text = text.replace('transport = "file"\ndirectory = "var/outbox/sms"', 'transport = "twilio"')
    text = text.replace('sender = "ANIMRESEAU"', 'sender = "+33700000001"')
    text = text.replace(
        'api_base_url = "https://api.twilio.com"', f'api_base_url = "{standin.base_url}"'
    )
    config_path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", standin.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", standin.auth_token)
