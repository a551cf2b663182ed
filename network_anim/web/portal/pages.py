"""Portal routes: login by magic link, posts by level, flash posts, points, rewards shop,
challenges, preferences. Every page is rendered server-side by Jinja2 with autoescape.

Levels (seller < correspondent < director) are checked on the server for every route
that shows a post or a challenge: a higher-level post is answered 403, never 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Cookie, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.challenges.ledger import balance, statement
from network_anim.compose.attachments import stored_path
from network_anim.config.channel_defs import with_trait
from network_anim.db.models import (
    Consent,
    Contact,
    Objective,
    Participant,
    Post,
    PostAttachment,
    PostRead,
    Reward,
)
from network_anim.domain import LawfulBasis, Level
from network_anim.errors import UserError
from network_anim.web import Web, WebContext
from network_anim.web.events import event_row, insert_event, set_consent
from network_anim.web.portal import auth
from network_anim.web.portal.i18n import LANGUAGES, translator
from network_anim.web.portal.markdown import render_markdown

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=True)

LANG_COOKIE = "netanim_lang"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _rank(level: str) -> int:
    try:
        return Level(level).rank
    except ValueError:
        return 99  # an unknown level is visible to nobody


def page_language(request: Request, contact: Contact | None = None) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    if contact is not None and contact.language in LANGUAGES:
        return contact.language
    return "fr"


def _secure(ctx: WebContext) -> bool:
    return ctx.app.config.engine.base_url.lower().startswith("https://")


def render_page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    me: auth.SignedIn | None = None,
    **values: Any,
) -> HTMLResponse:
    lang = page_language(request, me.contact if me else None)
    html = page_html(template, lang=lang, me=me, path=request.url.path, **values)
    return HTMLResponse(html, status_code=status_code, headers=NO_STORE)


def page_html(
    template: str, *, lang: str, me: auth.SignedIn | None, path: str, **values: Any
) -> str:
    """One portal page as HTML (``netanim preview`` writes a post's page with it)."""
    return _TEMPLATES.get_template(f"portal/{template}").render(
        t=translator(lang), lang=lang, me=me, csrf=me.csrf if me else "", path=path, **values
    )


class _LoginRequired(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=303, headers={"Location": "/portal/login", **NO_STORE})


def current(
    ctx: Web, session_cookie: Annotated[str | None, Cookie(alias=auth.SESSION_COOKIE)] = None
) -> auth.SignedIn:
    me = auth.signed_in(ctx.app, session_cookie)
    if me is None:
        raise _LoginRequired()
    return me


Me = Annotated[auth.SignedIn, Depends(current)]


def check_csrf(request: Request, me: auth.SignedIn, token: str | None) -> None:
    if not auth.csrf_ok(me.token, token):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong")


def error_page(request: Request, me: auth.SignedIn | None, status: int, key: str) -> HTMLResponse:
    return render_page(request, "message.html", status_code=status, me=me, message_key=key)


# -- login -------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse, summary="Ask for a sign-in link")
def login_form(request: Request) -> HTMLResponse:
    return render_page(request, "login.html")


@router.post("/login", response_class=HTMLResponse, summary="Send a sign-in link")
async def login_request(
    request: Request, ctx: Web, identifier: Annotated[str, Form(max_length=254)] = ""
) -> HTMLResponse:
    """Sends a magic link by email (an address was given) or SMS (a mobile number). The
    answer is the same whether the contact exists or not."""
    app = ctx.app
    with Session(app.engine) as session:
        channel, contacts = auth.find_contacts(session, identifier)
        for contact in contacts:
            session.expunge(contact)
    base = app.config.engine.base_url.rstrip("/")
    for contact in contacts:
        issued = auth.issue_login(app, contact.id or 0, channel)
        if issued is None:
            continue
        login_id, token = issued
        url = f"{base}/portal/login/{token}"
        await auth.send_login_link(
            app, contact, channel, login_id, url, page_language(request, contact)
        )
    return render_page(request, "login_sent.html")


@router.get("/login/{token}", response_class=HTMLResponse, summary="Confirm a sign-in link")
def login_confirm(token: str, request: Request, ctx: Web) -> HTMLResponse:
    """Shows a button only: a GET never signs in (mail scanners open links)."""
    if not auth.login_is_usable(ctx.app, token):
        return error_page(request, None, 400, "bad_link")
    return render_page(request, "confirm.html", token=token)


@router.post("/login/{token}", summary="Sign in with a link")
def login_consume(token: str, request: Request, ctx: Web) -> Response:
    used = auth.consume_login(ctx.app, token)
    if used is None:
        return error_page(request, None, 400, "bad_link")
    _, session_token = used
    response = RedirectResponse("/portal/", status_code=303, headers=NO_STORE)
    response.set_cookie(
        auth.SESSION_COOKIE,
        session_token,
        max_age=int(auth.SESSION_TTL.total_seconds()),
        path="/portal",
        httponly=True,
        samesite="lax",
        secure=_secure(ctx),
    )
    return response


@router.post("/logout", summary="Sign out")
def logout(
    request: Request, ctx: Web, me: Me, csrf: Annotated[str | None, Form()] = None
) -> Response:
    check_csrf(request, me, csrf)
    auth.revoke(ctx.app, me.session_id)
    response = RedirectResponse("/portal/login", status_code=303, headers=NO_STORE)
    response.delete_cookie(auth.SESSION_COOKIE, path="/portal")
    return response


@router.get("/lang/{code}", summary="Switch the portal language")
def switch_language(code: str, next: str = "/portal/") -> Response:
    target = next if next.startswith("/portal") and "//" not in next else "/portal/"
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, code, max_age=365 * 86400, path="/portal", samesite="lax", httponly=True
        )
    return response


