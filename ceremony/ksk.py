"""The KSK side of a key-bundle exchange: validate a request, sign it, check what was written.

:func:`sign_request` checks the request against the KSK policy (every KSR-* check), builds each
slot's DNSKEY RRset from the requested ZSKs and the slot's KSK schema (publish, sign, revoke),
and signs it -- and the CDS/CDNSKEY RRsets when the policy publishes them -- with the KSKs.
:func:`sign_request_file` then renders the response, parses those bytes again and re-runs the
response checks against the KSKs' own DS before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from signer.bundles import textformat
from signer.bundles.checks import anchors_for, check_request, check_response
from signer.bundles.manifest import (
    FORMAT,
    bundle_sha256,
    hashed,
    manifest_path,
    write_manifest,
)
from signer.bundles.model import Bundle, BundleSet
from signer.bundles.policy import KskPolicy, time_text
from signer.bundles.request import read_request
from signer.dnskey import DnsKey, make_ds
from signer.errors import CheckFailed, InputError
from signer.fileio import sha256_file
from signer.rrsig import Signer, sign_rrset

log = logging.getLogger("dnssec_ceremony.ksk")


class KskMismatch(CheckFailed):
    requirement = "KSK-KEY-MATCH"


@dataclass(frozen=True)
class _FlagView:
    """A KSK seen with other DNSKEY flags (REVOKE): same key material, other key tag."""

    key: Signer
    flags: int

    @property
    def dnskey(self) -> DnsKey:
        return replace(self.key.dnskey, flags=self.flags)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


def _ksk_check(policy: KskPolicy, ksks: Mapping[str, Signer]) -> None:
    refs = {r.name: r for r in policy.keys}
    for name, key in ksks.items():
        dk = key.dnskey
        if not dk.is_sep or not dk.is_zone_key:
            raise KskMismatch(f"KSK {name} has flags {dk.flags}, not a SEP key")
        if dk.algorithm not in policy.algorithms:
            raise KskMismatch(f"KSK {name} uses {dk.algorithm.name}, not allowed by the policy")
        if dk.bits not in policy.bits:
            raise KskMismatch(f"KSK {name} has {dk.bits} bits, the policy allows {policy.bits}")
        ref = refs.get(name)
        if ref is not None and ref.key_tag is not None and ref.key_tag != dk.unrevoked().key_tag:
            raise KskMismatch(
                f"KSK {name} has key tag {dk.key_tag}, the policy expects {ref.key_tag}"
            )


def sign_request(
    request: BundleSet,
    policy: KskPolicy,
    ksks: Mapping[str, Signer],
    *,
    now: int,
    previous: BundleSet | None = None,
    disabled: set[str] | frozenset[str] = frozenset(),
) -> BundleSet:
    """Check ``request`` (every KSR-* check) and return the signed response."""
    _ksk_check(policy, ksks)
    for i in range(len(request.bundles)):
        s = policy.slot_schema(i)
        missing = [n for n in s.publish + s.sign + s.revoke if n not in ksks]
        if missing:
            raise InputError(f"slot {i + 1}: the KSK schema uses {missing}, not opened")
    ksk_keys = [k.dnskey for k in ksks.values()]
    check_request(
        request, policy, now=now, previous=previous, disabled=set(disabled), ksks=ksk_keys
    )
    zone = request.zone
    out = []
    for i, b in enumerate(request.bundles):
        s = policy.slot_schema(i)
        signers: list[Signer] = [ksks[n] for n in s.sign]
        signers += [_FlagView(ksks[n], ksks[n].dnskey.flags | 0x0080) for n in s.revoke]
        published = [ksks[n].dnskey for n in s.publish + s.sign]
        keys = list(b.keys) + published + [x.dnskey for x in signers[len(s.sign) :]]
        nb = Bundle(
            id=b.id,
            inception=b.inception,
            expiration=b.expiration,
            ttl=b.ttl,
            keys=tuple(keys),
        )
        rrset = nb.dnskey_rrset(zone)
        sigs = tuple(sign_rrset(rrset, k, zone, b.inception, b.expiration) for k in signers)
        nb = replace(nb, signatures=sigs)
        sync_keys = [ksks[n].dnskey for n in s.sign]
        if policy.cds:
            cds = tuple(make_ds(zone, k, dt) for k in sync_keys for dt in policy.digest_types)
            nb = replace(nb, cds=cds)
            cds_rrset = nb.cds_rrset(zone)
            assert cds_rrset is not None
            nb = replace(
                nb,
                cds_signatures=tuple(
                    sign_rrset(cds_rrset, ksks[n], zone, b.inception, b.expiration) for n in s.sign
                ),
            )
        if policy.cdnskey:
            nb = replace(nb, cdnskey=tuple(sync_keys))
            cdk = nb.cdnskey_rrset(zone)
            assert cdk is not None
            nb = replace(
                nb,
                cdnskey_signatures=tuple(
                    sign_rrset(cdk, ksks[n], zone, b.inception, b.expiration) for n in s.sign
                ),
            )
        out.append(nb)
        log.info(
            "signed bundle %s (%s..%s) with %s",
            b.id,
            time_text(b.inception),
            time_text(b.expiration),
            ", ".join(str(k.dnskey.key_tag) for k in signers),
        )
    return BundleSet(zone, tuple(out), "response", meta=dict(request.meta))


def response_manifest(
    response: BundleSet,
    *,
    file_name: str,
    file_sha256: str,
    request_sha256: str,
    window: Any,
    policy_sha256: str | None,
    ksks: Mapping[str, Signer],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": "response",
        "zone": response.zone.to_text(),
        "file": file_name,
        "file_hash": hashed(file_sha256),
        "request_hash": hashed(request_sha256),
        "window": window,
        "policy": {"file_hash": hashed(policy_sha256) if policy_sha256 else None},
        "ksks": {
            n: {"key_tag": k.dnskey.key_tag, "dnskey": k.dnskey.rdata_text()}
            for n, k in ksks.items()
        },
        "trust_anchors": [make_ds(response.zone, k.dnskey, 2).rdata_text() for k in ksks.values()],
        "bundles": [
            {
                "id": b.id,
                "inception": b.inception,
                "expiration": b.expiration,
                "hash": hashed(bundle_sha256(b)),
            }
            for b in response.bundles
        ],
    }


def check_request_file(
    request_path: str | os.PathLike[str],
    policy: KskPolicy,
    *,
    now: int,
    previous_path: str | os.PathLike[str] | None = None,
    disabled: set[str] | frozenset[str] = frozenset(),
    require_manifest: bool = True,
) -> BundleSet:
    """Read a KSR file (and its manifest) and run every KSR-* check against ``policy``: what
    the KSK side does before any token is opened (:func:`sign_request_file` checks again)."""
    request, _ = read_request(request_path, require_manifest=require_manifest)
    previous = textformat.load_response(previous_path) if previous_path else None
    check_request(request, policy, now=now, previous=previous, disabled=set(disabled))
    return request


@dataclass(frozen=True)
class SignResult:
    response: BundleSet
    sha256: str
    manifest: Path
    request_sha256: str


def sign_request_file(
    request_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    policy: KskPolicy,
    ksks: Mapping[str, Signer],
    *,
    now: int,
    previous_path: str | os.PathLike[str] | None = None,
    disabled: set[str] | frozenset[str] = frozenset(),
    policy_path: str | None = None,
    require_manifest: bool = True,
) -> SignResult:
    """Read, check and sign a KSR file; write the SKR and its manifest (nothing on refusal)."""
    request, manifest = read_request(request_path, require_manifest=require_manifest)
    previous = textformat.load_response(previous_path) if previous_path else None
    response = sign_request(request, policy, ksks, now=now, previous=previous, disabled=disabled)
    text = textformat.dump_response(response)
    # re-parse what we are about to write and validate it again, from the bytes
    again = textformat.parse_response(text, name=str(out_path), zone=request.zone)
    check_response(again, request, anchors_for(request.zone, [k.dnskey for k in ksks.values()]))
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    req_sha = sha256_file(request_path)
    mdata = response_manifest(
        again,
        file_name=Path(out_path).name,
        file_sha256=digest,
        request_sha256=req_sha,
        window=(manifest or {}).get("window"),
        policy_sha256=sha256_file(policy_path) if policy_path else None,
        ksks=ksks,
    )
    textformat.write_text(Path(out_path), text)
    mpath = manifest_path(out_path)
    write_manifest(mpath, mdata)
    return SignResult(again, digest, mpath, req_sha)
