"""The compiled (mypyc) modules: same bytes as pure Python, and a stale build is never used."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signer.zone import _accel, _accel_build
from tests.test_sharded import _setup
from tests.test_zone_sign import NOW
from tests.zone_testlib import HAND_ZONE, ORIGIN, write_policy
from tests.zone_testlib import generated_zone as _generated

REPO = Path(__file__).resolve().parents[1]

# Runs the CLI, then prints which build of the zone modules ran (last line of stdout).
_RUN = """
import json, sys
from signer.cli.main import cli
cli.main(sys.argv[1:], standalone_mode=False)
from signer.zone import _accel
import signer.zone.output, signer.zone.verify, signer.zone.incremental
print(json.dumps({"compiled": _accel.status()[0],
                  "files": [signer.zone.output.__file__, signer.zone.verify.__file__,
                            signer.zone.incremental.__file__]}))
"""


def _sign(s, out: Path, pure: bool, *extra: str) -> tuple[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != _accel.PURE_ENV}
    if pure:
        env[_accel.PURE_ENV] = "1"
    args = ["sign", str(s.zone), "--origin", "example.", "--bundles", str(s.bundles)]
    args += ["--zsk", str(s.zsk), "--out", str(out), "--now", str(NOW)]
    args += ["--trust-anchor", str(s.ta), *extra]
    r = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "not used" not in r.stderr  # no stale-build warning
    info = json.loads(r.stdout.strip().splitlines()[-1])
    return hashlib.sha256(out.read_bytes()).hexdigest(), info


@pytest.mark.parametrize(
    ("zone", "policy", "jobs"),
    [("generated", "nsec", "2"), ("hand", "nsec3-optout", "1"), ("hand", "nsec", "3")],
)
def test_compiled_and_pure_sign_the_same_bytes(
    tmp_path: Path, zone: str, policy: str, jobs: str
) -> None:
    """The same zones signed with the compiled modules and with the .py sources (in fresh
    processes, ZONESIGNER_PURE=1) give the same SHA-256; each process really ran its kind."""
    if not _accel.status()[0]:
        pytest.skip(f"no compiled modules in use ({_accel.status()[1]}): run `make accel`")
    text = _generated(1500) if zone == "generated" else HAND_ZONE
    s = _setup(tmp_path, text.replace(ORIGIN, "example."))
    extra = ["--jobs", jobs]
    if policy != "nsec":
        pol = write_policy(tmp_path / "p.yaml", "example.", nsec3=True, optout=True)
        extra += ["--policy", str(pol)]
    compiled, ci = _sign(s, tmp_path / "c.signed", False, *extra)
    pure, pi = _sign(s, tmp_path / "p.signed", True, *extra)
    assert ci["compiled"] is True and pi["compiled"] is False
    assert all(str(f).endswith(_accel.ext_suffix()) for f in ci["files"])  # type: ignore[attr-defined]
    assert all(str(f).endswith(".py") for f in pi["files"])  # type: ignore[attr-defined]
    assert compiled == pure


@pytest.mark.parametrize("policy", ["nsec", "nsec3-optout"])
def test_compiled_and_pure_resign_incrementally_the_same_bytes(tmp_path: Path, policy: str) -> None:
    """An incremental re-sign (two processes) gives the same bytes compiled and pure."""
    if not _accel.status()[0]:
        pytest.skip(f"no compiled modules in use ({_accel.status()[1]}): run `make accel`")
    text = _generated(1500).replace(ORIGIN, "example.")
    s = _setup(tmp_path, text)
    extra = ["--jobs", "2"]
    if policy != "nsec":
        pol = write_policy(tmp_path / "p.yaml", "example.", nsec3=True, optout=True)
        extra += ["--policy", str(pol)]
    prev = tmp_path / "prev.signed"
    _sign(s, prev, False, *extra)
    lines = [  # a changed NS in every 20th delegation, one delegation gone, one added
        ln.replace(" NS b.", " NS c.") if ln.startswith("d") and int(ln[1:7]) % 20 == 0 else ln
        for ln in text.splitlines()
        if not ln.startswith("d000042 ")
    ]
    lines.insert(200, "d000042a NS ns1.example.net.")
    s.zone.write_text("\n".join(lines) + "\n")
    extra += ["--previous", str(prev), "--now", str(NOW + 3600)]
    sums = []
    for pure in (False, True):
        summary = tmp_path / f"{pure}.json"
        sums.append(
            _sign(s, tmp_path / f"{pure}.signed", pure, *extra, "--summary-json", str(summary))
        )
        info = json.loads(summary.read_text())
        assert info["incremental"]["used"] and info["sign_processes"] == 2, info
    (compiled, ci), (pure_sum, pi) = sums
    assert ci["compiled"] is True and pi["compiled"] is False
    assert all(str(f).endswith(_accel.ext_suffix()) for f in ci["files"])  # type: ignore[attr-defined]
    assert compiled == pure_sum


def _manifest(build: Path, **change: object) -> None:
    build.mkdir(parents=True, exist_ok=True)
    m: dict[str, object] = {"ext_suffix": _accel.ext_suffix(), "sources": _accel.source_hashes()}
    m.update(change)
    (build / _accel.MANIFEST).write_text(json.dumps(m))


def test_pure_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _manifest(tmp_path)
    monkeypatch.setattr(_accel, "BUILD_DIR", tmp_path)
    monkeypatch.setenv(_accel.PURE_ENV, "1")
    assert _accel._decide() == (False, "ZONESIGNER_PURE is set")
    monkeypatch.setenv(_accel.PURE_ENV, "0")  # "0" does not force pure Python
    assert _accel._decide() != (False, "ZONESIGNER_PURE is set")


def test_no_build_is_silent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    monkeypatch.setattr(_accel, "BUILD_DIR", tmp_path / "none")
    assert _accel._decide() == (False, "not built")
    assert capsys.readouterr().err == ""


def test_stale_build_is_refused_loudly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build whose recorded source hash differs from today's source is not loaded."""
    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    sources = _accel.source_hashes()
    sources["signer.zone.output"] = "0" * 64  # output.py edited after the build
    _manifest(tmp_path, sources=sources)
    monkeypatch.setattr(_accel, "BUILD_DIR", tmp_path)
    compiled, why = _accel._decide()
    assert not compiled and why == "stale: signer/zone/output.py changed since the build"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "running pure Python" in err and "output.py" in err


