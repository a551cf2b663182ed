"""SMS length arithmetic: which encoding a text needs and how many billed segments it makes.

Pure functions, no I/O. The renderer uses them to warn about long texts and to estimate
costs; the SMS adapter uses them to record what a send cost.

Rules (3GPP TS 23.038 for the alphabets, TS 23.040 for concatenation):

- A text made only of characters of the GSM 03.38 default alphabet (basic table plus the
  extension table reached through ESC) is sent as GSM-7: one septet per basic character,
  two per extension character (ESC + the character).
- Any other character forces the whole message to UCS-2 (UTF-16): one unit per BMP code
  point, two for anything outside the BMP (most emoji).
- One segment carries 160 septets or 70 UCS-2 units. Longer texts are concatenated and the
  user data header (UDH) eats room: 153 septets or 67 units per segment.
- A segment boundary never splits an ESC pair nor a UTF-16 surrogate pair: the handset
  could not decode the halves, so senders (Twilio included) move the whole pair to the
  next segment. A segment can therefore hold 152 septets or 66 units in practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# GSM 03.38 basic table, in code order 0x00-0x7F. 0x1B is ESC (the extension table switch)
# and is not a character a text can contain, hence the placeholder left out below.
# 0x09 is "Ç" (capital C cedilla) in the table as phones implement it: lowercase "ç" is
# NOT in the alphabet, a classic trap for French texts.
_GSM7_BASIC_ROWS = (
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞ" + "ÆæßÉ",  # ESC sits between Ξ and Æ
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
)
GSM7_BASIC: frozenset[str] = frozenset("".join(_GSM7_BASIC_ROWS))

# Extension table: each costs ESC + the character, i.e. two septets. \f is form feed
# (page break), kept because it is in the table even if nobody should send it.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

Encoding = Literal["GSM-7", "UCS-2"]

# (single-part capacity, per-part capacity when concatenated), in units of the encoding.
_LIMITS: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True, slots=True)
class SmsEncoding:
    """How a text travels: its encoding, its size in that encoding, and billed segments."""

    encoding: Encoding
    # Septets for GSM-7 (extension characters count 2); UTF-16 code units for UCS-2.
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _char_units(text: str, encoding: Encoding) -> list[int]:
    """Size of each character in ``encoding``; each item is an indivisible block."""
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def sms_segments(text: str) -> SmsEncoding:
    """Encoding, size and number of segments an SMS with body ``text`` is billed for.

    An empty text still makes one (empty) segment.
    """
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    sizes = _char_units(text, encoding)
    units = sum(sizes)
    single, per_part = _LIMITS[encoding]
    if units <= single:
        return SmsEncoding(encoding, units, 1)
    # Greedy packing: a block (ESC pair, surrogate pair) that does not fit whole in the
    # current part starts the next one, which is what senders do on the wire.
    segments, used = 1, 0
    for size in sizes:
        if used + size > per_part:
            segments += 1
            used = 0
        used += size
    return SmsEncoding(encoding, units, segments)


__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "Encoding", "SmsEncoding", "is_gsm7", "sms_segments"]
