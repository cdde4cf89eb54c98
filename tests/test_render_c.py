"""The C renderer (signer/zone/_render.c) gives the bytes of the Python one, or hands back.

``output.names_text_py`` is the specification. Names with every octet, every type the C
code formats (and some it hands to Python), RRSIGs with any times and signers, malformed
data that must make it hand the batch back rather than guess.
"""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.zone import _accel, output
from signer.zone.model import (
    T_A,
    T_AAAA,
    T_CNAME,
    T_DNAME,
    T_DS,
    T_MX,
    T_NS,
    T_NSEC,
    T_NSEC3,
    T_PTR,
    T_RRSIG,
    T_SOA,
    T_TXT,
    RRset,
    Zone,
    type_bitmap,
)

pytestmark = pytest.mark.skipif(
    output._fast[0] is None, reason=f"no C renderer in use ({_accel.status()[1]}): make accel"
)

ORIGIN = b"\x07example\x00"

labels = st.binary(min_size=1, max_size=12) | st.sampled_from(
    [b"a", b"ns1", b"*", b"xn--bcher-kva", b"a.b", b"sp ace", b"\\", b'"', b"\x00\xff", b"@$;()"]
)


def _wire(labs: list[bytes], base: bytes = ORIGIN) -> bytes:
    return b"".join(bytes([len(lab)]) + lab for lab in labs) + base


names = st.lists(labels, min_size=1, max_size=4).map(_wire)
targets = st.lists(labels, min_size=0, max_size=3).map(lambda ls: _wire(ls, b"\x00"))
u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def rrsigs(draw: st.DrawFn) -> bytes:
    head = struct.pack(
        "!HBBIIIH",
        draw(st.sampled_from([T_A, T_NS, T_DS, T_NSEC, 65280, 4000])),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        draw(u32),
        draw(u32),
        draw(u32),
        draw(st.integers(0, 0xFFFF)),
    )
    return head + draw(targets) + draw(st.binary(min_size=0, max_size=70))


@st.composite
def rdatas(draw: st.DrawFn, rtype: int) -> bytes:
    if rtype in (T_NS, T_CNAME, T_PTR, T_DNAME):
        return draw(targets)
    if rtype == T_A:
        return draw(st.binary(min_size=4, max_size=4))
    if rtype == T_AAAA:
        return draw(st.binary(min_size=16, max_size=16))
    if rtype == T_DS:
        return draw(st.binary(min_size=5, max_size=40))
    if rtype == T_NSEC:
        types = draw(st.sets(st.sampled_from([1, 2, 6, 43, 46, 47, 48, 99, 257, 1234, 65281])))
        return draw(targets) + type_bitmap(sorted(types))
    if rtype == T_NSEC3:
        salt = draw(st.binary(max_size=4))
        digest = draw(st.binary(min_size=0, max_size=25) | st.binary(min_size=20, max_size=20))
        types = draw(st.sets(st.sampled_from([1, 2, 43, 46, 48, 51, 99, 257, 65281])))
        rd = draw(st.binary(min_size=4, max_size=4)) + bytes([len(salt)]) + salt
        return rd + bytes([len(digest)]) + digest + type_bitmap(sorted(types))
    if rtype == T_MX:
        return draw(st.binary(min_size=2, max_size=2)) + draw(targets)
    if rtype == T_TXT:
        s = draw(st.binary(max_size=30))
        return bytes([len(s)]) + s
    if rtype == T_SOA:
        return draw(targets) + draw(targets) + draw(st.binary(min_size=20, max_size=20))
    return draw(st.binary(max_size=20))  # unknown types: RFC 3597 text, in Python


types = st.sampled_from(
    [T_A, T_NS, T_CNAME, T_PTR, T_DNAME, T_DS, T_NSEC, T_NSEC3, T_AAAA, T_MX, T_TXT, T_SOA, 65280]
)


@st.composite
def rrset_lists(draw: st.DrawFn, owner: bytes) -> list[RRset]:
    out = []
    for rtype in sorted(draw(st.sets(types, min_size=1, max_size=4))):
        rds = tuple(draw(st.lists(rdatas(rtype), min_size=1, max_size=3)))
        sigs = tuple(draw(st.lists(rrsigs(), max_size=2)))
        out.append(RRset(owner, rtype, draw(u32), rds, sigs))
    return out


@st.composite
def zones(draw: st.DrawFn) -> tuple[Zone, list[bytes]]:
    z = Zone(ORIGIN)
    owners = [ORIGIN, *sorted(set(draw(st.lists(names, min_size=1, max_size=8))))]
    for o in owners:
        z.nodes[o] = draw(rrset_lists(o))
    return z, owners


def _both(z: Zone, order: list[bytes]) -> None:
    la: list[int] = []
    lq = array("Q")  # the sharded signer's output index
    lb: list[int] = []
    a = output.names_text(z, order, la)
    assert output.names_text(z, order, lq) == a
    b = output.names_text_py(z, order, lb)
    assert a == b
    assert la == lb == list(lq)
    assert sum(la) == len(a)


@settings(max_examples=300, deadline=None)
@given(zones())
def test_c_renderer_matches_python(zn: tuple[Zone, list[bytes]]) -> None:
    z, order = zn
    _both(z, order)
    _both(z, order[1:])  # a batch without the apex


