"""Charts as inline SVG, written by hand: the HTML report must open offline and travel as
one e-mail attachment, so no JavaScript library, no web font, no fetched asset.

Every function is pure: data in, an SVG fragment out (a :class:`markupsafe.Markup`, so
an autoescaping template inserts it as is). Every text that comes from data (a company,
a seller, a segment) is escaped here. Each chart carries a ``<title>`` and a ``<desc>``
summarising its figures for screen readers, and a legend when it has several series.
No data, or nothing but zeros where a zero says nothing, gives a readable "no data"
panel instead of an empty frame; no scale ever divides by zero.

The drawing is a ``viewBox`` ``width`` units wide (960, or 470 for a half column); the
page's CSS scales it to the column.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup

from network_anim.reports import fr_format

WIDTH = 960  # the content column of the page, so text is drawn at its own size
FONT_SIZE = 12
# An average glyph of the sans-serif fonts a browser picks, in ems (DejaVu Sans is the
# widest): labels are fitted with it, since an SVG cannot measure text without a script.
GLYPH = 0.6
# A chart in a half-width column: drawn narrower rather than scaled down, so its text
# keeps the size of the page's.
HALF_WIDTH = 470
FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"

INK = "#1f2937"  # text: 14.7:1 on white
MUTED = "#4b5563"  # axis labels: 7.6:1
GRID = "#e5e7eb"
AXIS = "#9ca3af"
TRACK = "#f3f4f6"  # the empty part of a bar
DEFAULT_COLOUR = "#0072B2"

# One colour per channel in every chart of the report (Okabe-Ito hues darkened until
# white text on them reaches 4.5:1, so labels inside bars stay legible).
CHANNEL_COLOURS: dict[str, str] = {
    "email": "#0072B2",
    "sms": "#C0530A",
    "intranet": "#00805D",
    "flash": "#B0417E",
    "print": "#5F6B7A",
}
_EXTRA_COLOURS = ("#7A5195", "#8C6D1F", "#2F7F9F", "#A0522D", "#4D7C0F")

NO_DATA = "Aucune donnée sur la période."

ValueFormat = Callable[[float], str]

# Characters XML 1.0 forbids: a company name pasted from a spreadsheet may carry them,
# and one of them would make the whole page's SVG fail to parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def channel_colour(channel: str) -> str:
    """The channel's colour; an unknown channel gets a stable one from a spare palette."""
    known = CHANNEL_COLOURS.get(channel)
    if known:
        return known
    index = int(hashlib.sha1(channel.encode()).hexdigest(), 16) % len(_EXTRA_COLOURS)
    return _EXTRA_COLOURS[index]


@dataclass(frozen=True)
class Series:
    """One named line, or one layer of stacked or grouped bars (values aligned with the
    chart's x values or categories; None for a value that cannot be computed)."""

    name: str
    values: tuple[float | None, ...]
    colour: str = DEFAULT_COLOUR
    dashed: bool = False  # a line told apart without its colour (e.g. machine opens)


@dataclass(frozen=True)
class Bar:
    """One bar; ``text`` replaces the formatted value at its end (e.g. "12 · 30 %")."""

    label: str
    value: float
    colour: str | None = None
    text: str | None = None


# -- text and numbers -------------------------------------------------------------------------


def escape(text: object) -> str:
    """Text made safe for SVG/HTML content and attribute values."""
    return html.escape(_NOT_XML.sub("", str(text)), quote=True)


def text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * size * GLYPH


def fit(text: str, max_width: float, size: float = FONT_SIZE) -> str:
    """``text`` cut with an ellipsis to about ``max_width`` units."""
    room = max(1, int(max_width / (size * GLYPH)))
    return text if len(text) <= room else text[: max(1, room - 1)].rstrip() + "…"


def _n(value: float) -> str:
    """A coordinate: one decimal at most, no trailing zero."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_ceiling(value: float) -> float:
    """The smallest "round" number (1, 2, 2.5, 5 times a power of ten) >= ``value``;
    1 for zero or less, so a scale never divides by zero."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10 * power


def _ticks(top: float, count: int = 4) -> list[float]:
    step = top / count
    return [step * i for i in range(count + 1)]


def _values(values: Sequence[float | None]) -> list[float]:
    return [v if v is not None and math.isfinite(v) else 0.0 for v in values]


# -- frame, legend, empty panel ---------------------------------------------------------------


