"""Property tests (hypothesis) on the DNSSEC core's parsers and encoders.

Bad input may only ever raise ``signer.errors.InputError`` (one clear line, exit code 2),
never another exception; good input round-trips; our key tag equals dnspython's.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from signer.algorithms import Algorithm
from signer.crypto import (
    generate_private_key,
    public_key_from_dnskey_bytes,
    sign_with_private_key,
    signature_checker,
    verify_signature,
)
from signer.dnskey import DnsKey, DsRecord, key_tag_of_rdata, make_ds
from signer.errors import InputError, VerificationError
from signer.keys.soft import SoftKey
from signer.pgpwords import _EVEN, _ODD, from_pgp_words, pgp_words
from signer.rrsig import to_time, verify_rrset

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALG_NUMBERS = st.one_of(st.sampled_from([int(a) for a in Algorithm]), st.integers(0, 255))


def dnskey_wire() -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda flags, proto, alg, key: struct.pack("!HBB", flags, proto, alg) + key,
        st.integers(0, 0xFFFF),
        st.one_of(st.just(3), st.integers(0, 255)),
        ALG_NUMBERS,
        st.binary(min_size=0, max_size=300),
    )


# -- DNSKEY ---------------------------------------------------------------------------------------
@FUZZ
@given(dnskey_wire())
@example(b"")
@example(b"\x01\x01\x03\x08")  # RSA key with no key material
@example(b"\x01\x01\x03\x08\x00")  # RSA 3-byte exponent length, truncated
@example(b"\x01\x01\x03\x08\x00\x00\x00\x01")  # RSA exponent length 0
@example(b"\x01\x01\x03\x0d" + b"\x00" * 64)  # P-256 point not on the curve
@example(b"\x01\x01\x03\x0f" + b"\x00" * 31)  # Ed25519 key one byte short
def test_dnskey_from_wire_only_input_errors(data: bytes) -> None:
    try:
        key = DnsKey.from_wire(data)
    except InputError:
        return
    assert key.to_wire() == data
    assert DnsKey.from_wire(key.to_wire()) == key
    assert DnsKey.from_text(key.rdata_text()) == key
    assert key.key_tag == key_tag_of_rdata(data)
    try:
        key.public_key_object()
        bits = key.bits
        described = key.describe()
    except InputError:
        return
    assert bits > 0 and str(key.key_tag) in described


@FUZZ
@given(st.text(max_size=200))
@example("257 3 13")
@example("257 3 99 AAAA")
@example("257 3 13 !!!!")
@example("70000 3 13 AAAA")
@example("257 3 15 " + "A" * 10000)
@example("257 3 13 AAAA\n257 3 13 BBBB")
@example('257 3 13 "AA\nAA"')
def test_dnskey_from_text_only_input_errors(text: str) -> None:
    try:
        key = DnsKey.from_text(text)
    except InputError as exc:
        assert "\n" not in str(exc)  # one line
        assert str(exc).startswith("bad DNSKEY") or "algorithm" in str(exc)
        return
    assert DnsKey.from_text(key.rdata_text()) == key


@FUZZ
@given(st.sampled_from(list(Algorithm)), st.binary(max_size=200), st.binary(max_size=600))
def test_public_key_and_verify_never_crash(alg: Algorithm, key: bytes, sig: bytes) -> None:
    try:
        pub = public_key_from_dnskey_bytes(alg, key)
    except InputError:
        return
    assert verify_signature(alg, pub, b"data", sig) is False
    assert signature_checker(alg, pub)(b"data", sig) is False


_PRIVATE = {alg: generate_private_key(alg) for alg in Algorithm}


@FUZZ
@given(st.sampled_from(list(Algorithm)), st.binary(max_size=100), st.integers(0, 10_000))
def test_signature_checker_agrees_with_verify_signature(
    alg: Algorithm, data: bytes, flip: int
) -> None:
    """The per-key checker a full verification uses accepts exactly what verify_signature
    accepts: the key's own signature, not one with a bit flipped, cut short or over data
    that differs."""
    key = _PRIVATE[alg]
    pub = key.public_key()
    check = signature_checker(alg, pub)
    sig = sign_with_private_key(alg, key, data)
    assert check(data, sig) is True
    assert verify_signature(alg, pub, data, sig) is True
    bad = bytearray(sig)
    bad[flip % len(sig)] ^= 1 << (flip % 8)
    for tampered_data, tampered in ((data, bytes(bad)), (data, sig[:-1]), (data + b"x", sig)):
        assert check(tampered_data, tampered) is False
        assert verify_signature(alg, pub, tampered_data, tampered) is False


@FUZZ
@given(dnskey_wire())
def test_key_tag_equals_dnspython(data: bytes) -> None:
    assume(data[3] != 1)  # RFC 4034 App. B.1: algorithm 1 (RSA/MD5) uses another tag
    rd = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.DNSKEY, data, 0, len(data))
    assert key_tag_of_rdata(data) == dns.dnssec.key_id(rd)  # type: ignore[arg-type]


# -- DS -------------------------------------------------------------------------------------------
@FUZZ
@given(st.text(max_size=200))
@example("60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118")  # RFC 4034 5.4 (alg 5 refused)
@example("1 13 2 ABCD")  # SHA-256 digest of the wrong length
@example("1 13 4 " + "00" * 32)  # SHA-384 digest of the wrong length
@example("1 13 2 " + "00" * 32)
@example("70000 13 2 " + "00" * 32)
def test_ds_from_text_only_input_errors(text: str) -> None:
    try:
        ds = DsRecord.from_text(text)
    except InputError:
        return
    again = DsRecord.from_text(ds.rdata_text())
    assert again == ds
    assert len(ds.digest) == {1: 20, 2: 32, 4: 48}.get(ds.digest_type, len(ds.digest))


@FUZZ
@given(
    st.integers(0, 0xFFFF),
    st.sampled_from(list(Algorithm)),
    st.sampled_from([1, 2, 4, 200]),
    st.one_of(st.binary(min_size=1, max_size=64), st.sampled_from([b"\x01" * 20, b"\x02" * 32])),
)
def test_ds_text_round_trip(tag: int, alg: Algorithm, dtype: int, digest: bytes) -> None:
    text = f"{tag} {int(alg)} {dtype} {digest.hex()}"
    known = {1: 20, 2: 32, 4: 48}  # SHA-1, SHA-256, SHA-384 digest sizes
    try:
        ds = DsRecord.from_text(text)
    except InputError as exc:
        assert dtype in known and len(digest) != known[dtype]
        assert "digest" in str(exc)
        return
    assert len(digest) == known.get(dtype, len(digest))
    assert (ds.key_tag, ds.algorithm, ds.digest_type, ds.digest) == (tag, alg, dtype, digest)
    assert DsRecord.from_text(ds.rdata_text()) == ds
    assert ds.to_wire() == struct.pack("!HBB", tag, int(alg), dtype) + digest


_KEYS = {alg: SoftKey.generate(alg, ksk=True) for alg in Algorithm if alg.name[:3] != "RSA"}


@FUZZ
@given(
    st.sampled_from(sorted(_KEYS)),
    st.from_regex(r"\A([a-zA-Z0-9-]{1,20}\.){0,4}\Z", fullmatch=True),
    st.sampled_from([2, 4]),
)
def test_make_ds_equals_dnspython(alg: Algorithm, owner: str, dtype: int) -> None:
    key = _KEYS[alg].dnskey
    owner = owner or "."
    ours = make_ds(owner, key, dtype)
    theirs = dns.dnssec.make_ds(owner, key.to_rdata(), {2: "SHA256", 4: "SHA384"}[dtype])
    assert ours.digest == theirs.digest
    assert ours.key_tag == theirs.key_tag
    digest = hashlib.new({2: "sha256", 4: "sha384"}[dtype])
    digest.update(dns.name.from_text(owner).canonicalize().to_wire() or b"")
    digest.update(key.to_wire())
    assert ours.digest == digest.digest()


# -- PGP words ------------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=64))
def test_pgp_words_round_trip(data: bytes) -> None:
    words = pgp_words(data)
    assert len(words.split()) == len(data)
    assert from_pgp_words(words) == data
    assert from_pgp_words(words.upper()) == data
    assert from_pgp_words("  " + words.replace(" ", "\n\t ") + " ") == data


@FUZZ
@given(st.text(max_size=100))
@example("topmost topmost")  # an even word in an odd position
@example("Istanbul")  # an odd word in an even position
@example("aardvark\x00")
def test_from_pgp_words_only_input_errors(text: str) -> None:
    try:
        data = from_pgp_words(text)
    except InputError as exc:
        assert isinstance(exc, ValueError)  # still a ValueError for older callers
        assert "word" in str(exc)
        return
    assert pgp_words(data).lower().split() == text.lower().split()


def test_pgp_word_list_is_the_published_one() -> None:
    """The lists equal PGP::Words::Tiny's copy (CPAN), and the published example spells out."""
    assert len(set(w.lower() for w in _EVEN + _ODD)) == 512
    assert (
        hashlib.sha256(" ".join(_EVEN).encode()).hexdigest()
        == "541ddf6f9cb42d5f68c504d3e73c9604e07cc9bc0c9f970ede363979f631aff8"
    )
    assert (
        hashlib.sha256(" ".join(_ODD).encode()).hexdigest()
        == "da2f42899401481ae69b71da92f1f26abd36d0c1e457fd372a0f1e48d1f3f152"
    )
    data = bytes.fromhex("E58294F2E9A227486E8B061B31CC528FD7FA3F19")
    assert pgp_words(data) == (
        "topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator goldfish "
        "Medusa afflict bravado chatter revolver Dupont midsummer stopwatch whimsical "
        "cowbell bottomless"
    )