def test_c_renderer_really_runs_and_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain delegation: rendered by C (names_text_py is not called)."""
    z = Zone(ORIGIN)
    child = b"\x03abc" + ORIGIN
    z.nodes[child] = [
        RRset(child, T_NS, 3600, (b"\x03ns1\x03net\x00",), ()),
        RRset(
            child,
            T_DS,
            3600,
            (b"\x30\x39\x0d\x02" + bytes(range(32)),),
            (bytes(18) + ORIGIN + b"sig",),
        ),
    ]

    def boom(*a: object) -> bytes:
        raise AssertionError("the Python renderer ran")

    monkeypatch.setattr(output, "names_text_py", boom)
    text = output.names_text(z, [child])
    assert text.startswith(b"abc.example.\t3600\tIN\tNS\tns1.net.\n")
    assert b"\tDS\t12345 13 2 000102" in text
    assert text.endswith(b"19700101000000 0 example. c2ln\n")
    # an NSEC3 record, as BIND writes it: salt in hex, the next hash in base32hex
    owner = b"\x20" + b"0" * 32 + ORIGIN
    rd = b"\x01\x01\x00\x0a\x02\xab\xcd\x14" + bytes(range(20)) + type_bitmap([T_NS, T_DS])
    z.nodes[owner] = [RRset(owner, T_NSEC3, 60, (rd,), ())]
    line = output.names_text(z, [owner])
    assert line.endswith(b"\tNSEC3\t1 1 10 ABCD 000G40O40K30E209185GO38E1S8124GJ NS DS\n")


@pytest.mark.parametrize(
    ("rtype", "rd", "refused"),
    [
        (T_NS, b"\x05abc", True),  # label runs past the end
        (T_NS, b"\x03abc\x00junk", True),  # data after the name
        (T_NSEC, b"\x00\x00\x05\x01", True),  # truncated bitmap
        (T_RRSIG, b"\x00\x01\x0d", True),  # short RRSIG
        (T_NSEC3, b"\x01\x01\x00\x00\x00\x14" + bytes(20) + b"\x00\x05\x01", True),  # bitmap
        # formatted by the Python callback (which renders or raises):
        (T_NSEC3, b"\x01\x01\x00\x00\x00\x14" + bytes(12), False),  # hash past the end
        (T_NSEC3, b"\x01\x00\x00\x00\x00\x00\x00\x01\x40", False),  # empty hash
        (T_NSEC3, b"\x01\x00\x00\x00\x09\x01", False),  # salt past the end
        (T_NS, b"\x41" + b"a" * 65 + b"\x00", True),  # label longer than 63
        # formatted by the Python callback instead of C:
        (T_DS, b"\x00\x01\x02\x03", False),  # no digest (Python writes a trailing space)
        (T_A, b"\x01\x02\x03", False),  # not 4 octets (Python raises)
    ],
)
def test_unusual_rdata_is_handed_back(rtype: int, rd: bytes, refused: bool) -> None:
    """What C does not render exactly as Python does, it refuses (or formats through the
    Python callback); names_text then gives Python's result or Python's exception."""
    z = Zone(ORIGIN)
    owner = b"\x01x" + ORIGIN
    z.nodes[owner] = [RRset(owner, rtype, 60, (rd,), ())]
    fast = output._fast[0]
    if refused:
        with pytest.raises(fast.Unsupported):
            fast.render(
                z.nodes, [owner], ORIGIN, None, None, output._rdata_line, output._type_bytes
            )
    try:
        want: bytes | type[BaseException] = output.names_text_py(z, [owner])
    except Exception as exc:  # whatever the pure renderer raises
        want = type(exc)
    if isinstance(want, bytes):
        assert output.names_text(z, [owner]) == want
    else:
        with pytest.raises(want):
            output.names_text(z, [owner])


def test_out_of_range_ttl_and_apex_without_order_are_handed_back() -> None:
    fast = output._fast[0]
    z = Zone(ORIGIN)
    owner = b"\x01x" + ORIGIN
    z.nodes[owner] = [RRset(owner, T_A, 1 << 32, (b"\x01\x02\x03\x04",), ())]
    with pytest.raises(fast.Unsupported):
        fast.render(z.nodes, [owner], ORIGIN, None, None, output._rdata_line, output._type_bytes)
    assert output.names_text(z, [owner]) == output.names_text_py(z, [owner])
    z.nodes[ORIGIN] = [RRset(ORIGIN, T_NS, 60, (b"\x00",), ())]
    with pytest.raises(fast.Unsupported):
        fast.render(z.nodes, [ORIGIN], ORIGIN, None, None, output._rdata_line, output._type_bytes)


def test_a_callback_that_empties_the_zone_does_not_crash_the_renderer() -> None:
    """The callbacks run Python code: the C side holds what it reads from the zone's lists
    while it uses it, so even a callback dropping them leaves no dangling reference."""
    fast = output._fast[0]
    z = Zone(ORIGIN)
    owners = [b"\x01" + bytes([97 + i]) + ORIGIN for i in range(20)]
    for o in owners:
        z.nodes[o] = [
            RRset(o, T_AAAA, 60, (bytes(16),), ()),  # rendered through the callback
            RRset(o, T_NS, 60, (b"\x02ns" + ORIGIN,), (bytes(18) + ORIGIN + b"s" * 64,)),
        ]
    names = list(owners)

    def hostile(rtype: int, rd: bytes) -> bytes:
        for o in owners:
            z.nodes[o].clear()
        names.clear()
        return output._rdata_line(rtype, rd)

    with pytest.raises(fast.Unsupported, match="names changed"):
        fast.render(z.nodes, names, ORIGIN, None, None, hostile, output._type_bytes)
    assert z.nodes[owners[0]] == []  # the callback did run, first thing
