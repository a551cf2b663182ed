"""Who takes part in a challenge: registration (portal, SMS keyword, CLI, automatic),
refused outside the challenge's audience, and each participant's team."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.communications import WELCOME, enrol_in
from network_anim.challenges.totals import record_registrations
from network_anim.config.settings import ChallengeConfig
from network_anim.db.models import Company, Contact, Participant
from network_anim.errors import UserError
from network_anim.network.audience import audience_query


def team_key(challenge: ChallengeConfig, company_external_id: str) -> str:
    """A company's team: the named group that lists it, else the company itself."""
    if not challenge.teams:
        return company_external_id
    for team in challenge.teams:
        if company_external_id in team.companies:
            return team.key
    return ""


def register(
    app: App, session: Session, challenge: ChallengeConfig, contacts: list[Contact], *, via: str
) -> list[Contact]:
    """Register contacts (those already in are left alone); returns the new participants.
    Someone outside the challenge's audience is refused with the reason."""
    audience = app.config.audience(challenge.audience)
    ids = [c.id for c in contacts]
    eligible = {
        row[0].id: row[1]
        for row in session.execute(
            audience_query(audience, now=app.clock.now(), min_level=challenge.level).where(
                Contact.id.in_(ids)
            )  # type: ignore[union-attr]
        )
    }
    outside = [c.external_id for c in contacts if c.id not in eligible]
    if outside:
        raise UserError(
            f"not in the audience of challenge {challenge.id} ({challenge.audience}, level "
            f"{challenge.level} and above): nothing registered",
            [", ".join(outside)],
        )
    already = set(
        session.scalars(
            select(Participant.contact_id).where(
                Participant.challenge_key == challenge.id, Participant.contact_id.in_(ids)
            )  # type: ignore[attr-defined]
        )
    )
    now = app.clock.now()
    new = []
    for contact in contacts:
        if contact.id in already:
            continue
        company: Company = eligible[contact.id]
        session.add(
            Participant(
                challenge_key=challenge.id,
                contact_id=contact.id,  # type: ignore[arg-type]
                team_key=team_key(challenge, company.external_id),
                registered_at=now,
                via=via,
            )
        )
        already.add(contact.id)
        new.append(contact)
    session.flush()
    record_registrations(session, challenge.id, [c.id for c in new])  # type: ignore[misc]
    # Confirmation now, a follow-up a week later: the challenge's registration sequence.
    enrol_in(app, session, challenge, WELCOME, new)
    return new


def register_everyone(app: App, challenge: ChallengeConfig) -> int:
    """Automatic registration: the whole audience takes part once the challenge is live."""
    with Session(app.engine) as session, session.begin():
        audience = app.config.audience(challenge.audience)
        query = audience_query(audience, now=app.clock.now(), min_level=challenge.level).where(
            ~Contact.id.in_(
                select(Participant.contact_id).where(Participant.challenge_key == challenge.id)
            )  # type: ignore[union-attr]
        )
        contacts = [row[0] for row in session.execute(query)]
        return len(register(app, session, challenge, contacts, via="automatic"))


def register_by_keyword(app: App, contact_id: int, keyword: str) -> ChallengeConfig | None:
    """An inbound SMS keyword registers the sender to the challenge that uses it."""
    word = keyword.strip().upper()
    for challenge in app.config.challenges:
        if challenge.sms_keyword == word:
            with Session(app.engine) as session, session.begin():
                contact = session.get(Contact, contact_id)
                if contact is not None:
                    register(app, session, challenge, [contact], via="sms")
            return challenge
    return None
