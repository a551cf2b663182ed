"""GSM-7 / UCS-2 detection and segment counting (network_anim.channels.sms_encoding)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from network_anim.channels.sms_encoding import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, sms_segments

BASIC = sorted(GSM7_BASIC)
EXTENSION = sorted(GSM7_EXTENSION)
# Characters outside GSM 03.38 that French texts meet, plus BMP and non-BMP symbols.
NON_GSM = [*"êâîôûëïçœŒÊÂÎÔÛ’“”«»—–…\t", "δ", "₤", "😀", "👍", "𝄞"]


def test_tables_have_the_sizes_of_gsm_03_38() -> None:
    # 128 codes minus ESC; 10 extension characters (FF ^ { } \ [ ~ ] | €).
    assert len(GSM7_BASIC) == 127
    assert sorted(GSM7_EXTENSION) == sorted("\f^{}\\[~]|€")
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert not set(NON_GSM) & (GSM7_BASIC | GSM7_EXTENSION)


def test_empty_text_is_one_segment() -> None:
    result = sms_segments("")
    assert (result.encoding, result.units, result.segments) == ("GSM-7", 0, 1)


@pytest.mark.parametrize("char", list("éèùàÉÇìòÅåØøÆæßÄÖÑÜäöñü§¿¡£¥¤@ΔΦΓΛΩΠΨΣΘΞ_\n\r"))
def test_gsm7_basic_characters(char: str) -> None:
    assert is_gsm7(char)
    assert sms_segments(char * 3).encoding == "GSM-7"
    assert sms_segments(char * 3).units == 3


@pytest.mark.parametrize("char", list("êâîôûëïçœÊÂÎÔÛËÏŒáíóúÁ"))
def test_french_characters_outside_gsm7_force_ucs2(char: str) -> None:
    text = f"Votre commande {char} est prete"
    result = sms_segments(text)
    assert result.encoding == "UCS-2"
    assert result.units == len(text)


def test_lowercase_c_cedilla_is_not_gsm7_but_uppercase_is() -> None:
    assert sms_segments("Ça marche").encoding == "GSM-7"
    assert sms_segments("Reçu").encoding == "UCS-2"


def test_french_text_with_accents_of_the_table_stays_gsm7() -> None:
    text = "Bonjour Élodie, votre remise à -20 % sur la gamme été expire jeudi. Où ? Là !"
    result = sms_segments(text)
    assert result.encoding == "GSM-7"
    assert result.units == len(text)
    assert result.segments == 1


@pytest.mark.parametrize("char", EXTENSION)
def test_extension_characters_count_two_septets(char: str) -> None:
    result = sms_segments(f"a{char}b")
    assert result.encoding == "GSM-7"
    assert result.units == 4


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("a" * 1530, 1530, 10),
        ("€" * 80, 160, 1),  # exactly full single part
        ("a" * 159 + "€", 161, 2),  # the ESC pair tips it over 160
        ("€" * 81, 162, 2),  # 76 pairs per concatenated part: 76 + 5
        ("€" * 153, 306, 3),  # 76 + 76 + 1: perfect packing would say 2
        # An ESC pair never straddles a boundary: it moves whole to the next part.
        ("a" * 152 + "€" + "a" * 152, 306, 3),
        ("a" * 153 + "€" + "a" * 151, 306, 2),
    ],
)
def test_gsm7_segment_limits(text: str, units: int, segments: int) -> None:
    result = sms_segments(text)
    assert result.encoding == "GSM-7"
    assert (result.units, result.segments) == (units, segments)


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        ("ê" * 70, 70, 1),
        ("ê" * 71, 71, 2),
        ("ê" * 134, 134, 2),
        ("ê" * 135, 135, 3),
        ("😀" * 35, 70, 1),  # emoji are surrogate pairs: 2 UTF-16 units each
        ("😀" * 36, 72, 2),
        ("ê" + "😀" * 35, 71, 2),
        # A surrogate pair never straddles a boundary either.
        ("ê" * 66 + "😀" + "ê" * 66, 134, 3),
        ("ê" * 65 + "😀" + "ê" * 67, 134, 2),
    ],
)
def test_ucs2_segment_limits(text: str, units: int, segments: int) -> None:
    result = sms_segments(text)
    assert result.encoding == "UCS-2"
    assert (result.units, result.segments) == (units, segments)


def test_one_emoji_turns_a_gsm7_text_into_ucs2_and_more_segments() -> None:
    text = "Flash : -30 % sur les perceuses jusqu'à ce soir, en agence et sur le portail."
    assert sms_segments(text).segments == 1
    with_emoji = text + " " + text + " 🔥"
    assert sms_segments(text + " " + text).encoding == "GSM-7"
    assert sms_segments(text + " " + text).segments == 1
    assert sms_segments(with_emoji).encoding == "UCS-2"
    assert sms_segments(with_emoji).segments == 3


# ----------------------------------------------------------------------- properties

gsm_basic_text = st.text(alphabet=st.sampled_from(BASIC))
mixed_text = st.text(alphabet=st.sampled_from(BASIC + EXTENSION + NON_GSM), max_size=500)


@given(mixed_text, st.data())
def test_segments_are_monotone_in_length(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    assert sms_segments(text[:cut]).segments <= sms_segments(text).segments


@given(gsm_basic_text.filter(lambda t: len(t) <= 160))
def test_up_to_160_basic_characters_is_one_gsm7_segment(text: str) -> None:
    result = sms_segments(text)
    assert (result.encoding, result.units, result.segments) == ("GSM-7", len(text), 1)


@given(st.text(alphabet=st.sampled_from(BASIC + EXTENSION)), st.sampled_from(NON_GSM), st.data())
def test_any_non_gsm_character_switches_to_ucs2(
    text: str, intruder: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    assert sms_segments(text).encoding == "GSM-7"
    result = sms_segments(text[:at] + intruder + text[at:])
    assert result.encoding == "UCS-2"


@given(mixed_text)
def test_units_and_segment_bounds(text: str) -> None:
    result = sms_segments(text)
    if result.encoding == "GSM-7":
        assert result.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
        single, part = 160, 153
    else:
        assert result.units == len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    if result.units <= single:
        assert result.segments == 1
    else:
        # Never better than perfect packing, never worse than losing one unit per part.
        assert math.ceil(result.units / part) <= result.segments
        assert result.segments <= math.ceil(result.units / (part - 1))
