"""Canonical form (RFC 4034 sect. 6, RFC 6840 sect. 5.1) and RRSIG labels/original TTL.

Two halves:

* unit checks of the canonical RDATA, ordering, duplicates, wildcards, escapes and the NSEC
  exception, each signed with our code and validated with dnspython;
* a zone full of awkward names signed by BIND's ``dnssec-signzone`` with BIND keys: every
  RRSIG BIND made verifies with our ``verify_rrset``; with the same key and header our
  RRSIGs are byte-for-byte BIND's for the deterministic algorithms (Ed25519, RSA); and the
  zone re-signed entirely with our RRSIGs passes ``dnssec-verify`` and ``ldns-verify-zone``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import dns.dnssec
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.rrset
import dns.zone
import pytest
from conftest import require_tool

from signer.algorithms import Algorithm
from signer.dnskey import DnsKey
from signer.errors import InputError, VerificationError
from signer.keys.soft import SoftKey, load_bind_private
from signer.rrsig import (
    RrsigHeader,
    canonical_rdatas,
    rrset_signing_data,
    rrsig_labels,
    sign_rrset,
    signing_data_wire,
    verify_rrset,
)

ORIGIN = dns.name.from_text("example.")
NOW = int(time.time())  # dnssec-verify and ldns-verify-zone check validity against the clock
INCEPTION = NOW - 3600
EXPIRATION = NOW + 30 * 86400


@pytest.fixture(scope="module")
def ed_key() -> SoftKey:
    return SoftKey.generate(Algorithm.ED25519, ksk=False)


def _validate(rr: dns.rrset.RRset, sig: dns.rdata.Rdata, key: DnsKey) -> None:
    keys = {ORIGIN: dns.rrset.from_rdata(ORIGIN, 3600, key.to_rdata())}
    dns.dnssec.validate_rrsig(rr, sig, keys, now=NOW)  # type: ignore[attr-defined]
    assert verify_rrset(rr, sig, [key], now=NOW) == key


# -- embedded names: lowercased exactly for the RFC 4034 6.2 list as amended by RFC 6840 5.1 --
LOWERCASED = {
    "NS": "NS1.EXAMPLE.",
    "CNAME": "A.EXAMPLE.",
    "SOA": "NS.EXAMPLE. HOST.EXAMPLE. 1 2 3 4 5",
    "PTR": "A.EXAMPLE.",
    "MX": "10 A.EXAMPLE.",
    "RP": "A.EXAMPLE. B.EXAMPLE.",
    "AFSDB": "1 A.EXAMPLE.",
    "RT": "1 A.EXAMPLE.",
    "PX": "1 A.EXAMPLE. B.EXAMPLE.",
    "NAPTR": '1 1 "S" "SIP+D2U" "" _SIP._UDP.EXAMPLE.',
    "KX": "1 A.EXAMPLE.",
    "SRV": "1 1 1 A.EXAMPLE.",
    "DNAME": "A.EXAMPLE.",
    "RRSIG": "A 13 2 300 20300101000000 20200101000000 1 A.EXAMPLE. AAAA",
    "SIG": "A 13 2 300 20300101000000 20200101000000 1 A.EXAMPLE. AAAA",
}
KEPT = {
    "NSEC": "A.EXAMPLE. A RRSIG NSEC",  # RFC 6840 sect. 5.1: not lowercased
    "HINFO": '"CPU" "OS"',
    "TXT": '"MIXED Case"',
    "CAA": '0 issue "CA.EXAMPLE"',
    "SVCB": "1 A.EXAMPLE. alpn=h2",
    "HTTPS": "1 A.EXAMPLE.",
}


@pytest.mark.parametrize("rtype", sorted(LOWERCASED))
def test_embedded_names_lowercased(rtype: str, ed_key: SoftKey) -> None:
    text = LOWERCASED[rtype]
    upper = dns.rrset.from_text("Owner.EXAMPLE.", 300, "IN", rtype, text)
    # lowercase the names only (not the base64 signature, not quoted strings)
    lower_text = " ".join(w.lower() if w.endswith(".") else w for w in text.split())
    lower = dns.rrset.from_text("owner.example.", 300, "IN", rtype, lower_text)
    assert canonical_rdatas(upper) == [lower[0].to_wire()]
    assert upper[0].to_wire() != lower[0].to_wire()
    sig = sign_rrset(upper, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    _validate(lower, sig, ed_key.dnskey)
    assert sign_rrset(lower, ed_key, ORIGIN, INCEPTION, EXPIRATION).signature == sig.signature


@pytest.mark.parametrize("rtype", sorted(KEPT))
def test_other_rdata_is_not_lowercased(rtype: str, ed_key: SoftKey) -> None:
    text = KEPT[rtype]
    rr = dns.rrset.from_text("owner.example.", 300, "IN", rtype, text)
    assert canonical_rdatas(rr) == [rr[0].to_wire()]
    assert any(65 <= b <= 90 for b in rr[0].to_wire())  # really has upper case
    sig = sign_rrset(rr, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    _validate(rr, sig, ed_key.dnskey)


def test_nsec_next_name_keeps_its_case(ed_key: SoftKey) -> None:
    """RFC 6840 sect. 5.1: the NSEC next name is NOT lowercased for signing."""
    upper = dns.rrset.from_text("a.example.", 300, "IN", "NSEC", "UPPER.Example. A RRSIG NSEC")
    lower = dns.rrset.from_text("a.example.", 300, "IN", "NSEC", "upper.example. A RRSIG NSEC")
    sig = sign_rrset(upper, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    data = rrset_signing_data(upper, RrsigHeader.of(sig))
    assert b"\x05UPPER\x07Example\x00" in data
    _validate(upper, sig, ed_key.dnskey)
    with pytest.raises(VerificationError, match="does not verify"):
        verify_rrset(lower, sig, [ed_key.dnskey])
    keys = {ORIGIN: dns.rrset.from_rdata(ORIGIN, 3600, ed_key.dnskey.to_rdata())}
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate_rrsig(lower, sig, keys, now=NOW)  # type: ignore[attr-defined]


# -- ordering, duplicates, owner case, escapes ------------------------------------------------
def test_rdata_sorted_by_canonical_form(ed_key: SoftKey) -> None:
    """'B' (0x42) sorts before 'a' (0x61) as typed, but after it once lowercased."""
    one = dns.rrset.from_text("Example.", 300, "IN", "MX", "10 B.example.", "10 a.EXAMPLE.")
    two = dns.rrset.from_text("example.", 300, "IN", "MX", "10 a.example.", "10 b.example.")
    header = RrsigHeader(15, Algorithm.ED25519, 1, 300, EXPIRATION, INCEPTION, 1, ORIGIN)
    assert rrset_signing_data(one, header) == rrset_signing_data(two, header)
    data = rrset_signing_data(one, header)
    assert data.index(b"\x01a\x07example") < data.index(b"\x01b\x07example")
    sig = sign_rrset(one, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    _validate(two, sig, ed_key.dnskey)


def test_duplicates_and_input_order_do_not_matter() -> None:
    header = b"H"
    owner = b"\x07example\x00"
    rds = [b"\x00\x0a\x01b\x00", b"\x00\x0a\x01a\x00", b"\x00\x05\x01z\x00"]
    a = signing_data_wire(header, owner, 15, 1, 300, rds)
    b = signing_data_wire(header, owner, 15, 1, 300, [*reversed(rds), rds[0], rds[2]])
    assert a == b
    # shorter RDATA sorts first when it is a prefix ("absence of an octet sorts before zero")
    c = signing_data_wire(header, owner, 16, 1, 300, [b"\x01\x00", b"\x01"])
    assert c.index(b"\x00\x01\x01") < c.index(b"\x00\x02\x01\x00")


def test_escaped_owner_names(ed_key: SoftKey) -> None:
    escaped = dns.rrset.from_text("\\065BC.Example.", 300, "IN", "A", "192.0.2.7")
    plain = dns.rrset.from_text("abc.example.", 300, "IN", "A", "192.0.2.7")
    sig = sign_rrset(escaped, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    _validate(plain, sig, ed_key.dnskey)
    dotted = dns.rrset.from_text("a\\.b.example.", 300, "IN", "A", "192.0.2.6")
    assert rrsig_labels(dotted.name) == 2  # "a.b" is one label
    sig = sign_rrset(dotted, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    assert sig.labels == 2
    _validate(dotted, sig, ed_key.dnskey)
    other = dns.rrset.from_text("a.b.example.", 300, "IN", "A", "192.0.2.6")
    with pytest.raises(VerificationError):
        verify_rrset(other, sig, [ed_key.dnskey])


# -- wildcards and labels ------------------------------------------------------------------------
def test_wildcard_labels_and_expansion(ed_key: SoftKey) -> None:
    wild = dns.rrset.from_text("*.Wild.example.", 300, "IN", "A", "192.0.2.5")
    sig = sign_rrset(wild, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    assert sig.labels == 2
    _validate(wild, sig, ed_key.dnskey)
    # an answer synthesised from the wildcard verifies with the wildcard's RRSIG
    for qname in ("x.wild.example.", "X.Y.Z.WILD.example."):
        expanded = dns.rrset.from_text(qname, 300, "IN", "A", "192.0.2.5")
        _validate(expanded, sig, ed_key.dnskey)
    # a wildcard owner with the wrong labels count is refused by both validators
    bad = sig.replace(labels=1)
    with pytest.raises(VerificationError, match="wildcard"):
        verify_rrset(wild, bad, [ed_key.dnskey])
    with pytest.raises(VerificationError, match="exceeds"):
        verify_rrset(wild, sig.replace(labels=3), [ed_key.dnskey])


def test_original_ttl_is_signed(ed_key: SoftKey) -> None:
    rr = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1")
    sig = sign_rrset(rr, ed_key, ORIGIN, INCEPTION, EXPIRATION, original_ttl=3600)
    assert sig.original_ttl == 3600
    cached = dns.rrset.from_text("www.example.", 42, "IN", "A", "192.0.2.1")  # TTL counted down
    _validate(cached, sig, ed_key.dnskey)
    with pytest.raises(VerificationError, match="does not verify"):
        verify_rrset(rr, sig.replace(original_ttl=300), [ed_key.dnskey])


def test_signer_outside_zone_refused(ed_key: SoftKey) -> None:
    rr = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1")
    sig = sign_rrset(rr, ed_key, ORIGIN, INCEPTION, EXPIRATION)
    with pytest.raises(VerificationError, match="signer"):
        verify_rrset(rr, sig.replace(signer=dns.name.from_text("other.")), [ed_key.dnskey])
    txt = dns.rrset.from_text("t.example.", 300, "IN", "TXT", '"x"')
    chaos = dns.rrset.from_text("t.example.", 300, "CH", "TXT", '"x"')
    with pytest.raises(VerificationError, match="class"):
        verify_rrset(chaos, sign_rrset(txt, ed_key, ORIGIN, INCEPTION, EXPIRATION), [ed_key.dnskey])
    # and our signer refuses to sign for a zone the owner is not in
    with pytest.raises(InputError, match="not the zone"):
        sign_rrset(rr, ed_key, dns.name.from_text("other."), INCEPTION, EXPIRATION)


def test_fast_path_equals_rrset_path(ed_key: SoftKey) -> None:
    rr = dns.rrset.from_text("Mail.Example.", 300, "IN", "MX", "10 B.Example.", "5 a.example.")
    header = RrsigHeader(15, Algorithm.ED25519, 2, 300, EXPIRATION, INCEPTION, 7, ORIGIN)
    fast = signing_data_wire(
        header.to_wire(), b"\x04mail\x07example\x00", 15, 1, 300, canonical_rdatas(rr)
    )
    assert fast == rrset_signing_data(rr, header)


# -- BIND dnssec-signzone ------------------------------------------------------------------------
ZONE_TEXT = r"""$ORIGIN Example.
$TTL 300
@        IN SOA NS1.Example. HostMaster.EXAMPLE. 1 7200 3600 1209600 300
@        IN NS  NS1.Example.
@        IN NS  ns2.EXAMPLE.
@        IN MX  20 Mail.EXAMPLE.
@        IN MX  10 mail.example.
@        IN MX  10 MAIL2.example.
@        IN MX  10 mail.example.
NS1      IN A   192.0.2.1
ns2      IN A   192.0.2.2
Mail     IN A   192.0.2.3
Mail     IN A   192.0.2.30
Mail     IN A   192.0.2.4
mail2    IN AAAA 2001:db8::3
WWW      IN CNAME Mail.Example.
UPPER    IN A   192.0.2.4
_sip._tcp IN SRV 0 5 5060 SIPSERVER.Example.
4.2.0.192.in-addr IN PTR WWW.EXAMPLE.
sub      IN DNAME Target.EXAMPLE.
rp       IN RP  Admin.Example. TXT.Example.
afs      IN AFSDB 1 AFS.Example.
naptr    IN NAPTR 100 10 "S" "SIP+D2U" "" _SIP._UDP.Example.
rt       IN RT 10 Relay.Example.
kx       IN KX 10 KX.Example.
px       IN PX 10 Map822.Example. MapX400.Example.
hinfo    IN HINFO "CPU" "OS"
txt      IN TXT "Mixed CASE text" "second"
long     3600 IN TXT "original TTL 3600"
*.Wild   IN A   192.0.2.5
*.Wild   IN TXT "wildcard"
a\.b     IN A   192.0.2.6
\065bc   IN A   192.0.2.7
sp\032ace IN A  192.0.2.8
caa      IN CAA 0 issue "CA.Example.NET"
svc      IN SVCB 1 Target.Example. alpn=h2
deleg    IN NS  NS.Deleg.Example.
NS.Deleg IN A   192.0.2.9
"""

DELEG = dns.name.from_text("deleg.example.")
BIND_ALGS = [Algorithm.ED25519, Algorithm.RSASHA256, Algorithm.ECDSAP256SHA256]
DETERMINISTIC = {Algorithm.ED25519, Algorithm.RSASHA256}


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    tool = require_tool(argv[0])
    return subprocess.run([tool, *argv[1:]], capture_output=True, text=True, check=False, cwd=cwd)


def _bind_signed(directory: Path, alg: Algorithm) -> tuple[dns.zone.Zone, dict[int, SoftKey]]:
    (directory / "example.zone").write_text(ZONE_TEXT)
    keys: dict[int, SoftKey] = {}
    for ksk in (True, False):
        argv = ["dnssec-keygen", "-q", "-K", str(directory), "-a", alg.name]
        argv += ["-f", "KSK"] if ksk else ["-b", "1024"] if alg == Algorithm.RSASHA256 else []
        proc = _run(*argv, "example.")
        assert proc.returncode == 0, proc.stderr
        key = load_bind_private(directory / (proc.stdout.strip() + ".private"))
        keys[key.dnskey.key_tag] = key
    proc = _run(
        "dnssec-signzone", "-K", str(directory), "-d", str(directory), "-o", "example.", "-S",
        "-s", str(INCEPTION), "-e", str(EXPIRATION),
        "-f", str(directory / "signed.zone"), str(directory / "example.zone"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    zone = dns.zone.from_file(str(directory / "signed.zone"), origin="example.", relativize=False)
    return zone, keys


def _rrsets(
    zone: dns.zone.Zone,
) -> list[tuple[dns.rrset.RRset, list[dns.rdtypes.ANY.RRSIG.RRSIG]]]:
    out = []
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            if rds.rdtype == dns.rdatatype.RRSIG:
                continue
            rr = dns.rrset.RRset(name, rds.rdclass, rds.rdtype)
            rr.update(rds)
            sigset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rds.rdtype)
            out.append((rr, list(sigset) if sigset else []))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("alg", BIND_ALGS, ids=[a.name for a in BIND_ALGS])
def test_bind_signed_zone(tmp_path: Path, alg: Algorithm) -> None:
    zone, keys = _bind_signed(tmp_path, alg)
    dnskeys = [k.dnskey for k in keys.values()]
    rrsets = _rrsets(zone)
    types = {rr.rdtype for rr, _ in rrsets}
    assert {dns.rdatatype.NSEC, dns.rdatatype.NAPTR, dns.rdatatype.DNAME} <= types
    signed = 0
    for rr, sigs in rrsets:
        if rr.name.is_subdomain(DELEG) and rr.rdtype != dns.rdatatype.NSEC:
            assert not sigs  # delegation NS and glue are not signed
            continue
        assert sigs, f"{rr.name} {rr.rdtype.name} unsigned"
        for sig in sigs:
            # BIND's RRSIG verifies with our code ...
            used = verify_rrset(rr, sig, dnskeys, now=NOW)
            # ... and our RRSIG with the same key and header is BIND's, byte for byte
            ours = sign_rrset(
                rr, keys[used.key_tag], ORIGIN, sig.inception, sig.expiration,
                original_ttl=sig.original_ttl,
            )  # fmt: skip
            assert RrsigHeader.of(ours) == RrsigHeader.of(sig)
            if alg in DETERMINISTIC:
                assert ours.to_wire() == sig.to_wire(), f"{rr.name} {rr.rdtype.name}"
            signed += 1
    assert signed >= 30
    # the NSEC next names keep the case they had in the zone (RFC 6840 sect. 5.1)
    nsecs = [rd for rr, _ in rrsets if rr.rdtype == dns.rdatatype.NSEC for rd in rr]
    assert any(b"UPPER" in rd.next.to_wire() for rd in nsecs)  # type: ignore[attr-defined]

    # a wildcard-synthesised answer verifies with the wildcard's RRSIG
    wild = dns.name.from_text("*.wild.example.")
    wsig = zone.find_rdataset(wild, dns.rdatatype.RRSIG, dns.rdatatype.A)[0]
    answer = dns.rrset.from_text("Host.Deep.WILD.example.", 300, "IN", "A", "192.0.2.5")
    assert wsig.labels == 2
    verify_rrset(answer, wsig, dnskeys, now=NOW)


@pytest.mark.parametrize("alg", BIND_ALGS, ids=[a.name for a in BIND_ALGS])
def test_zone_resigned_by_us_passes_bind_and_ldns(tmp_path: Path, alg: Algorithm) -> None:
    """Replace every RRSIG in BIND's output with ours; BIND and ldns still accept the zone."""
    zone, keys = _bind_signed(tmp_path, alg)
    by_tag = {tag: k for tag, k in keys.items()}
    for rr, sigs in _rrsets(zone):
        if not sigs:
            continue
        node = zone.nodes[rr.name]
        new = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rr.rdtype)
        for sig in sigs:
            new.add(
                sign_rrset(
                    rr, by_tag[sig.key_tag], ORIGIN, INCEPTION, EXPIRATION,
                    original_ttl=sig.original_ttl,
                ),
                sig_ttl(node, rr),
            )  # fmt: skip
        node.replace_rdataset(new)
    out = tmp_path / "ours.zone"
    zone.to_file(str(out), relativize=False)
    proc = _run("dnssec-verify", "-o", "example.", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Zone fully signed" in proc.stdout + proc.stderr
    if shutil.which("ldns-verify-zone"):
        ldns = _run("ldns-verify-zone", "-t", time_text_for_ldns(NOW), str(out))
        assert ldns.returncode == 0, ldns.stderr + ldns.stdout
    # and a single flipped signature is caught
    node = zone.nodes[dns.name.from_text("txt.example.")]
    rds = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.TXT)
    rd = rds[0]
    sig = bytearray(rd.signature)  # type: ignore[attr-defined]
    sig[5] ^= 1
    rds.remove(rd)
    rds.add(rd.replace(signature=bytes(sig)))
    zone.to_file(str(out), relativize=False)
    proc = _run("dnssec-verify", "-o", "example.", str(out))
    assert proc.returncode != 0


