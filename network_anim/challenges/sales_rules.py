"""The rules a declared sale must pass, whether it comes from a CSV file (``netanim import
sales``) or from the portal's declaration form, and their messages in English and French.

A rule gives a :class:`Problem` (a message key and its values), not a string: the import
prints it in English as it always has, the portal in the reader's language. Both
catalogues hold the same keys and placeholders (a test checks it).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

REQUIRED_FIELDS = ("invoice_ref", "contact_id", "sku", "quantity", "amount", "sold_at")
_MAX_LENGTH = {"invoice_ref": 80, "contact_id": 64, "company_id": 64, "sku": 64}
_DEFAULT_MAX_LENGTH = 40
# A plain number: digits, spaces (or no-break spaces) between thousands, one decimal
# separator ("." or the French ","), an optional sign that the range check then refuses.
_NUMBER = re.compile(r"^[+-]?\d{1,3}(?:[ \u00a0\u202f]?\d{3})*(?:[.,]\d+)?$|^[+-]?\d+(?:[.,]\d+)?$")
# An amount above this many times quantity x unit price, or below this share of it, is absurd.
ABSURD_HIGH = 10.0
ABSURD_LOW = 0.01
# Past this many candidates an unknown SKU's message points to the config instead.
_LISTED_SKUS = 12

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "too_long": "{field} is {length} characters; at most {limit}",
        "empty": "{field} is empty; it is required",
        "unknown_sku": "sku {sku!r} is not a known product ({hint})",
        "did_you_mean": "did you mean {skus}?",
        "known_skus": "known SKUs: {skus}",
        "no_skus": "known SKUs: none",
        "see_products": "see [[products]] in the config",
        "not_a_number": "{field} {value!r} is not a number (write it like 12 or 1250.50)",
        "not_positive": "{field} {value} is not positive; it must be more than 0",
        "amount_too_high": "amount {amount:.2f} is too high: more than {high:g} x quantity x "
        "unit price ({quantity:g} x {unit_price:.2f} = {expected:.2f} EUR); check it is in EUR "
        "excluding VAT (not cents) and the quantity",
        "amount_too_low": "amount {amount:.2f} is too low: less than 1 % of quantity x unit "
        "price ({quantity:g} x {unit_price:.2f} = {expected:.2f} EUR); the amount is the line "
        "total in EUR (not thousands), check it and the quantity",
        "not_a_date": "sold_at {value!r} is not an ISO date or date-time "
        "(write 2027-01-15 or 2027-01-15T14:30)",
        "in_the_future": "sold_at {value} is in the future (now is {now} {timezone}); "
        "declare a sale once it is made",
        "outside_period": "sold_at {value} is outside challenge {key} ({start} to {end}); {remedy}",
        "remedy_import": "correct the date, or import it without --challenge",
        "remedy_date": "correct the date",
        "unknown_contact": "contact_id {contact} is not in the network "
        "(import it first with: netanim import network)",
        "other_company": "company_id {company} is not the company of contact {contact} "
        "({actual}); correct it or leave the cell empty",
        "already_recorded": "invoice_ref {invoice} of company {company} is already recorded "
        "({sale}); a sale is declared once",
        "recorded_sale": "sale #{id}",
        "recorded_sale_from": "sale #{id} from {source}",
        "already_in_file": "invoice_ref {invoice} of company {company} already on line "
        "{line}; one row per invoice",
        "proof_too_big": "proof file {name} is {size} bytes; at most {limit}",
        "proof_type": "proof file {name} is not a PDF, JPEG or PNG file; scan the invoice "
        "to one of these",
    },
    "fr": {
        "too_long": "{field} fait {length} caractères ; {limit} au plus",
        "empty": "{field} est vide ; il est obligatoire",
        "unknown_sku": "sku {sku!r} n'est pas un produit connu ({hint})",
        "did_you_mean": "vouliez-vous dire {skus} ?",
        "known_skus": "références connues : {skus}",
        "no_skus": "références connues : aucune",
        "see_products": "voir [[products]] dans la configuration",
        "not_a_number": "{field} {value!r} n'est pas un nombre (écrivez-le comme 12 ou 1250,50)",
        "not_positive": "{field} {value} n'est pas positif ; il doit être supérieur à 0",
        "amount_too_high": "amount {amount:.2f} est trop élevé : plus de {high:g} x quantité x "
        "prix unitaire ({quantity:g} x {unit_price:.2f} = {expected:.2f} EUR) ; vérifiez qu'il "
        "est en euros hors taxes (pas en centimes) et vérifiez la quantité",
        "amount_too_low": "amount {amount:.2f} est trop bas : moins de 1 % de quantité x prix "
        "unitaire ({quantity:g} x {unit_price:.2f} = {expected:.2f} EUR) ; le montant est le "
        "total de la ligne en euros (pas en milliers), vérifiez-le ainsi que la quantité",
        "not_a_date": "sold_at {value!r} n'est pas une date ou date-heure ISO "
        "(écrivez 2027-01-15 ou 2027-01-15T14:30)",
        "in_the_future": "sold_at {value} est dans le futur (il est {now} {timezone}) ; "
        "déclarez une vente une fois qu'elle est faite",
        "outside_period": "sold_at {value} est en dehors du challenge {key} ({start} au {end}) ; "
        "{remedy}",
        "remedy_import": "corrigez la date, ou importez-la sans --challenge",
        "remedy_date": "corrigez la date",
        "unknown_contact": "contact_id {contact} n'est pas dans le réseau "
        "(importez-le d'abord avec : netanim import network)",
        "other_company": "company_id {company} n'est pas la société du contact {contact} "
        "({actual}) ; corrigez-la ou laissez la cellule vide",
        "already_recorded": "invoice_ref {invoice} de la société {company} est déjà "
        "enregistrée ({sale}) ; une vente se déclare une seule fois",
        "recorded_sale": "vente n° {id}",
        "recorded_sale_from": "vente n° {id} venant de {source}",
        "already_in_file": "invoice_ref {invoice} de la société {company} figure déjà ligne "
        "{line} ; une ligne par facture",
        "proof_too_big": "le justificatif {name} fait {size} octets ; {limit} au plus",
        "proof_type": "le justificatif {name} n'est pas un fichier PDF, JPEG ou PNG ; "
        "numérisez la facture dans l'un de ces formats",
    },
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: ``key`` of :data:`MESSAGES` and the values it is written with (a
    value may itself be a :class:`Problem`, written in the same language)."""

    key: str
    values: Mapping[str, object] = field(default_factory=dict)

    def text(self, language: str = "en") -> str:
        catalogue = MESSAGES.get(language, MESSAGES["en"])
        values = {
            name: value.text(language) if isinstance(value, Problem) else value
            for name, value in self.values.items()
        }
        return catalogue[self.key].format(**values)


