"""Everything a command needs, built once from the config: no engine or settings at import."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from network_anim.clock import Clock, SystemClock
from network_anim.compose.links import LinkSigner, load_previous_secrets, load_secret
from network_anim.compose.rendering import TemplateStore
from network_anim.config.channel_defs import ChannelDefinition, load_channel_definitions
from network_anim.config.defaults import channels_dir, templates_dir
from network_anim.config.loading import load_config
from network_anim.config.settings import Campaign as CampaignConfig
from network_anim.config.settings import Config, LoadedConfig
from network_anim.db.engine import make_engine
from network_anim.routing.router import RoutingPolicy


class ContactVariables(Protocol):
    """A source of per-contact template variables (a challenge participant's rank and
    points) for the steps of some campaigns.

    Defined here, below every stage, so the planner's step constructor can ask for them
    while the stages that know the values (challenges/) sit above the campaigns; whoever
    builds the running engine (cli, daemon, simulation) hands the sources to the App.
    """

    def provides(self, config: Config, campaign: CampaignConfig) -> Mapping[str, Any]:
        """The variables this source gives ``campaign``'s steps, each with a sample value
        (``netanim validate`` renders with it); empty when it serves no step of it."""
        ...

    def values(
        self,
        app: App,
        session: Session,
        campaign: CampaignConfig,
        contact_ids: Collection[int] | None,
    ) -> Mapping[int, Mapping[str, Any]]:
        """Each contact's values (``None``: every contact the source knows for the
        campaign), computed for all of them with one set of queries, in the caller's
        transaction."""
        ...


@dataclass
class App:
    loaded: LoadedConfig
    definitions: dict[str, ChannelDefinition]
    database_url: str
    clock: Clock
    # Per-contact variable sources; none unless the engine's builder wires some.
    variables: tuple[ContactVariables, ...] = ()

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.loaded.config

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.database_url)

    @cached_property
    def templates(self) -> TemplateStore:
        engine = self.config.engine
        return TemplateStore(templates_dir(self.loaded), engine.language)

    @cached_property
    def signer(self) -> LinkSigner:
        engine = self.config.engine
        secret = load_secret(engine.secret_key_env, self.data_dir)
        previous = load_previous_secrets(engine.secret_key_env)
        return LinkSigner(secret, engine.base_url, previous=previous)

    @cached_property
    def policy(self) -> RoutingPolicy:
        routing = self.config.routing
        return RoutingPolicy(
            urgencies=routing.urgencies,
            definitions=self.definitions,
            frequency_caps=routing.frequency_caps,
            quiet_hours=routing.quiet_hours,
        )

    @property
    def data_dir(self) -> Path:
        return self.loaded.resolve(self.config.engine.data_dir)

    def replace_config(
        self, loaded: LoadedConfig, definitions: dict[str, ChannelDefinition]
    ) -> None:
        """Take a reloaded config; what was derived from the old one is derived again."""
        self.loaded, self.definitions = loaded, definitions
        for derived in ("templates", "policy"):
            self.__dict__.pop(derived, None)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def resolve_database_url(loaded: LoadedConfig, override: str | None) -> str:
    url = override or loaded.config.engine.database
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        # A relative SQLite path is relative to the config file, like every other path.
        url = prefix + str(loaded.resolve(Path(url[len(prefix) :])))
    return url


def open_app(
    config_path: Path | None,
    *,
    db_url: str | None = None,
    clock: Clock | None = None,
    variables: tuple[ContactVariables, ...] = (),
) -> App:
    return app_from_config(
        load_config(config_path), db_url=db_url, clock=clock, variables=variables
    )


def app_from_config(
    loaded: LoadedConfig,
    *,
    db_url: str | None = None,
    clock: Clock | None = None,
    variables: tuple[ContactVariables, ...] = (),
) -> App:
    """An App for a config already loaded (the demo moves an example config's outputs)."""
    definitions = load_channel_definitions(channels_dir(loaded))
    return App(
        loaded=loaded,
        definitions=definitions,
        database_url=resolve_database_url(loaded, db_url),
        clock=clock or SystemClock(),
        variables=variables,
    )
