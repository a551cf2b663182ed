"""`netanim serve` as an operator runs it: /healthz, one-line logs, SIGTERM exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from network_anim.app import App
from network_anim.db.engine import make_engine
from network_anim.db.migrate import head_revision
from network_anim.web.app import create_app
from tests.conftest import write_config


async def _get(app: App, path: str) -> httpx.Response:
    fastapi_app = create_app(app)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)


async def test_healthz_is_ok_on_a_current_schema(app: App) -> None:
    response = await _get(app, "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "reachable", "schema": head_revision()}


async def test_healthz_is_503_when_the_schema_is_behind(app: App) -> None:
    with app.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = await _get(app, "/healthz")
    finally:  # the PostgreSQL database is shared by the whole run
        with app.engine.begin() as conn:
            conn.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )
    assert response.status_code == 503
    body = response.json()
    assert body["schema"] == "0001" and body["expected_schema"] == head_revision()
    assert "netanim init" in body["fix"]


@pytest.fixture
async def unreachable(app: App) -> AsyncIterator[App]:
    """The same app once its database has gone (a PostgreSQL nobody listens to)."""
    real = app.engine
    app.engine = make_engine("postgresql://postgres@127.0.0.1:9/nowhere")
    try:
        yield app
    finally:
        app.engine.dispose()
        app.engine = real


async def test_healthz_is_503_when_the_database_does_not_answer(unreachable: App) -> None:
    response = await _get(unreachable, "/healthz")
    assert response.status_code == 503
    assert response.json()["database"].startswith("unreachable: ")


SERVE = [sys.executable, "-m", "network_anim", "serve"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_logs_json_lines_answers_healthz_and_exits_0_on_sigterm(
    tmp_path: Path,
    cli,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'serve.db'}")
    assert cli("init", "-c", str(config)).code == 0
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*SERVE, "-c", str(config), "--port", str(port), "--log-format", "json"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    try:
        deadline = time.monotonic() + 20
        health = None
        while health is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 200
        assert health.json()["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON record
    messages = [(r["logger"], r["message"]) for r in records]
    assert (
        "netanim.serve",
        f"serving on http://127.0.0.1:{port} (public URL http://localhost:8000)",
    ) in messages
    assert messages[-1] == ("netanim.serve", "stopped (SIGTERM)")
    assert any(r["logger"] == "uvicorn.access" and "/healthz" in r["message"] for r in records)


def test_plain_text_logs_are_one_line_per_record_off_a_terminal() -> None:
    import logging

    from network_anim.cli.logs import OneLineFormatter

    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        record = logging.LogRecord(
            "netanim.daemon",
            logging.ERROR,
            __file__,
            1,
            "tick failed:\n%s",
            ("boom",),
            sys.exc_info(),
        )
    line = OneLineFormatter().format(record)
    assert "\n" not in line
    assert " ERROR netanim.daemon: tick failed: | boom | Traceback" in line
    assert "ValueError: first line | second line" in line
