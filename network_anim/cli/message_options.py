"""The options that describe a one-off message, shared by ``broadcast`` and ``preview``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from network_anim.domain import Level, MessageKind

F = TypeVar("F", bound=Callable[..., object])


def message_options(when: str = "") -> Callable[[F], F]:
    """``--var``, ``--kind`` and ``--level``; ``when`` starts their help ("With
    --template: ") where they apply to one form of the command only."""

    def apply(func: F) -> F:
        options = (
            click.option(
                "--var",
                "variables",
                multiple=True,
                metavar="NAME=VALUE",
                help=_help(when, "A template variable (repeatable)."),
            ),
            click.option(
                "--kind",
                type=click.Choice([k.value for k in MessageKind]),
                default=MessageKind.MARKETING.value,
                show_default=True,
                help=_help(
                    when, "Operational messages ignore frequency caps and marketing windows."
                ),
            ),
            click.option(
                "--level",
                type=click.Choice([lv.value for lv in Level]),
                default=Level.SELLER.value,
                show_default=True,
                help=_help(when, "Lowest portal level that may read the message's post."),
            ),
        )
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _help(when: str, text: str) -> str:
    return f"{when}{text[0].lower()}{text[1:]}" if when else text
