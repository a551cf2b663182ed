"""SMS adapter: pure payload/classification, the official Twilio client against a real local
stand-in of the Messages API, and the JSON-lines file transport."""

# The stand-in fixture is imported by name below; tests taking it as a parameter would
# otherwise be reported as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import re
import sys
import time
import tomllib
from pathlib import Path

import pytest

from network_anim.channels.contract import Outbound, Recipient, SendResult
from network_anim.channels.sms import (
    FileSmsTransport,
    RebasedAsyncHttpClient,
    TwilioTransport,
    build_twilio_params,
    classify_twilio_error,
    sms_cost,
)
from network_anim.channels.sms_encoding import sms_segments
from network_anim.clock import SimulatedClock
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import SmsSettings
from network_anim.domain import Outcome
from tests.conftest import WEDNESDAY_MORNING
from tests.peers.twilio_standin import (
    Delay,
    TwilioStandin,
    twilio_standin,  # noqa: F401  (fixture, used by name)
    unresponsive_base_url,
    unused_base_url,
)

SMS_TOML = Path(__file__).resolve().parents[1] / "channels" / "sms.toml"
SERVICE_SID = "MG" + "0123456789abcdef" * 2
MESSAGE_SID = re.compile(r"^SM[0-9a-f]{32}$")

FRENCH = "Bonjour Élodie, votre remise de 20 € à l'agence de Créteil est disponible : à très vite !"


@pytest.fixture(scope="module")
def definition() -> ChannelDefinition:
    # The real definition file, so costs follow what the channel manager configured.
    return ChannelDefinition.model_validate(tomllib.loads(SMS_TOML.read_text(encoding="utf-8")))


def outbound(n: int, phone: str | None, text: str = FRENCH) -> Outbound:
    return Outbound(
        delivery_id=n,
        idempotency_key=f"camp:step:2025-01-01:{n}",
        channel="sms",
        recipient=Recipient(contact_id=n, external_id=f"C{n}", display_name=f"C {n}", phone=phone),
        text=text,
    )


def mobile(n: int) -> str:
    return f"+3361234{n:04d}"


def settings_for(standin: TwilioStandin, **overrides: object) -> SmsSettings:
    values: dict[str, object] = {
        "transport": "twilio",
        "sender": "ANIMRESEAU",
        "api_base_url": standin.base_url,
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmsSettings.model_validate(values)


async def send(
    standin: TwilioStandin,
    definition: ChannelDefinition,
    items: list[Outbound],
    *,
    settings: SmsSettings | None = None,
    auth_token: str | None = None,
    **kwargs: object,
) -> list[SendResult]:
    transport = TwilioTransport(
        settings or settings_for(standin),
        definition,
        account_sid=standin.account_sid,
        auth_token=auth_token or standin.auth_token,
        **kwargs,  # type: ignore[arg-type]
    )
    async with transport:
        return await transport.send_batch(items)


# ------------------------------------------------------------------------- pure part


def test_build_params_with_sender() -> None:
    item = outbound(1, "+33612345678")
    params = build_twilio_params(item, SmsSettings(sender="ANIMRESEAU"))
    assert params == {"to": "+33612345678", "body": FRENCH, "from_": "ANIMRESEAU"}


def test_build_params_with_messaging_service_and_callback() -> None:
    item = outbound(1, "+33612345678")
    settings = SmsSettings(sender="ANIMRESEAU", messaging_service_sid=SERVICE_SID)
    params = build_twilio_params(item, settings, status_callback_url="https://x.test/sms/status")
    assert params == {
        "to": "+33612345678",
        "body": FRENCH,
        "messaging_service_sid": SERVICE_SID,
        "status_callback": "https://x.test/sms/status",
    }


def test_build_params_refuses_a_recipient_without_phone() -> None:
    with pytest.raises(ValueError, match="no mobile number"):
        build_twilio_params(outbound(1, None), SmsSettings())


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (429, 20429, Outcome.DEFERRED),
        (429, None, Outcome.DEFERRED),
        (500, 20500, Outcome.UNKNOWN),
        (502, None, Outcome.UNKNOWN),
        (503, 20503, Outcome.UNKNOWN),
        (400, 21610, Outcome.OPTED_OUT),
        (400, 21211, Outcome.FAILED),
        (400, 21614, Outcome.FAILED),
        (400, 21408, Outcome.FAILED),
        (400, 21612, Outcome.FAILED),
        (400, 21617, Outcome.FAILED),
        (404, 20404, Outcome.FAILED),
        (400, None, Outcome.FAILED),
        (401, 20003, Outcome.DEFERRED),
        (403, 20003, Outcome.DEFERRED),
    ],
)
def test_classify_twilio_error(status: int, code: int | None, outcome: Outcome) -> None:
    result = classify_twilio_error(status, code, "some message")
    assert result.outcome is outcome
    assert f"HTTP {status}" in result.detail
    assert "some message" in result.detail
    if code is not None:
        assert str(code) in result.detail


