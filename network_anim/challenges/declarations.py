"""Sales a participant declares on the portal: one sale checked by the rules of ``netanim
import sales`` (:mod:`network_anim.challenges.sales_rules`), an optional proof file stored
by content hash like post documents, withdrawal while it is pending, and the list of a
participant's declarations with their status and points.

The manager reviews them with the imported ones (``netanim challenge claims``): a
declaration is a :class:`~network_anim.db.models.Sale` whose ``source`` is "portal".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.awarding import APPROVED, PENDING, award_sales
from network_anim.challenges.calendar import local_day
from network_anim.challenges.sales_csv import SaleRecord
from network_anim.challenges.sales_import import (
    WITHDRAWN,
    sales_context,
    upsert_products,
    write_sales,
)
from network_anim.challenges.sales_rules import (
    Problem,
    SalesContext,
    already_recorded,
    check_sale,
    too_long,
)
from network_anim.compose.attachments import MAX_BYTES, keep_bytes
from network_anim.config.settings import ChallengeConfig
from network_anim.db.models import Contact, LedgerEntry, Participant, Sale, SaleProof

PORTAL = "portal"
FIELDS = ("invoice_ref", "sku", "quantity", "amount", "sold_at")
# What a proof file must start with, by the type it is stored as: the browser's
# Content-Type and the file name are the sender's word, the bytes are not.
_PROOF_TYPES = {
    "application/pdf": (b"%PDF-", ".pdf"),
    "image/jpeg": (b"\xff\xd8\xff", ".jpg"),
    "image/png": (b"\x89PNG\r\n\x1a\n", ".png"),
}
_NAME_MAX = 100


class DeclarationRefused(Exception):
    """The declaration breaks rules; nothing was written. The portal shows each problem
    in the reader's language."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.text() for p in problems))
        self.problems = problems


class NotWithdrawable(Exception):
    """Not this participant's pending portal declaration (``status``: what it is, or
    ``None`` when there is no such declaration of theirs)."""

    def __init__(self, status: str | None) -> None:
        super().__init__(status or "not found")
        self.status = status


@dataclass(frozen=True, slots=True)
class Proof:
    filename: str  # as the browser sent it
    data: bytes


@dataclass(frozen=True, slots=True)
class DeclarationLine:
    id: int
    sold_on: date  # in the engine time zone
    invoice_ref: str
    sku: str
    quantity: float
    amount: float
    status: str
    points: int
    reason: str
    proof: str  # the stored file's safe name, "" without one
    from_portal: bool


def is_participant(session: Session, challenge_key: str, contact_id: int) -> bool:
    found = session.scalar(
        select(Participant.id).where(
            Participant.challenge_key == challenge_key, Participant.contact_id == contact_id
        )
    )
    return found is not None


def declare(
    app: App,
    challenge: ChallengeConfig,
    contact: Contact,
    fields: Mapping[str, str],
    proof: Proof | None,
) -> int:
    """Record one sale ``contact`` declares for ``challenge`` (``fields``: the form's
    values by name, see :data:`FIELDS`): pending when the challenge asks for approval,
    else approved and credited at once. Refused with every broken rule, writing nothing."""
    context = sales_context(app, challenge=challenge.id)
    cells = {name: fields.get(name, "").strip() for name in FIELDS}
    cells["contact_id"] = contact.external_id
    problems = [p for p in (too_long(n, cells[n]) for n in FIELDS) if p is not None]
    checked, broken = check_sale(
        cells, context, refused={p.values["field"] for p in problems}, remedy="remedy_date"
    )
    problems += broken
    company = context.contacts([contact.external_id]).get(contact.external_id, "")
    duplicate = _duplicate(context, company, cells["invoice_ref"])
    if duplicate is not None:
        problems.append(duplicate)
    kept = _proof_problems(proof, problems)
    if problems or checked is None:
        raise DeclarationRefused(problems)
    record = SaleRecord(
        line=0,
        invoice_ref=cells["invoice_ref"],
        contact_external_id=contact.external_id,
        company_external_id=company,
        sku=checked.sku,
        quantity=checked.quantity,
        amount=checked.amount,
        sold_at=checked.sold_at,
    )
    try:
        return _write(app, record, f"{PORTAL}:{contact.external_id}", kept)
    except IntegrityError:
        # The same invoice declared twice at the same moment: the unique key refused the
        # second one; say so with the rule's own message.
        duplicate = _duplicate(sales_context(app), company, record.invoice_ref)
        if duplicate is None:
            raise
        raise DeclarationRefused([duplicate]) from None


