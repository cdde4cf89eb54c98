"""The policy file is strict: every refusal names file:line and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from signer.bundles.policy import (
    PolicyError,
    load_ksk_policy,
    load_policy,
    parse_duration,
    parse_time,
)
from signer.cli.main import cli

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "bundles-policy.yaml"


def test_example_loads() -> None:
    p = load_policy(EXAMPLE)
    assert p.signer.nsec == "nsec3" and p.signer.bundle_warning == 14 * 86400
    assert p.ksk.bundle_count.max == 28 and p.window is not None
    assert load_ksk_policy(EXAMPLE) == p.ksk


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("  refresh: P5D", "  refresh: P1M", 0, "months"),
        ("  refresh: P5D", "  refresh: P1Y", 0, "months"),
        ("  start: 2026-01-01T00:00:00Z", "  start: 2026-01-01T00:00:00+01:00", 0, "UTC"),
        ("  start: 2026-01-01T00:00:00Z", "  start: 2026-01-01 00:00:00", 0, "UTC"),
        ("  jitter: PT12H", "  jiter: PT12H", 0, "unknown key 'jiter'"),
        ("  jitter: PT12H", "  jitter: PT12H\n  jitter: PT1H", 1, "duplicate key"),
        ("  nsec: nsec3", "  nsec: nsec4", 0, "nsec"),
        ("  serial: unixtime", "  serial: yes", 0, "serial"),
        ("zone: example.com.", "zone: example.com", 0, "absolute"),
        ("  length: P90D", "  length: P400D", 0, "max_length"),
        ("  bits: [256]", "  bits: [2048]", 0, "no size"),
        ("    - {sign: [ksk-2026]}", "    - {sign: [ksk-2099]}", 0, "not a key"),
    ],
)
def test_refusals_name_file_line(tmp_path: Path, old: str, new: str, line: int, words: str) -> None:
    text = EXAMPLE.read_text()
    assert old in text
    f = tmp_path / "p.yaml"
    f.write_text(text.replace(old, new, 1))
    with pytest.raises(PolicyError) as ei:
        load_policy(f)
    assert str(ei.value).startswith(f"{f}:{ei.value.line}: ")
    want = text[: text.index(old)].count("\n") + 1 + line
    assert ei.value.line == want, str(ei.value)
    assert words in str(ei.value)


def test_cli_bad_policy_exit_2_no_traceback(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(EXAMPLE.read_text().replace("refresh: P5D", "refresh: P1M"))
    r = CliRunner().invoke(
        cli, ["bundles", "request", "--policy", str(f), "--zsk", "x", "-o", str(tmp_path / "o")]
    )
    assert r.exit_code == 2
    assert "months" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_durations_and_times() -> None:
    assert parse_duration("P1DT12H") == 129600
    assert parse_duration("P2W") == 14 * 86400
    for bad in ("P", "PT", "P1.5D", "10D", "P1M", "P1Y2D"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_time("2026-01-01T00:00:00Z") == 1767225600
    for bad in ("2026-02-30T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00+00:00"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_empty_and_not_yaml(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("")
    with pytest.raises(PolicyError):
        load_policy(f)
    f.write_text("zone: [unclosed\n")
    with pytest.raises(PolicyError) as ei:
        load_policy(f)
    assert ei.value.line is not None
