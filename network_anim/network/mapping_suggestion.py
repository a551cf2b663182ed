"""Propose a column mapping for a file from its header and first rows (``import network
FILE --suggest-map``): headers matched, accents, case and punctuation aside, against the
network columns and their usual French and English names; value translations proposed
for the values seen in yes/no, consent and choice columns; the rest left out, with a
comment. The result is TOML that ``--map`` reads as is."""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from dataclasses import dataclass, field

from network_anim.network.column_mapping import DOCS
from network_anim.network.csv_input import read_header
from network_anim.network.network_csv import ALL_COLUMNS, CONSENT_COLUMNS, REQUIRED_COLUMNS

SAMPLE_ROWS = 500
# Usual names of each field, as normalise() writes them (the field's own name, spaces
# for underscores, is always one).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "company_id": (
        "code client", "n client", "no client", "num client", "numero client", "id client",
        "identifiant client", "ref client", "reference client", "code societe",
        "code entreprise", "customer id", "client id", "account id", "company code",
    ),
    "company_name": (
        "raison sociale", "societe", "entreprise", "nom de la societe", "nom societe",
        "nom entreprise", "nom de l entreprise", "denomination", "client", "company",
        "company name", "account name", "organisation", "organization",
    ),
    "sector": ("secteur", "secteur d activite", "activite", "branche", "industry"),
    "size": ("taille", "effectif", "effectifs", "tranche d effectif", "headcount", "employees"),
    "tier": ("statut partenaire", "niveau partenaire", "niveau de partenariat", "classe", "rang"),
    "region": ("region", "zone", "secteur geographique", "state"),
    "delivery_point": ("service", "departement interne", "etage", "attention of"),
    "building": (
        "batiment", "immeuble", "residence", "complement d adresse", "complement adresse",
        "adresse 2", "address 2", "address line 2",
    ),
    "street": (
        "adresse", "rue", "voie", "adresse 1", "numero et rue", "address", "address 1",
        "address line 1", "street address",
    ),
    "locality": ("lieu dit", "bp", "boite postale", "po box"),
    "postcode": ("code postal", "cp", "zip", "zip code", "postal code", "post code"),
    "city": ("ville", "commune", "localite", "city", "town"),
    "country": ("pays", "code pays", "country code"),
    "contact_id": (
        "code contact", "n contact", "no contact", "num contact", "numero contact",
        "id contact", "identifiant contact", "ref contact", "matricule", "contact id",
    ),
    "civility": ("civilite", "titre", "title", "salutation"),
    "first_name": ("prenom", "first name", "firstname", "given name"),
    "last_name": ("nom", "nom de famille", "nom contact", "last name", "lastname", "surname",
                  "family name"),
    "role": ("fonction", "poste", "metier", "intitule de poste", "job title", "job", "position"),
    "level": ("niveau d acces", "niveau portail", "niveau extranet", "profil extranet",
              "type de contact"),
    "email": ("courriel", "e mail", "mail", "mel", "adresse email", "adresse e mail",
              "adresse mail", "adresse courriel", "email address", "e mail address"),
    "email_kind": ("type email", "type d email", "type de mail", "type de courriel"),
    "mobile": ("portable", "tel portable", "telephone portable", "gsm", "tel mobile",
               "telephone mobile", "n portable", "mobile phone", "cell", "cell phone"),
    "phone": ("telephone", "tel", "fixe", "tel fixe", "telephone fixe", "standard",
              "ligne directe", "n telephone", "phone number", "landline"),
    "web_access": ("acces extranet", "acces web", "acces internet", "acces portail",
                   "extranet", "internet", "portal access", "extranet access"),
    "timezone": ("fuseau horaire", "fuseau", "time zone"),
    "language": ("langue", "langue de correspondance", "lang"),
    "consent_email": ("optin email", "opt in email", "consentement email", "accepte les emails",
                      "accepte les mails", "accepte email", "email opt in"),
    "consent_sms": ("optin sms", "opt in sms", "consentement sms", "accepte les sms",
                    "accepte sms", "sms opt in"),
    "consent_print": ("optin courrier", "consentement courrier", "accepte les courriers",
                      "accepte courrier"),
}  # fmt: skip
# Names that say "a level" without saying whose: the person's portal level when the
# values are levels (Vendeur, Directeur...), else the company's tier (Gold, Silver...).
LEVEL_OR_TIER = ("niveau", "statut", "profil", "categorie", "status")
# Trailing words that qualify a name without changing it: "Nom du contact", "Email client".
_QUALIFIERS = re.compile(r" (?:du|de|de la|d)? ?(?:contact|client|societe|entreprise)$")
_YES = ("oui", "o", "yes", "y", "vrai", "true", "1", "x")
_NO = ("non", "n", "no", "faux", "false", "0")
# Values as normalise() writes them, per field: what they mean there.
VALUE_SYNONYMS: dict[str, dict[str, str]] = {
    "level": {
        **dict.fromkeys(("vendeur", "vendeuse", "commercial", "commerciale",
                         "technico commercial", "technico commerciale", "sales"), "seller"),
        **dict.fromkeys(("correspondant", "correspondante", "relais", "referent",
                         "referente"), "correspondent"),
        **dict.fromkeys(("directeur", "directrice", "gerant", "gerante", "dirigeant",
                         "dirigeante", "patron", "pdg", "dg", "manager"), "director"),
    },
    "email_kind": {
        **dict.fromkeys(("personnel", "personnelle", "perso", "nominatif", "individuel"),
                        "personal"),
        **dict.fromkeys(("generique", "partage", "partagee", "commun", "collectif"), "shared"),
    },
    "web_access": {**dict.fromkeys(_YES, "yes"), **dict.fromkeys(_NO, "no")},
    **{
        column: {**dict.fromkeys(_YES, "consent"), **dict.fromkeys(_NO, "opted_out")}
        for column in CONSENT_COLUMNS
    },
    "language": {
        "francais": "fr", "french": "fr", "anglais": "en", "english": "en", "allemand": "de",
        "german": "de", "espagnol": "es", "spanish": "es", "italien": "it", "italian": "it",
        "neerlandais": "nl", "dutch": "nl", "portugais": "pt",
    },
    "country": {
        "france": "FR", "belgique": "BE", "belgium": "BE", "suisse": "CH",
        "switzerland": "CH", "luxembourg": "LU", "monaco": "MC", "allemagne": "DE",
        "germany": "DE", "espagne": "ES", "spain": "ES", "italie": "IT", "italy": "IT",
    },
}  # fmt: skip
# A column marked with X (or any one mark) and left blank otherwise: the blank says no.
_MARKS = frozenset({"x", "o", "oui", "yes", "1"})
_BLANK_MEANS_NO = {"web_access": "no"}
# Fields whose every value is one of a few words: a value seen that means none of them
# is listed for the user to translate (the others' values are left to the import).
_CLOSED = frozenset({"level", "email_kind", "web_access", *CONSENT_COLUMNS})
_MATCHES = {
    name: column
    for column in ALL_COLUMNS
    for name in (column.replace("_", " "), *SYNONYMS.get(column, ()))
}


