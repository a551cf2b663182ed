"""Reading a config file: TOML, validation with key paths, then the campaigns each
challenge generates added (the effective config every stage works from)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from network_anim.config.challenge_campaigns import with_challenge_campaigns
from network_anim.config.env_overrides import with_env_overrides
from network_anim.config.event_campaigns import with_event_campaigns
from network_anim.config.settings import Config, LoadedConfig
from network_anim.config.validation import parse_model
from network_anim.errors import UserError


def read_toml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already says "(at line L, column C)".
        raise UserError(f"{path}: not valid TOML", [str(exc)]) from None


def load_config(path: Path | None) -> LoadedConfig:
    """Load and validate a config file; ``None`` gives the embedded defaults. The
    ``NETANIM_<SECTION>_<KEY>`` variables set override either. The result includes the
    campaigns each challenge generates (launch, reminders, results...)."""
    if path is None:
        config = parse_model(Config, with_env_overrides({}), source="environment")
        return LoadedConfig(config=config, path=None, base_dir=Path.cwd())
    data = with_env_overrides(read_toml(path))
    config = with_challenge_campaigns(parse_model(Config, data, source=str(path)))
    config = with_event_campaigns(config)
    return LoadedConfig(config=config, path=path, base_dir=path.resolve().parent)
