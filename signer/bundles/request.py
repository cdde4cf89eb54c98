"""The request (KSR): proofs of possession, writing it with its manifest, reading it back.

A request file is the shared text format (signer/bundles/textformat.py; BIND and Knot read it)
plus ``<file>.json`` (signer/bundles/manifest.py) carrying the proofs of possession, the
declared signature policy, the window, the previous response's hash and every bundle's hash.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import dns.exception
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from signer.bundles import textformat
from signer.bundles.declared import AlgorithmPolicy, DeclaredPolicy, SignaturePolicy
from signer.bundles.manifest import (
    FORMAT,
    bundle_sha256,
    declared_from_json,
    declared_to_json,
    hashed,
    load_manifest,
    manifest_path,
    window_from_json,
    window_json,
    write_manifest,
)
from signer.bundles.model import BundleSet
from signer.bundles.policy import Policy, time_text
from signer.errors import CheckFailed, InputError
from signer.fileio import sha256_file
from signer.rrsig import Signer, sign_rrset


class ManifestMismatch(CheckFailed):
    requirement = "KSR-MANIFEST"


def declared_policy(policy: Policy) -> DeclaredPolicy:
    """What our request declares (the root KSR's RequestPolicy/ZSK, in our manifest)."""
    s, k = policy.signer, policy.ksk
    return DeclaredPolicy(
        zsk=SignaturePolicy(
            publish_safety=s.publish_safety,
            retire_safety=s.retire_safety,
            max_signature_validity=k.signature_validity.max,
            min_signature_validity=k.signature_validity.min,
            max_validity_overlap=k.overlap.max,
            min_validity_overlap=k.overlap.min,
            algorithms=(AlgorithmPolicy(s.algorithm, s.bits),),
        )
    )


def add_proofs(request: BundleSet, zsks: Sequence[Signer]) -> BundleSet:
    """Each of our ZSKs signs the DNSKEY RRset of every bundle it is in (proof of possession).

    The RRSIG carries the bundle's inception and expiration. Foreign ZSKs get none.
    """
    out = []
    for b in request.bundles:
        rrset = b.dnskey_rrset(request.zone)
        sigs = [
            sign_rrset(rrset, z, request.zone, b.inception, b.expiration)
            for z in zsks
            if any(z.dnskey.to_wire() == k.to_wire() for k in b.keys)
        ]
        out.append(replace(b, signatures=tuple(sigs)))
    return replace(request, bundles=tuple(out))


def render_request(request: BundleSet) -> str:
    return textformat.dump_request(request)


def request_manifest(
    request: BundleSet,
    *,
    file_name: str,
    file_sha256: str,
    window: tuple[int, int],
    policy_sha256: str | None,
    previous_sha256: str | None,
) -> dict[str, Any]:
    declared = request.declared_policy.zsk if request.declared_policy else None
    return {
        "format": FORMAT,
        "kind": "request",
        "zone": request.zone.to_text(),
        "file": file_name,
        "file_hash": hashed(file_sha256),
        "window": window_json(*window),
        "policy": {
            "file_hash": hashed(policy_sha256) if policy_sha256 else None,
            "declared": declared_to_json(declared) if declared else None,
        },
        "previous_response_hash": hashed(previous_sha256) if previous_sha256 else None,
        "bundles": [
            {
                "id": b.id,
                "inception": b.inception,
                "expiration": b.expiration,
                "hash": hashed(bundle_sha256(b)),
                "proof_of_possession": [s.to_text() for s in b.signatures],
            }
            for b in request.bundles
        ],
    }


def write_request(
    path: str | os.PathLike[str],
    request: BundleSet,
    *,
    window: tuple[int, int],
    policy_path: str | None = None,
    previous_path: str | None = None,
) -> tuple[str, Path]:
    """Write the KSR text and its manifest atomically; return (text SHA-256, manifest path).

    Everything is rendered and checked before the first byte is written.
    """
    text = render_request(request)
    import hashlib

    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    manifest = request_manifest(
        request,
        file_name=Path(path).name,
        file_sha256=digest,
        window=window,
        policy_sha256=sha256_file(policy_path) if policy_path else None,
        previous_sha256=sha256_file(previous_path) if previous_path else None,
    )
    textformat.write_text(Path(path), text)
    mpath = manifest_path(path)
    write_manifest(mpath, manifest)
    return digest, mpath


def read_request(
    path: str | os.PathLike[str], *, require_manifest: bool = True
) -> tuple[BundleSet, dict[str, Any] | None]:
    """Parse a KSR; with its manifest, attach the proofs of possession and declared policy.

    The manifest must be well-formed (else InputError, exit 2: unknown or missing keys, bad
    JSON) and describe this file (else KSR-MANIFEST, exit 1): its exact SHA-256, the zone, the
    same bundles (ids, times, per-bundle SHA-256 over keys and proofs of possession) and a
    window within them.
    Without a manifest (a KSR made by Knot or BIND) pass ``require_manifest=False``: the
    request then has no proofs of possession and declares no policy.
    """
    p = Path(path)
    request = textformat.load_request(p)
    mpath = manifest_path(p)
    if not mpath.exists() and not require_manifest:
        return request, None
    manifest = load_manifest(mpath, "request")  # strict schema: InputError (exit 2)
    digest = sha256_file(p)
    if manifest["file_hash"]["sha256"] != digest:
        raise ManifestMismatch(f"{mpath} does not describe {p} (SHA-256 differs)")
    if manifest["zone"] != request.zone.to_text():
        raise ManifestMismatch(f"{mpath} is for zone {manifest['zone']}, {p} for {request.zone}")
    entries = manifest["bundles"]
    if len(entries) != len(request.bundles):
        raise ManifestMismatch(f"{mpath} lists another number of bundles than {p}")
    bundles = []
    for b, e in zip(request.bundles, entries, strict=True):
        if e["id"] != b.id or (e["inception"], e["expiration"]) != (b.inception, b.expiration):
            raise ManifestMismatch(f"{mpath}: bundle {e['id']} has another id or times than in {p}")
        try:
            sigs = tuple(
                dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG, t)
                for t in e["proof_of_possession"]
            )
        except dns.exception.DNSException as exc:
            raise InputError(
                f"bundle {b.id}: bad proof-of-possession RRSIG: {exc}", path=str(mpath)
            ) from None
        signed = replace(b, signatures=sigs)
        if bundle_sha256(signed) != e["hash"]["sha256"]:
            raise ManifestMismatch(
                f"{mpath}: bundle {b.id} hash differs (its keys or proofs of possession changed)"
            )
        bundles.append(signed)
    start, end = window_from_json(manifest, str(mpath))
    if request.bundles and not request.start <= start < end <= request.end:
        raise ManifestMismatch(
            f"{mpath}: window {time_text(start)}..{time_text(end)} is not within the bundles "
            f"of {p} ({time_text(request.start)}..{time_text(request.end)})"
        )
    declared = manifest["policy"]["declared"]
    dp = declared_from_json(declared, str(mpath)) if declared else None
    return replace(request, bundles=tuple(bundles), declared_policy=dp), manifest
