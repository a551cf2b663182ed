"""docs/adding-a-channel.md is the whole checklist: every file of the repository that names
WhatsApp, the sixth channel, is one the checklist lists. A channel that needs a file the
list does not name (a hard-coded channel set somewhere) fails here, so the list can't rot
and no stage grows a private list of channels again."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKLIST = ROOT / "docs" / "adding-a-channel.md"
SEARCHED = (
    "network_anim",
    "channels",
    "templates",
    "tests",
    "docs",
    "README.md",
    "config.example.toml",
)
TOP_LEVEL = tuple(f"{top}/" if "." not in top else top for top in SEARCHED)
# Files that say "WhatsApp" about something else than the channel.
NOT_THE_CHANNEL = {
    # WhatsApp's link-preview robot fetching a tracked link: a scanner, not a delivery.
    "network_anim/web/scanners.py",
    # This test names the channel it checks.
    "tests/test_adding_a_channel.py",
}


def checklist_patterns(channel: str, adapter: str) -> list[str]:
    """The paths the checklist names (backticked, in the table and in the 'only when'
    list), with its placeholders filled in; a folder covers what is under it."""
    listed = CHECKLIST.read_text(encoding="utf-8").split("Not to touch")[0]
    patterns = []
    for path in re.findall(r"`([\w./<>-]+)`", listed):
        if not path.startswith(TOP_LEVEL):
            continue  # a key, a trait or a name, not a path from the repository's root
        path = path.replace("<name>", channel).replace("<adapter>", adapter)
        patterns.append(path + "*" if path.endswith("/") else path)
    return patterns


def files_naming(word: str) -> set[str]:
    found = set()
    for top in SEARCHED:
        start = ROOT / top
        paths = [start] if start.is_file() else start.rglob("*")
        for path in paths:
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            text = path.read_bytes().decode("utf-8", errors="ignore").lower()
            if word in text or word in path.name.lower():
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_the_checklist_names_every_file_the_whatsapp_channel_touches() -> None:
    patterns = checklist_patterns("whatsapp", "whatsapp")
    outside = sorted(
        path
        for path in files_naming("whatsapp") - NOT_THE_CHANNEL
        if not any(fnmatch(path, pattern) for pattern in patterns)
    )
    assert outside == [], (
        "these files name WhatsApp but docs/adding-a-channel.md does not list them: "
        "make them read the channel definitions, or add them to the checklist"
    )


def test_the_checklist_matcher_sees_a_file_it_does_not_list() -> None:
    patterns = checklist_patterns("whatsapp", "whatsapp")
    assert any(fnmatch("channels/whatsapp.toml", pattern) for pattern in patterns)
    assert any(fnmatch("tests/peers/twilio_standin.py", pattern) for pattern in patterns)
    assert not any(fnmatch("network_anim/outbox/dispatcher.py", pattern) for pattern in patterns)
    assert not any(fnmatch("network_anim/routing/router.py", pattern) for pattern in patterns)
