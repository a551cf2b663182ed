"""The example systemd units in docs/systemd/ are valid units whose commands this
package accepts: `systemd-analyze verify` where systemd is installed, and the options of
each ExecStart= parsed by the command itself."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).resolve().parent.parent / "docs" / "systemd").glob("*.service"))
INSTALLED = "/opt/netanim/venv/bin/netanim"  # where the units say the package lives


def _exec_start(unit: Path) -> list[str]:
    [line] = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_there_is_a_unit_for_the_daemon_and_the_server() -> None:
    assert [_exec_start(unit)[1] for unit in UNITS] == ["daemon", "serve"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_accepts_the_unit(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    netanim = shutil.which("netanim")
    assert netanim, "the package's console script is not installed"
    # verify checks that ExecStart= names an executable: point it at the one installed here.
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, netanim))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    # Unknown keys and bad values are only warnings (exit 0): any output is a problem.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_the_command_accepts_the_unit_s_options(unit: Path) -> None:
    command = _exec_start(unit)
    assert command[0] == INSTALLED
    # Unknown options are refused while parsing, before --help is acted on.
    result = subprocess.run(
        [sys.executable, "-m", "network_anim", *command[1:], "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
