"""A realistic sample network as network CSV text (docs/network-csv.md), for demos and tests.

:func:`generate_network_csv` draws companies of mixed kinds (telecom distributors, electrical
wholesalers, office equipment resellers, IT integrators, craftsmen and installers), sizes,
tiers and regions (the 13 metropolitan regions, Guadeloupe, La Réunion, Belgium), then their
contacts: one director each, often a correspondent, and sellers. Equipment follows the
domain (DESIGN.md §1): white-collar staff have a personal email and web access; craftsmen
and blue-collar staff often share a generic mailbox or have no email, and some have no web
access. Names, places, streets, roles and weights come from the package's data file
(``data/network.toml``, read by :mod:`network_anim.demo.tables`); phone numbers from
:mod:`network_anim.demo.phones`. Everything is drawn from one seeded :class:`random.Random`,
so a seed always gives the same file.

Every row is made to pass :func:`network_anim.network.network_csv.parse_network_csv`: addresses are
checked against the 6 × 38 postal block with the longest name the tables can produce,
phone numbers are kept only when ``phonenumbers`` reads them back as intended, emails use
``.example`` domains (RFC 2606) only.
"""

from __future__ import annotations

import csv
import io
import random
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import product

from network_anim.channels.postal import MAX_LENGTH, PostalAddress, address_block_problems
from network_anim.demo import phones
from network_anim.demo.tables import Place, Tables, load_tables
from network_anim.domain import CHANNEL_NAMES

HEADER = (
    "company_id", "company_name", "sector", "size", "tier", "region", "delivery_point",
    "building", "street", "locality", "postcode", "city", "country", "contact_id", "civility",
    "first_name", "last_name", "role", "level", "email", "email_kind", "mobile", "phone",
    "web_access", *(f"consent_{channel}" for channel in CHANNEL_NAMES), "timezone", "language",
)  # fmt: skip


@dataclass(slots=True)
class _Company:
    external_id: str
    kind: str
    size: str
    tier: str
    place: Place
    country: str
    name: str = ""
    founder: str = ""  # last name in the company name; the director carries it
    domain: str = ""
    mailbox: str = ""  # the shared address, "" when the company has none
    delivery_point: str = ""
    building: str = ""
    street: str = ""
    locality: str = ""
    switchboard: str = ""
    email_style: str = "first.last"
    contacts: list[dict[str, str]] = field(default_factory=list)
    # What its contacts already use, kept as they come (a big company has thousands).
    full_names: set[tuple[str, str]] = field(default_factory=set)
    last_names: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)


def generate_network_csv(*, companies: int = 40, contacts: int = 400, seed: int = 2026) -> str:
    """A sample network of ``companies`` companies and exactly ``contacts`` contacts, as CSV.

    The text is ``;`` separated, with every column of docs/network-csv.md in the header, and
    imports without a single problem. The same arguments always give the same text. Company
    names are unique, so ``companies`` is at most :func:`max_companies`.
    """
    if companies < 1:
        raise ValueError("companies must be at least 1")
    if contacts < companies:
        raise ValueError("contacts must be at least companies: every company has a director")
    if companies > (most := max_companies()):
        raise ValueError(
            f"companies must be at most {most}: the demo tables cannot give more companies "
            "unique names"
        )
    return _Generator(random.Random(seed), load_tables()).run(companies, contacts)


@cache
def max_companies() -> int:
    """The most companies :func:`generate_network_csv` can give a name of their own.

    Names from the place (city, region) run out first: a region has a handful of them per
    kind. A family name alone or two of them (Établissements Roux-Martin) fit anywhere, so
    they bound what is always possible: each kind gets its share of the companies, and the
    share must not exceed what one of its family-name patterns gives (or, for a kind with
    none, what its patterns give at the poorest place).
    """
    t = load_tables()
    surnames = sorted(set(t.people.last_names))
    family = {*surnames, *_double_barrelled(surnames, len(_longest_last_name(t)))}
    lengths = sorted(len(name) for name in family)
    places = [(region.names, city) for region in t.regions.values() for city, _, _ in region.cities]
    places += [(t.regions[p.region].names, p.city) for group in t.special_places for p in group]
    total_share = sum(kind.share for kind in t.kinds.values())
    most = []
    for kind in t.kinds.values():
        if not kind.share:
            continue
        fixed = [
            len(template) - len("{surname}")
            for template in kind.name_templates
            if template.count("{surname}") == 1
            and "{city}" not in template
            and "{region}" not in template
        ]
        capacity = max((bisect_right(lengths, MAX_LENGTH - n) for n in fixed), default=0)
        local = [template for template in kind.name_templates if "{surname}" not in template]
        poorest = min(len(_pattern_names(local, city, names, [])) for names, city in places)
        # Largest remainder gives a kind at most ceil(share * companies) of them.
        most.append(int(max(capacity, poorest) * total_share / kind.share))
    return min(most)


