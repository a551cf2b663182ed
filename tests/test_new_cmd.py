"""`netanim new DIR` writes a project a channel manager edits, from the defaults that ship
with the package; a project without a channels/ or templates/ folder of its own reads
those defaults."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pytest

from network_anim.config.defaults import defaults_root, resolve_folder
from network_anim.config.loading import load_config

REPO = Path(__file__).resolve().parent.parent


def _same_tree(left: Path, right: Path) -> bool:
    compared = filecmp.dircmp(left, right)
    if compared.left_only or compared.right_only or compared.diff_files or compared.funny_files:
        return False
    return all(_same_tree(left / sub, right / sub) for sub in compared.common_dirs)


def test_defaults_are_read_from_the_checkout_in_an_editable_install() -> None:
    # The tests run on the checkout (pip install -e .): no second copy anywhere.
    assert defaults_root() == REPO
    assert not (REPO / "network_anim" / "_defaults").exists()


def test_new_writes_a_project_that_runs(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = cli("new", "proj")
    assert result.code == 0, result
    project = tmp_path / "proj"
    assert sorted(p.name for p in project.iterdir()) == [
        "README.md",
        "channels",
        "examples",
        "netanim.toml",
        "templates",
    ]
    for name in ("channels", "templates", "examples"):
        assert _same_tree(project / name, REPO / name), name
    config = (project / "netanim.toml").read_text(encoding="utf-8")
    assert "config.example.toml" not in config
    assert "netanim validate netanim.toml" in config
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# proj: a network-anim project")
    assert "netanim import network examples/network.csv" in readme
    assert "cd proj" in result.out

    loaded = load_config(project / "netanim.toml")
    for kind in ("channels", "templates"):
        folder = resolve_folder(loaded, kind)
        assert (folder.path, folder.packaged) == (project / kind, False)

    monkeypatch.chdir(project)  # ./netanim.toml: no -c needed
    assert cli("init").code == 0
    validated = cli("validate")
    assert validated.code == 0, validated
    assert f"channels: {project / 'channels'}" in validated.out
    imported = cli("import", "network", "examples/network.csv")
    assert imported.code == 0, imported
    assert "contacts 15 created" in imported.out


def test_new_refuses_a_folder_that_is_not_empty(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me", encoding="utf-8")
    result = cli("new", str(folder))
    assert result.code == 1
    assert f"{folder}: not empty (1 entries: notes.txt)" in result.err
    assert "pick a new or empty folder" in result.err
    assert "Traceback" not in result.err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_new_fills_an_empty_folder(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "empty"
    folder.mkdir()
    assert cli("new", str(folder)).code == 0
    assert (folder / "netanim.toml").is_file()


def test_new_takes_back_what_it_wrote_when_it_fails(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = shutil.copytree

    def fail_on_templates(source, target, **kwargs):  # type: ignore[no-untyped-def]
        if Path(target).name == "templates":
            raise OSError(28, "No space left on device")
        return real(source, target, **kwargs)

    monkeypatch.setattr(shutil, "copytree", fail_on_templates)
    result = cli("new", str(tmp_path / "clients" / "proj"))
    assert result.code == 1
    assert "cannot write the project (No space left on device)" in result.err
    assert list(tmp_path.iterdir()) == []  # clients/ too: the command created it


def test_the_help_example_runs_as_written(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    help_text = cli("new", "--help").out
    example = help_text[help_text.index("Example:") :].splitlines()[1:3]
    assert example[0].strip() == "netanim new my-network"
    monkeypatch.chdir(tmp_path)
    for line in example:
        for command in line.split("&&"):
            words = command.split()
            if words[0] == "cd":
                monkeypatch.chdir(Path.cwd() / words[1])
                continue
            assert words[0] == "netanim"
            result = cli(*words[1:])
            assert result.code == 0, (command, result)


def test_a_project_without_its_own_folders_reads_the_packaged_ones(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "netanim.toml").write_text('[engine]\ndatabase = "sqlite:///x.db"\n', "utf-8")
    monkeypatch.chdir(tmp_path)
    loaded = load_config(Path("netanim.toml"))
    channels = resolve_folder(loaded, "channels")
    assert (channels.path, channels.packaged) == (REPO / "channels", True)
    result = cli("validate")
    assert result.code == 0, result
    assert "channels: the defaults that ship with network-anim" in result.out
    assert cli("init").code == 0


def test_a_channels_folder_named_explicitly_must_exist(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A typo in the key must not fall back silently to the packaged definitions.
    (tmp_path / "netanim.toml").write_text('[engine]\nchannels_dir = "chanels"\n', "utf-8")
    monkeypatch.chdir(tmp_path)
    result = cli("init")
    assert result.code == 1
    assert f"{tmp_path / 'chanels'}: channel definitions folder not found" in result.err
    assert "Traceback" not in result.err
