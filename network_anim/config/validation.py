"""Turn pydantic validation errors into one readable line per problem with its key path."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from network_anim.config.audience_conditions import ConditionError
from network_anim.errors import UserError

M = TypeVar("M", bound=BaseModel)


def key_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``('campaigns', 2, 'steps', 0, 'urgency')`` → ``campaigns[2].steps[0].urgency``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def describe_error(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against config.example.toml)"
    if kind == "missing":
        return "required key is missing"
    if kind in ("enum", "literal_error"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"{err['input']!r} is not one of {expected}"
    msg = str(err["msg"])
    # pydantic prefixes messages of custom validators with "Value error, ".
    return msg.removeprefix("Value error, ")


def parse_model(model: type[M], data: Any, *, source: str, prefix: str = "") -> M:
    """Validate ``data`` into ``model`` or raise a :class:`UserError` listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        locs = [tuple(e["loc"]) for e in errors]
        # A container whose item failed also reports a knock-on error (too short...):
        # keep the item's error, which says what to fix.
        kept = [
            e
            for e, loc in zip(errors, locs, strict=True)
            if not any(other != loc and other[: len(loc)] == loc for other in locs)
        ]
        problems = [_problem(e, prefix) for e in kept]
        raise UserError(f"{source}: {len(problems)} problem(s)", problems) from None


def _problem(err: Any, prefix: str) -> str:
    path = key_path(tuple(err["loc"]), prefix)
    nested = err.get("ctx", {}).get("error")
    if isinstance(nested, ConditionError) and nested.path:
        # A condition deep in an audience's where names its own key below the field.
        joiner = "" if nested.path.startswith("[") else "."
        return f"{path}{joiner}{nested.path}: {nested.message}"
    return f"{path}: {describe_error(err)}"
