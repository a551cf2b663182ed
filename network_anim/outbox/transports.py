"""Build each channel's transport from the deployment settings in ``[channels.*]``.

Which code builds which channel is the registry's business (channels/registry.py: a
definition's ``adapter`` → its builder); this module only builds lazily and caches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from network_anim.app import App
from network_anim.channels.contract import Transport
from network_anim.channels.registry import Adapter, BuildContext, adapter
from network_anim.errors import UserError


class ConfiguredTransports(Mapping[str, Transport]):
    """The configured transport of each channel, built on first use.

    Lazy so that a run which only posts on the portal needs no SMTP or Twilio
    credentials in its environment.
    """

    def __init__(self, app: App) -> None:
        self._app = app
        self._built: dict[str, Transport] = {}

    def __getitem__(self, channel: str) -> Transport:
        if channel not in self._app.definitions:
            raise KeyError(channel)
        if channel not in self._built:
            self._built[channel] = _adapter(self._app, channel).build(_context(self._app, channel))
        return self._built[channel]

    def __iter__(self) -> Iterator[str]:
        return iter(self._app.definitions)

    def __len__(self) -> int:
        return len(self._app.definitions)

    def resend_safe(self, channel: str) -> bool:
        """Whether sending a row twice is harmless (the target deduplicates by key)."""
        return _adapter(self._app, channel).resend_safe(_context(self._app, channel))


def _adapter(app: App, name: str) -> Adapter:
    definition = app.definitions[name]
    try:
        return adapter(definition.adapter)
    except KeyError:
        raise UserError(
            f"channels/{name}.toml: unknown adapter {definition.adapter!r}",
            ["adapters: see network_anim/channels/registry.py (ADAPTERS)"],
        ) from None


def _context(app: App, name: str) -> BuildContext:
    return BuildContext(
        name=name,
        definition=app.definitions[name],
        config=app.config,
        resolve=app.loaded.resolve,
        engine=app.engine,
        clock=app.clock,
    )


def configured_rates(app: App) -> dict[str, float]:
    """Messages per second per channel: [channels.*] rate_per_second, else the definition's."""
    settings = app.config.channels
    rates = {}
    for name, definition in app.definitions.items():
        override = getattr(getattr(settings, name, None), "rate_per_second", None)
        rates[name] = override or definition.rate.per_second
    return rates