def test_classify_auth_error_names_the_configured_env_vars() -> None:
    settings = SmsSettings(account_sid_env="ACME_TWILIO_SID", auth_token_env="ACME_TWILIO_TOKEN")
    result = classify_twilio_error(401, 20003, "Authenticate", settings=settings)
    assert result.outcome is Outcome.DEFERRED
    assert "ACME_TWILIO_SID" in result.detail
    assert "ACME_TWILIO_TOKEN" in result.detail


def test_cost_is_segments_times_price(definition: ChannelDefinition) -> None:
    text = "Votre commande est prête " * 5  # 125 characters with "ê": UCS-2, 2 segments
    assert sms_segments(text).segments == 2
    assert sms_cost(text, definition) == pytest.approx(2 * definition.cost.per_segment)


async def test_rebased_client_rewrites_scheme_host_and_keeps_path() -> None:
    client = RebasedAsyncHttpClient("http://127.0.0.1:4010/twilio/", timeout=1.0)
    try:
        url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1"
        assert client.rebase(url) == (
            "http://127.0.0.1:4010/twilio/2010-04-01/Accounts/AC1/Messages.json?x=1"
        )
    finally:
        await client.close()


def test_rebased_client_rejects_a_base_url_without_scheme() -> None:
    with pytest.raises(ValueError, match="api_base_url"):
        RebasedAsyncHttpClient("127.0.0.1:4010", timeout=1.0)


# ---------------------------------------------------------------- Twilio, over HTTP


