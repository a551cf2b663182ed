"""The portal's answer to an event's invitation: the invitation's post links here
(templates/intranet/event-invitation), where the contact says yes (with seats), no or
maybe, with the same rules and words as an SMS answer (campaigns/events.py).

Same checks as the other portal forms: a signed-in contact, a CSRF token on every POST;
only a contact the invitation was sent to answers, and only until the event starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from network_anim.campaigns import events
from network_anim.errors import UserError
from network_anim.web import Web, WebContext
from network_anim.web.portal.pages import (
    NO_STORE,
    Me,
    check_csrf,
    error_page,
    page_language,
    render_page,
)

router = APIRouter(prefix="/portal", tags=["portal"])


def _invitation(ctx: WebContext, me: Any, event_id: str) -> events.Invitation | None:
    """The contact's invitation to the event (by any channel), if it was sent to them."""
    chosen = [e for e in ctx.app.config.events if e.id == event_id]
    with Session(ctx.app.engine) as session:
        return events.latest_invitation(ctx.app, session, me.contact.id or 0, events=chosen)


def _event_page(
    request: Request,
    ctx: WebContext,
    me: Any,
    invitation: events.Invitation,
    *,
    status_code: int = 200,
    error: str = "",
) -> HTMLResponse:
    app, event = ctx.app, invitation.event
    outcome = events.current_outcome(app, event, me.contact.id or 0)
    return render_page(
        request,
        "rsvp.html",
        status_code=status_code,
        me=me,
        event=event,
        open=event in events.open_events(app, app.clock.now()),
        notice=events.confirmation_text(app, event, outcome, page_language(request, me.contact))
        if outcome
        else "",
        outcome=outcome,
        error=error,
    )


@router.get("/events/{event_id}", response_class=HTMLResponse, summary="An event's invitation")
def event_page(event_id: str, request: Request, ctx: Web, me: Me) -> HTMLResponse:
    invitation = _invitation(ctx, me, event_id)
    if invitation is None:
        return error_page(request, me, 404, "not_found")
    return _event_page(request, ctx, me, invitation)


@router.post("/events/{event_id}/rsvp", summary="Answer an event's invitation")
def event_answer(
    event_id: str,
    request: Request,
    ctx: Web,
    me: Me,
    answer: Annotated[Literal["yes", "no", "maybe"], Form()],
    seats: Annotated[int, Form(ge=1, le=50)] = 1,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    check_csrf(request, me, csrf)
    invitation = _invitation(ctx, me, event_id)
    if invitation is None:
        return error_page(request, me, 404, "not_found")
    if invitation.event not in events.open_events(ctx.app, ctx.app.clock.now()):
        return _event_page(request, ctx, me, invitation, status_code=409, error="closed")
    try:
        events.record_answer(
            ctx.app, invitation, me.contact.id or 0, answer=answer, seats=seats, by="portal"
        )
    except UserError as exc:
        return _event_page(request, ctx, me, invitation, status_code=422, error=exc.summary)
    return RedirectResponse(f"/portal/events/{quote(event_id)}", status_code=303, headers=NO_STORE)
