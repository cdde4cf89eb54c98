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


def _dnspython_rrsets(path: Path, origin: str) -> dict[tuple[bytes, int], tuple[bytes, ...]]:
    ref = dns.zone.from_file(str(path), origin=origin, relativize=False, check_origin=False)
    want: dict[tuple[bytes, int], set[bytes]] = {}
    for name, node in ref.nodes.items():
        owner = name.canonicalize().to_wire()
        assert owner is not None
        for rds in node.rdatasets:  # RRSIGs of one owner are one RRset for us
            want.setdefault((owner, int(rds.rdtype)), set()).update(
                rd.to_digestable(ref.origin) for rd in rds
            )
    return {k: tuple(sorted(v)) for k, v in want.items()}


@pytest.mark.parametrize("nsec3", [False, True])
def test_signed_zone_fast_parsers_match_dnspython(tmp_path: Path, nsec3: bool) -> None:
    """RRSIG, NSEC, NSEC3, DNSKEY (read for --previous) are parsed by hand: equal to dnspython
    on a BIND-signed zone (mixed-case NSEC next names kept, RRSIG signer lowercased)."""
    from tests.zone_testlib import ORIGIN, bind_keys, bind_sign, generated_zone

    src = tmp_path / "z.zone"
    src.write_text(generated_zone(40) + "Mixed A 192.0.2.9\n*.W TXT wild\n")
    keys = bind_keys(tmp_path / "keys")
    out = bind_sign(src, keys, tmp_path / "z.signed", nsec3=nsec3, optout=nsec3)
    want = _dnspython_rrsets(out, ORIGIN)
    zone = load_zone(out, ORIGIN, allow_dnssec=True)
    got = {(o, rs.rtype): rs.rdatas for o, rrsets in zone.nodes.items() for rs in rrsets}
    assert got == want
    types = {t for _, t in got}
    assert {46, 48} <= types and (50 in types if nsec3 else 47 in types)


SIGNED_BAD = [
    ("x RRSIG A 13 2 60 20300101000000 20200101000000 1 t.\n", "RRSIG takes"),
    ("x RRSIG A 13 2 60 20301301000000 20200101000000 1 t. AA== AA==\n", "bad RRSIG time"),
    ("x RRSIG A 13 2 60 2030010100000x 20200101000000 1 t. AA==\n", "bad RRSIG time"),
    ("x RRSIG A 13 2 60 20300101000000 20200101000000 1 t. A*==\n", "not base64"),
    ("x RRSIG BOGUS 13 2 60 20300101000000 20200101000000 1 t. AA==\n", "unknown RR type"),
    ("x NSEC y.t. A BOGUS\n", "unknown RR type"),
    ("x NSEC3 1 1 0 zz 0123 A\n", "salt is not hexadecimal"),
    ("x NSEC3 1 1 0 - 012w A\n", "not base32hex"),
    ("@ DNSKEY 256 3 13\n", "DNSKEY takes"),
]


@pytest.mark.parametrize(("text", "needle"), SIGNED_BAD)
def test_signed_zone_parse_errors_name_file_and_line(
    tmp_path: Path, text: str, needle: str
) -> None:
    p = tmp_path / "bad.signed"
    p.write_text("$TTL 60\n$ORIGIN t.\n@ SOA ns hm 1 2 3 4 5\n" + text)
    with pytest.raises(InputError) as ei:
        load_zone(p, "t.", allow_dnssec=True)
    assert str(ei.value).startswith(f"{p}:4: "), str(ei.value)
    assert needle in str(ei.value)


# Records that take the loader's fast path (their TTL/class/type tokens were seen before):
# the same checks, in the same order, with the same messages and lines as the general path.
WARM = (
    "w1 A 192.0.2.9\nw2 60 IN NS ns\nw3 in AAAA ::1\nw4 DS 1 13 2 " + "00" * 32 + "\n"
    'w5 MX 1 mx\nw6 CAA 0 issue "ca"\nw7 TXT x\nw8 TYPE65000 \\# 1 01\nw9 70 NS ns\n'
)


@pytest.mark.parametrize(
    ("text", "line", "needle"), [b for b in BAD if b[0].startswith("@ IN SOA")]
)
def test_loader_errors_after_warm_tokens(tmp_path: Path, text: str, line: int, needle: str) -> None:
    first, rest = text.split("\n", 1)
    p = tmp_path / "bad.zone"
    p.write_text("$TTL 60\n$ORIGIN t.\n" + first + "\n" + WARM + rest)
    with pytest.raises(InputError) as ei:
        load_zone(p, "t.")
    assert str(ei.value).startswith(f"{p}:{line + 2 + WARM.count(chr(10))}: "), str(ei.value)
    assert needle in str(ei.value)


def test_fast_path_owners_targets_and_origins_match_dnspython(tmp_path: Path) -> None:
    """Repeated owner text under a new $ORIGIN, omitted owners, relative and absolute
    targets, upper case, a TTL-less record under $TTL: the same RRsets as dnspython."""
    p = tmp_path / "z"
    body = (
        "$ORIGIN t.\n$TTL 60\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns.t.\n"
        "a 60 IN NS ns1\na 60 IN NS NS1.Ext.\nns 60 IN A 192.0.2.1\n"
        "$ORIGIN sub.t.\na 60 IN NS ns1\n  60 IN NS ns1.ext.\nB 60 IN NS ns1.ext.\n"
        "b IN NS ns2\nx.y 60 IN CNAME a\nc.sub.t. 60 IN NS @\n"
    )
    p.write_text(body)
    zone = load_zone(p, "t.")
    got = {(o, rs.rtype): rs.rdatas for o, rrsets in zone.nodes.items() for rs in rrsets}
    assert got == _dnspython_rrsets(p, "t.")
    n = lambda s: name_from_text(s, None)  # noqa: E731
    assert zone.get(n("a.sub.t."), 2) is not None and zone.get(n("a.t."), 2) is not None
    assert zone.get(n("b.sub.t."), 2).rdatas == tuple(  # type: ignore[union-attr]
        sorted((n("ns1.ext."), n("ns2.sub.t.")))
    )
    # an absolute owner outside the zone after the same shapes: refused at its line
    p.write_text(body + "$ORIGIN other.\nq 60 IN NS ns1.ext.\n")
    with pytest.raises(InputError, match=rf"^{p}:16: q.other. is outside the zone t."):
        load_zone(p, "t.")


def test_canonical_key_orders_like_dnspython_with_odd_octets() -> None:
    import random

    rnd = random.Random(7)
    octets = [0, 1, 2, 0x2E, 0x61, 0x62, 0xFF]
    names = set()
    for _ in range(3000):
        labels = [
            bytes(rnd.choice(octets) for _ in range(rnd.randint(1, 3)))
            for _ in range(rnd.randint(0, 5))
        ]
        names.add(b"".join(bytes((len(lab),)) + lab for lab in labels) + b"\x00")
    ours = sorted(names, key=canonical_key)
    ref = sorted(names, key=lambda w: dns.name.from_wire(w, 0)[0])
    assert ours == ref
    assert len({canonical_key(w) for w in names}) == len(names)
