"""RRSIG generation over a classified zone, in parallel processes, deterministic in order.

What is signed (RFC 4035 sect. 2.2): every RRset at the apex and at authoritative names, the
DS and NSEC at a delegation, every NSEC3; never a delegation's NS, glue, or occluded data.
The DNSKEY, CDS and CDNSKEY RRsets are not signed here: their RRSIGs come from the bundle.

Times: inception = now - inception_offset (clock skew); expiration = now + validity - j where
j in [0, jitter] comes from SHA-256(owner || type): deterministic per RRset, spreads the
re-signing, and never exceeds the validity the policy allows.

Parallelism: ``zone.order`` is cut into *ranges* of whole nodes at delegation-safe boundaries
(a range never starts on an occluded name, so a delegation and its glue stay together; an
RRset or a node is never split). Workers are ``fork``-ed **after** the zone is complete, so
they read the zone (and the ``--previous`` signatures) through copy-on-write memory: a task is
just ``(start, end)``, nothing of the zone is pickled. Each worker opens the key itself
(:class:`KeyOpener`: key file, or its own PKCS#11 session and login -- the PKCS#11 module is
re-initialised in a forked child, see :mod:`signer.keys.pkcs11`), computes expirations,
decides reuse, signs, and renders the **signed zone text** of its range
(:func:`signer.zone.output.names_text`). It returns compact bytes: the RRSIG RDATA in walk
order and the text. The parent puts the RRSIGs into the zone (for self-verification) and
streams the text, in range order, to the output. The same range function runs in-process for
``jobs == 1``, so the output is byte-identical for any ``jobs`` when the key's signatures are
deterministic (RFC 6979 ECDSA, EdDSA, RSA).
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Lock
from typing import NamedTuple, Protocol

from signer.zone.model import (
    KIND_APEX,
    KIND_AUTH,
    KIND_DELEGATION,
    KIND_NSEC3,
    KIND_OCCLUDED,
    T_CDNSKEY,
    T_CDS,
    T_DNSKEY,
    T_DS,
    T_NSEC,
    RRset,
    Zone,
    label_count,
)

RANGE_NAMES = 4096  # at most this many names per task
_HEAD = struct.Struct("!HBBIIIH")
_RRSIG_TIMES = struct.Struct("!II")
_RR_TAIL = struct.Struct("!IH")  # ttl, rdlength (after owner, type, class)
BUNDLE_TYPES = frozenset({T_DNSKEY, T_CDS, T_CDNSKEY})


class KeyLike(Protocol):
    def sign(self, data: bytes) -> bytes: ...


class KeyOpener(Protocol):
    """Opens the ZSK in the calling process (software file or PKCS#11 session + login)."""

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
    return _sign_one(key.sign, params, inception, *t)


def _sign_one(
    sign: Callable[[bytes], bytes],
    params: SignParams,
    inception: int,
    owner: bytes,
    rtype: int,
    ttl: int,
    rdatas: tuple[bytes, ...],
    exp: int,
) -> bytes:
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
    pre = owner + rtype.to_bytes(2, "big") + b"\x00\x01"
    if len(rdatas) == 1:
        rd = rdatas[0]
        data = header + pre + _RR_TAIL.pack(ttl, len(rd)) + rd
    else:
        parts = [header]
        for rd in rdatas:
            parts.append(pre)
            parts.append(_RR_TAIL.pack(ttl, len(rd)))
            parts.append(rd)
        data = b"".join(parts)
    return header + sign(data)


def fast_signer(key: KeyLike) -> Callable[[bytes], bytes]:
    """``key.sign``, or for an in-memory ECDSA key that does not re-verify (a development
    key file) the same deterministic RFC 6979 signature without the per-call dispatch."""
    from signer.keys.soft import SoftKey

    if not isinstance(key, SoftKey) or key.verify_signatures:
        return key.sign
    from cryptography.hazmat.primitives.asymmetric import ec

    from signer.algorithms import info

    ai = info(key.dnskey.algorithm)
    pk = key.private_key
    if ai.family != "ecdsa" or not isinstance(pk, ec.EllipticCurvePrivateKey):
        return key.sign
    alg = ec.ECDSA(ai.hash(), deterministic_signing=True)
    size = ai.default_bits // 8
    raw_sign = pk.sign

    def sign(data: bytes) -> bytes:
        return _der_to_raw(raw_sign(data, alg), size)

    return sign


def _der_to_raw(der: bytes, size: int) -> bytes:
    # SEQUENCE { INTEGER r, INTEGER s }; P-256/P-384 signatures have short-form lengths
    i = 2 if der[1] < 0x80 else 3
    rl = der[i + 1]
    r = der[i + 2 : i + 2 + rl].lstrip(b"\x00")
    i += 2 + rl
    sl = der[i + 1]
    s = der[i + 2 : i + 2 + sl].lstrip(b"\x00")
    pad = b"\x00" * size
    return (pad + r)[-size:] + (pad + s)[-size:]


# -- planning ------------------------------------------------------------------------------
@dataclass
class SignStats:
    rrsets_signed: int = 0
    rrsigs_created: int = 0
    rrsigs_reused: int = 0
    min_expiration: int = 0
    max_expiration: int = 0
    processes: int = 1  # worker processes that signed (1: in the calling process)


# (owner, type) -> (ttl, rdatas, sigs) of the previous signed zone
Previous = dict[tuple[bytes, int], RRset]


def reusable(
    prev: RRset | None, rs: RRset, params: SignParams, now: int, refresh: int
) -> bytes | None:
    """An RRSIG of the previous signed zone still good for ``rs`` (same data, same key, valid
    beyond ``now + refresh``), or None."""
    if prev is None or prev.ttl != rs.ttl or prev.rdatas != rs.rdatas:
        return None
    signer = params.signer
    for sig in prev.sigs:
        tc, alg, _lab, ottl, exp, inc, tag = _HEAD.unpack_from(sig, 0)
        if (
            tag == params.key_tag
            and alg == params.algorithm
            and tc == rs.rtype
            and ottl == rs.ttl
            and sig.startswith(signer, 18)
            and inc <= now
            and exp > now + refresh
        ):
            return sig
    return None


def plan_ranges(zone: Zone, jobs: int) -> list[tuple[int, int]]:
    """Cut ``zone.order`` into ``(start, end)`` ranges at delegation-safe boundaries."""
    n = len(zone.order)
    if n == 0:
        return []
    target = max(1, min(RANGE_NAMES, -(-n // max(1, jobs * 8))))
    kinds = zone.kinds
    order = zone.order
    out = []
    start = 0
    while start < n:
        end = min(n, start + target)
        while end < n and kinds[order[end]] == KIND_OCCLUDED:
            end += 1
        out.append((start, end))
        start = end
    return out


class RangeResult(NamedTuple):
    sigs: list[bytes]  # one RRSIG per signable RRset, in walk order
    text: bytes  # the signed zone text of the range ("" when not rendering)
    created: int
    reused: int
    min_exp: int
    max_exp: int


@dataclass
class _Context:
    zone: Zone
    params: SignParams
    times: SigTimes
    previous: Previous | None
    refresh: int
    render: bool
    opener: KeyOpener
    sign: Callable[[bytes], bytes] | None = None
    error: BaseException | None = None


_ctx: _Context | None = None  # set in the parent before forking; inherited by the workers


def _sign_range(ctx: _Context, start: int, end: int) -> RangeResult:
    if ctx.error is not None:
        raise ctx.error
    if ctx.sign is None:
        ctx.sign = fast_signer(ctx.opener())
    sign = ctx.sign
    zone = ctx.zone
    nodes = zone.nodes
    kinds = zone.kinds
    params = ctx.params
    times = ctx.times
    inception = times.inception
    previous = ctx.previous
    now = times.now
    refresh = ctx.refresh
    sigs: list[bytes] = []
    created = reused = 0
    lo = 0xFFFFFFFFFFFF
    hi = 0
    names = zone.order[start:end]
    for name in names:
        kind = kinds[name]
        lst = nodes[name]
        for i, rs in enumerate(lst):
            if not signable(kind, rs.rtype):
                continue
            sig = None
            if previous is not None:
                sig = reusable(previous.get((name, rs.rtype)), rs, params, now, refresh)
            if sig is None:
                exp = times.expiration(name, rs.rtype)
                sig = _sign_one(sign, params, inception, name, rs.rtype, rs.ttl, rs.rdatas, exp)
                created += 1
            else:
                exp = _RRSIG_TIMES.unpack_from(sig, 8)[0]
                reused += 1
            lo = min(lo, exp)
            hi = max(hi, exp)
            sigs.append(sig)
            if ctx.render:
                lst[i] = rs._replace(sigs=(sig,))
    text = b""
    if ctx.render:
        from signer.zone.output import names_text

        text = names_text(zone, names)
    return RangeResult(sigs, text, created, reused, lo if sigs else 0, hi)


def _open_key(opener: KeyOpener, attempts: int = 6) -> KeyLike:
    """Open the key in this worker; retry what a file-backed token may report transiently.

    SoftHSM rewrites a token's files when a session logs in; another process initialising
    the library at that moment can miss the token or fail to open a session. Only "token
    not found" and generic session failures are retried -- never a refused PIN (a retry
    could lock the token) nor a missing key or mechanism.
    """
    from signer.errors import TokenError
    from signer.keys.pkcs11 import TokenNotFound

    delay = 0.05
    for attempt in range(attempts):
        try:
            return opener()
        except TokenError as exc:
            transient = type(exc) is TokenNotFound or type(exc) is TokenError
            if not transient or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _worker_init(lock: Lock) -> None:
    # An exception in a Pool initializer makes the pool respawn workers forever: keep it and
    # raise it from the first task instead, so the parent sees the real error.
    assert _ctx is not None
    try:
        # One worker at a time opens its session and logs in (see _open_key).
        with lock:
            _ctx.sign = fast_signer(_open_key(_ctx.opener))
    except Exception as exc:
        _ctx.error = exc


def _worker_range(rng: tuple[int, int]) -> RangeResult:
    assert _ctx is not None
    return _sign_range(_ctx, *rng)


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
    text_sink: Callable[[bytes], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> SignStats:
    """Sign every signable RRset of ``zone`` in place (fills ``RRset.sigs``).

    ``key``: an already opened key for ``jobs == 1`` (else ``opener`` is called here);
    workers always call ``opener`` themselves. ``text_sink``: called with the signed zone
    text, range after range in canonical order (the whole zone: see
    :func:`signer.zone.output.names_text`); the workers render it. ``meanwhile``: called
    once in this process while the workers sign (in a thread, while this thread streams
    finished ranges' text to ``text_sink``; the zone's RRsets get their signatures only
    after it returned; with ``jobs == 1``, before signing), e.g. to self-verify what does
    not depend on signatures.
    """
    global _ctx
    stats = SignStats()
    ranges = plan_ranges(zone, jobs)
    ctx = _Context(
        zone, params, times, previous, refresh, text_sink is not None, opener,
        sign=fast_signer(key) if key is not None and jobs <= 1 else None,
    )  # fmt: skip
    nodes = zone.nodes
    kinds = zone.kinds
    order = zone.order
    lo = 0xFFFFFFFFFFFF
    hi = 0
    if jobs > 1 and len(ranges) > 1:
        stats.processes = min(jobs, len(ranges))
    for (start, end), res in zip(
        ranges, _run(ctx, ranges, jobs, meanwhile, text_sink), strict=True
    ):
        it = iter(res.sigs)
        if not ctx.render or jobs > 1:
            # the parent's zone gets the signatures (a worker filled only its own copy)
            for name in order[start:end]:
                kind = kinds[name]
                lst = nodes[name]
                for i, rs in enumerate(lst):
                    if signable(kind, rs.rtype):
                        lst[i] = rs._replace(sigs=(next(it),))
        if text_sink is not None:
            text_sink(res.text)
        n = len(res.sigs)
        stats.rrsets_signed += n
        stats.rrsigs_created += res.created
        stats.rrsigs_reused += res.reused
        if n:
            lo = min(lo, res.min_exp)
            hi = max(hi, res.max_exp)
        if progress is not None:
            progress(n)
    if stats.rrsets_signed:
        stats.min_expiration = lo
        stats.max_expiration = hi
    return stats


def _run(
    ctx: _Context,
    ranges: list[tuple[int, int]],
    jobs: int,
    meanwhile: Callable[[], None] | None = None,
    text_sink: Callable[[bytes], None] | None = None,
) -> Iterator[RangeResult]:
    global _ctx
    if not ranges or jobs <= 1 or len(ranges) == 1:
        if meanwhile is not None:
            meanwhile()
        for start, end in ranges:
            yield _sign_range(ctx, start, end)
        return
    _ctx = ctx
    # Move the zone's objects out of the collector's reach before forking: a collection in a
    # worker would otherwise traverse (and so copy) every inherited page of the zone.
    gc.freeze()
    try:
        mp = multiprocessing.get_context("fork")
        lock = mp.Lock()
        with mp.Pool(
            processes=min(jobs, len(ranges)), initializer=_worker_init, initargs=(lock,)
        ) as pool:
            results = pool.imap(_worker_range, ranges, chunksize=1)
            if meanwhile is not None:
                yield from _while_running(meanwhile, results, text_sink)
            yield from results
    finally:
        _ctx = None
        gc.unfreeze()


def _while_running(
    meanwhile: Callable[[], None],
    results: Iterator[RangeResult],
    text_sink: Callable[[bytes], None] | None,
) -> Iterator[RangeResult]:
    """Run ``meanwhile`` in a thread while this thread takes the workers' results as they
    come and passes their text to ``text_sink`` at once (in order), so finished ranges'
    text does not pile up in memory until ``meanwhile`` returns. The zone is not touched
    here: the results (text emptied) are yielded, for their signatures, only after
    ``meanwhile`` returned; an exception of ``meanwhile`` is raised then."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            meanwhile()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    done: list[RangeResult] = []
    # The pool's result thread must get the GIL often enough to drain the workers' pipes
    # while ``meanwhile`` runs Python code, or they stall.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    th = threading.Thread(target=run, name="zonesigner-meanwhile", daemon=True)
    th.start()
    try:
        while th.is_alive():
            try:
                res = next(results)
            except StopIteration:
                break
            if text_sink is not None:
                text_sink(res.text)
                res = res._replace(text=b"")
            done.append(res)
    finally:
        th.join()
        sys.setswitchinterval(interval)
    if failure:
        raise failure[0]
    yield from done


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1
