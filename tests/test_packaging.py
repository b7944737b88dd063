"""The README's install line works: the wheel and sdist build, and the wheel installs with an extra.

The package is not on PyPI, so the README installs it from a checkout or from
a wheel built from one. This builds both from a copy of the tracked files (the
sdist's wheel must hold the same files), installs the wheel with `[fastapi]`
into a fresh venv, and runs what a user runs first there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from relay import __version__
from tests.support import ROOT

pytestmark = pytest.mark.slow

WHEEL = f"license_webhook_relay-{__version__}-py3-none-any.whl"
SDIST = f"license_webhook_relay-{__version__}.tar.gz"


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": "", "RELAY_CONFIG": ""})
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _build(source: Path, fresh: Path, out: Path) -> None:
    """The README's wheel line, and the sdist from the same build backend."""
    _run(fresh / "bin" / "python", "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ".",
         cwd=source)
    _run(fresh / "bin" / "python", "-c",
         f"from setuptools import build_meta as b; b.build_sdist({str(out)!r})", cwd=source)


def test_the_wheel_and_sdist_build_and_the_wheel_installs_with_its_extra(tmp_path: Path) -> None:
    tracked = _run("git", "ls-files", "-z", cwd=ROOT).split("\0")
    source = tmp_path / "checkout"
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=True)
    pip = fresh / "bin" / "pip"
    _run(pip, "install", "-q", "setuptools>=77")
    dist = tmp_path / "dist"
    _build(source, fresh, dist)
    wheel, sdist = dist / WHEEL, dist / SDIST
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
        metadata = archive.read(f"license_webhook_relay-{__version__}.dist-info/METADATA")
    for needed in ("relay/http/templates/base.html", "relay/http/static/dashboard.css",
                   "relay/storage/schema/sqlite/0001_initial.sql", "relay/py.typed",
                   "receiver_kit/py.typed", "receiver_kit/contrib/fastapi.py"):
        assert needed in files, needed
    for extra in ("fastapi", "flask", "django", "redis", "postgres"):
        assert f"Provides-Extra: {extra}".encode() in metadata, extra

    # The sdist is complete: the wheel built from it holds the same files.
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    again = tmp_path / "again"
    _build(tmp_path / "unpacked" / SDIST.removesuffix(".tar.gz"), fresh, again)
    with zipfile.ZipFile(again / WHEEL) as archive:
        assert set(archive.namelist()) == files

    _run(pip, "install", "-q", f"{wheel}[fastapi]")
    assert _run(fresh / "bin" / "relay", "--version").strip() == f"relay {__version__}"
    _run(fresh / "bin" / "python", "-c",
         "from receiver_kit.contrib.fastapi import WebhookDependency; import fastapi")
    checked = _run(fresh / "bin" / "relay", "check", "-c", source / "relay.yaml", cwd=tmp_path)
    assert checked.startswith(f"{source / 'relay.yaml'}: OK")
