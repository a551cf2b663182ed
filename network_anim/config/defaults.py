"""The defaults that ship with the package: channel definitions, templates, the example
config and the sample network, sales and objectives.

Their one source is the repository's top-level ``channels/``, ``templates/``,
``config.example.toml`` and ``examples/``. A wheel carries a copy made at build time
(``setup.py`` puts it in ``network_anim/_defaults/``); an editable install has none and
reads the checkout itself, so there is never a second copy to keep in sync.

Precedence, for ``[engine] channels_dir`` and ``templates_dir``: the folder the config
names, when it exists; else, when the key is left at its default (``channels``,
``templates``), the packaged folder; a folder named explicitly that does not exist stays
an error, since falling back there would hide a typo.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from network_anim.config.settings import EngineSettings, LoadedConfig
from network_anim.errors import UserError

# The names inside the defaults folder: the same as at the top of the repository, so the
# example config's relative paths (examples/objectives.csv...) hold in both places.
CHANNELS = "channels"
TEMPLATES = "templates"
EXAMPLES = "examples"
EXAMPLE_CONFIG = "config.example.toml"
PACKAGED_FOLDER = "_defaults"

Kind = Literal["channels", "templates"]


@cache
def defaults_root() -> Path:
    """The folder holding ``channels/``, ``templates/``, ``examples/`` and the example
    config: inside the installed package, else the source checkout (editable install)."""
    packaged = resources.files("network_anim") / PACKAGED_FOLDER
    # An installed wheel is unpacked on disk; a zipped import would need extracting, and
    # the engine hands these folders to Jinja2 and glob() as plain paths.
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if _complete(checkout):
        return checkout
    raise UserError(
        "the defaults that ship with network-anim are missing "
        f"(neither {packaged} nor a source checkout at {checkout})",
        ["reinstall the package: pip install --force-reinstall network-anim"],
    )


def _complete(root: Path) -> bool:
    return (
        (root / CHANNELS).is_dir()
        and (root / TEMPLATES).is_dir()
        and (root / EXAMPLES).is_dir()
        and (root / EXAMPLE_CONFIG).is_file()
    )


def default_channels_dir() -> Path:
    return defaults_root() / CHANNELS


def default_templates_dir() -> Path:
    return defaults_root() / TEMPLATES


def example_config() -> Path:
    return defaults_root() / EXAMPLE_CONFIG


def examples_dir() -> Path:
    return defaults_root() / EXAMPLES


@dataclass(frozen=True, slots=True)
class ResolvedFolder:
    path: Path
    packaged: bool  # True: the package's default, the project has no folder of its own

    def describe(self) -> str:
        return (
            f"the defaults that ship with network-anim ({self.path})"
            if self.packaged
            else str(self.path)
        )


def resolve_folder(loaded: LoadedConfig, kind: Kind) -> ResolvedFolder:
    """The channels or templates folder a config uses (see the module's precedence)."""
    engine = loaded.config.engine
    configured = engine.channels_dir if kind == CHANNELS else engine.templates_dir
    own = loaded.resolve(configured)
    if own.is_dir():
        return ResolvedFolder(own, packaged=False)
    if configured == EngineSettings.model_fields[f"{kind}_dir"].default:
        return ResolvedFolder(defaults_root() / kind, packaged=True)
    return ResolvedFolder(own, packaged=False)


def channels_dir(loaded: LoadedConfig) -> Path:
    return resolve_folder(loaded, CHANNELS).path


def templates_dir(loaded: LoadedConfig) -> Path:
    return resolve_folder(loaded, TEMPLATES).path


__all__ = [
    "ResolvedFolder",
    "channels_dir",
    "default_channels_dir",
    "default_templates_dir",
    "defaults_root",
    "example_config",
    "examples_dir",
    "resolve_folder",
    "templates_dir",
]
