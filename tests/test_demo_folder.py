"""`netanim demo` runs from any folder, deletes only what it wrote (its marker lists it),
and leaves nothing behind when it fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from network_anim.demo import run as demo_run
from network_anim.demo.run import MARKER, claim_demo_folder
from network_anim.errors import UserError
from tests.conftest import REPO

SMALL = ("--months", "1", "--contacts", "10", "--from", "2026-12-01")


def _listed(folder: Path) -> dict:
    return json.loads((folder / MARKER).read_text(encoding="utf-8"))


def test_demo_runs_from_an_empty_folder(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no config.example.toml here: the packaged one is used
    result = cli("demo", *SMALL)
    assert result.code == 0, result
    assert "HTML report: var/demo/report.html" in result.out
    assert [p.name for p in tmp_path.iterdir()] == ["var"]
    folder = tmp_path / "var" / "demo"
    assert (folder / "report.html").is_file()
    marker = _listed(folder)
    assert marker["finished"] is True
    assert {"netanim.db", "network.csv", "outbox", "report.html"} <= set(marker["entries"])
    assert set(marker["entries"]) == {p.name for p in folder.iterdir()} - {MARKER}


def test_demo_refuses_a_folder_it_did_not_write(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "budget.xlsx").write_text("the user's", encoding="utf-8")
    result = cli("demo", "--dir", str(folder), *SMALL)
    assert result.code == 1
    assert f"{folder}: not empty, and not a folder the demo wrote (no {MARKER} in it)" in result.err
    assert "budget.xlsx" in result.err
    assert "Traceback" not in result.err
    assert [p.name for p in folder.iterdir()] == ["budget.xlsx"]
    assert (folder / "budget.xlsx").read_text(encoding="utf-8") == "the user's"


def test_demo_reruns_in_its_own_folder_and_keeps_what_is_not_its(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "demo"
    assert cli("demo", "--dir", str(folder), *SMALL).code == 0
    # What later commands on the demo's database add beside it is the demo's too.
    (folder / "netanim.db-wal").write_bytes(b"")
    again = cli("demo", "--dir", str(folder), *SMALL)
    assert again.code == 0, again
    assert not (folder / "netanim.db-wal").exists()

    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    refused = cli("demo", "--dir", str(folder), *SMALL)
    assert refused.code == 1
    assert f"{folder}: holds files the demo did not write" in refused.err
    assert "not the demo's: notes.txt" in refused.err
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (folder / "report.html").is_file()  # refused before touching anything


def test_a_failed_demo_leaves_nothing_behind(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    def broken_report(*args: object) -> Path:
        raise RuntimeError("disk gone")

    # Fails at the very end, when the database, outbox and letters are all written.
    monkeypatch.setattr(demo_run, "write_demo_report", broken_report)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError):
        cli("demo", *SMALL)
    assert list(tmp_path.iterdir()) == []  # var/demo and var/ were the demo's: gone

    existing = tmp_path / "empty"
    existing.mkdir()
    with pytest.raises(RuntimeError):
        cli("demo", "--dir", str(existing), *SMALL)
    assert list(existing.iterdir()) == []  # the user's folder stays, empty as it was


def test_a_config_error_found_midway_leaves_nothing_behind(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    body = (REPO / "config.example.toml").read_text(encoding="utf-8")
    body = body.replace('templates_dir = "templates"', f'templates_dir = "{REPO / "templates"}"')
    body = body.replace('channels_dir = "channels"', 'channels_dir = "nowhere"')
    config = tmp_path / "conf" / "broken.toml"
    config.parent.mkdir()
    config.write_text(body, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # The channel definitions are read once the database and the network are written.
    result = cli("demo", "-c", str(config), *SMALL)
    assert result.code == 1
    assert "nowhere: channel definitions folder not found" in result.err
    assert "Traceback" not in result.err
    assert [p.name for p in tmp_path.iterdir()] == ["conf"]


def test_a_run_that_was_killed_leaves_a_folder_the_next_one_refuses(tmp_path: Path) -> None:
    # kill -9 mid-run: the marker lists nothing yet, so nothing is known to be the demo's.
    folder = tmp_path / "demo"
    claim_demo_folder(folder)
    (folder / "netanim.db").write_bytes(b"half")
    assert (_listed(folder)["finished"], _listed(folder)["entries"]) == (False, [])
    with pytest.raises(UserError) as refused:
        claim_demo_folder(folder)
    assert "not the demo's: netanim.db" in refused.value.problems[0]
    assert (folder / "netanim.db").read_bytes() == b"half"


def test_a_file_is_not_a_demo_folder(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match="not a folder"):
        claim_demo_folder(target)
