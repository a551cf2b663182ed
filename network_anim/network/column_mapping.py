"""Read another file's columns as a network CSV: a column mapping (``--map FILE`` or
``[import.mapping]``) says which source column gives which network field, the values on
every row (constants), the translations of cell values ("Oui" -> "yes") and the columns
left out.

The file is translated into the network CSV's form, one output line per input line, and
parsed by :mod:`network_anim.network.network_csv` as any network file: every check and
message is the parser's, the line numbers are the source file's, and the messages then
name the source column of the field they are about. A file without a mapping never
comes here.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from network_anim.config.settings import ImportMapping
from network_anim.config.validation import parse_model
from network_anim.domain import EmailKind, LawfulBasis, Level
from network_anim.errors import UserError
from network_anim.network.csv_input import read_header, read_text
from network_anim.network.network_csv import (
    ALL_COLUMNS,
    CONSENT_COLUMNS,
    REQUIRED_COLUMNS,
    ImportDefaults,
    NetworkFile,
    parse_network_csv,
)

KEYS = tuple(ImportMapping.model_fields)
DOCS = 'docs/network-csv.md, "Mapping another file\'s columns"'
# The fields whose values are a fixed list: a translation or constant to anything else
# is refused with the mapping, rather than on every row.
_CHOICES: dict[str, tuple[str, ...]] = {
    "level": tuple(m.value for m in Level),
    "email_kind": tuple(m.value for m in EmailKind),
    **{column: tuple(m.value for m in LawfulBasis) for column in CONSENT_COLUMNS},
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_PROBLEM = re.compile(r"line (\d+): (.*)", re.DOTALL)
_DIFFERS = re.compile(r"(differs from line \d+ \()(\w+)( )")


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """A checked mapping: source columns are matched trimmed and case-insensitively,
    value translations on the trimmed cell, case-insensitively (keys casefolded here)."""

    columns: dict[str, str]  # source column as written -> field
    constants: dict[str, str]  # field -> value
    values: dict[str, dict[str, str]]  # field -> {casefolded source value: value}
    ignore: tuple[str, ...]
    origin: str  # the file it was read from
    prefix: str  # the path of its keys in that file: "" (a --map file), "import.mapping"

    def key(self, *parts: str) -> str:
        """A key path as TOML spells it: ``columns."N° client"``."""
        shown = [p if _BARE_KEY.fullmatch(p) else _quoted(p) for p in parts]
        return ".".join([self.prefix, *shown] if self.prefix else shown)


@dataclass(frozen=True, slots=True)
class MappedNetwork:
    network: NetworkFile
    # What gives each field the file sets: its source column ("Nom") or its constant's
    # key ("constants.country").
    sources: dict[str, str]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_mapping(path: Path) -> ColumnMapping:
    """A ``--map`` file: the keys of ``[import.mapping]`` at its top level."""
    from network_anim.config.loading import read_toml

    data = read_toml(path)
    unknown = [key for key in data if key not in KEYS]
    if unknown:
        raise UserError(
            f"{path}: not a column mapping",
            [
                f"{key}: unknown key; a mapping file holds {', '.join(KEYS)} at its top "
                f"level ({DOCS})"
                for key in unknown
            ],
        )
    return checked_mapping(parse_model(ImportMapping, data, source=str(path)), str(path), "")


def checked_mapping(spec: ImportMapping, origin: str, prefix: str) -> ColumnMapping:
    """``spec`` checked against the network columns (what the config's own validation
    cannot know); ``origin`` and ``prefix`` say where its keys are, for the messages."""
    mapping = ColumnMapping({}, {}, {}, spec.ignore, origin, prefix)
    problems: list[str] = []
    by_field: dict[str, str] = {}
    for source, target in spec.columns.items():
        field = _field(target, mapping.key("columns", source), problems)
        if field is None:
            continue
        if field in by_field:
            problems.append(
                f"{mapping.key('columns')}: {_quoted(by_field[field])} and {_quoted(source)} "
                f"both map to {field}; map one and add the other to ignore"
            )
            continue
        by_field[field] = source
        mapping.columns[source] = field
    ignored = {name.strip().casefold() for name in spec.ignore}
    problems += [
        f"{mapping.key('columns', source)}: {_quoted(source)} is also in "
        f"{mapping.key('ignore')}; map it or ignore it"
        for source in spec.columns
        if source.strip().casefold() in ignored
    ]
    for target, value in spec.constants.items():
        key = mapping.key("constants", target)
        field = _field(target, key, problems)
        if field is None:
            continue
        if field in by_field:
            problems.append(
                f"{key}: {field} also comes from column {_quoted(by_field[field])} "
                f"({mapping.key('columns')}); keep one"
            )
        elif _allowed(field, value, key, problems):
            mapping.constants[field] = value
    for target, table in spec.values.items():
        field = _field(target, mapping.key("values", target), problems)
        if field is not None:
            mapping.values[field] = _translations(field, table, mapping, problems)
    if problems:
        raise UserError(f"{origin}: {len(problems)} problem(s) in the column mapping", problems)
    return mapping


def _field(target: str, key: str, problems: list[str]) -> str | None:
    field = target.strip().lower()
    if field in ALL_COLUMNS:
        return field
    near = difflib.get_close_matches(field, ALL_COLUMNS, n=1)
    hint = f" (did you mean {near[0]}?)" if near else f" (the columns: {DOCS})"
    problems.append(f"{key}: {target!r} is not a network column{hint}")
    return None


def _allowed(field: str, value: str, key: str, problems: list[str]) -> bool:
    """True when ``value`` may go in ``field`` (blank: the parser's default); else the
    problem is added. One line: a value is written in place of a cell, and a line break
    would move every row below it off its source line."""
    if _BREAK.search(value):
        problems.append(f"{key}: {value!r} holds a line break; give a value on one line")
        return False
    allowed = _CHOICES.get(field)
    if allowed is None or not value.strip() or value.strip().lower() in allowed:
        return True
    problems.append(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return False


def _translations(
    field: str, table: dict[str, str], mapping: ColumnMapping, problems: list[str]
) -> dict[str, str]:
    translations: dict[str, str] = {}
    written: dict[str, str] = {}
    for source, value in table.items():
        key = mapping.key("values", field, source)
        folded = source.strip().casefold()
        if folded in translations and translations[folded] != value:
            problems.append(
                f"{key}: {_quoted(written[folded])} already translates to {translations[folded]!r}"
                " (source values are matched trimmed and case-insensitively)"
            )
        elif _allowed(field, value, key, problems):
            translations[folded] = value
            written[folded] = source
    return translations


@dataclass(frozen=True, slots=True)
class _Plan:
    """What each output column takes from a source row."""

    fields: list[str]  # the output header
    # Per output column: (source index or None, the value translations, the constant).
    picks: list[tuple[int | None, dict[str, str], str]]
    sources: dict[str, str]  # field -> its source column or its constant's key
    named: dict[str, str]  # field -> its source's words in messages (renamed fields only)
    width: int  # the source header's cells


def _plan(header: list[str], mapping: ColumnMapping, source: str) -> _Plan:
    folded = [h.casefold() for h in header]
    mapped = {name.strip().casefold(): field for name, field in mapping.columns.items()}
    ignored = {name.strip().casefold() for name in mapping.ignore}
    problems = [
        f"{mapping.key('columns', name)}: no column {_quoted(name)} in the header of {source} "
        f"(its columns: {', '.join(header)})"
        for name in mapping.columns
        if name.strip().casefold() not in folded
    ]
    at: dict[str, int] = {}
    for index, name in enumerate(header):
        fold = folded[index]
        if fold in ignored:
            continue
        if folded.count(fold) > 1:
            if folded.index(fold) == index:
                problems.append(
                    f"{source} line 1 (header): column {_quoted(name)} is given twice; "
                    f"rename one, or ignore both ({mapping.key('ignore')})"
                )
            continue
        field = mapped.get(fold) or (name.lower() if name.lower() in ALL_COLUMNS else None)
        if field is None:
            problems.append(
                f"{source} line 1 (header): column {_quoted(name)} is neither mapped nor a "
                f'network column: map it ({mapping.key("columns", name)} = "<field>") or '
                f"ignore it ({mapping.key('ignore')} = [{_quoted(name)}]) in {mapping.origin}"
            )
        elif field in at:
            problems.append(
                f"{source} line 1 (header): columns {_quoted(header[at[field]])} and "
                f"{_quoted(name)} both give {field}; add one to {mapping.key('ignore')} "
                f"in {mapping.origin}"
            )
        else:
            at[field] = index
    for field in mapping.constants:
        if field in at:
            problems.append(
                f"{mapping.key('constants', field)}: {field} also comes from column "
                f"{_quoted(header[at[field]])} of {source}; keep one"
            )
    for field in REQUIRED_COLUMNS:
        if field not in at and field not in mapping.constants:
            problems.append(
                f"{mapping.key('columns')}: no column of {source} gives {field}, which is "
                "required: map one to it"
            )
    for field in mapping.values:
        if field not in at:
            problems.append(f"{mapping.key('values', field)}: no column of {source} gives {field}")
    if problems:
        raise UserError(
            f"{source}: {len(problems)} problem(s) with the column mapping of "
            f"{mapping.origin}; nothing was imported",
            problems,
        )
    fields = [f for f in ALL_COLUMNS if f in at or f in mapping.constants]
    sources = {f: header[at[f]] for f in at} | {
        f: mapping.key("constants", f) for f in mapping.constants
    }
    named = {f: f"column {_quoted(header[at[f]])}" for f in at if header[at[f]] != f}
    named |= {f: f"{sources[f]} of {mapping.origin}" for f in mapping.constants}
    picks = [(at.get(f), mapping.values.get(f, {}), mapping.constants.get(f, "")) for f in fields]
    return _Plan(fields, picks, sources, named, len(header))


def _network_text(
    text: str, mapping: ColumnMapping, source: str
) -> tuple[str, _Plan, dict[int, int]]:
    """The file in the network CSV's form, each row on the line it starts on in the
    source (blank lines stand in for the lines a left-out multi-line cell took), the
    plan, and the cell count of each row whose count differs from the header's, by
    line (written one cell too wide, so the parser reports them; the message is put
    right after)."""
    reader, header = read_header(text, source=source)
    plan = _plan(header, mapping, source)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(plan.fields)
    out.write("\n" * (reader.line_num - 1))
    misshapen: dict[int, int] = {}
    wrong = ["?"] * (len(plan.fields) + 1)
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        cells: list[str]
        if not any(cell.strip() for cell in row):
            cells = []
        elif len(row) != plan.width:
            misshapen[start] = len(row)
            cells = wrong
        else:
            cells = [_cell(row, pick) for pick in plan.picks]
        writer.writerow(cells)
        if line > start:
            written = 1 + sum(len(_BREAK.findall(cell)) for cell in cells)
            out.write("\n" * (line - start + 1 - written))
    return out.getvalue(), plan, misshapen


def _cell(row: list[str], pick: tuple[int | None, dict[str, str], str]) -> str:
    index, translations, constant = pick
    if index is None:
        return constant
    value = row[index]
    if translations:
        return translations.get(value.strip().casefold(), value)
    return value


def read_mapped_network_csv(
    path: Path, mapping: ColumnMapping, defaults: ImportDefaults
) -> MappedNetwork:
    source = str(path)
    text, plan, misshapen = _network_text(read_text(path), mapping, source)
    try:
        network = parse_network_csv(text, source=source, defaults=defaults)
    except UserError as exc:
        problems = [_explained(p, plan, misshapen) for p in exc.problems]
        raise UserError(exc.summary, problems) from None
    return MappedNetwork(network, plan.sources)


def _explained(problem: str, plan: _Plan, misshapen: dict[int, int]) -> str:
    """The parser's message about a translated row, in the source file's words."""
    found = _LINE_PROBLEM.fullmatch(problem)
    if found is None:
        return problem
    line, text = found.groups()
    if int(line) in misshapen and text.endswith(f"the header has {len(plan.fields)}"):
        return f"line {line}: {misshapen[int(line)]} cells, the header has {plan.width}"
    field = text.split(" ", 1)[0]
    if field in plan.named:
        text = f"{field} ({plan.named[field]}){text[len(field) :]}"

    def named(match: re.Match[str]) -> str:
        field = match[2]
        where = f" ({plan.named[field]})" if field in plan.named else ""
        return f"{match[1]}{field}{where}{match[3]}"

    return f"line {line}: {_DIFFERS.sub(named, text)}"
