"""Signed zone text: canonical order, one RR per line, each RRset followed by its RRSIGs.

Names are written in their canonical (lowercase) form; the SOA is the first record. Common
types are formatted by hand from canonical wire; others through dnspython's ``from_wire``.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from binascii import b2a_base64
from collections.abc import Iterable, MutableSequence
from typing import IO, Any, Final

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from signer.rrsig import time_text
from signer.zone import _accel
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
    T_SRV,
    T_TXT,
    RRset,
    Zone,
    bitmap_types,
    name_to_text,
    soa_fields,
)

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

# the C renderer (signer/zone/_render.c) when the compiled build is in use (see names_text)
_fast: Final[list[Any]] = [_accel.extension("_render")]

_type_names: Final[dict[int, str]] = {}


def type_name(t: int) -> str:
    s = _type_names.get(t)
    if s is None:
        s = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(t))
        _type_names[t] = s
    return s


def _name_at(wire: bytes, i: int) -> tuple[bytes, int]:
    j = i
    while wire[j]:
        j += 1 + wire[j]
    return wire[i : j + 1], j + 1


def _txt(data: bytes) -> str:
    out = []
    i = 0
    while i < len(data):
        n = data[i]
        s = data[i + 1 : i + 1 + n]
        i += 1 + n
        parts = []
        for c in s:
            if c == 0x22 or c == 0x5C:
                parts.append("\\" + chr(c))
            elif 0x20 <= c < 0x7F:
                parts.append(chr(c))
            else:
                parts.append(f"\\{c:03d}")
        out.append('"' + "".join(parts) + '"')
    return " ".join(out)


_bitmap_cache: Final[dict[bytes, str]] = {}
_CACHE_MAX: Final = 200_000


def _cached_name(name: bytes) -> str:
    """name_to_text for names that repeat (NS, CNAME, MX, ... targets): the text renderer's
    cache of their bytes (the presentation form is ASCII: other octets are escaped)."""
    return _target_bytes(name).decode("ascii")


# The NSEC next name rendered last: it is the owner of the next node, rendered right after.
# Owners and next names are unique per node, so they stay out of the name cache (which would
# otherwise hold a key and a text per name of the zone, ~18 MB per 100k delegations).
_next_name: tuple[bytes, str] = (b"", "")


def _next_text(name: bytes) -> str:
    global _next_name
    s = name_to_text(name)
    _next_name = (name, s)
    return s


def _bitmap_text(bitmap: bytes) -> str:
    s = _bitmap_cache.get(bitmap)
    if s is None:
        s = " ".join(type_name(t) for t in bitmap_types(bitmap))
        if len(_bitmap_cache) < 10_000:
            _bitmap_cache[bitmap] = s
    return s


def rdata_text(rtype: int, rd: bytes) -> str:
    if rtype in (T_NS, T_CNAME, T_PTR, T_DNAME):
        return _cached_name(rd)
    if rtype == T_A:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rtype == T_AAAA:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype == T_DS:
        tag, alg, dt = struct.unpack_from("!HBB", rd)
        return f"{tag} {alg} {dt} {rd[4:].hex().upper()}"
    if rtype == T_RRSIG:
        return _rrsig_text(rd)
    if rtype == T_NSEC:
        nxt, i = _name_at(rd, 0)
        bm = _bitmap_text(rd[i:])
        nt = _next_text(nxt)
        return f"{nt} {bm}" if bm else nt
    if rtype == T_NSEC3:
        alg, flags, it, sl = struct.unpack_from("!BBHB", rd)
        salt = rd[5 : 5 + sl]
        hl = rd[5 + sl]
        h = rd[6 + sl : 6 + sl + hl]
        from signer.zone.nsec3 import b32hex

        types = _bitmap_text(rd[6 + sl + hl :])
        return f"{alg} {flags} {it} {salt.hex().upper() or '-'} {b32hex(h).decode().upper()} {types}".rstrip()
    if rtype == T_SOA:
        sf = soa_fields(rd)
        return (
            f"{name_to_text(sf.mname)} {name_to_text(sf.rname)} {sf.serial} {sf.refresh} "
            f"{sf.retry} {sf.expire} {sf.minimum}"
        )
    if rtype == T_MX:
        return f"{struct.unpack_from('!H', rd)[0]} {_cached_name(rd[2:])}"
    if rtype == T_SRV:
        p, w, port = struct.unpack_from("!HHH", rd)
        return f"{p} {w} {port} {name_to_text(rd[6:])}"
    if rtype == T_TXT:
        return _txt(rd)
    r = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.RdataType.make(rtype), rd, 0, len(rd))
    return r.to_text()


_sig_text_cache: Final[dict[bytes, str]] = {}


_last_signer: Final[list[bytes]] = [b"\xff"]  # the signer name of the RRSIG rendered last


def _rrsig_text(sig: bytes) -> str:
    """The RRSIG RDATA text of ``sig`` (the renderer's pieces, one code path for both)."""
    out: list[bytes] = []
    _add_rrsig(out, sig)
    return b"".join(out)[:-1].decode("ascii")  # without the newline


def _node_rrsets(zone: Zone, name: bytes) -> list[RRset]:
    rrsets = zone.nodes[name]
    if name == zone.origin:
        rrsets = sorted(rrsets, key=lambda r: (r.rtype != T_SOA, r.rtype))
    return rrsets


# -- the text as bytes, piece by piece (names_text's hot path) ------------------------------
# Presentation names are ASCII (name_to_text escapes every other octet), so the lines are
# assembled as bytes pieces joined once: no str per line, no encoding of the whole text.

_SAFE: Final = bytes(c for c in range(0x21, 0x7F) if c not in b'.\\"();@$ ')
_name_bytes_cache: Final[dict[bytes, bytes]] = {}
_bitmap_line_cache: Final[dict[bytes, bytes]] = {}  # NSEC bitmap -> b" TYPE ...\n"
_mid_bytes: Final[dict[int, bytes]] = {}  # TTL << 16 | type -> b"\tTTL\tIN\tTYPE\t"
_sig_head_bytes: Final[dict[bytes, bytes]] = {}  # RRSIG octets 0-7 -> b"TYPE ALG LABELS TTL "
_time_bytes: Final[dict[int, bytes]] = {}  # seconds -> b"YYYYMMDDHHMMSS "
_next_owner: Final[list[bytes]] = [b"", b""]  # the NSEC next name rendered last, and its text


def _name_bytes(name: bytes) -> bytes:
    """``name_to_text(name)`` as ASCII bytes; spelled out for names without escapes."""
    parts: list[bytes] = []
    i = 0
    n = name[0]
    while n:
        lab = name[i + 1 : i + 1 + n]
        if lab.translate(None, _SAFE):
            return name_to_text(name).encode("ascii")
        parts.append(lab)
        i += 1 + n
        n = name[i]
    if not parts:
        return b"."
    parts.append(b"")
    return b".".join(parts)


def _target_bytes(name: bytes) -> bytes:
    """Text of a name that repeats (NS, CNAME, PTR, DNAME targets; glue owners)."""
    s = _name_bytes_cache.get(name)
    if s is None:
        s = _name_bytes(name)
        if len(_name_bytes_cache) >= _CACHE_MAX:
            _name_bytes_cache.clear()
        _name_bytes_cache[name] = s
    return s


def _owner_bytes(name: bytes) -> bytes:
    # Owners and NSEC next names are unique per node: the owner of a node was rendered just
    # before as the previous node's NSEC next name; they stay out of the name cache.
    if name == _next_owner[0]:
        return _next_owner[1]
    s = _name_bytes_cache.get(name)  # glue owners are NS targets
    return s if s is not None else _name_bytes(name)


def _mid(ttl: int, rtype: int) -> bytes:
    key = ttl << 16 | rtype
    mid = _mid_bytes.get(key)
    if mid is None:
        mid = f"\t{ttl}\tIN\t{type_name(rtype)}\t".encode("ascii")
        _mid_bytes[key] = mid
    return mid


def _time_b(t: int) -> bytes:
    s = _time_bytes.get(t)
    if s is None:
        s = (time_text(t) + " ").encode("ascii")
        if len(_time_bytes) < 1_000_000:
            _time_bytes[t] = s
    return s


def _u32(b: bytes, i: int) -> int:
    return b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]


