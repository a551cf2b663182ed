"""csv_input.formula_lines: the lines where a cell may start like a formula, found by a
search of the whole text; every row it leaves out has no such cell (the import then
skips their cell-by-cell check)."""

from __future__ import annotations

import random
import re

import pytest

from network_anim.network.csv_input import FORMULA_STARTS, formula_lines


def lines_with_a_formula(text: str, delimiter: str) -> set[int]:
    """The lines (as the csv reader numbers them) with a cell that, stripped of its
    leading spaces, starts with a formula character: what the cell-by-cell check finds."""
    return {
        number
        for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1)
        if any(cell.lstrip(" ").startswith(FORMULA_STARTS) for cell in line.split(delimiter))
    }


@pytest.mark.parametrize("delimiter", [";", ","])
def test_no_formula_cell_is_left_out(delimiter: str) -> None:
    rng = random.Random(18)
    pieces = ["a", "b", ";", ",", " ", "  ", "=", "+", "-", "@", "\t", "\r", "\n", "\r\n", "é"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40)))
        assert lines_with_a_formula(text, delimiter) <= formula_lines(text, delimiter), text


def test_lines_are_numbered_from_the_first_line_given() -> None:
    text = "a;b\r\n=x;y\rz; +1\nok;fine\r\n-k;q\n"
    assert formula_lines(text, ";") == {2, 3, 5}
    assert formula_lines(text, ";", first_line=50_001) == {50_002, 50_003, 50_005}
    assert formula_lines(" @x;a\n", ";") == {1}
    assert formula_lines("a;b-c;d@e.example;06 12\n", ";") == set()


def test_lines_split_as_universal_newlines_untranslated() -> None:
    # The rows' reader takes its lines from _lines: the str.find path (files without a
    # lone "\r") must give what io.StringIO(text, newline="") gives, endings kept.
    import io

    from network_anim.network.csv_input import _lines

    rng = random.Random(18)
    pieces = ["a", ";", '"', "é", "\n", "\r\n", "\r", "\n\n"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
        assert list(_lines(text)) == list(io.StringIO(text, newline="")), repr(text)