def _duplicate(context: SalesContext, company: str, invoice: str) -> Problem | None:
    if not company or not invoice:
        return None
    recorded = context.recorded([(company, invoice)]).get((company, invoice))
    return already_recorded(invoice, company, recorded) if recorded else None


def _proof_problems(proof: Proof | None, problems: list[Problem]) -> tuple[Proof, str, str] | None:
    """(the proof, its safe name, its type) when it is acceptable; its problems appended."""
    if proof is None or not proof.data:
        return None
    name = safe_filename(proof.filename)
    if len(proof.data) > MAX_BYTES:
        problems.append(
            Problem("proof_too_big", {"name": name, "size": len(proof.data), "limit": MAX_BYTES})
        )
        return None
    for content_type, (magic, extension) in _PROOF_TYPES.items():
        if proof.data.startswith(magic):
            stem = name.rsplit(".", 1)[0] if "." in name else name
            return proof, f"{stem[: _NAME_MAX - len(extension)]}{extension}", content_type
    problems.append(Problem("proof_type", {"name": name}))
    return None


def safe_filename(sent: str) -> str:
    """A file name to show and download under: no folders, no control or shell-special
    characters, letters without accents, at most 100 characters; "proof" when nothing is
    left."""
    base = re.split(r"[\\/]", sent)[-1]
    ascii_only = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_only).strip("._")
    return cleaned[:_NAME_MAX] or "proof"


def _write(app: App, record: SaleRecord, actor: str, proof: tuple[Proof, str, str] | None) -> int:
    now = app.clock.now()
    digest = keep_bytes(app.data_dir, proof[0].data) if proof else ""
    with Session(app.engine) as session, session.begin():
        upsert_products(session, app.config.products)
        (sale_id,), approved = write_sales(
            app, session, [record], label=lambda _: PORTAL, declared_by=actor
        )
        if proof is not None:
            data, name, content_type = proof
            session.add(
                SaleProof(
                    sale_id=sale_id,
                    filename=name,
                    content_type=content_type,
                    size=len(data.data),
                    sha256=digest,
                    created_at=now,
                )
            )
        if approved:
            award_sales(app, session, list(approved), actor=actor)
    return sale_id


def withdraw(app: App, contact_id: int, sale_id: int) -> None:
    """The participant takes back a declaration of theirs still waiting for review."""
    with Session(app.engine) as session, session.begin():
        sale = session.get(Sale, sale_id, with_for_update=True)
        if sale is None or sale.contact_id != contact_id or sale.source != PORTAL:
            raise NotWithdrawable(None)
        if sale.status != PENDING:
            raise NotWithdrawable(sale.status)
        # The time of the change, as a review's: the webhook feed tells of it (sale.withdrawn).
        sale.status, sale.reviewed_at = WITHDRAWN, app.clock.now()


def declarations(app: App, challenge: ChallengeConfig, contact_id: int) -> list[DeclarationLine]:
    """The contact's sales dated within the challenge, newest first, declared on the
    portal or imported, with the points each earned in this challenge."""
    points = (
        select(func.coalesce(func.sum(LedgerEntry.points), 0))
        .where(LedgerEntry.sale_id == Sale.id, LedgerEntry.challenge_key == challenge.id)
        .correlate(Sale)
        .scalar_subquery()
    )
    with Session(app.engine) as session:
        rows = session.execute(
            select(Sale, points, SaleProof.filename)
            .join(SaleProof, SaleProof.sale_id == Sale.id, isouter=True)  # type: ignore[arg-type]
            .where(Sale.contact_id == contact_id)
            .order_by(Sale.sold_at.desc(), Sale.id.desc())  # type: ignore[attr-defined, union-attr]
        ).all()
    lines = []
    for sale, earned, proof in rows:
        sold_on = local_day(app, sale.sold_at)
        if not challenge.start <= sold_on <= challenge.end:
            continue
        lines.append(
            DeclarationLine(
                id=sale.id or 0,
                sold_on=sold_on,
                invoice_ref=sale.invoice_ref,
                sku=sale.product,
                quantity=sale.quantity,
                amount=sale.amount,
                status=sale.status,
                points=int(earned) if sale.status == APPROVED else 0,
                reason=sale.review_reason,
                proof=proof or "",
                from_portal=sale.source == PORTAL,
            )
        )
    return lines
