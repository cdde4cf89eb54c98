"""NSEC3 (RFC 5155, RFC 9276): hashes equal dnspython's, opt-out, ENTs, bitmaps, closure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.name
import pytest

from signer.zone.loader import load_zone
from signer.zone.model import (
    KIND_NSEC3,
    T_NSEC3,
    T_NSEC3PARAM,
    Zone,
    bitmap_types,
    name_from_text,
)
from signer.zone.nsec3 import add_nsec3, b32hex, nsec3_hash
from signer.zone.rules import classify

DATA = Path(__file__).parent / "data" / "zones"


def _signed(optout: bool, salt: bytes = b"", iterations: int = 0) -> tuple[Zone, tuple[bytes, ...]]:
    z = load_zone(DATA / "example.zone", "example.")
    classify(z)
    _, ents = add_nsec3(z, salt=salt, iterations=iterations, optout=optout)
    return z, ents


def _records(z: Zone) -> dict[bytes, tuple[int, bytes, list[int]]]:
    out = {}
    for name in z.order:
        if z.kinds[name] != KIND_NSEC3:
            continue
        rs = z.get(name, T_NSEC3)
        assert rs is not None and rs.ttl == 300
        rd = rs.rdatas[0]
        sl = rd[4]
        hl = rd[5 + sl]
        out[name[1 : 1 + name[0]]] = (
            rd[1],
            rd[6 + sl : 6 + sl + hl],
            bitmap_types(rd[6 + sl + hl :]),
        )
    return out


@pytest.mark.parametrize(("salt", "iterations"), [(b"", 0), (b"\xab\xcd", 5)])
def test_hashes_match_dnspython(salt: bytes, iterations: int) -> None:
    for text in ["example.", "a.b.c.deep.example.", "*.wild.example.", "\\200bin.example."]:
        ours = b32hex(nsec3_hash(name_from_text(text, None), salt, iterations)).decode()
        ref = dns.dnssec.nsec3_hash(dns.name.from_text(text), salt, iterations, 1)
        assert ours == ref.lower()


def test_chain_without_optout_covers_every_delegation_and_ent() -> None:
    z, ents = _signed(optout=False)
    recs = _records(z)
    owners = sorted(recs)
    # closed chain in hash order
    for i, o in enumerate(owners):
        assert b32hex(recs[o][1]) == owners[(i + 1) % len(owners)]
        assert recs[o][0] == 0

    def h(t: str) -> bytes:
        return b32hex(nsec3_hash(name_from_text(t, None), b"", 0))

    for t in [
        "example.",
        "sec.example.",
        "insec.example.",
        "x.ent.example.",
        "ent.example.",
        "c.deep.example.",
        "b.c.deep.example.",
        "deep.example.",
        "wild.example.",
    ]:
        assert h(t) in recs, t
    assert h("ns.sec.example.") not in recs  # glue
    assert recs[h("insec.example.")][2] == [2]  # NS only, no RRSIG at an insecure cut
    assert recs[h("sec.example.")][2] == [2, 43, 46]
    assert recs[h("ent.example.")][2] == []
    assert 51 in recs[h("example.")][2]  # NSEC3PARAM at the apex
    assert {name_from_text("ent.example.", None)} <= set(ents)
    param = z.get(z.origin, T_NSEC3PARAM)
    assert param is not None and param.rdatas == (b"\x01\x00\x00\x00\x00",)


def test_optout_skips_insecure_delegations_and_their_ents() -> None:
    z, ents = _signed(optout=True)
    recs = _records(z)

    def h(t: str) -> bytes:
        return b32hex(nsec3_hash(name_from_text(t, None), b"", 0))

    assert all(flags == 1 for flags, _, _ in recs.values())
    assert h("sec.example.") in recs
    assert h("insec.example.") not in recs
    assert h("x.ent.example.") not in recs
    assert h("ent.example.") not in recs  # ENT derived only from an opted-out delegation
    assert name_from_text("ent.example.", None) not in ents
    assert h("c.deep.example.") in recs


def test_b32hex_is_base32hex_lowercase_unpadded() -> None:
    """The 20-octet fast path and the general one agree with the standard library."""
    import base64
    import random

    from signer.zone.nsec3 import b32hex

    rng = random.Random(5155)
    for n in [20] * 3000 + list(range(0, 41)):
        digest = bytes(rng.getrandbits(8) for _ in range(n))
        assert b32hex(digest) == base64.b32hexencode(digest).lower().rstrip(b"=")
    assert b32hex(b"\xff" * 20) == b"v" * 32 and b32hex(bytes(20)) == b"0" * 32


def test_insert_nsec3_merges_owners_into_the_canonical_order() -> None:
    """insert_nsec3 merges the NSEC3 owners into the order: the result is the canonical
    order of every name (as Zone.sort gives it), for random names around the owners
    (labels that sort before, between and after base32hex, deeper names, escapes); records
    not in hash order fall back to a sort."""
    import random

    from signer.zone.model import KIND_AUTH, T_A, RRset, Zone, canonical_key
    from signer.zone.nsec3 import insert_nsec3

    rnd = random.Random(5)
    origin = b"\x07example\x00"
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz-\x00\xff."
    for trial in range(30):
        z = Zone(origin)
        for _ in range(rnd.randrange(0, 300)):
            labels = [bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 34)))
                      for _ in range(rnd.randrange(1, 3))]  # fmt: skip
            name = b"".join(bytes([len(x)]) + x for x in labels) + origin
            z.nodes[name] = [RRset(name, T_A, 60, (b"\x01\x02\x03\x04",))]
            z.kinds[name] = KIND_AUTH
        z.sort()
        hashes = sorted({rnd.randbytes(20) for _ in range(rnd.randrange(0, 100))})
        if trial % 5 == 4:
            rnd.shuffle(hashes)  # not in hash order: sorted instead
        insert_nsec3(z, [(h, b"rdata") for h in hashes], 60)
        assert z.order == sorted(z.nodes, key=canonical_key), trial
        assert len(z.order) == len(z.nodes)


def _shard_and_owners(seed: int) -> tuple[list[bytes], list[bytes], bytes]:
    import random

    from signer.zone.model import canonical_key

    rnd = random.Random(seed)
    origin = b"\x07example\x00"
    names = {origin}
    for _ in range(300):  # delegations, some with names below them, and ENT-like depths
        label = bytes(rnd.choice(b"abc0-z") for _ in range(rnd.randint(1, 4)))
        child = bytes((len(label),)) + label + origin
        names.add(child)
        if rnd.random() < 0.2:
            names.add(b"\x02ns" + child)
    order = sorted(names, key=canonical_key)
    owners = sorted(
        {
            b"\x20" + b32hex(bytes(rnd.getrandbits(8) for _ in range(20))) + origin
            for _ in range(60)
        },
        key=canonical_key,
    )
    return order, owners, origin


@pytest.fixture(params=["c", "python"])
def merge_in(request: pytest.FixtureRequest) -> Iterator[str]:
    """The owners merged among the names in C (_index.merge_names) or in Python (the
    compiled module reads its _INDEX list's item: it is swapped, not the list)."""
    from signer.zone import nsec3

    fast = nsec3._INDEX[0]
    if request.param == "c" and fast is None:
        pytest.skip("no C helpers in use: make accel")
    if request.param == "python":
        nsec3._INDEX[0] = None
    try:
        yield request.param
    finally:
        nsec3._INDEX[0] = fast


@pytest.mark.parametrize("seed", range(5))
def test_insertion_points_are_where_owners_sort(seed: int, merge_in: str) -> None:
    """Where a shard's NSEC3 owners go among its names (the NSEC3 stage inserts their lines
    there): for each owner, the number of names before it in canonical order."""
    from signer.zone import nsec3
    from signer.zone.model import canonical_key

    order, owners, _ = _shard_and_owners(seed)
    want = [sum(canonical_key(n) < canonical_key(o) for n in order) for o in owners]
    assert nsec3.insertion_points(order, owners) == want
    assert nsec3.insertion_points(order, []) == []
    assert nsec3.insertion_points([], owners) == [0] * len(owners)


def test_insertion_points_refuse_an_owner_equal_to_a_name(merge_in: str) -> None:
    from signer.zone import nsec3
    from signer.zone.model import canonical_key

    order, owners, _ = _shard_and_owners(7)
    clash = sorted([*order, owners[3]], key=canonical_key)
    with pytest.raises(nsec3.Nsec3Collision, match="equal to an NSEC3 owner"):
        nsec3.insertion_points(clash, [bytes(o) for o in owners])


def test_nsec3_zone_is_a_shards_chain_in_canonical_order() -> None:
    """The records of a shard's chain as a zone of their own: NSEC3 nodes, in canonical
    order whether or not the records came in it."""
    from signer.zone.model import KIND_NSEC3, T_NSEC3, canonical_key
    from signer.zone.nsec3 import nsec3_owner, nsec3_zone

    origin = b"\x07example\x00"
    recs = [(bytes([i]) * 20, b"rdata%d" % i) for i in (9, 3, 200, 7)]
    z = nsec3_zone(origin, recs, 300)
    assert z.order == sorted(z.nodes, key=canonical_key)
    assert set(z.order) == {nsec3_owner(h, origin) for h, _ in recs}
    for h, rd in recs:
        (rs,) = z.nodes[nsec3_owner(h, origin)]
        assert (rs.rtype, rs.ttl, rs.rdatas, rs.sigs) == (T_NSEC3, 300, (rd,), ())
        assert z.kinds[rs.owner] == KIND_NSEC3
