"""Self-verification of a signed zone before it is published.

The zone signer calls :func:`verify_signed_zone` on the zone it has just signed, *before* the
atomic rename of the output file; any failure raises a :class:`ZoneVerificationFailed`
(a :class:`signer.errors.VerificationError`, exit code 1) and nothing is published.

Call signature (the contract with ``signer/cli/signjob.py``)::

    report = verify_signed_zone(
        zone,                     # signer.zone.model.Zone, signed (or a signed file path)
        trust_anchor_ds=[ds...],  # DsRecord(s) of the KSK(s) the parent / resolvers trust
        now=1700000000,           # the signer's --now (seconds since the epoch)
        level="sample",           # "structural" | "sample" | "full"
        jobs=2,                   # processes for the cryptographic part (None: all cores)
        zsk=dnskey,               # optional: the ZSK that must sign every RRset
        min_validity=0,           # optional: every RRSIG must stay valid this many seconds
    )

The signer splits it in two: :func:`prepare_verification` (everything that needs no RRSIG:
order, classification, DNSKEY RRset, denial chain, bitmaps) runs while its workers sign, and
``verify_signed_zone(..., prepared=...)`` then checks the RRSIGs; verdicts and the order of
reported failures are the same as one call.

``zone`` is the signer's in-memory :class:`signer.zone.model.Zone` after signing: RRSIGs in
each ``RRset.sigs`` (RRSIG RRsets of type 46 in ``nodes`` are accepted too and split by the
type they cover), NSEC/NSEC3/NSEC3PARAM/DNSKEY RRsets in ``nodes``. Only ``origin`` and
``nodes`` are read: ``order``, ``kinds`` and ``signed`` are the signer's own conclusions, and
the verifier recomputes them rather than trusting them. A path to a signed master file is
read with :func:`read_signed_zone` (dnspython, independent of our loader; ``origin=`` needed).

Levels (costs measured in ``docs/performance.md``):

* ``structural`` -- no signature is checked cryptographically except the DNSKEY RRset's
  trust-anchor signature; everything else below is checked:

  - ZONE-VERIFY-ORDER: SOA and NS at the apex, no data outside the zone.
  - ZONE-VERIFY-UNSIGNED: every authoritative RRset has a valid RRSIG by the ZSK (DNSKEY, CDS
    and CDNSKEY: by a key of the DNSKEY RRset); ZONE-VERIFY-EXTRA-SIG: no RRSIG over
    non-authoritative data (delegation NS, glue, occluded names).
  - ZONE-VERIFY-RRSIG-FIELDS: signer name = apex, labels, original TTL = RRset TTL, the key is
    in the DNSKEY RRset.
  - ZONE-VERIFY-DNSKEY-TA: the DNSKEY RRset is signed (always verified cryptographically) by a
    key whose DS is one of ``trust_anchor_ds``; ZONE-VERIFY-ZSK-PUBLISHED: ``zsk`` is in it.
  - ZONE-VERIFY-NSEC-CHAIN / ZONE-VERIFY-NSEC3-CHAIN: exactly the names that need one have an
    NSEC/NSEC3 (NSEC3: empty non-terminals too), the chain is in order and closed; NSEC3
    opt-out only skips insecure delegations (and the empty non-terminals above only those), and
    only under an opt-out NSEC3; ZONE-VERIFY-NSEC3-PARAM: one NSEC3PARAM matching every NSEC3.
  - ZONE-VERIFY-BITMAP: every type bitmap lists exactly the types at its name.
  - ZONE-VERIFY-NEGATIVE-TTL: NSEC/NSEC3 TTL = min(SOA TTL, SOA MINIMUM) (RFC 9077).
  - ZONE-VERIFY-VALIDITY: every RRSIG has inception <= now and expiration > now +
    ``min_validity``.

* ``sample`` (default) -- structural, plus, verified cryptographically: every apex
  signature, the first signature over each RR type (per kind of name), and a deterministic
  stride sample of the others (``sample_rate``, 1 %, at least ``sample_min``): catches a wrong
  or mismatched key, a broken token, a type-specific canonical-form bug or a merge that pairs
  signatures with the wrong RRsets -- faults that hit many signatures -- for a small fraction
  of the cost of ``full`` (docs/performance.md).
* ``full`` -- structural, plus every signature verified cryptographically
  (ZONE-VERIFY-SIGNATURE), split across ``jobs`` forked processes.

Shards (``signer/zone/sharded.py``): each worker verifies its own shard --
a :class:`Zone` holding only its names, whole subtrees below apex children -- with
:func:`verify_shard` and a :class:`ShardContext`; the parent joins the
:class:`ShardVerification` results with :func:`combine_shards`. A whole zone is the same code
as one shard covering everything. In a shard other than 0 the DNSKEY RRset, negative TTL and
NSEC3PARAM come from the context (shard 0 checks that context against its apex); the apex
checks, ZONE-VERIFY-DNSKEY-TA and ZONE-VERIFY-ZSK-PUBLISHED run in shard 0 only. NSEC: each
shard checks its part of the chain, its last NSEC pointing to ``next_chain_name``;
:func:`combine_shards` checks that the parts join up. NSEC3: each shard checks its records
(one per hashed owner right below the apex, TTL) and reports them with the names that need
or may have one; :func:`check_nsec3_chain` checks the chain on those compact lists (order,
next hashes, coverage, opt-out, bitmaps, parameters). Signatures are checked in the shard's
process, the sample taken per shard (apex signatures, the first per type and kind, the
stride). Failures come out in the order of one whole-zone pass: step by step (structure,
signatures, denial chain, trust anchor, cryptography), in shard order within a step.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import logging
import marshal
import multiprocessing
import operator
import os
import struct
import time
from array import array
from collections.abc import Callable, Container, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone

from signer.algorithms import Algorithm
from signer.crypto import PublicKey, signature_checker, verify_signature
from signer.dnskey import FLAG_SEP, DnsKey, DsRecord
from signer.errors import InputError, VerificationError
from signer.rrsig import signing_data_wire, time_text
from signer.zone import _accel
from signer.zone.model import (
    CLASS_IN,
    T_DNAME,
    T_DNSKEY,
    T_DS,
    T_NS,
    T_NSEC,
    T_NSEC3,
    T_NSEC3PARAM,
    T_RRSIG,
    T_SOA,
    RRset,
    RrsigFields,
    Zone,
    bitmap_types,
    canonical_key,
    labels,
    name_from_text,
    name_to_text,
    parent_of,
    rrsig_fields,
    soa_fields,
    type_bitmap,
)

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

# the C helpers of signer/zone/_index.c when the compiled build is in use, else None
_INDEX: Final[list[Any]] = [_accel.extension("_index")]

log = logging.getLogger("signer.zone.verify")

LEVELS: Final = ("structural", "sample", "full")
DEFAULT_LEVEL = "sample"
T_CDS: Final = 59
T_CDNSKEY: Final = 60
_KEY_SIGNED: Final = frozenset({T_DNSKEY, T_CDS, T_CDNSKEY})
MAX_REPORTED: Final = 20
_HEAD: Final = struct.Struct("!HBBIIIH")
_ORIGINAL_TTL: Final = struct.Struct("!I")
PARALLEL_MIN = 4000  # fewer signatures than this are verified in-process (fork costs more)

# name kinds as the verifier classifies them (independently of Zone.kinds)
_AUTH: Final = 0
_DELEG: Final = 1
_NONAUTH: Final = 2
_NSEC3: Final = 3
_OUTSIDE: Final = 0
_NSEC3_PLACE: Final = 1
_P_RRSIG: Final = 1
_P_NSEC: Final = 2
_P_NSEC3: Final = 4
_P_NS: Final = 8
_P_DNAME: Final = 16
_P_DS: Final = 32
_P_ALONE: Final = 64
_PATTERN_BITS: Final = (
    (T_RRSIG, _P_RRSIG),
    (T_NSEC, _P_NSEC),
    (T_NSEC3, _P_NSEC3),
    (T_NS, _P_NS),
    (T_DNAME, _P_DNAME),
    (T_DS, _P_DS),
)
_B32HEX_DIGITS: Final = b"0123456789abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUV"


@_accel.mypyc_attr(native_class=False)
class ZoneVerificationFailed(VerificationError):
    """The signed zone failed self-verification; ``failures`` lists (requirement, message).

    ``requirement`` is the first failure's ID; the message names owner and type.
    """

    requirement = "ZONE-VERIFY"

    def __init__(self, failures: Sequence[tuple[str, str]], total: int) -> None:
        self.failures = list(failures)
        self.total = total
        req, msg = self.failures[0]
        more = f" (and {total - 1} more problem(s))" if total > 1 else ""
        super().__init__(f"{msg}{more}; the signed zone is not published", requirement=req)
        self.requirements = sorted({r for r, _ in self.failures})
        self.messages = [f"{r}: {m}" for r, m in self.failures]


@_accel.mypyc_attr(native_class=False)  # picklable: see _accel
@dataclass(frozen=True)
class VerifyReport:
    origin: str
    level: str
    denial: str  # "nsec", "nsec3" or "nsec3 opt-out"
    names: int
    rrsets_signed: int
    rrsigs: int
    rrsigs_verified: int  # cryptographically, including the trust-anchor signature
    min_expiration: int
    max_expiration: int
    seconds: float
    trust_anchor_key: int
    processes: int = 1  # processes that verified signatures

    def summary(self) -> dict[str, object]:
        return {
            "level": self.level,
            "denial": self.denial,
            "names": self.names,
            "rrsets_signed": self.rrsets_signed,
            "rrsigs": self.rrsigs,
            "rrsigs_verified": self.rrsigs_verified,
            "min_expiration": time_text(self.min_expiration) if self.rrsigs else None,
            "max_expiration": time_text(self.max_expiration) if self.rrsigs else None,
            "seconds": round(self.seconds, 3),
            "trust_anchor_key": self.trust_anchor_key,
            "processes": self.processes,
        }


# -- reading a signed master file (tests, tools) --------------------------------------------
def read_signed_zone(path: str | os.PathLike[str], origin: str | bytes) -> Zone:
    """Read a signed zone file into a :class:`Zone` with RRSIGs attached to their RRsets.

    Uses dnspython's parser (not our loader, so a loader bug cannot hide itself); fine for the
    zones tests and tools read, too slow for millions of names.
    """
    o_wire = origin if isinstance(origin, bytes) else name_from_text(origin.rstrip(".") + ".", None)
    o = dns.name.from_wire(o_wire, 0)[0]
    try:
        z = dns.zone.from_file(
            str(path), origin=o, relativize=False, check_origin=False, allow_include=True
        )
    except OSError as exc:
        raise InputError(f"cannot read signed zone: {exc.strerror}", path=str(path)) from None
    except dns.exception.DNSException as bad:
        raise InputError(f"cannot parse signed zone: {bad}", path=str(path)) from None
    zone = Zone(o_wire)
    for name, znode in z.nodes.items():
        owner = name.canonicalize().to_wire() or b""
        sigs: dict[int, list[bytes]] = {}
        plain = []
        for rds in znode.rdatasets:
            if rds.rdtype == dns.rdatatype.RRSIG:
                for rd in rds:
                    sigs.setdefault(int(rd.type_covered), []).append(rd.to_wire() or b"")
            else:
                plain.append(rds)
        rrsets = [
            RRset(
                owner,
                int(rds.rdtype),
                rds.ttl,
                tuple(sorted({rd.to_digestable(o) for rd in rds})),
                tuple(sigs.pop(int(rds.rdtype), ())),
            )
            for rds in sorted(plain, key=lambda r: int(r.rdtype))
        ]
        for t, orphan in sigs.items():  # RRSIGs over a type that is absent
            rrsets.append(RRset(owner, T_RRSIG, 0, tuple(orphan), ()))
            log.debug("RRSIG over absent type %d at %s", t, name)
        zone.nodes[owner] = rrsets
    return zone


def trust_anchor_from_file(path: str | os.PathLike[str]) -> list[DsRecord]:
    """DS records from a file of ``owner [ttl] [IN] DS ...`` lines (dnssec-dsfromkey output)."""
    out: list[DsRecord] = []
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read trust anchor: {exc.strerror}", path=str(p)) from None
    for no, line in enumerate(lines, 1):
        text = line.split(";", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        try:
            at = [x.upper() for x in parts].index("DS")
        except ValueError:
            raise InputError("expected a DS record", path=str(p), line=no) from None
        try:
            out.append(DsRecord.from_text(" ".join(parts[at + 1 :])))
        except InputError as bad:
            raise InputError(bad.reason, path=str(p), line=no) from None
    if not out:
        raise InputError("no DS record in the trust anchor file", path=str(p))
    return out


# -- helpers ------------------------------------------------------------------------------
def _type_text(t: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(t))


def _b32(h: bytes) -> str:
    return base64.b32hexencode(h).decode().lower()


def _nsec3_hash(owner: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 sect. 5 with SHA-1 over the canonical (lowercased) owner name."""
    h = hashlib.sha1(owner + salt).digest()  # noqa: S324 (RFC 5155 mandates SHA-1)
    for _ in range(iterations):
        h = hashlib.sha1(h + salt).digest()  # noqa: S324
    return h


