"""The DNSSEC core against BIND 9 on this machine (bind9-utils).

For every algorithm ``dnssec-keygen`` supports here (8, 10, 13, 14, 15, 16):

* the DNSKEY we derive from BIND's ``K*.private`` equals BIND's ``K*.key``, and the key tag
  equals the one in BIND's file name;
* our DS (SHA-256 and SHA-384) equals ``dnssec-dsfromkey -2`` / ``-a SHA-384``;
* RRsets we sign with the BIND key validate with dnspython's ``dns.dnssec.validate``;
* ``dnssec-revoke`` gives the same RDATA and key tag as our ``DnsKey.revoked()``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from conftest import require_tool

from signer.algorithms import Algorithm
from signer.dnskey import DIGEST_SHA256, DIGEST_SHA384, DnsKey, DsNotFromSepKey, DsRecord, make_ds
from signer.errors import VerificationError
from signer.keys.soft import SoftKey, load_bind_private
from signer.rrsig import sign_rrset, verify_rrset

ZONE = dns.name.from_text("example.")
NOW = 1_780_000_000
_KEYFILE = re.compile(r"^K(?P<zone>.+)\.\+(?P<alg>\d{3})\+(?P<tag>\d{5})$")


@dataclass(frozen=True)
class BindKey:
    base: Path  # .../Kexample.+013+12345 (no suffix)
    algorithm: Algorithm
    tag: int  # from the file name

    @property
    def key_file(self) -> Path:
        return self.base.with_name(self.base.name + ".key")

    @property
    def private_file(self) -> Path:
        return self.base.with_name(self.base.name + ".private")

    def dnskey(self) -> DnsKey:
        """The DNSKEY RDATA from BIND's .key file (comments skipped)."""
        for line in self.key_file.read_text().splitlines():
            if line.startswith(";") or " DNSKEY " not in line:
                continue
            return DnsKey.from_text(line.split(" DNSKEY ", 1)[1])
        raise AssertionError(f"no DNSKEY in {self.key_file}")


def run(*argv: str) -> str:
    tool = require_tool(argv[0])
    proc = subprocess.run([tool, *argv[1:]], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stderr}"
    return proc.stdout


def keygen(directory: Path, algorithm: Algorithm, *, ksk: bool = True) -> BindKey:
    argv = ["dnssec-keygen", "-q", "-K", str(directory), "-a", algorithm.name]
    if ksk:
        argv += ["-f", "KSK"]
    if algorithm in (Algorithm.RSASHA256, Algorithm.RSASHA512):
        argv += ["-b", "2048" if ksk else "1024"]
    name = run(*argv, ZONE.to_text()).strip()
    m = _KEYFILE.match(name)
    assert m, name
    assert int(m["alg"]) == int(algorithm)
    return BindKey(directory / name, algorithm, int(m["tag"]))


@pytest.fixture(scope="module")
def bind_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[Algorithm, BindKey]:
    d = tmp_path_factory.mktemp("bindkeys")
    return {alg: keygen(d, alg) for alg in Algorithm}


ALGS = list(Algorithm)


@pytest.mark.parametrize("alg", ALGS, ids=[a.name for a in ALGS])
def test_dnskey_and_key_tag_match_bind(bind_keys: dict[Algorithm, BindKey], alg: Algorithm) -> None:
    bk = bind_keys[alg]
    theirs = bk.dnskey()
    ours = load_bind_private(bk.private_file)
    assert ours.dnskey == theirs  # public key derived from the private key, flags from .key
    assert theirs.flags == 257 and theirs.is_sep
    assert theirs.key_tag == bk.tag == ours.dnskey.key_tag
    assert theirs.key_tag == dns.dnssec.key_id(theirs.to_rdata())


def _dsfromkey(key_file: Path, *opts: str) -> DsRecord:
    out = run("dnssec-dsfromkey", *opts, str(key_file)).strip().splitlines()
    assert len(out) == 1, out
    owner, _cls, rtype, rdata = out[0].split(None, 3)
    assert dns.name.from_text(owner) == ZONE and rtype == "DS"
    return DsRecord.from_text(rdata)


@pytest.mark.parametrize("alg", ALGS, ids=[a.name for a in ALGS])
def test_ds_matches_dsfromkey(bind_keys: dict[Algorithm, BindKey], alg: Algorithm) -> None:
    bk = bind_keys[alg]
    key = bk.dnskey()
    for opts, digest_type in ((("-2",), DIGEST_SHA256), (("-a", "SHA-384"), DIGEST_SHA384)):
        theirs = _dsfromkey(bk.key_file, *opts)
        assert theirs.digest_type == digest_type
        ours = make_ds(ZONE, key, digest_type)
        assert ours == theirs
        assert ours.to_wire() == theirs.to_wire()
        assert ours.rdata_text().lower() == theirs.rdata_text().lower()
        assert theirs.matches(ZONE, key)


