#!/usr/bin/env python3
"""SMS dispatch bench: does the engine keep to the SMS channel's rate limit?

Issue requirement: "against a minimal local stand-in of the Messages API that answers 201
quickly, with the channel's rate limit set to 50 and to 200 messages/s: achieved rate,
95th-percentile spacing error, and 429s provoked (must be 0)". Done when the achieved
rate is within 5 % of the configured one and no 429 is provoked.

Everything runs on 127.0.0.1 in a temporary folder. The engine's real path is driven:
``netanim import network`` (one contact per company, each with a mobile number and SMS
consent), then for every run one urgent operational SMS per contact queued by the planner
(as ``netanim broadcast --urgency urgent`` would), then ``python -m network_anim dispatch
--json`` in a subprocess: the real Dispatcher, the channel's TokenBucket at
``[channels.sms] rate_per_second``, and the official ``twilio`` client pointed at the
stand-in through ``[channels.sms] api_base_url``.

The stand-in (this process: non-blocking sockets on the asyncio loop, HTTP/1.1 with
keep-alive, no framework) implements ``POST /2010-04-01/Accounts/{sid}/Messages.json``:
Basic auth, form fields, a 201 body shaped like Twilio's. It times each request by the
kernel's receive time of its first bytes (``SO_TIMESTAMPNS``), so a moment when the
shared machine does not schedule the stand-in does not bunch arrivals up, and plays the
provider's rate limit on those times, answering 429 with Twilio's error body (code
20429):

* ``window`` (default): a strict sliding window of one second: a request is refused when
  ``floor(rate)`` requests were already accepted in the second before it;
* ``bucket``: a token bucket at the rate with ``--provider-burst`` tokens (1, the
  engine's default burst): a request is refused when it arrives before its token. Any
  network jitter breaks so strict a limit, so this is a stress case, not the default.

A 429 answer makes the engine defer the row (retried minutes later): those rows end
``pending``, and the run fails.

Figures per run: achieved rate ((requests - 1) / (last - first arrival): the number of
intervals over their span), spacing error |gap - 1/rate| between consecutive arrivals
(p50, p95, max), 429s, the most requests within any one second, the burst observed (the
smallest token-bucket burst at the configured rate that admits every arrival: 1 for
perfectly spaced requests), outbox rows per final status. Medians of ``--runs`` runs;
the ratio to the baseline is achieved / configured rate.

Example::

    python bench/sms_rate.py
    python bench/sms_rate.py --rates 50 --seconds 5 --runs 1 --no-record   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import itertools
import json
import math
import os
import secrets
import socket
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import benchlib as lib

PATH_PREFIX = "/2010-04-01/Accounts/"
PATH_SUFFIX = "/Messages.json"
MOBILE_BASE = 10_000_000  # French mobiles +336 1000 0000, +336 1000 0001...
TOLERANCE = 0.05  # achieved rate within 5 % of the configured one


# -- the stand-in of Twilio's Messages API ------------------------------------------------


class ProviderLimit:
    """When the provider refuses a request for coming too fast (see the module docstring)."""

    def __init__(self, policy: str, rate: float, burst: float) -> None:
        self.policy = policy
        self.rate = rate
        self.per_second = max(1, math.floor(rate))
        self.tolerance = (burst - 1) / rate  # GCRA: how early a request may come
        self._accepted: list[float] = []  # arrival times of the requests accepted, sorted
        self._theoretical = -math.inf  # GCRA: when the next request is due

    def admit(self, at: float) -> bool:
        if self.policy == "window":
            # Accepted requests within (at - 1 s, at]. Two connections read one after the
            # other may hand their requests over slightly out of order: hence a search.
            inside = bisect.bisect_right(self._accepted, at) - bisect.bisect_right(
                self._accepted, at - 1.0
            )
            if inside >= self.per_second:
                return False
        elif at < self._theoretical - self.tolerance:
            return False
        self._theoretical = max(self._theoretical, at) + 1.0 / self.rate
        bisect.insort(self._accepted, at)
        return True


@dataclass
class Arrivals:
    """What the stand-in saw during one run."""

    requests: list[tuple[float, int]] = field(default_factory=list)  # (arrival, status)
    connections: int = 0
    kernel_stamped: int = 0  # arrivals timed by the kernel rather than when read

    def ordered(self) -> tuple[list[float], list[int]]:
        pairs = sorted(self.requests)
        return [t for t, _ in pairs], [status for _, status in pairs]


# SO_TIMESTAMPNS (Linux, also its SCM_ control message type): the kernel stamps each
# received segment, so an arrival is timed when it reached this machine's TCP stack, not
# when this process got round to reading it (the machine is shared: a stand-in that is
# not scheduled for 50 ms would otherwise see 50 ms of requests arrive at once).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("qq")


@dataclass
class _Connection:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    arrived: float = 0.0  # when the first bytes of the request in the buffer came
    unsent: bytes = b""


class TwilioStandIn:
    """A minimal, fast HTTP/1.1 keep-alive server answering CreateMessage.

    Non-blocking sockets driven by the event loop's reader callbacks (no stream objects
    in between), read with ``recvmsg`` to get the kernel's receive time of each request.
    Arrival times are ``time.time()`` seconds (the kernel stamps in that clock).
    """

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        credentials = f"{account_sid}:{auth_token}".encode()
        self._authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._path = f"{PATH_PREFIX}{account_sid}{PATH_SUFFIX}"
        self._listener: socket.socket | None = None
        self._connections: dict[int, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.limit = ProviderLimit("window", 1.0, 1.0)
        self.seen = Arrivals()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        listener.setblocking(False)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._loop.add_reader(listener.fileno(), self._accept)

    async def stop(self) -> None:
        for connection in list(self._connections.values()):
            self._close(connection)
        if self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, limit: ProviderLimit) -> None:
        self.limit = limit
        self.seen = Arrivals()

    def _accept(self) -> None:
        assert self._listener is not None and self._loop is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            connection = _Connection(sock)
            self._connections[sock.fileno()] = connection
            self.seen.connections += 1
            self._loop.add_reader(sock.fileno(), self._readable, connection)

    def _close(self, connection: _Connection) -> None:
        assert self._loop is not None
        fd = connection.sock.fileno()
        if fd >= 0:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
            self._connections.pop(fd, None)
        connection.sock.close()

    def _readable(self, connection: _Connection) -> None:
        try:
            data, ancillary, _, _ = connection.sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(connection)
            return
        if not data:
            self._close(connection)
            return
        if not connection.buffer:
            connection.arrived = self._stamp(ancillary)
        connection.buffer += data
        try:
            while (request := _take_request(connection.buffer)) is not None:
                request_line, headers, body = request
                status, payload = self._answer(connection.arrived, request_line, headers, body)
                self._send(connection, _response(status, payload))
                if connection.buffer:  # the next request is already coming in
                    connection.arrived = self._stamp(ancillary)
        except ValueError:  # not HTTP: drop the connection, as a server would
            self._close(connection)

    def _stamp(self, ancillary: list[tuple[int, int, bytes]]) -> float:
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = TIMESPEC.unpack_from(data)
                self.seen.kernel_stamped += 1
                return seconds + nanoseconds / 1e9
        return time.time()

    def _send(self, connection: _Connection, data: bytes) -> None:
        assert self._loop is not None
        data = connection.unsent + data
        try:
            sent = connection.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(connection)
            return
        connection.unsent = data[sent:]
        if connection.unsent:
            self._loop.add_writer(connection.sock.fileno(), self._flush, connection)

    def _flush(self, connection: _Connection) -> None:
        assert self._loop is not None
        self._loop.remove_writer(connection.sock.fileno())
        self._send(connection, b"")

    def _answer(
        self, at: float, request_line: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if method != "POST" or path != self._path:
            return _error(404, 20404, "The requested resource was not found")
        if headers.get("authorization") != self._authorization:
            return _error(401, 20003, "Authenticate")
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()}
        if not form.get("To") or not form.get("Body"):
            return _error(400, 21604, "A 'To' phone number and a 'Body' are required.")
        if not self.limit.admit(at):
            self.seen.requests.append((at, 429))
            return _error(429, 20429, "Too Many Requests")
        self.seen.requests.append((at, 201))
        return 201, self._message(form)

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        uri = f"{PATH_PREFIX}{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }


def _take_request(buffer: bytearray) -> tuple[str, dict[str, str], bytes] | None:
    """The first complete request in ``buffer`` (removed from it), or None for now.

    Content-Length bodies only: what the twilio client sends (a form).
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > 65536:
            raise ValueError("request head too large")
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("chunked bodies are not supported by this stand-in")
    length = int(headers.get("content-length", "0"))
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    return lines[0], headers, body


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    # Twilio's legacy error body, what the client turns into TwilioRestException.
    more = f"https://www.twilio.com/docs/errors/{code}"
    return status, {"code": code, "message": message, "more_info": more, "status": status}


