"""Correctness against tools nobody here wrote: zones signed by `zonesigner sign` must pass
BIND `dnssec-verify` (with and without -x), `ldns-verify-zone` and Knot `kzonecheck --dnssec on`;
and a zone edited after signing must be caught by our own self-verification.

Zones: the hand-written one (wildcards, empty non-terminals, deep names, upper case, escapes,
CNAME, DNAME, delegations with and without DS, glue) and generated registry-like zones.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from zone_testlib import (
    HAND_ZONE,
    ORIGIN,
    BindKeys,
    all_validators,
    bind_keys,
    dnssec_verify,
    generated_zone,
    kzonecheck,
    ldns_verify,
    lines_matching,
    sign_with_zonesigner,
    sub_line,
    zonesigner,
)

from signer.zone.verify import ZoneVerificationFailed, verify_signed_zone

NOW = int(time.time())

MODES = {
    "nsec": {},
    "nsec3": {"nsec3": True},
    "nsec3-optout": {"nsec3": True, "optout": True},
    "nsec3-salt-iter": {"nsec3": True, "salt": "aabbccdd", "iterations": 5},
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> BindKeys:
    return bind_keys(tmp_path_factory.mktemp("val-keys"))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_hand_zone_passes_all_validators(keys: BindKeys, tmp_path: Path, mode: str) -> None:
    (tmp_path / "zone").write_text(HAND_ZONE)
    signed = sign_with_zonesigner(tmp_path / "zone", keys, tmp_path / "signed", **MODES[mode])  # type: ignore[arg-type]
    all_validators(signed)
    text = signed.read_text()
    # what the validators are checking is really there
    assert lines_matching(text, r"^\*\.wild\.example\.test\.\s.*RRSIG\s+TXT 13 3 ")
    assert not lines_matching(text, r"^ns\.sub\.example\.test\.\s.*RRSIG")  # glue unsigned
    assert not lines_matching(text, r"^sub\.example\.test\.\s.*RRSIG\s+NS ")  # deleg NS unsigned
    assert lines_matching(text, r"^sec\.example\.test\.\s.*RRSIG\s+DS ")
    if mode == "nsec":
        assert lines_matching(text, r"^upper\.case\.example\.test\.\s.*\sNSEC\s")
    else:
        assert lines_matching(text, r"\sNSEC3PARAM\s")
        assert not lines_matching(text, r"\sNSEC\s")
        nsec3 = lines_matching(text, r"\sIN\s+NSEC3\s")
        flags = {ln.split("NSEC3", 1)[1].split()[1] for ln in nsec3}
        assert flags == ({"1"} if mode == "nsec3-optout" else {"0"})


@pytest.mark.parametrize(
    ("algorithm", "bits"), [("ED25519", 256), ("RSASHA256", 2048), ("ECDSAP384SHA384", 384)]
)
def test_other_algorithms_pass_validators(tmp_path: Path, algorithm: str, bits: int) -> None:
    k = bind_keys(tmp_path / "keys", algorithm=algorithm, bits=bits)
    (tmp_path / "zone").write_text(HAND_ZONE)
    signed = sign_with_zonesigner(tmp_path / "zone", k, tmp_path / "signed", nsec3=True)
    all_validators(signed)


@pytest.mark.parametrize("mode", ["nsec", "nsec3-optout"])
def test_generated_registry_zone_two_jobs(keys: BindKeys, tmp_path: Path, mode: str) -> None:
    (tmp_path / "zone").write_text(generated_zone(1500, seed=7))
    signed = sign_with_zonesigner(
        tmp_path / "zone",
        keys,
        tmp_path / "signed",
        jobs=2,
        verify="full",
        **MODES[mode],  # type: ignore[arg-type]
    )
    all_validators(signed)
    text = signed.read_text()
    n_ds = len(lines_matching(text, r"\sIN\s+DS\s"))
    assert n_ds == len(lines_matching(text, r"RRSIG\s+DS "))
    assert 300 < n_ds < 600  # ~30 % of 1500


def test_validators_reject_a_broken_zone(keys: BindKeys, tmp_path: Path) -> None:
    """The harness can fail: each outside validator refuses a zone with a forged answer."""
    (tmp_path / "zone").write_text(HAND_ZONE)
    signed = sign_with_zonesigner(tmp_path / "zone", keys, tmp_path / "signed")
    text = sub_line(
        signed.read_text(), r"^www\.example\.test\.\s.*\sA\s", "192.0.2.2", "192.0.2.99"
    )
    broken = tmp_path / "broken"
    broken.write_text(text)
    for check in (dnssec_verify, ldns_verify, kzonecheck):
        with pytest.raises(AssertionError):
            check(broken)
    with pytest.raises(ZoneVerificationFailed) as exc:
        verify_signed_zone(broken, origin=ORIGIN, trust_anchor_ds=keys.ds(), now=NOW, level="full")
    assert exc.value.requirement == "ZONE-VERIFY-SIGNATURE"


@pytest.mark.parametrize(
    ("edit", "requirement"),
    [
        # a record added after signing
        (lambda t: t + "late.example.test. 3600 IN A 192.0.2.77\n", "ZONE-VERIFY-UNSIGNED"),
        # an RRSIG removed
        (
            lambda t: "\n".join(
                ln for ln in t.splitlines() if not ("ns1.example.test." in ln and "RRSIG\tA " in ln)
            ),
            "ZONE-VERIFY-UNSIGNED",
        ),
        # an NSEC pointer changed
        (
            lambda t: sub_line(t, r"^www\.example\.test\.\s.*\sNSEC\s", "NSEC\t", "NSEC\tzzz."),
            "ZONE-VERIFY-NSEC-CHAIN",
        ),
        # the DNSKEY RRset's KSK signature replaced by a copy of the ZSK one
        (
            lambda t: "\n".join(
                ln for ln in t.splitlines() if not ("RRSIG\tDNSKEY" in ln and " 13 2 3600 " in ln)
            ),
            "ZONE-VERIFY-UNSIGNED",
        ),
    ],
)
def test_edited_after_signing_is_caught(
    keys: BindKeys, tmp_path: Path, edit: object, requirement: str
) -> None:
    (tmp_path / "zone").write_text(HAND_ZONE)
    signed = sign_with_zonesigner(tmp_path / "zone", keys, tmp_path / "signed")
    text = signed.read_text()
    if edit is None:  # glue is not signed: changing it is not detectable, and must pass
        text = sub_line(text, r"^ns\.sub\.example\.test\.\s.*\sA\s", "192.0.2.7", "192.0.2.70")
        signed.write_text(text)
        verify_signed_zone(signed, origin=ORIGIN, trust_anchor_ds=keys.ds(), now=NOW, level="full")
        return
    signed.write_text(edit(text))  # type: ignore[operator]
    with pytest.raises(ZoneVerificationFailed) as exc:
        verify_signed_zone(signed, origin=ORIGIN, trust_anchor_ds=keys.ds(), now=NOW, level="full")
    assert requirement in exc.value.requirements, exc.value.messages


def test_zonesigner_refuses_a_wrong_trust_anchor(keys: BindKeys, tmp_path: Path) -> None:
    """A trust anchor that is not the KSK's DS: `zonesigner sign` refuses with exit 1 (today
    already when it imports the bundles, SKR-SIGNATURE; self-verification would refuse too, see
    test_zone_verify.py::test_wrong_trust_anchor) and leaves the previous output untouched."""
    other = bind_keys(tmp_path / "other")
    (tmp_path / "zone").write_text(HAND_ZONE)
    good = sign_with_zonesigner(tmp_path / "zone", keys, tmp_path / "signed")
    before = good.read_bytes()
    args = [
        "sign", str(tmp_path / "zone"), "--origin", ORIGIN,
        "--bundles", str(tmp_path / "signed.skr"),
        "--zsk", str(keys.zsk.with_suffix(".private")),
        "--out", str(good), "--policy", str(tmp_path / "signed.policy.yaml"),
        "--now", str(NOW), "--jobs", "1",
        "--trust-anchor", str(other.ds_file()),
    ]  # fmt: skip
    p = zonesigner(*args)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert good.read_bytes() == before