def _add_rrsig(out: list[bytes], sig: bytes) -> None:
    """The RRSIG RDATA text of ``sig``, then a newline, as pieces."""
    signer = _last_signer[0]
    if sig.startswith(signer, 18):  # wire names are prefix-free: the same signer name
        i = 18 + len(signer)
    else:
        i = 18
        while sig[i]:
            i += 1 + sig[i]
        i += 1
        _last_signer[0] = sig[18:i]
    key = sig[:8]
    head = _sig_head_bytes.get(key)  # type covered, algorithm, labels, original TTL
    if head is None:
        tc, alg, lab, ottl = struct.unpack_from("!HBBI", sig)
        head = f"{type_name(tc)} {alg} {lab} {ottl} ".encode("ascii")
        if len(_sig_head_bytes) < 10_000:
            _sig_head_bytes[key] = head
    out.append(head)
    out.append(_time_b(_u32(sig, 8)))
    out.append(_time_b(_u32(sig, 12)))
    key = sig[16:i]
    tail = _sig_text_cache.get(key)  # key tag, signer
    if tail is None:
        tail = f"{sig[16] << 8 | sig[17]} {name_to_text(sig[18:i])} "
        if len(_sig_text_cache) < 10_000:
            _sig_text_cache[key] = tail
    out.append(tail.encode("ascii"))
    out.append(b2a_base64(sig[i:]))  # ends in the newline


