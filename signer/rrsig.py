"""Canonical RRset form and RRSIG creation/verification (RFC 4034 sect. 3.1.8.1, 6; RFC 6840 5.1).

Two entry points share the same byte layout:

* :func:`signing_data_wire` works on wire-format pieces (the zone signer's hot path);
* :func:`sign_rrset` / :func:`verify_rrset` work on dnspython RRsets (bundles, tests, tools).

Canonical RDATA comes from dnspython's ``to_digestable``, which lowercases embedded names
exactly for the types RFC 4034 sect. 6.2 lists as amended by RFC 6840 sect. 5.1 (not NSEC);
:func:`canonical_rdata` adds the listed obsolete types dnspython only knows as generic RDATA
(MD, MF, MB, MG, MR, MINFO, NXT, A6).
"""

from __future__ import annotations

import calendar
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.rrset

from signer.algorithms import Algorithm
from signer.crypto import verify_signature
from signer.dnskey import DnsKey
from signer.errors import InputError, VerificationError


class Signer(Protocol):
    """What RRSIG creation needs from a key: its DNSKEY and a signing function."""

    @property
    def dnskey(self) -> DnsKey: ...

    def sign(self, data: bytes) -> bytes: ...


def rrsig_labels(owner: dns.name.Name) -> int:
    """RRSIG Labels field: owner labels without the root label and without a leading '*'."""
    n = len(owner.labels) - (1 if owner.is_absolute() else 0)
    if owner.is_wild():
        n -= 1
    return n


def to_time(value: str | int) -> int:
    """RRSIG time from 'YYYYMMDDHHMMSS' (UTC) or seconds since the epoch."""
    if isinstance(value, int):
        return value
    if len(value) == 14 and value.isdigit():
        try:
            return calendar.timegm(time.strptime(value, "%Y%m%d%H%M%S"))
        except ValueError:
            raise InputError(f"bad RRSIG time {value!r} (not a valid UTC date and time)") from None
    if value.isascii() and value.isdigit():
        return int(value)
    raise InputError(f"bad RRSIG time {value!r} (want YYYYMMDDHHMMSS)")


def time_text(value: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(value))


@dataclass(frozen=True)
class RrsigHeader:
    """RRSIG RDATA fields except the signature."""

    type_covered: int
    algorithm: Algorithm
    labels: int
    original_ttl: int
    expiration: int
    inception: int
    key_tag: int
    signer: dns.name.Name

    def to_wire(self) -> bytes:
        return struct.pack(
            "!HBBIIIH",
            self.type_covered,
            int(self.algorithm),
            self.labels,
            self.original_ttl,
            self.expiration & 0xFFFFFFFF,
            self.inception & 0xFFFFFFFF,
            self.key_tag,
        ) + (self.signer.canonicalize().to_wire() or b"")

    def rdata(
        self, signature: bytes, rdclass: int = dns.rdataclass.IN
    ) -> dns.rdtypes.ANY.RRSIG.RRSIG:
        return dns.rdtypes.ANY.RRSIG.RRSIG(  # type: ignore[no-untyped-call]
            dns.rdataclass.RdataClass.make(rdclass),
            dns.rdatatype.RRSIG,
            dns.rdatatype.RdataType.make(self.type_covered),
            int(self.algorithm),
            self.labels,
            self.original_ttl,
            self.expiration & 0xFFFFFFFF,
            self.inception & 0xFFFFFFFF,
            self.key_tag,
            self.signer,
            signature,
        )

    @classmethod
    def of(cls, rd: dns.rdata.Rdata) -> RrsigHeader:
        return cls(
            int(rd.type_covered),  # type: ignore[attr-defined]
            Algorithm.parse(int(rd.algorithm)),  # type: ignore[attr-defined]
            rd.labels,  # type: ignore[attr-defined]
            rd.original_ttl,  # type: ignore[attr-defined]
            rd.expiration,  # type: ignore[attr-defined]
            rd.inception,  # type: ignore[attr-defined]
            rd.key_tag,  # type: ignore[attr-defined]
            rd.signer,  # type: ignore[attr-defined]
        )


