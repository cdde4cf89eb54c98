"""Fast master-file loader: RFC 1035 syntax, canonical wire output equal to dnspython's, and
one file:line error per kind of bad input."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from signer.errors import InputError
from signer.zone.loader import load_zone
from signer.zone.model import (
    T_A,
    T_TXT,
    canonical_key,
    name_from_text,
    name_to_text,
)

DATA = Path(__file__).parent / "data" / "zones"


def test_example_zone_matches_dnspython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)  # dnspython resolves $INCLUDE against the working directory
    zone = load_zone(DATA / "example.zone", "example.")
    ref = dns.zone.from_file(
        str(DATA / "example.zone"), origin="example.", relativize=False, check_origin=False
    )
    want: dict[tuple[bytes, int], tuple[int, tuple[bytes, ...]]] = {}
    for name, node in ref.nodes.items():
        for rds in node.rdatasets:
            owner = name.canonicalize().to_wire()
            assert owner is not None
            want[(owner, int(rds.rdtype))] = (
                rds.ttl,
                tuple(sorted({rd.to_digestable(ref.origin) for rd in rds})),
            )
    got = {(rs.owner, rs.rtype): (rs.ttl, rs.rdatas) for v in zone.nodes.values() for rs in v}
    assert got == want
    # $INCLUDE with its own origin, escapes and uppercase owners
    assert zone.get(name_from_text("host.sub.example.", None), T_A) is not None
    assert name_from_text("www.example.", None) in zone.nodes
    assert name_from_text("esc\\.aped.example.", None) in zone.nodes
    assert zone.get(name_from_text("\\200bin.example.", None), T_A) is not None
    txt = zone.get(zone.origin, T_TXT)
    assert txt is not None and txt.rdatas == (b'\x0bv=spf1 -all\x0fsecond "string"',)


def test_canonical_order_matches_dnspython() -> None:
    zone = load_zone(DATA / "example.zone", "example.")
    zone.sort()
    ref = sorted(dns.name.from_wire(n, 0)[0] for n in zone.nodes)
    assert [name_to_text(n) for n in zone.order] == [n.to_text() for n in ref]
    assert all(
        canonical_key(a) < canonical_key(b)
        for a, b in zip(zone.order, zone.order[1:], strict=False)
    )


def test_parentheses_omitted_fields_and_ttl_units(tmp_path: Path) -> None:
    p = tmp_path / "z"
    p.write_text(
        "$ORIGIN t.\n"
        "@ 1h IN SOA ns hm ( 1 2 3 4 ; comment inside\n  5 )\n"
        "  IN 1d NS ns\n"
        "ns A 192.0.2.1\n"
        'txt TXT a\\032b "c;d"\n'
    )
    z = load_zone(p, "t")
    soa = z.soa()
    assert soa.ttl == 3600
    ns = z.get(z.origin, 2)
    assert ns is not None and ns.ttl == 86400
    a = z.get(name_from_text("ns.t.", None), T_A)
    assert a is not None and a.ttl == 86400  # last explicit TTL (no $TTL)
    t = z.get(name_from_text("txt.t.", None), T_TXT)
    assert t is not None and t.rdatas == (b"\x03a b\x03c;d",)


BAD = [
    ("@ IN SOA ns hm 1 2 3 4 5\n( ns A 1.2.3.4\n", 2, "parenthesis"),
    ("@ IN SOA ns hm 1 2 3 4 5\nns A 1.2.3.4 )\n", 2, "parenthesis"),
    ("@ IN SOA ns hm 1 2 3 4 5\nns A 1.2.3\n", 2, "IPv4"),
    ("@ IN SOA ns hm 1 2 3 4 5\nns AAAA 1.2.3.4\n", 2, "IPv6"),
    ("@ IN SOA ns hm 1 2 3 4 5\nns FOO 1.2.3.4\n", 2, "unknown RR type"),
    ("@ IN SOA ns hm 1 2 3 4 5\nns CH A 1.2.3.4\n", 2, "class CH"),
    ("@ IN SOA ns hm 1 2 3 4 5\nns.other. A 1.2.3.4\n", 2, "outside the zone"),
    ("@ IN SOA ns hm 1 2 3 4 5\n@ DNSKEY 256 3 13 AAAA\n", 2, "DNSKEY record"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx NSEC3PARAM 1 0 0 -\n", 2, "NSEC3PARAM record"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx RRSIG A 13 2 3600 1 1 1 t. AAAA\n", 2, "RRSIG record"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx 60 A 1.2.3.4\nx 70 A 1.2.3.5\n", 3, "one TTL per RRset"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx CNAME y\nx A 1.2.3.5\n", 3, "CNAME must be alone"),
    ('@ IN SOA ns hm 1 2 3 4 5\nx TXT "unterminated\n', 2, "unterminated"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx DS 1 13 2 ABCD\n", 2, "needs 32 octets"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx DS 1 13 2 XYZ\n", 2, "not hexadecimal"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx MX ten mx\n", 2, "not a number"),
    ("@ IN SOA ns hm 1 2 3 4 5\n$GENERATE 1-2 x$ A 1.2.3.4\n", 2, "unsupported directive"),
    ("@ IN SOA ns hm 1 2 3 4 5\n$INCLUDE nothere.zone\n", 2, "no such file"),
    ("@ IN SOA ns hm 1 2 3 4 5\na..b A 1.2.3.4\n", 2, "empty label"),
    ("@ IN SOA ns hm 1 2 3 4 5\n" + "a" * 64 + " A 1.2.3.4\n", 2, "63 octets"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx 1y A 1.2.3.4\n", 2, "bad TTL"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx CAA 0 issue\n", 2, "bad CAA RDATA"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx TYPE65000 \\# 3 0102\n", 2, "bad TYPE65000 RDATA"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx A\n", 2, "without RDATA"),
    ("@ IN SOA ns hm 1 2 3 4 5\nx 60\n", 2, "without a type"),
    ("x\\2 A 1.2.3.4\n", 1, "escape"),
    ("A 1.2.3.4\n", 1, "bad TTL"),
    ("   A 1.2.3.4\n", 1, "no previous owner"),
]


@pytest.mark.parametrize(("text", "line", "needle"), BAD)
def test_loader_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    p = tmp_path / "bad.zone"
    p.write_text("$TTL 60\n$ORIGIN t.\n" + text)
    with pytest.raises(InputError) as ei:
        load_zone(p, "t.")
    assert ei.value.exit_code == 2
    assert str(ei.value).startswith(f"{p}:{line + 2}: "), str(ei.value)
    assert needle in str(ei.value)


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "inc.zone").write_text("ok A 192.0.2.1\nbad A 300.1.1.1\n")
    p = tmp_path / "main.zone"
    p.write_text("$ORIGIN t.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n$INCLUDE inc.zone\n")
    with pytest.raises(InputError, match=rf"^{tmp_path}/inc.zone:2: bad IPv4"):
        load_zone(p, "t.")


def test_missing_file() -> None:
    with pytest.raises(InputError, match="cannot read zone file"):
        load_zone("/nonexistent/zone", "t.")


def test_rare_type_falls_back_to_dnspython(tmp_path: Path) -> None:
    p = tmp_path / "z"
    p.write_text(
        '$ORIGIN t.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\nx NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.T.\n'
    )
    z = load_zone(p, "t.")
    rs = z.get(name_from_text("x.t.", None), int(dns.rdatatype.NAPTR))
    assert rs is not None and rs.rdatas[0].endswith(b"\x04_sip\x04_udp\x01t\x00")  # lowercased