@dataclass(frozen=True, slots=True)
class ChallengePeriod:
    """Sales must be dated within [start, end], whole days in the engine time zone."""

    key: str
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class RecordedSale:
    id: int
    source: str


ContactLookup = Callable[[Collection[str]], Mapping[str, str]]
InvoiceLookup = Callable[[Collection[tuple[str, str]]], Mapping[tuple[str, str], RecordedSale]]


@dataclass(frozen=True, slots=True)
class SalesContext:
    """What a sale is checked against.

    ``contacts`` maps the contact external ids it is given to their company's external id
    (unknown ones are left out); ``recorded`` maps the (company external id, invoice_ref)
    pairs it is given that are already recorded to that sale.
    ``products`` maps every known SKU to its reference unit price (0: no price check).
    """

    now: datetime
    timezone: str
    products: Mapping[str, float]
    contacts: ContactLookup
    recorded: InvoiceLookup
    period: ChallengePeriod | None = None


@dataclass(frozen=True, slots=True)
class CheckedSale:
    sku: str
    quantity: float
    amount: float
    sold_at: datetime  # timezone-aware UTC


def too_long(name: str, value: str) -> Problem | None:
    limit = _MAX_LENGTH.get(name, _DEFAULT_MAX_LENGTH)
    if len(value) > limit:
        return Problem("too_long", {"field": name, "length": len(value), "limit": limit})
    return None