# -- times and RRSIG verification -----------------------------------------------------------------
@FUZZ
@given(st.one_of(st.text(max_size=20), st.from_regex(r"\A\d{14}\Z", fullmatch=True)))
@example("20301301000000")  # month 13
@example("20300230000000")  # 30 February
@example("20300101000000")
def test_to_time_only_input_errors(value: str) -> None:
    try:
        t = to_time(value)
    except InputError:
        return
    assert isinstance(t, int) and t >= 0


_ED = SoftKey.generate(Algorithm.ED25519, ksk=False)
_RR = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1")


@FUZZ
@given(
    st.sampled_from([1, 15, 28]),
    ALG_NUMBERS,
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
    st.sampled_from(["example.", "www.example.", "other.", "."]),
    st.binary(max_size=120),
)
def test_verify_rrset_refuses_cleanly(
    covered: int, alg: int, labels: int, ttl: int, tag: int, signer: str, sig: bytes
) -> None:
    text = (
        f"{dns.rdatatype.to_text(covered)} {alg} {labels} {ttl} 20300101000000 "
        f"20200101000000 {tag} {signer} {base64.b64encode(sig).decode() or 'AA=='}"
    )
    rrsig = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG, text)
    with pytest.raises((VerificationError, InputError)):
        verify_rrset(_RR, rrsig, [_ED.dnskey])
