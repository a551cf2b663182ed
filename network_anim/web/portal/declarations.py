"""Portal pages where a participant declares a sale for a challenge (with an optional proof
file), follows each declaration's status and withdraws a pending one.

Same checks as the other portal forms: a signed-in contact, the challenge's level
(403 above it), a CSRF token on every POST; only the challenge's participants declare.
The rules and their messages are those of ``netanim import sales``.
"""

from __future__ import annotations

from itertools import groupby
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from network_anim.challenges import declarations as sales
from network_anim.challenges.calendar import local_day
from network_anim.compose.attachments import MAX_BYTES
from network_anim.web import Web, WebContext
from network_anim.web.portal.pages import (
    NO_STORE,
    Me,
    challenge_for,
    check_csrf,
    page_language,
    render_page,
)

router = APIRouter(prefix="/portal", tags=["portal"])

Text = Annotated[str, Form(max_length=200)]


def _catalogue(ctx: WebContext) -> list[tuple[str, list[Any]]]:
    """The config's products by family, for the form's select."""
    products = sorted(ctx.app.config.products, key=lambda p: (p.family, p.name))
    return [(family, list(items)) for family, items in groupby(products, key=lambda p: p.family)]


def _sales_page(
    request: Request,
    ctx: WebContext,
    me: Any,
    challenge: Any,
    *,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    contact_id = me.contact.id or 0
    with Session(ctx.app.engine) as session:
        registered = sales.is_participant(session, challenge.id, contact_id)
    return render_page(
        request,
        "declarations.html",
        status_code=status_code if registered else 403,
        me=me,
        challenge=challenge,
        registered=registered,
        catalogue=_catalogue(ctx),
        lines=sales.declarations(ctx.app, challenge, contact_id) if registered else [],
        today=local_day(ctx.app, ctx.app.clock.now()).isoformat(),
        form=values.pop("form", {}),
        **values,
    )


@router.get(
    "/challenges/{key}/sales",
    response_class=HTMLResponse,
    summary="Declare a sale; the participant's declarations and their status",
    responses={403: {"description": "Not registered, or the challenge is for a higher level."}},
)
def sales_page(
    key: str,
    request: Request,
    ctx: Web,
    me: Me,
    declared: int = 0,
    withdrawn: int = 0,
) -> HTMLResponse:
    challenge = challenge_for(ctx, me.contact, key)
    return _sales_page(request, ctx, me, challenge, declared=declared, withdrawn=withdrawn)


@router.post(
    "/challenges/{key}/sales",
    summary="Declare a sale (multipart form, optional proof file: PDF, JPEG or PNG)",
    responses={
        403: {"description": "CSRF token wrong, not registered, or a higher level."},
        422: {"description": "The sale breaks a rule of the sales import; each is listed."},
    },
)
async def declare_sale(
    key: str,
    request: Request,
    ctx: Web,
    me: Me,
    invoice_ref: Text = "",
    sku: Text = "",
    quantity: Text = "",
    amount: Text = "",
    sold_at: Text = "",
    csrf: Annotated[str | None, Form()] = None,
    proof: Annotated[UploadFile | None, File()] = None,
) -> Response:
    check_csrf(request, me, csrf)
    challenge = challenge_for(ctx, me.contact, key)
    form = {
        "invoice_ref": invoice_ref,
        "sku": sku,
        "quantity": quantity,
        "amount": amount,
        "sold_at": sold_at,
    }
    with Session(ctx.app.engine) as session:
        registered = sales.is_participant(session, challenge.id, me.contact.id or 0)
    if not registered:
        return _sales_page(request, ctx, me, challenge)
    sent = None
    if proof is not None and proof.filename:
        # One byte over the limit is enough to refuse it; never read an unbounded upload.
        sent = sales.Proof(proof.filename, await proof.read(MAX_BYTES + 1))
    try:
        sale_id = sales.declare(ctx.app, challenge, me.contact, form, sent)
    except sales.DeclarationRefused as refused:
        lang = page_language(request, me.contact)
        problems = [p.text(lang) for p in refused.problems]
        return _sales_page(
            request, ctx, me, challenge, status_code=422, problems=problems, form=form
        )
    return RedirectResponse(
        f"/portal/challenges/{quote(key)}/sales?declared={sale_id}",
        status_code=303,
        headers=NO_STORE,
    )


@router.post(
    "/challenges/{key}/sales/{sale_id}/withdraw",
    summary="Withdraw a declaration still waiting for review",
    responses={
        403: {"description": "CSRF token wrong, or a higher level."},
        404: {"description": "No such declaration of this participant."},
        409: {"description": "Already reviewed or withdrawn."},
    },
)
def withdraw_sale(
    key: str,
    sale_id: int,
    request: Request,
    ctx: Web,
    me: Me,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    check_csrf(request, me, csrf)
    challenge = challenge_for(ctx, me.contact, key)
    try:
        sales.withdraw(ctx.app, me.contact.id or 0, sale_id)
    except sales.NotWithdrawable as refused:
        status = 404 if refused.status is None else 409
        return _sales_page(request, ctx, me, challenge, status_code=status, not_withdrawn=True)
    return RedirectResponse(
        f"/portal/challenges/{quote(key)}/sales?withdrawn=1", status_code=303, headers=NO_STORE
    )
