"""RRSIG generation for a range of a classified zone (or shard), deterministic in order.

What is signed (RFC 4035 sect. 2.2): every RRset at the apex and at authoritative names, the
DS and NSEC at a delegation, every NSEC3; never a delegation's NS, glue, or occluded data.
The DNSKEY, CDS and CDNSKEY RRsets are not signed here: their RRSIGs come from the bundle.

Times: inception = now - inception_offset (clock skew); expiration = now + validity - j where
j in [0, jitter] comes from SHA-256(owner || type): deterministic per RRset, spreads the
re-signing, and never exceeds the validity the policy allows.

:func:`sign_range` signs the signable RRsets of ``zone.order[start:end]`` (reusing
``--previous`` signatures that stay valid beyond the refresh interval), puts each RRSIG into
the zone's RRset, and renders the signed zone text of the range
(:func:`signer.zone.output.names_text`). The processes and the split of the zone into shards
are :mod:`signer.zone.sharded`'s; signatures are deterministic for RFC 6979 ECDSA, EdDSA and
RSA, so the output is byte-identical for any number of processes.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from signer.zone import _accel
from signer.zone.model import (
    KIND_APEX,
    KIND_AUTH,
    KIND_DELEGATION,
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

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

_HEAD: Final = struct.Struct("!HBBIIIH")
_RRSIG_TIMES: Final = struct.Struct("!II")
_RR_TAIL: Final = struct.Struct("!IH")  # ttl, rdlength (after owner, type, class)
BUNDLE_TYPES: Final = frozenset({T_DNSKEY, T_CDS, T_CDNSKEY})


class KeyLike(Protocol):
    def sign(self, data: bytes) -> bytes: ...


class KeyOpener(Protocol):
    """Opens the ZSK in the calling process (software file or PKCS#11 session + login)."""

    def __call__(self) -> KeyLike: ...


@_accel.mypyc_attr(native_class=False)  # picklable: see _accel
@dataclass(frozen=True)
class SigTimes:
    now: int
    inception: int
    validity: int
    jitter: int

    def expiration(self, owner: bytes, rtype: int) -> int:
        return _jittered(self.now + self.validity, self.jitter, owner, rtype)


def _jittered(end: int, jitter: int, owner: bytes, rtype: int) -> int:
    """``end`` less j in [0, jitter] from SHA-256(owner || type) (:meth:`SigTimes.expiration`;
    sign_range calls it directly: a native call once compiled, no attribute lookups)."""
    if jitter <= 0:
        return end
    h = hashlib.sha256(owner + rtype.to_bytes(2, "big")).digest()
    return end - int.from_bytes(h[:8], "big") % (jitter + 1)


@_accel.mypyc_attr(native_class=False)  # picklable: see _accel
@dataclass(frozen=True)
class SignParams:
    algorithm: int
    key_tag: int
    signer: bytes  # the apex, canonical wire


def _sign_one(
    sign: Callable[[bytes], bytes],
    params: SignParams,
    inception: int,
    owner: bytes,
    nlabels: int,
    rtype: int,
    ttl: int,
    rdatas: tuple[bytes, ...],
    exp: int,
) -> bytes:
    """RRSIG RDATA for one RRset: header, signer name, signature (RFC 4034 sect. 3.1.8.1).

    ``nlabels``: the Labels field, :func:`signer.zone.model.label_count` of ``owner``."""
    header = (
        _HEAD.pack(
            rtype,
            params.algorithm,
            nlabels,
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


class RangeResult(NamedTuple):
    sigs: list[bytes]  # one RRSIG per signable RRset, in walk order
    text: bytes  # the signed zone text of the range
    created: int
    reused: int
    min_exp: int
    max_exp: int


@_accel.mypyc_attr(native_class=False)  # picklable: see _accel
@dataclass(frozen=True)
class RangeContext:
    zone: Zone
    params: SignParams
    times: SigTimes
    previous: Previous | None
    refresh: int
    sign: Callable[[bytes], bytes]  # see fast_signer
    lengths: MutableSequence[int] | None = None  # gets each name's text length (output index)


# RR types signed at each kind of name (None: every type but the bundle's)
_SIGNED_AT: Final[dict[int, frozenset[int] | None]] = {
    KIND_APEX: None,
    KIND_AUTH: None,
    KIND_DELEGATION: frozenset({T_DS, T_NSEC}),
}


def sign_range(ctx: RangeContext, start: int, end: int) -> RangeResult:
    """Sign ``zone.order[start:end]`` in place and render its signed text."""
    sign = ctx.sign
    zone = ctx.zone
    nodes = zone.nodes
    kinds = zone.kinds
    params = ctx.params
    times = ctx.times
    valid_until = times.now + times.validity  # before the jitter
    jitter = times.jitter
    inception = times.inception
    previous = ctx.previous
    now = times.now
    refresh = ctx.refresh
    sigs: list[bytes] = []
    add = sigs.append
    created = reused = 0
    lo = 0xFFFFFFFFFFFF
    hi = 0
    names = zone.order[start:end]
    bundle = BUNDLE_TYPES
    signed_at = _SIGNED_AT
    # looked up in the module, not bound when compiled: tests replace it to inject faults
    sign_one: Callable[..., bytes] = globals()["_sign_one"]
    make = tuple.__new__  # RRset(...) without its Python-level __new__: the same tuple
    for name in names:
        kind = kinds[name]
        if kind == KIND_OCCLUDED:
            continue
        only = signed_at.get(kind)  # KIND_NSEC3: None (its one NSEC3 RRset)
        lst = nodes[name]
        nlabels = -1
        for i, rs in enumerate(lst):
            owner, rtype, ttl, rdatas, _ = rs
            if only is None:
                if rtype in bundle:  # signed by the KSK: RRSIGs from the bundle
                    continue
            elif rtype not in only:
                continue
            sig = None
            if previous is not None:
                sig = reusable(previous.get((name, rtype)), rs, params, now, refresh)
            if sig is None:
                if nlabels < 0:
                    nlabels = label_count(name)
                exp = _jittered(valid_until, jitter, name, rtype)
                sig = sign_one(sign, params, inception, name, nlabels, rtype, ttl, rdatas, exp)
                created += 1
            else:
                exp = _RRSIG_TIMES.unpack_from(sig, 8)[0]
                reused += 1
            if exp < lo:
                lo = exp
            if exp > hi:
                hi = exp
            add(sig)
            lst[i] = make(RRset, (owner, rtype, ttl, rdatas, (sig,)))
    from signer.zone.output import names_text

    text = names_text(zone, names, ctx.lengths)
    return RangeResult(sigs, text, created, reused, lo if sigs else 0, hi)


def open_key_retrying(opener: KeyOpener, attempts: int = 6) -> KeyLike:
    """Open the key in this worker; retry what a file-backed token may report transiently.

    SoftHSM rewrites a token's files when a session logs in; another process initialising
    the library at that moment can miss the token or fail to open a session. Only "token
    not found" and generic session failures are retried -- never a refused PIN (a retry
    could lock the token) nor a missing key or mechanism.
    """
    from signer.errors import TokenError, TokenNotFound

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


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1
