"""Every command that reads a file, given a missing, empty or binary-garbage file: one line
naming the file, exit 2 (input error), no traceback, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ceremony.cli import cli as ceremony_cli
from signer.cli.main import cli as zonesigner_cli

REPO = Path(__file__).resolve().parent.parent
POLICY = str(REPO / "scripts" / "policies" / "example-quarter.yaml")
MINI = str(REPO / "tests" / "data" / "ceremony" / "mini.yaml")

# (which CLI, arguments; BAD stands for the file under test)
COMMANDS = [
    ("zonesigner", ["bundles", "show", "BAD"]),
    ("zonesigner", ["bundles", "plan", "--policy", "BAD", "--zsk", "x.pem"]),
    ("zonesigner", ["bundles", "plan", "--policy", POLICY, "--zsk", "BAD"]),
    ("zonesigner", ["bundles", "plan", "--policy", POLICY, "--zsk", "BAD", "--previous", "BAD"]),
    ("zonesigner", ["bundles", "request", "--policy", POLICY, "--zsk", "BAD", "-o", "OUT"]),
    ("zonesigner", ["bundles", "import", "--policy", "BAD", "--request", "BAD", "BAD"]),
    (
        "zonesigner",
        [
            *("bundles", "import", "--policy", POLICY, "--request", "BAD"),
            *("--trust-anchor-file", "BAD", "-o", "OUT", "BAD"),
        ],
    ),
    ("zonesigner", ["key", "show", "BAD"]),
    ("zonesigner", ["key", "ds", "BAD"]),
    ("ceremony", ["sign-request", "--policy", "BAD", "-o", "OUT", "BAD"]),
    ("ceremony", ["sign-request", "--policy", POLICY, "-o", "OUT", "BAD"]),
    ("ceremony", ["render", "BAD", "--out", "OUT"]),
    ("ceremony", ["run", "BAD", "--dir", "OUTDIR"]),
    ("ceremony", ["run", MINI, "--dir", "OUTDIR", "--answers", "BAD"]),
]


def _bad(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"{kind}.file"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "garbage":
        p.write_bytes(bytes(range(256)) * 8 + os.urandom(64))
    return p  # "missing": not created


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage"])
@pytest.mark.parametrize(
    ("which", "args"), COMMANDS, ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else v
)
def test_bad_file_is_one_line_exit_2(
    tmp_path: Path, which: str, args: list[str], kind: str
) -> None:
    bad = _bad(tmp_path, kind)
    out = tmp_path / "out"
    argv = [
        str(bad)
        if a == "BAD"
        else str(out)
        if a == "OUT"
        else str(tmp_path / "cer")
        if a == "OUTDIR"
        else a
        for a in args
    ]
    cli = zonesigner_cli if which == "zonesigner" else ceremony_cli
    r = CliRunner().invoke(cli, argv)
    assert isinstance(r.exception, SystemExit), (argv, r.output, r.exception)
    assert r.exit_code == 2, (argv, r.output)
    lines = [ln for ln in r.output.splitlines() if ln.startswith(f"{which}: error:")]
    assert len(lines) == 1, (argv, r.output)
    assert "Traceback" not in r.output
    assert not out.exists() and not Path(f"{out}.json").exists()


def test_directory_or_file_in_the_wrong_place_is_a_usage_error(tmp_path: Path) -> None:
    for cli, argv in (
        (zonesigner_cli, ["bundles", "show", str(tmp_path)]),
        (ceremony_cli, ["render", str(tmp_path), "--out", str(tmp_path / "o.html")]),
        (ceremony_cli, ["audit", "verify", MINI]),
    ):
        r = CliRunner().invoke(cli, argv)
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
