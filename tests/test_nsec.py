"""NSEC chain: order, closure, bitmaps (delegations, glue), TTL = min(SOA TTL, MINIMUM)."""

from __future__ import annotations

from pathlib import Path

from signer.zone.loader import load_zone
from signer.zone.model import (
    KIND_OCCLUDED,
    T_NSEC,
    bitmap_types,
    labels,
    name_from_text,
    name_to_text,
)
from signer.zone.nsec import add_nsec, negative_ttl
from signer.zone.rules import classify

DATA = Path(__file__).parent / "data" / "zones"


def _chain() -> dict[str, tuple[str, list[str], int]]:
    z = load_zone(DATA / "example.zone", "example.")
    classify(z)
    assert negative_ttl(z) == 300  # SOA TTL 3600, MINIMUM 300
    add_nsec(z)
    out = {}
    for name in z.order:
        rs = z.get(name, T_NSEC)
        if z.kinds[name] == KIND_OCCLUDED:
            assert rs is None
            continue
        assert rs is not None and len(rs.rdatas) == 1
        rd = rs.rdatas[0]
        nxt_len = len(b"".join(bytes((len(x),)) + x for x in labels(rd))) + 1
        import dns.rdatatype

        types = [dns.rdatatype.to_text(t) for t in bitmap_types(rd[nxt_len:])]  # type: ignore[arg-type]
        out[name_to_text(name)] = (name_to_text(rd[:nxt_len]), types, rs.ttl)
    return out


def test_chain_is_closed_and_in_canonical_order() -> None:
    c = _chain()
    names = list(c)
    assert names[0] == "example."
    for i, n in enumerate(names):
        assert c[n][0] == names[(i + 1) % len(names)]
        assert c[n][2] == 300
    # ENTs (c.deep, b.c.deep, ent) have no NSEC; glue/occluded names neither
    assert "c.deep.example." not in c and "ent.example." not in c
    assert "ns.sec.example." not in c and "txt.insec.example." not in c


def test_bitmaps() -> None:
    c = _chain()
    assert c["example."][1] == ["NS", "SOA", "MX", "TXT", "RRSIG", "NSEC"]
    assert c["sec.example."][1] == ["NS", "DS", "RRSIG", "NSEC"]
    assert c["insec.example."][1] == ["NS", "RRSIG", "NSEC"]
    assert c["www.example."][1] == ["CNAME", "RRSIG", "NSEC"]
    assert c["*.wild.example."][1] == ["TXT", "RRSIG", "NSEC"]
    assert c["gen.example."][1] == ["RRSIG", "NSEC", "TYPE65000"]


def test_uppercase_and_escaped_names_sort_canonically() -> None:
    c = _chain()
    names = list(c)
    assert names.index("esc\\.aped.example.") < names.index("gen.example.")
    assert names[-1] == "\\200bin.example."  # octet 200 sorts after every ASCII label
    assert name_to_text(name_from_text("WWW.Example.", None)) == "www.example."
