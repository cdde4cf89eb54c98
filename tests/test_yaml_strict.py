"""Hand-written YAML (policies, ceremony plans, rehearsal answers) is plain: every explicit
tag (``!!binary``, ``!!python/...``, ``!!str``, custom ``!tag``) is refused with file:line,
exit 2, one line, before anything is constructed from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ceremony import plan as P
from ceremony.cli import cli as ceremony_cli
from signer.bundles.policy import PolicyError, load_ksk_policy, load_policy
from signer.cli.main import cli as zonesigner_cli
from signer.errors import InputError

REPO = Path(__file__).resolve().parent.parent
POLICY = (REPO / "docs" / "examples" / "bundles-policy.yaml").read_text()
MINI = (REPO / "tests" / "data" / "ceremony" / "mini.yaml").read_text()
CEREMONY = str(Path(sys.executable).parent / "ceremony")

TAGGED = [
    "!!binary UDVE",
    "!!python/object/apply:os.system ['touch PWNED']",
    "!!python/name:os.system",
    "!custom P5D",
    "!!str P5D",
    "!<tag:example.org,2026:x> P5D",
]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("value", TAGGED)
def test_policy_tag_refused(tmp_path: Path, value: str) -> None:
    text = POLICY.replace("  refresh: P5D", f"  refresh: {value}")
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    for load in (load_policy, load_ksk_policy):
        with pytest.raises(PolicyError) as e:
            load(path)
        assert e.value.path == str(path) and e.value.line == _line_of(text, "refresh:")
        assert "YAML tag" in str(e.value)
    r = CliRunner().invoke(
        zonesigner_cli, ["bundles", "plan", "--policy", str(path), "--zsk", "x.pem"]
    )
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"{path}:{_line_of(text, 'refresh:')}" in r.output and "YAML tag" in r.output
    assert not (tmp_path / "PWNED").exists()


def test_policy_tag_on_a_mapping_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("\nsigner:", "\nsigner: !!map", 1))
    with pytest.raises(PolicyError, match="YAML tag") as e:
        load_policy(path)
    assert e.value.line == _line_of(POLICY, "signer:")


@pytest.mark.parametrize("value", TAGGED)
def test_plan_tag_refused(tmp_path: Path, value: str) -> None:
    text = MINI.replace("  greeting: hello", f"  greeting: {value}")
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    line = _line_of(text, "greeting:")
    with pytest.raises(InputError, match="YAML tag") as e:
        P.load(path)
    assert e.value.path == str(path) and e.value.line == line
    # --set reads the plan first (to replace a value in place): the same refusal
    with pytest.raises(InputError, match="YAML tag") as e:
        P.load(path, variables={"greeting": "hi"})
    assert e.value.line == line
    out = tmp_path / "script.html"
    r = CliRunner().invoke(ceremony_cli, ["render", str(path), "--out", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"{path}:{line}" in r.output and not out.exists()
    assert not (tmp_path / "PWNED").exists()


def test_answers_tag_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(MINI)
    answers = tmp_path / "answers.yaml"
    answers.write_text("persons: {}\nsteps: !!python/object/apply:os.system ['touch PWNED']\n")
    r = subprocess.run(
        [CEREMONY, "run", str(plan), "--dir", str(tmp_path / "cer"), "--answers", str(answers)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    assert f"{answers}:2" in r.stderr and "YAML tag" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "PWNED").exists()


def test_plain_quoted_values_still_load(tmp_path: Path) -> None:
    """A quoted scalar carries YAML's non-specific tag '!': that is no explicit tag."""
    path = tmp_path / "plan.yaml"
    path.write_text(MINI.replace("  greeting: hello", '  greeting: "hello"'))
    assert P.load(path).metadata.id == "mini-2025-01"