@pytest.mark.parametrize("alg", ALGS, ids=[a.name for a in ALGS])
def test_sign_with_bind_key_validates(bind_keys: dict[Algorithm, BindKey], alg: Algorithm) -> None:
    bk = bind_keys[alg]
    key = load_bind_private(bk.private_file).enable_verification()
    keyset = dns.rrset.from_rdata(ZONE, 3600, key.dnskey.to_rdata())
    rrsets = [
        keyset,
        dns.rrset.from_text("Example.", 3600, "IN", "NS", "NS1.Example.", "ns2.example."),
        dns.rrset.from_text(
            "*.Wild.EXAMPLE.", 300, "IN", "MX", "20 B.example.", "10 a.EXAMPLE.", "10 c.example."
        ),
        dns.rrset.from_text("www.example.", 60, "IN", "AAAA", "2001:db8::2", "2001:db8::1"),
        dns.rrset.from_text("txt.example.", 60, "IN", "TXT", '"hello world"', '"A" "b"'),
    ]
    for rr in rrsets:
        sig = sign_rrset(rr, key, ZONE, NOW - 3600, NOW + 86400)
        dns.dnssec.validate(rr, dns.rrset.from_rdata(rr.name, rr.ttl, sig), {ZONE: keyset}, now=NOW)
        assert verify_rrset(rr, sig, [bk.dnskey()], now=NOW) == bk.dnskey()


@pytest.mark.parametrize("alg", ALGS, ids=[a.name for a in ALGS])
def test_revoke_matches_dnssec_revoke(tmp_path: Path, alg: Algorithm) -> None:
    bk = keygen(tmp_path, alg)
    before = {p.name for p in tmp_path.iterdir()}
    run("dnssec-revoke", "-K", str(tmp_path), bk.base.name)
    new = sorted({p.name for p in tmp_path.iterdir()} - before)
    assert len(new) == 2, new  # the revoked key's .key and .private
    m = _KEYFILE.match(Path(new[0]).stem)
    assert m
    revoked_bind = BindKey(tmp_path / Path(new[0]).stem, alg, int(m["tag"]))
    theirs = revoked_bind.dnskey()
    ours = bk.dnskey().revoked()
    assert theirs.flags == 257 | 0x80 and theirs.is_revoked
    assert ours == theirs
    assert ours.to_wire() == theirs.to_wire()
    assert ours.key_tag == revoked_bind.tag == theirs.key_tag
    assert ours.key_tag == dns.dnssec.key_id(ours.to_rdata())
    assert ours.unrevoked() == bk.dnskey()
    # the revoked private key file loads with flags 385 from its .key file
    loaded = load_bind_private(revoked_bind.private_file)
    assert loaded.dnskey == theirs
    # a revoked key signs its own DNSKEY RRset (RFC 5011 sect. 2.1) and nothing else verifies
    keyset = dns.rrset.from_rdata(ZONE, 3600, bk.dnskey().to_rdata(), theirs.to_rdata())
    sig = sign_rrset(keyset, loaded, ZONE, NOW - 10, NOW + 10)
    assert verify_rrset(keyset, sig, [theirs], now=NOW) == theirs
    a = dns.rrset.from_text("a.example.", 60, "IN", "A", "192.0.2.1")
    with pytest.raises(VerificationError, match="revoked"):
        verify_rrset(a, sign_rrset(a, loaded, ZONE, NOW - 10, NOW + 10), [theirs], now=NOW)


def test_zsk_ds_needs_force(tmp_path: Path) -> None:
    bk = keygen(tmp_path, Algorithm.ECDSAP256SHA256, ksk=False)
    key = bk.dnskey()
    assert key.flags == 256 and bk.tag == key.key_tag
    with pytest.raises(DsNotFromSepKey, match="KEY-DS-SEP"):
        make_ds(ZONE, key)
    assert make_ds(ZONE, key, force=True) == _dsfromkey(bk.key_file, "-2")


def test_softkey_round_trip_through_bind_private(bind_keys: dict[Algorithm, BindKey]) -> None:
    """The same key signs the same bytes whether loaded from BIND's file or re-exported PEM."""
    from signer.keys.soft import load_pem

    bk = bind_keys[Algorithm.ED25519]
    key = load_bind_private(bk.private_file)
    pem = bk.base.with_name("ed.pem")
    pem.write_bytes(key.to_pem())
    again = load_pem(pem, flags=257)
    assert again.dnskey == key.dnskey
    assert isinstance(again, SoftKey) and again.sign(b"x") == key.sign(b"x")
