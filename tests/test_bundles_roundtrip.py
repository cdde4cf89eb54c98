"""plan -> request -> sign -> import over real SoftHSM tokens, through both CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ceremony.cli import cli as ceremony_cli
from signer.bundles.importer import load_response_for_signer
from signer.bundles.response import select_bundle
from signer.cli.main import cli as zonesigner_cli
from signer.keys.pkcs11 import Pkcs11Token
from signer.pin import PinSource

POLICY = """\
zone: example.com.
signer:
  algorithm: ECDSAP256SHA256
  bundle_margin: P2D
  zsk_rollover: {{pre_publish: P10D, post_publish: P10D}}
ksk:
  algorithms: [ECDSAP256SHA256]
  dnskey_ttl: PT1H
  signature_validity: {{min: P21D, max: P21D}}
  bundle_spacing: P10D
  bundle_count: {{min: 9, max: 28}}
  overlap: {{min: P9D, max: P12D}}
  cycle: {{min: P79D, max: P271D}}
  horizon: P300D
  cds: {{cds: true, cdnskey: true, digest_types: [2]}}
  keys:
    old: {{key: "pkcs11:token=ksk-primary;object=ksk-old"}}
    new: {{key: "pkcs11:token=ksk-primary;object=ksk-new"}}
  schema:
{schema}
  ranges:
    zsk_algorithms: [ECDSAP256SHA256]
    zsk_bits: {{min: 256, max: 256}}
window:
  start: 2026-01-01T00:00:00Z
  length: {length}
