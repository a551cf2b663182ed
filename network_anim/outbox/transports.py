"""Build each channel's transport from the deployment settings in ``[channels.*]``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from network_anim.app import App
from network_anim.channels.base import Transport
from network_anim.config.settings import secret_from_env


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
            self._built[channel] = _build(self._app, channel)
        return self._built[channel]

    def __iter__(self) -> Iterator[str]:
        return iter(self._app.definitions)

    def __len__(self) -> int:
        return len(self._app.definitions)

    def resend_safe(self, channel: str) -> bool:
        """Whether sending a row twice is harmless (the target deduplicates by key)."""
        adapter = self._app.definitions[channel].adapter
        channels = self._app.config.channels
        if adapter == "intranet":
            return True
        if adapter == "email":
            # At least once: a second copy carries the same Message-ID, which mail
            # systems and people recognise; a lost message helps no one.
            return True
        if adapter == "sms":
            return channels.sms.transport == "file"
        return False  # print: a second batch file would print the letter twice


def _build(app: App, name: str) -> Transport:
    settings = app.config.channels
    definition = app.definitions[name]
    if definition.adapter == "intranet":
        from network_anim.channels.intranet import IntranetTransport

        return IntranetTransport(app.engine, app.clock)
    if definition.adapter == "email":
        from network_anim.channels import email

        cfg = settings.email
        if cfg.transport == "file":
            return email.FileEmailTransport(
                app.loaded.resolve(cfg.directory), sender=cfg.sender, reply_to=cfg.reply_to
            )
        username = (
            secret_from_env(cfg.username_env, purpose="SMTP user") if cfg.username_env else None
        )
        password = (
            secret_from_env(cfg.password_env, purpose="SMTP password") if cfg.password_env else None
        )
        return email.SmtpTransport(
            cfg,
            username=username,
            password=password,
            concurrency=cfg.concurrency or definition.rate.concurrency,
            max_unrecorded=cfg.max_unrecorded,
        )
    if definition.adapter == "sms":
        from network_anim.channels import sms

        cfg_sms = settings.sms
        if cfg_sms.transport == "file":
            return sms.FileSmsTransport(app.loaded.resolve(cfg_sms.directory), definition)
        callback = (
            f"{app.config.engine.base_url.rstrip('/')}/hooks/twilio/status"
            if cfg_sms.status_callback
            else None
        )
        return sms.TwilioTransport(
            cfg_sms,
            definition,
            account_sid=secret_from_env(cfg_sms.account_sid_env, purpose="Twilio account SID"),
            auth_token=secret_from_env(cfg_sms.auth_token_env, purpose="Twilio auth token"),
            status_callback_url=callback,
            concurrency=cfg_sms.concurrency or definition.rate.concurrency,
        )
    if definition.adapter == "print_mail":
        from network_anim.channels.print_mail import PrintTransport

        cfg_print = settings.print
        return PrintTransport(
            cfg_print, definition, directory=app.loaded.resolve(cfg_print.directory)
        )
    raise ValueError(f"channels/{name}.toml: unknown adapter {definition.adapter!r}")


def configured_rates(app: App) -> dict[str, float]:
    """Messages per second per channel: [channels.*] rate_per_second, else the definition's."""
    settings = app.config.channels
    rates = {}
    for name, definition in app.definitions.items():
        override = getattr(getattr(settings, name, None), "rate_per_second", None)
        rates[name] = override or definition.rate.per_second
    return rates
