"""Every requirement ID the code declares has a failing-case test.

The IDs are collected from the source of signer/ and ceremony/ (by parsing it, not by running
it), in every form the code declares them:

* ``requirement = "ID"`` class attributes (CheckFailed subclasses);
* ``requirement="ID"`` keyword arguments (``CheckFailed(..., requirement="ID")``);
* ``_check("ID")`` (signer/bundles/checks.py builds its error classes so);
* ``<failures>.add("ID", message)`` (signer/zone/verify.py collects failures so);
* ``log.warning("ID: ...")`` / ``log.error("ID: ...")`` (IDs that only warn, e.g.
  SIGNER-BUNDLE-WARNING, ZONE-OCCLUDED).

A test "covers" an ID when the ID is written, in a test file other than this one, in a failing
-case context: inside an ``assert``, inside ``pytest.raises(...)`` (``match=``), in the
arguments of a helper of that test file that asserts or expects a raise (``_refused("ID",
...)``), or in the ``parametrize`` table of a test that asserts (directly or through a
module-level table the decorator names).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
ID = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
LOG_ID = re.compile(r"^([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+): ")

# Base classes: their ID is the default of a family whose members carry their own IDs. They are
# not requirements of their own (each entry must still be declared, so this list cannot rot).
BASES = {
    "CHECK": "signer.errors.CheckFailed, the base of every check error",
    "AUDIT": "ceremony.audit.AuditFailed, the base of the AUDIT-* errors",
    "CER-PLAN": "ceremony.plan.PlanLintFailed, the base of CER-ROLE-*/CER-QUORUM-REACHABLE",
    "ZONE-RULE": "signer.zone.rules base error; raised only with requirement=ZONE-*",
    "ZONE-VERIFY": "signer.zone.verify error; its requirement is the first failure's ZONE-VERIFY-*",
}


@dataclass(frozen=True)
class Declared:
    id: str
    where: str  # file:line


def _declarations(path: Path) -> Iterator[Declared]:
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(ROOT)

    def const(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return None

    for node in ast.walk(tree):
        found: list[str] = []
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "requirement" for t in node.targets)
        ) or (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "requirement"
        ):
            found.append(const(node.value) or "")
        elif isinstance(node, ast.Call):
            found += [const(k.value) or "" for k in node.keywords if k.arg == "requirement"]
            func = node.func
            first = const(node.args[0]) if node.args else None
            if first is not None:
                if (isinstance(func, ast.Name) and func.id == "_check") or (
                    isinstance(func, ast.Attribute) and func.attr == "add" and ID.match(first)
                ):
                    found.append(first)
                elif isinstance(func, ast.Attribute) and func.attr in ("warning", "error"):
                    m = LOG_ID.match(first)
                    if m:
                        found.append(m.group(1))
        for rid in found:
            if rid and (ID.match(rid) or rid in BASES):
                yield Declared(rid, f"{rel}:{node.lineno}")


def declared_ids() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for top in ("signer", "ceremony"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for d in _declarations(path):
                out.setdefault(d.id, []).append(d.where)
    return out


def _asserts(fn: ast.AST) -> bool:
    """Does this function assert something or expect a raise?"""
    for n in ast.walk(fn):
        if isinstance(n, ast.Assert):
            return True
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "raises"
        ):
            return True
    return False


def _failing_case_strings(path: Path) -> set[str]:
    """The string constants of a test file that sit in a failing-case context."""
    tree = ast.parse(path.read_text(), str(path))
    parent: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parent[child] = node
    functions = {
        n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    checking_helpers = {name for name, fn in functions.items() if _asserts(fn)}
    # module-level tables named in the parametrize decorator of a test that asserts
    tables: set[str] = set()
    param_nodes: set[ast.AST] = set()
    for fn in functions.values():
        if not _asserts(fn):
            continue
        for deco in fn.decorator_list:
            if isinstance(deco, ast.Call) and "parametrize" in ast.unparse(deco.func):
                for n in ast.walk(deco):
                    param_nodes.add(n)
                    if isinstance(n, ast.Name):
                        tables.add(n.id)

    def in_context(node: ast.AST) -> bool:
        cur: ast.AST | None = node
        while cur is not None:
            if isinstance(cur, ast.Assert) or cur in param_nodes:
                return True
            if isinstance(cur, ast.Call):
                f = cur.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name == "raises" or name in checking_helpers:
                    return True
            if isinstance(cur, (ast.Assign, ast.AnnAssign)) and parent.get(cur) is tree:
                targets = cur.targets if isinstance(cur, ast.Assign) else [cur.target]
                return any(isinstance(t, ast.Name) and t.id in tables for t in targets)
            cur = parent.get(cur)
        return False

    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and in_context(n)
    }


def covered_ids(ids: set[str]) -> dict[str, list[str]]:
    """ID -> the test files that cover it."""
    me = Path(__file__).resolve()
    out: dict[str, list[str]] = {i: [] for i in ids}
    pats = {i: re.compile(rf"(?<![A-Z0-9-]){re.escape(i)}(?![A-Z0-9-])") for i in ids}
    for path in sorted(TESTS.glob("*.py")):
        if path.resolve() == me:
            continue
        strings = _failing_case_strings(path)
        for i, pat in pats.items():
            if any(pat.search(s) for s in strings):
                out[i].append(path.name)
    return out


DECLARED = declared_ids()


def test_the_collector_finds_every_declaration_form() -> None:
    """A guard against a collector that silently finds nothing: one ID of each form."""
    for rid in (
        "KSR-MANIFEST",  # requirement = "..."
        "ZONE-APEX-SOA",  # requirement="..."
        "KSR-POLICY-SIG-OVERLAP",  # _check("...")
        "ZONE-VERIFY-NSEC-CHAIN",  # failures.add("...", ...)
        "SIGNER-BUNDLE-WARNING",  # log.warning("ID: ...")
    ):
        assert rid in DECLARED, rid
    assert len(DECLARED) >= 60


def test_bases_are_still_declared() -> None:
    missing = sorted(set(BASES) - set(DECLARED))
    assert not missing, f"BASES lists IDs the code no longer declares: {missing}"


def test_context_rules_reject_a_bare_mention(tmp_path: Path) -> None:
    """A mention outside a failing-case context (a comment, a docstring, a print) does not
    count; inside assert / pytest.raises / an asserting helper / parametrize it does."""
    f = tmp_path / "test_x.py"
    f.write_text(
        '"""X-DOC-ONE"""\n'
        "import pytest\n"
        "# X-COMMENT-TWO\n"
        "def _refused(rid): \n    assert rid\n"
        "def _show(rid): \n    print(rid)\n"
        "TABLE = [('X-TABLE-THREE', 1)]\n"
        "OTHER = ['X-OTHER-FOUR']\n"
        "@pytest.mark.parametrize('rid', ['X-PARAM-FIVE'])\n"
        "def test_a(rid):\n"
        "    print('X-PRINT-SIX')\n"
        "    _show('X-SHOW-SEVEN')\n"
        "    _refused('X-HELPER-EIGHT')\n"
        "    with pytest.raises(ValueError, match='X-MATCH-NINE'):\n        pass\n"
        "    assert 'X-ASSERT-TEN' in rid\n"
        "@pytest.mark.parametrize('row', TABLE)\n"
        "def test_b(row):\n    assert row\n"
    )
    got = {s for s in _failing_case_strings(f) if s.startswith("X-")}
    assert got == {
        "X-TABLE-THREE",
        "X-PARAM-FIVE",
        "X-HELPER-EIGHT",
        "X-MATCH-NINE",
        "X-ASSERT-TEN",
    }


@pytest.mark.parametrize("rid", sorted(set(DECLARED) - set(BASES)))
def test_requirement_id_has_a_failing_case_test(rid: str) -> None:
    files = COVERED[rid]
    assert files, (
        f"{rid} (declared at {', '.join(DECLARED[rid])}) has no failing-case test: "
        "no test asserts it, expects it in pytest.raises, or names it in an asserting table"
    )


COVERED = covered_ids(set(DECLARED))


def test_bundle_ids_are_documented() -> None:
    """docs/bundles.md lists every ID of the key-bundle code (a table row `| ID | meaning |`)."""
    doc = (ROOT / "docs" / "bundles.md").read_text()
    rows = set(re.findall(r"^\| ([A-Z][A-Z0-9-]+) \| ", doc, re.MULTILINE))
    bundle_code = ("signer/bundles/", "ceremony/ksk.py", "signer/cli/signjob.py", "signer/rrsig.py")
    wanted = {
        rid
        for rid, places in DECLARED.items()
        if rid not in BASES and any(p.startswith(bundle_code) for p in places)
    } | {"VERIFY"}
    missing = sorted(wanted - rows)
    assert not missing, f"docs/bundles.md lacks a row for {missing}"