def signing_data_wire(
    header_wire: bytes,
    owner_wire: bytes,
    rtype: int,
    rclass: int,
    original_ttl: int,
    rdatas: Iterable[bytes],
) -> bytes:
    """RFC 4034 sect. 3.1.8.1: RRSIG_RDATA | RR(1) | RR(2)... with RRs in canonical order.

    ``owner_wire`` must already be lowercased (and be the wildcard name for wildcards);
    ``rdatas`` must be canonical RDATA; duplicates are removed and the rest sorted here.
    """
    prefix = owner_wire + struct.pack("!HHI", rtype, rclass, original_ttl)
    parts = [header_wire]
    for rd in sorted(set(rdatas)):
        parts.append(prefix)
        parts.append(struct.pack("!H", len(rd)))
        parts.append(rd)
    return b"".join(parts)


# RFC 4034 sect. 6.2 types whose embedded names dnspython does not know: obsolete RFC 1035
# types (MD, MF, MB, MG, MR, MINFO), NXT and A6, which dnspython only reads as generic
# ``\# len hex`` RDATA. Their names are lowercased here (type -> number of leading names).
_OBSOLETE_NAMES = {3: 1, 4: 1, 7: 1, 8: 1, 9: 1, 14: 2, 30: 1}
_A6 = 38
_UPPER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def _lower_wire_names(data: bytes, offset: int, count: int) -> bytes:
    out = bytearray(data)
    for _ in range(count):
        while True:
            if offset >= len(out):
                raise InputError("truncated domain name in RDATA")
            n = out[offset]
            if n == 0:
                offset += 1
                break
            if n > 63 or offset + 1 + n > len(out):
                raise InputError("bad or compressed domain name in RDATA")
            out[offset + 1 : offset + 1 + n] = out[offset + 1 : offset + 1 + n].translate(_UPPER)
            offset += 1 + n
    return bytes(out)


