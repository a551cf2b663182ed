"""Build hook: the wheel carries the defaults as ``network_anim/_defaults/``.

The repository's top-level ``channels/``, ``templates/``, ``config.example.toml`` and
``examples/`` stay their only copy: they are copied into the build, never into the
source tree, so nothing committed has to be kept in sync. Everything else about the
package is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Keep in step with network_anim/config/defaults.py (which reads them) and MANIFEST.in
# (which puts them in the sdist a wheel may be built from).
DEFAULTS = ("channels", "templates", "examples", "config.example.toml")
TARGET = Path("network_anim") / "_defaults"
IGNORED = shutil.ignore_patterns("__pycache__", "*.py[co]", ".*")


class BuildPyWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        # An editable install imports network_anim/ from the checkout, where the defaults
        # resolver reads the top-level folders directly: a copy would only go stale.
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / TARGET
        # build/ is reused between builds: a template removed from the source must not
        # survive in the next wheel.
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in DEFAULTS:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=IGNORED)
            elif source.is_file():
                shutil.copy2(source, target / name)
            else:
                raise SystemExit(f"{source}: missing; the wheel must carry it")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        target = Path(self.build_lib) / TARGET
        if target.is_dir():
            outputs.extend(str(p) for p in sorted(target.rglob("*")) if p.is_file())
        return outputs


setup(cmdclass={"build_py": BuildPyWithDefaults})
