"""Root-zone KSR/SKR XML: the real IANA files parse, verify and round trip; bad input is refused."""

from __future__ import annotations

import calendar
from pathlib import Path

import dns.name
import pytest

from signer.algorithms import Algorithm
from signer.bundles import rootxml as rx
from signer.bundles.declared import AlgorithmPolicy
from signer.dnskey import DsRecord, make_ds
from signer.errors import CheckFailed, InputError, VerificationError
from signer.rrsig import verify_rrset

ROOT = dns.name.root
KSR16 = "ksr-root-2016-q3-0.xml"
KSR18 = "ksr-root-2018-q1-0-d_to_e.xml"
KSR18_BAD = "ksr-root-2018-q1-0-d_to_e.bad-signatures.xml"
SKR18 = "skr-root-2018-q1-0-d_to_e.xml"
ROOT_ANCHOR = DsRecord.from_text(
    "20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
)
DAY = 86400


def utc(text: str) -> int:
    return calendar.timegm(
        (int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), 0, 0, 0, 0, 0)
    )


# -- the real files ---------------------------------------------------------------------------


@pytest.mark.parametrize("fname", [KSR16, KSR18, KSR18_BAD, SKR18])
def test_real_files_parse_and_round_trip(iana_root: Path, fname: str) -> None:
    is_skr = fname.startswith("skr")
    bs = (rx.load_root_skr if is_skr else rx.load_root_ksr)(iana_root / fname, zone=".")
    assert bs.zone == ROOT and bs.kind == ("response" if is_skr else "request")
    assert len(bs.bundles) == 9
    assert len({b.id for b in bs.bundles}) == 9
    assert all(b.ttl == 172800 for b in bs.bundles)
    pol = bs.declared_policy
    assert pol is not None and pol.zsk is not None
    assert (pol.ksk is not None) == is_skr
    assert pol.zsk.publish_safety == 10 * DAY
    text = (rx.dump_root_skr if is_skr else rx.dump_root_ksr)(bs)
    again = (rx.parse_root_skr if is_skr else rx.parse_root_ksr)(text)
    assert again == bs  # bundles, keys, signatures, times
    assert again.declared_policy == pol
    for k in ("id", "serial", "domain"):
        assert again.meta[k] == bs.meta[k]
    # key identifiers survive too
    assert {k: v for k, v in again.meta.items() if k.startswith("key-identifier:")} == {
        k: v for k, v in bs.meta.items() if k.startswith("key-identifier:")
    }


def test_declared_policies(iana_root: Path) -> None:
    ksr16 = rx.load_root_ksr(iana_root / KSR16).declared_policy
    assert ksr16 is not None and ksr16.zsk is not None
    assert ksr16.zsk.algorithms == (
        AlgorithmPolicy(Algorithm.RSASHA256, 2048, 65537),
        AlgorithmPolicy(Algorithm.RSASHA256, 1024, 65537),
    )
    assert (ksr16.zsk.max_signature_validity, ksr16.zsk.min_signature_validity) == (
        20 * DAY,
        15 * DAY,
    )
    skr = rx.load_root_skr(iana_root / SKR18).declared_policy
    assert skr is not None and skr.ksk is not None
    assert skr.ksk.publish_safety == 0 and skr.ksk.retire_safety == 28 * DAY
    assert skr.ksk.max_validity_overlap == 16 * DAY and skr.ksk.min_validity_overlap == 9 * DAY


def test_real_skr_verifies_against_ksk_2010_and_ksk_2017(iana_root: Path) -> None:
    skr = rx.load_root_skr(iana_root / SKR18)
    used: set[int] = set()
    for b in skr.bundles:
        ksks = [k for k in b.keys if k.is_sep]
        assert {k.key_tag for k in ksks} <= {19036, 20326}
        rrset = b.dnskey_rrset(ROOT)
        assert b.signatures
        for sig in b.signatures:
            key = verify_rrset(rrset, sig, ksks, now=b.inception)
            used.add(key.key_tag)
    assert used == {19036, 20326}  # the d_to_e quarter: KSK-2010 hands over to KSK-2017
    k2017 = next(k for b in skr.bundles for k in b.keys if k.key_tag == 20326)
    assert make_ds(ROOT, k2017, 2) == ROOT_ANCHOR
    assert ROOT_ANCHOR.matches(ROOT, k2017)


