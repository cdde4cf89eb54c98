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
from typing import IO

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from signer.rrsig import time_text
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

_type_names: dict[int, str] = {}


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


_name_cache: dict[bytes, str] = {}
_bitmap_cache: dict[bytes, str] = {}
_CACHE_MAX = 200_000


def _cached_name(name: bytes) -> str:
    """name_to_text for names that repeat (NS, CNAME, MX, ... targets)."""
    s = _name_cache.get(name)
    if s is None:
        s = name_to_text(name)
        if len(_name_cache) >= _CACHE_MAX:
            _name_cache.clear()
        _name_cache[name] = s
    return s


# The NSEC next name rendered last: it is the owner of the next node, rendered right after.
# Owners and next names are unique per node, so they stay out of _name_cache (which would
# otherwise hold a key and a text per name of the zone, ~18 MB per 100k delegations).
_next_name: tuple[bytes, str] = (b"", "")


def _owner_text(name: bytes) -> str:
    if name == _next_name[0]:
        return _next_name[1]
    s = _name_cache.get(name)  # glue owners are NS targets
    return s if s is not None else name_to_text(name)


def _next_text(name: bytes) -> str:
    global _next_name
    s = _name_cache.get(name)
    if s is None:
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


_time_cache: dict[int, str] = {}


def _time(t: int) -> str:
    s = _time_cache.get(t)
    if s is None:
        s = time_text(t)
        if len(_time_cache) < 1_000_000:
            _time_cache[t] = s
    return s


_sig_text_cache: dict[bytes, str] = {}
_mid_cache: dict[tuple[int, int], str] = {}  # (TTL, type) -> "\tTTL\tIN\tTYPE\t"
_TIMES = struct.Struct("!II")


_sig_head_cache: dict[bytes, str] = {}


_last_signer: list[bytes] = [b"\xff"]  # the signer name of the RRSIG rendered last


def _rrsig_text(sig: bytes) -> str:
    signer = _last_signer[0]
    if sig.startswith(signer, 18):  # wire names are prefix-free: the same signer name
        i = 18 + len(signer)
    else:
        i = 18
        while sig[i]:
            i += 1 + sig[i]
        i += 1
        _last_signer[0] = sig[18:i]
    head = _sig_head_cache.get(sig[:8])  # type covered, algorithm, labels, original TTL
    if head is None:
        tc, alg, lab, ottl = struct.unpack_from("!HBBI", sig)
        head = f"{type_name(tc)} {alg} {lab} {ottl} "
        if len(_sig_head_cache) < 10_000:
            _sig_head_cache[sig[:8]] = head
    tail = _sig_text_cache.get(sig[16:i])  # key tag, signer
    if tail is None:
        tail = f" {struct.unpack_from('!H', sig, 16)[0]} {name_to_text(sig[18:i])} "
        if len(_sig_text_cache) < 10_000:
            _sig_text_cache[sig[16:i]] = tail
    exp, inc = _TIMES.unpack_from(sig, 8)
    return head + _time(exp) + " " + _time(inc) + tail + b2a_base64(sig[i:], newline=False).decode()


def _node_rrsets(zone: Zone, name: bytes) -> list[RRset]:
    rrsets = zone.nodes[name]
    if name == zone.origin:
        rrsets = sorted(rrsets, key=lambda r: (r.rtype != T_SOA, r.rtype))
    return rrsets


def names_text(
    zone: Zone, names: Iterable[bytes], lengths: MutableSequence[int] | None = None
) -> bytes:
    """The signed zone text of the nodes ``names`` (a slice of ``zone.order``), encoded.

    Concatenating it over consecutive slices of ``zone.order`` gives exactly
    :func:`write_zone`'s output (the parallel signer renders ranges in its workers).
    ``lengths``: gets the length in bytes of each name's text appended (an index of the
    output, for incremental re-signing).
    """
    out: list[str] = []
    add = out.append
    origin = zone.origin
    nodes = zone.nodes
    mids = _mid_cache
    lengths_from = -1  # where the current name's lines start in ``out``
    for name in names:
        if lengths is not None:
            if lengths_from >= 0:
                block = "".join(out[lengths_from:])
                lengths.append(len(block) if block.isascii() else len(_encode(block)))
            lengths_from = len(out)
        owner = _owner_text(name)
        rrsets = nodes[name]
        if name == origin:
            rrsets = _node_rrsets(zone, name)
        for _, rtype, ttl, rdatas, sigs in rrsets:
            mid = mids.get((ttl, rtype))
            if mid is None:
                mid = mids[(ttl, rtype)] = f"\t{ttl}\tIN\t{type_name(rtype)}\t"
            pre = owner + mid
            for rd in rdatas:
                add(pre + rdata_text(rtype, rd) + "\n")
            if sigs:
                smid = mids.get((ttl, T_RRSIG))
                if smid is None:
                    smid = mids[(ttl, T_RRSIG)] = f"\t{ttl}\tIN\tRRSIG\t"
                spre = owner + smid
                for sig in sigs:
                    add(spre + _rrsig_text(sig) + "\n")
    if lengths is not None and lengths_from >= 0:
        block = "".join(out[lengths_from:])
        lengths.append(len(block) if block.isascii() else len(_encode(block)))
    return _encode("".join(out))


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
