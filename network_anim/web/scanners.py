"""Tell machine opens and clicks from human ones (pure: no I/O).

Every open and click is recorded; the ones this module calls *machine* are flagged
(``event.machine``) so reports can show human rates next to raw ones. The rules, with
the decision taken for each:

* **Apple Mail Privacy Protection** (opens): Apple's proxy fetches every remote image as
  soon as the message reaches the device, whether or not anyone reads it. It sends the
  bare user agent ``Mozilla/5.0`` and nothing more: machine. (Apple Mail loading images
  itself, without the proxy, sends a full WebKit user agent: counted as human. Apple's
  proxy addresses, 17.0.0.0/8, are not checked: they change and tell nothing more here.)
* **Gmail's and Yahoo's image proxies** (``GoogleImageProxy``, ``YahooMailProxy``): they
  fetch the image when the recipient opens the message (then serve it from their cache),
  so such an open is a real one: **human**. Later opens of the same message are not
  seen at all; that undercounts repeat opens, not unique opens.
* **Security gateways that follow every link** before the recipient sees the mail:
  Microsoft Defender for Office 365 / Safe Links (``BingPreview``, ``Microsoft Office
  Protection``, ``SafeLinks``), Proofpoint (``Proofpoint``, ``ppops-``), Mimecast
  (``Mimecast``), Barracuda (``Barracuda``), Cisco, Trend Micro, Sophos, Symantec and
  Forcepoint URL checkers: machine, for opens and clicks alike.
* **Link previews**: ``facebookexternalhit`` (also what iMessage sends to preview a link
  in an SMS), ``Slackbot``, ``WhatsApp``, ``TelegramBot``, ``SkypeUriPreview``...: machine.
* **Tools and bots**: ``curl``, ``wget``, ``python-requests``, ``python-urllib``,
  ``httpx``, ``aiohttp``, ``Go-http-client``, ``Java/``, ``okhttp``, ``libwww-perl``,
  headless browsers, and anything calling itself a bot, crawler, spider or scanner:
  machine. So is an empty user agent.
* **Clicks within seconds of delivery** (default 10 s): gateways often use ordinary
  browser user agents, but no person reads a message and clicks in its first seconds.
  This rule applies to clicks only: a person watching their inbox may well open a
  message at once, and opens already have the rules above.
"""

from __future__ import annotations

import re
from typing import Literal

DEFAULT_MIN_CLICK_SECONDS = 10.0

Kind = Literal["open", "click"]

# Bare "Mozilla/5.0" (case and spaces aside): Apple Mail Privacy Protection's proxy.
_APPLE_PROXY = re.compile(r"^\s*mozilla/5\.0\s*$", re.IGNORECASE)

# Substrings of user agents that are never a person reading (lowercase).
SCANNER_MARKERS: tuple[tuple[str, str], ...] = (
    # Microsoft Defender for Office 365, Safe Links, Outlook link checks
    ("bingpreview", "microsoft-safelinks"),
    ("safelinks", "microsoft-safelinks"),
    ("microsoft office protection", "microsoft-safelinks"),
    ("ms-office-protection", "microsoft-safelinks"),
    ("microsoftpreview", "microsoft-safelinks"),
    # Secure email gateways
    ("proofpoint", "proofpoint"),
    ("ppops-", "proofpoint"),
    ("mimecast", "mimecast"),
    ("barracuda", "barracuda"),
    ("ironport", "cisco"),
    ("cisco", "cisco"),
    ("trendmicro", "trend-micro"),
    ("trend micro", "trend-micro"),
    ("sophos", "sophos"),
    ("symantec", "symantec"),
    ("forcepoint", "forcepoint"),
    ("fortiguard", "fortinet"),
    # Link previews (iMessage previews SMS links with facebookexternalhit)
    ("facebookexternalhit", "link-preview"),
    ("slackbot", "link-preview"),
    ("whatsapp", "link-preview"),
    ("telegrambot", "link-preview"),
    ("skypeuripreview", "link-preview"),
    ("discordbot", "link-preview"),
    ("linkedinbot", "link-preview"),
    ("twitterbot", "link-preview"),
    # Tools, libraries, headless browsers
    ("curl/", "tool"),
    ("wget/", "tool"),
    ("python-requests", "tool"),
    ("python-urllib", "tool"),
    ("python-httpx", "tool"),
    ("aiohttp", "tool"),
    ("go-http-client", "tool"),
    ("java/", "tool"),
    ("okhttp", "tool"),
    ("libwww-perl", "tool"),
    ("apache-httpclient", "tool"),
    ("headlesschrome", "tool"),
    ("phantomjs", "tool"),
)
# Self-declared robots: "Googlebot/2.1", "AhrefsBot", "crawler"... but not the phone
# brand Cubot ("CUBOT X19"), whose user agents are people's.
_ROBOT = re.compile(r"(?<!cu)bot\b|crawler|spider|scanner", re.IGNORECASE)


def machine_reason(
    user_agent: str | None,
    seconds_since_delivery: float | None,
    kind: Kind,
    *,
    min_click_seconds: float = DEFAULT_MIN_CLICK_SECONDS,
) -> str | None:
    """Why this open or click is a machine's (a short label), or None for a person.

    ``seconds_since_delivery`` is None when the delivery's send time is unknown; a
    negative value (clocks apart) counts as zero.
    """
    agent = (user_agent or "").strip()
    if not agent:
        return "no-user-agent"
    if _APPLE_PROXY.match(agent):
        return "apple-mail-privacy"
    lowered = agent.lower()
    for marker, label in SCANNER_MARKERS:
        if marker in lowered:
            return label
    if _ROBOT.search(agent):
        return "bot"
    if (
        kind == "click"
        and seconds_since_delivery is not None
        and max(seconds_since_delivery, 0.0) < min_click_seconds
    ):
        return "too-fast"
    return None


def is_machine(
    user_agent: str | None,
    seconds_since_delivery: float | None,
    kind: Kind,
    *,
    min_click_seconds: float = DEFAULT_MIN_CLICK_SECONDS,
) -> bool:
    """True when the open or click is a prefetcher's or a scanner's (see the module doc)."""
    return (
        machine_reason(
            user_agent, seconds_since_delivery, kind, min_click_seconds=min_click_seconds
        )
        is not None
    )
