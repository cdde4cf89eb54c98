"""DNSKEY, key tag, DS and RRSIG round trips for every algorithm, checked against dnspython."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rrset
import pytest

from signer.algorithms import Algorithm
from signer.dnskey import DnsKey, DsNotFromSepKey, make_ds
from signer.errors import VerificationError
from signer.keys.soft import SoftKey
from signer.rrsig import rrsig_labels, sign_rrset, verify_rrset

ORIGIN = dns.name.from_text("Example.COM.")
NOW = 1_780_000_000


@pytest.mark.parametrize("alg", list(Algorithm))
def test_sign_validates_with_dnspython(alg: Algorithm) -> None:
    k = SoftKey.generate(alg, ksk=True)
    dk = k.dnskey
    assert dk.key_tag == dns.dnssec.key_id(dk.to_rdata())
    assert DnsKey.from_text(dk.rdata_text()) == dk
    keyset = dns.rrset.from_rdata(ORIGIN, 3600, dk.to_rdata())
    rr = dns.rrset.from_text(
        "*.Www.Example.COM.", 300, "IN", "MX", "10 MAIL.Example.COM.", "20 b.example.com."
    )
    sig = sign_rrset(rr, k, ORIGIN, NOW - 3600, NOW + 86400)
    assert sig.labels == 3  # wildcard label not counted
    dns.dnssec.validate(rr, dns.rrset.from_rdata(rr.name, 300, sig), {ORIGIN: keyset}, now=NOW)
    assert verify_rrset(rr, sig, [dk], now=NOW) == dk
    ds = make_ds(ORIGIN, dk)
    assert ds.digest == dns.dnssec.make_ds(ORIGIN, dk.to_rdata(), "SHA256").digest
    assert ds.matches(ORIGIN, dk)


def test_tampered_rrset_fails() -> None:
    k = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    rr = dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1")
    sig = sign_rrset(rr, k, ORIGIN, NOW - 10, NOW + 10)
    other = dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.2")
    with pytest.raises(VerificationError, match="does not verify"):
        verify_rrset(other, sig, [k.dnskey])
    with pytest.raises(VerificationError, match="expired"):
        verify_rrset(rr, sig, [k.dnskey], now=NOW + 100)


def test_ds_from_zsk_refused_unless_forced() -> None:
    zsk = SoftKey.generate(Algorithm.ED25519, ksk=False).dnskey
    with pytest.raises(DsNotFromSepKey, match="KEY-DS-SEP"):
        make_ds(ORIGIN, zsk)
    assert make_ds(ORIGIN, zsk, force=True).key_tag == zsk.key_tag


def test_revoke_flag_changes_tag() -> None:
    ksk = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True).dnskey
    rev = ksk.revoked()
    assert rev.is_revoked and rev.flags == 257 | 0x80
    assert rev.key_tag == dns.dnssec.key_id(rev.to_rdata())
    assert rev.key_tag != ksk.key_tag
    with pytest.raises(DsNotFromSepKey):
        make_ds(ORIGIN, rev)


def test_labels() -> None:
    assert rrsig_labels(dns.name.from_text("*.a.example.")) == 2
    assert rrsig_labels(dns.name.root) == 0


def test_bind_key_file_with_parentheses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from conftest import require_tool

    from signer.errors import InputError
    from signer.keys.soft import load_bind_private

    out = subprocess.run(
        [require_tool("dnssec-keygen"), "-K", str(tmp_path), "-a", "ED25519", "example."],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    keyfile = tmp_path / f"{out}.key"
    text = keyfile.read_text().replace("DNSKEY 256 3 15 ", "DNSKEY ( 256 3 15 ") + " )\n"
    keyfile.write_text(text)
    assert load_bind_private(tmp_path / f"{out}.private").dnskey.flags == 256
    keyfile.write_text("example. IN DNSKEY ( )\n")
    with pytest.raises(InputError, match="no DNSKEY flags"):
        load_bind_private(tmp_path / f"{out}.private")
