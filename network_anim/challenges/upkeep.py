"""Challenges follow the config: their rows, objectives and products are synced from it,
and a periodic tick registers everyone of automatic challenges and expires points.

The rules live in the config (``[[challenges]]``); the database holds who takes part,
the objectives, and the ledger entries that explain every point.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.calendar import window
from network_anim.challenges.objectives import store_objectives
from network_anim.challenges.registration import register_everyone
from network_anim.challenges.totals import ensure_built
from network_anim.db.models import Challenge, Product


def sync_challenges(app: App) -> None:
    """Challenge rows follow the config; their objectives are (re)read from their CSV and
    their leaderboard totals built if they are not (in the [engine] time zone)."""
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        rows = {c.key: c for c in session.scalars(select(Challenge))}
        for challenge in app.config.challenges:
            starts, ends = window(app, challenge)
            status = "scheduled" if now < starts else ("live" if now <= ends else "closed")
            row = rows.get(challenge.id)
            if row is None:
                session.add(
                    Challenge(
                        key=challenge.id,
                        name=challenge.name,
                        starts_at=starts,
                        ends_at=ends,
                        status=status,
                        created_at=now,
                    )
                )
            else:
                row.name, row.starts_at, row.ends_at, row.status = (
                    challenge.name,
                    starts,
                    ends,
                    status,
                )
            if challenge.objectives is not None:
                store_objectives(session, app, challenge)
        session.flush()
        for challenge in app.config.challenges:
            # From here on every ledger entry keeps them: built once, or after a zone change.
            ensure_built(session, challenge.id, app.config.engine.timezone)
        _sync_products(session, app)


def _sync_products(session: Session, app: App) -> None:
    rows = {p.sku: p for p in session.scalars(select(Product))}
    for product in app.config.products:
        row = rows.get(product.sku)
        if row is None:
            session.add(
                Product(
                    sku=product.sku,
                    name=product.name,
                    family=product.family,
                    unit_price=product.unit_price,
                )
            )
        else:
            row.name, row.family, row.unit_price = product.name, product.family, product.unit_price


def challenge_tick(app: App, *, sync: bool = True) -> int:
    """Periodic upkeep: challenge rows and objectives follow the config (``sync``: once
    per config is enough), automatic registration of live challenges, expiry of points."""
    from network_anim.challenges.ledger import expire_due

    if sync:
        sync_challenges(app)
    now = app.clock.now()
    registered = 0
    for challenge in app.config.challenges:
        first, last = window(app, challenge)
        if challenge.registration == "automatic" and first <= now <= last:
            registered += register_everyone(app, challenge)
    with Session(app.engine) as session, session.begin():
        expire_due(session, now)
    return registered