async def test_batch_of_ten_reaches_twilio_with_exact_form_fields(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    items = [outbound(n, mobile(n), f"{FRENCH} (n°{n})") for n in range(10)]
    results = await send(twilio_standin, definition, items)

    assert [r.outcome for r in results] == [Outcome.SENT] * 10
    assert len(twilio_standin.requests) == 10
    by_sid = {req.sid: req for req in twilio_standin.requests}
    for item, result in zip(items, results, strict=True):
        assert result.provider_id is not None and MESSAGE_SID.match(result.provider_id)
        request = by_sid[result.provider_id]  # results come back in input order
        assert request.form == {"To": item.recipient.phone, "From": "ANIMRESEAU", "Body": item.text}
        assert request.auth == (twilio_standin.account_sid, twilio_standin.auth_token)
        assert request.path == f"/2010-04-01/Accounts/{twilio_standin.account_sid}/Messages.json"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert request.headers["User-Agent"].startswith("twilio-python/")
        assert result.cost == pytest.approx(
            sms_segments(item.text).segments * definition.cost.per_segment
        )
    assert "é" in twilio_standin.requests[0].form["Body"]  # accents intact end to end


async def test_messaging_service_replaces_from(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    settings = settings_for(twilio_standin, messaging_service_sid=SERVICE_SID)
    results = await send(twilio_standin, definition, [outbound(1, mobile(1))], settings=settings)
    assert results[0].outcome is Outcome.SENT
    form = twilio_standin.requests[0].form
    assert form == {"To": mobile(1), "MessagingServiceSid": SERVICE_SID, "Body": FRENCH}


@pytest.mark.parametrize("enabled", [True, False])
async def test_status_callback_only_when_enabled(
    twilio_standin: TwilioStandin, definition: ChannelDefinition, enabled: bool
) -> None:
    settings = settings_for(twilio_standin, status_callback=enabled)
    url = "https://anim.example.com/webhooks/twilio/status"
    await send(
        twilio_standin,
        definition,
        [outbound(1, mobile(1))],
        settings=settings,
        status_callback_url=url,
    )
    form = twilio_standin.requests[0].form
    assert form.get("StatusCallback") == (url if enabled else None)


@pytest.mark.parametrize(
    ("phone", "outcome", "fragments"),
    [
        ("+33600000429", Outcome.DEFERRED, ["HTTP 429", "20429"]),
        ("+33600000500", Outcome.UNKNOWN, ["HTTP 500", "20500"]),
        ("+33600000503", Outcome.UNKNOWN, ["HTTP 503"]),
        ("+33600021610", Outcome.OPTED_OUT, ["HTTP 400", "21610", "unsubscribed recipient"]),
        ("+33600021211", Outcome.FAILED, ["HTTP 400", "21211", "Invalid 'To' Phone Number"]),
        ("+33600021614", Outcome.FAILED, ["21614", "not a mobile number"]),
        ("+33600021408", Outcome.FAILED, ["21408"]),
    ],
)
async def test_twilio_errors_are_classified(
    twilio_standin: TwilioStandin,
    definition: ChannelDefinition,
    phone: str,
    outcome: Outcome,
    fragments: list[str],
) -> None:
    [result] = await send(twilio_standin, definition, [outbound(1, phone)])
    assert result.outcome is outcome, result.detail
    for fragment in fragments:
        assert fragment in result.detail
    assert "Unable to create record" not in result.detail
    assert result.provider_id is None
    # One POST only: the client library does not retry by itself (no double SMS on 5xx).
    assert len(twilio_standin.attempts) == 1
    assert twilio_standin.requests == []


async def test_mixed_batch_keeps_input_order(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    phones = [mobile(1), "+33600000429", None, "+33600021610", mobile(2), "+33600000500"]
    items = [outbound(n, phone) for n, phone in enumerate(phones)]
    results = await send(twilio_standin, definition, items)
    assert [r.outcome for r in results] == [
        Outcome.SENT,
        Outcome.DEFERRED,
        Outcome.FAILED,
        Outcome.OPTED_OUT,
        Outcome.SENT,
        Outcome.UNKNOWN,
    ]
    assert results[2].detail == "no mobile number"
    assert len(twilio_standin.attempts) == 5  # nothing was sent for the missing number


async def test_invalid_phone_fails_without_a_request(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    [result] = await send(twilio_standin, definition, [outbound(1, "06 12 34 56 78")])
    assert result.outcome is Outcome.FAILED
    assert "E.164" in result.detail
    assert twilio_standin.attempts == []


async def test_wrong_auth_token_is_deferred_with_env_var_hint(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    settings = settings_for(
        twilio_standin, account_sid_env="NETANIM_TWILIO_SID", auth_token_env="NETANIM_TWILIO_TOKEN"
    )
    [result] = await send(
        twilio_standin,
        definition,
        [outbound(1, mobile(1))],
        settings=settings,
        auth_token="not-the-token",
    )
    assert result.outcome is Outcome.DEFERRED
    assert "HTTP 401" in result.detail and "20003" in result.detail
    assert "NETANIM_TWILIO_SID" in result.detail and "NETANIM_TWILIO_TOKEN" in result.detail
    assert twilio_standin.attempts[0].status == 401
    assert twilio_standin.requests == []


async def test_server_down_is_deferred(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    settings = settings_for(twilio_standin, api_base_url=unused_base_url())
    [result] = await send(twilio_standin, definition, [outbound(1, mobile(1))], settings=settings)
    assert result.outcome is Outcome.DEFERRED, result.detail
    assert "cannot connect" in result.detail


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs")
async def test_connect_timeout_is_deferred(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    with unresponsive_base_url() as url:
        settings = settings_for(twilio_standin, api_base_url=url, timeout=0.3)
        [result] = await send(
            twilio_standin, definition, [outbound(1, mobile(1))], settings=settings
        )
    assert result.outcome is Outcome.DEFERRED, result.detail
    assert "nothing was sent" in result.detail


async def test_timeout_after_sending_is_unknown(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    twilio_standin.faults["+33600000777"] = Delay(10.0)
    settings = settings_for(twilio_standin, timeout=0.3)
    started = time.monotonic()
    [result] = await send(
        twilio_standin, definition, [outbound(1, "+33600000777")], settings=settings
    )
    assert time.monotonic() - started < 3
    assert result.outcome is Outcome.UNKNOWN, result.detail
    assert "0.3 s" in result.detail
    # The reason it must not be resent: the stand-in did accept (queue) the message.
    assert [r.form["To"] for r in twilio_standin.requests] == ["+33600000777"]


async def test_connection_dropped_after_sending_is_unknown(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    [result] = await send(twilio_standin, definition, [outbound(1, "+33600000999")])
    assert result.outcome is Outcome.UNKNOWN, result.detail
    assert "ServerDisconnectedError" in result.detail
    assert len(twilio_standin.attempts) == 1


async def test_ucs2_message_cost(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    text = "Votre commande est prête, passez la prendre à l'agence avant jeudi. " * 2
    encoding = sms_segments(text)
    assert (encoding.encoding, encoding.segments) == ("UCS-2", 3)
    [result] = await send(twilio_standin, definition, [outbound(1, mobile(1), text)])
    assert result.outcome is Outcome.SENT
    assert result.cost == pytest.approx(3 * 0.075)
    assert twilio_standin.requests[0].form["Body"] == text


async def test_concurrency_is_bounded(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    twilio_standin.delay = 0.1
    items = [outbound(n, mobile(n)) for n in range(9)]
    results = await send(twilio_standin, definition, items, concurrency=3)
    assert all(r.outcome is Outcome.SENT for r in results)
    assert 2 <= twilio_standin.max_in_flight <= 3


async def test_session_is_reused_across_batches_and_closed_on_exit(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    transport = TwilioTransport(
        settings_for(twilio_standin),
        definition,
        account_sid=twilio_standin.account_sid,
        auth_token=twilio_standin.auth_token,
    )
    async with transport:
        http = transport._http
        assert isinstance(http, RebasedAsyncHttpClient)
        session = http.session
        await transport.send_batch([outbound(1, mobile(1))])
        await transport.send_batch([outbound(2, mobile(2))])
        assert transport._http is http and http.session is session and not session.closed
    assert session.closed
    assert len(twilio_standin.requests) == 2


async def test_send_outside_context_is_a_programming_error(
    twilio_standin: TwilioStandin, definition: ChannelDefinition
) -> None:
    transport = TwilioTransport(
        settings_for(twilio_standin), definition, account_sid="AC1", auth_token="t"
    )
    with pytest.raises(RuntimeError, match="async with"):
        await transport.send_batch([outbound(1, mobile(1))])


# --------------------------------------------------------------------------- file transport


# The engine clock of the file transport tests that do not look at the time.
CLOCK = SimulatedClock(WEDNESDAY_MORNING)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def test_file_transport_writes_json_lines(
    tmp_path: Path, definition: ChannelDefinition
) -> None:
    from datetime import UTC, datetime

    clock = SimulatedClock(datetime(2025, 3, 4, 9, 30, tzinfo=UTC))
    ucs2 = "Votre commande est prête " * 5
    items = [outbound(1, mobile(1)), outbound(2, None), outbound(3, mobile(3), ucs2)]
    async with FileSmsTransport(tmp_path / "sms", definition, clock=clock) as transport:
        results = await transport.send_batch(items)

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert results[0].provider_id == f"file:{items[0].idempotency_key}"
    assert results[2].cost == pytest.approx(2 * 0.075)
    lines = read_lines(tmp_path / "sms" / "sms.jsonl")
    assert lines == [
        {
            "idempotency_key": items[0].idempotency_key,
            "to": mobile(1),
            "body": FRENCH,
            "encoding": "GSM-7",
            "segments": 1,
            "cost": 0.075,
            "at": "2025-03-04T09:30:00+00:00",
        },
        {
            "idempotency_key": items[2].idempotency_key,
            "to": mobile(3),
            "body": ucs2,
            "encoding": "UCS-2",
            "segments": 2,
            "cost": 0.15,
            "at": "2025-03-04T09:30:00+00:00",
        },
    ]
    assert "Élodie" in (tmp_path / "sms" / "sms.jsonl").read_text(encoding="utf-8")


async def test_file_transport_skips_keys_already_written(
    tmp_path: Path, definition: ChannelDefinition
) -> None:
    first = [outbound(1, mobile(1)), outbound(2, mobile(2))]
    async with FileSmsTransport(tmp_path, definition, clock=CLOCK) as transport:
        await transport.send_batch(first)
        # Same key twice in one session, and inside one batch: written once.
        again = await transport.send_batch(
            [first[0], outbound(3, mobile(3)), outbound(3, mobile(3))]
        )
    assert [r.outcome for r in again] == [Outcome.SENT] * 3
    assert "not written again" in again[0].detail

    # A new process retrying after a crash: the keys are read back from the file.
    async with FileSmsTransport(tmp_path, definition, clock=CLOCK) as transport:
        retried = await transport.send_batch([first[1], outbound(4, mobile(4))])
    assert retried[0].provider_id == f"file:{first[1].idempotency_key}"
    assert "not written again" in retried[0].detail
    keys = [line["idempotency_key"] for line in read_lines(tmp_path / "sms.jsonl")]
    assert keys == [
        first[0].idempotency_key,
        first[1].idempotency_key,
        "camp:step:2025-01-01:3",
        "camp:step:2025-01-01:4",
    ]


async def test_file_transport_recovers_from_a_torn_last_line(
    tmp_path: Path, definition: ChannelDefinition
) -> None:
    path = tmp_path / "out.jsonl"
    item = outbound(1, mobile(1))
    path.write_text(json.dumps({"idempotency_key": "old"}) + "\n" + '{"idempotency_key": "camp:st')
    async with FileSmsTransport(path, definition, clock=CLOCK) as transport:
        results = await transport.send_batch([outbound(9, mobile(9)), item])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    new = results[1]
    assert new.outcome is Outcome.SENT and "written" in new.detail
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"idempotency_key": "camp:st'  # the torn line is left as it was
    assert [json.loads(line)["idempotency_key"] for line in lines[2:]] == [
        "camp:step:2025-01-01:9",
        item.idempotency_key,
    ]
