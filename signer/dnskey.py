"""DNSKEY values, key tags (RFC 4034 App. B), the REVOKE flag (RFC 5011) and DS/CDS digests."""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
from dataclasses import dataclass, replace

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY

from signer.algorithms import Algorithm, info
from signer.crypto import PublicKey, key_bits, public_key_from_dnskey_bytes
from signer.errors import CheckFailed, InputError

FLAG_ZONE = 0x0100
FLAG_REVOKE = 0x0080
FLAG_SEP = 0x0001

DIGEST_SHA256 = 2
DIGEST_SHA384 = 4
_DIGESTS = {DIGEST_SHA256: "sha256", DIGEST_SHA384: "sha384"}


class DsNotFromSepKey(CheckFailed):
    requirement = "KEY-DS-SEP"


def key_tag_of_rdata(rdata: bytes) -> int:
    """RFC 4034 Appendix B key tag over DNSKEY RDATA wire form (algorithm != 1)."""
    ac = (sum(rdata[0::2]) << 8) + sum(rdata[1::2])  # even octets high, odd octets low
    ac += (ac >> 16) & 0xFFFF
    return ac & 0xFFFF


@dataclass(frozen=True)
class DnsKey:
    """An immutable DNSKEY RDATA."""

    flags: int
    algorithm: Algorithm
    public_key: bytes
    protocol: int = 3

    def __post_init__(self) -> None:
        info(self.algorithm)  # raises for unsupported algorithms

    # -- wire and text -------------------------------------------------------------------
    def to_wire(self) -> bytes:
        return struct.pack("!HBB", self.flags, self.protocol, int(self.algorithm)) + self.public_key

    @classmethod
    def from_wire(cls, data: bytes) -> DnsKey:
        if len(data) < 5:
            raise InputError("DNSKEY RDATA is truncated")
        flags, proto, alg = struct.unpack("!HBB", data[:4])
        return cls(flags, Algorithm.parse(alg), data[4:], proto)

    def to_rdata(self) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
        rd = dns.rdata.from_wire(
            dns.rdataclass.IN, dns.rdatatype.DNSKEY, self.to_wire(), 0, len(self.to_wire())
        )
        assert isinstance(rd, dns.rdtypes.ANY.DNSKEY.DNSKEY)
        return rd

    @classmethod
    def from_rdata(cls, rd: dns.rdata.Rdata) -> DnsKey:
        return cls.from_wire(rd.to_wire() or b"")

    @classmethod
    def from_text(cls, text: str) -> DnsKey:
        """Parse DNSKEY RDATA text ("257 3 13 base64...")."""
        try:
            rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, text)
        except Exception as exc:
            raise InputError(f"bad DNSKEY RDATA: {exc}") from None
        return cls.from_rdata(rd)

    def rdata_text(self) -> str:
        b64 = base64.b64encode(self.public_key).decode()
        return f"{self.flags} {self.protocol} {int(self.algorithm)} {b64}"

    def to_text(self, owner: dns.name.Name | str, ttl: int) -> str:
        o = owner if isinstance(owner, dns.name.Name) else dns.name.from_text(owner)
        return f"{o.to_text()} {ttl} IN DNSKEY {self.rdata_text()}"

    # -- properties ------------------------------------------------------------------------
    @functools.cached_property  # the verifier asks for it per batch of names
    def key_tag(self) -> int:
        return key_tag_of_rdata(self.to_wire())

    @property
    def is_zone_key(self) -> bool:
        return bool(self.flags & FLAG_ZONE)

    @property
    def is_sep(self) -> bool:
        return bool(self.flags & FLAG_SEP)

    @property
    def is_revoked(self) -> bool:
        return bool(self.flags & FLAG_REVOKE)

    @property
    def bits(self) -> int:
        return key_bits(self.algorithm, self.public_key)

    @property
    def role(self) -> str:
        return "KSK" if self.is_sep else "ZSK"

    def revoked(self) -> DnsKey:
        """The same key with the REVOKE flag set (its key tag changes, RFC 5011 sect. 2.1)."""
        return replace(self, flags=self.flags | FLAG_REVOKE)

    def unrevoked(self) -> DnsKey:
        return replace(self, flags=self.flags & ~FLAG_REVOKE)

    def same_key(self, other: DnsKey) -> bool:
        """Same algorithm and key material, whatever the flags."""
        return self.algorithm == other.algorithm and self.public_key == other.public_key

    def public_key_object(self) -> PublicKey:
        return public_key_from_dnskey_bytes(self.algorithm, self.public_key)

    def describe(self) -> str:
        flags = "+".join(
            n
            for f, n in ((FLAG_ZONE, "ZONE"), (FLAG_SEP, "SEP"), (FLAG_REVOKE, "REVOKE"))
            if self.flags & f
        )
        return f"{self.role} {self.key_tag} alg {int(self.algorithm)} ({self.algorithm.name}, {self.bits} bits, flags {self.flags} {flags})"


