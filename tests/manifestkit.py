"""A small key-bundle exchange on disk, made with software keys through both CLIs.

For tests of the policy and manifest parsers and of tampered manifests: the refusals they
exercise happen before any token would be opened, so software keys (``signer.keys.soft``)
stand in for the tokens here; the token round trip is in test_bundles_roundtrip.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ceremony.cli import cli as ceremony_cli
from signer.algorithms import Algorithm
from signer.cli.main import cli as zonesigner_cli
from signer.keys.soft import SoftKey


def policy_yaml(
    ksks: Mapping[str, str], *, length: str = "P90D", schema: str = "", signer_extra: str = ""
) -> str:
    """The exchange's policy: one ECDSA P-256 zone, the root's bundle shape (9 x 10 days, 21-day
    signatures), CDS/CDNSKEY; ``ksks`` maps ksk.keys names to specs, ``schema`` the KSK slot
    schema lines (indented 4), ``signer_extra`` extra signer: lines (indented 2)."""
    keys = "".join(f'    {name}: {{key: "{spec}"}}\n' for name, spec in ksks.items())
    schema_block = f"  schema:\n{schema}\n" if schema else ""
    return f"""\
zone: example.com.
signer:
  algorithm: ECDSAP256SHA256
  bundle_margin: P2D
{signer_extra}ksk:
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
{keys}{schema_block}  ranges:
    zsk_algorithms: [ECDSAP256SHA256]
    zsk_bits: {{min: 256, max: 256}}
window:
  start: 2026-01-01T00:00:00Z
  length: {length}
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


def request_args(policy: Path, zsks: Sequence[str], ksr: Path, *extra: str) -> list[str]:
    """``zonesigner bundles request`` for ``zsks`` (SPEC[@TIME]) into ``ksr``."""
    args = ["bundles", "request", "--policy", str(policy)]
    for z in zsks:
        args += ["--zsk", z]
    return [*args, *extra, "-o", str(ksr)]


def sign_args(policy: Path, ksr: Path, out: Path, *extra: str, now: str = NOW) -> list[str]:
    """``ceremony sign-request`` of ``ksr`` into ``out`` at ``now``."""
    return ["sign-request", "--policy", str(policy), "--now", now, *extra, "-o", str(out), str(ksr)]


def import_args(
    policy: Path, ksr: Path, skr: Path, anchors: Sequence[str], out: Path | None = None
) -> list[str]:
    """``zonesigner bundles import`` of ``skr`` (answering ``ksr``) against ``anchors``."""
    args = ["bundles", "import", "--policy", str(policy), "--request", str(ksr)]
    for a in anchors:
        args += ["--trust-anchor", a]
    if out is not None:
        args += ["-o", str(out)]
    return [*args, str(skr)]


def distinct_tag_keys(*ksk: bool) -> tuple[SoftKey, ...]:
    """ECDSA P-256 keys (a KSK where ``ksk[i]``) whose key tags, REVOKE tags included, all
    differ: random keys share one now and then, and KSR-KEYTAG-COLLISION (rightly) refuses
    them."""
    while True:
        keys = tuple(SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=k) for k in ksk)
        tags = [k.dnskey.key_tag for k in keys] + [k.dnskey.revoked().key_tag for k in keys]
        if len(set(tags)) == len(tags):
            return keys


def make_exchange(where: Path) -> Exchange:
    """Policy, ZSK and KSK files, a KSR (+ manifest) and its SKR (+ manifest) in ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    zsk, ksk = where / "zsk.pem", where / "ksk.pem"
    zsk_key, ksk_key = distinct_tag_keys(False, True)
    zsk.write_bytes(zsk_key.to_pem())
    ksk.write_bytes(ksk_key.to_pem())
    policy = where / "policy.yaml"
    policy.write_text(policy_yaml({"k1": str(ksk)}))
    ksr, skr = where / "q.ksr", where / "q.skr"
    r = invoke("zonesigner", request_args(policy, [str(zsk)], ksr))
    assert r.exit_code == 0, r.output
    r = invoke("ceremony", sign_args(policy, ksr, skr))
    assert r.exit_code == 0, r.output
    anchor = json.loads(Path(f"{skr}.json").read_text())["trust_anchors"][0]
    return Exchange(where, policy, zsk, ksk, ksr, skr, anchor)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def dump_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2))
