"""``netanim --help`` stays quick: it imports neither the storage, the templates nor the
transports (issue 7, benchmark 6; the wall time itself is measured by bench/cli_startup.py,
never asserted here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Top-level packages only the commands themselves need.
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "jinja2",
    "pydantic",
    "twilio",
    "aiohttp",
    "apscheduler",
    "fastapi",
    "phonenumbers",
)


def imported_by(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime ARGS``; its result and every module it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETANIM_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return done, modules


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_help_imports_none_of_the_heavy_packages(option: str) -> None:
    done, modules = imported_by("-m", "network_anim", option)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Commands:" in done.stdout and "dispatch" in done.stdout
    assert {"click", "network_anim.cli"} <= modules  # the listing is read correctly
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], f"netanim {option} imports {loaded}"


def test_the_listing_sees_packages_imported_deep_down() -> None:
    # The check above is no accident of the listing: the application pulls the storage in.
    done, modules = imported_by("-c", "import network_anim.app")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {"sqlalchemy", "pydantic"} <= modules
