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
import re
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


# The keys each manifest holds (written by request_manifest / ceremony.ksk.response_manifest).
# A manifest is read strictly: an unknown key, a missing key or a value of the wrong kind is
# refused (InputError, exit 2) before anything is compared.
_TOP_KEYS = {
    "request": frozenset(
        {
            "format",
            "kind",
            "zone",
            "file",
            "file_hash",
            "window",
            "policy",
            "previous_response_hash",
            "bundles",
        }
    ),
    "response": frozenset(
        {
            "format",
            "kind",
            "zone",
            "file",
            "file_hash",
            "request_hash",
            "window",
            "policy",
            "ksks",
            "trust_anchors",
            "bundles",
        }
    ),
}
_BUNDLE_KEYS = {
    "request": frozenset({"id", "inception", "expiration", "hash", "proof_of_possession"}),
    "response": frozenset({"id", "inception", "expiration", "hash"}),
}
_POLICY_KEYS = {
    "request": frozenset({"file_hash", "declared"}),
    "response": frozenset({"file_hash"}),
}
_DECLARED_KEYS = frozenset(
    {
        "publish_safety",
        "retire_safety",
        "min_signature_validity",
        "max_signature_validity",
        "min_validity_overlap",
        "max_validity_overlap",
        "algorithms",
    }
)
_HEX64 = re.compile(r"[0-9a-f]{64}")


class _Bad(Exception):
    """One rule of the manifest schema broken (turned into an InputError naming the file)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Bad(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise _Bad(f"{name} is not a JSON number")


def _obj(
    value: Any, where: str, keys: frozenset[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} must be an object")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise _Bad(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(keys))})")
    missing = sorted(keys - optional - set(value))
    if missing:
        raise _Bad(f"{where}: missing key {missing[0]!r}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{where} must be a string")
    return value


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise _Bad(f"{where} must be a whole number of seconds")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{where} must be a list")
    return value


def _hash(value: Any, where: str, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    h = _obj(value, where, frozenset({"sha256", "pgp_words"}))
    digest = _str(h["sha256"], f"{where}.sha256")
    if not _HEX64.fullmatch(digest):
        raise _Bad(f"{where}.sha256 is not a lowercase hex SHA-256")
    if _str(h["pgp_words"], f"{where}.pgp_words") != pgp_words(bytes.fromhex(digest)):
        raise _Bad(f"{where}.pgp_words do not spell {where}.sha256")


def _time(value: Any, where: str) -> None:
    try:
        parse_time(_str(value, where))
    except ValueError as exc:
        raise _Bad(f"{where}: {exc}") from None


def _validate(data: Any, kind: str) -> None:
    """The manifest schema of ``kind`` ("request" or "response"); raises _Bad."""
    top = _obj(data, "the manifest", _TOP_KEYS[kind])
    for key in ("zone", "file"):
        _str(top[key], key)
    _hash(top["file_hash"], "file_hash")
    if top["window"] is not None or kind == "request":
        w = _obj(top["window"], "window", frozenset({"start", "end"}))
        _time(w["start"], "window.start")
        _time(w["end"], "window.end")
    pol = _obj(top["policy"], "policy", _POLICY_KEYS[kind])
    _hash(pol["file_hash"], "policy.file_hash", nullable=True)
    if kind == "request":
        _hash(top["previous_response_hash"], "previous_response_hash", nullable=True)
        if pol["declared"] is not None:
            d = _obj(pol["declared"], "policy.declared", _DECLARED_KEYS)
            for key in sorted(_DECLARED_KEYS - {"algorithms"}):
                _str(d[key], f"policy.declared.{key}")
            for i, a in enumerate(_list(d["algorithms"], "policy.declared.algorithms")):
                where = f"policy.declared.algorithms[{i}]"
                one = _obj(a, where, frozenset({"algorithm", "bits"}))
                _int(one["algorithm"], f"{where}.algorithm")
                _int(one["bits"], f"{where}.bits")
    else:
        _hash(top["request_hash"], "request_hash")
        ksks = top["ksks"]
        if not isinstance(ksks, dict):
            raise _Bad("ksks must be an object")
        for name, k in ksks.items():
            one = _obj(k, f"ksks.{name}", frozenset({"key_tag", "dnskey"}))
            _int(one["key_tag"], f"ksks.{name}.key_tag")
            _str(one["dnskey"], f"ksks.{name}.dnskey")
        for i, t in enumerate(_list(top["trust_anchors"], "trust_anchors")):
            _str(t, f"trust_anchors[{i}]")
    for i, b in enumerate(_list(top["bundles"], "bundles")):
        where = f"bundles[{i}]"
        one = _obj(b, where, _BUNDLE_KEYS[kind])
        _str(one["id"], f"{where}.id")
        _int(one["inception"], f"{where}.inception")
        _int(one["expiration"], f"{where}.expiration")
        _hash(one["hash"], f"{where}.hash")
        if kind == "request":
            for j, s in enumerate(
                _list(one["proof_of_possession"], f"{where}.proof_of_possession")
            ):
                _str(s, f"{where}.proof_of_possession[{j}]")


def load_manifest(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """Read a manifest strictly: valid JSON (no duplicate keys, no NaN), of ``kind``, with
    exactly the keys and kinds of value our writers produce; else InputError (exit 2).

    Whether it *describes* its file (hashes, bundles, window) is checked by the caller
    (KSR-MANIFEST in request.py, SKR-MANIFEST / SKR-REQUEST-HASH in importer.py).
    """
    p = Path(path)
    try:
        if p.stat().st_size > MAX_MANIFEST_BYTES:
            raise InputError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes", path=str(p))
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            "manifest missing (the JSON file beside the bundle file)", path=str(p)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read manifest: {exc.strerror}", path=str(p)) from None
    except UnicodeDecodeError:
        raise InputError("manifest is not UTF-8 text", path=str(p)) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"manifest is not valid JSON ({exc.msg}, column {exc.colno})",
            path=str(p),
            line=exc.lineno,
        ) from None
    except RecursionError:
        raise InputError("manifest is not valid JSON (nested too deeply)", path=str(p)) from None
    except _Bad as exc:
        raise InputError(f"manifest is not valid JSON ({exc})", path=str(p)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"not a manifest of format {FORMAT!r}", path=str(p))
    if data.get("kind") != kind:
        raise InputError(
            f"manifest is for a {data.get('kind')!r}, expected a {kind!r}", path=str(p)
        )
    try:
        _validate(data, kind)
    except _Bad as exc:
        raise InputError(f"bad manifest: {exc}", path=str(p)) from None
    return data


def window_json(start: int, end: int) -> dict[str, str]:
    return {"start": time_text(start), "end": time_text(end)}


def window_from_json(data: dict[str, Any], where: str) -> tuple[int, int]:
    try:
        w = data["window"]
        return parse_time(w["start"]), parse_time(w["end"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"bad 'window' in manifest: {exc}", path=where) from None
