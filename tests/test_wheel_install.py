"""From a built wheel installed into a fresh venv, in an empty folder, a new user's first
commands work: the product no longer needs its source checkout (issue 14, "Done when").

The venv sees the already installed dependencies (``--system-site-packages``), so
nothing is downloaded; the test proves the package itself is the wheel's copy (its
``__file__`` and its defaults are inside the venv), not the checkout's.
"""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import site
import subprocess
import sys
import zipfile
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Exactly the chain; "cd" moves the folder the next commands run in.
CHAIN = (
    "netanim new proj",
    "cd proj",
    "netanim init",
    "netanim import network examples/network.csv",
    "netanim broadcast --audience all --urgency info --template welcome --id w1",
    "netanim demo",
)
# What the build does not read, or what a local run left behind.
NOT_SOURCES = shutil.ignore_patterns(
    ".*", "__pycache__", "*.egg-info", "build", "dist", "var", "venv", "test-artifacts"
)


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{shlex.join(args)} (in {cwd}) exited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: an in-tree build writes build/ and *.egg-info into the checkout.
    source = tmp_path_factory.mktemp("source") / "network-anim"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("dist")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(source),
        ],
        cwd=out,
        env=dict(os.environ),
    )
    (built,) = out.glob("network_anim-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    venv = tmp_path_factory.mktemp("venv") / "venv"
    _run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        cwd=venv.parent,
        env=dict(os.environ),
    )
    # Run from a venv, --system-site-packages sees the base interpreter's packages, not
    # the running venv's (where the dependencies are): its site-packages are listed as
    # plain paths, after the new venv's own (its .pth files, an editable install of the
    # checkout among them, are not read).
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    own = venv / "lib" / version / "site-packages"
    running = [p for p in site.getsitepackages() if Path(p).resolve() != own.resolve()]
    (own / "running-environment.pth").write_text("\n".join(running) + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        # Nothing may point back at the checkout, nor at a config or database of its own.
        if k not in {"PYTHONPATH", "PYTHONHOME", "NETANIM_CONFIG", "NETANIM_DB"}
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    # pip comes from the system site-packages; --no-deps: the dependencies are there too.
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=venv.parent,
        env=env,
    )
    env["VENV"] = str(venv)
    return env


def test_the_wheel_carries_the_defaults_and_nothing_at_top_level(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        description = archive.read(metadata).decode("utf-8").partition("\n\n")[2]
    tops = {name.split("/", 1)[0] for name in names}
    # No importable `channels` (Django Channels owns that name) nor any other top level.
    assert tops == {"network_anim", wheel.name.split("-py3")[0] + ".dist-info"}
    prefix = "network_anim/_defaults/"
    packaged = sorted(n[len(prefix) :] for n in names if n.startswith(prefix))
    expected = {
        str(p.relative_to(REPO))
        for top in ("channels", "templates", "examples")
        for p in (REPO / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert packaged == sorted({*expected, "config.example.toml"})
    # The long description tells a user of the wheel how to start, before any checkout
    # command.
    start = description.index("pip install network-anim")
    assert start < description.index("netanim new") < description.index("netanim demo")
    assert start < description.index("pip install -e .")


def test_new_project_from_the_wheel_in_an_empty_folder(
    venv_env: dict[str, str], tmp_path: Path
) -> None:
    venv = Path(venv_env["VENV"])
    work = tmp_path / "empty"
    work.mkdir()
    where = _run(
        [
            "python",
            "-c",
            "import network_anim; from network_anim.config.defaults import defaults_root; "
            "print(network_anim.__file__); print(defaults_root())",
        ],
        cwd=work,
        env=venv_env,
    ).split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    assert shutil.which("netanim", path=venv_env["PATH"]) == str(venv / "bin" / "netanim")

    cwd = work
    outputs: dict[str, str] = {}
    for command in CHAIN:
        if command.startswith("cd "):
            cwd = cwd / command.removeprefix("cd ")
            continue
        outputs[command] = _run(shlex.split(command), cwd=cwd, env=venv_env, timeout=150)

    project = work / "proj"
    assert sorted(p.name for p in work.iterdir()) == ["proj"]  # nothing written beside it
    with (project / "examples" / "network.csv").open(encoding="utf-8") as f:
        contacts = {row["email"]: row for row in csv.DictReader(f, delimiter=";")}
    emails = sorted((project / "var" / "outbox" / "email").glob("*.eml"))
    assert emails
    for path in emails:
        with path.open("rb") as f:
            message = BytesParser(policy=policy.default).parse(f)
        (to,) = message["To"].addresses
        contact = contacts[to.addr_spec]  # a contact of the sample network...
        assert to.display_name == f"{contact['first_name']} {contact['last_name']}"
        # ...greeted by name in the rendered welcome template
        assert contact["first_name"] in message.get_body(("plain",)).get_content()
    report = project / "var" / "demo" / "report.html"
    assert report.is_file() and "<svg" in report.read_text(encoding="utf-8")
    assert "var/demo/report.html" in outputs["netanim demo"]
