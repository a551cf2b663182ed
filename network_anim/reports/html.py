"""The HTML report: one self-contained file (inline CSS and SVG, no script, no URL) that
a channel manager opens in any browser, prints, or receives by e-mail.

Example::

    from network_anim.reports.build import build_report
    from network_anim.reports.html import render_html

    Path("report.html").write_text(render_html(build_report(app)), encoding="utf-8")
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from network_anim.reports.html_view import page
from network_anim.reports.model import Report

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"


@cache
def _environment() -> Environment:
    # Built on first use, not at import: nothing happens when the CLI merely lists commands.
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # company and seller names come from users
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: Report) -> str:
    """The whole page as text (write it with ``encoding="utf-8"``)."""
    return _environment().get_template(TEMPLATE).render(page=page(report))


__all__ = ["render_html"]
