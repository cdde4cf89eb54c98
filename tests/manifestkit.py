"""A small key-bundle exchange on disk, made with software keys through both CLIs.

For tests of the policy and manifest parsers and of tampered manifests: the refusals they
exercise happen before any token would be opened, so software keys (``signer.keys.soft``)
stand in for the tokens here; the token round trip is in test_bundles_roundtrip.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ceremony.cli import cli as ceremony_cli
from signer.algorithms import Algorithm
from signer.cli.main import cli as zonesigner_cli
from signer.keys.soft import SoftKey

POLICY = """\
zone: example.com.
signer:
  algorithm: ECDSAP256SHA256
  bundle_margin: P2D
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
    k1: {{key: "{ksk}"}}
  ranges:
    zsk_algorithms: [ECDSAP256SHA256]
    zsk_bits: {{min: 256, max: 256}}
window:
  start: 2026-01-01T00:00:00Z
  length: P90D
"""

NOW = "2025-12-20T00:00:00Z"


@dataclass(frozen=True)
class Exchange:
    dir: Path
    policy: Path
    zsk: Path
    ksk: Path
    ksr: Path
    skr: Path
    anchor: str  # the KSK's DS RDATA

    @property
    def ksr_manifest(self) -> Path:
        return Path(f"{self.ksr}.json")

    @property
    def skr_manifest(self) -> Path:
        return Path(f"{self.skr}.json")


def invoke(which: str, args: list[str]) -> Result:
    cli = ceremony_cli if which == "ceremony" else zonesigner_cli
    return CliRunner().invoke(cli, args)


def sign_args(ex: Exchange, ksr: Path, out: Path, *extra: str) -> list[str]:
    return [
        "sign-request",
        "--policy",
        str(ex.policy),
        "--now",
        NOW,
        *extra,
        "-o",
        str(out),
        str(ksr),
    ]


def import_args(ex: Exchange, ksr: Path, skr: Path, out: Path | None = None) -> list[str]:
    args = ["bundles", "import", "--policy", str(ex.policy), "--request", str(ksr)]
    args += ["--trust-anchor", ex.anchor]
    if out is not None:
        args += ["-o", str(out)]
    return [*args, str(skr)]


def make_exchange(where: Path) -> Exchange:
    """Policy, ZSK and KSK files, a KSR (+ manifest) and its SKR (+ manifest) in ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    zsk, ksk = where / "zsk.pem", where / "ksk.pem"
    zsk.write_bytes(SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False).to_pem())
    ksk.write_bytes(SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True).to_pem())
    policy = where / "policy.yaml"
    policy.write_text(POLICY.format(ksk=ksk))
    ksr, skr = where / "q.ksr", where / "q.skr"
    r = invoke(
        "zonesigner",
        ["bundles", "request", "--policy", str(policy), "--zsk", str(zsk), "-o", str(ksr)],
    )
    assert r.exit_code == 0, r.output
    ex = Exchange(where, policy, zsk, ksk, ksr, skr, "")
    r = invoke("ceremony", sign_args(ex, ksr, skr))
    assert r.exit_code == 0, r.output
    anchor = json.loads(Path(f"{skr}.json").read_text())["trust_anchors"][0]
    return Exchange(where, policy, zsk, ksk, ksr, skr, anchor)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def dump_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2))
