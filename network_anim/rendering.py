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


class TemplateStore:
    def __init__(self, directory: Path, default_language: str) -> None:
        self.directory = directory
        self.default_language = default_language
        self._paths: dict[tuple[str, str, str, str], str | None] = {}
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

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
        subject = self._block(template, text_path, "subject", context).strip()
        text = self._block(template, text_path, "body", context).strip() + "\n"
        html = None
        html_path = self._path(channel, name, language, "html") if channel == "email" else None
        if html_path is not None:
            html = self._run(html_path, lambda: self._load(html_path).render(context))
        return Rendered(subject=" ".join(subject.split()), text=text, html=html)

    def _load(self, path: str) -> Template:
        try:
            return self.env.get_template(path)
        except TemplateSyntaxError as exc:
            raise UserError(
                f"{self.directory / path}:{exc.lineno}: template syntax error: {exc.message}"
            ) from None
        except TemplateNotFound:
            raise UserError(f"{self.directory / path}: template not found") from None

    def _block(self, template: Template, path: str, block: str, context: Mapping[str, Any]) -> str:
        render_block = template.blocks.get(block)
        if render_block is None:
            if block == "body":
                raise UserError(f"{self.directory / path}: no {{% block body %}} in the template")
            return ""
        return self._run(path, lambda: "".join(render_block(template.new_context(dict(context)))))

    def _run(self, path: str, render: Any) -> str:
        try:
            return render()
        except UndefinedError as exc:
            raise UserError(
                f"{self.directory / path}:{_template_line(path)}: {exc.message}",
                ["pass it with broadcast --var NAME=VALUE, or in the campaign's vars"],
            ) from None
        except SecurityError as exc:
            raise UserError(f"{self.directory / path}: refused by the sandbox: {exc}") from None


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
