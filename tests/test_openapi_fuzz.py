"""Property-based fuzzing of the published OpenAPI (``/openapi.json``) with schemathesis:
the tracking links, the Twilio webhooks and the read API (the ``/portal`` pages are left
out), run in-process on the ASGI app over SQLite, with one check only: no answer is a 5xx.

Each generated case is sent as generated (random tokens and signatures: the refusal paths),
then once more past the signature, so the handlers behind it see fuzzed input too:

* tracking: the token re-signed with the generated string inside its payload (the open's
  delivery key, the click's target URL or its path, the unsubscribe channel), or for the
  post link a valid token of a real post and contact;
* webhooks: the generated form signed with the auth token, as Twilio would;
* the read API: with a bearer token that may read everything.

Bounded for CI: ``max_examples`` per operation, no deadline, derandomized (the same cases
on every run). The app's lifespan is not started, so the event writer writes each event
at once (its path when stopped) instead of batching.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import select
from sqlmodel import Session
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

from network_anim.app import App
from network_anim.db.models import Contact
from network_anim.web.api_tokens import create_token
from network_anim.web.app import create_app
from tests.test_web_tracking import Sent, make_delivery

TWILIO_TOKEN = "fuzz-twilio-auth-token"
MAX_EXAMPLES = 30


@pytest.fixture
def fuzz_app(network: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FastAPI, Sent]]:
    if network.engine.dialect.name != "sqlite":
        pytest.skip("the OpenAPI fuzzing runs on SQLite only")
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    monkeypatch.setenv(network.config.channels.sms.auth_token_env, TWILIO_TOKEN)
    fastapi_app = create_app(network)
    # The read API behind a token that may read everything, so its handlers see the
    # fuzzed parameters (without it, every case stops at the 401).
    fastapi_app.state.api_token = create_token(
        network.engine, "fuzz", ["all"], now=network.clock.now()
    )
    yield fastapi_app, make_delivery(network)


@pytest.fixture
def api_schema(fuzz_app: tuple[FastAPI, Sent]) -> Any:
    fastapi_app, _ = fuzz_app
    return schemathesis.openapi.from_asgi("/openapi.json", fastapi_app)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r"^/portal")


def _resigned(case: Any, app: App, sent: Sent) -> bool:
    """Put a verified token (or signature) on ``case``; False if it has nothing to sign."""
    if case.path.startswith("/hooks/twilio/"):
        body = case.body
        if not isinstance(body, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in body.items()
        ):
            return False
        url = app.config.engine.base_url.rstrip("/") + case.formatted_path
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, body)
        case.headers = {**(case.headers or {}), SIGNATURE_HEADER: signature}
        return True
    token = (case.path_parameters or {}).get("token")
    if not isinstance(token, str):
        return False
    signer = app.signer
    with Session(app.engine) as session:
        contact = session.scalar(select(Contact.id).order_by(Contact.id).limit(1))
    if case.path == "/o/{token}.gif":
        payload = [token if len(token) % 2 else sent.key]
        case.path_parameters["token"] = signer.sign("open", payload)
    elif case.path == "/c/{token}":
        target = token if len(token) % 3 == 0 else f"https://www.example.com/{token}"
        case.path_parameters["token"] = signer.sign("click", [sent.key, target])
    elif case.path == "/p/{token}":
        case.path_parameters["token"] = signer.sign("post", [sent.post_id, sent.contact_id])
    elif case.path == "/u/{token}":
        channel = "email" if len(token) % 2 else token
        case.path_parameters["token"] = signer.sign("unsubscribe", [contact, channel])
    else:
        return False
    return True


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error(case: Any, fuzz_app: tuple[FastAPI, Sent]) -> None:
    fastapi_app, sent = fuzz_app
    app: App = fastapi_app.state.netanim.app
    case.call_and_validate(checks=[not_a_server_error])
    if case.path.startswith("/api/"):
        token = fastapi_app.state.api_token
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        case.call_and_validate(checks=[not_a_server_error])
    elif _resigned(case, app, sent):
        case.call_and_validate(checks=[not_a_server_error])