def sig_ttl(node: dns.node.Node, rr: dns.rrset.RRset) -> int:
    existing = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rr.rdtype)
    return existing.ttl if existing is not None else rr.ttl


def time_text_for_ldns(t: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))


# -- obsolete types RFC 4034 sect. 6.2 lists, which dnspython reads only as generic RDATA --------
OBSOLETE_ZONE = r"""$ORIGIN example.
$TTL 300
@ IN SOA ns.example. h.example. 1 2 3 4 5
@ IN NS ns.example.
ns IN A 192.0.2.1
mb IN MB Mailbox.EXAMPLE.
mg IN MG Group.EXAMPLE.
mr IN MR Rename.EXAMPLE.
md IN MD Dest.EXAMPLE.
mf IN MF Fwd.EXAMPLE.
minfo IN MINFO RMail.EXAMPLE. EMail.Example.
a6 IN A6 64 ::1:2:3:4 Prefix.EXAMPLE.
a6b IN A6 0 2001:db8::1
"""
_NAMES_ONLY = {"MB": 7, "MG": 8, "MR": 9, "MD": 3, "MF": 4, "MINFO": 14}


def _generic(rtype: str, rdata: str) -> str:
    """RFC 3597 form of the obsolete-type RDATA BIND prints (dnspython cannot read them)."""
    fields = rdata.split()
    if rtype in _NAMES_ONLY:
        wire = b"".join(dns.name.from_text(f).to_wire() or b"" for f in fields)
        code = _NAMES_ONLY[rtype]
    else:  # A6: prefix length, address suffix, prefix name
        import ipaddress

        plen = int(fields[0])
        addr = ipaddress.IPv6Address(fields[1]).packed
        wire = bytes([plen]) + addr[plen // 8 :]
        if plen:
            wire += dns.name.from_text(fields[2]).to_wire() or b""
        code = 38
    return f"TYPE{code} \\# {len(wire)} {wire.hex()}"


def test_obsolete_types_match_bind(tmp_path: Path) -> None:
    (tmp_path / "obs.zone").write_text(OBSOLETE_ZONE)
    proc = _run(
        "dnssec-keygen", "-q", "-K", str(tmp_path), "-a", "ED25519", "-f", "KSK", "example."
    )
    assert proc.returncode == 0, proc.stderr
    key = load_bind_private(tmp_path / (proc.stdout.strip() + ".private"))
    proc = _run(
        "dnssec-signzone", "-K", str(tmp_path), "-d", str(tmp_path), "-o", "example.", "-S",
        "-z", "-O", "full",
        "-s", str(INCEPTION), "-e", str(EXPIRATION),
        "-f", str(tmp_path / "signed.zone"), str(tmp_path / "obs.zone"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = []
    for line in (tmp_path / "signed.zone").read_text().splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        owner, ttl, cls, rtype, rdata = line.split(None, 4)
        if rtype in _NAMES_ONLY or rtype == "A6":
            rdata, rtype = (
                _generic(rtype, rdata).split(" ", 1)[1],
                _generic(rtype, rdata).split()[0],
            )
        elif rtype == "RRSIG" and rdata.split()[0] in (*_NAMES_ONLY, "A6"):
            covered = rdata.split()[0]
            code = _NAMES_ONLY.get(covered, 38)
            rdata = f"TYPE{code} " + rdata.split(None, 1)[1]
        lines.append(f"{owner} {ttl} {cls} {rtype} {rdata}")
    zone = dns.zone.from_text("\n".join(lines), origin="example.", relativize=False)
    checked = 0
    for rr, sigs in _rrsets(zone):
        if int(rr.rdtype) not in (*_NAMES_ONLY.values(), 38):
            continue
        (sig,) = sigs
        assert isinstance(rr[0], dns.rdata.GenericRdata)
        assert verify_rrset(rr, sig, [key.dnskey], now=NOW) == key.dnskey
        ours = sign_rrset(rr, key, ORIGIN, sig.inception, sig.expiration)
        assert ours.to_wire() == sig.to_wire(), rr.rdtype
        # the names really were upper case and were lowercased for signing
        wire = rr[0].to_digestable()
        if wire != canonical_rdatas(rr)[0]:
            checked += 1
    assert checked == 7  # MB MG MR MD MF MINFO, and the A6 with a prefix name