def test_stale_c_extension_is_refused_loudly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The C renderer's source is guarded like the modules': an edited _render.c means the
    whole build is left unused."""
    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    sources = _accel.source_hashes()
    assert "signer.zone._render" in sources
    sources["signer.zone._render"] = "0" * 64
    _manifest(tmp_path, sources=sources)
    monkeypatch.setattr(_accel, "BUILD_DIR", tmp_path)
    compiled, why = _accel._decide()
    assert not compiled and why == "stale: signer/zone/_render.c changed since the build"
    assert "_render.c" in capsys.readouterr().err


def test_build_for_another_python_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    _manifest(tmp_path, ext_suffix=".cpython-39-x86_64-linux-gnu.so")
    monkeypatch.setattr(_accel, "BUILD_DIR", tmp_path)
    compiled, why = _accel._decide()
    assert not compiled and "another Python" in why
    assert "another Python" in capsys.readouterr().err


def test_fresh_manifest_without_libraries_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest matching the sources but no loadable shared library: pure Python."""
    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    monkeypatch.delitem(sys.modules, f"{_accel.GROUP}__mypyc", raising=False)
    _manifest(tmp_path)
    monkeypatch.setattr(_accel, "BUILD_DIR", tmp_path)
    compiled, why = _accel._decide()
    assert not compiled and why.startswith("cannot be loaded")
    assert "cannot be loaded" in capsys.readouterr().err


def test_build_without_a_compiler_says_so_and_succeeds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert _accel_build.missing_tools() == "no C compiler (/nonexistent/cc)"
    assert _accel_build.main([]) == 0
    out = capsys.readouterr().out
    assert out == "accel: no C compiler (/nonexistent/cc): zonesigner runs as pure Python\n"


def test_build_in_use_is_up_to_date() -> None:
    """What this process imported is the build of today's sources (make rebuilds it)."""
    if not _accel.status()[0]:
        pytest.skip(f"no compiled modules in use ({_accel.status()[1]}): run `make accel`")
    assert _accel_build.up_to_date()
    import signer.zone.signing

    assert signer.zone.signing.__file__.endswith(_accel.ext_suffix())


def _except_names(tree: ast.AST) -> list[tuple[str, int, str, set[str]]]:
    """(function, line, name, exception types) where one function binds an ``except ... as``
    name to more than one exception type."""
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        seen: dict[str, set[str]] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
                seen.setdefault(node.name, set()).add(ast.unparse(node.type))
        found += [(fn.name, fn.lineno, n, ts) for n, ts in seen.items() if len(ts) > 1]
    return found


def test_compiled_modules_give_each_caught_exception_its_own_name() -> None:
    # mypyc types an ``except X as exc`` name by its first clause: a later ``except Y as exc``
    # in the same function then fails with TypeError when Y is caught (incremental._child
    # once died so: "Fallback object expected; got ZoneVerificationFailed")
    problems = {
        m: _except_names(ast.parse((_accel.SOURCE_DIR / f"{m}.py").read_text()))
        for m in _accel.MODULES
    }
    assert not {m: p for m, p in problems.items() if p}
    sample = "def f():\n try: g()\n except OSError as e: pass\n except KeyError as e: pass\n"
    assert _except_names(ast.parse(sample)) == [("f", 1, "e", {"OSError", "KeyError"})]