def test_tampered_skr_signature_fails(iana_root: Path) -> None:
    text = (iana_root / SKR18).read_text()
    first = text.index("<SignatureData>") + len("<SignatureData>")
    tampered = text[:first] + ("A" if text[first] != "A" else "B") + text[first + 1 :]
    b = rx.parse_root_skr(tampered).bundles[0]
    with pytest.raises(VerificationError, match="does not verify"):
        verify_rrset(b.dnskey_rrset(ROOT), b.signatures[0], list(b.keys))


def test_ksr_proofs_of_possession_verify_in_good_and_fail_in_bad(iana_root: Path) -> None:
    good = rx.load_root_ksr(iana_root / KSR18)
    for b in good.bundles:
        rrset = b.dnskey_rrset(ROOT)
        signed = {verify_rrset(rrset, s, list(b.keys)).key_tag for s in b.signatures}
        assert signed == {k.key_tag for k in b.keys}
    bad = rx.load_root_ksr(iana_root / KSR18_BAD)
    failures = 0
    for b in bad.bundles:
        for s in b.signatures:
            try:
                verify_rrset(b.dnskey_rrset(ROOT), s, list(b.keys))
            except VerificationError:
                failures += 1
    assert failures == 2  # the first bundle's two signatures are swapped


def test_ksr_checks_with_root_parameters(iana_root: Path) -> None:
    """C1's KSK-side checks: the bad file fails proof of possession; the good one passes the
    root's parameters (9 bundles, 10-day spacing, 21-day validity) at the ceremony's time."""
    checks = pytest.importorskip("signer.bundles.checks")
    policy_mod = pytest.importorskip("signer.bundles.policy")
    policy = policy_mod.root_ksk_policy()
    now = utc("2017-11-01T00")  # the 2018 Q1 ceremony; the horizon check runs with this time
    good = rx.load_root_ksr(iana_root / KSR18)
    checks.check_request(good, policy, now=now, previous=None, disabled=set())
    bad = rx.load_root_ksr(iana_root / KSR18_BAD)
    with pytest.raises(CheckFailed) as ei:
        checks.check_request(bad, policy, now=now, previous=None, disabled=set())
    assert ei.value.requirement == "KSR-BUNDLE-POP"
    assert "KSR-BUNDLE-POP" in str(ei.value)
    # horizon: the same request checked years later is refused by that check alone
    with pytest.raises(CheckFailed) as ei:
        checks.check_request(good, policy, now=utc("2019-01-01T00"), previous=None, disabled=set())
    assert ei.value.requirement == "KSR-POLICY-HORIZON"


# -- refusals ---------------------------------------------------------------------------------


def refuse(text: str, rule: str, line: int | None, kind: str = "ksr", **kw: object) -> None:
    parse = rx.parse_root_ksr if kind == "ksr" else rx.parse_root_skr
    with pytest.raises(InputError) as ei:
        parse(text, name="x.xml", **kw)  # type: ignore[arg-type]
    assert rule in ei.value.reason, ei.value.message
    if line is not None:
        assert ei.value.line == line, ei.value.message
        assert ei.value.message.startswith(f"x.xml:{line}: ")


@pytest.fixture
def ksr_text(iana_root: Path) -> str:
    return (iana_root / KSR18).read_text()


def test_entities_and_doctype_refused(ksr_text: str) -> None:
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE KSR [\n<!ENTITY a "aaaaaaaaaa">\n'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n<KSR>&b;</KSR>\n'
    )
    refuse(laughs, "DOCTYPE/entity declarations are not allowed", 2)
    xxe = '<?xml version="1.0"?>\n<!DOCTYPE KSR SYSTEM "file:///etc/passwd">\n<KSR/>\n'
    refuse(xxe, "DOCTYPE", 2)


