"""The key-bundle data model shared by the planner, the formats, the KSK side and the signer.

A *bundle* is one slot of the validity window: the DNSKEY RRset the zone publishes between
``inception`` and ``expiration`` (plus CDS/CDNSKEY when published), and the RRSIGs over them.
In a request the signatures are the ZSK proofs of possession; in a response they are the
KSK signatures the zone signer copies into the zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from signer.bundles.declared import DeclaredPolicy
from signer.dnskey import DnsKey, DsRecord


@dataclass(frozen=True)
class Bundle:
    id: str
    inception: int  # seconds since the epoch (UTC)
    expiration: int
    ttl: int  # DNSKEY (and CDS/CDNSKEY) TTL
    keys: tuple[DnsKey, ...]  # the DNSKEY RRset
    signatures: tuple[dns.rdata.Rdata, ...] = ()  # RRSIGs over the DNSKEY RRset
    cds: tuple[DsRecord, ...] = ()
    cds_signatures: tuple[dns.rdata.Rdata, ...] = ()
    cdnskey: tuple[DnsKey, ...] = ()
    cdnskey_signatures: tuple[dns.rdata.Rdata, ...] = ()
    cds_ttl: int | None = None  # CDS/CDNSKEY TTL when it differs from ``ttl`` (Knot uses 0)

    def covers(self, when: int) -> bool:
        return self.inception <= when < self.expiration

    @property
    def sync_ttl(self) -> int:
        """TTL of the CDS and CDNSKEY RRsets."""
        return self.ttl if self.cds_ttl is None else self.cds_ttl

    def dnskey_rrset(self, zone: dns.name.Name) -> dns.rrset.RRset:
        return dns.rrset.from_rdata_list(zone, self.ttl, [k.to_rdata() for k in self.keys])

    def cds_rrset(self, zone: dns.name.Name) -> dns.rrset.RRset | None:
        if not self.cds:
            return None
        rds = [
            dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CDS, d.rdata_text())
            for d in self.cds
        ]
        return dns.rrset.from_rdata_list(zone, self.sync_ttl, rds)

    def cdnskey_rrset(self, zone: dns.name.Name) -> dns.rrset.RRset | None:
        if not self.cdnskey:
            return None
        rds = [
            dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CDNSKEY, k.rdata_text())
            for k in self.cdnskey
        ]
        return dns.rrset.from_rdata_list(zone, self.sync_ttl, rds)


@dataclass(frozen=True)
class BundleSet:
    """An ordered series of bundles for one zone: a request or a response."""

    zone: dns.name.Name
    bundles: tuple[Bundle, ...]
    kind: str  # "request" or "response"
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # the RequestPolicy/ResponsePolicy a root XML file declares (None for the text format)
    declared_policy: DeclaredPolicy | None = field(default=None, compare=False)

    def valid_at(self, when: int) -> list[Bundle]:
        return [b for b in self.bundles if b.covers(when)]

    @property
    def start(self) -> int:
        return min(b.inception for b in self.bundles)

    @property
    def end(self) -> int:
        return max(b.expiration for b in self.bundles)
