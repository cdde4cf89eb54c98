"""NSEC3 chain (RFC 5155) with opt-out, and the NSEC3PARAM at the apex.

RFC 9276 defaults: 0 extra iterations, empty salt. Names in the chain: the apex, every
authoritative name, every delegation (with opt-out: only those with a DS), and every empty
non-terminal between those names and the apex (RFC 5155 sect. 7.1: an ENT derived only from
opted-out insecure delegations gets none). Bitmaps: types present (NS and DS only at a cut)
plus RRSIG where the name has signed data; an ENT has an empty bitmap. NSEC3PARAM flags are
always 0 (RFC 5155 sect. 4.1.2). TTL of NSEC3 and NSEC3PARAM: min(SOA TTL, SOA MINIMUM).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import struct
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Final

from signer.errors import CheckFailed, InputError
from signer.zone import _accel
from signer.zone.model import (
    KIND_APEX,
    KIND_AUTH,
    KIND_DELEGATION,
    KIND_NSEC3,
    T_DS,
    T_NS,
    T_NSEC3,
    T_NSEC3PARAM,
    T_RRSIG,
    RRset,
    Zone,
    canonical_key,
    name_to_text,
    parent_of,
    type_bitmap,
)
from signer.zone.nsec import negative_ttl

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

# the C helpers of signer/zone/_index.c when the compiled build is in use, else None
_INDEX: Final[list[Any]] = [_accel.extension("_index")]

_B32_DIGITS: Final = b"0123456789abcdefghijklmnopqrstuv"
HASH_LEN: Final = 20  # octets of a SHA-1 NSEC3 hash
_hash_of: Final = itemgetter(0)
_B32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _B32_DIGITS)


@_accel.mypyc_attr(native_class=False)
class Nsec3Collision(CheckFailed):
    requirement = "ZONE-NSEC3-COLLISION"


def nsec3_hash(name: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 sect. 5: IH(salt, x, 0) = H(x || salt), IH(k) = H(IH(k-1) || salt)."""
    h = hashlib.sha1(name + salt).digest()  # noqa: S324 (RFC 5155 mandates SHA-1)
    for _ in range(iterations):
        h = hashlib.sha1(h + salt).digest()  # noqa: S324
    return h


# every pair of lowercase base32hex digits, by the 10-bit value it spells
_B32_PAIRS: Final = [bytes((a, b)) for a in _B32_DIGITS for b in _B32_DIGITS]


def b32hex(digest: bytes) -> bytes:
    """Lowercase base32hex without padding (a 20-byte SHA-1 gives 32 characters)."""
    if len(digest) != 20:
        return base64.b32encode(digest).translate(_B32).rstrip(b"=")
    # 160 bits = 16 groups of 10: 2x faster than base64.b32encode (Python code in 3.11)
    n = int.from_bytes(digest, "big")
    p = _B32_PAIRS
    return b"".join(
        (
            p[n >> 150], p[n >> 140 & 1023], p[n >> 130 & 1023], p[n >> 120 & 1023],
            p[n >> 110 & 1023], p[n >> 100 & 1023], p[n >> 90 & 1023], p[n >> 80 & 1023],
            p[n >> 70 & 1023], p[n >> 60 & 1023], p[n >> 50 & 1023], p[n >> 40 & 1023],
            p[n >> 30 & 1023], p[n >> 20 & 1023], p[n >> 10 & 1023], p[n & 1023],
        )
    )  # fmt: skip


_B32_BACK = bytes.maketrans(
    b"0123456789abcdefghijklmnopqrstuv", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)


def b32hex_decode(text: str) -> bytes:
    """Inverse of :func:`b32hex` (either case, padding optional); ValueError if malformed."""
    raw = text.lower().encode("ascii", "replace")
    if raw.translate(None, b"0123456789abcdefghijklmnopqrstuv="):
        raise ValueError(f"not base32hex: {text!r}")
    raw = raw.rstrip(b"=")
    try:
        return base64.b32decode(raw.translate(_B32_BACK) + b"=" * (-len(raw) % 8))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def parse_salt(text: str) -> bytes:
    t = text.strip()
    if t in ("", "-"):
        return b""
    try:
        salt = bytes.fromhex(t)
    except ValueError:
        raise InputError(f"NSEC3 salt {text!r} is not hexadecimal") from None
    if len(salt) > 255:
        raise InputError("NSEC3 salt longer than 255 octets")
    return salt


def check_iterations(iterations: int) -> None:
    if iterations > 500:
        raise InputError(f"NSEC3 iterations {iterations} too high (RFC 9276 recommends 0)")


def nsec3param_rrset(origin: bytes, ttl: int, salt: bytes, iterations: int) -> RRset:
    """The apex NSEC3PARAM (flags always 0, RFC 5155 sect. 4.1.2)."""
    return RRset(
        origin,
        T_NSEC3PARAM,
        ttl,
        (struct.pack("!BBHB", 1, 0, iterations, len(salt)) + salt,),
    )


