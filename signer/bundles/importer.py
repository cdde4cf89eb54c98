"""The signer side: import a signed response (SKR) only if it answers our own request.

:func:`import_response` accepts a response when (SKR-* IDs):

* its manifest names the SHA-256 of *this* signer's request file (SKR-REQUEST-HASH);
* it is for the same zone and answers every requested bundle (SKR-DOMAIN, SKR-BUNDLE-MATCH);
* every requested ZSK is there and every other key is a trust-anchor KSK (SKR-BUNDLE-KEYS);
* every RRSIG verifies and each RRset is signed by a KSK the configured DS matches
  (SKR-SIGNATURE), CDS/CDNSKEY come from SEP keys (SKR-CDS-SEP);
* its manifest describes it: zone, bundle ids, times and SHA-256, the window
  (SKR-MANIFEST); a malformed manifest is an InputError (exit 2);
* the window (from the request manifest) is covered with ``bundle_margin`` to spare
  (SKR-COVERAGE).

:func:`load_response_for_signer` is what the zone signer calls at signing time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from signer.bundles import textformat
from signer.bundles.checks import (
    SkrCdsSep,
    SkrCoverage,
    SkrManifest,
    SkrRequestHash,
    SkrSignature,
    check_cds_sep,
    check_response,
    fail,
    prove_coverage,
    trust_keys,
    verify_set,
)
from signer.bundles.manifest import (
    bundle_sha256,
    load_manifest,
    manifest_path,
    window_from_json,
)
from signer.bundles.model import BundleSet
from signer.bundles.request import read_request
from signer.dnskey import DsRecord
from signer.fileio import sha256_file

log = logging.getLogger("dnssec_ceremony.checks")


def check_response_manifest(
    m: dict[str, Any], response: BundleSet, req_manifest: dict[str, Any], where: str
) -> None:
    """SKR-MANIFEST: the response manifest describes the response it is beside.

    Its zone, its bundles (ids, times, per-bundle SHA-256) and its window (when it states one:
    a request signed without its manifest has none) must match the response file and our own
    request's manifest.
    """
    if m["zone"] != response.zone.to_text():
        raise fail(
            SkrManifest, f"{where} is for zone {m['zone']}, the response for {response.zone}"
        )
    entries = m["bundles"]
    if len(entries) != len(response.bundles):
        raise fail(
            SkrManifest,
            f"{where} lists {len(entries)} bundles, the response has {len(response.bundles)}",
        )
    for b, e in zip(response.bundles, entries, strict=True):
        if e["id"] != b.id or (e["inception"], e["expiration"]) != (b.inception, b.expiration):
            raise fail(SkrManifest, f"{where}: bundle {e['id']} has another id or times")
        if e["hash"]["sha256"] != bundle_sha256(b):
            raise fail(SkrManifest, f"{where}: bundle {b.id} hash differs from the response's")
    if m["window"] is not None and m["window"] != req_manifest["window"]:
        raise fail(
            SkrManifest,
            f"{where}: window {m['window']['start']}..{m['window']['end']} is not our request's "
            f"({req_manifest['window']['start']}..{req_manifest['window']['end']})",
        )


def import_response(
    response_path: str | os.PathLike[str],
    request_path: str | os.PathLike[str],
    trust_anchor_ds: Sequence[DsRecord],
    *,
    margin: int,
    require_manifest: bool = True,
) -> BundleSet:
    """Check the response against our request and the trust anchor; return it (nothing written).

    ``require_manifest=False`` accepts a response without a manifest (one signed by Knot or
    BIND); the hash binding is then replaced by the bundle-by-bundle match, logged at WARNING.
    """
    request, req_manifest = read_request(request_path)
    rpath = Path(response_path)
    mpath = manifest_path(rpath)
    if mpath.exists() or require_manifest:
        m = load_manifest(mpath, "response")
        want = sha256_file(request_path)
        got = m["request_hash"]["sha256"]
        if got != want:
            raise fail(
                SkrRequestHash,
                f"{rpath} answers request {got}, not ours ({want}, {request_path})",
            )
        if m["file_hash"]["sha256"] != sha256_file(rpath):
            raise fail(SkrRequestHash, f"{mpath} does not describe {rpath} (SHA-256 differs)")
        resp_manifest = m
    else:
        resp_manifest = None
        log.warning(
            "SKR-REQUEST-HASH not checked: %s has no manifest; bundles are matched one by one",
            rpath,
        )
    response = textformat.load_response(rpath, zone=request.zone)
    if not trust_anchor_ds:
        raise fail(SkrSignature, "no trust anchor DS configured")
    check_response(response, request, trust_anchor_ds)
    assert req_manifest is not None
    if resp_manifest is not None:
        check_response_manifest(resp_manifest, response, req_manifest, str(mpath))
    start, end = window_from_json(req_manifest, str(manifest_path(request_path)))
    prove_coverage(response.bundles, start, end, margin, SkrCoverage)
    log.info("imported %s: %d bundles for %s", rpath, len(response.bundles), response.zone)
    return response


def load_response_for_signer(
    path: str | os.PathLike[str], trust_anchor_ds: list[DsRecord]
) -> BundleSet:
    """Parse an SKR and verify every RRSIG of every bundle against the trust anchor DS."""
    response = textformat.load_response(path)
    if not trust_anchor_ds:
        raise fail(SkrSignature, "no trust anchor DS configured")
    zone = response.zone
    for b in response.bundles:
        signers = trust_keys(b, zone, trust_anchor_ds)
        if not signers:
            raise fail(
                SkrSignature,
                f"bundle {b.id}: no DNSKEY matches the trust anchor DS "
                f"({', '.join(str(d.key_tag) for d in trust_anchor_ds)})",
            )
        verify_set(zone, b, b.dnskey_rrset(zone), b.signatures, signers, "DNSKEY")
        verify_set(zone, b, b.cds_rrset(zone), b.cds_signatures, signers, "CDS")
        verify_set(zone, b, b.cdnskey_rrset(zone), b.cdnskey_signatures, signers, "CDNSKEY")
    check_cds_sep(response, SkrCdsSep)
    return response
