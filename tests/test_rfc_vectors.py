"""The DNSSEC core against the worked examples published in RFC 5702, RFC 6605 and RFC 8080.

For each example (files in tests/data/rfc/, see the README there for provenance and errata):

* the DNSKEY we derive from the RFC's private key equals the RFC's DNSKEY, byte for byte,
  and its key tag is the one the RFC prints;
* the DS we compute equals the RFC's DS byte for byte (RFC 6605, RFC 8080; RFC 5702 has none);
* the RFC's RRSIG verifies with ``signer.rrsig.verify_rrset`` (and with dnspython);
* the RRSIG we make: byte-exact equal to the RFC's for the deterministic algorithms
  (RSA PKCS#1 v1.5, EdDSA); for ECDSA (randomised in the RFC) every field but the signature
  is equal and the signature verifies.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.rrset
import dns.zone
import pytest

from signer.algorithms import Algorithm
from signer.dnskey import DnsKey, DsRecord, make_ds
from signer.errors import VerificationError
from signer.keys.soft import SoftKey, load_bind_private
from signer.rrsig import RrsigHeader, rrset_signing_data, sign_rrset, verify_rrset

DATA = Path(__file__).parent / "data" / "rfc"


@dataclasses.dataclass(frozen=True)
class Vector:
    name: str
    algorithm: Algorithm
    key_tag: int
    bits: int
    deterministic: bool
    covered: str  # the signed RRset's type


VECTORS = [
    Vector("rfc5702-6.1", Algorithm.RSASHA256, 9033, 512, True, "A"),
    Vector("rfc5702-6.2", Algorithm.RSASHA512, 3740, 1024, True, "A"),
    Vector("rfc6605-6.1", Algorithm.ECDSAP256SHA256, 55648, 256, False, "A"),
    Vector("rfc6605-6.2", Algorithm.ECDSAP384SHA384, 10771, 384, False, "A"),
    Vector("rfc8080-6.1a", Algorithm.ED25519, 3613, 256, True, "MX"),
    Vector("rfc8080-6.1b", Algorithm.ED25519, 35217, 256, True, "MX"),
    Vector("rfc8080-6.2a", Algorithm.ED448, 9713, 456, True, "MX"),
    Vector("rfc8080-6.2b", Algorithm.ED448, 38353, 456, True, "MX"),
]
# RFC 5702 prints no DS for its examples
WITH_DS = [v for v in VECTORS if not v.name.startswith("rfc5702")]


@dataclasses.dataclass(frozen=True)
class Example:
    key: SoftKey
    owner: dns.name.Name  # the DNSKEY owner (zone apex, RRSIG signer)
    dnskey: DnsKey
    ds: DsRecord | None
    rrset: dns.rrset.RRset
    rrsig: dns.rdtypes.ANY.RRSIG.RRSIG


def load(v: Vector) -> Example:
    zone = dns.zone.from_text(
        (DATA / f"{v.name}.zone").read_text(),
        origin="example.com." if v.name.startswith("rfc8080") else "example.net.",
        relativize=False,
        check_origin=False,
    )
    dnskeys = [
        (name, rds)
        for name, rds in zone.iterate_rdatasets(dns.rdatatype.DNSKEY)
        if rds.rdtype == dns.rdatatype.DNSKEY
    ]
    assert len(dnskeys) == 1 and len(dnskeys[0][1]) == 1
    owner, keyset = dnskeys[0]
    dnskey = DnsKey.from_rdata(keyset[0])
    ds = None
    ds_sets = list(zone.iterate_rdatasets(dns.rdatatype.DS))
    if ds_sets:
        ds = DsRecord.from_text(ds_sets[0][1][0].to_text())
    covered = dns.rdatatype.from_text(v.covered)
    rr_name = next(n for n, rds in zone.iterate_rdatasets(covered))
    rdataset = zone.find_rdataset(rr_name, covered)
    rrset = dns.rrset.RRset(rr_name, dns.rdataclass.IN, covered)
    rrset.update(rdataset)
    sig = zone.find_rdataset(rr_name, dns.rdatatype.RRSIG, covered)[0]
    assert isinstance(sig, dns.rdtypes.ANY.RRSIG.RRSIG)
    bind_key = load_bind_private(DATA / f"{v.name}.private")
    key = SoftKey(
        bind_key.private_key, bind_key.dnskey.algorithm, dnskey.flags, v.name
    ).enable_verification()
    return Example(key, owner, dnskey, ds, rrset, sig)


@pytest.fixture(params=VECTORS, ids=[v.name for v in VECTORS])
def vector(request: pytest.FixtureRequest) -> tuple[Vector, Example]:
    v: Vector = request.param
    return v, load(v)


def test_dnskey_from_private_key_equals_rfc(vector: tuple[Vector, Example]) -> None:
    v, ex = vector
    assert ex.key.dnskey == ex.dnskey
    assert ex.key.dnskey.to_wire() == ex.dnskey.to_rdata().to_wire()
    assert ex.dnskey.algorithm == v.algorithm
    assert ex.dnskey.key_tag == v.key_tag == ex.rrsig.key_tag
    assert ex.dnskey.key_tag == dns.dnssec.key_id(ex.dnskey.to_rdata())
    assert ex.dnskey.bits == v.bits
    # presentation form round trip
    assert DnsKey.from_text(ex.dnskey.rdata_text()) == ex.dnskey


@pytest.mark.parametrize("v", WITH_DS, ids=[v.name for v in WITH_DS])
def test_ds_equals_rfc(v: Vector) -> None:
    ex = load(v)
    assert ex.ds is not None and ex.ds.key_tag == v.key_tag
    ours = make_ds(ex.owner, ex.dnskey, ex.ds.digest_type)
    assert ours == ex.ds
    assert ours.to_wire() == ex.ds.to_wire()
    assert ex.ds.matches(ex.owner, ex.dnskey)
    # the owner name is case-insensitive for the digest
    upper = dns.name.from_text(ex.owner.to_text().upper())
    assert make_ds(upper, ex.dnskey, ex.ds.digest_type) == ex.ds


def test_rfc_rrsig_verifies(vector: tuple[Vector, Example]) -> None:
    _, ex = vector
    now = ex.rrsig.inception + 1
    assert verify_rrset(ex.rrset, ex.rrsig, [ex.dnskey], now=now) == ex.dnskey
    keys = {ex.owner: dns.rrset.from_rdata(ex.owner, 3600, ex.dnskey.to_rdata())}
    dns.dnssec.validate_rrsig(ex.rrset, ex.rrsig, keys, now=now)  # type: ignore[attr-defined]


def test_tampered_rfc_rrsig_fails(vector: tuple[Vector, Example]) -> None:
    _, ex = vector
    sig = bytearray(ex.rrsig.signature)
    sig[len(sig) // 2] ^= 0x01
    bad = ex.rrsig.replace(signature=bytes(sig))
    with pytest.raises(VerificationError, match="does not verify"):
        verify_rrset(ex.rrset, bad, [ex.dnskey])
    later = ex.rrsig.replace(original_ttl=ex.rrsig.original_ttl + 1)
    with pytest.raises(VerificationError, match="does not verify"):
        verify_rrset(ex.rrset, later, [ex.dnskey])


def test_our_rrsig(vector: tuple[Vector, Example]) -> None:
    v, ex = vector
    ours = sign_rrset(
        ex.rrset,
        ex.key,
        ex.owner,
        ex.rrsig.inception,
        ex.rrsig.expiration,
        original_ttl=ex.rrsig.original_ttl,
    )
    assert RrsigHeader.of(ours) == RrsigHeader.of(ex.rrsig)
    if v.deterministic:
        assert ours.signature == ex.rrsig.signature
        assert ours.to_wire() == ex.rrsig.to_wire()
    else:
        assert ours.signature != ex.rrsig.signature  # the RFC's nonce was random
        # ours is RFC 6979 deterministic: the same data gives the same signature
        again = sign_rrset(ex.rrset, ex.key, ex.owner, ex.rrsig.inception, ex.rrsig.expiration)
        assert again.signature == ours.signature
    now = ex.rrsig.inception + 1
    assert verify_rrset(ex.rrset, ours, [ex.dnskey], now=now) == ex.dnskey
    keys = {ex.owner: dns.rrset.from_rdata(ex.owner, 3600, ex.dnskey.to_rdata())}
    dns.dnssec.validate_rrsig(ex.rrset, ours, keys, now=now)  # type: ignore[attr-defined]


def test_signing_is_case_insensitive(vector: tuple[Vector, Example]) -> None:
    """Upper-case owner and embedded names sign to the same bytes (RFC 4034 sect. 6.2)."""
    v, ex = vector
    upper = dns.rrset.from_text(
        ex.rrset.name.to_text().upper(),
        ex.rrset.ttl,
        "IN",
        v.covered,
        *[rd.to_text().upper() for rd in ex.rrset],
    )
    signer = dns.name.from_text(ex.owner.to_text().upper())
    sig = sign_rrset(upper, ex.key, signer, ex.rrsig.inception, ex.rrsig.expiration)
    assert verify_rrset(ex.rrset, sig, [ex.dnskey]) == ex.dnskey
    if v.deterministic:
        assert sig.signature == ex.rrsig.signature


# RFC 8080 sect. 6 as published (before erratum 4935): "RRSIG MX 3 3600 (...": no algorithm
# field, and signatures computed over an RRSIG header with Labels = 3 for example.com.
RFC8080_PUBLISHED = {
    "rfc8080-6.1a": "Edk+IB9KNNWg0HAjm7FazXyrd5m3Rk8zNZbvNpAcM+eysqcUOMIjWoevFkj"
    "H5GaMWeG96GUVZu6ECKOQmemHDg==",
    "rfc8080-6.1b": "5LL2obmzdqjWI+Xto5eP5adXt/T5tMhasWvwcyW4L3SzfcRawOle9bodhC+"
    "oip9ayUGjY9T/rL4rN3bOuESGDA==",
    "rfc8080-6.2a": "Nmc0rgGKpr3GKYXcB1JmqqS4NYwhmechvJTqVzt3jR+Qy/lSLFoIk1L+9e3"
    "9GPL+5tVzDPN3f9kAwiu8KCuPPjtl227ayaCZtRKZuJax7n9NuYlZJIusX0"
    "SOIOKBGzG+yWYtz1/jjbzl5GGkWvREUCUA",
    "rfc8080-6.2b": "+JjANio/LIzp7osmMYE5XD3H/YES8kXs5Vb9H8MjPS8OAGZMD37+LsCIcjg"
    "5ivt0d4Om/UaqETEAsJjaYe56CEQP5lhRWuD2ivBqE0zfwJTyp4WqvpULbp"
    "vaukswvv/WNEFxzEYQEIm9+xDlXj4pMAMA",
}


@pytest.mark.parametrize("name", sorted(RFC8080_PUBLISHED))
def test_rfc8080_erratum_4935(name: str) -> None:
    """The originally published signatures are exactly what a Labels=3 header gives; an
    RRSIG whose Labels exceeds the owner's label count is refused (RFC 4035 sect. 5.3.1)."""
    v = next(x for x in VECTORS if x.name == name)
    ex = load(v)
    published = base64.b64decode(RFC8080_PUBLISHED[name])
    wrong = dataclasses.replace(RrsigHeader.of(ex.rrsig), labels=3)
    assert ex.key.sign(rrset_signing_data(ex.rrset, wrong)) == published
    bad = wrong.rdata(published)
    with pytest.raises(VerificationError, match="labels"):
        verify_rrset(ex.rrset, bad, [ex.dnskey])
    keys = {ex.owner: dns.rrset.from_rdata(ex.owner, 3600, ex.dnskey.to_rdata())}
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate_rrsig(ex.rrset, bad, keys, now=ex.rrsig.inception + 1)  # type: ignore[attr-defined]


def test_rfc6605_signing_data_layout() -> None:
    """Spell out the RFC 4034 sect. 3.1.8.1 bytes for the RFC 6605 P-256 example."""
    ex = load(VECTORS[2])
    data = rrset_signing_data(ex.rrset, RrsigHeader.of(ex.rrsig))
    header = bytes.fromhex("0001 0d 03 00000e10 4c88b137 4c63c737 d960".replace(" ", ""))
    signer = b"\x07example\x03net\x00"
    rr = b"\x03www" + signer + bytes.fromhex("0001 0001 00000e10 0004 c0000201".replace(" ", ""))
    assert data == header + signer + rr