"""

# KSK rollover (RFC 5011): publish new, new signs, old revoked, old gone
ROLL = """\
    - {sign: [old], publish: [new]}
    - {sign: [old], publish: [new]}
    - {sign: [new], publish: [old]}
    - {sign: [new], revoke: [old]}
    - {sign: [new]}"""


def _keys(lab) -> None:  # type: ignore[no-untyped-def]
    with Pkcs11Token(lab.uri("zsk"), PinSource(pin_file=str(lab.pin_file("zsk"))), rw=True) as t:
        t.generate("zsk-a", "ECDSAP256SHA256")
        t.generate("zsk-b", "ECDSAP256SHA256")
    pins = PinSource(pin_file=str(lab.pin_file("ksk-primary")))
    with Pkcs11Token(lab.uri("ksk-primary"), pins, rw=True) as t:
        t.generate("ksk-old", "ECDSAP256SHA256", ksk=True)
        t.generate("ksk-new", "ECDSAP256SHA256", ksk=True)


@pytest.mark.parametrize(("length", "count"), [("P90D", 9), ("P270D", 27)])
def test_round_trip_with_zsk_and_ksk_rollover(lab, tmp_path: Path, length: str, count: int) -> None:  # type: ignore[no-untyped-def]
    _keys(lab)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(schema=ROLL, length=length))
    ksr = tmp_path / "q.ksr"
    runner = CliRunner()
    r = runner.invoke(
        zonesigner_cli,
        [
            "bundles",
            "request",
            "--policy",
            str(policy),
            "--zsk",
            lab.uri("zsk", "zsk-a"),
            "--zsk",
            lab.uri("zsk", "zsk-b") + "@2026-02-10T00:00:00Z",
            "--pin-file",
            str(lab.pin_file("zsk")),
            "-o",
            str(ksr),
        ],
    )
    assert r.exit_code == 0, r.output
    manifest = json.loads(Path(f"{ksr}.json").read_text())
    assert len(manifest["bundles"]) == count
    assert all(b["proof_of_possession"] for b in manifest["bundles"])
    assert manifest["file_hash"]["pgp_words"]
    skr = tmp_path / "q.skr"
    r = runner.invoke(
        ceremony_cli,
        [
            "sign-request",
            "--policy",
            str(policy),
            "--now",
            "2025-12-20T00:00:00Z",
            "--pin-file",
            str(lab.pin_file("ksk-primary")),
            "-o",
            str(skr),
            str(ksr),
        ],
    )
    assert r.exit_code == 0, r.output
    text = skr.read_text()
    assert "CDS" in text and "CDNSKEY" in text
    anchors = json.loads(Path(f"{skr}.json").read_text())["trust_anchors"]
    args = []
    for a in anchors:
        args += ["--trust-anchor", a]
    installed = tmp_path / "installed.skr"
    r = runner.invoke(
        zonesigner_cli,
        [
            "bundles",
            "import",
            "--policy",
            str(policy),
            "--request",
            str(ksr),
            *args,
            "-o",
            str(installed),
            str(skr),
        ],
    )
    assert r.exit_code == 0, r.output
    assert installed.read_bytes() == skr.read_bytes()
    from signer.dnskey import DsRecord

    resp = load_response_for_signer(installed, [DsRecord.from_text(a) for a in anchors])
    assert len(resp.bundles) == count
    # ZSK rollover: b pre-published, then a post-published, then a gone
    tags = [sorted(k.key_tag for k in b.keys if not k.is_sep) for b in resp.bundles]
    assert len(tags[0]) == 1 and len(tags[3]) == 2 and len(tags[-1]) == 1 and tags[0] != tags[-1]
    # KSK rollover: the revoked old KSK self-signs in slot 4, is gone from slot 5
    b4, b5 = resp.bundles[3], resp.bundles[4]
    assert any(k.is_revoked for k in b4.keys) and len(b4.signatures) == 2
    assert not any(k.is_revoked for k in b5.keys) and len(b5.signatures) == 1
    chosen = select_bundle(resp, resp.bundles[2].inception + 1)
    assert chosen.id == resp.bundles[2].id


def test_import_refuses_response_to_another_request(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _keys(lab)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(schema="    - {sign: [old]}", length="P90D"))
    runner = CliRunner()
    out = {}
    for name in ("one", "two"):
        ksr = tmp_path / f"{name}.ksr"
        r = runner.invoke(
            zonesigner_cli,
            [
                "bundles",
                "request",
                "--policy",
                str(policy),
                "--zsk",
                lab.uri("zsk", "zsk-a"),
                "--pin-file",
                str(lab.pin_file("zsk")),
                "-o",
                str(ksr),
            ],
        )
        assert r.exit_code == 0, r.output
        out[name] = ksr
    skr = tmp_path / "one.skr"
    r = runner.invoke(
        ceremony_cli,
        [
            "sign-request",
            "--policy",
            str(policy),
            "--now",
            "2025-12-20T00:00:00Z",
            "--pin-file",
            str(lab.pin_file("ksk-primary")),
            "-o",
            str(skr),
            str(out["one"]),
        ],
    )
    assert r.exit_code == 0, r.output
    anchor = json.loads(Path(f"{skr}.json").read_text())["trust_anchors"][0]
    # another request of ours (same content, other bytes): the response does not answer it
    forged = out["two"]
    forged.write_text(forged.read_text().replace("generated by", "generated  by"))
    m = json.loads(Path(f"{forged}.json").read_text())
    import hashlib

    from signer.bundles.manifest import hashed

    m["file_hash"] = hashed(hashlib.sha256(forged.read_bytes()).hexdigest())
    Path(f"{forged}.json").write_text(json.dumps(m))
    r = runner.invoke(
        zonesigner_cli,
        [
            "bundles",
            "import",
            "--policy",
            str(policy),
            "--request",
            str(forged),
            "--trust-anchor",
            anchor,
            str(skr),
        ],
    )
    assert r.exit_code == 1
    assert "SKR-REQUEST-HASH" in r.output
    # a wrong trust anchor
    r = runner.invoke(
        zonesigner_cli,
        [
            "bundles",
            "import",
            "--policy",
            str(policy),
            "--request",
            str(out["one"]),
            "--trust-anchor",
            "12345 13 2 " + "AB" * 32,
            str(skr),
        ],
    )
    assert r.exit_code == 1
    assert "SKR-BUNDLE-KEYS" in r.output or "SKR-SIGNATURE" in r.output


def test_sign_refused_writes_nothing(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _keys(lab)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(schema="    - {sign: [old]}", length="P90D"))
    ksr = tmp_path / "q.ksr"
    runner = CliRunner()
    r = runner.invoke(
        zonesigner_cli,
        [
            "bundles",
            "request",
            "--policy",
            str(policy),
            "--zsk",
            lab.uri("zsk", "zsk-a"),
            "--pin-file",
            str(lab.pin_file("zsk")),
            "-o",
            str(ksr),
        ],
    )
    assert r.exit_code == 0, r.output
    skr = tmp_path / "q.skr"
    # horizon: "now" far in the past -> every signature expires beyond now + P300D
    r = runner.invoke(
        ceremony_cli,
        [
            "sign-request",
            "--policy",
            str(policy),
            "--now",
            "2024-01-01T00:00:00Z",
            "--pin-file",
            str(lab.pin_file("ksk-primary")),
            "-o",
            str(skr),
            str(ksr),
        ],
    )
    assert r.exit_code == 1
    assert "KSR-POLICY-HORIZON" in r.output
    assert "Traceback" not in r.output
    assert not skr.exists() and not Path(f"{skr}.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("q.skr")) == []
