"""The plan: strict schema (file:line, exit 2), lint (exit 1), templating rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ceremony import plan as P
from signer.errors import InputError

DATA = Path(__file__).parent / "data" / "ceremony"
MINI = (DATA / "mini.yaml").read_text()
CEREMONY = str(Path(sys.executable).parent / "ceremony")


def _plan(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "plan.yaml"
    p.write_text(text)
    return p


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_mini_plan_loads() -> None:
    p = P.load(DATA / "mini.yaml")
    assert p.metadata.id == "mini-2025-01"
    assert [s.number for s in p.steps] == [1, 2, 3, 4, 5, 6]
    assert [s.section for s in p.steps] == [1, 1, 2, 2, 2, 3]
    assert p.step(3).action == "write-file" and p.step(3).id == "note"
    assert p.step(2).record[0].name == "number"
    assert p.quorum == P.Quorum("CO", 2, 3, p.quorum.line if p.quorum else 0)
    assert p.witness_role == "IW" and p.step(1).witness == "IW"
    assert p.equipment.tokens[0].serial == "0001"  # kept as written, not an int


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "  place: Test room",
            "  place: Test room\n  colour: blue",
            "colour",
            "unknown key 'colour'",
        ),
        (
            "  policy: Example DPS v1.0, section 5\n",
            "",
            "id: mini-2025-01",
            "missing required key 'policy'",
        ),
        (
            "      - manual: Place the token",
            "      - manul: Place the token",
            "manul",
            "unknown key 'manul'",
        ),
        (
            "        role: CA\n        id: bag",
            "        role: XX\n        id: bag",
            "role: XX",
            "unknown role 'XX'",
        ),
        (
            "      - action: wait",
            "      - action: teleport",
            "teleport",
            "unknown action 'teleport'",
        ),
        (
            "params: {seconds: 1}",
            "params: {seconds: 1, speed: 2}",
            "speed: 2",
            "unknown param 'speed'",
        ),
        ("params: {seconds: 1}", "params: {seconds: soon}", "seconds: soon", "must be int"),
        ("params: {seconds: 1}", "params: {}", "params: {}", "needs param 'seconds'"),
        (
            "({{ metadata.title }})",
            "({{ metadata.title }",
            "metadata.title }",
            "template syntax error",
        ),
        ("({{ metadata.title }})", "({{ secrets.pin }})", "secrets.pin", "unknown name(s) secrets"),
        ("({{ metadata.title }})", "({{ steps.note.file }})", "steps.note.file }})", "comes later"),
        ("({{ metadata.title }})", "({{ steps.nope.x }})", "steps.nope", "unknown step id 'nope'"),
        (
            "  zone: example.",
            "  zone: example.\n  zone: other.",
            "zone: other.",
            "duplicate key 'zone'",
        ),
        ("version: 1", "version: 2", "version: 2", "unsupported plan version 2"),
        ("initials: WW", "initials: AA", "Walter Witness", "share initials AA"),
        ("kind: crypto-officer", "kind: janitor", "janitor", "kind 'janitor' unknown"),
    ],
)
def test_schema_refusals_name_file_and_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    assert old in MINI
    text = MINI.replace(old, new, 1)
    path = _plan(tmp_path, text)
    with pytest.raises(InputError) as ei:
        P.load(path)
    assert message in str(ei.value)
    assert ei.value.path == str(path)
    assert ei.value.line == _line_of(text, needle), str(ei.value)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = _plan(tmp_path, MINI.replace("  place: Test room", "  place: [Test room"))
    with pytest.raises(InputError) as ei:
        P.load(path)
    assert ei.value.line is not None and "YAML" in str(ei.value)


def test_role_separation_lint(tmp_path: Path) -> None:
    text = MINI.replace(
        "{name: Alice Admin, initials: AA, roles: [CA]}",
        "{name: Alice Admin, initials: AA, roles: [CA, IW]}",
    )
    p = P.load(_plan(tmp_path, text), check_lint=False)
    with pytest.raises(P.RoleSeparationViolated) as ei:
        P.lint(p)
    assert "CER-ROLE-SEPARATION" in str(ei.value) and "Alice Admin" in str(ei.value)
    assert f":{_line_of(text, 'Alice Admin')}:" in str(ei.value)


def test_quorum_unreachable_lint(tmp_path: Path) -> None:
    with pytest.raises(P.QuorumUnreachable, match=r"CER-QUORUM-REACHABLE.*needs 4 of CO"):
        P.load(
            _plan(
                tmp_path, MINI.replace("quorum: {role: CO, m: 2, n: 3}", "quorum: {role: CO, m: 4}")
            )
        )
    with pytest.raises(P.QuorumUnreachable, match="n=5 but the roster has 3"):
        P.load(_plan(tmp_path, MINI.replace("m: 2, n: 3", "m: 2, n: 5")))


def test_role_not_staffed_lint(tmp_path: Path) -> None:
    text = MINI.replace(
        "  CO: {title: Crypto Officer, kind: crypto-officer}",
        "  CO: {title: Crypto Officer, kind: crypto-officer}\n  SC: {title: Safe Controller, kind: safe-controller}",
    )
    text = text.replace(
        "      - manual: Place the token in bag TEB-300 and seal it.\n        role: CA",
        "      - manual: Place the token in bag TEB-300 and seal it.\n        role: SC",
    )
    with pytest.raises(P.RoleNotStaffed, match=r"CER-ROLE-STAFFED: .*step 6 needs role SC"):
        P.load(_plan(tmp_path, text))


def test_render_value_is_sandboxed_and_strict() -> None:
    with pytest.raises(InputError, match="has no attribute 'nothing'"):
        P.render_value("{{ vars.nothing }}", {"vars": {}})
    with pytest.raises(InputError):
        P.render_value("{{ ''.__class__.__mro__ }}", {})
    assert P.render_value({"a": ["{{ vars.x }}!"]}, {"vars": {"x": 1}}) == {"a": ["1!"]}


@pytest.mark.parametrize(
    ("old", "new", "code", "needle"),
    [
        ("  place: Test room", "  place: Test room\n  colour: blue", 2, "colour"),
        (
            "{name: Alice Admin, initials: AA, roles: [CA]}",
            "{name: Alice Admin, initials: AA, roles: [CA, IW]}",
            1,
            "Alice Admin",
        ),
    ],
)
def test_cli_exit_codes_no_traceback(
    tmp_path: Path, old: str, new: str, code: int, needle: str
) -> None:
    text = MINI.replace(old, new, 1)
    path = _plan(tmp_path, text)
    proc = subprocess.run(
        [CEREMONY, "run", str(path), "--dir", str(tmp_path / "c"), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{path}:{_line_of(text, needle)}:" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()
