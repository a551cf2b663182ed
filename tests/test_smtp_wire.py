"""SmtpWire's reading of replies: split across packets, several in one, garbled."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtplib import SMTPResponseException, SMTPServerDisconnected

from network_anim.channels.smtp_wire import SmtpWire


class _Socket(asyncio.Transport):
    """The transport's side the wire uses: what it wrote, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _wire(extensions: set[str] | None = None) -> tuple[SmtpWire, _Socket]:
    sock = _Socket()
    return SmtpWire(sock, extensions=extensions or set(), timeout=1.0), sock


async def test_replies_split_across_packets_and_several_in_one() -> None:
    wire, _ = _wire()
    wire.data_received(b"250-first line\r\n250-sec")
    wire.data_received(b"ond line\r\n250 last\r\n354 go ahead\r\n25")
    first = await wire.reply()
    assert (first.code, first.message) == (250, "first line\nsecond line\nlast")
    assert (await wire.reply()).code == 354
    reading = asyncio.ensure_future(wire.reply())
    await asyncio.sleep(0)
    assert not reading.done()  # "25" is not a reply yet
    wire.data_received(b"0 2.0.0 queued\r\n")
    assert (await reading).message == "2.0.0 queued"


async def test_pipelined_envelope_is_one_write_and_the_first_refusal_wins() -> None:
    wire, sock = _wire({"pipelining", "size"})
    starting = asyncio.ensure_future(wire.transaction_start("a@example.com", "b@example.fr", 42))
    await asyncio.sleep(0)
    assert sock.written == (
        b"MAIL FROM:<a@example.com> SIZE=42\r\nRCPT TO:<b@example.fr>\r\nDATA\r\n"
    )
    # A server that opened DATA although the recipient was refused: the empty message
    # is ended at once, and the refusal reported.
    wire.data_received(b"250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n")
    await asyncio.sleep(0)
    assert sock.written.endswith(b"DATA\r\n.\r\n")
    wire.data_received(b"554 no valid recipients\r\n")
    with pytest.raises(SMTPResponseException) as refused:
        await starting
    assert refused.value.code == 550 and wire.mail_answered


async def test_garbled_reply_or_lost_connection_fail_the_reader() -> None:
    wire, sock = _wire()
    reading = asyncio.ensure_future(wire.reply())
    await asyncio.sleep(0)
    wire.data_received(b"hello there\r\n")
    with pytest.raises(SMTPResponseException) as garbled:
        await reading
    assert garbled.value.code == -1 and sock.closed

    wire, sock = _wire()
    reading = asyncio.ensure_future(wire.reply())
    await asyncio.sleep(0)
    wire.connection_lost(ConnectionResetError())
    with pytest.raises(SMTPServerDisconnected):
        await reading
    with pytest.raises(SMTPServerDisconnected):
        wire.write(b"RSET\r\n")