def chain_entries(zone: Zone, *, optout: bool) -> tuple[dict[bytes, list[int]], list[bytes]]:
    """The names that get an NSEC3, with their bitmap types, and the empty non-terminals
    among them. Works on a whole zone or on a shard of one (a shard holds whole subtrees
    below children of the apex, so every ENT's descendants are in it)."""
    kinds = zone.kinds
    origin = zone.origin
    entries: dict[bytes, list[int]] = {}  # name -> bitmap types
    for name in zone.order:
        k = kinds[name]
        if k in (KIND_APEX, KIND_AUTH):
            types = [rs.rtype for rs in zone.nodes[name]]
            types.append(T_RRSIG)
        elif k == KIND_DELEGATION:
            types = [rs.rtype for rs in zone.nodes[name] if rs.rtype in (T_NS, T_DS)]
            if T_DS in types:
                types.append(T_RRSIG)
            elif optout:
                continue
        else:
            continue
        entries[name] = types
    # empty non-terminals above names of the chain
    ents: list[bytes] = []
    for name in list(entries):
        p = name
        while p != origin:
            p = parent_of(p)
            if p in entries or p == origin:
                break
            if p in zone.nodes:
                break  # an existing name: it is in the chain itself or occluded
            entries[p] = []
            ents.append(p)
    return entries, ents


# (hash, bitmap, original name)
Hashed = tuple[bytes, bytes, bytes]


def hash_entries(entries: dict[bytes, list[int]], salt: bytes, iterations: int) -> list[Hashed]:
    bitmaps: dict[tuple[int, ...], bytes] = {}
    out: list[Hashed] = []
    # looked up at run time (compiled, a direct call would ignore it): the tests replace
    # it to make the collisions SHA-1 cannot be made to give
    nsec3_hash: Callable[[bytes, bytes, int], bytes] = globals()["nsec3_hash"]
    for name, types in entries.items():
        key = tuple(types)
        bm = bitmaps.get(key)
        if bm is None:
            bm = bitmaps[key] = type_bitmap(types)
        out.append((nsec3_hash(name, salt, iterations), bm, name))
    return out


def sort_chain(hashed: list[Hashed]) -> None:
    """Sort the chain entries (in place) by hash; refuses a collision (two equal hashes)."""
    fast = _INDEX[0]
    try:
        if fast is None:
            raise ValueError
        # in C (_index.sort_by_hash, 20-octet hashes only: a ValueError for others)
        hashed[:] = fast.sort_by_hash(hashed)
    except ValueError:
        hashed.sort(key=_hash_of)  # one comparison per step (a tuple's takes two)
    for i in range(1, len(hashed)):
        if hashed[i][0] == hashed[i - 1][0]:
            raise Nsec3Collision(
                f"NSEC3 hash collision between {name_to_text(hashed[i - 1][2])} and "
                f"{name_to_text(hashed[i][2])}; choose another salt"
            )


def link_records(
    hashed: Sequence[Hashed], after: bytes, *, salt: bytes, iterations: int, optout: bool
) -> list[tuple[bytes, bytes]]:
    """``(hash, NSEC3 RDATA)`` of consecutive entries of a sorted chain, each pointing to the
    next hash, the last to ``after`` (the hash after them in the chain: for a whole chain,
    its first)."""
    head = struct.pack("!BBHB", 1, 1 if optout else 0, iterations, len(salt)) + salt
    prefix = head + bytes((HASH_LEN,))
    out = []
    n = len(hashed)
    for i in range(n):
        h, bitmap, _ = hashed[i]
        nxt = hashed[i + 1][0] if i + 1 < n else after
        if len(nxt) == HASH_LEN:
            out.append((h, prefix + nxt + bitmap))
        else:  # only a test's fake hash function makes other lengths
            out.append((h, head + bytes((len(nxt),)) + nxt + bitmap))
    return out


def link_chain(
    hashed: list[Hashed], *, salt: bytes, iterations: int, optout: bool
) -> list[tuple[bytes, bytes]]:
    """Sort the chain (in place) and return ``(hash, NSEC3 RDATA)`` in hash order, each
    pointing to the next hash and the last back to the first; refuses a collision."""
    sort_chain(hashed)
    first = hashed[0][0] if hashed else b""
    return link_records(hashed, first, salt=salt, iterations=iterations, optout=optout)


def nsec3_owner(h: bytes, origin: bytes) -> bytes:
    label = b32hex(h)
    return bytes((len(label),)) + label + origin


