"""The KSR/SKR text format shared by Knot ``keymgr`` (offline-KSK mode) and BIND 9.20 ``dnssec-ksr``.

A file is a series of bundles, each opened by a header comment and followed by
presentation-format resource records of the zone apex, and closed by a trailer::

    ;; KeySigningRequest 1.0 1795626738 (2026-11-25T17:12:18Z) =========
    example.com. 3600 DNSKEY 256 3 13 H31Q...
    ;; KeySigningRequest 1.0 1798218738 (2026-12-25T17:12:18Z) =========
    example.com. 3600 DNSKEY 256 3 13 CtFw...
    example.com. 3600 DNSKEY 256 3 13 H31Q...
    ;; KeySigningRequest 1.0 generated at 2026-11-25T17:12:18Z by Knot DNS 3.2.6

A response uses ``;; SignedKeyResponse 1.0`` and each bundle holds the complete DNSKEY
RRset (KSKs and ZSKs), the CDNSKEY and CDS RRsets and the RRSIGs over those three.

Header time: Knot writes seconds since the epoch, BIND writes ``YYYYMMDDHHMMSS`` (UTC).
Both are read; ISO 8601 with ``Z`` or ``+00:00`` is accepted too, any other UTC offset is
refused. ``dump_*(dialect="knot")`` (the default, what Knot 3.2 reads) writes seconds,
``dialect="bind"`` writes ``YYYYMMDDHHMMSS``. Knot 3.2 reads the header with
``sscanf("; KeySigningRequest %f %u")`` and BIND skips everything after the time, so the
rest of a header line is free: we write ``(ISO time)`` and two annotations of our own,
``expires=<seconds>`` and ``id=<bundle id>``, which keep a round trip exact.

Mapping to :class:`~signer.bundles.model.Bundle` (both tools' semantics: a bundle's header
time is when the zone starts publishing it, and it is used until the next bundle's time):

* ``inception`` = the header time.
* request ``expiration`` = the ``expires=`` annotation if present, else the next header's
  time; for the last bundle of a foreign request (Knot's "end of period" bundle) the
  ``end`` argument if given, else the inception (an open end: the KSK side's signature
  validity decides how long its signatures last).
* response ``expiration`` = the ``expires=`` annotation if present, else the earliest
  expiration of the RRSIGs over the bundle's DNSKEY RRset (the bundle is useless after it).
* ``id`` = the ``id=`` annotation, else the header time as decimal seconds.
* ``ttl`` = the DNSKEY TTL; ``cds_ttl`` = the CDS/CDNSKEY TTL when it differs (Knot: 0).
* request RRSIGs (ours: the ZSK proofs of possession, written only with ``proofs=True``
  because BIND refuses anything but DNSKEY in a KSR) go to ``Bundle.signatures``.

Parsing is strict; every refusal is an :class:`~signer.errors.InputError` naming
``file:line`` and the rule: a record before the first header, a missing trailer
(truncated file), anything after the trailer, wrong owner/zone, duplicate or backwards
bundle times or ids, non-UTC times, ``$`` directives, bad RDATA, mixed TTLs, a file over
:data:`MAX_FILE_BYTES` (refused from its size, before reading it).
"""

from __future__ import annotations

import calendar
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.tokenizer
import dns.ttl

