"""Phone numbers of the demo network: drawn per numbering plan, written as people type them,
kept only when the importer reads them back as intended.

An area is one numbering plan: ``"mainland"`` (France), ``"GP"`` (Guadeloupe), ``"RE"``
(La Réunion) and ``"BE"`` (Belgium). The data file's ``[areas]`` must name exactly these.
"""

from __future__ import annotations

import random

import phonenumbers

AREAS = ("mainland", "GP", "RE", "BE")

_COUNTRY_CODES = {"mainland": "33", "GP": "590", "RE": "262", "BE": "32"}
_AREA_REGION = {"mainland": "FR", "GP": "GP", "RE": "RE", "BE": "BE"}
_OVERSEAS = ("GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


def national_mobile(rng: random.Random, area: str) -> str:
    """A national mobile number of ``area``, without the trunk 0."""
    if area == "mainland":
        return rng.choice("6667") + digits(rng, 8)
    if area == "GP":
        return "690" + digits(rng, 6)
    if area == "RE":
        return rng.choice(["692", "693"]) + digits(rng, 6)
    return "4" + rng.choice("6789") + digits(rng, 7)


def national_landline(rng: random.Random, area: str, prefix: str) -> str:
    """A national landline number of ``area`` after the local ``prefix`` ("04", "0590"...)."""
    prefix = prefix.lstrip("0")
    return prefix + digits(rng, (9 if area != "BE" else 8) - len(prefix))


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _pairs(digits: str) -> str:
    return " ".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def phone_text(rng: random.Random, area: str, national: str) -> str:
    """The number as people type it in a spreadsheet: mostly national, some international."""
    style = rng.random()
    if area == "BE":  # +32 470 12 34 56 (mobile), +32 2 512 34 56, +32 81 23 45 67
        if len(national) == 9:
            return f"+32 {national[:3]} {_pairs(national[3:])}"
        if national[0] in "234":
            return f"+32 {national[0]} {national[1:4]} {_pairs(national[4:])}"
        return f"+32 {national[:2]} {_pairs(national[2:])}"
    if area == "mainland":
        if style < 0.15:
            return "0" + national
        if style < 0.25:
            return f"+33 {national[0]} {_pairs(national[1:])}"
        return _pairs("0" + national)
    # Overseas: "0690 12 34 56", the way people there write it.
    if style < 0.15:
        return f"+{_COUNTRY_CODES[area]} {national[:3]} {_pairs(national[3:])}"
    return f"0{national[:3]} {_pairs(national[3:])}"


def reads_back(text: str, area: str, country: str, *, mobile: bool) -> bool:
    """Whether the importer reads ``text`` as a valid number of ``area`` of the right type.

    Same steps as :mod:`network_anim.network.network_csv`: parse with the company's
    ``country``, then try the overseas departments for a French national number that is not
    valid in France.
    """
    try:
        number = phonenumbers.parse(text, country)
        if not phonenumbers.is_valid_number(number) and country == "FR":
            if text.startswith("+"):
                return False
            for overseas in _OVERSEAS:
                number = phonenumbers.parse(text, overseas)
                if phonenumbers.is_valid_number(number):
                    break
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    if phonenumbers.region_code_for_number(number) != _AREA_REGION[area]:
        return False
    wanted = (
        phonenumbers.PhoneNumberType.MOBILE if mobile else phonenumbers.PhoneNumberType.FIXED_LINE
    )
    return phonenumbers.number_type(number) == wanted
