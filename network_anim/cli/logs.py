"""Logging for the long-running commands (`daemon`, `serve`): one line per record.

On a terminal, rich's coloured records; otherwise (systemd's journal, a file, a pipe) one
plain line per record, or one JSON object per line with ``--log-format json``, so a
multi-line message or a traceback never splits a record across lines a collector reads
as separate records.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

LEVELS = ("critical", "error", "warning", "info", "debug")
FORMATS = ("text", "json")
F = TypeVar("F", bound=Callable[..., Any])


def log_options(func: F) -> F:
    func = click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        envvar="NETANIM_LOG_FORMAT",
        help="text: rich on a terminal, one plain line per record elsewhere; json: one "
        "JSON object per line [env NETANIM_LOG_FORMAT].",
    )(func)
    return click.option(
        "--log-level",
        type=click.Choice(LEVELS),
        default="info",
        show_default=True,
        envvar="NETANIM_LOG_LEVEL",
        help="Least severe level logged [env NETANIM_LOG_LEVEL].",
    )(func)


def _timestamp(record: logging.LogRecord) -> str:
    # The moment the record was written, real time: logs are for operators.
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text = f"{text} | {self.formatException(record.exc_info)}"
        flat = text.replace("\r", "").replace("\n", " | ")
        return f"{_timestamp(record)} {record.levelname} {record.name}: {flat}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter())
    numeric = getattr(logging, level.upper())
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    # APScheduler narrates every run at INFO; its warnings still show.
    logging.getLogger("apscheduler").setLevel(
        numeric if numeric == logging.DEBUG else max(numeric, logging.WARNING)
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
