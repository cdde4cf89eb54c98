"""Shared fixtures: the SoftHSM2 lab (real tokens through PKCS#11), paths, tools."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hsm-sim"))

import hsmlab  # noqa: E402

SHARED = REPO.parent / "shared"
IANA_ROOT = SHARED / "reference" / "iana-root"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[hsmlab.Lab]:
    """A fresh SoftHSM2 lab with tokens ksk-primary, ksk-backup and zsk, selected in os.environ."""
    if shutil.which("softhsm2-util") is None:
        pytest.fail("softhsm2-util missing: `make test` installs the softhsm2 package")
    lab = hsmlab.up(tmp_path / "lab")
    for k, v in lab.env().items():
        monkeypatch.setenv(k, v)
    yield lab


@pytest.fixture
def iana_root() -> Path:
    if not IANA_ROOT.is_dir():
        pytest.skip(f"{IANA_ROOT} is absent (the read-only ../shared reference material)")
    return IANA_ROOT


def require_tool(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is None:
        pytest.fail(f"{name} missing: `make test` installs it from Debian")
    return path