def _add_rdata(out: list[bytes], rtype: int, rd: bytes) -> None:
    """The RDATA text of ``rd``, then a newline, as pieces."""
    if rtype in (T_NS, T_CNAME, T_PTR, T_DNAME):
        out.append(_target_bytes(rd))
        out.append(b"\n")
    elif rtype == T_NSEC:
        i = 0
        while rd[i]:
            i += 1 + rd[i]
        i += 1
        nxt = rd[:i]
        s = _name_bytes_cache.get(nxt)
        if s is None:
            s = _name_bytes(nxt)
        _next_owner[0] = nxt
        _next_owner[1] = s
        out.append(s)
        bitmap = rd[i:]
        bm = _bitmap_line_cache.get(bitmap)
        if bm is None:
            types = _bitmap_text(bitmap)
            bm = (" " + types + "\n" if types else "\n").encode("ascii")
            if len(_bitmap_line_cache) < 10_000:
                _bitmap_line_cache[bitmap] = bm
        out.append(bm)
    elif rtype == T_RRSIG:
        _add_rrsig(out, rd)
    else:
        out.append(_encode(rdata_text(rtype, rd) + "\n"))


def names_text(
    zone: Zone, names: Iterable[bytes], lengths: MutableSequence[int] | None = None
) -> bytes:
    """The signed zone text of the nodes ``names`` (a slice of ``zone.order``), encoded.

    Concatenating it over consecutive slices of ``zone.order`` gives exactly
    :func:`write_zone`'s output (the parallel signer renders ranges in its workers).
    ``lengths``: gets the length in bytes of each name's text appended (an index of the
    output, for incremental re-signing).

    With the compiled build, the C renderer (``_render.c``) does it: the same bytes, ~4x
    faster; what it does not handle in C (see there) it hands back, and
    :func:`names_text_py` renders the batch instead.
    """
    fast = _fast[0]
    if fast is not None:
        if not isinstance(names, list):
            names = list(names)
        origin = zone.origin
        apex = _node_rrsets(zone, origin) if names and names[0] == origin else None
        try:
            text: bytes = fast.render(
                zone.nodes, names, origin, apex, lengths, _rdata_line, _type_bytes
            )
            return text
        except fast.Unsupported:
            pass
    return names_text_py(zone, names, lengths)


def _rdata_line(rtype: int, rd: bytes) -> bytes:
    """The C renderer's fallback for the types it does not format."""
    return _encode(rdata_text(rtype, rd) + "\n")


def _type_bytes(rtype: int) -> bytes:
    return type_name(rtype).encode("ascii")


def names_text_py(
    zone: Zone, names: Iterable[bytes], lengths: MutableSequence[int] | None = None
) -> bytes:
    """:func:`names_text` in Python: the specification of the C renderer."""
    out: list[bytes] = []
    origin = zone.origin
    nodes = zone.nodes
    start = -1  # where the current name's pieces start in ``out``
    for name in names:
        if lengths is not None:
            if start >= 0:
                lengths.append(_size(out, start))
            start = len(out)
        owner = _owner_bytes(name)
        rrsets = nodes[name]
        if name == origin:
            rrsets = _node_rrsets(zone, name)
        for rs in rrsets:
            rtype = rs[1]
            ttl = rs[2]
            mid = _mid(ttl, rtype)
            for rd in rs[3]:
                out.append(owner)
                out.append(mid)
                _add_rdata(out, rtype, rd)
            sigs = rs[4]
            if sigs:
                smid = _mid(ttl, T_RRSIG)
                for sig in sigs:
                    out.append(owner)
                    out.append(smid)
                    _add_rrsig(out, sig)
    if lengths is not None and start >= 0:
        lengths.append(_size(out, start))
    return b"".join(out)


def _size(pieces: list[bytes], start: int) -> int:
    n = 0
    for i in range(start, len(pieces)):
        n += len(pieces[i])
    return n


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def write_zone(zone: Zone, fh: IO[bytes], *, batch: int = 4096) -> str:
    """Write the zone text to ``fh``; return its SHA-256 (hex)."""
    h = hashlib.sha256()
    order = zone.order
    for i in range(0, len(order), batch):
        data = names_text(zone, order[i : i + batch])
        h.update(data)
        fh.write(data)
    return h.hexdigest()