def nsec3_zone(origin: bytes, records: list[tuple[bytes, bytes]], ttl: int) -> Zone:
    """The NSEC3 records ``(hash, rdata)`` as a zone of their own (``KIND_NSEC3`` nodes in
    canonical order): a shard's chain, signed after the rest of the shard (the records of
    :func:`link_chain` are in canonical order already; others are sorted)."""
    nodes: dict[bytes, list[RRset]] = {}
    kinds: dict[bytes, int] = {}
    owners: list[bytes] = []
    make = tuple.__new__  # RRset(...) without its Python-level __new__: the same tuple
    for h, rdata in records:
        owner = nsec3_owner(h, origin)
        nodes[owner] = [make(RRset, (owner, T_NSEC3, ttl, (rdata,), ()))]
        kinds[owner] = KIND_NSEC3
        owners.append(owner)
    zone = Zone(origin, nodes, owners, kinds)
    in_order = all(a < b for a, b in itertools.pairwise(owners))  # same length and suffix
    if not in_order or len(nodes) != len(owners):
        zone.sort()
    return zone


def insertion_points(order: list[bytes], owners: list[bytes]) -> list[int]:
    """For each of ``owners`` (NSEC3 owners, canonical order): how many names of ``order``
    (a shard's names, canonical order) come before it in the zone. Refuses an owner equal to
    a name of the shard, as :func:`insert_nsec3` does."""
    merged: list[bytes] | None = None
    fast = _INDEX[0]
    if fast is not None:
        try:  # in C: an owner comes first when equal to a name
            merged = fast.merge_names(order, owners)
        except ValueError:
            merged = None  # not wire names: sorted below
    if merged is None:
        merged = sorted([*owners, *order], key=canonical_key)  # stable: owners first
    points: list[int] = []
    j = k = 0
    n = len(owners)
    size = len(order)
    for name in merged:
        if j < n and name is owners[j]:
            if k < size and order[k] == name:
                raise Nsec3Collision(
                    f"the zone already has a name {name_to_text(name)} equal to an NSEC3 owner"
                )
            points.append(k)
            j += 1
        else:
            k += 1
    if j != n:
        raise ValueError("insertion_points: the owners are not in canonical order")
    return points


def insert_nsec3(zone: Zone, records: list[tuple[bytes, bytes]], ttl: int) -> None:
    """Add the NSEC3 records ``(hash, rdata)`` as ``KIND_NSEC3`` nodes; keeps ``zone.order``
    canonical. Records in hash order (as :func:`link_chain` returns them) have their owners
    in canonical order too (base32hex preserves order): they are merged into the order
    rather than the whole zone sorted again (no list of every name's sort key)."""
    origin = zone.origin
    kinds = zone.kinds
    nodes = zone.nodes
    owners = []
    make = tuple.__new__  # RRset(...) without its Python-level __new__: the same tuple
    for h, rdata in records:
        owner = nsec3_owner(h, origin)
        if owner in nodes:
            raise Nsec3Collision(
                f"the zone already has a name {name_to_text(owner)} equal to an NSEC3 owner"
            )
        nodes[owner] = [make(RRset, (owner, T_NSEC3, ttl, (rdata,), ()))]
        kinds[owner] = KIND_NSEC3
        owners.append(owner)
    in_order = all(a < b for a, b in itertools.pairwise(owners))  # same length and suffix
    if in_order and len(zone.order) + len(owners) == len(nodes):
        fast = _INDEX[0]
        if fast is not None:
            try:  # in C (signer/zone/_index.c): names compared without a key per name
                zone.order = fast.merge_names(zone.order, owners)
                return
            except ValueError:
                pass  # not wire names: the loop below says what it makes of them
        # a plain merge (compiled: heapq.merge with a key runs Python generator code for
        # each of the shard's names)
        order = zone.order
        merged: list[bytes] = []
        i = 0
        n = len(order)
        for owner in owners:
            ko = canonical_key(owner)
            while i < n and canonical_key(order[i]) < ko:
                merged.append(order[i])
                i += 1
            merged.append(owner)
        merged.extend(order[i:])
        zone.order = merged
    else:
        zone.sort()


def add_nsec3(
    zone: Zone, *, salt: bytes = b"", iterations: int = 0, optout: bool = False
) -> tuple[int, tuple[bytes, ...]]:
    """Add NSEC3 RRsets (as ``KIND_NSEC3`` nodes) and the NSEC3PARAM.

    Returns (chain length, the empty non-terminals that got an NSEC3). Sets ``zone.order``
    again (hashed names included, canonical order).
    """
    check_iterations(iterations)
    ttl = negative_ttl(zone)
    apex = zone.nodes[zone.origin]
    apex.append(nsec3param_rrset(zone.origin, ttl, salt, iterations))
    apex.sort(key=lambda r: r.rtype)
    entries, ents = chain_entries(zone, optout=optout)
    hashed = hash_entries(entries, salt, iterations)
    records = link_chain(hashed, salt=salt, iterations=iterations, optout=optout)
    insert_nsec3(zone, records, ttl)
    return len(records), tuple(ents)