def normalise(text: str) -> str:
    """Accents, case, punctuation and repeated spaces aside: "N° Client" -> "n client"."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\W_]+", " ", plain.casefold()).split())


@dataclass
class _Column:
    name: str
    values: list[str] = field(default_factory=list)  # the sample's, trimmed, first seen
    blanks: bool = False


@dataclass
class Suggestion:
    columns: dict[str, str] = field(default_factory=dict)  # source -> field
    ignore: dict[str, str] = field(default_factory=dict)  # source -> why
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> translations
    unknown_values: dict[str, list[str]] = field(default_factory=dict)  # field -> values
    missing: list[str] = field(default_factory=list)  # required fields no column gives


def suggest_mapping(text: str, *, source: str) -> Suggestion:
    reader, header = read_header(text, source=source)
    columns = [_Column(name) for name in header]
    for row in itertools.islice(reader, SAMPLE_ROWS):
        for column, cell in zip(columns, row, strict=False):
            value = cell.strip()
            if not value:
                column.blanks = True
            elif value not in column.values:
                column.values.append(value)
    suggestion = Suggestion()
    taken: dict[str, str] = {}
    for column in columns:
        target = _target(column, taken)
        if target is None:
            suggestion.ignore[column.name] = _why_unmatched(column)
        elif target in taken:
            suggestion.ignore[column.name] = f"also looks like {target}: {taken[target]!r} has it"
        else:
            taken[target] = column.name
            suggestion.columns[column.name] = target
            _propose_values(target, column, suggestion)
    suggestion.missing = [f for f in REQUIRED_COLUMNS if f not in taken]
    return suggestion


def _target(column: _Column, taken: dict[str, str]) -> str | None:
    name = normalise(column.name)
    for candidate in (name, _QUALIFIERS.sub("", name)):
        if candidate in _MATCHES:
            return _MATCHES[candidate]
        if candidate in LEVEL_OR_TIER:
            levels = VALUE_SYNONYMS["level"]
            values = [normalise(v) for v in column.values]
            says_level = bool(values) and all(v in levels or v in levels.values() for v in values)
            return "level" if says_level and "level" not in taken else "tier"
    return None


def _why_unmatched(column: _Column) -> str:
    values = {normalise(v) for v in column.values}
    if values and values <= {*_YES, *_NO}:
        return "no network field recognised; yes/no values: a consent_* or web_access column?"
    return "no network field recognised"


def _propose_values(target: str, column: _Column, suggestion: Suggestion) -> None:
    synonyms = VALUE_SYNONYMS.get(target)
    if synonyms is None:
        return
    proposed: dict[str, str] = {}
    unknown: list[str] = []
    for value in column.values:
        meaning = synonyms.get(normalise(value))
        if meaning is None:
            if target in _CLOSED and value.lower() not in synonyms.values():
                unknown.append(value)
        elif meaning != value:
            proposed[value] = meaning
    marks = {normalise(v) for v in column.values}
    if column.blanks and len(marks) == 1 and marks <= _MARKS and target in _BLANK_MEANS_NO:
        proposed[""] = _BLANK_MEANS_NO[target]
    if proposed:
        suggestion.values[target] = proposed
    if unknown:
        suggestion.unknown_values[target] = unknown


def as_toml(suggestion: Suggestion, *, source: str) -> str:
    """The suggestion as a mapping file, comments included."""
    lines = [
        "# Column mapping suggested by `netanim import network --suggest-map` for",
        f"# {source}: check it, then import with --map THIS_FILE --dry-run first",
        f"# ({DOCS}).",
    ]
    lines += [
        f"# No column found for {field} (required): map one in [columns]."
        for field in suggestion.missing
    ]
    lines += ["", "ignore = ["]
    lines += [f"    {_string(name)},  # {why}" for name, why in suggestion.ignore.items()]
    lines += ["]", "", "[columns]"]
    lines += [f"{_string(name)} = {_string(f)}" for name, f in suggestion.columns.items()]
    lines += ["", "[constants]", '# country = "FR"  # the same value on every row']
    for target, table in suggestion.values.items():
        lines += ["", f"[values.{target}]"]
        lines += [f"{_string(value)} = {_string(meaning)}" for value, meaning in table.items()]
    for target, unknown in suggestion.unknown_values.items():
        if target not in suggestion.values:
            lines += ["", f"[values.{target}]"]
        lines.append(f"# values seen whose {target} is unknown: add what each means")
        lines += [f"# {_string(value)} = ?" for value in unknown]
    return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    # A JSON string is a TOML basic string (the same escapes, \uXXXX included).
    return json.dumps(text, ensure_ascii=False)
