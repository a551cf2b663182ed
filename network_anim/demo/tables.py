"""The demo network's vocabulary and weights, read from ``data/network.toml``.

The file ships with the package; :func:`load_tables` reads it once, checks its shape and
returns frozen objects. Lists keep the file's order: the generator draws from them in that
order, so a seed gives the same network as long as the file is unchanged.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from network_anim.demo.phones import AREAS

DATA_FILE = "data/network.toml"

Pair = tuple[str, str]  # (male, female)


class DemoDataError(ValueError):
    """The shipped data file is malformed (a packaging or editing mistake, not a user's)."""


@dataclass(frozen=True, slots=True)
class Place:
    city: str
    postcode: str
    region: str
    area: str  # a key of [areas]: numbering plan, time zone, country
    landline: str  # national prefix of the local landlines ("04", "0590", "2"...)


@dataclass(frozen=True, slots=True)
class Area:
    country: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Region:
    area: str
    weight: int  # 0 outside mainland France
    cities: tuple[tuple[str, str, str], ...]  # (city, postcode, landline prefix)
    names: tuple[str, ...]
    last_names: tuple[str, ...]
    last_names_share: float
    first_names: tuple[tuple[str, ...], tuple[str, ...]] | None  # (male, female)
    first_names_share: float


@dataclass(frozen=True, slots=True)
class Kind:
    share: float
    group: str
    sizes: Mapping[str, int]
    name_templates: tuple[str, ...]
    delivery_points: tuple[str, ...]
    seller_roles: tuple[Pair, ...]


@dataclass(frozen=True, slots=True)
class Size:
    headcount: tuple[int, int]
    tiers: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Habits:
    generic_mailbox: float  # chance the company has a contact@ box at all
    mailboxes: tuple[str, ...]
    email: tuple[float, float, float]  # personal, shared (when there is a box), none
    no_web: float
    mobile: float
    female: float
    landline: float  # chance the company's switchboard is on a director's row
    director_roles: tuple[Pair, ...]
    correspondent_roles: tuple[Pair, ...]


@dataclass(frozen=True, slots=True)
class Addresses:
    streets: Mapping[str, tuple[str, ...]]
    town_street_types: Mapping[str, int]
    park_street_types: Mapping[str, int]
    parks: tuple[str, ...]
    park_names: tuple[str, ...]
    office_buildings: tuple[str, ...]
    known_parks: Mapping[str, str]
    belgian_streets: tuple[str, ...]
    belgian_zonings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class People:
    first_names: tuple[tuple[str, ...], tuple[str, ...]]  # (male, female)
    last_names: tuple[str, ...]
    flemish_first_names: tuple[tuple[str, ...], tuple[str, ...]]
    flemish_last_names: tuple[str, ...]
    english_roles: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Consents:
    email_opted_out: float
    email_blank: float
    email_legitimate: float
    sms_opted_out: float
    sms_blank: float
    print_opted_out: float
    print_blank: float


@dataclass(frozen=True, slots=True)
class Tables:
    areas: Mapping[str, Area]
    regions: Mapping[str, Region]
    mainland: tuple[str, ...]  # the mainland regions, in file order
    special_places: tuple[tuple[Place, ...], ...]
    kinds: Mapping[str, Kind]
    sizes: Mapping[str, Size]
    groups: Mapping[str, Habits]
    addresses: Addresses
    people: People
    domain_stopwords: frozenset[str]
    short_trades: Mapping[str, str]
    consents: Consents

    def white_collar(self, kind: str) -> bool:
        return self.kinds[kind].group == "white"


@cache
def load_tables() -> Tables:
    """The tables of the shipped data file (read and checked once per process)."""
    text = resources.files("network_anim.demo").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_tables(text)


def parse_tables(text: str) -> Tables:
    """``text`` (TOML) as :class:`Tables`; :class:`DemoDataError` names the first bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DemoDataError(f"{DATA_FILE}: {exc}") from exc
    try:
        return _build(_Reader(data, ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise DemoDataError(f"{DATA_FILE}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Reading with the path of each entry in the errors.


class _Reader:
    def __init__(self, value: Any, path: str) -> None:
        self.value, self.path = value, path

    def __getitem__(self, key: str) -> _Reader:
        table = self._table()
        if key not in table:
            raise KeyError(f"{self._at(key)}: missing")
        return _Reader(table[key], self._at(key))

    def get(self, key: str) -> _Reader | None:
        return self[key] if key in self._table() else None

    def items(self) -> list[tuple[str, _Reader]]:
        table = self._table()
        if not table:
            raise ValueError(f"{self.path}: empty table")
        return [(key, _Reader(value, self._at(key))) for key, value in table.items()]

    def array(self) -> list[_Reader]:
        if not isinstance(self.value, list) or not self.value:
            raise TypeError(f"{self.path}: expected a non-empty array")
        return [_Reader(v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise TypeError(f"{self.path}: expected a non-empty string")
        return self.value

    def number(self, *, share: bool = False) -> float:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise TypeError(f"{self.path}: expected a number ≥ 0")
        if share and value > 1:
            raise ValueError(f"{self.path}: expected a share between 0 and 1")
        return value

    def integer(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0:
            raise TypeError(f"{self.path}: expected an integer ≥ 0")
        return self.value

    def share(self) -> float:
        return self.number(share=True)

    def texts(self) -> tuple[str, ...]:
        return tuple(item.text() for item in self.array())

    def tuples(self, size: int) -> tuple[tuple[str, ...], ...]:
        rows = tuple(tuple(item.texts()) for item in self.array())
        for i, row in enumerate(rows):
            if len(row) != size:
                raise ValueError(f"{self.path}[{i}]: expected {size} strings, got {len(row)}")
        return rows

    def pairs(self) -> tuple[Pair, ...]:
        return self.tuples(2)  # type: ignore[return-value]

    def weights(self) -> dict[str, int]:
        weights = {key: value.integer() for key, value in self.items()}
        if not sum(weights.values()):
            raise ValueError(f"{self.path}: the weights add up to 0")
        return weights

    def mapping(self, read: Callable[[_Reader], Any]) -> dict[str, Any]:
        return {key: read(value) for key, value in self.items()}

    def _table(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise TypeError(f"{self.path or 'the file'}: expected a table")
        return self.value

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key


def _build(root: _Reader) -> Tables:
    areas = root["areas"].mapping(lambda a: Area(a["country"].text(), a["timezone"].text()))
    if set(areas) != set(AREAS):
        raise ValueError(f"areas: expected exactly {sorted(AREAS)}, got {sorted(areas)}")
    regions = root["regions"].mapping(_region)
    for name, region in regions.items():
        if region.area not in areas:
            raise ValueError(f"regions.{name}.area: unknown area {region.area!r}")
    mainland = tuple(name for name, region in regions.items() if region.area == "mainland")
    if not mainland or any(not regions[name].cities for name in mainland):
        raise ValueError("regions: every mainland region needs cities and a weight")
    special = []
    for group in root["special_places"].array():
        region = group["region"].text()
        if region not in regions or regions[region].area == "mainland":
            raise ValueError(f"{group.path}.region: not a region outside mainland France")
        area = regions[region].area
        cities = group["cities"].tuples(3)
        special.append(tuple(Place(c, p, region, area, line) for c, p, line in cities))

    groups = root["groups"].mapping(_habits)
    sizes = root["sizes"].mapping(lambda s: Size(_headcount(s["headcount"]), s["tiers"].weights()))
    kinds = root["kinds"].mapping(_kind)
    for name, kind in kinds.items():
        if kind.group not in groups:
            raise ValueError(f"kinds.{name}.group: unknown group {kind.group!r}")
        if set(kind.sizes) != set(sizes):
            raise ValueError(f"kinds.{name}.sizes: expected {list(sizes)}")
    if "white" not in groups:
        raise ValueError("groups: the white-collar group 'white' is missing")

    addresses = _addresses(root["addresses"], root["streets"])
    people = root["people"]
    english = people["english_roles"].mapping(_Reader.texts)
    domains = root["domains"]
    consents = root["consents"]
    return Tables(
        areas=areas,
        regions=regions,
        mainland=mainland,
        special_places=tuple(special),
        kinds=kinds,
        sizes=sizes,
        groups=groups,
        addresses=addresses,
        people=People(
            first_names=(
                people["first_names_male"].texts(),
                people["first_names_female"].texts(),
            ),
            last_names=people["last_names"].texts(),
            flemish_first_names=(
                people["flemish_first_names_male"].texts(),
                people["flemish_first_names_female"].texts(),
            ),
            flemish_last_names=people["flemish_last_names"].texts(),
            english_roles=_levels(english, "people.english_roles"),
        ),
        domain_stopwords=frozenset(domains["stopwords"].texts()),
        short_trades=domains["short_trades"].mapping(_Reader.text),
        consents=Consents(**{f: consents[f].share() for f in Consents.__slots__}),
    )


def _region(r: _Reader) -> Region:
    area = r["area"].text()
    cities, weight = (), 0
    if area == "mainland":
        cities, weight = r["cities"].tuples(3), r["weight"].integer()
        if not weight:
            raise ValueError(f"{r.path}.weight: a mainland region needs a weight > 0")
    last = r.get("last_names")
    male, female = r.get("first_names_male"), r.get("first_names_female")
    if (male is None) != (female is None):
        raise ValueError(f"{r.path}: first_names_male and first_names_female go together")
    return Region(
        area=area,
        weight=weight,
        cities=cities,
        names=r["names"].texts(),
        last_names=last.texts() if last else (),
        last_names_share=r["last_names_share"].share() if last else 0.0,
        first_names=(male.texts(), female.texts()) if male and female else None,
        first_names_share=r["first_names_share"].share() if male else 0.0,
    )


def _kind(k: _Reader) -> Kind:
    return Kind(
        share=k["share"].share(),
        group=k["group"].text(),
        sizes=k["sizes"].weights(),
        name_templates=k["name_templates"].texts(),
        delivery_points=k["delivery_points"].texts(),
        seller_roles=k["seller_roles"].pairs(),
    )


def _habits(g: _Reader) -> Habits:
    email = g["email"]
    shares = (email["personal"].share(), email["shared"].share(), email["none"].share())
    if abs(sum(shares) - 1) > 1e-9:
        raise ValueError(f"{email.path}: personal + shared + none must make 1")
    return Habits(
        generic_mailbox=g["generic_mailbox"].share(),
        mailboxes=g["mailboxes"].texts(),
        email=shares,
        no_web=g["no_web"].share(),
        mobile=g["mobile"].share(),
        female=g["female"].share(),
        landline=g["landline"].share(),
        director_roles=g["director_roles"].pairs(),
        correspondent_roles=g["correspondent_roles"].pairs(),
    )


def _headcount(h: _Reader) -> tuple[int, int]:
    bounds = [item.integer() for item in h.array()]
    if len(bounds) != 2 or not 1 <= bounds[0] <= bounds[1]:
        raise ValueError(f"{h.path}: expected [low, high] with 1 ≤ low ≤ high")
    return bounds[0], bounds[1]


def _addresses(a: _Reader, streets_table: _Reader) -> Addresses:
    streets = streets_table.mapping(_Reader.texts)
    town, park = a["town_street_types"].weights(), a["park_street_types"].weights()
    for path, types in (("town_street_types", town), ("park_street_types", park)):
        if unknown := set(types) - set(streets):
            raise ValueError(f"addresses.{path}: no [streets] for {sorted(unknown)}")
    return Addresses(
        streets=streets,
        town_street_types=town,
        park_street_types=park,
        parks=a["parks"].texts(),
        park_names=a["park_names"].texts(),
        office_buildings=a["office_buildings"].texts(),
        known_parks=a["known_parks"].mapping(_Reader.text),
        belgian_streets=a["belgian_streets"].texts(),
        belgian_zonings=a["belgian_zonings"].texts(),
    )


def _levels(roles: dict[str, tuple[str, ...]], path: str) -> dict[str, tuple[str, ...]]:
    if set(roles) != {"director", "correspondent", "seller"}:
        raise ValueError(f"{path}: expected director, correspondent and seller")
    return roles
