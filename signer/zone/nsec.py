"""NSEC chain (RFC 4034 sect. 4, RFC 4035 sect. 2.3) for a classified zone.

The chain holds the apex, every authoritative name and every delegation, in canonical order,
closed back to the apex. Bitmaps list the types present plus RRSIG and NSEC; at a delegation
only NS, DS (when present), RRSIG and NSEC -- glue and occluded types at a cut are left out.
TTL: min(SOA TTL, SOA MINIMUM) (RFC 9077).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Final

from signer.zone import _accel
from signer.zone.model import (
    KIND_APEX,
    KIND_AUTH,
    KIND_DELEGATION,
    T_DS,
    T_NS,
    T_NSEC,
    T_RRSIG,
    RRset,
    Zone,
    soa_fields,
    type_bitmap,
)

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use


def negative_ttl(zone: Zone) -> int:
    """RFC 9077: NSEC/NSEC3 TTL is the lower of the SOA TTL and the SOA MINIMUM field."""
    soa = zone.soa()
    return min(soa.ttl, soa_fields(soa.rdatas[0]).minimum)


# the kinds of name that have an NSEC (and are linked in the chain)
CHAIN_KINDS: Final = (KIND_APEX, KIND_AUTH, KIND_DELEGATION)


def chain_names(zone: Zone) -> list[bytes]:
    kinds = zone.kinds
    return [n for n in zone.order if kinds[n] in CHAIN_KINDS]


def node_types(zone: Zone, name: bytes) -> list[int]:
    """Types that are authoritative (or, at a cut, NS/DS) at ``name`` in the unsigned zone."""
    types = [rs.rtype for rs in zone.nodes[name]]
    if zone.kinds[name] == KIND_DELEGATION:
        types = [t for t in types if t in (T_NS, T_DS)]
    return types


def add_nsec(zone: Zone, *, wrap_to: bytes | None = None, ttl: int | None = None) -> int:
    """Add an NSEC RRset to every name of the chain; return how many.

    A *shard* of a zone (see :mod:`signer.zone.sharded`) passes ``wrap_to``, the first chain
    name after its last one (the apex for the last shard), and ``ttl`` (its SOA may be in
    another shard); a whole zone closes its chain back to its first name, the apex.
    """
    if ttl is None:
        ttl = negative_ttl(zone)
    names = chain_names(zone)
    n = len(names)
    nodes = zone.nodes
    kinds = zone.kinds
    bitmaps: dict[tuple[int, ...], bytes] = {}  # a registry zone has a handful of type sets
    by_type = itemgetter(1)  # RRset.rtype
    make = tuple.__new__  # RRset(...) without its Python-level __new__: the same tuple
    last = wrap_to if wrap_to is not None else names[0] if names else b""
    for i, name in enumerate(names):
        nxt = names[i + 1] if i + 1 < n else last
        lst = nodes[name]
        if kinds[name] == KIND_DELEGATION:
            types = tuple(rs.rtype for rs in lst if rs.rtype in (T_NS, T_DS))
        else:
            types = tuple(rs.rtype for rs in lst)
        bitmap = bitmaps.get(types)
        if bitmap is None:
            # the NSEC itself is signed, at an insecure cut too
            bitmap = bitmaps[types] = type_bitmap((*types, T_NSEC, T_RRSIG))
        lst.append(make(RRset, (name, T_NSEC, ttl, (nxt + bitmap,), ())))
        prev_type = -1
        for rs in lst:  # usually in type order already, NSEC last: no sort needed
            if rs[1] < prev_type:
                lst.sort(key=by_type)
                break
            prev_type = rs[1]
    return n
