"""The report reader over the corpus of tests/data/bounces: every file is read as its
entry of expected.toml says (a file without an entry fails), keys are stable, and no
input, however broken, raises anything but UnreadableReport."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from network_anim.bounces.events import FeedbackKind
from network_anim.bounces.reports import UnreadableReport, classify, read_report

CORPUS = Path(__file__).parent / "data" / "bounces"
EXPECTED: dict[str, dict] = tomllib.loads((CORPUS / "expected.toml").read_text("utf-8"))["files"]
FILES = sorted(p.name for p in CORPUS.glob("*.eml"))


def test_the_corpus_is_large_and_every_file_has_an_expectation() -> None:
    assert len(FILES) >= 20
    assert sorted(set(FILES) - set(EXPECTED)) == [], "add these files to expected.toml"
    assert sorted(set(EXPECTED) - set(FILES)) == [], "expected.toml names missing files"


@pytest.mark.parametrize("name", FILES)
def test_each_report_is_classified_as_expected(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    expected = EXPECTED[name]
    if "unreadable" in expected:
        with pytest.raises(UnreadableReport) as caught:
            read_report(raw)
        assert expected["unreadable"] in caught.value.reason
        return
    outcome = classify(raw)
    assert expected.get("note", "") in outcome.note
    got = [(e.kind.value, e.ref.recipient or "", e.status) for e in outcome.events]
    want = [(e["kind"], e["recipient"], e["status"]) for e in expected["events"]]
    assert got == want
    for event, wanted in zip(outcome.events, expected["events"], strict=True):
        if "token" in wanted:
            assert (event.ref.token or "") == wanted["token"]
        if "message_id" in wanted:
            assert (event.ref.message_id or "") == wanted["message_id"]
        assert event.occurred_at is None or event.occurred_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("name", FILES)
def test_crlf_line_ends_read_the_same(name: str) -> None:
    """IMAP hands messages over with CRLF line ends; files usually have LF."""
    raw = (CORPUS / name).read_bytes()
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    try:
        lf_events = read_report(raw)
    except UnreadableReport:
        with pytest.raises(UnreadableReport):
            read_report(crlf)
        return
    assert read_report(crlf) == lf_events


def test_keys_are_stable_and_distinct() -> None:
    keys: list[str] = []
    for name in FILES:
        raw = (CORPUS / name).read_bytes()
        try:
            first, again = read_report(raw), read_report(raw)
        except UnreadableReport:
            continue
        assert [e.key for e in first] == [e.key for e in again]
        keys += [e.key for e in first]
    assert len(keys) == len(set(keys)) > 20


def test_a_report_without_message_id_is_keyed_by_its_bytes() -> None:
    raw = (CORPUS / "exim_permanent.eml").read_bytes()
    without = b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"Message-Id:"))
    changed = without.replace(b"Nouveau catalogue", b"Nouveau catalogue!")
    key = read_report(without)[0].key
    assert key == read_report(without)[0].key
    assert key != read_report(raw)[0].key
    assert key != read_report(changed)[0].key


def test_verp_local_part_comes_from_the_settings() -> None:
    """Outlook.com returned no delivery header: the VERP address is its only token, and
    it is only read when its local part is the configured one."""
    raw = (CORPUS / "outlook_com_mailbox_unavailable.eml").read_bytes()
    assert read_report(raw)[0].ref.token == "d109.Gf6hJk1Lz3"
    assert read_report(raw, verp_local_part="retour")[0].ref.token is None
    renamed = raw.replace(b"bounces+d109", b"retour+d109")
    assert read_report(renamed, verp_local_part="retour")[0].ref.token == "d109.Gf6hJk1Lz3"


def test_auto_replies_never_count_as_bounces() -> None:
    kinds = {
        e.kind
        for name in FILES
        if name.startswith("autoreply")
        for e in read_report((CORPUS / name).read_bytes())
    }
    assert kinds == {FeedbackKind.AUTO_REPLY}


@pytest.mark.parametrize("name", FILES)
def test_truncated_or_mangled_input_never_raises_anything_else(name: str) -> None:
    """Whatever a mailbox holds, the reader answers with events or UnreadableReport."""
    raw = (CORPUS / name).read_bytes()
    variants = [raw[:cut] for cut in range(0, len(raw), max(1, len(raw) // 25))]
    variants += [raw.replace(b"\n", b"\n\x00", 3), raw.replace(b"boundary=", b"boundary=x")]
    variants += [raw.decode("latin-1").encode("utf-16")]
    for variant in variants:
        try:
            events = read_report(variant)
        except UnreadableReport as exc:
            assert exc.reason
        else:
            assert all(e.key and e.source for e in events)