# -- posts -------------------------------------------------------------------------------------


def _visible_levels(contact: Contact) -> list[str]:
    mine = _rank(contact.level)
    return [level.value for level in Level if level.rank <= mine]


def _pick_language(posts: list[Post], lang: str) -> list[Post]:
    """One post per message: the reader's language, else the first one found."""
    chosen: dict[Any, Post] = {}
    for post in posts:
        key = (post.message_id, post.is_flash) if post.message_id is not None else post.id
        if key not in chosen or (post.language == lang and chosen[key].language != lang):
            chosen[key] = post
    return sorted(chosen.values(), key=lambda p: p.published_at or p.created_at, reverse=True)


@dataclass(frozen=True)
class PostLine:
    id: int
    title: str
    published_at: datetime | None
    is_flash: bool
    read: bool


@router.get("/", response_class=HTMLResponse, summary="Posts for the contact's level")
def posts(request: Request, ctx: Web, me: Me) -> HTMLResponse:
    now = ctx.app.clock.now()
    lang = page_language(request, me.contact)
    read_by_me = exists().where(PostRead.post_id == Post.id, PostRead.contact_id == me.contact.id)
    with Session(ctx.app.engine) as session:
        rows = session.execute(
            select(Post, read_by_me)
            .where(
                Post.level.in_(_visible_levels(me.contact)),  # type: ignore[attr-defined]
                Post.published_at.is_not(None),  # type: ignore[union-attr]
                Post.published_at <= now,  # type: ignore[operator]
            )
            .order_by(Post.published_at.desc())  # type: ignore[union-attr]
            .limit(300)
        ).all()
    read = {post.id for post, was_read in rows if was_read}
    picked = _pick_language([post for post, _ in rows], lang)
    flash = [
        p
        for p in picked
        if p.is_flash and p.id not in read and (p.expires_at is None or p.expires_at > now)
    ]
    regular = [p for p in picked if not p.is_flash]
    return render_page(
        request,
        "posts.html",
        me=me,
        flash=[PostLine(p.id or 0, p.title, p.published_at, True, False) for p in flash],
        posts=[PostLine(p.id or 0, p.title, p.published_at, False, p.id in read) for p in regular],
    )


def _insert_ignoring(connection: Any, table: Any, keys: list[str]) -> Any:
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=keys)


def record_read(ctx: WebContext, post: Post, contact_id: int, now: datetime) -> None:
    """The read receipt, written before the page is answered (a flash post is then gone
    from the list the reader goes back to)."""
    with Session(ctx.app.engine) as session, session.begin():
        connection = session.connection()
        table = PostRead.__table__  # type: ignore[attr-defined]
        connection.execute(
            _insert_ignoring(connection, table, ["post_id", "contact_id"]),
            {"post_id": post.id, "contact_id": contact_id, "read_at": now},
        )
        insert_event(
            connection,
            event_row(
                type="read",
                occurred_at=now,
                channel="flash" if post.is_flash else "intranet",
                contact_id=contact_id,
                message_id=post.message_id,
                data={"post_id": post.id, "via": "portal"},
                dedupe_key=f"read:{post.id}:{contact_id}",
            ),
        )


@router.get(
    "/posts/{post_id}",
    response_class=HTMLResponse,
    summary="One post (records a read receipt)",
    responses={403: {"description": "The post is for a higher level."}},
)
def post_page(post_id: int, request: Request, ctx: Web, me: Me) -> HTMLResponse:
    post = _readable_post(ctx, me, post_id)
    if isinstance(post, int):
        return error_page(request, me, post, _POST_ERRORS[post])
    record_read(ctx, post, me.contact.id or 0, ctx.app.clock.now())
    with Session(ctx.app.engine) as session:
        files = session.scalars(
            select(PostAttachment)
            .where(PostAttachment.post_id == post.id)
            .order_by(PostAttachment.filename)
        ).all()
    return render_page(
        request, "post.html", me=me, post=post, body=render_markdown(post.body), files=files
    )


