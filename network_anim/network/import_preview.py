"""The first rows of a network file as they would be imported (``import network
--dry-run``): each field's value after the checks, normalised, defaults filled in."""

from __future__ import annotations

from enum import Enum

from network_anim.network.network_csv import (
    ALL_COLUMNS,
    COMPANY_COLUMNS,
    CONSENT_COLUMNS,
    CompanyRecord,
    ContactRecord,
    NetworkFile,
)

# The record attribute of the columns whose name differs.
_ATTRIBUTE = {"company_id": "external_id", "company_name": "name", "contact_id": "external_id"}


def first_rows(network: NetworkFile, count: int) -> list[dict[str, object]]:
    """``count`` rows: their line and every field that is set on at least one of them."""
    contacts = network.contacts[:count]
    wanted = {contact.company_external_id for contact in contacts}
    companies = {c.external_id: c for c in network.companies if c.external_id in wanted}
    rows = [_fields(companies[c.company_external_id], c) for c in contacts]
    kept = [column for column in ALL_COLUMNS if any(row[column] for row in rows)]
    return [
        {"line": contact.line, **{column: row[column] for column in kept}}
        for contact, row in zip(contacts, rows, strict=True)
    ]


def _fields(company: CompanyRecord, contact: ContactRecord) -> dict[str, object]:
    fields: dict[str, object] = {}
    for column in ALL_COLUMNS:
        if column in CONSENT_COLUMNS:
            value: object = contact.consents.get(column.removeprefix("consent_"))
        else:
            record = company if column in COMPANY_COLUMNS else contact
            value = getattr(record, _ATTRIBUTE.get(column, column))
        fields[column] = _shown(value)
    return fields


def _shown(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else value