def _svg(
    title: str, desc: str, width: float, height: float, body: list[str], css_class: str
) -> Markup:
    digest = hashlib.sha1("\n".join([title, desc, *body]).encode()).hexdigest()[:10]
    ident = f"chart-{digest}"
    return Markup(
        f'<svg class="chart {css_class}" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" font-family="{escape(FONT_FAMILY)}" '
        f'font-size="{FONT_SIZE}" fill="{INK}">'
        f'<title id="{ident}-t">{escape(title)}</title>'
        f'<desc id="{ident}-d">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


def no_data(
    title: str, message: str = NO_DATA, height: float = 110, width: float = WIDTH
) -> Markup:
    """A framed panel saying there is nothing to draw (and why, in ``message``)."""
    body = [
        f'<rect class="no-data" x="1" y="1" width="{_n(width - 2)}" height="{_n(height - 2)}" '
        f'rx="6" fill="#fafafa" stroke="{AXIS}" stroke-dasharray="6 4"/>',
        f'<text x="{_n(width / 2)}" y="{_n(height / 2 + FONT_SIZE / 3)}" text-anchor="middle" '
        f'font-size="14" fill="{MUTED}">{escape(message)}</text>',
    ]
    return _svg(title, message, width, height, body, "chart-empty")


def _legend(series: Sequence[Series], top: float, width: float) -> tuple[list[str], float]:
    """Swatches and names in rows across the width; returns the markup and its height."""
    parts = ['<g class="legend">']
    x, y = 0.0, top
    for s in series:
        label = fit(s.name, 220)
        room = 18 + text_width(label) + 18
        if x > 0 and x + room > width:
            x, y = 0.0, y + 20
        if s.dashed:
            swatch = (
                f'<line x1="{_n(x)}" x2="{_n(x + 12)}" y1="{_n(y + 6)}" y2="{_n(y + 6)}" '
                f'stroke="{s.colour}" stroke-width="2.2" stroke-dasharray="4 2"/>'
            )
        else:
            swatch = (
                f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="12" rx="2" fill="{s.colour}"/>'
            )
        parts.append(f'{swatch}<text x="{_n(x + 17)}" y="{_n(y + 10.5)}">{escape(label)}</text>')
        x += room
    parts.append("</g>")
    return parts, (y - top) + 20


# -- line chart over time ---------------------------------------------------------------------


def line_chart(
    *,
    title: str,
    x: Sequence[date],
    series: Sequence[Series],
    y_label: str,
    x_label: str,
    value_format: ValueFormat = fr_format.integer,
    tick_format: Callable[[date], str] = fr_format.short_day,
    empty_message: str = NO_DATA,
    width: float = WIDTH,
) -> Markup:
    """Several series over the same dates (the x axis is proportional to time, so an
    irregular gap shows as one). ``values`` of each series are aligned with ``x``."""
    for s in series:
        if len(s.values) != len(x):
            raise ValueError(f"series {s.name!r}: {len(s.values)} values for {len(x)} dates")
    if not x or not series or not any(any(_values(s.values)) for s in series):
        return no_data(title, empty_message, width=width)
    legend, legend_height = _legend(series, 0, width)
    left, right = 64.0, 16.0
    top = legend_height + 14
    plot_height = 210.0
    bottom = top + plot_height
    height = bottom + 50
    plot_width = width - left - right
    peak = max(max(_values(s.values)) for s in series)
    scale_top = nice_ceiling(peak)
    first, last = min(x).toordinal(), max(x).toordinal()
    span = last - first

    def px(day: date) -> float:
        if span == 0:
            return left + plot_width / 2
        return left + (day.toordinal() - first) / span * plot_width

    def py(value: float) -> float:
        return bottom - value / scale_top * plot_height

    body = [*legend, '<g class="grid">']
    for tick in _ticks(scale_top):
        y = py(tick)
        body.append(
            f'<line x1="{_n(left)}" x2="{_n(width - right)}" y1="{_n(y)}" y2="{_n(y)}" '
            f'stroke="{GRID if tick else AXIS}"/>'
            f'<text x="{_n(left - 8)}" y="{_n(y + 4)}" text-anchor="end" fill="{MUTED}">'
            f"{escape(fr_format.compact(tick))}</text>"
        )
    body.append("</g>")
    ordered = sorted(set(x))
    step = max(1, math.ceil(len(ordered) / 8))
    body.append('<g class="x-ticks">')
    for day in ordered[::step]:
        body.append(
            f'<line x1="{_n(px(day))}" x2="{_n(px(day))}" y1="{_n(bottom)}" '
            f'y2="{_n(bottom + 5)}" stroke="{AXIS}"/>'
            f'<text x="{_n(px(day))}" y="{_n(bottom + 19)}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(tick_format(day))}</text>'
        )
    body.append("</g>")
    body.append(
        f'<text class="axis-label" x="{_n(left + plot_width / 2)}" y="{_n(height - 8)}" '
        f'text-anchor="middle" fill="{MUTED}">{escape(x_label)}</text>'
        f'<text class="axis-label" transform="translate(14 {_n(top + plot_height / 2)}) '
        f'rotate(-90)" text-anchor="middle" fill="{MUTED}">{escape(y_label)}</text>'
    )
    markers = len(x) <= 40
    for s in series:
        values = _values(s.values)
        points = sorted(zip(x, values, strict=True))
        coords = " ".join(f"{_n(px(d))},{_n(py(v))}" for d, v in points)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        body.append(
            f'<g class="series" data-series="{escape(s.name)}">'
            f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="2.2" '
            f'stroke-linejoin="round" stroke-linecap="round"{dash}/>'
        )
        if markers or len(points) == 1:
            for d, v in points:
                body.append(
                    f'<circle cx="{_n(px(d))}" cy="{_n(py(v))}" r="3" fill="{s.colour}">'
                    f"<title>{escape(f'{s.name}, {fr_format.day(d)} : {value_format(v)}')}"
                    "</title></circle>"
                )
        body.append("</g>")
    desc = "; ".join(f"{s.name} : {value_format(sum(_values(s.values)))} au total" for s in series)
    desc += f" ({fr_format.day(min(x))} – {fr_format.day(max(x))})."
    return _svg(title, desc, width, height, body, "chart-line")


# -- horizontal bars --------------------------------------------------------------------------

_ROW = 26.0
_THICK = 16.0


def _label_column(labels: Sequence[str], width: float) -> float:
    """Room for the longest label, at most 42 % of the chart (longer ones are cut)."""
    return min(0.42 * width, max((text_width(label) for label in labels), default=0) + 14)


def _row_label(label: str, y: float, width: float) -> str:
    shown = fit(label, width - 14)
    full = f"<title>{escape(label)}</title>" if shown != label else ""
    return (
        f'<text class="label" x="{_n(width - 10)}" y="{_n(y + 4)}" text-anchor="end">'
        f"{full}{escape(shown)}</text>"
    )


def bar_chart(
    *,
    title: str,
    bars: Sequence[Bar],
    value_format: ValueFormat = fr_format.integer,
    colour: str = DEFAULT_COLOUR,
    x_label: str | None = None,
    empty_message: str = NO_DATA,
    width: float = WIDTH,
) -> Markup:
    """One horizontal bar per item, lengths proportional to the values (negative values
    go left of a zero line). All-zero values still show their rows: a ranking where
    nobody scored is itself a result."""
    if not bars:
        return no_data(title, empty_message, width=width)
    texts = [b.text if b.text is not None else value_format(b.value) for b in bars]
    label_width = _label_column([b.label for b in bars], width)
    value_width = max(56.0, max(text_width(t) for t in texts) + 14)
    area_x, area_width = label_width, width - label_width - value_width
    values = [b.value if math.isfinite(b.value) else 0.0 for b in bars]
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    zero_x = area_x + (0 - low) / span * area_width
    top = 6.0
    body: list[str] = []
    for index, (bar, value, text) in enumerate(zip(bars, values, texts, strict=True)):
        middle = top + index * _ROW + _ROW / 2
        x = zero_x + min(0.0, value) / span * area_width
        length = abs(value) / span * area_width
        fill = bar.colour or colour
        body.append(
            f'<g class="bar">{_row_label(bar.label, middle, label_width)}'
            f'<rect x="{_n(x)}" y="{_n(middle - _THICK / 2)}" width="{_n(length)}" '
            f'height="{_n(_THICK)}" rx="2" fill="{fill}" data-value="{value}">'
            f"<title>{escape(f'{bar.label} : {text}')}</title></rect>"
            f'<text class="value" x="{_n(width - 4)}" y="{_n(middle + 4)}" text-anchor="end">'
            f"{escape(text)}</text></g>"
        )
    bottom = top + len(bars) * _ROW
    body.append(
        f'<line x1="{_n(zero_x)}" x2="{_n(zero_x)}" y1="{_n(top)}" y2="{_n(bottom)}" '
        f'stroke="{AXIS}"/>'
    )
    height = bottom + 8
    if x_label:
        body.append(
            f'<text class="axis-label" x="{_n(area_x + area_width / 2)}" y="{_n(bottom + 18)}" '
            f'text-anchor="middle" fill="{MUTED}">{escape(x_label)}</text>'
        )
        height += 16
    desc = "; ".join(f"{b.label} : {t}" for b, t in zip(bars, texts, strict=True)) + "."
    return _svg(title, desc, width, height, body, "chart-bars")


# -- funnel -----------------------------------------------------------------------------------


def funnel_chart(
    *,
    title: str,
    stages: Sequence[tuple[str, float]],
    colour: str = DEFAULT_COLOUR,
    value_format: ValueFormat = fr_format.integer,
    empty_message: str = NO_DATA,
    width: float = WIDTH,
) -> Markup:
    """Stages from the widest (the first) to the narrowest, centred like a funnel; each
    bar's length and its percentage are relative to the first stage."""
    values = [v if math.isfinite(v) else 0.0 for _, v in stages]
    if not stages or not any(values):
        return no_data(title, empty_message, width=width)
    base = values[0] or max(values)
    texts = [
        f"{value_format(v)} · {fr_format.percent(v / base if base else None, 0)}" for v in values
    ]
    label_width = _label_column([name for name, _ in stages], width)
    value_width = max(90.0, max(text_width(t) for t in texts) + 14)
    area_x, area_width = label_width, width - label_width - value_width
    middle_x = area_x + area_width / 2
    top = 6.0
    body = []
    for index, ((name, _), value, text) in enumerate(zip(stages, values, texts, strict=True)):
        middle = top + index * _ROW + _ROW / 2
        length = min(1.0, max(0.0, value) / base) * area_width
        body.append(
            f'<g class="stage">{_row_label(name, middle, label_width)}'
            f'<rect x="{_n(area_x)}" y="{_n(middle - _THICK / 2)}" width="{_n(area_width)}" '
            f'height="{_n(_THICK)}" fill="{TRACK}"/>'
            f'<rect class="stage-bar" x="{_n(middle_x - length / 2)}" '
            f'y="{_n(middle - _THICK / 2)}" width="{_n(length)}" height="{_n(_THICK)}" '
            f'rx="2" fill="{colour}" data-value="{value}">'
            f"<title>{escape(f'{name} : {text}')}</title></rect>"
            f'<text class="value" x="{_n(width - 4)}" y="{_n(middle + 4)}" text-anchor="end">'
            f"{escape(text)}</text></g>"
        )
    height = top + len(stages) * _ROW + 8
    desc = "; ".join(f"{name} : {t}" for (name, _), t in zip(stages, texts, strict=True)) + "."
    return _svg(title, desc, width, height, body, "chart-funnel")


# -- stacked and grouped bars -----------------------------------------------------------------


def _check(categories: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(
                f"series {s.name!r}: {len(s.values)} values for {len(categories)} categories"
            )


def stacked_bars(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    normalize: bool = True,
    value_format: ValueFormat = fr_format.integer,
    empty_message: str = NO_DATA,
    width: float = WIDTH,
) -> Markup:
    """One bar per category split into the series' shares. ``normalize``: every bar is
    100 % wide (the mix); otherwise lengths are proportional to the totals. The total is
    written at the end of each bar, each share inside its segment when it fits."""
    _check(categories, series)
    rows = [[_values(s.values)[i] for s in series] for i in range(len(categories))]
    totals = [sum(max(0.0, v) for v in row) for row in rows]
    if not categories or not series or not any(totals):
        return no_data(title, empty_message, width=width)
    legend, legend_height = _legend(series, 0, width)
    texts = [value_format(t) for t in totals]
    label_width = _label_column(categories, width)
    value_width = max(56.0, max(text_width(t) for t in texts) + 14)
    area_x, area_width = label_width, width - label_width - value_width
    peak = max(totals)
    top = legend_height + 10
    body = [*legend]
    for index, (category, row, total, text) in enumerate(
        zip(categories, rows, totals, texts, strict=True)
    ):
        middle = top + index * _ROW + _ROW / 2
        y = middle - _THICK / 2
        scale = (1 / total if normalize else 1 / peak) if total else 0.0
        body.append(
            f'<g class="stack">{_row_label(category, middle, label_width)}'
            f'<rect x="{_n(area_x)}" y="{_n(y)}" width="{_n(area_width)}" '
            f'height="{_n(_THICK)}" fill="{TRACK}"/>'
        )
        x = area_x
        for s, value in zip(series, row, strict=True):
            if value <= 0:
                continue
            length = value * scale * area_width
            share = fr_format.percent(value / total, 0)
            body.append(
                f'<rect class="segment" x="{_n(x)}" y="{_n(y)}" width="{_n(length)}" '
                f'height="{_n(_THICK)}" fill="{s.colour}" data-value="{value}">'
                f"<title>{escape(f'{category}, {s.name} : {value_format(value)} ({share})')}"
                "</title></rect>"
            )
            if length >= text_width(share, 10.5) + 8:
                body.append(
                    f'<text x="{_n(x + length / 2)}" y="{_n(middle + 3.5)}" font-size="10.5" '
                    f'text-anchor="middle" fill="#ffffff">{escape(share)}</text>'
                )
            x += length
        body.append(
            f'<text class="value" x="{_n(width - 4)}" y="{_n(middle + 4)}" text-anchor="end">'
            f"{escape(text)}</text></g>"
        )
    height = top + len(categories) * _ROW + 8
    desc = "; ".join(
        f"{category} : "
        + ", ".join(f"{s.name} {value_format(v)}" for s, v in zip(series, row, strict=True))
        for category, row in zip(categories, rows, strict=True)
    )
    return _svg(title, desc + ".", width, height, body, "chart-stacked")


def grouped_bars(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    value_format: ValueFormat = fr_format.integer,
    empty_message: str = NO_DATA,
    width: float = WIDTH,
) -> Markup:
    """For each category one thin bar per series, side by side, on one common scale (to
    compare e.g. the conversion rate of reached contacts with that of the others). A
    None value draws no bar and reads "–"."""
    _check(categories, series)
    if not categories or not series or not any(any(_values(s.values)) for s in series):
        return no_data(title, empty_message, width=width)
    legend, legend_height = _legend(series, 0, width)
    thick = 12.0
    group = thick * len(series) + 4 * (len(series) - 1) + 14
    texts = [
        [value_format(v) if v is not None else fr_format.NONE for v in s.values] for s in series
    ]
    label_width = _label_column(categories, width)
    value_width = max(56.0, max(text_width(t) for row in texts for t in row) + 14)
    area_x, area_width = label_width, width - label_width - value_width
    peak = max(max(0.0, *_values(s.values)) for s in series) or 1.0
    top = legend_height + 8
    body = [*legend]
    for index, category in enumerate(categories):
        group_top = top + index * group + 7
        body.append(
            f'<g class="group">{_row_label(category, group_top + (group - 14) / 2, label_width)}'
        )
        for rank, s in enumerate(series):
            value = s.values[index]
            y = group_top + rank * (thick + 4)
            length = max(0.0, value or 0.0) / peak * area_width
            body.append(
                f'<rect x="{_n(area_x)}" y="{_n(y)}" width="{_n(length)}" height="{_n(thick)}" '
                f'rx="2" fill="{s.colour}" data-value="{value if value is not None else ""}">'
                f"<title>{escape(f'{category}, {s.name} : {texts[rank][index]}')}</title></rect>"
                f'<text class="value" x="{_n(area_x + length + 6)}" y="{_n(y + thick - 1.5)}">'
                f"{escape(texts[rank][index])}</text>"
            )
        body.append("</g>")
    height = top + len(categories) * group + 8
    desc = "; ".join(
        f"{category} : " + ", ".join(f"{s.name} {texts[rank][i]}" for rank, s in enumerate(series))
        for i, category in enumerate(categories)
    )
    return _svg(title, desc + ".", width, height, body, "chart-grouped")


__all__ = [
    "CHANNEL_COLOURS",
    "NO_DATA",
    "Bar",
    "Series",
    "bar_chart",
    "channel_colour",
    "escape",
    "fit",
    "funnel_chart",
    "grouped_bars",
    "line_chart",
    "nice_ceiling",
    "no_data",
    "stacked_bars",
]