def canonical_rdata(rd: dns.rdata.Rdata, origin: dns.name.Name | None = None) -> bytes:
    """Canonical RDATA (RFC 4034 sect. 6.2 as amended by RFC 6840 sect. 5.1)."""
    data = rd.to_digestable(origin)
    if isinstance(rd, dns.rdata.GenericRdata):
        rtype = int(rd.rdtype)
        if rtype in _OBSOLETE_NAMES:
            return _lower_wire_names(data, 0, _OBSOLETE_NAMES[rtype])
        if rtype == _A6 and data:
            prefix = data[0]
            if prefix > 128:
                raise InputError(f"A6 prefix length {prefix} > 128")
            if prefix:
                return _lower_wire_names(data, 1 + (128 - prefix + 7) // 8, 1)
    return data


def canonical_rdatas(rrset: dns.rrset.RRset, origin: dns.name.Name | None = None) -> list[bytes]:
    return [canonical_rdata(rd, origin) for rd in rrset]


def rrset_signing_data(
    rrset: dns.rrset.RRset, header: RrsigHeader, origin: dns.name.Name | None = None
) -> bytes:
    owner = (
        rrset.name if rrset.name.is_absolute() else rrset.name.derelativize(origin or dns.name.root)
    )
    if header.labels < rrsig_labels(owner):
        # RFC 4034 sect. 3.1.8.1: a wildcard-expanded answer is signed as '*.' + rightmost labels
        keep = owner.labels[-(header.labels + 1) :]
        owner = dns.name.Name((b"*", *keep))
    return signing_data_wire(
        header.to_wire(),
        owner.canonicalize().to_wire() or b"",
        int(rrset.rdtype),
        int(rrset.rdclass),
        header.original_ttl,
        canonical_rdatas(rrset, origin),
    )


def sign_rrset(
    rrset: dns.rrset.RRset,
    key: Signer,
    signer_name: dns.name.Name,
    inception: int,
    expiration: int,
    *,
    original_ttl: int | None = None,
) -> dns.rdtypes.ANY.RRSIG.RRSIG:
    """Create an RRSIG over ``rrset`` with ``key`` (any backend)."""
    if expiration <= inception:
        raise InputError(
            f"RRSIG expiration {time_text(expiration)} is not after inception {time_text(inception)}"
        )
    if rrset.name.is_absolute() and not rrset.name.is_subdomain(signer_name):
        raise InputError(f"signer {signer_name} is not the zone of {rrset.name}")
    dk = key.dnskey
    header = RrsigHeader(
        int(rrset.rdtype),
        dk.algorithm,
        rrsig_labels(rrset.name),
        rrset.ttl if original_ttl is None else original_ttl,
        expiration,
        inception,
        dk.key_tag,
        signer_name,
    )
    return header.rdata(key.sign(rrset_signing_data(rrset, header)), rrset.rdclass)


def verify_rrset(
    rrset: dns.rrset.RRset,
    rrsig: dns.rdata.Rdata,
    keys: Sequence[DnsKey],
    *,
    now: int | None = None,
) -> DnsKey:
    """Verify ``rrsig`` over ``rrset`` with one of ``keys``; return the key that verified.

    Applies the RFC 4035 sect. 5.3.1 checks a validator makes before the cryptography:
    same type and class, Labels not more than the owner's label count, signer name equal to
    or an ancestor of the owner, a DNSKEY with the ZONE flag and protocol 3 matching the key
    tag and algorithm; a REVOKEd key (RFC 5011 sect. 2.1) only for the DNSKEY RRset.
    Raises :class:`VerificationError` naming the RRset and the reason.
    """
    header = RrsigHeader.of(rrsig)
    what = f"RRSIG {dns.rdatatype.to_text(dns.rdatatype.RdataType.make(header.type_covered))} {rrset.name} key {header.key_tag}"
    if header.type_covered != int(rrset.rdtype):
        raise VerificationError(f"{what}: covers another type than {rrset.rdtype.name}")
    if rrsig.rdclass != rrset.rdclass:
        raise VerificationError(f"{what}: class differs from the RRset's")
    owner = rrset.name if rrset.name.is_absolute() else rrset.name.derelativize(dns.name.root)
    owner_labels = rrsig_labels(owner)
    if header.labels > owner_labels:
        raise VerificationError(
            f"{what}: RRSIG labels {header.labels} exceeds the owner's {owner_labels} labels"
        )
    if owner.is_wild() and header.labels != owner_labels:
        raise VerificationError(
            f"{what}: RRSIG labels {header.labels} is wrong for a wildcard owner "
            f"({owner_labels} labels)"
        )
    if not owner.is_subdomain(header.signer):
        raise VerificationError(f"{what}: signer {header.signer} is not the owner's zone")
    if now is not None:
        if _serial_lt(now, header.inception):
            raise VerificationError(
                f"{what}: not yet valid (inception {time_text(header.inception)})"
            )
        if _serial_lt(header.expiration, now):
            raise VerificationError(f"{what}: expired {time_text(header.expiration)}")
    data = rrset_signing_data(rrset, header)
    matching = [k for k in keys if k.key_tag == header.key_tag and k.algorithm == header.algorithm]
    if not matching:
        raise VerificationError(f"{what}: no DNSKEY with that tag and algorithm")
    candidates = [
        k
        for k in matching
        if k.is_zone_key
        and k.protocol == 3
        and (not k.is_revoked or header.type_covered == dns.rdatatype.DNSKEY)
    ]
    if not candidates:
        k = matching[0]
        reason = (
            "has no ZONE flag or protocol 3"
            if not k.is_zone_key or k.protocol != 3
            else "is revoked and may only sign the DNSKEY RRset"
        )
        raise VerificationError(f"{what}: DNSKEY {k.key_tag} {reason}")
    for k in candidates:
        if verify_signature(k.algorithm, k.public_key_object(), data, rrsig.signature):  # type: ignore[attr-defined]
            return k
    raise VerificationError(f"{what}: signature does not verify")


def _serial_lt(a: int, b: int) -> bool:
    """RFC 1982 serial number comparison on 32 bits (a < b)."""
    a &= 0xFFFFFFFF
    b &= 0xFFFFFFFF
    return a != b and ((a < b and b - a < 2**31) or (a > b and a - b > 2**31))
