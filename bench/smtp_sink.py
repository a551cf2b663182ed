#!/usr/bin/env python3
"""A counting SMTP sink for the benchmarks: accepts every message, counts it by Message-ID.

A plain asyncio server on 127.0.0.1 (no aiosmtpd: a few lines of protocol keep it light
on CPU, which matters when three daemons share two cores with it). It answers EHLO/HELO,
MAIL, RCPT, DATA, RSET, NOOP and QUIT, and replies 250 as soon as the payload's final
``.`` arrives. Nothing is stored but the counts.

A real relay takes time over a message: ``--delay-ms D`` waits D ms after each payload's
final ``.`` before the ``250 queued`` reply (where a relay writes its queue file, runs
its filters). The message is counted when its final ``.`` arrives (the relay may queue it
from then on, even if the client leaves before the reply). Each session waits on its
own (an asyncio sleep), so many sessions wait side by side: the delay bounds each
session's pace, never the sink's. ``--pipelining`` offers PIPELINING (RFC 2920) in the
EHLO reply, as Postfix does: the client then sends MAIL, RCPT and DATA in one write.

The counts go to ``--out`` as JSON (written atomically: a temporary file then a rename):

* every ``--interval`` seconds while something changed: ``total`` (messages received),
  ``distinct`` (distinct Message-IDs), ``duplicates`` ({id: times received} for ids seen
  more than once), ``duplicate_times`` ({id: [receipt times]}), ``first_at``/``last_at``
  (epoch seconds), ``connections``, ``no_message_id``;
* on SIGTERM or SIGINT (then it exits), or after ``--max-seconds``: the same plus
  ``counts`` ({id: times received} for every id) and ``"final": true``.

On start it prints ``READY <port>`` on stdout (``--port 0`` picks a free port).

Example::

    python bench/smtp_sink.py --port 0 --out /tmp/sink.json &
    python bench/smtp_sink.py --port 0 --out /tmp/sink.json --delay-ms 20 --pipelining &
    # ... send mail to 127.0.0.1:<port> ...
    kill -TERM %1 && python -c 'import json; print(json.load(open("/tmp/sink.json"))["total"])'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_END_OF_DATA = b"\r\n.\r\n"
_EHLO_REPLY = b"250-sink.bench\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250 HELP\r\n"
_EHLO_PIPELINING = (
    b"250-sink.bench\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250 HELP\r\n"
)


class Counts:
    def __init__(self) -> None:
        self.total = 0
        self.first: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.duplicate_times: dict[str, list[float]] = {}
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.connections = 0
        self.no_message_id = 0
        self.version = 0

    def add(self, payload: bytes) -> None:
        now = time.time()
        head = payload.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        self.total += 1
        self.version += 1
        self.first_at = self.first_at or now
        self.last_at = now
        if found is None:
            self.no_message_id += 1
            return
        key = found.group(1).decode("ascii", "replace")
        seen = self.counts.get(key, 0)
        self.counts[key] = seen + 1
        if seen == 0:
            self.first[key] = now
        elif seen == 1:
            self.duplicate_times[key] = [self.first[key], now]
        else:
            self.duplicate_times[key].append(now)

    def snapshot(self, *, final: bool, port: int) -> dict[str, object]:
        data: dict[str, object] = {
            "port": port,
            "pid": os.getpid(),
            "final": final,
            "updated_at": time.time(),
            "total": self.total,
            "distinct": len(self.counts),
            "duplicates": {k: self.counts[k] for k in self.duplicate_times},
            "duplicate_times": self.duplicate_times,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "connections": self.connections,
            "no_message_id": self.no_message_id,
        }
        if final:
            data["counts"] = self.counts
        return data


def write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


async def session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counts: Counts,
    *,
    delay: float = 0.0,
    ehlo: bytes = _EHLO_REPLY,
) -> None:
    counts.connections += 1
    counts.version += 1
    try:
        writer.write(b"220 sink.bench ESMTP ready\r\n")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(ehlo)
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await writer.drain()
                payload = await reader.readuntil(_END_OF_DATA)
                counts.add(payload)
                if delay:
                    await asyncio.sleep(delay)  # the relay's work on the message
                writer.write(b"250 2.0.0 OK queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.2 Command not implemented\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return  # the client died (SIGKILL): whatever it completed is counted
    finally:
        writer.close()


async def serve(args: argparse.Namespace) -> int:
    counts = Counts()
    out = Path(args.out)
    delay = args.delay_ms / 1000
    ehlo = _EHLO_PIPELINING if args.pipelining else _EHLO_REPLY
    server = await asyncio.start_server(
        lambda r, w: session(r, w, counts, delay=delay, ehlo=ehlo),
        HOST,
        args.port,
        limit=64 * 1024 * 1024,
        backlog=256,
    )
    port = int(server.sockets[0].getsockname()[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    write_json(out, counts.snapshot(final=False, port=port))
    print(f"READY {port}", flush=True)
    deadline = loop.time() + args.max_seconds
    written = counts.version
    async with server:
        while not stop.is_set() and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.interval)
            if counts.version != written:
                written = counts.version
                write_json(out, counts.snapshot(final=False, port=port))
        server.close()
    write_json(out, counts.snapshot(final=True, port=port))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Counting SMTP sink on 127.0.0.1: accepts everything with 250, counts messages "
            "by Message-ID, writes JSON counts to --out periodically and on SIGTERM."
        ),
        epilog="Example: python bench/smtp_sink.py --port 0 --out /tmp/sink.json",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    parser.add_argument("--out", required=True, help="JSON file the counts are written to")
    parser.add_argument(
        "--interval", type=float, default=0.2, help="seconds between periodic writes (0.2)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1800.0,
        help="exit on its own after this long, writing the final counts (1800)",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="ms each message waits after its final '.' before the 250 reply, per session (0)",
    )
    parser.add_argument(
        "--pipelining", action="store_true", help="offer PIPELINING in the EHLO reply"
    )
    args = parser.parse_args(argv)
    if args.delay_ms < 0:
        parser.error("--delay-ms must be 0 or more")
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
