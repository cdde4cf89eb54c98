"""The JSON manifest written beside a KSR/SKR text file (``<file>.json``).

The text format shared with BIND and Knot carries only the records; the manifest carries what it
lacks: the policy (file hash and the declared signature policy), the proofs of possession, the
hash of the previous response (chain), of the request (in a response: hash binding), every
bundle's SHA-256 and the window. Every hash is also spelled in PGP words for reading aloud.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from signer.algorithms import Algorithm
from signer.bundles.declared import AlgorithmPolicy, DeclaredPolicy, SignaturePolicy
from signer.bundles.model import Bundle
from signer.bundles.policy import format_duration, parse_duration, parse_time, time_text
from signer.errors import InputError
from signer.fileio import write_atomic
from signer.pgpwords import pgp_words

FORMAT = "dnssec-ceremony-bundles 1"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def manifest_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(path)}.json")


def hashed(hexdigest: str) -> dict[str, str]:
    return {"sha256": hexdigest, "pgp_words": pgp_words(bytes.fromhex(hexdigest))}


def bundle_sha256(b: Bundle) -> str:
    """SHA-256 over a canonical text of the bundle: times, TTL, sorted RDATA of every RRset."""
    lines = [f"{b.inception} {b.expiration} {b.ttl} {b.sync_ttl}"]
    lines += sorted("DNSKEY " + k.rdata_text() for k in b.keys)
    lines += sorted("CDNSKEY " + k.rdata_text() for k in b.cdnskey)
    lines += sorted("CDS " + d.rdata_text() for d in b.cds)
    for name, sigs in (
        ("RRSIG", b.signatures),
        ("RRSIG-CDNSKEY", b.cdnskey_signatures),
        ("RRSIG-CDS", b.cds_signatures),
    ):
        lines += sorted(f"{name} " + s.to_text() for s in sigs)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def declared_to_json(sp: SignaturePolicy) -> dict[str, Any]:
    return {
        "publish_safety": format_duration(sp.publish_safety),
        "retire_safety": format_duration(sp.retire_safety),
        "min_signature_validity": format_duration(sp.min_signature_validity),
        "max_signature_validity": format_duration(sp.max_signature_validity),
        "min_validity_overlap": format_duration(sp.min_validity_overlap),
        "max_validity_overlap": format_duration(sp.max_validity_overlap),
        "algorithms": [{"algorithm": int(a.algorithm), "bits": a.bits} for a in sp.algorithms],
    }


def declared_from_json(data: Any, where: str) -> DeclaredPolicy:
    try:
        sp = SignaturePolicy(
            publish_safety=parse_duration(data["publish_safety"]),
            retire_safety=parse_duration(data["retire_safety"]),
            min_signature_validity=parse_duration(data["min_signature_validity"]),
            max_signature_validity=parse_duration(data["max_signature_validity"]),
            min_validity_overlap=parse_duration(data["min_validity_overlap"]),
            max_validity_overlap=parse_duration(data["max_validity_overlap"]),
            algorithms=tuple(
                AlgorithmPolicy(Algorithm.parse(int(a["algorithm"])), int(a["bits"]))
                for a in data["algorithms"]
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"bad 'declared' policy in manifest: {exc}", path=where) from None
    return DeclaredPolicy(zsk=sp)


def write_manifest(path: str | os.PathLike[str], data: dict[str, Any]) -> str:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_atomic(path, text)


def load_manifest(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_MANIFEST_BYTES:
            raise InputError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes", path=str(p))
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            "manifest missing (the JSON file beside the bundle file)", path=str(p)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read manifest: {exc.strerror}", path=str(p)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"manifest is not valid JSON ({exc})", path=str(p), line=line) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"not a manifest of format {FORMAT!r}", path=str(p))
    if data.get("kind") != kind:
        raise InputError(
            f"manifest is for a {data.get('kind')!r}, expected a {kind!r}", path=str(p)
        )
    for key in ("zone", "file", "bundles"):
        if key not in data:
            raise InputError(f"manifest lacks {key!r}", path=str(p))
    return data


def window_json(start: int, end: int) -> dict[str, str]:
    return {"start": time_text(start), "end": time_text(end)}


def window_from_json(data: dict[str, Any], where: str) -> tuple[int, int]:
    try:
        w = data["window"]
        return parse_time(w["start"]), parse_time(w["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"bad 'window' in manifest: {exc}", path=where) from None
