"""``GET /healthz``: is this process able to serve? The database answers and its schema
is the one this code expects (a load balancer or systemd watchdog takes 503 as "down")."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from network_anim.db.migrate import current_revision, head_revision
from network_anim.web import Web

router = APIRouter()


@router.get("/healthz", tags=["operations"], summary="Database reachable and schema current")
def healthz(web: Web) -> JSONResponse:
    # A plain def: FastAPI runs it on its thread pool, so a slow database never blocks
    # the event loop that serves tracking links.
    engine = web.app.engine
    expected = head_revision()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {first_line}"}, status_code=503
        )
    if current != expected:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "reachable",
                "schema": current,
                "expected_schema": expected,
                "fix": "run: netanim init (with the same --config / --db)",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "reachable", "schema": current})
