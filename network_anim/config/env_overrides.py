"""Deployment settings from the environment: ``NETANIM_<SECTION>_<KEY>`` over the TOML.

Every key of ``[engine]``, ``[daemon]``, ``[channels.<name>]`` and ``[bounces]`` that holds one value
(text, number, boolean, path, one word of a list) can come from an environment variable
named after its key path, in capitals, dots as underscores: ``channels.email.port`` is
``NETANIM_CHANNELS_EMAIL_PORT``. A variable that is set overrides the file; an empty one
counts as unset. Relative paths are resolved like the file's, against its folder.

Not read this way: keys ending in ``_env`` (they already name a variable: set that one),
lists and tables (``sender_lines``, approved ``templates``), and everything that describes
the animation rather than its deployment (routing, audiences, campaigns, challenges,
reports), which stays in the TOML where it is reviewed.

A bad value is a :class:`UserError` naming the variable and what it expects, checked with
the key's own model (its bounds, patterns and validators), before the file is validated.
"""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from network_anim.config.settings import Config
from network_anim.config.validation import describe_error
from network_anim.errors import UserError

PREFIX = "NETANIM"
SECTIONS = ("engine", "daemon", "channels", "bounces")
# The variable listing retired link-signing keys is the key's own variable plus this.
PREVIOUS_SUFFIX = "_PREVIOUS"
_SCALARS = (str, int, float, bool, Path)
_SHOWN = 60  # characters of a bad value quoted back


@dataclass(frozen=True, slots=True)
class EnvSetting:
    """One config key that an environment variable can set."""

    variable: str
    path: tuple[str, ...]  # ("channels", "email", "port")
    section: type[BaseModel]  # the model that owns the key, to validate a value alone
    default: Any
    expects: str  # "a whole number > 0 and < 65536"

    @property
    def key(self) -> str:
        return ".".join(self.path)


def previous_secrets_env(env_var: str) -> str:
    """The variable listing the keys retired from ``env_var``: its name plus ``_PREVIOUS``,
    so a deployment that renames the key's variable renames this one with it."""
    return env_var + PREVIOUS_SUFFIX


@cache
def env_settings() -> tuple[EnvSetting, ...]:
    """Every key an environment variable can set, in the order of the models."""
    found: list[EnvSetting] = []
    for section in SECTIONS:
        model = Config.model_fields[section].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        found.extend(_settings_of(model, (section,)))
    return tuple(found)


def _settings_of(model: type[BaseModel], path: tuple[str, ...]) -> Iterator[EnvSetting]:
    for key, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _settings_of(annotation, (*path, key))
        elif not key.endswith("_env") and _scalar(annotation) is not None:
            yield EnvSetting(
                variable="_".join((PREFIX, *path, key)).upper(),
                path=(*path, key),
                section=model,
                default=field.get_default(call_default_factory=True),
                expects=_expects(field),
            )


def _scalar(annotation: Any) -> Any:
    """The one value type of ``annotation`` (``None`` allowed beside it), or ``None`` when
    it holds a list, a table or a choice of types."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(kinds) != 1:
            return None
        annotation = kinds[0]
    if get_origin(annotation) is Literal or annotation in _SCALARS:
        return annotation
    return None


def _expects(field: FieldInfo) -> str:
    kind = _scalar(field.annotation)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(kind))
    base = {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        Path: "a path",
        str: "text",
    }[kind]
    bounds = []
    for rule in field.metadata:  # pydantic's Field(gt=..., pattern=...) constraints
        for name, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            bound = getattr(rule, name, None)
            if bound is not None:
                bounds.append(f"{sign} {bound}")
        pattern = getattr(rule, "pattern", None)
        if pattern:
            bounds.append(f"matching {pattern}")
    return " ".join([base, " and ".join(bounds)]) if bounds else base


def with_env_overrides(data: dict[str, Any], environ: Mapping[str, str] | None = None) -> dict:
    """``data`` (a parsed TOML) with every deployment variable set in ``environ`` (the
    process environment by default) put over it; the input is left untouched."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    merged = data
    for setting in env_settings():
        raw = environ.get(setting.variable, "")
        if not raw:
            continue
        try:
            value = _validated(setting, raw)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        merged = _put(merged, setting.path, value)
    problems += _unknown(environ, _named_variables(data))
    if problems:
        raise UserError(
            f"environment: {len(problems)} problem(s) in {PREFIX}_* variables "
            "(config.example.toml names each key's variable beside it)",
            problems,
        )
    return merged


def _validated(setting: EnvSetting, raw: str) -> Any:
    """The value ``raw`` gives the key, checked by the key's own model alone (every other
    key at its default); ``ValueError`` naming the variable if it is refused."""
    key = setting.path[-1]
    try:
        return getattr(setting.section.model_validate({key: raw}), key)
    except ValidationError as exc:
        reasons = "; ".join(describe_error(error) for error in exc.errors())
    shown = raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "..."
    raise ValueError(
        f"{setting.variable}={shown!r} (sets {setting.key}, expects {setting.expects}): {reasons}"
    )


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at ``path``, copying only the tables on the way. A
    table the file gave as something else is left alone: validating the file reports it."""
    head, rest = path[0], path[1:]
    if not rest:
        return {**data, head: value}
    inner = data.get(head, {})
    if not isinstance(inner, dict):
        return data
    return {**data, head: _put(inner, rest, value)}


def _named_variables(data: Any) -> set[str]:
    """The variables the file's ``*_env`` keys name (and the retired keys' list beside the
    signing key's): they may share the prefix of a setting without being one."""
    names: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key.endswith("_env") and isinstance(value, str):
                names |= {value, previous_secrets_env(value)}
            else:
                names |= _named_variables(value)
    elif isinstance(data, list):
        for item in data:
            names |= _named_variables(item)
    return names


def _unknown(environ: Mapping[str, str], named: set[str]) -> list[str]:
    """A variable with a section's prefix that sets nothing is a typo, refused like an
    unknown key of the file, instead of being silently ignored."""
    known = {setting.variable for setting in env_settings()}
    prefixes = tuple(f"{PREFIX}_{section.upper()}_" for section in SECTIONS)
    problems = []
    for name in sorted(environ):
        if not name.startswith(prefixes) or name in known or name in named:
            continue
        if name.endswith("_ENV"):
            hint = "keys ending in _env name a variable: set that variable instead"
        else:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "no such setting"
        problems.append(f"{name}: unknown setting variable ({hint})")
    return problems


__all__ = [
    "PREFIX",
    "SECTIONS",
    "EnvSetting",
    "env_settings",
    "previous_secrets_env",
    "with_env_overrides",
]