from signer.bundles.model import Bundle, BundleSet
from signer.bundles.policy import time_text as iso
from signer.dnskey import DnsKey, DsRecord
from signer.errors import DnssecCeremonyError, InputError

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest key-bundle file we read (a 9-month window of daily bundles is far below this)."""

KSR_TAG = "KeySigningRequest"
SKR_TAG = "SignedKeyResponse"
VERSION = "1.0"
GENERATOR = "dnssec-ceremony"

_HEADER = re.compile(r";;\s*(\S+)\s*(\S*)\s*(\S*)(.*)$")
_ID_OK = re.compile(r"[A-Za-z0-9._:+@/-]{1,128}")
_TYPES = {
    dns.rdatatype.DNSKEY,
    dns.rdatatype.CDNSKEY,
    dns.rdatatype.CDS,
    dns.rdatatype.RRSIG,
}


# -- reading files ----------------------------------------------------------------------------


def read_limited(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a whole input file, refusing one over ``max_bytes`` before reading it."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise InputError(
                    f"file is {size} bytes, over the {max_bytes}-byte limit for a key-bundle file",
                    path=p,
                )
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if len(data) > max_bytes:
        raise InputError(f"file is over the {max_bytes}-byte limit for a key-bundle file", path=p)
    return data


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text or an InputError naming the line of the first undecodable byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", path=name, line=line) from None


# -- times ------------------------------------------------------------------------------------


def parse_time(token: str) -> int:
    """Seconds since the epoch from seconds, ``YYYYMMDDHHMMSS`` (UTC) or ISO 8601 UTC.

    Raises ValueError with the reason (callers add file:line).
    """
    if token.isdigit() and token.isascii():
        if len(token) == 14:
            try:
                return calendar.timegm(time.strptime(token, "%Y%m%d%H%M%S"))
            except ValueError:
                raise ValueError(f"bad YYYYMMDDHHMMSS time {token!r}") from None
        if len(token) <= 10:
            return int(token)
        raise ValueError(f"bad time {token!r} (want seconds or YYYYMMDDHHMMSS)")
    return parse_iso_utc(token)


def parse_iso_utc(text: str) -> int:
    """ISO 8601 date-time in UTC ('Z', '+00:00' or no offset); other offsets are refused."""
    s = text.strip()
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?", s):
        raise ValueError(f"bad time {text!r} (want YYYY-MM-DDTHH:MM:SSZ)")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"bad time {text!r}") from None
    if dt.tzinfo is not None and dt.utcoffset() != timedelta(0):
        raise ValueError(f"time {text!r} is not UTC (offset {dt.strftime('%z')})")
    return calendar.timegm(dt.utctimetuple())


# -- lexing -----------------------------------------------------------------------------------


def _paren_delta(line: str) -> int:
    """Net parentheses on one master-file line, ignoring comments and quoted strings."""
    depth = 0
    quoted = False
    escaped = False
    for ch in line:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == ";":
            break
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
    return depth


@dataclass
class _Header:
    line: int
    time: int
    expires: int | None
    id: str | None


@dataclass
class _Record:
    line: int
    ttl: int
    rdtype: dns.rdatatype.RdataType
    rdata: dns.rdata.Rdata


@dataclass
class _RawBundle:
    header: _Header
    records: list[_Record] = field(default_factory=list)


def _parse_header(tag: str, text: str, name: str, line: int) -> _Header | None:
    """A bundle header, or None for the trailer; refuses anything else starting with ';;'."""
    m = _HEADER.match(text.strip())
    if m is None or m.group(1) not in (KSR_TAG, SKR_TAG):
        raise InputError(
            f"unexpected ';;' line: want ';; {tag} {VERSION} <time>' or the trailer",
            path=name,
            line=line,
        )
    kind, version, when, rest = m.groups()
    if kind != tag:
        raise InputError(
            f"';; {kind}' header in a {'request' if tag == KSR_TAG else 'response'} file "
            f"(want ';; {tag}')",
            path=name,
            line=line,
        )
    if version != VERSION:
        raise InputError(
            f"unsupported {tag} version {version!r} (want {VERSION})", path=name, line=line
        )
    if when == "generated":
        return None
    if not when:
        raise InputError(f"{tag} header has no time", path=name, line=line)
    try:
        t = parse_time(when)
    except ValueError as exc:
        raise InputError(f"{tag} header: {exc}", path=name, line=line) from None
    expires: int | None = None
    bundle_id: str | None = None
    for word in rest.split():
        if word.startswith("expires="):
            try:
                expires = parse_time(word[len("expires=") :])
            except ValueError as exc:
                raise InputError(f"{tag} header expires=: {exc}", path=name, line=line) from None
        elif word.startswith("id="):
            bundle_id = word[3:]
            if not _ID_OK.fullmatch(bundle_id):
                raise InputError(f"{tag} header: bad bundle id {bundle_id!r}", path=name, line=line)
    return _Header(line, t, expires, bundle_id)


def _parse_record(
    text: str, name: str, line: int, zone: dns.name.Name | None
) -> tuple[dns.name.Name, _Record]:
    try:
        tok = dns.tokenizer.Tokenizer(text, filename=name)
        owner_tok = tok.get()
        if not owner_tok.is_identifier():
            raise InputError("record without an owner name", path=name, line=line)
        if owner_tok.value == "@":
            raise InputError("'@' owner: write the zone name", path=name, line=line)
        owner = dns.name.from_text(owner_tok.value, dns.name.root)
        t = tok.get()
        if not t.is_identifier():
            raise InputError("record is cut short after its owner", path=name, line=line)
        if not t.value[:1].isdigit():
            raise InputError("record without a TTL", path=name, line=line)
        ttl = dns.ttl.from_text(t.value)
        t = tok.get()
        if t.is_identifier() and t.value.upper() in ("IN", "CH", "HS", "CS", "ANY", "NONE"):
            if t.value.upper() != "IN":
                raise InputError(f"class {t.value} (want IN)", path=name, line=line)
            t = tok.get()
        if not t.is_identifier():
            raise InputError("record without a type", path=name, line=line)
        rdtype = dns.rdatatype.from_text(t.value)
        if rdtype not in _TYPES:
            raise InputError(
                f"{dns.rdatatype.to_text(rdtype)} record in a key-bundle file "
                "(only DNSKEY, CDNSKEY, CDS and RRSIG)",
                path=name,
                line=line,
            )
        rd = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, tok, origin=dns.name.root, relativize=False
        )
    except InputError:
        raise
    except dns.exception.DNSException as exc:
        raise InputError(f"bad record: {exc}", path=name, line=line) from None
    except (ValueError, TypeError, IndexError, KeyError, UnicodeError) as exc:
        raise InputError(f"bad record: {exc}", path=name, line=line) from None
    if zone is not None and owner != zone:
        raise InputError(f"record owner {owner} is not the zone {zone}", path=name, line=line)
    return owner, _Record(line, ttl, rdtype, rd)


def _lex(
    text: str, tag: str, name: str, zone: dns.name.Name | None
) -> tuple[dns.name.Name, list[_RawBundle]]:
    lines = text.split("\n")
    bundles: list[_RawBundle] = []
    trailer_line: int | None = None
    last_line = 1
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].rstrip("\r")
        i += 1
        stripped = line.strip()
        if not stripped:
            continue
        last_line = lineno
        if trailer_line is not None:
            raise InputError(
                f"garbage after the last bundle (the trailer is at line {trailer_line})",
                path=name,
                line=lineno,
            )
        if stripped.startswith(";;"):
            header = _parse_header(tag, stripped, name, lineno)
            if header is None:
                if not bundles:
                    raise InputError(f"no bundles before the {tag} trailer", path=name, line=lineno)
                trailer_line = lineno
            else:
                bundles.append(_RawBundle(header))
            continue
        if stripped.startswith(";"):
            continue  # a plain comment line
        if stripped.startswith("$"):
            raise InputError(
                f"directive {stripped.split()[0]} is not allowed in a key-bundle file",
                path=name,
                line=lineno,
            )
        if line[:1].isspace():
            raise InputError(
                "record without an owner name (line starts with blank)", path=name, line=lineno
            )
        # one record, possibly spanning lines in parentheses
        record_lines = [line]
        depth = _paren_delta(line)
        while depth > 0:
            if i >= len(lines):
                raise InputError(
                    "file is truncated inside a record (unclosed parenthesis)",
                    path=name,
                    line=lineno,
                )
            record_lines.append(lines[i].rstrip("\r"))
            depth += _paren_delta(lines[i])
            i += 1
        last_line = i
        if depth < 0:
            raise InputError("unbalanced ')' in record", path=name, line=lineno)
        if not bundles:
            raise InputError(f"record before the first ';; {tag}' header", path=name, line=lineno)
        owner, rec = _parse_record("\n".join(record_lines), name, lineno, zone)
        if zone is None:
            zone = owner
        bundles[-1].records.append(rec)
    if not bundles:
        raise InputError(f"no ';; {tag}' bundle in the file", path=name, line=last_line)
    if trailer_line is None:
        raise InputError(
            f"file is truncated: no ';; {tag} {VERSION} generated ...' trailer after the last bundle",
            path=name,
            line=last_line,
        )
    if zone is None:
        raise InputError("bundles hold no records", path=name, line=bundles[0].header.line)
    return zone, bundles


# -- assembling bundles -----------------------------------------------------------------------


def _check_times_and_ids(raw: Sequence[_RawBundle], name: str) -> list[str]:
    ids: list[str] = []
    seen_ids: dict[str, int] = {}
    prev: _Header | None = None
    for rb in raw:
        h = rb.header
        if prev is not None:
            if h.time == prev.time:
                raise InputError(
                    f"duplicate bundle: time {iso(h.time)} again (first at line {prev.line})",
                    path=name,
                    line=h.line,
                )
            if h.time < prev.time:
                raise InputError(
                    f"bundle time {iso(h.time)} goes back before the previous bundle "
                    f"({iso(prev.time)}, line {prev.line})",
                    path=name,
                    line=h.line,
                )
        bid = h.id if h.id is not None else str(h.time)
        if bid in seen_ids:
            raise InputError(
                f"duplicate bundle id {bid!r} (first at line {seen_ids[bid]})",
                path=name,
                line=h.line,
            )
        seen_ids[bid] = h.line
        ids.append(bid)
        prev = h
    return ids


def _one_ttl(records: Sequence[_Record], what: str, name: str) -> int | None:
    if not records:
        return None
    ttls = {r.ttl for r in records}
    if len(ttls) > 1:
        raise InputError(
            f"{what} RRs of one bundle have different TTLs {sorted(ttls)} (RFC 2181 sect. 5.2)",
            path=name,
            line=records[0].line,
        )
    return records[0].ttl


def _keys(records: Sequence[_Record], name: str) -> tuple[DnsKey, ...]:
    out: list[DnsKey] = []
    for r in records:
        try:
            k = DnsKey.from_rdata(r.rdata)
        except DnssecCeremonyError as exc:
            raise InputError(str(exc), path=name, line=r.line) from None
        if any(k == o for o in out):
            raise InputError(
                f"duplicate {dns.rdatatype.to_text(r.rdtype)} {k.key_tag} in one bundle",
                path=name,
                line=r.line,
            )
        out.append(k)
    return tuple(out)


def _build(
    tag: str, zone: dns.name.Name, raw: list[_RawBundle], name: str, end: int | None
) -> BundleSet:
    ids = _check_times_and_ids(raw, name)
    out: list[Bundle] = []
    for n, rb in enumerate(raw):
        h = rb.header
        by: dict[int, list[_Record]] = {t: [] for t in _TYPES}
        sigs: dict[int, list[_Record]] = {
            dns.rdatatype.DNSKEY: [],
            dns.rdatatype.CDS: [],
            dns.rdatatype.CDNSKEY: [],
        }
        for r in rb.records:
            if r.rdtype == dns.rdatatype.RRSIG:
                covered = int(r.rdata.type_covered)  # type: ignore[attr-defined]
                if covered not in sigs:
                    raise InputError(
                        f"RRSIG covers {dns.rdatatype.to_text(dns.rdatatype.RdataType.make(covered))} "
                        "(only DNSKEY, CDS, CDNSKEY)",
                        path=name,
                        line=r.line,
                    )
                if tag == KSR_TAG and covered != dns.rdatatype.DNSKEY:
                    raise InputError(
                        "a request carries only RRSIGs over DNSKEY", path=name, line=r.line
                    )
                sigs[covered].append(r)
            else:
                if tag == KSR_TAG and r.rdtype != dns.rdatatype.DNSKEY:
                    raise InputError(
                        f"{dns.rdatatype.to_text(r.rdtype)} in a request (only DNSKEY)",
                        path=name,
                        line=r.line,
                    )
                by[r.rdtype].append(r)
        dnskeys = by[dns.rdatatype.DNSKEY]
        if not dnskeys:
            raise InputError("bundle has no DNSKEY record", path=name, line=h.line)
        ttl = _one_ttl(dnskeys, "DNSKEY", name)
        assert ttl is not None
        sync = _one_ttl(by[dns.rdatatype.CDS] + by[dns.rdatatype.CDNSKEY], "CDS/CDNSKEY", name)
        keys = _keys(dnskeys, name)
        cdnskey = _keys(by[dns.rdatatype.CDNSKEY], name)
        cds: list[DsRecord] = []
        for r in by[dns.rdatatype.CDS]:
            try:
                d = DsRecord.from_text(r.rdata.to_text())
            except DnssecCeremonyError as exc:
                raise InputError(str(exc), path=name, line=r.line) from None
            if d in cds:
                raise InputError(f"duplicate CDS {d.key_tag} in one bundle", path=name, line=r.line)
            cds.append(d)
        if tag == SKR_TAG:
            if h.expires is not None:
                expiration = h.expires
            elif sigs[dns.rdatatype.DNSKEY]:
                expiration = min(
                    int(r.rdata.expiration)  # type: ignore[attr-defined]
                    for r in sigs[dns.rdatatype.DNSKEY]
                )
            else:
                raise InputError(
                    "response bundle has no RRSIG over its DNSKEY RRset", path=name, line=h.line
                )
        elif h.expires is not None:
            expiration = h.expires
        elif n + 1 < len(raw):
            expiration = raw[n + 1].header.time
        else:
            expiration = end if end is not None else h.time
        if expiration < h.time or (expiration == h.time and tag == SKR_TAG):
            raise InputError(
                f"bundle expiration {iso(expiration)} is not after its inception {iso(h.time)}",
                path=name,
                line=h.line,
            )
        out.append(
            Bundle(
                id=ids[n],
                inception=h.time,
                expiration=expiration,
                ttl=ttl,
                keys=keys,
                signatures=tuple(r.rdata for r in sigs[dns.rdatatype.DNSKEY]),
                cds=tuple(cds),
                cds_signatures=tuple(r.rdata for r in sigs[dns.rdatatype.CDS]),
                cdnskey=cdnskey,
                cdnskey_signatures=tuple(r.rdata for r in sigs[dns.rdatatype.CDNSKEY]),
                cds_ttl=sync if sync is not None and sync != ttl else None,
            )
        )
    return BundleSet(
        zone=zone,
        bundles=tuple(out),
        kind="request" if tag == KSR_TAG else "response",
        meta={"format": "text", "source": name},
    )


def _zone_name(zone: dns.name.Name | str | None) -> dns.name.Name | None:
    if zone is None or isinstance(zone, dns.name.Name):
        return zone
    try:
        return dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad zone name {zone!r}: {exc}") from None


def _parse(
    tag: str, text: str, name: str, zone: dns.name.Name | str | None, end: int | None
) -> BundleSet:
    if len(text) > MAX_FILE_BYTES:
        raise InputError(f"input is over the {MAX_FILE_BYTES}-byte limit", path=name)
    if "\x00" in text:
        raise InputError(
            "NUL character in text", path=name, line=text[: text.index("\x00")].count("\n") + 1
        )
    z, raw = _lex(text, tag, name, _zone_name(zone))
    return _build(tag, z, raw, name, end)


# -- public API -------------------------------------------------------------------------------


def parse_request(
    text: str,
    *,
    name: str = "<request>",
    zone: dns.name.Name | str | None = None,
    end: int | None = None,
) -> BundleSet:
    """Parse a KSR from text. ``zone``: refuse records of any other owner; ``end``: the
    expiration of the last bundle when the file does not say (see the module docstring)."""
    return _parse(KSR_TAG, text, name, zone, end)


def load_request(
    path: str | os.PathLike[str],
    *,
    zone: dns.name.Name | str | None = None,
    end: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> BundleSet:
    """Read and parse a KSR file (Knot ``generate-ksr``, BIND ``dnssec-ksr request``, ours)."""
    name = os.fspath(path)
    return parse_request(
        decode_text(read_limited(name, max_bytes), name), name=name, zone=zone, end=end
    )


def parse_response(
    text: str, *, name: str = "<response>", zone: dns.name.Name | str | None = None
) -> BundleSet:
    """Parse an SKR from text; ``zone``: refuse records of any other owner."""
    return _parse(SKR_TAG, text, name, zone, None)


def load_response(
    path: str | os.PathLike[str],
    *,
    zone: dns.name.Name | str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> BundleSet:
    """Read and parse an SKR file (Knot ``sign-ksr``, BIND ``dnssec-ksr sign``, ours)."""
    name = os.fspath(path)
    return parse_response(decode_text(read_limited(name, max_bytes), name), name=name, zone=zone)


def _time_token(ts: int, dialect: str) -> str:
    if dialect == "knot":
        return str(ts)
    if dialect == "bind":
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(ts))
    raise InputError(f"unknown text dialect {dialect!r} (knot or bind)")


def _header(tag: str, b: Bundle, dialect: str) -> str:
    if not _ID_OK.fullmatch(b.id):
        raise InputError(f"bundle id {b.id!r} cannot be written in the text format")
    if b.expiration < b.inception:
        raise InputError(f"bundle {b.id}: expiration before inception")
    return (
        f";; {tag} {VERSION} {_time_token(b.inception, dialect)} ({iso(b.inception)}) "
        f"expires={b.expiration} ({iso(b.expiration)}) id={b.id}\n"
    )


def _rr(zone: dns.name.Name, ttl: int, rd: dns.rdata.Rdata) -> str:
    rtype = dns.rdatatype.to_text(rd.rdtype)
    text = rd.to_text(origin=None, relativize=False, chunksize=0)
    return f"{zone.to_text()} {ttl} IN {rtype} {text}\n"


def _keys_rr(zone: dns.name.Name, ttl: int, keys: Sequence[DnsKey], rdtype: str) -> str:
    return "".join(f"{zone.to_text()} {ttl} IN {rdtype} {k.rdata_text()}\n" for k in keys)


def _sigs_rr(zone: dns.name.Name, ttl: int, sigs: Sequence[dns.rdata.Rdata]) -> str:
    return "".join(_rr(zone, ttl, s) for s in sigs)


def _check_sorted(bs: BundleSet) -> None:
    prev: Bundle | None = None
    ids: set[str] = set()
    for b in bs.bundles:
        if prev is not None and b.inception <= prev.inception:
            raise InputError(
                f"bundle {b.id} does not start after bundle {prev.id}: the text format orders "
                "bundles by their (distinct) start times"
            )
        if b.id in ids:
            raise InputError(f"duplicate bundle id {b.id!r}")
        ids.add(b.id)
        prev = b
    if not bs.bundles:
        raise InputError("no bundles to write")


def dump_request(bs: BundleSet, *, dialect: str = "knot", proofs: bool = False) -> str:
    """The KSR text. ``proofs=True`` also writes each bundle's RRSIGs over DNSKEY (the proofs
    of possession); Knot and BIND do not read those, so the default leaves them out (the
    JSON manifest carries them)."""
    _check_sorted(bs)
    parts: list[str] = []
    for b in bs.bundles:
        parts.append(_header(KSR_TAG, b, dialect))
        parts.append(_keys_rr(bs.zone, b.ttl, b.keys, "DNSKEY"))
        if proofs:
            parts.append(_sigs_rr(bs.zone, b.ttl, b.signatures))
    parts.append(f";; {KSR_TAG} {VERSION} generated by {GENERATOR}\n")
    return "".join(parts)


def dump_response(bs: BundleSet, *, dialect: str = "knot") -> str:
    """The SKR text: per bundle DNSKEY + RRSIG, CDNSKEY + RRSIG, CDS + RRSIG (BIND's order)."""
    _check_sorted(bs)
    parts: list[str] = []
    for b in bs.bundles:
        parts.append(_header(SKR_TAG, b, dialect))
        parts.append(_keys_rr(bs.zone, b.ttl, b.keys, "DNSKEY"))
        parts.append(_sigs_rr(bs.zone, b.ttl, b.signatures))
        parts.append(_keys_rr(bs.zone, b.sync_ttl, b.cdnskey, "CDNSKEY"))
        parts.append(_sigs_rr(bs.zone, b.sync_ttl, b.cdnskey_signatures))
        parts.extend(f"{bs.zone.to_text()} {b.sync_ttl} IN CDS {d.rdata_text()}\n" for d in b.cds)
        parts.append(_sigs_rr(bs.zone, b.sync_ttl, b.cds_signatures))
    parts.append(f";; {SKR_TAG} {VERSION} generated by {GENERATOR}\n")
    return "".join(parts)


def write_text(path: str | Path, text: str) -> str:
    """Write atomically (nothing partial on failure); return the SHA-256 hex of the bytes."""
    from signer.fileio import write_atomic

    return write_atomic(Path(path), text.encode("ascii"))
