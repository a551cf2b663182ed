"""Every command names its config the same way: -c FILE, $NETANIM_CONFIG, ./netanim.toml;
the older positional CONFIG_FILE of `validate` and `daemon` stays an alias."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, write_config


@pytest.fixture
def config() -> Path:
    return REPO / "config.example.toml"


def test_validate_takes_dash_c(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("validate", "-c", str(config))
    assert result.code == 0, result.err
    assert f"{config}: OK" in result.out


def test_validate_keeps_the_positional_alias(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("validate", str(config))
    assert result.code == 0, result.err
    assert f"{config}: OK" in result.out


def test_validate_reads_netanim_config(cli, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETANIM_CONFIG", str(config))
    result = cli("validate")
    assert result.code == 0, result.err
    assert f"{config}: OK" in result.out


def test_two_different_configs_are_refused(cli, config: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = write_config(tmp_path, f"sqlite:///{tmp_path / 'v.db'}")
    result = cli("validate", str(config), "-c", str(other))
    assert result.code == 1
    assert f"two config files given: {config} and {other}" in result.err
    assert "Traceback" not in result.err


def test_daemon_without_any_config_says_how_to_name_one(
    cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.delenv("NETANIM_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = cli("daemon")
    assert result.code == 1
    assert "the daemon needs a config file" in result.err
    assert "pass -c FILE, set NETANIM_CONFIG" in result.err