@dataclass(frozen=True)
class DsRecord:
    key_tag: int
    algorithm: Algorithm
    digest_type: int
    digest: bytes

    def rdata_text(self) -> str:
        return (
            f"{self.key_tag} {int(self.algorithm)} {self.digest_type} {self.digest.hex().upper()}"
        )

    def to_text(self, owner: dns.name.Name | str, ttl: int | None = None) -> str:
        o = owner if isinstance(owner, dns.name.Name) else dns.name.from_text(owner)
        t = f" {ttl}" if ttl is not None else ""
        return f"{o.to_text()}{t} IN DS {self.rdata_text()}"

    def to_wire(self) -> bytes:
        return (
            struct.pack("!HBB", self.key_tag, int(self.algorithm), self.digest_type) + self.digest
        )

    @classmethod
    def from_text(cls, text: str) -> DsRecord:
        try:
            rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, text)
        except Exception as exc:
            raise InputError(f"bad DS RDATA: {exc}") from None
        return cls(rd.key_tag, Algorithm.parse(rd.algorithm), rd.digest_type, rd.digest)  # type: ignore[attr-defined]

    def matches(self, owner: dns.name.Name, key: DnsKey) -> bool:
        if key.key_tag != self.key_tag or key.algorithm != self.algorithm:
            return False
        if self.digest_type not in _DIGESTS:
            return False
        return make_ds(owner, key, self.digest_type, force=True).digest == self.digest


def make_ds(
    owner: dns.name.Name | str,
    key: DnsKey,
    digest_type: int = DIGEST_SHA256,
    *,
    force: bool = False,
) -> DsRecord:
    """DS (or CDS) RDATA for ``key`` at ``owner`` (RFC 4034 sect. 5.1.4, RFC 6605 sect. 3).

    Refuses a key without the SEP flag (a DS made from a ZSK) or with REVOKE, unless ``force``.
    """
    o = owner if isinstance(owner, dns.name.Name) else dns.name.from_text(owner)
    if not force:
        if not key.is_sep:
            raise DsNotFromSepKey(
                f"key {key.key_tag} has no SEP flag (flags {key.flags}): a DS made from a ZSK "
                "would break the chain of trust; use --force if you really mean it"
            )
        if key.is_revoked:
            raise DsNotFromSepKey(f"key {key.key_tag} is revoked; refusing to make a DS from it")
        if not key.is_zone_key:
            raise DsNotFromSepKey(f"key {key.key_tag} has no ZONE flag")
    if digest_type not in _DIGESTS:
        raise InputError(f"unsupported DS digest type {digest_type} (use 2 SHA-256 or 4 SHA-384)")
    h = hashlib.new(_DIGESTS[digest_type])
    h.update(o.canonicalize().to_wire() or b"")
    h.update(key.to_wire())
    return DsRecord(key.key_tag, key.algorithm, digest_type, h.digest())
