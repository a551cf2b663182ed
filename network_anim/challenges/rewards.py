"""The rewards shop: redeeming debits points and takes a gift from stock in one
transaction; cancelling gives both back; the supplier gets a fulfilment file."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.ledger import credit, debit
from network_anim.db.models import Company, Contact, Redemption, Reward
from network_anim.errors import UserError

PLACED, CANCELLED, EXPORTED = "placed", "cancelled", "exported"


def sync_rewards(app: App) -> None:
    """Catalogue from the config. Its stock is the initial stock: once a gift exists, its
    stock moves with redemptions only, and a config reload never resets it."""
    with Session(app.engine) as session, session.begin():
        existing = {r.key: r for r in session.scalars(select(Reward))}
        wanted = {item.key for item in app.config.rewards}
        for item in app.config.rewards:
            row = existing.get(item.key)
            if row is None:
                session.add(
                    Reward(key=item.key, name=item.name, points=item.points, stock=item.stock)
                )
            else:
                row.name, row.points, row.active = item.name, item.points, True
        for key, row in existing.items():
            if key not in wanted:
                row.active = False


def redeem(app: App, contact_id: int, reward_key: str, *, actor: str = "participant") -> Redemption:
    """Take one gift for a contact: stock and points both, or neither."""
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        reward = session.scalars(select(Reward).where(Reward.key == reward_key)).first()
        if reward is None or not reward.active:
            raise UserError(
                f"unknown gift {reward_key!r}", ["netanim rewards list shows the catalogue"]
            )
        took_stock = session.execute(
            update(Reward)
            .where(Reward.id == reward.id)
            .where((Reward.stock.is_(None)) | (Reward.stock >= 1))  # type: ignore[union-attr,operator]
            .values(stock=Reward.stock - 1)
        ).rowcount
        if not took_stock:
            raise UserError(f"{reward.name}: out of stock")
        redemption = Redemption(
            contact_id=contact_id,
            reward_key=reward_key,
            points=reward.points,
            status=PLACED,
            created_at=now,
        )
        session.add(redemption)
        session.flush()
        # Raises InsufficientPoints: the transaction rolls back, the stock with it.
        debit(
            session,
            contact_id=contact_id,
            points=reward.points,
            kind="redeem",
            source_key=f"redeem:{redemption.id}",
            now=now,
            actor=actor,
            reason=f"gift: {reward.name}",
        )
        session.expunge(redemption)
        return redemption


def cancel(app: App, redemption_id: int, *, actor: str = "manager") -> None:
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        redemption = session.get(Redemption, redemption_id)
        if redemption is None or redemption.status != PLACED:
            raise UserError(
                f"redemption {redemption_id} cannot be cancelled (only placed ones, not yet exported)"
            )
        redemption.status, redemption.cancelled_at = CANCELLED, now
        session.execute(
            update(Reward)
            .where(Reward.key == redemption.reward_key, Reward.stock.is_not(None))  # type: ignore[union-attr]
            .values(stock=Reward.stock + 1)
        )
        credit(
            session,
            contact_id=redemption.contact_id,
            points=redemption.points,
            kind="refund",
            source_key=f"refund:{redemption.id}",
            now=now,
            actor=actor,
            reason=f"gift cancelled: {redemption.reward_key}",
        )


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    lines: int


def export_fulfilment(app: App, path: Path) -> ExportSummary:
    """Every placed redemption, with the postal address, for the gift supplier; those
    rows are then marked exported (they can no longer be cancelled here)."""
    from network_anim.channels.postal import address_block_problems, company_address
    from network_anim.channels.print_mail import neutralise_csv_cell

    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        rows = session.execute(
            select(Redemption, Reward.name, Contact, Company)
            .join(Reward, Reward.key == Redemption.reward_key)  # type: ignore[arg-type]
            .join(Contact, Contact.id == Redemption.contact_id)  # type: ignore[arg-type]
            .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
            .where(Redemption.status == PLACED)
            .order_by(Redemption.id)
        ).all()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(
            [
                "commande",
                "date",
                "cadeau",
                "code_cadeau",
                "destinataire",
                "societe",
                "adresse",
                "code_postal",
                "ville",
                "pays",
                "email",
                "telephone",
            ]
        )
        for redemption, gift, contact, company in rows:
            address = company_address(
                company,
                civility=contact.civility,
                first_name=contact.first_name,
                last_name=contact.last_name,
            )
            problems = address_block_problems(address) if company.street else ["no address"]
            cells = [
                str(redemption.id),
                redemption.created_at.date().isoformat(),
                gift,
                redemption.reward_key,
                f"{contact.first_name} {contact.last_name}".strip(),
                company.name,
                " / ".join(
                    p
                    for p in (
                        company.delivery_point,
                        company.building,
                        company.street,
                        company.locality,
                    )
                    if p
                )
                if not problems
                else "",
                company.postcode,
                company.city,
                company.country,
                contact.email or "",
                contact.mobile or "",
            ]
            writer.writerow([neutralise_csv_cell(c) for c in cells])
            redemption.status, redemption.exported_at = EXPORTED, now
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text("\ufeff" + buffer.getvalue(), encoding="utf-8")
        os.replace(temporary, path)
    return ExportSummary(path, len(rows))
