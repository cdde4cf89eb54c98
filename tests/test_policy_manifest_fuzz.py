"""Bounded fuzzing of the policy YAML and manifest JSON readers.

Any mutation of a valid policy file either loads (and then plans without crashing) or is
refused with InputError (file:line, exit 2); any mutation of a request or response manifest
either is accepted or is refused with InputError (malformed: exit 2) or a CheckFailed naming a
KSR-*/SKR-* ID (does not describe its file: exit 1) -- never another exception.
Derandomized, 200 examples each: a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signer.algorithms import Algorithm
from signer.bundles.checks import check_request
from signer.bundles.importer import import_response
from signer.bundles.planner import PlannedZsk, plan_request
from signer.bundles.policy import load_ksk_policy, load_policy, parse_time
from signer.bundles.request import read_request
from signer.dnskey import DsRecord
from signer.errors import CheckFailed, InputError
from signer.keys.soft import SoftKey
from tests.fuzzkit import byte_ops, fuzz_settings, mutate
from tests.manifestkit import NOW, Exchange, make_exchange

REPO = Path(__file__).resolve().parent.parent
POLICY_SEEDS = [
    REPO / "docs" / "examples" / "bundles-policy.yaml",
    REPO / "scripts" / "policies" / "example-quarter.yaml",
    REPO / "scripts" / "policies" / "example-9-months.yaml",
]
ZSK = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)

FUZZ = fuzz_settings(200)

YAML_TOKENS = [
    b":",
    b": ",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"? ",
    b"!!python/object/apply:os.system ['true']",
    b"!!binary ",
    b"%YAML 1.1\n---\n",
    b"\n---\n",
    b"\n...\n",
    b"|\n  ",
    b">\n  ",
    b"#",
    b"'",
    b'"',
    b"\\",
    b"\n",
    b"\n  ",
    b"\t",
    b"null",
    b"~",
    b"yes",
    b"0x10",
    b"1e3",
    b"-1",
    b"99999999999999999999999",
    b"P1M",
    b"P1Y",
    b"PT",
    b"P99999999999999999999D",
    b"P0D",
    b"2026-13-01T00:00:00Z",
    b"9999-12-31T23:59:59Z",
    b"1970-01-01T00:00:00Z",
    b"2026-01-01T00:00:00+01:00",
    b"RSASHA1",
    b"ED448",
    b"min: ",
    b"max: ",
    b"257 3 13 AAAA",
    b"256 3 8 AwEAAQ==",
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    "\u0665".encode(),
]

op = byte_ops(YAML_TOKENS)


scalar_text = st.one_of(
    st.sampled_from([t.decode("utf-8", "replace") for t in YAML_TOKENS]),
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
)


def replace_values(seed: str, edits: list[tuple[float, str]]) -> str:
    """Replace the value of some ``key: value`` lines (keeps the YAML mostly well-formed)."""
    lines = seed.splitlines()
    keyed = [
        i for i, line in enumerate(lines) if ": " in line and not line.lstrip().startswith("#")
    ]
    for where, value in edits:
        i = keyed[min(int(where * len(keyed)), len(keyed) - 1)]
        key = lines[i].split(": ", 1)[0]
        lines[i] = f"{key}: {value}"
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_and_plan(path: Path) -> None:
    """Load (whole and KSK side); a policy that loads must also plan or refuse cleanly."""
    try:
        policy = load_policy(path)
    except InputError as exc:
        assert exc.path == str(path), str(exc)
        return
    assert load_ksk_policy(path) == policy.ksk
    if policy.window is None:
        return
    with contextlib.suppress(InputError, CheckFailed):
        plan_request(policy, [PlannedZsk(ZSK)], policy.window)


@FUZZ
@given(st.sampled_from(POLICY_SEEDS), st.lists(op, min_size=1, max_size=6))
def test_fuzz_policy_bytes(workdir: Path, seed: Path, ops: list[tuple[str, float, object]]) -> None:
    f = workdir / "policy.yaml"
    f.write_bytes(mutate(seed.read_bytes(), ops))
    _load_and_plan(f)


@FUZZ
@given(
    st.sampled_from(POLICY_SEEDS),
    st.lists(st.tuples(st.floats(0, 1), scalar_text), min_size=1, max_size=3),
)
def test_fuzz_policy_values(workdir: Path, seed: Path, edits: list[tuple[float, str]]) -> None:
    f = workdir / "policy.yaml"
    f.write_text(replace_values(seed.read_text(), edits), encoding="utf-8", errors="surrogatepass")
    _load_and_plan(f)


def test_policy_seeds_load() -> None:
    for seed in POLICY_SEEDS:
        p = load_policy(seed)
        assert p.window is not None
        plan_request(p, [PlannedZsk(ZSK)], p.window)


# --------------------------------------------------------------------------------------------
# Manifests


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Exchange:
    return make_exchange(tmp_path_factory.mktemp("exchange"))


@pytest.fixture(scope="module")
def fresh(exchange: Exchange, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory the fuzz cases copy the exchange into (so every case starts clean)."""
    yield tmp_path_factory.mktemp("case")


json_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.sampled_from(["P1D", "P1M", "2026-01-01T00:00:00Z", "a" * 64, "example.com."]),
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=6,
)


