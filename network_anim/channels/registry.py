"""Which code builds each channel's transport: a definition's ``adapter`` → its builder.

A channel definition (``channels/<name>.toml``) names its adapter; :data:`ADAPTERS` maps
that name to the module attribute holding the adapter's :class:`Adapter`, imported on
first use (a run that only posts on the portal never imports the SMTP or Twilio code).
A new channel adds one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from network_anim.channels.contract import Transport
from network_anim.clock import Clock
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import Config, secret_from_env


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a builder may use: the channel's definition and the deployment's settings."""

    name: str
    definition: ChannelDefinition
    config: Config
    resolve: Callable[[Path], Path]  # a config path made absolute
    engine: Engine
    clock: Clock

    def callback_url(self, path: str) -> str:
        return f"{self.config.engine.base_url.rstrip('/')}{path}"


@dataclass(frozen=True, slots=True)
class Adapter:
    # Builds the transport the settings choose (may read secrets: UserError if missing).
    build: Callable[[BuildContext], Transport]
    # Whether that transport may resend a row harmlessly, from the settings alone
    # (nothing built, no secret read: reclaiming asks it of every channel).
    resend_safe: Callable[[BuildContext], bool]


ADAPTERS: dict[str, str] = {
    "intranet": "network_anim.channels.intranet:ADAPTER",
    "email": "network_anim.channels.registry:EMAIL",
    "sms": "network_anim.channels.sms:ADAPTER",
    "print_mail": "network_anim.channels.registry:PRINT",
    "whatsapp": "network_anim.channels.whatsapp:ADAPTER",
}


def adapter(name: str) -> Adapter:
    target = ADAPTERS.get(name)
    if target is None:
        raise KeyError(name)
    module, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not isinstance(found, Adapter):
        raise TypeError(f"{target} is not an Adapter")
    return found


# -- email and print: their modules are being split; these move next to them after ----


def _build_email(ctx: BuildContext) -> Transport:
    cfg = ctx.config.channels.email
    if cfg.transport == "file":
        from network_anim.channels.email_file import FileEmailTransport

        return FileEmailTransport(
            ctx.resolve(cfg.directory), sender=cfg.sender, reply_to=cfg.reply_to, clock=ctx.clock
        )
    from network_anim.channels.email_smtp import SmtpTransport

    username = secret_from_env(cfg.username_env, purpose="SMTP user") if cfg.username_env else None
    password = (
        secret_from_env(cfg.password_env, purpose="SMTP password") if cfg.password_env else None
    )
    return SmtpTransport(
        cfg,
        clock=ctx.clock,
        username=username,
        password=password,
        concurrency=cfg.concurrency or ctx.definition.rate.concurrency,
        max_unrecorded=cfg.max_unrecorded,
    )


def _build_print(ctx: BuildContext) -> Transport:
    from network_anim.channels.print_mail import PrintTransport

    cfg = ctx.config.channels.print
    return PrintTransport(
        cfg,
        ctx.definition,
        directory=ctx.resolve(cfg.directory),
        clock=ctx.clock,
        timezone=ctx.config.engine.timezone,
    )


# At least once: a second copy carries the same Message-ID, which mail systems and people
# recognise; a lost message helps no one (file and SMTP alike).
EMAIL = Adapter(build=_build_email, resend_safe=lambda ctx: True)
# A second batch file would print the letter twice.
PRINT = Adapter(build=_build_print, resend_safe=lambda ctx: False)

__all__ = ["ADAPTERS", "Adapter", "BuildContext", "adapter"]
