"""The report's SVG charts: well-formed, escaped, proportional, readable when empty."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest
from markupsafe import Markup

from network_anim.reports import charts, fr_format
from network_anim.reports.charts import Bar, Series

NASTY = 'Dupont & Fils <script>alert("x")</script> \x01 ‘Ç’'


def parse(svg: str) -> ET.Element:
    """The chart as XML (inline SVG carries no namespace: nothing in it points outside)."""
    return ET.fromstring(svg)


def rects(svg: str, css_class: str | None = None) -> list[ET.Element]:
    found = parse(svg).iter("rect")
    return [r for r in found if css_class is None or r.get("class") == css_class]


def valued(svg: str) -> list[ET.Element]:
    return [r for r in rects(svg) if r.get("data-value") not in (None, "")]


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in parse(svg).iter("text")]


DAYS = [date(2026, 12, 1) + timedelta(days=i) for i in range(10)]


def every_chart(label: str) -> list[Markup]:
    """One chart of each kind, with ``label`` wherever a chart shows text from data."""
    return [
        charts.line_chart(
            title=label,
            x=DAYS,
            series=[Series(label, tuple(float(i) for i in range(10)))],
            y_label=label,
            x_label=label,
        ),
        charts.bar_chart(title=label, bars=[Bar(label, 3.0), Bar("b", 1.0)]),
        charts.funnel_chart(title=label, stages=[(label, 10.0), ("b", 4.0)]),
        charts.stacked_bars(
            title=label, categories=[label, "b"], series=[Series(label, (1.0, 2.0))]
        ),
        charts.grouped_bars(
            title=label, categories=[label], series=[Series(label, (0.5,)), Series("b", (None,))]
        ),
        charts.no_data(label, label),
    ]


@pytest.mark.parametrize("index", range(6))
def test_every_chart_is_well_formed_and_accessible(index: int) -> None:
    svg = every_chart("Ventes")[index]
    assert isinstance(svg, Markup)  # an autoescaping template inserts it as is
    root = parse(svg)
    assert root.tag == "svg" and root.get("role") == "img"
    title, desc = root[0], root[1]
    assert title.tag == "title" and title.text == "Ventes"
    assert desc.tag == "desc" and desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert re.fullmatch(r"0 0 \d+ \d+(\.\d)?", root.get("viewBox", ""))
    assert "http" not in svg and "href" not in svg and "<script" not in svg


@pytest.mark.parametrize("index", range(6))
def test_text_from_data_is_escaped(index: int) -> None:
    svg = every_chart(NASTY)[index]
    root = parse(svg)  # a control character or a stray < would make this raise
    assert not list(root.iter("script"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "\x01" not in svg
    assert "Dupont & Fils" in root[0].text  # type: ignore[operator]


def test_bars_are_proportional_to_their_values() -> None:
    svg = charts.bar_chart(title="t", bars=[Bar("a", 10), Bar("b", 20), Bar("c", 5)])
    widths = [float(r.get("width", "")) for r in valued(svg)]
    assert widths[1] == pytest.approx(2 * widths[0], abs=0.2)
    assert widths[0] == pytest.approx(2 * widths[2], abs=0.2)
    assert all(w > 0 for w in widths)


def test_negative_bars_go_left_of_the_zero_line() -> None:
    svg = charts.bar_chart(title="t", bars=[Bar("gain", 30), Bar("loss", -10)])
    gain, loss = valued(svg)
    assert float(loss.get("x", "")) + float(loss.get("width", "")) == pytest.approx(
        float(gain.get("x", "")), abs=0.2
    )
    assert float(gain.get("width", "")) == pytest.approx(3 * float(loss.get("width", "")), 0.01)


def test_all_zero_bars_keep_their_rows() -> None:
    svg = charts.bar_chart(title="t", bars=[Bar("Alice", 0), Bar("Bob", 0)])
    assert [r.get("width") for r in valued(svg)] == ["0", "0"]
    assert {"Alice", "Bob"} <= set(texts(svg))


def test_funnel_stages_are_relative_to_the_first() -> None:
    svg = charts.funnel_chart(title="t", stages=[("planned", 200), ("sent", 100), ("open", 50)])
    first, second, third = (float(r.get("width", "")) for r in rects(svg, "stage-bar"))
    assert second == pytest.approx(first / 2, abs=0.2)
    assert third == pytest.approx(first / 4, abs=0.2)
    shown = texts(svg)
    assert "100 · 50\u202f%" in shown and "50 · 25\u202f%" in shown
    # Centred: every bar has the same middle.
    middles = {
        round(float(r.get("x", "")) + float(r.get("width", "")) / 2, 1)
        for r in rects(svg, "stage-bar")
    }
    assert len(middles) == 1


def test_stacked_bars_split_each_row_by_share() -> None:
    svg = charts.stacked_bars(
        title="t",
        categories=["champions", "lost"],
        series=[Series("email", (30.0, 0.0), "#111111"), Series("sms", (10.0, 5.0), "#222222")],
    )
    segments = rects(svg, "segment")
    assert len(segments) == 3  # no empty segment is drawn
    email, sms, lost_sms = (float(s.get("width", "")) for s in segments)
    assert email == pytest.approx(3 * sms, abs=0.2)
    assert lost_sms == pytest.approx(email + sms, abs=0.2)  # normalised: each row is 100 %
    assert "75\u202f%" in texts(svg)
    absolute = charts.stacked_bars(
        title="t",
        categories=["champions", "lost"],
        series=[Series("email", (30.0, 0.0)), Series("sms", (10.0, 5.0))],
        normalize=False,
    )
    _, sms_abs, lost_abs = (float(s.get("width", "")) for s in rects(absolute, "segment"))
    assert sms_abs == pytest.approx(2 * lost_abs, abs=0.2)


def test_grouped_bars_share_one_scale_and_show_missing_values() -> None:
    svg = charts.grouped_bars(
        title="t",
        categories=["news", "restock"],
        series=[Series("reached", (0.4, 0.2)), Series("others", (0.1, None))],
        value_format=fr_format.percent,
    )
    widths = [float(r.get("width", "")) for r in parse(svg).iter("rect") if r.get("data-value")]
    assert widths[0] == pytest.approx(4 * widths[1], abs=0.2)
    assert widths[0] == pytest.approx(2 * widths[2], abs=0.2)
    assert fr_format.NONE in texts(svg)


def test_line_chart_scales_points_and_axis() -> None:
    svg = charts.line_chart(
        title="t",
        x=[date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 4)],
        series=[Series("email", (0.0, 50.0, 100.0)), Series("sms", (10.0, 0.0, 0.0))],
        y_label="messages",
        x_label="jour",
    )
    root = parse(svg)
    lines = list(root.iter("polyline"))
    assert len(lines) == 2
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points", "").split()]
    (x0, y0), (x1, y1), (x2, y2) = points
    # Time is proportional: the gap of two days is twice the gap of one.
    assert x2 - x1 == pytest.approx(2 * (x1 - x0), abs=0.2)
    # Values are proportional from the zero line.
    assert y0 - y1 == pytest.approx(y1 - y2, abs=0.2) and y0 > y1 > y2
    assert {"0", "100"} <= set(texts(svg))  # 100 is a round top: the scale ends there
    assert {"email", "sms", "messages", "jour"} <= set(texts(svg))


def test_series_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3"):
        charts.line_chart(
            title="t", x=DAYS[:3], series=[Series("a", (1.0, 2.0))], y_label="", x_label=""
        )


@pytest.mark.parametrize(
    "svg",
    [
        charts.line_chart(title="Envois", x=[], series=[], y_label="", x_label=""),
        charts.line_chart(
            title="Envois", x=DAYS[:2], series=[Series("a", (0.0, 0.0))], y_label="", x_label=""
        ),
        charts.bar_chart(title="Envois", bars=[]),
        charts.funnel_chart(title="Envois", stages=[("planned", 0), ("sent", 0)]),
        charts.funnel_chart(title="Envois", stages=[]),
        charts.stacked_bars(title="Envois", categories=[], series=[]),
        charts.stacked_bars(title="Envois", categories=["a"], series=[Series("x", (0.0,))]),
        charts.grouped_bars(title="Envois", categories=["a"], series=[Series("x", (None,))]),
    ],
)
def test_no_data_gives_a_readable_panel(svg: str) -> None:
    root = parse(svg)
    assert "chart-empty" in root.get("class", "")
    assert texts(svg) == [charts.NO_DATA]
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


def test_empty_message_is_the_callers() -> None:
    svg = charts.bar_chart(title="t", bars=[], empty_message="Personne n'a marqué de points.")
    assert texts(svg) == ["Personne n'a marqué de points."]


def test_long_labels_are_cut_and_kept_whole_in_a_tooltip() -> None:
    name = "Établissements Martin-Lefèvre Distribution Grand Est et Bourgogne"
    svg = charts.bar_chart(title="t", bars=[Bar(name, 1)], width=charts.HALF_WIDTH)
    label = next(t for t in parse(svg).iter("text") if t.get("class") == "label")
    assert label.find("title") is not None and label.find("title").text == name  # type: ignore[union-attr]
    shown = "".join(label.itertext()).replace(name, "", 1)
    assert shown.endswith("…") and len(shown) < len(name)


def test_channels_keep_one_colour_everywhere() -> None:
    assert charts.channel_colour("email") == charts.CHANNEL_COLOURS["email"]
    assert len(set(charts.CHANNEL_COLOURS.values())) == len(charts.CHANNEL_COLOURS)
    assert charts.channel_colour("fax") == charts.channel_colour("fax")
    assert charts.channel_colour("fax") not in charts.CHANNEL_COLOURS.values()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1), (0.3, 0.5), (7, 10), (10, 10), (11, 20), (240, 250), (2600, 5000), (-5, 1)],
)
def test_nice_ceiling(value: float, expected: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(expected)


def test_french_numbers() -> None:
    assert fr_format.integer(1234567) == "1\u202f234\u202f567"
    assert fr_format.number(-1234.5, 1) == "\u22121\u202f234,5"
    assert fr_format.number(-0.001, 1) == "0,0"
    assert fr_format.percent(0.5512) == "55,1\u202f%"
    assert fr_format.percent(None) == fr_format.NONE
    assert fr_format.euros(1234.5) == "1\u202f234,50\u00a0€"
    assert fr_format.points_delta(0.032) == "+3,2\u00a0pts"
    assert fr_format.points_delta(-0.0001) == "0,0\u00a0pts"
    assert fr_format.compact(12_000) == "12\u00a0k" and fr_format.compact(2_500_000) == "2,5\u00a0M"
    assert fr_format.day(date(2026, 12, 7)) == "7\u00a0déc. 2026"