def _b32hex_decode(label: bytes) -> bytes:
    """``base64.b32hexdecode(label.upper())`` (ValueError alike), fast for a label of
    unpadded base32hex digits (an NSEC3 owner's hash): that is a base-32 integer."""
    if label and len(label) % 8 == 0 and not label.translate(None, _B32HEX_DIGITS):
        return int(label, 32).to_bytes(len(label) * 5 // 8, "big")
    return base64.b32hexdecode(label.upper())


def _bitmap_msg(what: str, owner: bytes, have: set[int], want: set[int]) -> str:
    def names(ts: set[int]) -> str:
        return " ".join("(malformed)" if t < 0 else _type_text(t) for t in sorted(ts)) or "(none)"

    return (
        f"{what} at {name_to_text(owner)}: type bitmap {names(have)}, expected {names(want)}"
        f" (extra: {names(have - want)}; missing: {names(want - have)})"
    )


def _header(s: RrsigFields) -> bytes:
    return (
        struct.pack(
            "!HBBIIIH",
            s.type_covered,
            s.algorithm,
            s.labels,
            s.original_ttl,
            s.expiration,
            s.inception,
            s.key_tag,
        )
        + s.signer.lower()
    )


def _signing_data(owner: bytes, rrset: RRset, s: RrsigFields) -> bytes:
    return signing_data_wire(_header(s), owner, rrset.rtype, CLASS_IN, s.original_ttl, rrset.rdatas)


# The steps of a verification, in the order whose failures are reported (each failure is
# tagged with its step, so that shards' failures merge in the order of one whole-zone pass).
_STRUCTURE: Final = 0
_SIGNATURES: Final = 1
_CHAIN: Final = 2
_ANCHOR: Final = 3
_CRYPTO: Final = 4


class _Failures:
    def __init__(self, limit: int | None = MAX_REPORTED, stage: int = _STRUCTURE) -> None:
        self.items: list[tuple[str, str]] = []
        self.stages: list[int] = []  # the step of each item
        self.total = 0
        self.limit = limit
        self.stage = stage  # the step now running

    def add(self, requirement: str, message: str) -> None:
        self.total += 1
        kept = len(self.items)
        if self.limit is None or kept < self.limit:
            self.items.append((requirement, message))
            self.stages.append(self.stage)
            if kept < MAX_REPORTED:
                log.error("%s: %s", requirement, message)

    def merge(self, items: Sequence[tuple[str, str]], stages: Sequence[int], total: int) -> None:
        """Append failures found (and logged) elsewhere: ``total`` of them, ``items`` kept."""
        self.total += total
        room = len(items) if self.limit is None else max(0, self.limit - len(self.items))
        self.items.extend(items[:room])
        self.stages.extend(stages[:room])


# -- shards ---------------------------------------------------------------------------------
@_accel.mypyc_attr(native_class=False)  # picklable: see _accel
@dataclass(frozen=True)
class ShardContext:
    """What the verification of one shard needs to know about the rest of the zone."""

    index: int  # shard number; shard 0 holds the apex node
    count: int  # number of shards
    dnskey: RRset  # the apex DNSKEY RRset (with its RRSIGs), for shards without the apex
    negative_ttl: int  # min(SOA TTL, SOA MINIMUM) (RFC 9077), for shards without the apex
    nsec3param: bytes | None  # the apex NSEC3PARAM RDATA (None: an NSEC zone)
    next_chain_name: bytes  # NSEC: the first chain name of the following shards (or the apex)
    # NSEC, a shard made of several disjoint runs of the zone (incremental re-signing): the
    # last chain name of each run but the last -> the name its NSEC points to (outside)
    nsec_breaks: dict[bytes, bytes] | None = None


@dataclass
class ShardVerification:
    """The verdict on one shard (picklable: it crosses a process pipe); see :func:`verify_shard`.

    ``nsec_first`` / ``nsec_next`` (NSEC, a shard with chain names): the shard's first chain
    name and the name its last NSEC was checked to point to, so that :func:`combine_shards`
    can check that the shards' chains join up. ``failure_stages``: the step of the
    verification that found each failure (structure, signatures, chain, trust anchor,
    cryptography), so that the combined list is in the order of a whole-zone pass.
    """

    index: int
    failures: list[tuple[str, str]]  # (requirement ID, message), at most MAX_REPORTED
    failure_total: int
    names: int
    rrsets_signed: int
    rrsigs: int
    rrsigs_verified: int
    min_expiration: int
    max_expiration: int
    trust_anchor_key: int  # shard 0 only (0 elsewhere)
    denial: str
    nsec3_found: list[tuple[bytes, bytes, bytes]]  # (hash, NSEC3 RDATA, owner name)
    nsec3_expected: list[tuple[bytes, bool, bytes, bytes]]  # (hash, required, bitmap, name)
    seconds: float
    nsec_first: bytes = b""
    nsec_next: bytes = b""
    failure_stages: list[int] = field(default_factory=list)  # the step of each failure
    # the lists as bytes (pack_nsec3): found, then expected as ExpectedPiece's fields
    nsec3_packed: tuple[bytes, bytes, bytes, bytes, bytes, bytes] | None = None

    def pack_nsec3(self) -> None:
        """Hold the NSEC3 lists as bytes (a fraction of the memory of the tuples) until
        :func:`combine_shards` reads them, one shard's at a time. The names' hashes travel
        as blobs, looked up in bulk; the optional names' bitmaps and names (most of a
        registry zone with opt-out: insecure delegations have no NSEC3) are read only if
        needed."""
        piece = split_expected(self.nsec3_expected)
        self.nsec3_packed = (
            marshal.dumps(self.nsec3_found, 4),
            marshal.dumps(piece.entries, 4),
            piece.required,
            marshal.dumps(piece.required_details(), 4),
            piece.optional,
            marshal.dumps(piece.optional_details(), 4),
        )
        self.nsec3_found, self.nsec3_expected = [], []

    def found_nsec3(self) -> list[tuple[bytes, bytes, bytes]]:
        if self.nsec3_packed is None:
            return self.nsec3_found
        found: list[tuple[bytes, bytes, bytes]] = marshal.loads(self.nsec3_packed[0])  # noqa: S302
        return found

    def expected_piece(self) -> ExpectedPiece:
        """The expected list in the form :func:`_nsec3_chain` checks."""
        if self.nsec3_packed is None:
            return split_expected(self.nsec3_expected)
        _f, entries, required, req_details, optional, opt_details = self.nsec3_packed
        return ExpectedPiece(
            marshal.loads(entries),  # noqa: S302 (ours, from a worker)
            required,
            _Unpack(req_details),
            optional,
            _Unpack(opt_details),
        )


class _Unpack:
    """A marshalled list, read when called (mypyc: no lambdas over local variables)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __call__(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = marshal.loads(self.data)  # noqa: S302 (ours)
        return out


class _Given:
    def __init__(self, items: list[tuple[bytes, bytes]]) -> None:
        self.items = items

    def __call__(self) -> list[tuple[bytes, bytes]]:
        return self.items


@dataclass(frozen=True)
class ExpectedPiece:
    """Part of the names the NSEC3 chain is checked against (see :func:`_nsec3_chain`).

    ``entries``: (hash, required, bitmap, name) of hashes not :data:`_HASH_LEN` long (none
    from a verifier), checked one by one. ``required`` / ``optional``: the hashes of the
    required / optional names (:data:`_HASH_LEN` octets each, concatenated), looked up in
    bulk; ``required_details()`` / ``optional_details()``: their (bitmap, name)s, in the
    same order."""

    entries: list[tuple[bytes, bool, bytes, bytes]]
    required: bytes
    required_details: Callable[[], list[tuple[bytes, bytes]]]
    optional: bytes
    optional_details: Callable[[], list[tuple[bytes, bytes]]]


_HASH_LEN: Final = 20  # SHA-1, the one NSEC3 hash algorithm (RFC 5155 sect. 11)


def split_expected(expected: list[tuple[bytes, bool, bytes, bytes]]) -> ExpectedPiece:
    """The names by kind (required, optional, odd hash length), order kept within each."""
    entries: list[tuple[bytes, bool, bytes, bytes]] = []
    req: list[bytes] = []
    req_details: list[tuple[bytes, bytes]] = []
    opt: list[bytes] = []
    opt_details: list[tuple[bytes, bytes]] = []
    for e in expected:
        h, required, bitmap, name = e
        if len(h) != _HASH_LEN:
            entries.append(e)
        elif required:
            req.append(h)
            req_details.append((bitmap, name))
        else:
            opt.append(h)
            opt_details.append((bitmap, name))
    return ExpectedPiece(
        entries, b"".join(req), _Given(req_details), b"".join(opt), _Given(opt_details)
    )


def _whole_zone(origin: bytes) -> ShardContext:
    """A whole zone is one shard: everything the context could say comes from its apex."""
    return ShardContext(0, 1, RRset(origin, T_DNSKEY, 0, ()), 0, None, origin)


def _check_arguments(level: str, trust_anchor_ds: Sequence[DsRecord]) -> None:
    if level not in LEVELS:
        raise InputError(f"unknown verification level {level!r} (use {', '.join(LEVELS)})")
    if not trust_anchor_ds:
        raise InputError("self-verification needs the trust anchor (the KSK's DS)")


# -- entry points ---------------------------------------------------------------------------
def verify_signed_zone(
    zone: Zone | str | os.PathLike[str],
    *,
    trust_anchor_ds: Sequence[DsRecord],
    now: int,
    level: str = DEFAULT_LEVEL,
    jobs: int | None = None,
    zsk: DnsKey | None = None,
    min_validity: int = 0,
    origin: str | bytes | None = None,
    sample_rate: float = 0.01,
    sample_min: int = 200,
    prepared: PreparedVerification | None = None,
) -> VerifyReport:
    """Verify a signed zone; raise :class:`ZoneVerificationFailed` or return a report.

    See the module docstring for what each ``level`` checks and the requirement IDs.
    ``prepared``: from :func:`prepare_verification` on this ``zone`` (same ``now``, ``zsk``
    and ``min_validity``) before it was signed. The zone is verified as one shard (with the
    NSEC3 chain checked in the same pass), signatures across ``jobs`` processes.
    """
    _check_arguments(level, trust_anchor_ds)
    started = time.perf_counter()
    if not isinstance(zone, Zone):
        if origin is None:
            raise InputError("reading a signed zone file needs its origin")
        zone = read_signed_zone(zone, origin)
    if prepared is not None:
        if prepared.zone is not zone or prepared.now != now:
            raise InputError("verify_signed_zone: 'prepared' was made for another zone or time")
        v = prepared.verifier
        started -= prepared.seconds
    else:
        v = _Verifier(zone, _whole_zone(zone.origin), now, zsk, min_validity, chain=True)
        v.structure()
    part, processes = _finish(
        v, zone, trust_anchor_ds, level, jobs, sample_rate, sample_min, started
    )
    return _combine([part], origin=v.origin, level=level, nsec3param=None, processes=processes)


def verify_shard(
    zone: Zone,
    ctx: ShardContext,
    *,
    trust_anchor_ds: Sequence[DsRecord],
    now: int,
    level: str,
    zsk: DnsKey | None,
    min_validity: int,
    sample_rate: float = 0.01,
    sample_min: int = 200,
) -> ShardVerification:
    """Verify one shard of a signed zone (its names only, signed); failures are returned.

    The same checks as :func:`verify_signed_zone`, in this process, except the NSEC3 chain
    itself: the shard reports its NSEC3 records and the names that need (or may have) one,
    and :func:`combine_shards` checks the chain over all shards.
    """
    _check_arguments(level, trust_anchor_ds)
    started = time.perf_counter()
    v = _Verifier(zone, ctx, now, zsk, min_validity, chain=False)
    v.structure()
    return _finish(v, zone, trust_anchor_ds, level, 1, sample_rate, sample_min, started)[0]


def combine_shards(
    parts: Sequence[ShardVerification], *, origin: bytes, level: str, nsec3param: bytes | None
) -> VerifyReport:
    """The verdict on a zone verified as ``parts``: the NSEC3 chain across the shards (when
    ``nsec3param``) and the joints of the NSEC chain are checked here; raise
    :class:`ZoneVerificationFailed` or return the report (``processes``: the shards).

    Failures are listed step by step as one whole-zone pass would (structure, signatures,
    denial chain, trust anchor, cryptography), in shard order within a step; at most
    MAX_REPORTED are kept, ``total`` counts all."""
    return _combine(parts, origin=origin, level=level, nsec3param=nsec3param, processes=len(parts))


def check_nsec3_chain(
    found: Sequence[tuple[bytes, bytes, bytes]],
    expected: list[tuple[bytes, bool, bytes, bytes]],
    nsec3param: bytes,
) -> list[tuple[str, str]]:
    """The NSEC3 chain checks on compact lists (see :attr:`ShardVerification.nsec3_found`
    and ``nsec3_expected``): every failure as (requirement ID, message)."""
    f = _Failures(limit=None)
    _nsec3_chain(found, [split_expected(expected)], nsec3param, f)
    return f.items


class _Find:
    """Look-ups among ``keys`` (:data:`_HASH_LEN`-octet records, sorted): in C
    (``_index.find`` of ``signer/zone/_index.c``) when the compiled build is in use, else
    through a dict (the specification: tests compare the two)."""

    def __init__(self, keys: bytes, fast: Any = None) -> None:
        w = _HASH_LEN
        self.keys = keys
        self.fast = fast
        self.table = b""
        self.at: dict[bytes, int] = {}
        if fast is not None:
            self.table = fast.find_table(keys, w)
        else:
            self.at = {keys[i : i + w]: i // w for i in range(0, len(keys), w)}

    def index(self, queries: bytes) -> list[int]:
        """For each record of ``queries``, the index of the key equal to it, or -1."""
        w = _HASH_LEN
        if self.fast is not None:
            out: list[int] = self.fast.find(self.keys, w, self.table, queries, True)
            return out
        at = self.at
        return [at.get(queries[j : j + w], -1) for j in range(0, len(queries), w)]

    def hits(self, queries: bytes) -> list[int]:
        """The positions of the records of ``queries`` that are keys."""
        w = _HASH_LEN
        if self.fast is not None:
            found: list[int] = self.fast.find(self.keys, w, self.table, queries, False)
            return found
        at = self.at
        return [j for j in range(len(queries) // w) if queries[j * w : (j + 1) * w] in at]


def _finish(
    v: _Verifier,
    zone: Zone,
    anchors: Sequence[DsRecord],
    level: str,
    jobs: int | None,
    sample_rate: float,
    sample_min: int,
    started: float,
) -> tuple[ShardVerification, int]:
    """After :meth:`_Verifier.structure`: the RRSIGs, the trust anchor (shard 0) and the
    signatures checked cryptographically at ``level``, each step only if the ones before it
    found nothing. Returns the verdict and the number of processes that verified."""
    v.signatures(zone)
    f = v.failures
    ta_tag = verified = 0
    processes = 1
    if not f.total and v.has_apex:
        f.stage = _ANCHOR
        ta_tag = v.dnskey_trust_anchor(anchors)
        verified = 1
    if not f.total:
        f.stage = _CRYPTO
        if level == "structural":
            chosen: Sequence[int] = ()
        elif level == "full":
            chosen = v.tasks
        else:
            chosen = _sample(v, v.tasks, sample_rate, sample_min)
        bad, processes = _verify_tasks(v, chosen, jobs)
        for task, reason in bad:
            i, rs, _si = _locate(v.nodes, task)
            f.add(
                "ZONE-VERIFY-SIGNATURE",
                f"RRSIG {_type_text(rs.rtype)} {name_to_text(v.order[i])}: {reason}",
            )
        verified += len(chosen)
    part = ShardVerification(
        index=v.index,
        failures=f.items,
        failure_total=f.total,
        failure_stages=f.stages,
        names=len(v.order),
        rrsets_signed=v.rrsets_signed,
        rrsigs=len(v.tasks),
        rrsigs_verified=verified,
        min_expiration=v.min_exp if v.tasks else 0,
        max_expiration=v.max_exp if v.tasks else 0,
        trust_anchor_key=ta_tag,
        denial=v.denial,
        nsec3_found=v.nsec3_found,
        nsec3_expected=v.nsec3_expected,
        seconds=time.perf_counter() - started,
        nsec_first=v.nsec_first,
        nsec_next=v.nsec_next,
    )
    return part, processes


def _combine(
    parts: Sequence[ShardVerification],
    *,
    origin: bytes,
    level: str,
    nsec3param: bytes | None,
    processes: int,
) -> VerifyReport:
    started = time.perf_counter()
    parts = sorted(parts, key=lambda p: p.index)
    f = _Failures()  # the checks across shards
    indices = [p.index for p in parts]
    if not parts or indices != list(range(len(parts))):
        f.add("ZONE-VERIFY-ORDER", f"shard results {indices} are not those of shards 0 to n-1")
    f.stage = _CHAIN
    _nsec_joints(parts, f)
    if nsec3param is not None:
        found = []
        for p in parts:
            found.extend(p.found_nsec3())
            _let_others_run()
        _nsec3_chain(found, (p.expected_piece() for p in parts), nsec3param, f)
    total = f.total + sum(p.failure_total for p in parts)
    if total:
        # one step after the other as in a whole-zone pass; within a step, in shard order
        tagged = [
            (st, it) for p in parts for st, it in zip(p.failure_stages, p.failures, strict=True)
        ]
        tagged += zip(f.stages, f.items, strict=True)
        tagged.sort(key=lambda t: t[0])
        raise ZoneVerificationFailed([it for _, it in tagged[:MAX_REPORTED]], total)
    denials = {p.denial for p in parts}
    signed = [p for p in parts if p.rrsigs]
    report = VerifyReport(
        origin=name_to_text(origin),
        level=level,
        denial=next(d for d in ("nsec3 opt-out", "nsec3", parts[0].denial) if d in denials),
        names=sum(p.names for p in parts),
        rrsets_signed=sum(p.rrsets_signed for p in parts),
        rrsigs=sum(p.rrsigs for p in parts),
        rrsigs_verified=sum(p.rrsigs_verified for p in parts),
        min_expiration=min((p.min_expiration for p in signed), default=0),
        max_expiration=max((p.max_expiration for p in signed), default=0),
        seconds=max(p.seconds for p in parts) + time.perf_counter() - started,
        trust_anchor_key=parts[0].trust_anchor_key,
        processes=processes,
    )
    log.info(
        "self-verification (%s) passed: %d names, %d RRSIGs, %d verified in %.2f s",
        level,
        report.names,
        report.rrsigs,
        report.rrsigs_verified,
        report.seconds,
    )
    return report


def _let_others_run() -> None:
    """Give up the GIL for a moment. Compiled code never does on its own: the signer checks
    the chain across shards in a thread while another copies the parts into the output, and
    that copy would wait for the whole check (~0.5 s at 1M NSEC3)."""
    time.sleep(0)


def _nsec_joints(parts: Sequence[ShardVerification], f: _Failures) -> None:
    """The last NSEC of each shard's chain points to the first name of the next shard's."""
    chained = [p for p in parts if p.nsec_first]
    for p, q in zip(chained, chained[1:] + chained[:1], strict=True):
        if p.nsec_next != q.nsec_first:
            f.add(
                "ZONE-VERIFY-NSEC-CHAIN",
                f"the NSEC chain of shard {p.index} continues at {name_to_text(p.nsec_next)}, "
                f"but the chain of shard {q.index} starts at {name_to_text(q.nsec_first)}",
            )


def _nsec3_chain(
    found: Sequence[tuple[bytes, bytes, bytes]],
    expected: Iterable[ExpectedPiece],
    nsec3param: bytes,
    f: _Failures,
) -> None:
    """The NSEC3 chain: in hash order and closed, exactly the required names have an NSEC3,
    optional ones lack one only under an opt-out NSEC3, bitmaps, parameters.

    ``expected`` comes in pieces (one per shard or batch), each looked at once and then
    dropped: only the NSEC3 records (and what matched them) are held, not the names
    (1M delegations with opt-out: 300k records, 1M names). A piece's names are looked up in
    bulk, as blobs of hashes (:class:`_Find`); the bitmaps and names of its optional names
    (the insecure delegations, 700k of those 1M) are read only for those that have an NSEC3
    record, or when the chain is not all opt-out. Hash collisions are found among
    the names that have or need an NSEC3 (two optional names sharing a hash and no NSEC3
    change no proof: one opt-out NSEC3 covers both). The failures are listed as one pass
    over the whole lists would: collisions, then the NSEC3 records in hash order, then the
    names without one."""
    halg, _flags, iterations, slen = struct.unpack_from("!BBHB", nsec3param)
    salt = nsec3param[5 : 5 + slen]
    owners = sorted(found)
    hashes = [h for h, _, _ in owners]
    unmatched: set[bytes] = set()  # hashes of required names without an NSEC3
    all_optout = all(rd[1] & 1 for _h, rd, _o in owners)
    collisions: list[str] = []
    missing: list[str] = []
    uncovered: list[str] = []
    w = _HASH_LEN
    # the records' hashes of the usual length (all of them, unless the zone is broken)
    even = [i for i, h in enumerate(hashes) if len(h) == w]
    find = _Find(b"".join([hashes[i] for i in even]), _INDEX[0])
    identity = len(even) == len(hashes)
    want: list[tuple[bytes, bytes] | None] = [None] * len(owners)  # (bitmap, name) expected
    at: dict[bytes, int] | None = None  # built only for odd entries

    def no_nsec3(h: bytes, required: bool, name: bytes) -> None:
        if required:
            if h in unmatched:
                collisions.append(f"NSEC3 hash collision at {name_to_text(name)}")
            unmatched.add(h)
        if not owners:
            return
        if required:
            missing.append(f"{name_to_text(name)} has no NSEC3")
        elif not all_optout:
            pos = bisect.bisect_left(hashes, h) - 1  # the NSEC3 covering h (wraps to -1)
            if not owners[pos][1][1] & 1:  # the covering NSEC3's opt-out flag
                uncovered.append(
                    f"insecure {name_to_text(name)} has no NSEC3 and the NSEC3 covering "
                    "it has no opt-out flag"
                )

    def has_nsec3(i: int, details: tuple[bytes, bytes]) -> None:
        if want[i] is not None:
            collisions.append(f"NSEC3 hash collision at {name_to_text(details[1])}")
        want[i] = details  # the last name with this hash

    for piece in expected:
        _let_others_run()
        if piece.entries:
            if at is None:
                at = {h: i for i, h in enumerate(hashes)}
            for h, required, bitmap, name in piece.entries:
                i = at.get(h)
                if i is None:
                    no_nsec3(h, required, name)
                else:
                    has_nsec3(i, (bitmap, name))
        req = piece.required
        if req:
            details = piece.required_details()
            for j, i in enumerate(find.index(req)):
                if i < 0:
                    no_nsec3(req[j * w : (j + 1) * w], True, details[j][1])
                    continue
                if not identity:
                    i = even[i]
                if want[i] is not None:  # (has_nsec3, inline: this runs for most of them)
                    collisions.append(f"NSEC3 hash collision at {name_to_text(details[j][1])}")
                want[i] = details[j]
        opt = piece.optional
        if not opt:
            continue
        if all_optout and not find.hits(opt):
            continue  # the common case: no optional name has or needs an NSEC3 record
        details = piece.optional_details()
        for j, i in enumerate(find.index(opt)):  # one look-up for the piece, not one per hit
            if i >= 0:
                has_nsec3(i if identity else even[i], details[j])
            elif not all_optout:
                no_nsec3(opt[j * w : (j + 1) * w], False, details[j][1])
    for msg in collisions:
        f.add("ZONE-VERIFY-NSEC3-CHAIN", msg)
    if not owners:
        f.add("ZONE-VERIFY-NSEC3-CHAIN", "the zone has an NSEC3PARAM but no NSEC3 chain")
        return
    for pos, (_h, rd, owner) in enumerate(owners):
        if not pos & 0x3FFF:
            _let_others_run()
        ralg, _rflags, riter, rslen = struct.unpack_from("!BBHB", rd)
        rsalt = rd[5 : 5 + rslen]
        hl = rd[5 + rslen]
        nxt = rd[6 + rslen : 6 + rslen + hl]
        if (ralg, riter, rsalt) != (halg, iterations, salt):
            f.add(
                "ZONE-VERIFY-NSEC3-PARAM",
                f"NSEC3 at {name_to_text(owner)} has parameters other than the NSEC3PARAM's",
            )
        want_next = hashes[(pos + 1) % len(hashes)]
        if nxt != want_next:
            f.add(
                "ZONE-VERIFY-NSEC3-CHAIN",
                f"NSEC3 at {name_to_text(owner)} points to {_b32(nxt)}, expected {_b32(want_next)}",
            )
        wanted = want[pos]
        if wanted is None:
            f.add(
                "ZONE-VERIFY-NSEC3-CHAIN",
                f"NSEC3 at {name_to_text(owner)} matches no name of the zone",
            )
            continue
        want_bitmap, name = wanted
        bitmap = rd[6 + rslen + hl :]
        if bitmap == want_bitmap:
            continue
        have, expect = _types_in(bitmap), set(bitmap_types(want_bitmap))
        if have != expect:
            what = f"NSEC3 of {name_to_text(name)}"
            f.add("ZONE-VERIFY-BITMAP", _bitmap_msg(what, owner, have, expect))
    for msg in missing:
        f.add("ZONE-VERIFY-NSEC3-CHAIN", msg)
    for msg in uncovered:
        f.add("ZONE-VERIFY-NSEC3-CHAIN", msg)


@dataclass
class PreparedVerification:
    """The half of the structural verification that needs no signature (order, apex, DNSKEY
    RRset, name classification, denial chain and bitmaps), done on the zone before or while
    it is signed; :func:`verify_signed_zone` (``prepared=``) does the rest."""

    zone: Zone
    now: int
    verifier: _Verifier
    seconds: float


def prepare_verification(
    zone: Zone, *, now: int, zsk: DnsKey | None = None, min_validity: int = 0
) -> PreparedVerification:
    """First half of :func:`verify_signed_zone` for a zone whose names, RRsets and denial
    chain are final but whose RRSIGs may not be there yet (the signer runs it while its
    workers sign). The zone's node lists must afterwards change only by RRsets gaining
    signatures."""
    started = time.perf_counter()
    v = _Verifier(zone, _whole_zone(zone.origin), now, zsk, min_validity, chain=True)
    v.structure()
    v.reread = True
    return PreparedVerification(zone, now, v, time.perf_counter() - started)


def _sample(v: _Verifier, tasks: Sequence[int], rate: float, minimum: int) -> Sequence[int]:
    """Every apex signature, the first signature over each RR type (a canonical-form bug is
    type-specific), and an evenly spread deterministic sample of the rest.

    Taken after :meth:`_Verifier.signatures` found nothing wrong: the apex is then the first
    name of shard 0 and in no other shard, and ``v.first_tasks`` holds the position of the
    first task of each (RR type, kind of name)."""
    want = max(minimum, int(len(tasks) * rate))
    if want >= len(tasks):
        return tasks
    stride = len(tasks) / want
    picked = {int(i * stride) for i in range(want)}
    picked.update(v.first_tasks.values())
    order, origin = v.order, v.origin
    apex = 0  # names equal to the apex at the start of the order (tasks are in name order)
    while apex < len(order) and order[apex] == origin:
        apex += 1
    picked.update(range(bisect.bisect_left(tasks, apex << _TASK_SHIFT)))
    return array("Q", [tasks[p] for p in sorted(picked)])


class _Verifier:
    """Verifies one shard (a whole zone: shard 0 of 1). ``chain``: check the NSEC3 chain here
    (a whole zone) rather than report its compact lists for :func:`combine_shards`."""

    def __init__(
        self,
        zone: Zone,
        ctx: ShardContext,
        now: int,
        zsk: DnsKey | None,
        min_validity: int,
        *,
        chain: bool,
    ) -> None:
        self.failures = _Failures()
        self.ctx = ctx
        self.index = ctx.index
        self.has_apex = ctx.index == 0
        self.check_chain = chain
        self.now = now
        self.zsk = zsk
        self.min_validity = min_validity
        self.origin = zone.origin
        self.apex_key = canonical_key(zone.origin)
        # RRset type patterns (the types of a node's RRsets, in list order): an id each, and
        # per id the flags and positions the checks need (shared by all names alike)
        self._pattern_ids: dict[tuple[int, ...], int] = {}
        self._pflags: list[int] = []
        self._pnsec: list[int] = []  # index of the NSEC RRset in the pattern, -1 if none
        self._pnsec3: list[int] = []  # index of the NSEC3 RRset, -1 if none
        # Filled by _scan, one entry per name in canonical order: the names, their RRsets
        # (RRSIGs held as a type-46 RRset folded into what they cover), kind, RRSIG Labels
        # field (labels without a leading "*"; at most 127) and type pattern id.
        self.order: list[bytes] = []
        self.nodes: list[list[RRset]] = []
        self.kinds = bytearray()
        self.nlabels = bytearray()
        self.pids: array[int] = array("I")
        self._deferred: list[tuple[int, int]] = []  # (_OUTSIDE | _NSEC3_PLACE, name index)
        self.has_nsec = self.has_nsec3 = False
        # The signer's canonical order is used only if it is one (checked by _scan, O(n)).
        order = zone.order if len(zone.order) == len(zone.nodes) else list(zone.nodes)
        # names of the zone: the order was checked strictly increasing, so it holds each
        # name of zone.nodes once (it has as many, each looked up there)
        self.present: Container[bytes] = zone.nodes
        if not self._scan(order, zone.nodes, check=True):
            order = sorted(order, key=canonical_key)
            self.present = set(order)
            self._scan(order, zone.nodes, check=False)
        # one per RRSIG whose fields are right: node index << 32 | the signature's index
        # among the node's signatures (see _locate), in name order
        self.tasks: array[int] = array("Q")
        self.first_tasks: dict[int, int] = {}  # rtype << 2 | kind -> position of its 1st task
        self.min_exp = 2**32
        self.max_exp = 0
        self.rrsets_signed = 0
        self.denial = "none"
        self.negative_ttl = 0
        self.dnskeys: list[DnsKey] = []
        self.signing_keys: set[tuple[int, int]] = set()
        self.zone_keys: set[tuple[int, int]] = set()
        self.pubkeys: dict[tuple[int, int], list[tuple[Algorithm, PublicKey]]] = {}
        self._bitmaps: dict[int, bytes] = {}  # pattern id << 3 | kind << 1 | nsec3 -> bitmap
        self.reread = False  # signatures(): read the zone's RRsets again (prepared: signed since)
        self._chain_failures = _Failures()
        self._pending_signatures = False
        self.nsec3_found: list[tuple[bytes, bytes, bytes]] = []
        self.nsec3_expected: list[tuple[bytes, bool, bytes, bytes]] = []
        self.nsec_first = self.nsec_next = b""

    def get(self, i: int, rtype: int) -> RRset | None:
        for rs in self.nodes[i]:
            if rs.rtype == rtype:
                return rs
        return None

    def _new_pattern(self, types: tuple[int, ...]) -> int:
        pid = len(self._pflags)
        flags = _P_ALONE if len(types) == 1 else 0
        for t, bit in _PATTERN_BITS:
            if t in types:
                flags |= bit
        self._pflags.append(flags)
        self._pnsec.append(types.index(T_NSEC) if T_NSEC in types else -1)
        self._pnsec3.append(types.index(T_NSEC3) if T_NSEC3 in types else -1)
        self._pattern_ids[types] = pid
        return pid

    def _scan(self, order: list[bytes], nodes: dict[bytes, list[RRset]], *, check: bool) -> bool:
        """One pass over the names in ``order``: their canonical keys (computed from the
        parent's, = canonical_key), checked strictly increasing if ``check`` (else False is
        returned), label counts, RRSIG folding, type patterns and the classification (apex,
        authoritative, delegation, glue or occluded, NSEC3; its failures kept for
        :meth:`structure`). Only the previous name's key is kept."""
        origin = self.origin
        below_apex = self.apex_key  # keys end in b"\x00\x00": a prefix is an ancestor
        apex_first = self.has_apex
        pattern_ids = self._pattern_ids
        pflags = self._pflags
        rtype_of = operator.itemgetter(1)  # RRset.rtype
        out_nodes: list[list[RRset]] = []
        add_node = out_nodes.append
        kinds = bytearray()
        add_kind = kinds.append
        nls = bytearray()
        add_nl = nls.append
        pids: array[int] = array("I")
        add_pid = pids.append
        deferred: list[tuple[int, int]] = []
        has_nsec = has_nsec3 = False
        cut: bytes | None = None
        prev_name = prev_key = b""
        prev_nl = 0
        parents: dict[bytes, tuple[bytes, int]] = {}  # a few recent parents' (key, labels)
        for i, name in enumerate(order):
            rrsets = nodes[name]
            n0 = name[0]
            if n0:
                parent = name[n0 + 1 :]
                if parent == prev_name:
                    pkey, pnl = prev_key, prev_nl
                else:
                    hit = parents.get(parent)
                    if hit is None:
                        if len(parents) >= 64:
                            parents.clear()
                        hit = parents[parent] = (canonical_key(parent), len(labels(parent)))
                    pkey, pnl = hit
                label = name[1 : n0 + 1]
                if 0 in label:
                    label = label.replace(b"\x00", b"\x00\xff")
                key = pkey + label + b"\x00\x00"
                nl = pnl + 1
            else:
                key, nl = b"", 0
            if key <= prev_key and check and i:
                return False
            prev_name, prev_key, prev_nl = name, key, nl
            types = tuple(map(rtype_of, rrsets))
            pid = pattern_ids.get(types)
            if pid is None:
                pid = self._new_pattern(types)
            flags = pflags[pid]
            if flags & _P_RRSIG:
                rrsets = _fold_rrsigs(rrsets)
                types = tuple(map(rtype_of, rrsets))
                pid = pattern_ids.get(types)
                if pid is None:
                    pid = self._new_pattern(types)
                flags = pflags[pid]
            add_node(rrsets)
            add_pid(pid)
            add_nl(nl - 1 if n0 == 1 and name[1] == 42 else nl)  # a wildcard's "*": not counted
            if i == 0 and apex_first:
                kind = _AUTH
                if flags & _P_NSEC:
                    has_nsec = True
            elif not key.startswith(below_apex):
                deferred.append((_OUTSIDE, i))
                kind = _NONAUTH
            elif cut is not None and key.startswith(cut):
                kind = _NONAUTH
            else:
                cut = None
                if flags & _P_NSEC3:
                    has_nsec3 = True
                    kind = _NSEC3
                    if not flags & _P_ALONE or parent_of(name) != origin:
                        deferred.append((_NSEC3_PLACE, i))
                else:
                    if flags & _P_NSEC:
                        has_nsec = True
                    if flags & _P_NS:
                        kind = _DELEG
                        cut = key
                    else:
                        kind = _AUTH
                        if flags & _P_DNAME:
                            cut = key
            add_kind(kind)
        self.order, self.nodes, self.kinds, self.nlabels, self.pids = (
            order, out_nodes, kinds, nls, pids,
        )  # fmt: skip
        self._deferred = deferred
        self.has_nsec, self.has_nsec3 = has_nsec, has_nsec3
        return True

    # -- structure ----------------------------------------------------------------------
    def structure(self) -> None:
        f = self.failures
        if self.has_apex:
            self._apex()
        else:
            self._no_apex()
        if f.total:
            return
        for what, i in self._deferred:
            if what == _OUTSIDE:
                f.add(
                    "ZONE-VERIFY-ORDER",
                    f"{name_to_text(self.order[i])} is outside the zone "
                    f"{name_to_text(self.origin)}",
                )
            else:
                f.add(
                    "ZONE-VERIFY-NSEC3-CHAIN",
                    f"NSEC3 at {name_to_text(self.order[i])} is not alone at a hashed name "
                    "right below the apex",
                )
        self._deferred = []
        has_nsec, has_nsec3 = self.has_nsec, self.has_nsec3
        if has_nsec and has_nsec3:
            f.add("ZONE-VERIFY-NSEC-CHAIN", "the zone mixes NSEC and NSEC3 records")
            return
        # The denial chain does not depend on the signatures: checked now (possibly while
        # the signer is still signing), its failures reported after the signatures' ones.
        self.failures = _Failures(stage=_CHAIN)
        try:
            param = self._nsec3param()
            if has_nsec3 or param is not None:
                self._nsec3(param)
            else:
                self._nsec()
        finally:
            self._chain_failures, self.failures = self.failures, f
        self._pending_signatures = True

    def signatures(self, zone: Zone) -> None:
        """Second half of :meth:`structure`: the RRSIGs as they are in ``zone`` now."""
        if not self._pending_signatures:
            return
        self._pending_signatures = False
        # Prepared: RRsets were replaced (signed) in the zone's lists after the first half:
        # read them again (the lists this verifier holds are the zone's own unless RRSIGs
        # were folded). Otherwise the zone has not changed since _scan read it.
        nodes = zone.nodes
        for i, owner in enumerate(self.order if self.reread else ()):
            if self.nodes[i] is not nodes[owner]:
                rrsets = nodes[owner]
                self.nodes[i] = (
                    _fold_rrsigs(rrsets) if any(rs.rtype == T_RRSIG for rs in rrsets) else rrsets
                )
        self.failures.stage = _SIGNATURES
        self._signatures()
        chain = self._chain_failures
        self.failures.merge(chain.items, chain.stages, chain.total)

    def _apex(self) -> None:
        """Shard 0: SOA, NS and DNSKEY at the apex; what the other shards were told of it."""
        f = self.failures
        origin = self.origin
        if not self.order or self.order[0] != origin:
            f.add("ZONE-VERIFY-ORDER", f"no data at the apex {name_to_text(origin)}")
            return
        soa = self.get(0, T_SOA)
        if soa is None or self.get(0, T_NS) is None:
            f.add("ZONE-VERIFY-ORDER", f"no SOA and NS at the apex {name_to_text(origin)}")
            return
        self.negative_ttl = min(soa.ttl, soa_fields(soa.rdatas[0]).minimum)
        rrset = self.get(0, T_DNSKEY)
        if rrset is None:
            f.add("ZONE-VERIFY-DNSKEY-TA", f"no DNSKEY RRset at the apex {name_to_text(origin)}")
            return
        self._load_dnskeys(rrset, report=True)
        ctx = self.ctx
        if ctx.count == 1:
            return
        if set(ctx.dnskey.rdatas) != set(rrset.rdatas):
            f.add("ZONE-VERIFY-DNSKEY-TA", "the other shards got a DNSKEY RRset not the apex's")
        if ctx.negative_ttl != self.negative_ttl:
            f.add(
                "ZONE-VERIFY-NEGATIVE-TTL",
                f"the other shards got the negative TTL {ctx.negative_ttl}, not "
                f"min(SOA TTL, SOA MINIMUM) = {self.negative_ttl} (RFC 9077)",
            )
        param = self.get(0, T_NSEC3PARAM)
        if ctx.nsec3param != (param.rdatas[0] if param and len(param.rdatas) == 1 else None):
            f.add("ZONE-VERIFY-NSEC3-PARAM", "the other shards got an NSEC3PARAM not the apex's")

    def _no_apex(self) -> None:
        """A shard other than 0: the apex and its RRsets are the context's."""
        if self.origin in self.present:
            self.failures.add(
                "ZONE-VERIFY-ORDER",
                f"the apex {name_to_text(self.origin)} is in shard {self.index}, not in shard 0",
            )
            return
        self.negative_ttl = self.ctx.negative_ttl
        self._load_dnskeys(self.ctx.dnskey, report=False)

    def _nsec3param(self) -> RRset | None:
        if self.has_apex:
            return self.get(0, T_NSEC3PARAM)
        p = self.ctx.nsec3param
        return None if p is None else RRset(self.origin, T_NSEC3PARAM, 0, (p,))

    def _load_dnskeys(self, rrset: RRset, *, report: bool) -> None:
        """The keys of the DNSKEY RRset; ``report``: problems with it (shard 0 only)."""
        f = self.failures
        for rd in rrset.rdatas:
            parsed = _parsed_dnskey(rd)
            if isinstance(parsed, InputError):
                if report:
                    f.add("ZONE-VERIFY-DNSKEY-TA", f"unusable DNSKEY in the apex RRset: {parsed}")
                continue
            dk, pub = parsed
            self.dnskeys.append(dk)
            tk = (dk.key_tag, int(dk.algorithm))
            self.zone_keys.add(tk)
            self.pubkeys.setdefault(tk, []).append((dk.algorithm, pub))
        if self.zsk is not None:
            if report and not any(
                k.same_key(self.zsk) and k.flags == self.zsk.flags for k in self.dnskeys
            ):
                f.add(
                    "ZONE-VERIFY-ZSK-PUBLISHED",
                    f"the ZSK {self.zsk.key_tag} is not in the DNSKEY RRset",
                )
            self.signing_keys = {(self.zsk.key_tag, int(self.zsk.algorithm))}
        else:
            zsks = {(k.key_tag, int(k.algorithm)) for k in self.dnskeys if not k.flags & FLAG_SEP}
            self.signing_keys = zsks or set(self.zone_keys)

    def _signatures(self) -> None:
        """Every authoritative RRset signed (fields, validity); nothing else signed."""
        f = self.failures
        origin = self.origin
        now, horizon = self.now, self.now + self.min_validity
        tasks = self.tasks
        add_task = tasks.append
        first_tasks = self.first_tasks
        signing_keys, zone_keys = self.signing_keys, self.zone_keys
        signed = 0
        min_exp, max_exp = self.min_exp, self.max_exp
        unpack_head = _HEAD.unpack_from
        end_signer = 18 + len(origin)
        # nlabels: the RRSIG Labels field for the name (counted by _scan)
        for i, (owner, nlabels, rrsets, kind) in enumerate(
            zip(self.order, self.nlabels, self.nodes, self.kinds, strict=True)
        ):
            if kind == _NONAUTH:
                signed_types = [rs.rtype for rs in rrsets if rs.sigs or rs.rtype == T_RRSIG]
                if signed_types:
                    f.add(
                        "ZONE-VERIFY-EXTRA-SIG",
                        f"{name_to_text(owner)} is glue or occluded but has RRSIG(s) over "
                        + ", ".join(_type_text(t) for t in signed_types),
                    )
                continue
            task = i << _TASK_SHIFT  # the node's first signature
            for rs in rrsets:
                t = rs.rtype
                sigs = rs.sigs
                if t == T_RRSIG:
                    covered = {rrsig_fields(rd).type_covered for rd in rs.rdatas}
                    f.add(
                        "ZONE-VERIFY-EXTRA-SIG",
                        f"RRSIG at {name_to_text(owner)} covers absent RRset(s) "
                        + ", ".join(_type_text(c) for c in sorted(covered)),
                    )
                    task += len(sigs)
                    continue
                if kind == _DELEG and t != T_DS and t != T_NSEC:
                    if sigs:
                        f.add(
                            "ZONE-VERIFY-EXTRA-SIG",
                            f"{_type_text(t)} at delegation {name_to_text(owner)} is signed (the "
                            "child zone is authoritative for it)",
                        )
                        task += len(sigs)
                    continue
                if not sigs:
                    f.add(
                        "ZONE-VERIFY-UNSIGNED",
                        f"{_type_text(t)} at {name_to_text(owner)} has no RRSIG",
                    )
                    continue
                want = zone_keys if t in _KEY_SIGNED else signing_keys
                ok = False
                ttl = rs.ttl
                first = len(tasks)
                for rd in sigs:
                    try:
                        tc, alg, lab, ottl, exp, inc, tag = unpack_head(rd)
                    except struct.error:
                        tc = -1
                    if (
                        tc == t
                        and lab == nlabels
                        and ottl == ttl
                        and inc <= now
                        and exp > horizon
                        and ((sg := rd[18:end_signer]) == origin or sg.lower() == origin)
                        and (key := (tag, alg)) in zone_keys
                    ):
                        if not ok and key in want:
                            ok = True
                        if exp < min_exp:
                            min_exp = exp
                        if exp > max_exp:
                            max_exp = exp
                        add_task(task)
                        task += 1
                        continue
                    task += 1
                    try:
                        fields = rrsig_fields(rd)
                    except (struct.error, IndexError):
                        f.add(
                            "ZONE-VERIFY-RRSIG-FIELDS",
                            f"malformed RRSIG {_type_text(t)} at {name_to_text(owner)}",
                        )
                        continue
                    self._bad_rrsig(owner, rs, fields, nlabels, horizon)
                if len(tasks) > first:
                    pattern = t << 2 | kind
                    if pattern not in first_tasks:
                        first_tasks[pattern] = first
                if ok:
                    signed += 1
                else:
                    f.add(
                        "ZONE-VERIFY-UNSIGNED",
                        f"{_type_text(t)} at {name_to_text(owner)} has no valid RRSIG by "
                        + ("a key of the DNSKEY RRset" if t in _KEY_SIGNED else "the ZSK"),
                    )
        self.rrsets_signed = signed
        self.min_exp, self.max_exp = min_exp, max_exp

    def _bad_rrsig(
        self, owner: bytes, rs: RRset, s: RrsigFields, nlabels: int, horizon: int
    ) -> None:
        where = f"RRSIG {_type_text(rs.rtype)} {name_to_text(owner)} key {s.key_tag}"
        f = self.failures
        if s.type_covered != rs.rtype:
            f.add("ZONE-VERIFY-RRSIG-FIELDS", f"{where}: covers {_type_text(s.type_covered)}")
        elif s.signer.lower() != self.origin:
            f.add(
                "ZONE-VERIFY-RRSIG-FIELDS",
                f"{where}: signer {name_to_text(s.signer)} is not the apex",
            )
        elif s.labels != nlabels:
            f.add("ZONE-VERIFY-RRSIG-FIELDS", f"{where}: labels {s.labels}, expected {nlabels}")
        elif s.original_ttl != rs.ttl:
            f.add(
                "ZONE-VERIFY-RRSIG-FIELDS",
                f"{where}: original TTL {s.original_ttl} != RRset TTL {rs.ttl}",
            )
        elif (s.key_tag, s.algorithm) not in self.zone_keys:
            f.add("ZONE-VERIFY-RRSIG-FIELDS", f"{where}: no such key in the DNSKEY RRset")
        elif s.inception > self.now:
            f.add(
                "ZONE-VERIFY-VALIDITY",
                f"{where}: not valid before {time_text(s.inception)} (now {time_text(self.now)})",
            )
        else:
            f.add(
                "ZONE-VERIFY-VALIDITY",
                f"{where}: expires {time_text(s.expiration)}, not after {time_text(horizon)}",
            )

    # -- denial of existence ------------------------------------------------------------
    def _expected_bitmap(self, i: int, nsec3: bool) -> bytes:
        """Type bitmap an NSEC (or NSEC3) at name i must carry, cached by the type pattern."""
        key = self.pids[i] << 3 | self.kinds[i] << 1 | nsec3
        bm = self._bitmaps.get(key)
        if bm is None:
            types = self._types(i)
            if not nsec3:
                types |= {T_NSEC, T_RRSIG}
            elif self.kinds[i] == _AUTH or T_DS in types:
                types.add(T_RRSIG)
            bm = self._bitmaps[key] = type_bitmap(types)
        return bm

    def _types(self, i: int) -> set[int]:
        """Types an NSEC/NSEC3 bitmap must list for name i (without NSEC/RRSIG)."""
        types = {rs.rtype for rs in self.nodes[i] if rs.rtype != T_RRSIG}
        if self.kinds[i] == _DELEG:
            return types & {T_NS, T_DS, T_NSEC}
        return types

    def _check_ttl(self, owner: bytes, rs: RRset) -> None:
        if rs.ttl != self.negative_ttl:
            self.failures.add(
                "ZONE-VERIFY-NEGATIVE-TTL",
                f"{_type_text(rs.rtype)} at {name_to_text(owner)} has TTL {rs.ttl}, not "
                f"min(SOA TTL, SOA MINIMUM) = {self.negative_ttl} (RFC 9077)",
            )

    def _nsec(self) -> None:
        f = self.failures
        self.denial = "nsec"
        kinds, order, nodes, pids = self.kinds, self.order, self.nodes, self.pids
        firsts = [j for j in (kinds.find(_AUTH), kinds.find(_DELEG)) if j >= 0]
        nsec_next = self.ctx.next_chain_name
        if firsts:  # the last name points to the next shard's first (one shard: the apex)
            self.nsec_first, self.nsec_next = order[min(firsts)], nsec_next
        nsec_at = self._pnsec
        i = kinds.find(_NONAUTH)
        while i >= 0:
            if nsec_at[pids[i]] >= 0:
                f.add(
                    "ZONE-VERIFY-NSEC-CHAIN",
                    f"glue or occluded name {name_to_text(order[i])} has an NSEC",
                )
            i = kinds.find(_NONAUTH, i + 1)
        # The chain names (_AUTH, _DELEG) in order, each checked when the next one is found
        # (the name its NSEC must point to); a sentinel after the last checks it against
        # nsec_next.
        negative_ttl = self.negative_ttl
        bitmaps = self._bitmaps
        breaks = self.ctx.nsec_breaks
        n = len(order)
        prev = -1
        for i, kind in enumerate(itertools.chain(kinds, (_AUTH,))):
            if kind > _DELEG:
                continue
            p, prev = prev, i
            if p < 0:
                continue
            owner = order[p]
            pid = pids[p]
            pos = nsec_at[pid]
            if pos < 0:
                f.add("ZONE-VERIFY-NSEC-CHAIN", f"{name_to_text(owner)} has no NSEC")
                continue
            rs = nodes[p][pos]
            if len(rs.rdatas) != 1:
                f.add(
                    "ZONE-VERIFY-NSEC-CHAIN",
                    f"{name_to_text(owner)} has {len(rs.rdatas)} NSEC records",
                )
                continue
            if rs.ttl != negative_ttl:
                self._check_ttl(owner, rs)
            rd = rs.rdatas[0]
            want = order[i] if i < n else nsec_next
            if breaks is not None:
                want = breaks.get(owner, want)
            bm = bitmaps.get(pid << 3 | kinds[p] << 1)
            if bm is None:
                bm = self._expected_bitmap(p, False)
            if len(rd) == len(want) + len(bm) and rd.startswith(want) and rd.endswith(bm):
                continue  # the common case: lowercase next name, right bitmap
            end = 0
            while rd[end]:
                end += 1 + rd[end]
            nxt = rd[: end + 1].lower()
            if nxt != want:
                f.add(
                    "ZONE-VERIFY-NSEC-CHAIN",
                    f"NSEC at {name_to_text(owner)} points to {name_to_text(nxt)}, expected "
                    f"{name_to_text(want)}",
                )
            have = _types_in(rd[end + 1 :])
            expect = self._types(p) | {T_NSEC, T_RRSIG}
            if have != expect:
                f.add("ZONE-VERIFY-BITMAP", _bitmap_msg("NSEC", owner, have, expect))

    def _nsec3(self, param: RRset | None) -> None:
        """The shard's own NSEC3 checks (one record, TTL, a hash right below the apex) and
        the compact lists of the chain: checked here for a whole zone, else kept for
        :func:`combine_shards`."""
        f = self.failures
        self.denial = "nsec3"
        if param is None or len(param.rdatas) != 1:
            f.add("ZONE-VERIFY-NSEC3-PARAM", "the apex needs exactly one NSEC3PARAM record")
            return
        p = param.rdatas[0]
        halg, _flags, iterations, slen = struct.unpack_from("!BBHB", p)
        if halg != 1:
            f.add("ZONE-VERIFY-NSEC3-PARAM", f"NSEC3PARAM hash algorithm {halg} is not SHA-1")
            return
        expected = self._nsec3_expected(p[5 : 5 + slen], iterations)
        found: list[tuple[bytes, bytes, bytes]] = []  # (hash, NSEC3 rdata, owner)
        kinds, order, nodes, pids, nsec3_at = (
            self.kinds, self.order, self.nodes, self.pids, self._pnsec3,
        )  # fmt: skip
        i = -1
        while (i := kinds.find(_NSEC3, i + 1)) >= 0:
            owner = order[i]
            rs = nodes[i][nsec3_at[pids[i]]]  # an _NSEC3 name has one
            if len(rs.rdatas) != 1:
                f.add(
                    "ZONE-VERIFY-NSEC3-CHAIN",
                    f"{name_to_text(owner)} has {len(rs.rdatas)} NSEC3 records",
                )
                continue
            if rs.ttl != self.negative_ttl:
                self._check_ttl(owner, rs)
            try:
                h = _b32hex_decode(owner[1 : 1 + owner[0]] if owner[0] else labels(owner)[0])
            except ValueError:
                f.add(
                    "ZONE-VERIFY-NSEC3-CHAIN",
                    f"NSEC3 owner {name_to_text(owner)} is not a base32hex hash",
                )
                continue
            found.append((h, rs.rdatas[0], owner))
        if any(rd[1] & 1 for _, rd, _ in found):
            self.denial = "nsec3 opt-out"
        if self.check_chain:
            _nsec3_chain(found, [split_expected(expected)], p, f)
        else:
            self.nsec3_found, self.nsec3_expected = found, expected

    def _nsec3_expected(
        self, salt: bytes, iterations: int
    ) -> list[tuple[bytes, bool, bytes, bytes]]:
        """(hash, required, bitmap, name) of the names that need an NSEC3 (required) or may
        have one (optional: insecure delegations, and the empty non-terminals above only
        those): the chain names in canonical order, then the empty non-terminals."""
        out: list[tuple[bytes, bool, bytes, bytes]] = []
        add = out.append
        ents: dict[bytes, bool] = {}
        present = self.present
        origin = self.origin
        kinds, order, pids, pflags = self.kinds, self.order, self.pids, self._pflags
        bitmaps = self._bitmaps
        sha1 = hashlib.sha1
        for i in range(len(kinds)):  # (not enumerate: mypyc cannot iterate a bytearray)
            kind = kinds[i]
            if kind > _DELEG:  # chain names: _AUTH, _DELEG
                continue
            owner = order[i]
            pid = pids[i]
            is_req = kind == _AUTH or bool(pflags[pid] & _P_DS)
            # _nsec3_hash, inline when there are no extra iterations (SHA-1: RFC 5155)
            h = _nsec3_hash(owner, salt, iterations) if iterations else sha1(owner + salt).digest()
            bm = bitmaps.get(pid << 3 | kind << 1 | 1)
            if bm is None:
                bm = self._expected_bitmap(i, True)
            add((h, is_req, bm, owner))
            if owner == origin:
                continue
            anc = parent_of(owner)
            while anc != origin and anc not in present:
                if ents.get(anc) is not True:
                    ents[anc] = is_req
                anc = parent_of(anc)
        empty = type_bitmap(())
        out.extend((_nsec3_hash(a, salt, iterations), r, empty, a) for a, r in ents.items())
        return out

    # -- the trust anchor ---------------------------------------------------------------
    def dnskey_trust_anchor(self, anchors: Sequence[DsRecord]) -> int:
        """The DNSKEY RRset must verify with a key matching a trust-anchor DS: its key tag."""
        f = self.failures
        origin_name = dns.name.from_wire(self.origin, 0)[0]
        anchor_keys = [k for k in self.dnskeys if any(ds.matches(origin_name, k) for ds in anchors)]
        if not anchor_keys:
            f.add(
                "ZONE-VERIFY-DNSKEY-TA",
                "no key of the DNSKEY RRset matches the trust anchor DS "
                + ", ".join(str(ds.key_tag) for ds in anchors),
            )
            return 0
        rs = self.get(0, T_DNSKEY)
        assert rs is not None
        for k in anchor_keys:
            for rd in rs.sigs:
                s = rrsig_fields(rd)
                if (s.key_tag, s.algorithm) != (k.key_tag, int(k.algorithm)):
                    continue
                if not s.inception <= self.now < s.expiration:
                    continue
                data = _signing_data(self.origin, rs, s)
                if verify_signature(k.algorithm, k.public_key_object(), data, s.signature):
                    return k.key_tag
        f.add(
            "ZONE-VERIFY-DNSKEY-TA",
            "the DNSKEY RRset has no valid signature by the trust-anchor key(s) "
            + ", ".join(str(k.key_tag) for k in anchor_keys),
        )
        return 0


_dnskey_cache: Final[dict[bytes, tuple[DnsKey, PublicKey] | InputError]] = {}


def _parsed_dnskey(rd: bytes) -> tuple[DnsKey, PublicKey] | InputError:
    """DNSKEY RDATA -> (key, public key object), or the reason it is unusable; memoised (the
    signer verifies its zone in many batches, each with the same DNSKEY RRset)."""
    hit = _dnskey_cache.get(rd)
    if hit is None:
        try:
            dk = DnsKey.from_wire(rd)
            hit = (dk, dk.public_key_object())
        except InputError as exc:
            hit = exc
        if len(_dnskey_cache) < 64:
            _dnskey_cache[rd] = hit
    return hit


def _types_in(bitmap: bytes) -> set[int]:
    """The types of a type bit map; a malformed one (truncated window) reads as the
    impossible type -1, so it is reported as a wrong bitmap rather than crash."""
    try:
        return set(bitmap_types(bitmap))
    except IndexError:
        return {-1}


def _fold_rrsigs(rrsets: list[RRset]) -> list[RRset]:
    """Attach RRSIGs held as a type-46 RRset to the RRsets they cover (left: uncovered)."""
    loose = [rs for rs in rrsets if rs.rtype == T_RRSIG]
    if not loose:
        return rrsets
    by_type: dict[int, list[bytes]] = {}
    for rs in loose:
        for rd in rs.rdatas:
            by_type.setdefault(rrsig_fields(rd).type_covered, []).append(rd)
    out = []
    for rs in rrsets:
        if rs.rtype == T_RRSIG:
            continue
        extra = by_type.pop(rs.rtype, None)
        out.append(rs._replace(sigs=rs.sigs + tuple(extra)) if extra else rs)
    if by_type:
        owner = rrsets[0].owner
        out.append(RRset(owner, T_RRSIG, 0, tuple(rd for v in by_type.values() for rd in v)))
    return out


# -- cryptographic verification across processes ------------------------------------------
# A task (an RRSIG to verify) is one integer: its node's index << _TASK_SHIFT | the
# signature's position among all signatures of the node's RRsets (in list order).
_TASK_SHIFT: Final = 32
_TASK_MASK: Final = (1 << _TASK_SHIFT) - 1
_STATE: tuple[_Verifier, Sequence[int]] | None = None


def _locate(nodes: Sequence[Sequence[RRset]], task: int) -> tuple[int, RRset, int]:
    """(node index, RRset, signature index in it) of a task."""
    i = task >> _TASK_SHIFT
    si = task & _TASK_MASK
    for rs in nodes[i]:
        n = len(rs.sigs)
        if si < n:
            return i, rs, si
        si -= n
    raise IndexError(f"no signature {task & _TASK_MASK} at node {i}")


def _check_range(lo: int, hi: int) -> list[tuple[int, str]]:
    assert _STATE is not None
    v, tasks = _STATE
    bad: list[tuple[int, str]] = []
    order, nodes = v.order, v.nodes
    checkers = {
        key: [signature_checker(alg, pub) for alg, pub in keys] for key, keys in v.pubkeys.items()
    }
    ttl_at = _ORIGINAL_TTL.unpack_from
    for idx in range(lo, hi):
        i, rs, si = _locate(nodes, tasks[idx])
        # what _signing_data makes of rrsig_fields(rdata), without the named tuple (a full
        # verification does this a million times): the RDATA up to the signature, the
        # signer's name in lower case (a wire name's length octets are below "A")
        rdata = rs.sigs[si]
        end = 18
        while rdata[end]:
            end += 1 + rdata[end]
        end += 1
        head = rdata[:18] + rdata[18:end].lower()
        data = signing_data_wire(head, order[i], rs.rtype, CLASS_IN, ttl_at(rdata, 4)[0], rs.rdatas)
        signature = rdata[end:]
        for check in checkers[(rdata[16] << 8 | rdata[17], rdata[2])]:
            if check(data, signature):
                break
        else:
            tag = rdata[16] << 8 | rdata[17]
            bad.append((idx, f"signature by key {tag} does not verify"))
    return bad


def _check_range_star(r: tuple[int, int]) -> list[tuple[int, str]]:
    return _check_range(r[0], r[1])


def _verify_tasks(
    v: _Verifier, tasks: Sequence[int], jobs: int | None
) -> tuple[list[tuple[int, str]], int]:
    """Verify ``tasks``; return the failures (task, reason) and the number of processes used."""
    global _STATE
    if not tasks:
        return [], 1
    n_jobs = max(1, jobs or os.cpu_count() or 1)
    _STATE = (v, tasks)
    try:
        if (
            n_jobs == 1
            or len(tasks) < PARALLEL_MIN
            or "fork" not in multiprocessing.get_all_start_methods()
        ):
            bad = _check_range(0, len(tasks))
            n_jobs = 1
        else:
            # Forked workers inherit the zone copy-on-write: only index ranges and the (few)
            # failures cross the pipes.
            ctx = multiprocessing.get_context("fork")
            chunk = max(2000, len(tasks) // (n_jobs * 8))
            ranges = [(lo, min(lo + chunk, len(tasks))) for lo in range(0, len(tasks), chunk)]
            bad = []
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
                for part in pool.map(_check_range_star, ranges):
                    bad.extend(part)
    finally:
        _STATE = None
    return [(tasks[i], reason) for i, reason in bad], n_jobs
