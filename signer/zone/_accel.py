"""Compiled (mypyc) builds of the zone signer's hot modules, used when present and fresh.

The modules in :data:`MODULES` are ordinary typed Python. ``make`` compiles them with
mypyc (:mod:`signer.zone._accel_build`) into ``build/accel/`` of the checkout when gcc and
the Python headers exist; the build is never committed. The same source runs uncompiled
when there is no build: results are byte-identical either way (tests/test_accel.py).

Each of those modules calls :func:`use_compiled` right after its imports. The first call
decides, once per process, for all of them together (a compiled module calls the others'
compiled functions directly, so it is all or none):

* ``ZONESIGNER_PURE`` set (not ``""``/``"0"``): pure Python;
* no build (no ``build/accel/manifest.json``): pure Python, silently;
* a build made for another Python (extension suffix), or from sources that differ from
  today's (the SHA-256 of every module's ``.py`` is recorded at build time and compared
  here, ~0.3 ms): pure Python, and one line on stderr saying why -- a stale build is never
  used;
* otherwise the compiled module replaces the pure one in ``sys.modules`` (the rest of the
  ``.py`` file still runs, defining functions nobody calls: a few milliseconds).

:func:`status` tells which it was (the sign summary's ``compiled``).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

T = TypeVar("T")

PACKAGE = "signer.zone"
# compiled together (one mypyc group); the order is the import order of their dependencies
MODULES = (
    "model",
    "serial",
    "loader",
    "rules",
    "nsec",
    "nsec3",
    "signing",
    "output",
    "verify",
    "incremental",
)
# hand-written C extensions built and used with them (same guard): signer/zone/<name>.c
C_MODULES = ("_render", "_index")
GROUP = "zonesigner_accel"  # mypyc group name; its shared library is GROUP + "__mypyc"
SOURCE_DIR = Path(__file__).resolve().parent
BUILD_DIR = SOURCE_DIR.parents[1] / "build" / "accel"
MANIFEST = "manifest.json"
PURE_ENV = "ZONESIGNER_PURE"

_decision: tuple[bool, str] | None = None  # (compiled, why)
_loading: set[str] = set()


def source_hashes() -> dict[str, str]:
    """SHA-256 of each compiled module's source, by module name."""
    out = {}
    for m in MODULES:
        out[f"{PACKAGE}.{m}"] = hashlib.sha256((SOURCE_DIR / f"{m}.py").read_bytes()).hexdigest()
    for m in C_MODULES:
        out[f"{PACKAGE}.{m}"] = hashlib.sha256((SOURCE_DIR / f"{m}.c").read_bytes()).hexdigest()
    return out


def ext_suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def _decide() -> tuple[bool, str]:
    if pure_requested():
        return False, f"{PURE_ENV} is set"
    try:
        manifest = json.loads((BUILD_DIR / MANIFEST).read_text())
    except (OSError, ValueError):
        return False, "not built"
    if manifest.get("ext_suffix") != ext_suffix():
        return False, _warn(f"built for another Python ({manifest.get('ext_suffix')})")
    built = manifest.get("sources", {})
    for name, digest in source_hashes().items():
        if built.get(name) != digest:
            short = name.rsplit(".", 1)[1]
            path = f"signer/zone/{short}.{'c' if short in C_MODULES else 'py'}"
            return False, _warn(f"stale: {path} changed since the build")
    try:
        group = f"{GROUP}__mypyc"
        if group not in sys.modules:
            _load_extension(group, BUILD_DIR / f"{group}{ext_suffix()}")
    except ImportError as exc:
        return False, _warn(f"cannot be loaded: {exc}")
    return True, "compiled"


def _warn(why: str) -> str:
    sys.stderr.write(
        f"zonesigner: compiled modules in {BUILD_DIR} not used ({why}); running pure Python"
        " (rebuild: make accel)\n"
    )
    return why


def _load_extension(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:  # pragma: no cover - only for unknown suffixes
        raise ImportError(f"no module spec for {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def status() -> tuple[bool, str]:
    """(compiled modules in use, why); decides now if no module asked yet."""
    global _decision
    if _decision is None:
        _decision = _decide()
    return _decision


def extension(short: str) -> ModuleType | None:
    """The C extension ``signer.zone.<short>`` (one of :data:`C_MODULES`) when the compiled
    build is in use, else None (the caller runs its Python equivalent)."""
    if not status()[0]:
        return None
    name = f"{PACKAGE}.{short}"
    module = sys.modules.get(name)
    if module is None:
        module = _load_extension(name, BUILD_DIR / "signer" / "zone" / f"{short}{ext_suffix()}")
    return module


def use_compiled(name: str) -> None:
    """Called by each module of :data:`MODULES` after its imports, with its ``__name__``:
    puts the compiled build of the module in its place in ``sys.modules`` when builds are
    in use. A no-op in the compiled module itself (and in pure mode)."""
    if name in _loading or not status()[0]:
        return
    _loading.add(name)
    try:
        short = name.rsplit(".", 1)[1]
        path = BUILD_DIR / "signer" / "zone" / f"{short}{ext_suffix()}"
        sys.modules[name] = _load_extension(name, path)
    finally:
        _loading.discard(name)


if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr as mypyc_attr
else:

    def mypyc_attr(*args: object, **kwargs: object) -> Callable[[T], T]:
        """mypy_extensions.mypyc_attr for the pure-Python run (mypyc reads it at build
        time). ``native_class=False`` keeps a class an ordinary Python class when compiled:
        exception classes (a native one loses class attributes such as ``requirement``)
        and frozen dataclasses (a native one cannot be unpickled: it sets its fields)."""
        return lambda cls: cls
