"""Config validation: every problem reported with its key path, exit 1, nothing changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_example_config_validates(cli) -> None:
    result = cli("validate", str(REPO / "config.example.toml"))
    assert result.code == 0, result
    assert "OK" in result.out


def test_malformed_toml_names_the_line(cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[engine]\ntimezone = "Europe/Paris\n', encoding="utf-8")
    result = cli("validate", str(path))
    assert result.code == 1
    assert "not valid TOML" in result.err and "line 2" in result.err
    assert "Traceback" not in result.err


def test_unknown_key_and_bad_values_with_key_paths(cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[engine]
timezone = "Europe/Pariss"
databse = "sqlite:///x.db"

[[audiences]]
name = "all"

[[campaigns]]
id = "c1"
name = "One"
kind = "nurture"
audience = "all"
[[campaigns.steps]]
name = "s1"
template = "welcome"
urgency = "info"

[[campaigns]]
id = "c2"
name = "Two"
kind = "nurture"
audience = "all"
[[campaigns.steps]]
name = "s1"
template = "welcome"
urgency = "urgnet"
""",
        encoding="utf-8",
    )
    result = cli("validate", str(path))
    assert result.code == 1
    assert "engine.databse: unknown key" in result.err
    assert "engine.timezone: unknown time zone 'Europe/Pariss'" in result.err
    assert "campaigns[1].steps[0].urgency: 'urgnet' is not one of" in result.err


def _config_with_campaign(tmp_path: Path, template: str, urgency: str, vars_: str = "{ }") -> Path:
    text = f"""
[engine]
templates_dir = "templates"
channels_dir = "{REPO / "channels"}"

[[audiences]]
name = "all"

[[campaigns]]
id = "c1"
name = "One"
kind = "broadcast"
audience = "all"
vars = {vars_}
[[campaigns.steps]]
name = "s1"
template = "{template}"
urgency = "{urgency}"
"""
    path = tmp_path / "netanim.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def templates_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(REPO / "templates", tmp_path / "templates"))


def test_unknown_template(cli, tmp_path: Path, templates_copy: Path) -> None:
    result = cli("validate", str(_config_with_campaign(tmp_path, "no-such", "info")))
    assert result.code == 1
    assert "campaigns[0].steps[0].template: unknown template 'no-such'" in result.err


def test_undefined_template_variable_names_file_and_line(
    cli, tmp_path: Path, templates_copy: Path
) -> None:
    result = cli("validate", str(_config_with_campaign(tmp_path, "stock-alert", "urgent")))
    assert result.code == 1
    assert "stock-alert.fr.txt:2: 'product' is undefined" in result.err
    ok = cli(
        "validate",
        str(
            _config_with_campaign(
                tmp_path, "stock-alert", "urgent", '{ product = "X", quantity = 3 }'
            )
        ),
    )
    assert ok.code == 0, ok


def test_promotional_sms_needs_sender_and_stop(cli, tmp_path: Path, templates_copy: Path) -> None:
    sms = templates_copy / "sms" / "welcome.fr.txt"
    sms.write_text(
        "{% block body %}Bienvenue {{ contact.first_name }} : {{ post_url }}{% endblock %}\n"
    )
    result = cli("validate", str(_config_with_campaign(tmp_path, "welcome", "info")))
    assert result.code == 1
    assert "a promotional SMS must show the sender's name" in result.err
    assert "the free STOP mention" in result.err


def test_template_syntax_error_names_line(cli, tmp_path: Path, templates_copy: Path) -> None:
    (templates_copy / "intranet" / "welcome.fr.txt").write_text(
        "{% block subject %}Hi{% endblock %}\n{% block body %}\n{{ oops( }}\n{% endblock %}\n"
    )
    result = cli("validate", str(_config_with_campaign(tmp_path, "welcome", "info")))
    assert result.code == 1
    assert "welcome.fr.txt:3: template syntax error" in result.err


def test_missing_config_file(cli, tmp_path: Path) -> None:
    result = cli("validate", str(tmp_path / "nope.toml"))
    assert result.code == 1 and "file not found" in result.err


def test_usage_error_exits_2(cli) -> None:
    assert cli("broadcast", "--urgency", "info").code == 2


def test_every_command_has_help_with_an_example(cli) -> None:
    import click

    from network_anim.cli import _COMMANDS
    from network_anim.cli import cli as group

    top = cli("--help")
    assert top.code == 0 and "Example" in top.out
    for name in _COMMANDS:
        command = group.get_command(click.Context(group), name)
        paths = (
            [[name, sub] for sub in command.commands]
            if isinstance(command, click.Group)
            else [[name]]
        )
        for path in paths:
            result = cli(*path, "--help")
            assert result.code == 0, (path, result)
            assert "Example" in result.out, path


def _field_names(model: type) -> set[str]:
    """Every key of the config schema, nested sections included."""
    import typing

    from pydantic import BaseModel

    names: set[str] = set()
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        names.add(name)
        stack = [info.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names |= _field_names(annotation)
            else:
                stack.extend(typing.get_args(annotation))
    return names


def test_example_config_documents_every_key() -> None:
    import re

    from network_anim.config.settings import Config

    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    missing = sorted(n for n in _field_names(Config) if not re.search(rf"\b{n}\b", text))
    assert missing == []


CHALLENGE = """
[[products]]
sku = "P1"
name = "Product"
family = "pbx"

[[challenges]]
id = "c1"
name = "C1"
audience = "{audience}"
start = {start}
end = 2027-04-30
objectives = "{objectives}"
[challenges.scoring]
families = {{ {family} = {{ points_per_unit = 10 }} }}
"""


def _challenge_config(
    tmp_path: Path, *, audience="all", start="2027-01-04", family="pbx", objectives="objectives.csv"
) -> Path:  # type: ignore[no-untyped-def]
    from tests.conftest import write_config

    text = CHALLENGE.format(audience=audience, start=start, family=family, objectives=objectives)
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", text, example_campaigns=False)


def test_bad_challenge_definitions_name_their_keys(cli, tmp_path: Path) -> None:
    (tmp_path / "objectives.csv").write_text(
        "challenge_id;scope;subject;due;target\n", encoding="utf-8"
    )
    assert cli("validate", str(_challenge_config(tmp_path))).code == 0
    late = cli("validate", str(_challenge_config(tmp_path, start="2027-05-01")))
    assert late.code == 1 and "challenges[0]: Value error, end must be after start" not in late.err
    assert "challenges[0]: end must be after start" in late.err
    nobody = cli("validate", str(_challenge_config(tmp_path, audience="ghosts")))
    assert (
        nobody.code == 1
        and "challenges[0].audience: 'ghosts' is not a defined audience" in nobody.err
    )
    family = cli("validate", str(_challenge_config(tmp_path, family="tablets")))
    assert "challenges[0].scoring.families: no product of family tablets" in family.err


def test_bad_objectives_lines_are_named(cli, tmp_path: Path) -> None:
    (tmp_path / "objectives.csv").write_text(
        "challenge_id;scope;subject;due;target\n"
        "c1;participant;C0001;2027-02-30;100\n"
        "c1;company;D001;2027-02-28;100\n"
        "c1;participant;C0001;2027-06-01;100\n"
        "c1;participant;C0001;2027-03-01;-5\n",
        encoding="utf-8",
    )
    result = cli("validate", str(_challenge_config(tmp_path)))
    assert result.code == 1
    assert "line 2: due must be a date" in result.err
    assert "line 3: scope 'company' is not participant or team" in result.err
    assert "line 4: due 2027-06-01 is outside the challenge" in result.err
    assert "line 5: target must be positive" in result.err