_POST_ERRORS = {404: "not_found", 403: "forbidden", 410: "gone"}


def _readable_post(ctx: WebContext, me: auth.SignedIn, post_id: int) -> Post | int:
    """The post if this contact may read it now, else the HTTP status that says why."""
    now = ctx.app.clock.now()
    with Session(ctx.app.engine) as session:
        post = session.get(Post, post_id)
        if post is not None:
            session.expunge(post)
    if post is None or post.published_at is None or post.published_at > now:
        return 404
    if _rank(post.level) > _rank(me.contact.level):
        return 403
    if post.is_flash and post.expires_at is not None and post.expires_at <= now:
        return 410
    return post


@router.get(
    "/posts/{post_id}/files/{file_id}",
    summary="Download a post's document",
    responses={403: {"description": "The post is for a higher level."}},
)
def post_file(post_id: int, file_id: int, request: Request, ctx: Web, me: Me) -> Response:
    post = _readable_post(ctx, me, post_id)
    if isinstance(post, int):
        return error_page(request, me, post, _POST_ERRORS[post])
    with Session(ctx.app.engine) as session:
        attachment = session.get(PostAttachment, file_id)
    if attachment is None or attachment.post_id != post_id:
        return error_page(request, me, 404, "not_found")
    return FileResponse(
        stored_path(ctx.app.data_dir, attachment),
        media_type=attachment.content_type,
        filename=attachment.filename,
        headers={"X-Content-Type-Options": "nosniff"},
    )


# -- points and rewards ------------------------------------------------------------------------


@router.get("/points", response_class=HTMLResponse, summary="Points balance and history")
def points(request: Request, ctx: Web, me: Me) -> HTMLResponse:
    with Session(ctx.app.engine) as session:
        total = balance(session, me.contact.id or 0)
        lines = list(reversed(statement(session, me.contact.id or 0)))
    return render_page(request, "points.html", me=me, balance=total, lines=lines)


def _shop(
    request: Request, ctx: Web, me: auth.SignedIn, *, status: int = 200, **values: Any
) -> HTMLResponse:
    with Session(ctx.app.engine) as session:
        total = balance(session, me.contact.id or 0)
        rewards = session.scalars(
            select(Reward).where(Reward.active.is_(True)).order_by(Reward.points, Reward.name)  # type: ignore[attr-defined]
        ).all()
        for reward in rewards:
            session.expunge(reward)
    return render_page(
        request, "rewards.html", status_code=status, me=me, balance=total, rewards=rewards, **values
    )


@router.get("/rewards", response_class=HTMLResponse, summary="The rewards shop")
def rewards(request: Request, ctx: Web, me: Me, done: str | None = None) -> HTMLResponse:
    name = None
    if done:
        with Session(ctx.app.engine) as session:
            name = session.scalar(select(Reward.name).where(Reward.key == done))
    return _shop(request, ctx, me, done=name)


@router.post("/rewards/{key}", summary="Redeem a reward")
def redeem_reward(
    key: str, request: Request, ctx: Web, me: Me, csrf: Annotated[str | None, Form()] = None
) -> Response:
    from network_anim.challenges.rewards import redeem

    check_csrf(request, me, csrf)
    try:
        redeem(ctx.app, me.contact.id or 0, key, actor=f"portal:{me.contact.external_id}")
    except UserError as exc:
        return _shop(request, ctx, me, status=409, error=str(exc).split("\n")[0])
    return RedirectResponse(f"/portal/rewards?done={quote(key)}", status_code=303, headers=NO_STORE)


# -- challenges --------------------------------------------------------------------------------


def _challenges_for(ctx: WebContext, contact: Contact) -> list[Any]:
    mine = _rank(contact.level)
    return [c for c in ctx.app.config.challenges if Level(c.level).rank <= mine]


def challenge_for(ctx: WebContext, contact: Contact, key: str) -> Any:
    for challenge in ctx.app.config.challenges:
        if challenge.id == key:
            if Level(challenge.level).rank > _rank(contact.level):
                raise HTTPException(status_code=403, detail="challenge for a higher level")
            return challenge
    raise HTTPException(status_code=404, detail="unknown challenge")


@router.get("/challenges", response_class=HTMLResponse, summary="The contact's challenges")
def challenges(request: Request, ctx: Web, me: Me) -> HTMLResponse:
    items = _challenges_for(ctx, me.contact)
    with Session(ctx.app.engine) as session:
        registered = set(
            session.scalars(
                select(Participant.challenge_key).where(Participant.contact_id == me.contact.id)
            )
        )
    return render_page(request, "challenges.html", me=me, challenges=items, registered=registered)


