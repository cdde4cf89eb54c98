"""RRSIG generation over a classified zone, in parallel processes, deterministic in order.

What is signed (RFC 4035 sect. 2.2): every RRset at the apex and at authoritative names, the
DS and NSEC at a delegation, every NSEC3; never a delegation's NS, glue, or occluded data.
The DNSKEY, CDS and CDNSKEY RRsets are not signed here: their RRSIGs come from the bundle.

Times: inception = now - inception_offset (clock skew); expiration = now + validity - j where
j in [0, jitter] comes from SHA-256(owner || type): deterministic per RRset, spreads the
re-signing, and never exceeds the validity the policy allows.

Parallelism: the RRsets to sign are cut into chunks at node boundaries (an RRset or a node
is never split) in canonical order; ``jobs`` worker processes (``spawn`` context: a PKCS#11
library is initialised in each worker, never inherited across fork) each open the key
themselves (their own session and login) and return RRSIG RDATA per chunk; results are
merged in chunk order, so the output is byte-identical for any ``jobs`` when the key's
signatures are deterministic (RFC 6979 ECDSA, EdDSA, RSA).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from signer.zone.model import (
    KIND_APEX,
    KIND_AUTH,
    KIND_DELEGATION,
    KIND_NSEC3,
    T_CDNSKEY,
    T_CDS,
    T_DNSKEY,
    T_DS,
    T_NSEC,
    RRset,
    Zone,
    label_count,
    rrsig_fields,
)

CHUNK = 2048
_HEAD = struct.Struct("!HBBIIIH")
_RR = struct.Struct("!HHIH")
BUNDLE_TYPES = frozenset({T_DNSKEY, T_CDS, T_CDNSKEY})


class KeyLike(Protocol):
    def sign(self, data: bytes) -> bytes: ...


class KeyOpener(Protocol):
    """Picklable: opens the ZSK in a process (software file or PKCS#11 session + login)."""

    def __call__(self) -> KeyLike: ...


@dataclass(frozen=True)
class SigTimes:
    now: int
    inception: int
    validity: int
    jitter: int

    def expiration(self, owner: bytes, rtype: int) -> int:
        if self.jitter <= 0:
            return self.now + self.validity
        h = hashlib.sha256(owner + rtype.to_bytes(2, "big")).digest()
        return self.now + self.validity - int.from_bytes(h[:8], "big") % (self.jitter + 1)


@dataclass(frozen=True)
class SignParams:
    algorithm: int
    key_tag: int
    signer: bytes  # the apex, canonical wire


def signable(kind: int, rtype: int) -> bool:
    if kind in (KIND_APEX, KIND_AUTH):
        return rtype not in BUNDLE_TYPES
    if kind == KIND_DELEGATION:
        return rtype in (T_DS, T_NSEC)
    return kind == KIND_NSEC3


# a task: (owner, rtype, ttl, rdatas, expiration)
Task = tuple[bytes, int, int, tuple[bytes, ...], int]


def sign_task(key: KeyLike, params: SignParams, inception: int, t: Task) -> bytes:
    """RRSIG RDATA (header, signer name, signature) for one RRset."""
    owner, rtype, ttl, rdatas, exp = t
    header = (
        _HEAD.pack(
            rtype,
            params.algorithm,
            label_count(owner),
            ttl,
            exp & 0xFFFFFFFF,
            inception & 0xFFFFFFFF,
            params.key_tag,
        )
        + params.signer
    )
    parts = [header]
    for rd in rdatas:
        parts.append(owner)
        parts.append(_RR.pack(rtype, 1, ttl, len(rd)))
        parts.append(rd)
    return header + key.sign(b"".join(parts))


# -- worker side ---------------------------------------------------------------------------
_worker_key: KeyLike | None = None
_worker_params: tuple[SignParams, int] | None = None
_worker_error: BaseException | None = None


def _worker_init(opener: KeyOpener, params: SignParams, inception: int) -> None:
    # An exception in a Pool initializer makes the pool respawn workers forever: keep it and
    # raise it from the first task instead, so the parent sees the real error.
    global _worker_key, _worker_params, _worker_error
    try:
        _worker_key = opener()
    except Exception as exc:
        _worker_error = exc
    _worker_params = (params, inception)


def _worker_sign(chunk: list[Task]) -> list[bytes]:
    if _worker_error is not None:
        raise _worker_error
    assert _worker_key is not None and _worker_params is not None
    key = _worker_key
    params, inception = _worker_params
    return [sign_task(key, params, inception, t) for t in chunk]


# -- planning ------------------------------------------------------------------------------
@dataclass
class SignStats:
    rrsets_signed: int = 0
    rrsigs_created: int = 0
    rrsigs_reused: int = 0
    min_expiration: int = 0
    max_expiration: int = 0


Previous = dict[tuple[bytes, int], RRset]


def reusable(
    prev: RRset | None, rs: RRset, params: SignParams, now: int, refresh: int
) -> bytes | None:
    """An RRSIG of the previous signed zone still good for ``rs`` (same data, same key, valid
    beyond ``now + refresh``), or None."""
    if prev is None or prev.ttl != rs.ttl or prev.rdatas != rs.rdatas:
        return None
    for sig in prev.sigs:
        f = rrsig_fields(sig)
        if (
            f.key_tag == params.key_tag
            and f.algorithm == params.algorithm
            and f.type_covered == rs.rtype
            and f.original_ttl == rs.ttl
            and f.signer == params.signer
            and f.inception <= now
            and f.expiration > now + refresh
        ):
            return sig
    return None


def sign_zone(
    zone: Zone,
    opener: KeyOpener,
    params: SignParams,
    times: SigTimes,
    *,
    jobs: int = 1,
    previous: Previous | None = None,
    refresh: int = 0,
    progress: Callable[[int], None] | None = None,
    key: KeyLike | None = None,
) -> SignStats:
    """Sign every signable RRset of ``zone`` in place (fills ``RRset.sigs``).

    ``key``: an already opened key for ``jobs == 1`` (else ``opener`` is called here);
    workers always call ``opener`` themselves.
    """
    stats = SignStats()
    tasks: list[Task] = []
    slots: list[tuple[list[RRset], int]] = []  # where each task's result goes
    chunks: list[list[Task]] = []
    chunk_slots: list[list[tuple[list[RRset], int]]] = []
    exps: list[int] = []
    kinds = zone.kinds
    for name in zone.order:
        kind = kinds[name]
        lst = zone.nodes[name]
        for i, rs in enumerate(lst):
            if not signable(kind, rs.rtype):
                continue
            stats.rrsets_signed += 1
            if previous is not None:
                old = reusable(previous.get((name, rs.rtype)), rs, params, times.now, refresh)
                if old is not None:
                    lst[i] = rs._replace(sigs=(old,))
                    stats.rrsigs_reused += 1
                    exps.append(rrsig_fields(old).expiration)
                    continue
            exp = times.expiration(name, rs.rtype)
            tasks.append((name, rs.rtype, rs.ttl, rs.rdatas, exp))
            slots.append((lst, i))
        if len(tasks) >= CHUNK:
            chunks.append(tasks)
            chunk_slots.append(slots)
            tasks = []
            slots = []
    if tasks:
        chunks.append(tasks)
        chunk_slots.append(slots)
    for result, sl in zip(
        _run(chunks, opener, params, times.inception, jobs, key), chunk_slots, strict=True
    ):
        for sig, (lst, i) in zip(result, sl, strict=True):
            lst[i] = lst[i]._replace(sigs=(sig,))
        stats.rrsigs_created += len(result)
        if progress is not None:
            progress(len(result))
    for ch in chunks:
        exps.extend(t[4] for t in ch)
    if exps:
        stats.min_expiration = min(exps)
        stats.max_expiration = max(exps)
    return stats


def _run(
    chunks: list[list[Task]],
    opener: KeyOpener,
    params: SignParams,
    inception: int,
    jobs: int,
    key: KeyLike | None,
) -> Iterator[list[bytes]]:
    if not chunks:
        return
    if jobs <= 1 or len(chunks) == 1:
        key = key or opener()
        for ch in chunks:
            yield [sign_task(key, params, inception, t) for t in ch]
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(
        processes=min(jobs, len(chunks)),
        initializer=_worker_init,
        initargs=(opener, params, inception),
    ) as pool:
        yield from pool.imap(_worker_sign, chunks, chunksize=1)


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1