def _json_edit(data: Any, draw: st.DataObject) -> Any:
    """Walk to a random place in ``data`` and replace, delete or add something there."""
    path: list[Any] = []
    node = data
    while isinstance(node, (dict, list)) and node and draw.draw(st.integers(0, 9)) > 1:
        key = draw.draw(
            st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
        )
        path.append(key)
        node = node[key]
    action = draw.draw(st.sampled_from(["replace", "delete", "add", "perturb", "perturb"]))
    if action == "perturb" and path and isinstance(node, (int, str)) and not isinstance(node, bool):
        # a plausible forgery: the same kind of value, slightly changed
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(node, int):
            parent[path[-1]] = node + draw.draw(st.sampled_from([-86400, -1, 1, 3600, 2**32]))
        elif node:
            i = draw.draw(st.integers(0, len(node) - 1))
            c = draw.draw(st.sampled_from("0aZ9 .-=+/"))
            parent[path[-1]] = node[:i] + c + node[i + 1 :]
        return data
    if action == "perturb":
        action = "replace"
    if not path:
        if action == "add" and isinstance(data, dict):
            data[draw.draw(st.text(max_size=8))] = draw.draw(json_value)
            return data
        return draw.draw(json_value) if action == "replace" else data
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "replace":
        parent[last] = draw.draw(json_value)
    elif action == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[draw.draw(st.text(max_size=8))] = draw.draw(json_value)
    else:
        parent.insert(last, draw.draw(json_value))
    return data


def _copy(ex: Exchange, where: Path) -> Exchange:
    for f in where.iterdir():
        f.unlink()
    for f in (ex.ksr, ex.ksr_manifest, ex.skr, ex.skr_manifest):
        shutil.copy(f, where / f.name)
    return Exchange(
        where, ex.policy, ex.zsk, ex.ksk, where / ex.ksr.name, where / ex.skr.name, ex.anchor
    )


def _read_and_check(ex: Exchange) -> None:
    """The KSK side: read the request with its manifest, run the KSR-* checks."""
    try:
        request, _ = read_request(ex.ksr)
    except InputError as exc:
        assert exc.path == str(ex.ksr_manifest), str(exc)
        return
    except CheckFailed as exc:
        assert exc.requirement == "KSR-MANIFEST", str(exc)
        return
    try:
        check_request(
            request, load_ksk_policy(ex.policy), now=parse_time(NOW), previous=None, disabled=set()
        )
    except CheckFailed as exc:
        assert exc.requirement.startswith("KSR-"), str(exc)


def _import(ex: Exchange) -> None:
    """The signer side: import the response against the request."""
    try:
        import_response(ex.skr, ex.ksr, [DsRecord.from_text(ex.anchor)], margin=2 * 86400)
    except InputError as exc:
        assert exc.path in (str(ex.skr_manifest), str(ex.ksr_manifest)), str(exc)
    except CheckFailed as exc:
        assert exc.requirement.startswith(("SKR-", "KSR-MANIFEST")), str(exc)


@FUZZ
@given(st.lists(op, min_size=1, max_size=6))
def test_fuzz_request_manifest_bytes(
    exchange: Exchange, fresh: Path, ops: list[tuple[str, float, object]]
) -> None:
    ex = _copy(exchange, fresh)
    ex.ksr_manifest.write_bytes(mutate(ex.ksr_manifest.read_bytes(), ops))
    _read_and_check(ex)


@FUZZ
@given(st.data())
def test_fuzz_request_manifest_json(exchange: Exchange, fresh: Path, data: st.DataObject) -> None:
    ex = _copy(exchange, fresh)
    m = _json_edit(json.loads(ex.ksr_manifest.read_text()), data)
    ex.ksr_manifest.write_text(json.dumps(m))
    _read_and_check(ex)


@FUZZ
@given(st.lists(op, min_size=1, max_size=6))
def test_fuzz_response_manifest_bytes(
    exchange: Exchange, fresh: Path, ops: list[tuple[str, float, object]]
) -> None:
    ex = _copy(exchange, fresh)
    ex.skr_manifest.write_bytes(mutate(ex.skr_manifest.read_bytes(), ops))
    _import(ex)


@FUZZ
@given(st.data())
def test_fuzz_response_manifest_json(exchange: Exchange, fresh: Path, data: st.DataObject) -> None:
    ex = _copy(exchange, fresh)
    m = _json_edit(json.loads(ex.skr_manifest.read_text()), data)
    ex.skr_manifest.write_text(json.dumps(m))
    _import(ex)


def test_manifest_seeds_are_accepted(exchange: Exchange, fresh: Path) -> None:
    """Unmutated, both sides accept the exchange (so the fuzzers start from good files)."""
    ex = _copy(exchange, fresh)
    request, manifest = read_request(ex.ksr)
    assert manifest is not None and len(request.bundles) == 9
    check_request(
        request, load_ksk_policy(ex.policy), now=parse_time(NOW), previous=None, disabled=set()
    )
    resp = import_response(ex.skr, ex.ksr, [DsRecord.from_text(ex.anchor)], margin=2 * 86400)
    assert len(resp.bundles) == 9
