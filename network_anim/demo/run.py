"""``netanim demo``: a realistic network, months of the example campaigns on a simulated
clock, every output on disk (emails, SMS, letters, the database)."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App, app_from_config, resolve_database_url
from network_anim.clock import SimulatedClock
from network_anim.config.loading import load_config
from network_anim.config.settings import LoadedConfig
from network_anim.db.migrate import upgrade
from network_anim.db.models import Contact, Sale
from network_anim.demo.network import generate_network_csv
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
    config = loaded.config
    engine = config.engine.model_copy(
        update={
            "database": f"sqlite:///{folder / 'netanim.db'}",
            "data_dir": folder,
            "templates_dir": loaded.resolve(config.engine.templates_dir),
            "channels_dir": loaded.resolve(config.engine.channels_dir),
        }
    )
    channels = config.channels.model_copy(
        update={
            "email": config.channels.email.model_copy(
                update={"transport": "file", "directory": folder / "outbox" / "email"}
            ),
            "sms": config.channels.sms.model_copy(
                update={"transport": "file", "directory": folder / "outbox" / "sms"}
            ),
            "print": config.channels.print.model_copy(
                update={"directory": folder / "exports" / "print"}
            ),
        }
    )
    return LoadedConfig(
        config=config.model_copy(update={"engine": engine, "channels": channels}),
        path=loaded.path,
        base_dir=loaded.base_dir,
    )


def prepare_demo(
    config_path: Path, folder: Path, *, start: datetime, contacts: int = 400, seed: int = 2026
) -> DemoSetup:
    """A fresh demo database in ``folder``: schema, generated network, past sales."""
    if folder.exists():
        shutil.rmtree(folder)  # the demo folder is ours alone: start clean every time
    folder.mkdir(parents=True)
    loaded = demo_config(load_config(config_path), folder)
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


__all__ = ["DemoSetup", "open_demo_app", "prepare_demo", "write_demo_report"]
