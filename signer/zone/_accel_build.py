"""Build the compiled modules (``python -m signer.zone._accel_build``; ``make accel``).

Compiles :data:`signer.zone._accel.MODULES` with mypyc (and the C extensions of
:data:`signer.zone._accel.C_MODULES`) into ``build/accel/`` and records
the SHA-256 of every source there (``manifest.json``), which :mod:`signer.zone._accel`
compares at import: a build whose sources changed is never used. Does nothing when the
build is up to date; prints one line and exits 0 when there is no C compiler, no Python
headers or no mypyc (zonesigner then runs as pure Python). A failing compilation exits 1.

The build happens in a temporary directory next to ``build/accel`` that replaces it only
when complete (a process importing meanwhile sees the old build or none).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from signer.zone._accel import (
    BUILD_DIR,
    C_MODULES,
    GROUP,
    MANIFEST,
    MODULES,
    SOURCE_DIR,
    ext_suffix,
    source_hashes,
)

ROOT = SOURCE_DIR.parents[1]

_SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify

from setuptools import Extension

paths, group, c_dir, lib, tmp = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
c_exts = [
    Extension("signer.zone." + c, ["signer/zone/" + c + ".c"], extra_compile_args=["-O2"])
    for c in sys.argv[6].split(",") if c
]
setup(
    name="zonesigner-accel",
    ext_modules=mypycify(paths, group_name=group, target_dir=c_dir, multi_file=True) + c_exts,
    script_args=["build_ext", "--build-lib", lib, "--build-temp", tmp, "-j", "4"],
)
"""


def missing_tools() -> str | None:
    """Why nothing can be compiled here, or None."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    if shutil.which(cc.split()[0]) is None:
        return f"no C compiler ({cc.split()[0]})"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"no Python headers ({include}/Python.h)"
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return "no mypyc (pip install mypy)"
    return None


def up_to_date() -> bool:
    try:
        manifest = json.loads((BUILD_DIR / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return bool(
        manifest.get("ext_suffix") == ext_suffix() and manifest.get("sources") == source_hashes()
    )


def build(quiet: bool = True) -> Path:
    """Compile into a fresh directory and swap it in for ``build/accel``; return it."""
    BUILD_DIR.parent.mkdir(parents=True, exist_ok=True)
    hashes = source_hashes()  # before compiling: a source edited meanwhile makes it stale
    work = Path(tempfile.mkdtemp(prefix="accel-", dir=BUILD_DIR.parent))
    try:
        paths = ",".join(f"signer/zone/{m}.py" for m in MODULES)
        lib = work / "lib"
        cmd = [sys.executable, "-c", _SETUP, paths, GROUP, str(work / "c"), str(lib)]
        cmd += [str(work / "tmp"), ",".join(C_MODULES)]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            log = BUILD_DIR.parent / "accel-build.log"
            log.write_text(res.stdout + res.stderr)
            raise RuntimeError(f"mypyc build failed (exit {res.returncode}); see {log}")
        if not quiet:
            sys.stdout.write(res.stdout)
        manifest = {"ext_suffix": ext_suffix(), "sources": hashes, "built": int(time.time())}
        (lib / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        old = BUILD_DIR.parent / f"accel.old-{os.getpid()}"
        if BUILD_DIR.exists():
            BUILD_DIR.rename(old)
        lib.rename(BUILD_DIR)
        shutil.rmtree(old, ignore_errors=True)
        return BUILD_DIR
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    why = missing_tools()
    if why is not None:
        print(f"accel: {why}: zonesigner runs as pure Python")
        return 0
    if "--force" not in argv and up_to_date():
        return 0
    started = time.monotonic()
    try:
        build(quiet="-v" not in argv)
    except RuntimeError as exc:
        print(f"accel: {exc}", file=sys.stderr)
        return 1
    print(
        f"accel: compiled {len(MODULES)} modules into {BUILD_DIR} in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