def test_malformed_and_unknown_elements(ksr_text: str) -> None:
    refuse(ksr_text[: len(ksr_text) // 2], "not well-formed XML", None)
    refuse(
        ksr_text.replace("<Protocol>3</Protocol>", "<Protocol>3</Protocol><Extra/>", 1),
        "unexpected element <Extra> in <Key>",
        22,
    )
    refuse(
        ksr_text.replace("<KSR ", "<SKR ", 1).replace("</KSR>", "</SKR>"),
        "document element is <SKR>",
        1,
    )
    refuse("", "not well-formed XML", 1)


def test_non_utc_times_and_months_refused(ksr_text: str) -> None:
    refuse(
        ksr_text.replace(
            "<Inception>2018-01-01T00:00:00<", "<Inception>2018-01-01T00:00:00+01:00<", 1
        ),
        "is not UTC",
        17,
    )
    refuse(
        ksr_text.replace(
            "<SignatureExpiration>2017-12-05T13:26:25+00:00",
            "<SignatureExpiration>2017-12-05T13:26:25-05:00",
            1,
        ),
        "is not UTC",
        39,
    )
    refuse(
        ksr_text.replace("<MaxSignatureValidity>P21D<", "<MaxSignatureValidity>P1M<", 1),
        "months or years",
        7,
    )
    refuse(
        ksr_text.replace("<PublishSafety>P10D<", "<PublishSafety>10 days<", 1),
        "bad ISO 8601 duration",
        5,
    )


def test_key_and_signature_rules(ksr_text: str) -> None:
    refuse(
        ksr_text.replace('keyTag="46809"', 'keyTag="46808"', 1),
        "keyTag attribute 46808 does not match the key (tag 46809)",
        19,
    )
    refuse(
        ksr_text.replace("<PublicKey>AwEAAcRI", "<PublicKey>!wEAAcRI", 1),
        "bad base64 in <PublicKey>",
        24,
    )
    refuse(
        ksr_text.replace("<Algorithm>8</Algorithm>", "<Algorithm>7</Algorithm>", 1),
        "unsupported DNSSEC algorithm 7",
        23,
    )
    refuse(ksr_text.replace("<TypeCovered>DNSKEY<", "<TypeCovered>A<", 1), "must cover DNSKEY", 35)
    refuse(
        ksr_text.replace("<TTL>172800</TTL>", "<TTL>3600</TTL>", 1),
        "have different TTLs [3600, 172800]",
        26,
    )


def test_bundle_rules(ksr_text: str) -> None:
    dup = ksr_text.replace(
        'RequestBundle id="4c05c9b8-a7c4-46b7-a4f8-737a5261f09b"',
        'RequestBundle id="0a8f7774-3bd3-4702-a923-f1d73f653bd6"',
        1,
    )
    refuse(dup, "duplicate bundle id '0a8f7774-3bd3-4702-a923-f1d73f653bd6' (first at line 16)", 58)
    refuse(
        ksr_text.replace("<Expiration>2018-01-22T00:00:00<", "<Expiration>2017-01-22T00:00:00<", 1),
        "expiration is not after its inception",
        18,
    )
    refuse(ksr_text, "domain . is not the zone example.", 1, zone="example.")


def test_ksr_and_skr_not_confused(iana_root: Path, ksr_text: str) -> None:
    refuse((iana_root / SKR18).read_text(), "this is a SKR, not a KSR", 2)
    refuse(ksr_text, "this is a KSR, not a SKR", 1, kind="skr")


def test_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    with open(big, "wb") as f:
        f.truncate(10 * 1024 * 1024)
    with pytest.raises(InputError, match=r"big.xml: file is 10485760 bytes, over the"):
        rx.load_root_ksr(big)


def test_dump_needs_a_declared_policy(iana_root: Path) -> None:
    from dataclasses import replace

    bs = rx.load_root_ksr(iana_root / KSR18)
    with pytest.raises(InputError, match="needs the declared policy"):
        rx.dump_root_ksr(replace(bs, declared_policy=None))
    with pytest.raises(InputError, match="is a request, not a response"):
        rx.dump_root_skr(bs)