class _Generator:
    def __init__(self, rng: random.Random, tables: Tables) -> None:
        self.rng = rng
        self.t = tables
        self.longest_recipient = _longest_recipient(tables)
        self.longest_last_name = len(_longest_last_name(tables))
        self.names: set[str] = set()
        # Names left for a place or a region, listed once its draws start to miss.
        self.spare: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}
        self.domains: set[str] = set()
        self.numbers: set[str] = set()
        self.decks: dict[str, list[str]] = {}

    def run(self, n_companies: int, n_contacts: int) -> str:
        companies = self._companies(n_companies)
        weights = [self.rng.randint(*self.t.sizes[c.size].headcount) for c in companies]
        counter = 0
        for company, headcount in zip(companies, _apportion(weights, n_contacts), strict=True):
            self._name_and_address(company)
            for level in self._levels(headcount):
                counter += 1
                contact = self._contact(company, level, f"C{counter:05d}")
                company.contacts.append(contact)
                company.full_names.add((contact["first_name"], contact["last_name"]))
                company.last_names.add(contact["last_name"])
                company.emails.add(contact["email"])
        rows = [row for company in companies for row in company.contacts]
        self._consents(rows)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows([row[column] for column in HEADER] for row in rows)
        return out.getvalue()

    # Companies ----------------------------------------------------------------------------

    def _companies(self, count: int) -> list[_Company]:
        rng, t = self.rng, self.t
        special = 0 if count < 3 else min(len(t.special_places), max(2, count // 10))
        places = [rng.choice(group) for group in t.special_places[:special]]
        regions = list(t.mainland)
        rng.shuffle(regions)
        mainland = regions[: count - special]
        extra = count - special - len(mainland)
        mainland += rng.choices(regions, [t.regions[r].weight for r in regions], k=extra)
        for region in mainland:
            city, postcode, landline = rng.choice(t.regions[region].cities)
            places.append(Place(city, postcode, region, "mainland", landline))

        shares = [kind.share for kind in t.kinds.values()]
        kinds = [
            kind
            for kind, n in zip(t.kinds, _apportion(shares, count, minimum=0), strict=True)
            for _ in range(n)
        ]
        rng.shuffle(kinds)
        # Overseas and Belgian partners are distributors and resellers, not local craftsmen.
        for i in range(special):
            j = next((j for j in range(i, count) if kinds[j] != "installer"), i)
            kinds[i], kinds[j] = kinds[j], kinds[i]

        order = list(range(count))
        rng.shuffle(order)
        result = []
        for number, i in enumerate(order, start=1):
            kind = kinds[i]
            size = _weighted(rng, t.kinds[kind].sizes)
            result.append(
                _Company(
                    external_id=f"D{number:03d}",
                    kind=kind,
                    size=size,
                    tier=_weighted(rng, t.sizes[size].tiers),
                    place=places[i],
                    country=t.areas[places[i].area].country,
                )
            )
        return result

    def _name_and_address(self, company: _Company) -> None:
        rng, t = self.rng, self.t
        place = company.place
        # Once draws have missed at a place, they would only miss again: skip them there.
        missed = _place_key(company) in self.spare
        for _ in range(0 if missed else 100):
            founder = self._last_name(place.region, flemish=False)
            template = self._template(company.kind)
            name = template.format(
                city=place.city, region=rng.choice(t.regions[place.region].names), surname=founder
            )
            if name not in self.names:
                break
        else:  # A big network has used up most names of this place: pick among the rest.
            template, name, founder = self._spare_name(company)
        self.names.add(name)
        company.name = name
        company.founder = founder if "{surname}" in template else ""
        company.domain = self._domain(name, place.city, company.founder)
        habits = t.groups[t.kinds[company.kind].group]
        if rng.random() < habits.generic_mailbox:
            company.mailbox = f"{rng.choice(habits.mailboxes)}@{company.domain}"
        styles = ["first.last"] * 3 + ["f.last"] + (["first"] if company.size == "TPE" else [])
        company.email_style = rng.choice(styles)
        company.switchboard = self._landline(place)
        for _ in range(50):
            self._address(company)
            if not address_block_problems(_worst_case_address(company, self.longest_recipient)):
                return
        # Only a name at the very limit gets here: the plainest address then fits.
        company.delivery_point = company.building = company.locality = ""
        company.street = _plainest_street(company.country)
        assert not address_block_problems(_worst_case_address(company, self.longest_recipient)), (
            company.name
        )

    def _address(self, company: _Company) -> None:
        rng, a = self.rng, self.t.addresses
        place = company.place
        white_collar = self.t.white_collar(company.kind)
        delivery_points = self.t.kinds[company.kind].delivery_points
        in_park = company.kind in ("electrical", "installer") and rng.random() < 0.7
        in_park = in_park or (white_collar and rng.random() < 0.25)
        company.delivery_point = company.building = company.locality = ""
        if place.area == "BE":
            company.street = f"{rng.choice(a.belgian_streets)} {rng.randint(1, 250)}"
            if in_park:
                company.building = f"Zoning {rng.choice(a.belgian_zonings)}"
            elif company.size != "TPE" and rng.random() < 0.4:
                company.delivery_point = rng.choice(delivery_points)
            return
        if in_park:
            company.building = a.known_parks.get(place.city) or (
                f"{rng.choice(a.parks)} {rng.choice(a.park_names)}"
            )
            street_type = _weighted(rng, a.park_street_types)
        else:
            if white_collar and rng.random() < 0.3:
                company.building = rng.choice(a.office_buildings)
            street_type = _weighted(rng, a.town_street_types)
        number = str(rng.choice([rng.randint(1, 40), rng.randint(1, 40), rng.randint(41, 220)]))
        if rng.random() < 0.06:
            number += rng.choice([" bis", " ter"])
        company.street = f"{number} {street_type} {rng.choice(a.streets[street_type])}"
        if company.size != "TPE" and rng.random() < 0.4:
            company.delivery_point = rng.choice(delivery_points)
        if not company.building and not company.delivery_point and rng.random() < 0.15:
            box = f"BP {rng.randint(10, 999)}"
            company.locality = (
                box if rng.random() < 0.6 else f"CS {rng.randint(10, 99)}{rng.randint(0, 999):03d}"
            )

    def _spare_name(self, company: _Company) -> tuple[str, str, str]:
        """A name nobody has yet, when draws keep hitting taken ones: (template, name, founder).

        First every name the kind's patterns give for the place; then family businesses of
        two families (Établissements Roux-Martin), drawn, and when even those draws miss,
        every such name of the region. A double-barrelled name is no longer than the longest
        family name of the tables, so the director who carries it fits every address.
        """
        rng, t, place = self.rng, self.t, company.place
        templates = t.kinds[company.kind].name_templates
        regions = t.regions[place.region].names
        surnames = [*dict.fromkeys([*t.regions[place.region].last_names, *t.people.last_names])]
        key = _place_key(company)
        if key not in self.spare:
            self.spare[key] = _pattern_names(templates, place.city, regions, surnames)
        if spare := self._pick_spare(key, company):
            return spare
        family_templates = [template for template in templates if "{surname}" in template]
        for _ in range(100 if family_templates else 0):
            first = self._last_name(place.region, flemish=False)
            second = self._last_name(place.region, flemish=False)
            founder = f"{first}-{second}"
            if first == second or len(founder) > self.longest_last_name:
                continue
            template = rng.choice(family_templates)
            region = rng.choice(regions)
            name = template.format(city=place.city, region=region, surname=founder)
            if name not in self.names and self._fits(name, company):
                return template, name, founder
        key = ("double-barrelled", company.kind, place.region)
        if key not in self.spare:
            founders = _double_barrelled(surnames, self.longest_last_name)
            self.spare[key] = _pattern_names(family_templates, place.city, regions, founders)
        if spare := self._pick_spare(key, company):
            return spare
        raise ValueError(  # max_companies() keeps this from happening
            f"no name left for one more {company.kind} company in {place.city}: ask for at "
            f"most {max_companies()} companies"
        )

    def _pick_spare(self, key: tuple[str, ...], company: _Company) -> tuple[str, str, str] | None:
        left = [spare for spare in self.spare[key] if spare[1] not in self.names]
        while left:
            spare = left.pop(self.rng.randrange(len(left)))
            if self._fits(spare[1], company):
                self.spare[key] = left
                return spare
        self.spare[key] = left
        return None

    def _fits(self, name: str, company: _Company) -> bool:
        """Whether ``name`` leaves room for an address: at least the plainest one fits."""
        place = company.place
        return not address_block_problems(
            PostalAddress(
                recipient=self.longest_recipient,
                company=name,
                street=_plainest_street(company.country),
                postcode=place.postcode,
                city=place.city,
                country=company.country,
            )
        )

    def _template(self, kind: str) -> str:
        """Each name pattern of a kind once before any comes back (no five "Allo Pro")."""
        deck = self.decks.setdefault(kind, [])
        if not deck:
            deck.extend(self.t.kinds[kind].name_templates)
            self.rng.shuffle(deck)
        return deck.pop()

    def _domain(self, name: str, city: str, founder: str) -> str:
        words = [w for w in _ascii_words(name) if w not in self.t.domain_stopwords]
        slug = "-".join(words)
        if len(slug) > 22 and founder:  # the family name and the trade: bernard-elec
            family = _ascii_words(founder)
            trade = next((w for w in words if w not in family), "pro")
            slug = "-".join([*family, self.t.short_trades.get(trade, trade)])
        if len(slug) > 22:  # initials, but a town keeps its name: vd-pointe-a-pitre
            town = name.endswith(city) and len(name) > len(city)
            head = _ascii_words(name[: -len(city)]) if town else words[:-1]
            tail = _ascii_words(city) if town else words[-1:]
            initials = "".join(w[0] for w in head if w not in self.t.domain_stopwords)
            slug = "-".join(part for part in [initials, *tail] if part)
        candidate = slug
        if candidate in self.domains:
            candidate = f"{slug}-{'-'.join(_ascii_words(city))}"
        suffix = 2
        while candidate in self.domains:
            candidate, suffix = f"{slug}{suffix}", suffix + 1
        self.domains.add(candidate)
        return f"{candidate}.example"

    def _levels(self, headcount: int) -> list[str]:
        correspondent = headcount >= 3 and self.rng.random() < 0.75
        correspondent = correspondent or (headcount == 2 and self.rng.random() < 0.25)
        levels = ["director"] + ["correspondent"] * correspondent
        return levels + ["seller"] * (headcount - len(levels))

    # Contacts -----------------------------------------------------------------------------

    def _contact(self, company: _Company, level: str, contact_id: str) -> dict[str, str]:
        rng, t = self.rng, self.t
        place = company.place
        group = t.kinds[company.kind].group
        habits = t.groups[group]
        english = place.city == "Bruxelles" and rng.random() < 0.5
        female = rng.random() < (0.6 if level == "correspondent" else habits.female)
        taken = company.full_names
        for attempt in range(50):  # a huge company may run out of names: then twins happen
            first = self._first_name(place.region, female, flemish=english)
            if level == "director" and company.founder:
                last = company.founder
            else:
                last = self._last_name(place.region, flemish=english)
            # Namesakes happen (family businesses) but should stay rare in one company.
            namesake = last in company.last_names
            if (first, last) not in taken and (not namesake or rng.random() < 0.1):
                break
            if attempt == 49:
                break
        if english:
            civility, role = ("Ms" if female else "Mr"), rng.choice(t.people.english_roles[level])
        else:
            civility = "Mme" if female else "M."
            if level == "seller":
                roles = t.kinds[company.kind].seller_roles
            elif level == "director":
                roles = habits.director_roles
            else:
                roles = habits.correspondent_roles
            role = rng.choice(roles)[female]

        personal, shared, _none = habits.email
        draw = rng.random()
        if draw < personal or (
            draw < personal + shared and not company.mailbox and level != "seller"
        ):
            email, email_kind = self._personal_email(company, first, last), "personal"
        elif draw < personal + shared and company.mailbox:
            email, email_kind = company.mailbox, "shared"
        else:
            email, email_kind = "", ""
        mobile = ""
        if not email or rng.random() < habits.mobile:
            mobile = self._mobile(place)
        phone = ""
        switchboard = {"director": habits.landline, "correspondent": 0.4}.get(level, 0.0)
        if rng.random() < switchboard:
            phone = company.switchboard
        elif level == "seller" and rng.random() < 0.08:
            phone = self._landline(place)  # a direct line
        web_access = "no" if rng.random() < habits.no_web else "yes"
        return {
            "company_id": company.external_id,
            "company_name": company.name,
            "sector": company.kind,
            "size": company.size,
            "tier": company.tier,
            "region": place.region,
            "delivery_point": company.delivery_point,
            "building": company.building,
            "street": company.street,
            "locality": company.locality,
            "postcode": place.postcode,
            "city": place.city,
            "country": company.country,
            "contact_id": contact_id,
            "civility": civility,
            "first_name": first,
            "last_name": last,
            "role": role,
            "level": level,
            "email": email,
            "email_kind": email_kind,
            "mobile": mobile,
            "phone": phone,
            "web_access": web_access,
            # Blank: the channel's default lawful basis applies (opt-in channels stay off).
            **{f"consent_{channel}": "" for channel in CHANNEL_NAMES},
            "timezone": t.areas[place.area].timezone,
            "language": "en" if english else "fr",
        }

    def _first_name(self, region: str, female: bool, *, flemish: bool) -> str:
        people, regional = self.t.people, self.t.regions[region]
        if flemish:
            return self.rng.choice(people.flemish_first_names[female])
        if regional.first_names and self.rng.random() < regional.first_names_share:
            return self.rng.choice(regional.first_names[female])
        return self.rng.choice(people.first_names[female])

    def _last_name(self, region: str, *, flemish: bool) -> str:
        people, regional = self.t.people, self.t.regions[region]
        if flemish:
            return self.rng.choice(people.flemish_last_names)
        if regional.last_names and self.rng.random() < regional.last_names_share:
            return self.rng.choice(regional.last_names)
        return self.rng.choice(people.last_names)

    def _personal_email(self, company: _Company, first: str, last: str) -> str:
        first_part, last_part = "-".join(_ascii_words(first)), "".join(_ascii_words(last))
        styles = {
            "first.last": f"{first_part}.{last_part}",
            "f.last": f"{first_part[0]}.{last_part}",
            "first": first_part,
        }
        used = company.emails
        local = styles[company.email_style]
        if f"{local}@{company.domain}" in used:
            local = styles["first.last"]
        base, suffix = local, 2
        while f"{local}@{company.domain}" in used:
            local, suffix = f"{base}{suffix}", suffix + 1
        return f"{local}@{company.domain}"

    # Phone numbers ------------------------------------------------------------------------

    def _mobile(self, place: Place) -> str:
        return self._unique_number(place, mobile=True)

    def _landline(self, place: Place) -> str:
        return self._unique_number(place, mobile=False)

    def _unique_number(self, place: Place, *, mobile: bool) -> str:
        """A number nobody else in the network has, that the importer reads back as typed."""
        rng, area = self.rng, place.area
        country = self.t.areas[area].country
        while True:
            if mobile:
                national = phones.national_mobile(rng, area)
            else:
                national = phones.national_landline(rng, area, place.landline)
            text = phones.phone_text(rng, area, national)
            if national not in self.numbers and phones.reads_back(
                text, area, country, mobile=mobile
            ):
                self.numbers.add(national)
                return text

    # Consents -----------------------------------------------------------------------------

    def _consents(self, rows: list[dict[str, str]]) -> None:
        """Usual bases, then exact numbers of opt-outs and blanks (no basis recorded)."""
        rng, shares = self.rng, self.t.consents
        total = len(rows)
        with_email = [r for r in rows if r["email"]]
        for row in with_email:
            personal = row["email_kind"] == "personal"
            consent = personal and rng.random() >= shares.email_legitimate
            row["consent_email"] = "consent" if consent else "legitimate_interest"
        with_mobile = [r for r in rows if r["mobile"]]
        for row in with_mobile:
            row["consent_sms"] = "consent"
        for row in rows:
            row["consent_print"] = "legitimate_interest"
        for column, pool, opted_out, blank in (
            ("consent_email", with_email, shares.email_opted_out, shares.email_blank),
            ("consent_sms", with_mobile, shares.sms_opted_out, shares.sms_blank),
            ("consent_print", rows, shares.print_opted_out, shares.print_blank),
        ):
            n_out = min(len(pool), round(total * opted_out))
            n_blank = min(len(pool) - n_out, round(total * blank))
            picked = rng.sample(pool, n_out + n_blank)
            for row in picked[:n_out]:
                row[column] = "opted_out"
            for row in picked[n_out:]:
                row[column] = ""


# ---------------------------------------------------------------------------------------------
# Helpers.


def _apportion(weights: Sequence[float], total: int, *, minimum: int = 1) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), ``minimum`` each."""
    rest = total - minimum * len(weights)
    scale = rest / sum(weights)
    exact = [w * scale for w in weights]
    counts = [minimum + int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (int(exact[i]) - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _weighted(rng: random.Random, weights: Mapping[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return re.findall(r"[a-z0-9]+", folded.replace("'", ""))


def _longest(names: Sequence[str]) -> str:
    return max(names, key=len)


def _longest_recipient(t: Tables) -> str:
    """The longest name line any contact can get: an address that fits with it fits with all."""
    people, regions = t.people, t.regions.values()
    first = [*people.first_names[0], *people.first_names[1]]
    first += [*people.flemish_first_names[0], *people.flemish_first_names[1]]
    first += [n for r in regions if r.first_names for names in r.first_names for n in names]
    return " ".join(["Mme", _longest(first), _longest_last_name(t).upper()])


def _longest_last_name(t: Tables) -> str:
    people, regions = t.people, t.regions.values()
    return _longest(
        [
            *people.last_names,
            *people.flemish_last_names,
            *(n for r in regions for n in r.last_names),
        ]
    )


def _double_barrelled(surnames: Sequence[str], longest: int) -> list[str]:
    """Every name of two families (Roux-Martin) no longer than ``longest`` characters."""
    return [
        f"{first}-{second}"
        for first, second in product(surnames, surnames)
        if first != second and len(first) + len(second) < longest
    ]


def _pattern_names(
    templates: Sequence[str], city: str, regions: Sequence[str], surnames: Sequence[str]
) -> list[tuple[str, str, str]]:
    """Every (template, name, founder) the patterns give in ``city``, short enough to print."""
    result: dict[str, tuple[str, str, str]] = {}
    for template in templates:
        founders = surnames if "{surname}" in template else [""]
        words = regions if "{region}" in template else regions[:1]
        for region, founder in product(words, founders):
            name = template.format(city=city, region=region, surname=founder)
            if len(name) <= MAX_LENGTH:
                result.setdefault(name, (template, name, founder))
    return list(result.values())


def _place_key(company: _Company) -> tuple[str, ...]:
    return ("place", company.kind, company.place.region, company.place.city)


def _plainest_street(country: str) -> str:
    return "1 rue de la Gare" if country == "FR" else "Rue du Parc 1"


def _worst_case_address(company: _Company, recipient: str) -> PostalAddress:
    return PostalAddress(
        recipient=recipient,
        company=company.name,
        delivery_point=company.delivery_point or None,
        building=company.building or None,
        street=company.street,
        locality=company.locality or None,
        postcode=company.place.postcode,
        city=company.place.city,
        country=company.country,
    )
