"""Deployment settings from NETANIM_<SECTION>_<KEY> variables: nested keys, precedence over
the file and under the command line, refused values naming their variable, typos caught,
and every variable documented beside its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from network_anim.app import open_app
from network_anim.config.env_overrides import env_settings, with_env_overrides
from network_anim.config.loading import load_config
from network_anim.errors import UserError
from tests.conftest import REPO

SMTP_CONFIG = """
[engine]
database = "sqlite:///var/from-file.db"
data_dir = "state"

[channels.email]
transport = "smtp"
host = "relay.internal"
port = 2600
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting variable from the machine running the tests leaks into them."""
    import os

    for name in list(os.environ):
        if name.startswith(("NETANIM_ENGINE_", "NETANIM_DAEMON_", "NETANIM_CHANNELS_")):
            monkeypatch.delenv(name)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "netanim.toml"
    path.parent.mkdir()
    path.write_text(SMTP_CONFIG, encoding="utf-8")
    return path


def test_a_variable_overrides_a_nested_key_and_leaves_the_others(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETANIM_CHANNELS_EMAIL_PORT", "2525")
    monkeypatch.setenv("NETANIM_CHANNELS_SMS_STATUS_CALLBACK", "false")
    monkeypatch.setenv("NETANIM_DAEMON_DISPATCH_SECONDS", "0.5")
    loaded = load_config(config)
    email = loaded.config.channels.email
    assert (email.transport, email.host, email.port) == ("smtp", "relay.internal", 2525)
    assert loaded.config.channels.sms.status_callback is False
    assert loaded.config.daemon.dispatch_seconds == 0.5
    assert loaded.config.daemon.batch_size == 200  # neither file nor variable: the default


def test_precedence_default_file_variable_command_line(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_config(config).config.channels.email.port == 2600  # the file over the default
    monkeypatch.setenv("NETANIM_CHANNELS_EMAIL_PORT", "")  # empty: as if unset
    assert load_config(config).config.channels.email.port == 2600
    monkeypatch.setenv("NETANIM_CHANNELS_EMAIL_PORT", "2525")  # the variable over the file
    assert load_config(config).config.channels.email.port == 2525

    env_db = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv("NETANIM_ENGINE_DATABASE", env_db)
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    app = open_app(config)
    assert app.database_url == env_db
    # --db (or $NETANIM_DB, the same option) is stronger still.
    flag_db = f"sqlite:///{tmp_path / 'from-flag.db'}"
    assert open_app(config, db_url=flag_db).database_url == flag_db


def test_relative_paths_from_a_variable_are_resolved_like_the_files(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETANIM_ENGINE_DATA_DIR", "elsewhere/var")
    monkeypatch.setenv("NETANIM_CHANNELS_PRINT_DIRECTORY", "/srv/print")
    loaded = load_config(config)
    assert loaded.resolve(loaded.engine.data_dir) == config.parent / "elsewhere" / "var"
    assert loaded.resolve(loaded.config.channels.print.directory) == Path("/srv/print")


def test_variables_apply_without_a_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETANIM_ENGINE_BASE_URL", "https://anim.example")
    monkeypatch.setenv("NETANIM_CHANNELS_EMAIL_TRANSPORT", "smtp")
    config = load_config(None).config
    assert config.engine.base_url == "https://anim.example"
    assert config.channels.email.transport == "smtp"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NETANIM_CHANNELS_EMAIL_PORT", "twenty-five", "expects a whole number > 0 and < 65536"),
        ("NETANIM_CHANNELS_EMAIL_PORT", "70000", "less than 65536"),
        ("NETANIM_DAEMON_BATCH_SIZE", "-3", "greater than 0"),
        ("NETANIM_CHANNELS_EMAIL_TRANSPORT", "smpt", "expects one of file, smtp"),
        ("NETANIM_CHANNELS_SMS_STATUS_CALLBACK", "perhaps", "expects true or false"),
        ("NETANIM_ENGINE_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("NETANIM_ENGINE_DEFAULT_REGION", "france", "matching ^[A-Z]{2}$"),
        ("NETANIM_CHANNELS_PRINT_DATE_OFFSET_DAYS", "31", "<= 30"),
    ],
)
def test_a_bad_value_names_its_variable_and_what_it_expects(
    config: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(UserError) as raised:
        load_config(config)
    message = raised.value.render()
    assert f"{variable}={value!r}" in message
    assert expected in message
    key = next(s.key for s in env_settings() if s.variable == variable)
    assert f"sets {key}" in message


def test_the_cli_reports_every_bad_variable_at_once_and_exits_1(
    cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETANIM_CHANNELS_EMAIL_PORT", "abc")
    monkeypatch.setenv("NETANIM_DAEMON_LEASE_MINUTES", "0")
    monkeypatch.setenv("NETANIM_ENGINE_DATABSE", "sqlite:///typo.db")
    result = cli("validate", "-c", str(REPO / "config.example.toml"))
    assert result.code == 1, result
    assert "3 problem(s)" in result.err
    assert "NETANIM_CHANNELS_EMAIL_PORT='abc'" in result.err
    assert "NETANIM_DAEMON_LEASE_MINUTES='0'" in result.err
    assert "NETANIM_ENGINE_DATABSE: unknown setting variable" in result.err
    assert "did you mean NETANIM_ENGINE_DATABASE?" in result.err
    assert "Traceback" not in result.out + result.err


def test_variables_named_by_env_keys_are_not_taken_for_typos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret's variable may share a setting's prefix: the config names it, so it is one."""
    path = tmp_path / "netanim.toml"
    path.write_text(
        '[engine]\nsecret_key_env = "NETANIM_ENGINE_LINK_KEY"\n'
        '[channels.email]\nusername_env = "NETANIM_CHANNELS_EMAIL_USER"\n',
        encoding="utf-8",
    )
    for name in (
        "NETANIM_ENGINE_LINK_KEY",
        "NETANIM_ENGINE_LINK_KEY_PREVIOUS",
        "NETANIM_CHANNELS_EMAIL_USER",
    ):
        monkeypatch.setenv(name, "x" * 40)
    assert load_config(path).config.channels.email.username_env == "NETANIM_CHANNELS_EMAIL_USER"
    # A variable for an *_env key itself is refused with a hint.
    monkeypatch.setenv("NETANIM_ENGINE_SECRET_KEY_ENV", "OTHER")
    with pytest.raises(UserError, match="set that variable instead"):
        load_config(path)


