"""A bad or tampered manifest (the JSON beside a KSR or SKR) is refused through the CLIs.

Malformed (truncated JSON, extra or missing keys, a value of the wrong kind, PGP words that do
not spell the hash): InputError, exit 2, naming the manifest. Well-formed but not describing its
file (hash, zone, bundles, window): exit 1 with KSR-MANIFEST (KSK side, ``ceremony
sign-request``) or SKR-REQUEST-HASH / SKR-MANIFEST (signer side, ``zonesigner bundles
import``). A forged proof of possession with a consistent manifest: KSR-BUNDLE-POP. In every
case nothing is written and no traceback is shown.

Software keys stand in for the tokens: every refusal here happens before a key is used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import dns.name
import pytest

from signer.algorithms import Algorithm
from signer.bundles import textformat
from signer.bundles.manifest import bundle_sha256, hashed
from signer.keys.soft import SoftKey
from signer.rrsig import sign_rrset
from tests.manifestkit import (
    Exchange,
    dump_json,
    import_args,
    invoke,
    load_json,
    make_exchange,
    sign_args,
)

Edit = Callable[[Exchange, dict[str, Any]], None]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Exchange:
    return make_exchange(tmp_path_factory.mktemp("exchange"))


def _copy(base: Exchange, where: Path) -> Exchange:
    for f in (base.ksr, base.ksr_manifest, base.skr, base.skr_manifest):
        (where / f.name).write_bytes(f.read_bytes())
    return Exchange(
        where,
        base.policy,
        base.zsk,
        base.ksk,
        where / base.ksr.name,
        where / base.skr.name,
        base.anchor,
    )


def _only_one_line_no_traceback(output: str, marker: str) -> None:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "error:" in line]
    assert len(lines) == 1 and marker in lines[0], output


# --------------------------------------------------------------------------------------------
# Request manifest edits (the KSK side refuses before a KSK is opened)


def _set_file_hash(ex: Exchange, m: dict[str, Any]) -> None:
    m["file_hash"] = hashed(hashlib.sha256(b"another request").hexdigest())


def _move_window(ex: Exchange, m: dict[str, Any]) -> None:
    m["window"]["end"] = "2027-01-01T00:00:00Z"  # after the last bundle expires


def _window_reversed(ex: Exchange, m: dict[str, Any]) -> None:
    m["window"]["start"], m["window"]["end"] = m["window"]["end"], m["window"]["start"]


def _bundle_times(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][3]["expiration"] += 86400


def _bundle_id(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][0]["id"] = "999-0"


def _bundle_dropped(ex: Exchange, m: dict[str, Any]) -> None:
    del m["bundles"][-1]


def _zone(ex: Exchange, m: dict[str, Any]) -> None:
    m["zone"] = "example.net."


def _pop_swapped(ex: Exchange, m: dict[str, Any]) -> None:
    # bundle 2's proof in bundle 1: the bundle hash no longer matches
    m["bundles"][0]["proof_of_possession"] = m["bundles"][1]["proof_of_possession"]


def _pop_forged(ex: Exchange, m: dict[str, Any]) -> None:
    """Bundle 1's proof replaced by a signature of another key; the bundle hash recomputed so
    the manifest is consistent: only the proof-of-possession check can see it."""
    zone = dns.name.from_text("example.com.")
    req = textformat.load_request(ex.ksr)
    b = req.bundles[0]
    other = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    sig = sign_rrset(b.dnskey_rrset(zone), other, zone, b.inception, b.expiration)
    m["bundles"][0]["proof_of_possession"] = [sig.to_text()]
    m["bundles"][0]["hash"] = hashed(bundle_sha256(replace(b, signatures=(sig,))))


def _pop_removed(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][2]["proof_of_possession"] = []
    b = textformat.load_request(ex.ksr).bundles[2]
    m["bundles"][2]["hash"] = hashed(bundle_sha256(replace(b, signatures=())))


def _extra_top_key(ex: Exchange, m: dict[str, Any]) -> None:
    m["comment"] = "harmless?"


def _extra_bundle_key(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][4]["keys"] = []


def _missing_key(ex: Exchange, m: dict[str, Any]) -> None:
    del m["window"]


def _wrong_kind(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][0]["inception"] = str(m["bundles"][0]["inception"])


def _pgp_words(ex: Exchange, m: dict[str, Any]) -> None:
    words = m["file_hash"]["pgp_words"].split()
    m["file_hash"]["pgp_words"] = " ".join(words[1:] + words[:1])


def _bad_pop_text(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][0]["proof_of_possession"] = ["DNSKEY 13 2 not-an-rrsig"]


def _kind(ex: Exchange, m: dict[str, Any]) -> None:
    m["kind"] = "response"


REQUEST_CASES: list[tuple[str, Edit, int, str]] = [
    ("wrong file hash", _set_file_hash, 1, "KSR-MANIFEST"),
    ("window after the bundles", _move_window, 1, "KSR-MANIFEST"),
    ("window reversed", _window_reversed, 1, "KSR-MANIFEST"),
    ("bundle times", _bundle_times, 1, "KSR-MANIFEST"),
    ("bundle id", _bundle_id, 1, "KSR-MANIFEST"),
    ("bundle dropped", _bundle_dropped, 1, "KSR-MANIFEST"),
    ("zone", _zone, 1, "KSR-MANIFEST"),
    ("proof swapped (hash differs)", _pop_swapped, 1, "KSR-MANIFEST"),
    ("proof forged, hash consistent", _pop_forged, 1, "KSR-BUNDLE-POP"),
    ("proof removed, hash consistent", _pop_removed, 1, "KSR-BUNDLE-POP"),
    ("extra top-level key", _extra_top_key, 2, "unknown key 'comment'"),
    ("extra bundle key", _extra_bundle_key, 2, "bundles[4]: unknown key 'keys'"),
    ("missing key", _missing_key, 2, "missing key 'window'"),
    ("wrong kind of value", _wrong_kind, 2, "bundles[0].inception must be a whole number"),
    ("PGP words", _pgp_words, 2, "pgp_words do not spell file_hash.sha256"),
    ("unparsable proof", _bad_pop_text, 2, "bad proof-of-possession RRSIG"),
    ("manifest of a response", _kind, 2, "expected a 'request'"),
]


@pytest.mark.parametrize(
    ("edit", "code", "marker"), [c[1:] for c in REQUEST_CASES], ids=[c[0] for c in REQUEST_CASES]
)
def test_sign_request_refuses_tampered_request_manifest(
    base: Exchange, tmp_path: Path, edit: Edit, code: int, marker: str
) -> None:
    ex = _copy(base, tmp_path)
    m = load_json(ex.ksr_manifest)
    edit(ex, m)
    dump_json(ex.ksr_manifest, m)
    out = tmp_path / "new.skr"
    r = invoke("ceremony", sign_args(ex.policy, ex.ksr, out))
    assert r.exit_code == code, r.output
    _only_one_line_no_traceback(r.output, marker)
    if code == 2:
        assert str(ex.ksr_manifest) in r.output  # names the file
    assert not out.exists() and not Path(f"{out}.json").exists()


def test_sign_request_refuses_changed_request_text(base: Exchange, tmp_path: Path) -> None:
    """The KSR itself edited (a record's TTL), its manifest untouched: KSR-MANIFEST."""
    ex = _copy(base, tmp_path)
    ex.ksr.write_text(ex.ksr.read_text().replace(" 3600 ", " 3601 ", 1))
    out = tmp_path / "new.skr"
    r = invoke("ceremony", sign_args(ex.policy, ex.ksr, out))
    assert r.exit_code == 1
    _only_one_line_no_traceback(r.output, "KSR-MANIFEST")
    assert "SHA-256 differs" in r.output
    assert not out.exists() and not Path(f"{out}.json").exists()


@pytest.mark.parametrize(
    ("cut", "line"), [(0.5, None), (0.0, 1)], ids=["truncated half-way", "empty"]
)
def test_truncated_manifests(base: Exchange, tmp_path: Path, cut: float, line: int | None) -> None:
    ex = _copy(base, tmp_path)
    for manifest in (ex.ksr_manifest, ex.skr_manifest):
        data = manifest.read_bytes()
        manifest.write_bytes(data[: int(len(data) * cut)])
    out = tmp_path / "new.skr"
    r = invoke("ceremony", sign_args(ex.policy, ex.ksr, out))
    assert r.exit_code == 2
    _only_one_line_no_traceback(r.output, "manifest is not valid JSON")
    assert f"{ex.ksr_manifest}:" in r.output  # file:line
    assert not out.exists()
    # the signer side, with a good request manifest and the truncated response manifest
    ex.ksr_manifest.write_bytes(base.ksr_manifest.read_bytes())
    installed = tmp_path / "installed.skr"
    r = invoke("zonesigner", import_args(ex.policy, ex.ksr, ex.skr, [ex.anchor], installed))
    assert r.exit_code == 2
    _only_one_line_no_traceback(r.output, f"{ex.skr_manifest}:")
    assert not installed.exists() and not Path(f"{installed}.json").exists()


def test_missing_request_manifest(base: Exchange, tmp_path: Path) -> None:
    ex = _copy(base, tmp_path)
    ex.ksr_manifest.unlink()
    out = tmp_path / "new.skr"
    r = invoke("ceremony", sign_args(ex.policy, ex.ksr, out))
    assert r.exit_code == 2
    _only_one_line_no_traceback(r.output, "manifest missing")
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Response manifest edits (the signer side refuses to install the response)


def _r_file_hash(ex: Exchange, m: dict[str, Any]) -> None:
    m["file_hash"] = hashed(hashlib.sha256(b"another response").hexdigest())


def _r_request_hash(ex: Exchange, m: dict[str, Any]) -> None:
    m["request_hash"] = hashed(hashlib.sha256(b"another request").hexdigest())


def _r_bundle_hash(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][5]["hash"] = m["bundles"][4]["hash"]


def _r_bundle_times(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"][0]["inception"] -= 3600


def _r_window(ex: Exchange, m: dict[str, Any]) -> None:
    m["window"]["start"] = "2026-01-02T00:00:00Z"


def _r_zone(ex: Exchange, m: dict[str, Any]) -> None:
    m["zone"] = "example.org."


def _r_bundle_dropped(ex: Exchange, m: dict[str, Any]) -> None:
    m["bundles"].pop()


def _r_extra(ex: Exchange, m: dict[str, Any]) -> None:
    m["ksks"]["k1"]["private_key"] = "..."


def _r_kind(ex: Exchange, m: dict[str, Any]) -> None:
    m["trust_anchors"] = "12345 13 2 AB"


RESPONSE_CASES: list[tuple[str, Edit, int, str]] = [
    ("wrong file hash", _r_file_hash, 1, "SKR-REQUEST-HASH"),
    ("another request", _r_request_hash, 1, "SKR-REQUEST-HASH"),
    ("bundle hash", _r_bundle_hash, 1, "SKR-MANIFEST"),
    ("bundle times", _r_bundle_times, 1, "SKR-MANIFEST"),
    ("bundle dropped", _r_bundle_dropped, 1, "SKR-MANIFEST"),
    ("window", _r_window, 1, "SKR-MANIFEST"),
    ("zone", _r_zone, 1, "SKR-MANIFEST"),
    ("extra key", _r_extra, 2, "ksks.k1: unknown key 'private_key'"),
    ("wrong kind of value", _r_kind, 2, "trust_anchors must be a list"),
]


@pytest.mark.parametrize(
    ("edit", "code", "marker"), [c[1:] for c in RESPONSE_CASES], ids=[c[0] for c in RESPONSE_CASES]
)
def test_import_refuses_tampered_response_manifest(
    base: Exchange, tmp_path: Path, edit: Edit, code: int, marker: str
) -> None:
    ex = _copy(base, tmp_path)
    m = load_json(ex.skr_manifest)
    edit(ex, m)
    dump_json(ex.skr_manifest, m)
    installed = tmp_path / "installed.skr"
    r = invoke("zonesigner", import_args(ex.policy, ex.ksr, ex.skr, [ex.anchor], installed))
    assert r.exit_code == code, r.output
    _only_one_line_no_traceback(r.output, marker)
    assert not installed.exists() and not Path(f"{installed}.json").exists()


def test_import_refuses_tampered_request_manifest(base: Exchange, tmp_path: Path) -> None:
    """Our own request's manifest changed after signing (its window): KSR-MANIFEST on import."""
    ex = _copy(base, tmp_path)
    m = load_json(ex.ksr_manifest)
    _move_window(ex, m)
    dump_json(ex.ksr_manifest, m)
    installed = tmp_path / "installed.skr"
    r = invoke("zonesigner", import_args(ex.policy, ex.ksr, ex.skr, [ex.anchor], installed))
    assert r.exit_code == 1
    _only_one_line_no_traceback(r.output, "KSR-MANIFEST")
    assert not installed.exists()


def test_untampered_exchange_is_accepted(base: Exchange, tmp_path: Path) -> None:
    """The control: the same copies, unedited, sign and import (exit 0, files written)."""
    ex = _copy(base, tmp_path)
    out = tmp_path / "again.skr"
    r = invoke("ceremony", sign_args(ex.policy, ex.ksr, out))
    assert r.exit_code == 0, r.output
    installed = tmp_path / "installed.skr"
    r = invoke("zonesigner", import_args(ex.policy, ex.ksr, ex.skr, [ex.anchor], installed))
    assert r.exit_code == 0, r.output
    assert installed.read_bytes() == ex.skr.read_bytes()