def check_sale(
    cells: Mapping[str, str],
    context: SalesContext,
    *,
    refused: Collection[str] = (),
    remedy: str = "remedy_import",
) -> tuple[CheckedSale | None, list[Problem]]:
    """Every rule one sale's own cells must pass (stripped values, by field name): the
    required fields, a known SKU, positive numbers, a plausible amount, a date neither in
    the future nor outside the challenge. ``refused``: fields already reported by the
    caller, not reported again as empty. ``remedy``: how an out-of-period date is fixed."""
    problems = [
        Problem("empty", {"field": name})
        for name in REQUIRED_FIELDS
        if not cells.get(name) and name not in refused
    ]
    sku = cells.get("sku", "")
    if sku and sku not in context.products:
        problems.append(unknown_sku(sku, context.products))
    quantity = _positive(cells.get("quantity", ""), "quantity", problems)
    amount = _positive(cells.get("amount", ""), "amount", problems)
    if quantity is not None and amount is not None and sku in context.products:
        problem = absurd_amount(amount, quantity, context.products[sku])
        if problem:
            problems.append(problem)
    sold_at = _sold_at(cells.get("sold_at", ""), context, problems, remedy)
    if problems or quantity is None or amount is None or sold_at is None:
        return None, problems
    return CheckedSale(sku, quantity, amount, sold_at), problems


def already_recorded(invoice: str, company: str, sale: RecordedSale) -> Problem:
    described = (
        Problem("recorded_sale_from", {"id": sale.id, "source": sale.source})
        if sale.source
        else Problem("recorded_sale", {"id": sale.id})
    )
    return Problem("already_recorded", {"invoice": invoice, "company": company, "sale": described})


def unknown_sku(sku: str, products: Mapping[str, float]) -> Problem:
    close = difflib.get_close_matches(sku.upper(), [p.upper() for p in products], n=3, cutoff=0.6)
    by_upper = {p.upper(): p for p in products}
    if close:
        hint = Problem("did_you_mean", {"skus": ", ".join(by_upper[c] for c in close)})
    elif not products:
        hint = Problem("no_skus")
    elif len(products) <= _LISTED_SKUS:
        hint = Problem("known_skus", {"skus": ", ".join(sorted(products))})
    else:
        hint = Problem("see_products")
    return Problem("unknown_sku", {"sku": sku, "hint": hint})


def parse_number(value: str) -> float | None:
    """A plain decimal number, "." or "," as separator, spaces between thousands."""
    if not _NUMBER.match(value):
        return None
    number = float(re.sub(r"[ \u00a0\u202f]", "", value).replace(",", "."))
    return number if math.isfinite(number) else None


def is_number(value: str) -> bool:
    return bool(_NUMBER.match(value))


def _positive(value: str, name: str, problems: list[Problem]) -> float | None:
    if not value:
        return None
    number = parse_number(value)
    if number is None:
        problems.append(Problem("not_a_number", {"field": name, "value": value}))
        return None
    if number <= 0:
        problems.append(Problem("not_positive", {"field": name, "value": value}))
        return None
    return number


def absurd_amount(amount: float, quantity: float, unit_price: float) -> Problem | None:
    if unit_price <= 0:
        return None
    expected = quantity * unit_price
    values = {
        "amount": amount,
        "quantity": quantity,
        "unit_price": unit_price,
        "expected": expected,
        "high": ABSURD_HIGH,
    }
    if amount > ABSURD_HIGH * expected:
        return Problem("amount_too_high", values)
    if amount < ABSURD_LOW * expected:
        return Problem("amount_too_low", values)
    return None


def _sold_at(
    value: str, context: SalesContext, problems: list[Problem], remedy: str
) -> datetime | None:
    if not value:
        return None
    zone = ZoneInfo(context.timezone)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        problems.append(Problem("not_a_date", {"value": value}))
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    moment = moment.astimezone(UTC)
    if moment > context.now:
        now_local = context.now.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        problems.append(
            Problem(
                "in_the_future", {"value": value, "now": now_local, "timezone": context.timezone}
            )
        )
        return None
    period = context.period
    if period is not None:
        day = moment.astimezone(zone).date()
        if not period.start <= day <= period.end:
            values = {
                "value": value,
                "key": period.key,
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "remedy": Problem(remedy),
            }
            problems.append(Problem("outside_period", values))
            return None
    return moment