def test_the_parsed_file_is_left_untouched() -> None:
    data = {"channels": {"email": {"port": 2600}}}
    merged = with_env_overrides(data, {"NETANIM_CHANNELS_EMAIL_PORT": "2525"})
    assert merged == {"channels": {"email": {"port": 2525}}}
    assert data == {"channels": {"email": {"port": 2600}}}
    # A section the file gave as something else is left for the file's validation.
    assert with_env_overrides({"channels": 3}, {"NETANIM_CHANNELS_EMAIL_PORT": "1"}) == {
        "channels": 3
    }


def test_names_follow_the_rule_and_cover_the_deployment_sections() -> None:
    settings = env_settings()
    names = [s.variable for s in settings]
    assert len(names) == len(set(names))
    for setting in settings:
        assert setting.variable == "NETANIM_" + "_".join(setting.path).upper()
        assert not setting.path[-1].endswith("_env")  # secrets' variable names: file only
    keys = {s.key for s in settings}
    for key in (
        "engine.database",
        "engine.base_url",
        "engine.data_dir",
        "daemon.dispatch_seconds",
        "channels.email.transport",
        "channels.email.host",
        "channels.email.port",
        "channels.sms.transport",
        "channels.sms.api_base_url",
        "channels.print.directory",
    ):
        assert key in keys, key


def test_every_variable_is_documented_beside_its_key_and_in_the_table() -> None:
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    # The text of each [section], up to the next header.
    sections = dict(re.findall(r"^\[([a-z_.]+)\]\n(.*?)(?=^\[|\Z)", example, re.M | re.S))
    table = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for setting in env_settings():
        section = ".".join(setting.path[:-1])
        assert f"${setting.variable}" in sections[section], setting.variable
        assert f"| `{setting.variable}` | `{setting.key}` | {setting.expects} |" in table
