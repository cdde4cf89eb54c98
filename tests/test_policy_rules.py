"""Every cross-field consistency rule of the policy (signer/bundles/policy.py) refuses its
failing case with ``file:line`` of the offending value and the rule broken (exit 2 through the
CLI, nothing written). The single-value rules (months, UTC, unknown keys...) are in
test_policy.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from signer.algorithms import Algorithm
from signer.bundles.policy import PolicyError, load_ksk_policy, load_policy
from signer.cli.main import cli
from signer.keys.soft import SoftKey

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "bundles-policy.yaml"
KSK_TEXT = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True).dnskey.rdata_text()

# (case, old text, new text, the line (of the new text) the error must name, words of the rule)
RULES: list[tuple[str, str, str, str, str]] = [
    (
        "refresh not shorter than signature_validity",
        "  refresh: P5D",
        "  refresh: P14D",
        "  refresh: P14D",
        "signer: refresh must be shorter than signature_validity",
    ),
    (
        "jitter not shorter than refresh",
        "  jitter: PT12H",
        "  jitter: P5D",
        "  jitter: P5D",
        "signer: jitter must be shorter than refresh",
    ),
    (
        "bundle_margin longer than bundle_warning",
        "  bundle_warning: P14D",
        "  bundle_warning: P1D",
        "  bundle_margin: P2D",
        "signer: bundle_margin must not exceed bundle_warning",
    ),
    (
        "bundle_margin not shorter than signature_validity.min - bundle_spacing",
        "  bundle_margin: P2D",
        "  bundle_margin: P11D",  # 21 days - 10 days = 11 days: no bundle could hand over
        "  bundle_margin: P11D",
        "signer.bundle_margin is too long",
    ),
    (
        "pre_publish shorter than publish_safety",
        "  publish_safety: P2D",
        "  publish_safety: P11D",
        "  zsk_rollover:",
        "zsk_rollover.pre_publish is shorter than publish_safety",
    ),
    (
        "post_publish shorter than retire_safety",
        "  retire_safety: P2D",
        "  retire_safety: P11D",
        "  zsk_rollover:",
        "zsk_rollover.post_publish is shorter than retire_safety",
    ),
    (
        "bundle_spacing outside bundle_interval",
        "  bundle_spacing: P10D",
        "  bundle_spacing: P12D",
        "  bundle_spacing: P12D",
        "ksk: bundle_spacing lies outside ksk.bundle_interval",
    ),
    (
        "signature_validity.max not longer than bundle_spacing",
        "  signature_validity: {min: P21D, max: P21D}",
        "  signature_validity: {min: P10D, max: P10D}",
        "  signature_validity: {min: P10D, max: P10D}",
        "signature_validity.max must exceed bundle_spacing",
    ),
    (
        "range with min above max",
        "  overlap: {min: P9D, max: P12D}",
        "  overlap: {min: P12D, max: P9D}",
        "  overlap: {min: P12D, max: P9D}",
        "ksk.overlap: min 1036800 is larger than max 777600",
    ),
    (
        "ksk bits suit no algorithm",
        "  bits: [256]",
        "  bits: [384]",
        "  bits: [384]",
        "ksk: no size in ksk.bits suits ECDSAP256SHA256",
    ),
    (
        "signer bits outside the algorithm's sizes",
        "  bits: 256\n",
        "  bits: 384\n",
        "  bits: 384",
        "signer.bits: ECDSAP256SHA256 allows 256..256 bits, not 384",
    ),
    (
        "ksk.zone differs from zone",
        "ksk:                         # the KSK side\n",
        "ksk:                         # the KSK side\n  zone: example.net.\n",
        "  zone: example.net.",
        "ksk.zone example.net. differs from zone example.com.",
    ),
    (
        "a schema slot where no key signs",
        "    - {sign: [ksk-2026]}",
        "    - {publish: [ksk-2026], sign: []}",
        "    - {publish: [ksk-2026], sign: []}",
        "ksk.schema[0]: no key signs in this slot",
    ),
    (
        "a key twice in a schema slot",
        "    - {sign: [ksk-2026]}",
        "    - {sign: [ksk-2026], revoke: [ksk-2026]}",
        "    - {sign: [ksk-2026], revoke: [ksk-2026]}",
        "ksk.schema[0]: a key appears twice",
    ),
    (
        "a foreign ZSK that is a KSK",
        "  retire_safety: P2D\n",
        f"  retire_safety: P2D\n  foreign_zsks: ['{KSK_TEXT}']\n",
        "  foreign_zsks:",
        "signer.foreign_zsks[0]: not a ZSK (flags 257)",
    ),
    (
        "a CDS digest type other than SHA-256/384",
        "digest_types: [2]",
        "digest_types: [1]",
        "  cds: {cds: true",
        "ksk.cds.digest_types[0]: use 2 (SHA-256) or 4 (SHA-384)",
    ),
    (
        "a bad KSK name",
        "    ksk-2026: {key:",
        "    ksk 2026!: {key:",
        "    ksk 2026!: {key:",
        "ksk.keys: bad key name 'ksk 2026!'",
    ),
    (
        "an empty window",
        "  length: P90D",
        "  length: PT0S",
        "  length: PT0S",
        "window.length must be positive",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "at", "words"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_rule_names_file_line(tmp_path: Path, old: str, new: str, at: str, words: str) -> None:
    text = EXAMPLE.read_text()
    assert old in text
    bad = text.replace(old, new, 1)
    f = tmp_path / "policy.yaml"
    f.write_text(bad)
    with pytest.raises(PolicyError) as ei:
        load_policy(f)
    line = bad[: bad.index(at)].count("\n") + 1
    assert str(ei.value) == f"{f}:{line}: {ei.value.reason}", str(ei.value)
    assert words in ei.value.reason, str(ei.value)
    assert ei.value.exit_code == 2


def test_rule_refusal_through_the_cli_writes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(EXAMPLE.read_text().replace("  jitter: PT12H", "  jitter: P5D"))
    out = tmp_path / "q.ksr"
    r = CliRunner().invoke(
        cli, ["bundles", "request", "--policy", str(f), "--zsk", "unused.pem", "-o", str(out)]
    )
    assert r.exit_code == 2
    assert f"{f}:9: signer: jitter must be shorter than refresh" in r.output
    assert "Traceback" not in r.output
    assert not out.exists() and not Path(f"{out}.json").exists()


def test_ksk_only_file_checks_the_ksk_rules(tmp_path: Path) -> None:
    """The ceremony station reads only ksk: (+ zone:); the KSK-side rules still apply there."""
    text = EXAMPLE.read_text()
    ksk_part = text[text.index("ksk:") : text.index("window:")]
    f = tmp_path / "ksk.yaml"
    f.write_text("zone: example.com.\n" + ksk_part)
    assert load_ksk_policy(f) == load_policy(EXAMPLE).ksk
    f.write_text(
        "zone: example.com.\n" + ksk_part.replace("bundle_spacing: P10D", "bundle_spacing: P12D")
    )
    with pytest.raises(PolicyError) as ei:
        load_ksk_policy(f)
    assert "bundle_spacing lies outside" in str(ei.value) and ei.value.line is not None
