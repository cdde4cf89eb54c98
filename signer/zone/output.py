"""Signed zone text: canonical order, one RR per line, each RRset followed by its RRSIGs.

Names are written in their canonical (lowercase) form; the SOA is the first record. Common
types are formatted by hand from canonical wire; others through dnspython's ``from_wire``.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from collections.abc import Iterator
from typing import IO

import dns.rdata
import dns.rdataclass
import dns.rdatatype

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
    rrsig_fields,
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


def rdata_text(rtype: int, rd: bytes) -> str:
    if rtype in (T_NS, T_CNAME, T_PTR, T_DNAME):
        return name_to_text(rd)
    if rtype == T_A:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rtype == T_AAAA:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype == T_DS:
        tag, alg, dt = struct.unpack_from("!HBB", rd)
        return f"{tag} {alg} {dt} {rd[4:].hex().upper()}"
    if rtype == T_RRSIG:
        f = rrsig_fields(rd)
        return (
            f"{type_name(f.type_covered)} {f.algorithm} {f.labels} {f.original_ttl} "
            f"{_time(f.expiration)} {_time(f.inception)} {f.key_tag} {name_to_text(f.signer)} "
            f"{base64.b64encode(f.signature).decode()}"
        )
    if rtype == T_NSEC:
        nxt, i = _name_at(rd, 0)
        return " ".join([name_to_text(nxt), *(type_name(t) for t in bitmap_types(rd[i:]))])
    if rtype == T_NSEC3:
        alg, flags, it, sl = struct.unpack_from("!BBHB", rd)
        salt = rd[5 : 5 + sl]
        hl = rd[5 + sl]
        h = rd[6 + sl : 6 + sl + hl]
        from signer.zone.nsec3 import b32hex

        types = " ".join(type_name(t) for t in bitmap_types(rd[6 + sl + hl :]))
        return f"{alg} {flags} {it} {salt.hex().upper() or '-'} {b32hex(h).decode().upper()} {types}".rstrip()
    if rtype == T_SOA:
        sf = soa_fields(rd)
        return (
            f"{name_to_text(sf.mname)} {name_to_text(sf.rname)} {sf.serial} {sf.refresh} "
            f"{sf.retry} {sf.expire} {sf.minimum}"
        )
    if rtype == T_MX:
        return f"{struct.unpack_from('!H', rd)[0]} {name_to_text(rd[2:])}"
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
        import time

        s = time.strftime("%Y%m%d%H%M%S", time.gmtime(t))
        if len(_time_cache) < 1_000_000:
            _time_cache[t] = s
    return s


def _rrset_lines(owner: str, rs: RRset) -> Iterator[str]:
    tn = type_name(rs.rtype)
    pre = f"{owner}\t{rs.ttl}\tIN\t{tn}\t"
    for rd in rs.rdatas:
        yield pre + rdata_text(rs.rtype, rd) + "\n"
    if rs.sigs:
        spre = f"{owner}\t{rs.ttl}\tIN\tRRSIG\t"
        for sig in rs.sigs:
            yield spre + rdata_text(T_RRSIG, sig) + "\n"


def zone_lines(zone: Zone) -> Iterator[str]:
    for name in zone.order:
        owner = name_to_text(name)
        rrsets = zone.nodes[name]
        if name == zone.origin:
            rrsets = sorted(rrsets, key=lambda r: (r.rtype != T_SOA, r.rtype))
        for rs in rrsets:
            yield from _rrset_lines(owner, rs)


def write_zone(zone: Zone, fh: IO[bytes], *, batch: int = 20000) -> str:
    """Write the zone text to ``fh``; return its SHA-256 (hex)."""
    h = hashlib.sha256()
    buf: list[str] = []
    for line in zone_lines(zone):
        buf.append(line)
        if len(buf) >= batch:
            data = "".join(buf).encode("utf-8", "surrogateescape")
            h.update(data)
            fh.write(data)
            buf = []
    if buf:
        data = "".join(buf).encode("utf-8", "surrogateescape")
        h.update(data)
        fh.write(data)
    return h.hexdigest()