REASONS = {201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
REASONS[429] = "Too Many Requests"


def _response(status: int, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


# -- figures ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def most_in_one_second(times: Sequence[float]) -> int:
    """The most arrivals within any half-open second [t, t + 1)."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def burst_observed(times: Sequence[float], rate: float) -> float:
    """The smallest burst of a token bucket at ``rate`` that admits every arrival.

    Arrivals i..j need j - i + 1 tokens and the bucket earns rate * (t_j - t_i) of them
    meanwhile, so the burst is the largest (j - i + 1) - rate * (t_j - t_i): kept as a
    running maximum of rate * t_i - i.
    """
    best, lead = 0.0, -math.inf
    for j, at in enumerate(times):
        lead = max(lead, rate * at - j)
        best = max(best, (j + 1) - rate * at + lead)
    return best


@dataclass
class Run:
    rate: float
    index: int
    messages: int
    wall: float = 0.0  # dispatch process started -> exited
    start_up: float = 0.0  # dispatch process started -> first arrival
    achieved: float = 0.0
    spacing_ms: tuple[float, float, float] = (0.0, 0.0, 0.0)  # p50, p95, max
    refused: int = 0
    accepted: int = 0
    in_one_second: int = 0
    burst: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    dispatch: dict[str, Any] = field(default_factory=dict)
    connections: int = 0
    kernel_stamped: int = 0

    @property
    def ratio(self) -> float:
        return self.achieved / self.rate

    def measure(self, seen: Arrivals) -> None:
        times, statuses = seen.ordered()
        self.accepted = statuses.count(201)
        self.refused = statuses.count(429)
        self.connections = seen.connections
        self.kernel_stamped = seen.kernel_stamped
        self.in_one_second = most_in_one_second(times)
        self.burst = burst_observed(times, self.rate)
        if len(times) >= 2:
            span = times[-1] - times[0]
            self.achieved = (len(times) - 1) / span if span > 0 else math.inf
            ideal = 1.0 / self.rate
            errors = [abs(b - a - ideal) * 1000 for a, b in itertools.pairwise(times)]
            self.spacing_ms = (percentile(errors, 50), percentile(errors, 95), max(errors))


# -- the project ------------------------------------------------------------------------


def write_config(
    folder: Path, db_url: str, base_url: str, rate: float, concurrency: int | None
) -> Path:
    """config.example.toml's engine, channel and routing settings; SMS through the official
    client to the stand-in at ``rate`` messages per second."""
    body = lib.example_settings(db_url)
    edits = [
        ('transport = "file"\ndirectory = "var/outbox/sms"', 'transport = "twilio"'),
        ('api_base_url = "https://api.twilio.com"', f'api_base_url = "{base_url}"'),
        ("# rate_per_second = 10.0", f"rate_per_second = {float(rate)}"),
    ]
    if concurrency is not None:
        edits.append(("# concurrency = 8", f"concurrency = {concurrency}"))
    for old, new in edits:
        if body.count(old) != 1:
            raise SystemExit(f"config.example.toml changed: {old!r} not found once")
        body = body.replace(old, new)
    path = folder / "netanim.toml"
    path.write_text(body, encoding="utf-8")
    return path


CSV_COLUMNS = [
    "company_id",
    "company_name",
    "contact_id",
    "first_name",
    "last_name",
    "level",
    "mobile",
    "web_access",
    "consent_sms",
    "timezone",
    "language",
]


def company_id(n: int) -> str:
    return f"S{n:07d}"


def write_network_csv(path: Path, contacts: int) -> None:
    """One contact per company (an audience of the first N companies is N contacts), each
    with its own mobile number and SMS consent, no web access."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(CSV_COLUMNS)
        for n in range(contacts):
            writer.writerow(
                [
                    company_id(n),
                    f"Bench SMS {n:07d}",
                    f"M{n:07d}",
                    "Camille",
                    f"Contact{n:07d}",
                    "seller",
                    f"+336{MOBILE_BASE + n:08d}",
                    "no",
                    "consent",
                    "Europe/Paris",
                    "fr",
                ]
            )


def plan_sms(config: Path, occurrence: str, contacts: int, total: int) -> tuple[int, int]:
    """Queue one urgent operational SMS to each of the first ``contacts`` contacts
    (``total`` were imported), as ``netanim broadcast --urgency urgent`` plans them,
    without sending. Returns the message id and the rows queued."""
    os.environ["NETANIM_SECRET_KEY"] = lib.SECRET
    from network_anim.app import open_app
    from network_anim.config.settings import Audience
    from network_anim.domain import Level, MessageKind, Urgency
    from network_anim.planning.planner import MessageRequest, plan_message

    companies = () if contacts >= total else tuple(company_id(n) for n in range(contacts))
    app = open_app(config)
    try:
        request = MessageRequest(
            campaign_key="bench-sms",
            campaign_name="SMS rate bench",
            campaign_kind="broadcast",
            step="welcome",
            occurrence=occurrence,
            audience=Audience(name="bench", companies=companies),
            urgency=Urgency.URGENT,
            template="welcome",
            kind=MessageKind.OPERATIONAL,
            level=Level.SELLER,
        )
        plan = plan_message(app, request)
    finally:
        app.close()
    if plan.message_id is None or dict(plan.new_rows) != {"sms": contacts}:
        raise SystemExit(f"unexpected plan: {dict(plan.new_rows)}, {plan.unreachable[:3]}")
    return plan.message_id, contacts


# -- the bench --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog="Example: python bench/sms_rate.py --rates 50,200 --seconds 20 --runs 3",
    )
    parser.add_argument(
        "--rates",
        default="50,200",
        help="[channels.sms] rate_per_second values, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="sending time per run at the configured rate: ceil(rate x seconds) + 1 "
        "messages (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per rate (default: 3)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="[channels.sms] concurrency (default: channels/sms.toml's)",
    )
    parser.add_argument(
        "--provider-limit",
        choices=("window", "bucket"),
        default="window",
        help="how the stand-in counts: a strict 1 s sliding window, or a token bucket "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--provider-burst",
        type=float,
        default=1.0,
        help="the stand-in's bucket size with --provider-limit bucket (default: 1, the "
        "engine's default burst)",
    )
    parser.add_argument(
        "--db",
        default="sqlite",
        metavar="sqlite|ADMIN_URL",
        help="'sqlite' (a file in the temporary folder), or a PostgreSQL server where a "
        "throwaway database is created and dropped (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="give up after this many seconds (900)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    try:
        args.rate_list = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates: numbers separated by commas, not {args.rates!r}")
    if not args.rate_list or any(not (math.isfinite(r) and r > 0) for r in args.rate_list):
        parser.error("--rates: give positive messages per second, e.g. 50,200")
    if args.runs < 1 or args.seconds <= 0 or args.provider_burst < 1:
        parser.error("--runs and --seconds must be positive, --provider-burst at least 1")
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    # One network for every run: as many contacts as the largest run has messages.
    args.contacts = max(messages_for(rate, args.seconds) for rate in args.rate_list)
    return args


def messages_for(rate: float, seconds: float) -> int:
    return math.ceil(rate * seconds) + 1


async def dispatch_run(
    run: Run,
    standin: TwilioStandIn,
    args: argparse.Namespace,
    config: Path,
    folder: Path,
    db_url: str,
    procs: lib.Processes,
    deadline: lib.Deadline,
) -> None:
    message_id, rows = plan_sms(config, f"r{run.rate:g}-{run.index}", run.messages, args.contacts)
    standin.reset(ProviderLimit(args.provider_limit, run.rate, args.provider_burst))
    log = folder / f"dispatch-{run.rate:g}-{run.index}.log"
    argv = [sys.executable, "-m", "network_anim", "dispatch", "-c", str(config), "--json"]
    started, started_at = time.monotonic(), time.time()  # arrivals are time.time() stamps
    proc = procs.start(argv, log=log)
    while proc.poll() is None:
        deadline.check(f"dispatching {rows} SMS at {run.rate:g}/s")
        await asyncio.sleep(0.05)
    run.wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"netanim dispatch failed ({proc.returncode}):\n{lib.log_tail(log)}")
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    with contextlib.suppress(IndexError, ValueError):
        run.dispatch = dict(json.loads(lines[-1]))
    seen = standin.seen
    times, statuses = seen.ordered()
    # Kept with --keep, to look at the timeline of a run.
    timeline = {"times": [t - started_at for t in times], "statuses": statuses}
    (folder / f"arrivals-{run.rate:g}-{run.index}.json").write_text(json.dumps(timeline))
    run.start_up = times[0] - started_at if times else math.nan
    run.measure(seen)
    run.statuses = lib.status_counts(db_url, message_id)
    print(f"  {describe_run(run)}", flush=True)


def describe_run(run: Run) -> str:
    p50, p95, worst = run.spacing_ms
    return (
        f"{run.rate:g}/s run {run.index}: {run.messages} SMS, achieved {run.achieved:.2f} msg/s "
        f"(x{run.ratio:.3f}), spacing error p50 {p50:.2f} / p95 {p95:.2f} / max {worst:.1f} ms, "
        f"429s {run.refused}, most in 1 s {run.in_one_second}, burst {run.burst:.2f}, "
        f"outbox {run.statuses}, dispatch wall {run.wall:.1f} s (first request after "
        f"{run.start_up:.2f} s), {run.connections} connection(s), "
        f"{run.kernel_stamped}/{run.accepted + run.refused} arrivals stamped by the kernel"
    )


def summary(rate: float, runs: list[Run]) -> list[str]:
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    achieved = med([r.achieved for r in runs])
    p50 = med([r.spacing_ms[0] for r in runs])
    p95 = med([r.spacing_ms[1] for r in runs])
    worst = med([r.spacing_ms[2] for r in runs])
    return [
        f"{rate:g} msg/s configured, {runs[0].messages} SMS per run, median of {len(runs)}: "
        f"achieved {achieved:.2f} msg/s (ratio to the configured rate x{achieved / rate:.3f}; "
        f"runs {', '.join(f'{r.achieved:.2f}' for r in runs)}); spacing error vs "
        f"{1000 / rate:g} ms: p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {worst:.1f} ms; 429s "
        f"provoked {', '.join(str(r.refused) for r in runs)}; most requests in 1 s "
        f"{', '.join(str(r.in_one_second) for r in runs)}; burst observed "
        f"{', '.join(f'{r.burst:.2f}' for r in runs)}",
        *(f"  {describe_run(r)}" for r in runs),
    ]


def verdict(by_rate: dict[float, list[Run]]) -> list[str]:
    problems = []
    for rate, runs in by_rate.items():
        achieved = statistics.median([r.achieved for r in runs])
        if abs(achieved / rate - 1) > TOLERANCE:
            problems.append(
                f"{rate:g}/s: achieved {achieved:.2f} msg/s, off by more than {TOLERANCE:.0%}"
            )
        refused = sum(r.refused for r in runs)
        if refused:
            problems.append(f"{rate:g}/s: {refused} requests refused with 429")
        if any(r.statuses != {"sent": r.messages} for r in runs):
            problems.append(f"{rate:g}/s: not every row ended sent")
    return problems


async def bench(
    args: argparse.Namespace, folder: Path, db_url: str, procs: lib.Processes
) -> dict[float, list[Run]]:
    deadline = lib.Deadline(args.timeout)
    os.environ["TWILIO_ACCOUNT_SID"] = "AC" + secrets.token_hex(16)
    os.environ["TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)
    standin = TwilioStandIn(os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"])
    await standin.start()
    try:
        config = write_config(folder, db_url, standin.base_url, args.rate_list[0], args.concurrency)
        started = time.monotonic()
        lib.netanim("init", "-c", str(config))
        write_network_csv(folder / "network.csv", args.contacts)
        lib.netanim("import", "network", str(folder / "network.csv"), "-c", str(config), "--json")
        print(
            f"{args.contacts} contacts imported in {time.monotonic() - started:.1f} s", flush=True
        )
        by_rate: dict[float, list[Run]] = {}
        for rate in args.rate_list:
            config = write_config(folder, db_url, standin.base_url, rate, args.concurrency)
            by_rate[rate] = []
            for index in range(1, args.runs + 1):
                run = Run(rate, index, messages_for(rate, args.seconds))
                await dispatch_run(run, standin, args, config, folder, db_url, procs, deadline)
                by_rate[rate].append(run)
        return by_rate
    finally:
        await standin.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.db != "sqlite":
        lib.check_local_url(args.db)
    lib.interrupt_on_signals()
    procs = lib.Processes()
    started = time.monotonic()
    try:
        with lib.workspace(args.keep) as folder, contextlib.ExitStack() as stack:
            if args.db == "sqlite":
                db_url = f"sqlite:///{folder / 'netanim.db'}"
                backend = "SQLite"
            else:
                db_url = stack.enter_context(lib.throwaway_postgres(args.db))
                backend = "PostgreSQL"
            try:
                by_rate = asyncio.run(bench(args, folder, db_url, procs))
            finally:
                procs.close()
    except KeyboardInterrupt:
        print("interrupted: every process it started is stopped", file=sys.stderr)
        return 130
    limit = (
        "a strict sliding window of 1 s (at most floor(rate) accepted per second)"
        if args.provider_limit == "window"
        else f"a token bucket at the rate, burst {args.provider_burst:g}"
    )
    lines = [
        f"{backend}; netanim dispatch (real Dispatcher, twilio {twilio_version()} client) -> "
        f"local stand-in of POST /2010-04-01/Accounts/{{sid}}/Messages.json answering 201 at "
        f"once, 429 (code 20429) beyond {limit}; [channels.sms] concurrency "
        f"{args.concurrency or 'from channels/sms.toml'}",
        "arrival = when the request's first bytes reached the kernel (SO_TIMESTAMPNS); achieved "
        "rate = (requests - 1) / (last - first arrival); spacing error = |gap between "
        "consecutive arrivals - 1/rate|; burst observed = the smallest token-bucket burst at "
        "the configured rate that admits every arrival",
    ]
    for rate, runs in by_rate.items():
        lines += summary(rate, runs)
    problems = verdict(by_rate)
    lines += [f"problem: {p}" for p in problems]
    lines.append(
        f"result: {'FAIL' if problems else 'PASS'} (target: within {TOLERANCE:.0%}, 0 429s)"
    )
    lines.append(f"bench wall time: {time.monotonic() - started:.0f} s")
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        command = ["python", "bench/sms_rate.py", *(argv if argv is not None else sys.argv[1:])]
        lib.append_benchmarks(f"SMS dispatch rate ({backend})", command, text)
    return 1 if problems else 0


def twilio_version() -> str:
    from importlib.metadata import version

    return version("twilio")


if __name__ == "__main__":
    sys.exit(main())