def _challenge_page(
    request: Request, ctx: WebContext, me: auth.SignedIn, challenge: Any, **values: Any
) -> HTMLResponse:
    from network_anim.challenges.leaderboard import leaderboard

    contact = me.contact
    with Session(ctx.app.engine) as session:
        participant = session.scalars(
            select(Participant).where(
                Participant.challenge_key == challenge.id,
                Participant.contact_id == contact.id,
            )
        ).first()
        objectives = session.scalars(
            select(Objective)
            .where(
                Objective.challenge_key == challenge.id,
                Objective.scope == "participant",
                Objective.subject == contact.external_id,
            )
            .order_by(Objective.due)
        ).all()
    board = team_board = []
    mine: Any = None
    if "individual" in challenge.modes:
        board = leaderboard(ctx.app, challenge.id, limit=10)
        if participant is not None:
            around = leaderboard(ctx.app, challenge.id, around=contact.external_id)
            mine = next((row for row in around if row.viewer), None)
    if "team" in challenge.modes:
        team_board = leaderboard(ctx.app, challenge.id, scope="team", limit=10)
    my_points = mine.points if mine is not None else 0
    return render_page(
        request,
        "challenge.html",
        status_code=values.pop("status_code", 200),
        me=me,
        challenge=challenge,
        participant=participant,
        objectives=objectives,
        my_points=my_points,
        board=board,
        team_board=team_board,
        **values,
    )


@router.get("/challenges/{key}", response_class=HTMLResponse, summary="One challenge")
def challenge_page(key: str, request: Request, ctx: Web, me: Me) -> HTMLResponse:
    return _challenge_page(request, ctx, me, challenge_for(ctx, me.contact, key))


@router.post("/challenges/{key}/register", summary="Register to a challenge")
def challenge_register(
    key: str, request: Request, ctx: Web, me: Me, csrf: Annotated[str | None, Form()] = None
) -> Response:
    from network_anim.challenges.registration import register

    check_csrf(request, me, csrf)
    challenge = challenge_for(ctx, me.contact, key)
    try:
        with Session(ctx.app.engine) as session, session.begin():
            contact = session.get(Contact, me.contact.id)
            if contact is None:
                raise _LoginRequired()
            register(ctx.app, session, challenge, [contact], via="portal")
    except UserError as exc:
        return _challenge_page(
            request, ctx, me, challenge, status_code=409, error=str(exc).split("\n")[0]
        )
    return RedirectResponse(f"/portal/challenges/{quote(key)}", status_code=303, headers=NO_STORE)


# -- preferences -------------------------------------------------------------------------------


def _preference_channels(ctx: WebContext) -> list[str]:
    """The channels a contact may opt out of here: ``preference = true`` in channels/*.toml."""
    return sorted(
        with_trait(ctx.app.definitions, "preference"),
        key=lambda name: (ctx.app.definitions[name].traits.preference_order, name),
    )


@router.get("/preferences", response_class=HTMLResponse, summary="Consent per channel")
def preferences(request: Request, ctx: Web, me: Me, saved: int = 0) -> HTMLResponse:
    with Session(ctx.app.engine) as session:
        bases = dict(
            session.execute(
                select(Consent.channel, Consent.basis).where(Consent.contact_id == me.contact.id)
            ).all()
        )
    rows = [
        (channel, bases.get(channel) != LawfulBasis.OPTED_OUT.value)
        for channel in _preference_channels(ctx)
    ]
    return render_page(request, "preferences.html", me=me, rows=rows, saved=bool(saved))


@router.post("/preferences", summary="Unsubscribe from or subscribe again to a channel")
def preferences_save(
    request: Request,
    ctx: Web,
    me: Me,
    channel: Annotated[str, Form()],
    action: Annotated[str, Form()],
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    check_csrf(request, me, csrf)
    if channel not in _preference_channels(ctx) or action not in ("unsubscribe", "subscribe"):
        raise HTTPException(status_code=400, detail="unknown channel or action")
    now = ctx.app.clock.now()
    basis = LawfulBasis.OPTED_OUT if action == "unsubscribe" else LawfulBasis.CONSENT
    with Session(ctx.app.engine) as session, session.begin():
        previous = set_consent(
            session,
            contact_id=me.contact.id or 0,
            channel=channel,
            basis=basis,
            source="portal",
            now=now,
        )
        if previous != basis.value:
            insert_event(
                session.connection(),
                event_row(
                    type="unsubscribed" if action == "unsubscribe" else "consented",
                    occurred_at=now,
                    channel=channel,
                    contact_id=me.contact.id,
                    data={"source": "portal", "previous": previous or ""},
                ),
            )
    return RedirectResponse("/portal/preferences?saved=1", status_code=303, headers=NO_STORE)
