"""``netanim demo``: a realistic network, months of the example campaigns on a simulated
clock, every output on disk (emails, SMS, letters, the database).

The demo's folder is its own: a marker file (``.netanim-demo``) says so and lists what
the last run wrote. A run clears only what that list names, refuses a folder holding
anything else, and removes everything it wrote when it fails."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App, app_from_config, resolve_database_url
from network_anim.clock import SimulatedClock
from network_anim.config.defaults import EXAMPLE_CONFIG, channels_dir, example_config, templates_dir
from network_anim.config.loading import load_config
from network_anim.config.settings import LoadedConfig
from network_anim.db.migrate import upgrade
from network_anim.db.models import Contact, Sale
from network_anim.demo.network import generate_network_csv
from network_anim.errors import UserError
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, parse_network_csv
from network_anim.network.rfm_store import recompute_rfm

_PRODUCTS = (
    ("Routeur X200", 390.0),
    ("Standard IP S40", 1250.0),
    ("Casque DECT D12", 89.0),
    ("Borne Wi-Fi W6", 240.0),
    ("Licence Cloud PBX (an)", 480.0),
)


@dataclass(frozen=True, slots=True)
class DemoSetup:
    folder: Path
    config: LoadedConfig
    database_url: str
    network_csv: Path
    contacts: int
    sales: int


def demo_config(loaded: LoadedConfig, folder: Path) -> LoadedConfig:
    """The example config with every output moved into ``folder``."""
    # Relative paths in a config are relative to its file, which may be the packaged
    # example: the folder the user named is relative to where they stand.
    folder = folder.absolute()
    config = loaded.config
    engine = config.engine.model_copy(
        update={
            "database": f"sqlite:///{folder / 'netanim.db'}",
            "data_dir": folder,
            # The example config's own folders, else the packaged ones (config/defaults.py).
            "templates_dir": templates_dir(loaded),
            "channels_dir": channels_dir(loaded),
        }
    )
    # Every channel writing files writes them into the folder, to files only, where the
    # settings' defaults put them under var/ (var/outbox/email -> outbox/email); left
    # where the config says, they would land beside the example config, which may be
    # the packaged one, inside the installed package.
    moved = {}
    for name, settings in config.channels:
        fields = type(settings).model_fields
        if "directory" not in fields:
            continue
        update: dict[str, object] = {
            "directory": folder / fields["directory"].default.relative_to("var")
        }
        if "transport" in fields:
            update["transport"] = "file"
        moved[name] = settings.model_copy(update=update)
    channels = config.channels.model_copy(update=moved)
    return LoadedConfig(
        config=config.model_copy(update={"engine": engine, "channels": channels}),
        path=loaded.path,
        base_dir=loaded.base_dir,
    )


def prepare_demo(
    config_path: Path, folder: Path, *, start: datetime, contacts: int = 400, seed: int = 2026
) -> DemoSetup:
    """A fresh demo database in ``folder``: schema, generated network, past sales."""
    loaded = demo_config(load_config(config_path), folder)
    claim_demo_folder(folder)
    url = resolve_database_url(loaded, None)
    app = App(loaded=loaded, definitions={}, database_url=url, clock=SimulatedClock(start))
    upgrade(app.engine)
    text = generate_network_csv(companies=max(1, contacts // 10), contacts=contacts, seed=seed)
    csv_path = folder / "network.csv"
    csv_path.write_text(text, encoding="utf-8")
    engine_cfg = loaded.config.engine
    network = parse_network_csv(
        text,
        source=str(csv_path),
        defaults=ImportDefaults(
            engine_cfg.default_region, engine_cfg.timezone, engine_cfg.language
        ),
    )
    # The network was imported a while ago: old enough for "no sale for N days".
    import_network(app.engine, network, now=start - timedelta(days=180), source="demo")
    sales = _past_sales(app, start, seed)
    # Audiences may target RFM segments: score the companies as the operator would before
    # the first campaign (`netanim segment rfm`).
    recompute_rfm(app, as_of=start)
    app.close()
    return DemoSetup(folder, loaded, url, csv_path, len(network.contacts), sales)


def _past_sales(app: App, start: datetime, seed: int) -> int:
    """Sales over the 120 days before the demo: two thirds of the sellers sell, some of
    them not lately (what the reactivation sequence is for)."""
    rng = random.Random(seed)
    with Session(app.engine) as session, session.begin():
        contacts = session.scalars(select(Contact).order_by(Contact.id)).all()
        count = 0
        for contact in contacts:
            if rng.random() > 0.66:
                continue
            # About what the simulated months then bring (demo_engagement.Rates), so the
            # period before a campaign is a fair baseline for its conversion uplift.
            for n in range(rng.randint(1, 3)):
                product, price = rng.choice(_PRODUCTS)
                quantity = rng.choices((1, 2, 3, 5, 10), weights=(55, 25, 12, 6, 2))[0]
                session.add(
                    Sale(
                        company_id=contact.company_id,
                        contact_id=contact.id,
                        invoice_ref=f"F{contact.external_id}-{n:02d}",
                        product=product,
                        quantity=quantity,
                        amount=price * quantity,
                        sold_at=start
                        - timedelta(days=rng.randint(1, 120), hours=rng.randint(0, 9)),
                        created_at=start - timedelta(days=1),
                    )
                )
                count += 1
    return count


def open_demo_app(setup: DemoSetup, start: datetime) -> App:
    from network_anim.challenges.standings import variable_sources

    return app_from_config(setup.config, clock=SimulatedClock(start), variables=variable_sources())


def write_demo_report(app: App, folder: Path, start: datetime, end: datetime) -> Path:
    """The HTML report of the simulated period, as ``folder/report.html``."""
    from network_anim.reports.build import build_report
    from network_anim.reports.html import render_html

    path = folder / "report.html"
    path.write_text(render_html(build_report(app, start=start, end=end)), encoding="utf-8")
    return path


MARKER = ".netanim-demo"


def default_demo_config() -> Path:
    """``./config.example.toml`` when the current folder has one (a source checkout),
    else the example config that ships with the package: the demo runs from any folder."""
    local = Path(EXAMPLE_CONFIG)
    return local if local.is_file() else example_config()


@contextmanager
def demo_folder(folder: Path) -> Iterator[Path]:
    """A demo run in ``folder``: claimed first (see :func:`claim_demo_folder`); once the
    run is through, the marker lists what it wrote; if it fails, whatever it wrote goes,
    with the folders it created, so no half-made database is left behind."""
    created = _first_missing(folder)
    claim_demo_folder(folder)
    try:
        yield folder
    except BaseException:
        _discard(folder, created)
        raise
    written = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
    _write_marker(folder, written, finished=True)


def claim_demo_folder(folder: Path) -> None:
    """Make ``folder`` the demo's and empty it of what an earlier run wrote.

    A new or empty folder gets the marker. A folder with the marker loses what the marker
    lists. Anything else (a folder without the marker that is not empty, or files the
    marker does not list) is refused: the demo never deletes what it did not write.
    """
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: not a folder", ["pick a new or empty folder for --dir"])
    folder.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in folder.iterdir())
    if MARKER not in present:
        if present:
            raise UserError(
                f"{folder}: not empty, and not a folder the demo wrote (no {MARKER} in it)",
                [
                    f"it holds {_some(present)}",
                    "the demo clears its folder on every run: pick a new or empty "
                    "folder, e.g. --dir var/demo",
                ],
            )
    else:
        listed = _read_marker(folder)
        foreign = [name for name in present if name != MARKER and not _ours(name, listed)]
        if foreign:
            raise UserError(
                f"{folder}: holds files the demo did not write ({MARKER} does not list them)",
                [
                    f"not the demo's: {_some(foreign)}",
                    "move them elsewhere, or pick another --dir; a demo stopped before "
                    f"it finished lists nothing in {MARKER}: delete that folder yourself",
                ],
            )
        for name in present:
            if name != MARKER:
                _remove(folder / name)
    _write_marker(folder, [], finished=False)


def _ours(name: str, listed: frozenset[str]) -> bool:
    # Commands run later on the demo's database (netanim report --db ...) add SQLite's
    # companions (-wal, -shm) and the sent journal beside it: they belong to it.
    return name in listed or any(
        name.startswith(f"{entry}-") for entry in listed if entry.endswith(".db")
    )


def _write_marker(folder: Path, entries: list[str], *, finished: bool) -> None:
    body = {
        "written_by": "netanim demo",
        "about": "the next `netanim demo` run here deletes the entries listed, and "
        "refuses to run if the folder holds anything else",
        "finished": finished,
        "entries": entries,
    }
    (folder / MARKER).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def _read_marker(folder: Path) -> frozenset[str]:
    try:
        entries = json.loads((folder / MARKER).read_text(encoding="utf-8")).get("entries", [])
    except (OSError, ValueError, AttributeError):
        return frozenset()  # unreadable: nothing is known to be ours, so nothing is deleted
    return frozenset(e for e in entries if isinstance(e, str) and "/" not in e and e != "..")


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet (what a failed
    run removes again), or None when ``folder`` exists."""
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _discard(folder: Path, created: Path | None) -> None:
    if not folder.is_dir():
        return
    # The claim left only the marker: everything in the folder is this run's.
    for entry in folder.iterdir():
        _remove(entry)
    if created is None:
        return
    # Then the folders this run created (var/ of var/demo...), as long as they are empty.
    for candidate in (folder, *folder.parents):
        try:
            candidate.rmdir()
        except OSError:
            break
        if candidate == created:
            break


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)


__all__ = [
    "MARKER",
    "DemoSetup",
    "claim_demo_folder",
    "default_demo_config",
    "demo_folder",
    "open_demo_app",
    "prepare_demo",
    "write_demo_report",
]
