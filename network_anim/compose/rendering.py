"""Message templates: Jinja2 in its sandbox, StrictUndefined, HTML autoescaped.

Layout: ``templates/<channel>/<name>.<lang>.txt`` defines ``{% block subject %}`` (the
email subject, the letter's object line, the post title) and ``{% block body %}``;
email adds ``templates/email/<name>.<lang>.html`` for the HTML part. Templates are written
by channel managers, hence the sandbox; a missing variable is an error, never a blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.debug import rewrite_traceback_stack
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from network_anim.errors import UserError


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None


# How every message template is compiled (bench/broadcast_plan.py's bare-Jinja2 baseline
# uses the same options, without the sandbox).
TEMPLATE_OPTIONS: dict[str, Any] = {
    "undefined": StrictUndefined,
    "autoescape": select_autoescape(enabled_extensions=("html",), default_for_string=False),
    "trim_blocks": True,
    "lstrip_blocks": True,
    "auto_reload": False,
}


class TemplateStore:
    def __init__(self, directory: Path, default_language: str) -> None:
        self.directory = directory
        self.default_language = default_language
        self._paths: dict[tuple[str, str, str, str], str | None] = {}
        self._compiled: dict[str, Template] = {}
        self.env = SandboxedEnvironment(loader=FileSystemLoader(str(directory)), **TEMPLATE_OPTIONS)

    def names(self, channel: str) -> set[str]:
        folder = self.directory / channel
        if not folder.is_dir():
            return set()
        return {p.name.split(".", 1)[0] for p in folder.glob("*.txt") if not p.name.startswith("_")}

    def has(self, channel: str, name: str) -> bool:
        return name in self.names(channel)

    def languages(self, channel: str, name: str) -> set[str]:
        return {p.name.split(".")[1] for p in (self.directory / channel).glob(f"{name}.*.txt")}

    def _path(self, channel: str, name: str, language: str, ext: str) -> str | None:
        # Asked once per delivery: look at the disk once per template and language, like
        # the compiled templates (a reload builds a new store).
        key = (channel, name, language, ext)
        if key not in self._paths:
            self._paths[key] = next(
                (
                    candidate
                    for lang in (language, self.default_language)
                    if (self.directory / (candidate := f"{channel}/{name}.{lang}.{ext}")).is_file()
                ),
                None,
            )
        return self._paths[key]

    def require(self, channel: str, name: str) -> None:
        if self._path(channel, name, self.default_language, "txt") is None:
            known = ", ".join(sorted(self.names(channel))) or "none"
            raise UserError(
                f"unknown template {name!r} for channel {channel}",
                [
                    f"expected {self.directory / channel / f'{name}.{self.default_language}.txt'}",
                    f"templates for {channel}: {known}",
                ],
            )

    def render(
        self, channel: str, name: str, language: str, context: Mapping[str, Any]
    ) -> Rendered:
        text_path = self._path(channel, name, language, "txt")
        if text_path is None:
            self.require(channel, name)
            raise AssertionError("unreachable")  # require() raised
        template = self._load(text_path)
        try:
            # Both blocks share one context, as they would in a full render: building a
            # context copies every variable, and this runs for every planned delivery.
            shared = template.new_context(context)
            subject_block = template.blocks.get("subject")
            subject = "".join(subject_block(shared)) if subject_block is not None else ""
            body_block = template.blocks.get("body")
            if body_block is None:
                raise UserError(
                    f"{self.directory / text_path}: no {{% block body %}} in the template"
                )
            text = "".join(body_block(shared)).strip() + "\n"
        except (UndefinedError, SecurityError) as exc:
            raise self._failure(text_path, exc) from None
        html = None
        html_path = self._path(channel, name, language, "html") if channel == "email" else None
        if html_path is not None:
            try:
                html = self._load(html_path).render(context)
            except (UndefinedError, SecurityError) as exc:
                raise self._failure(html_path, exc) from None
        return Rendered(subject=" ".join(subject.split()), text=text, html=html)

    def _load(self, path: str) -> Template:
        template = self._compiled.get(path)
        if template is None:
            template = self._compiled[path] = self._compile(path)
        return template

    def _compile(self, path: str) -> Template:
        try:
            template = self.env.get_template(path)
        except TemplateSyntaxError as exc:
            raise UserError(
                f"{self.directory / path}:{exc.lineno}: template syntax error: {exc.message}"
            ) from None
        except TemplateNotFound:
            raise UserError(f"{self.directory / path}: template not found") from None
        # Jinja copies these globals into every render's context from a ChainMap, iterated
        # in Python twice per render; an equal plain dict (the environment's globals never
        # change once the store is built) takes a fraction of that, per planned delivery.
        template.globals = dict(template.globals)
        return template

    def _failure(self, path: str, exc: UndefinedError | SecurityError) -> UserError:
        """The user's message for a render error; called inside the ``except`` block (the
        template line comes from the traceback being handled)."""
        if isinstance(exc, UndefinedError):
            return UserError(
                f"{self.directory / path}:{_template_line(path)}: {exc.message}",
                ["pass it with broadcast --var NAME=VALUE, or in the campaign's vars"],
            )
        return UserError(f"{self.directory / path}: refused by the sandbox: {exc}")


def _template_line(path: str) -> str:
    """The template line being rendered when the error was raised.

    Rendering a block directly bypasses Jinja's traceback rewriting, so rewrite here to
    map generated-code lines back to template lines.
    """
    try:
        tb = rewrite_traceback_stack().__traceback__
    except Exception:  # the mapping is a courtesy: never hide the real error behind it
        return "?"
    line = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(path):
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line
