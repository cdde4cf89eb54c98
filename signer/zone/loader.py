"""Fast streaming RFC 1035 master-file loader into :class:`signer.zone.model.Zone`.

Syntax: ``$ORIGIN``, ``$TTL``, ``$INCLUDE file [origin]``, parentheses across lines, ``;``
comments, quoted strings, ``\\DDD`` and ``\\X`` escapes, relative names, ``@``, omitted owner
(leading blank), omitted TTL and class (in either order), ``TYPEnnn`` and RFC 3597 ``\\# len
hex`` generic RDATA.  Common registry types (A, AAAA, NS, CNAME, PTR, DNAME, MX, SRV, SOA,
TXT, DS) are converted to canonical wire by hand; every other type goes through dnspython's
RDATA parser (``dns.rdata.from_text(...).to_digestable()``).

Checks made here, while the line number is known (each an :class:`InputError` naming
``file:line``): syntax, data outside the zone, classes other than IN, types the unsigned input
must not contain (DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM -- unless ``allow_dnssec``), a CNAME
beside other data, and **a TTL differing inside one RRset** (refused, not normalised: a
registry build that emits two TTLs for one RRset has a bug the signer must not hide).
"""

from __future__ import annotations

import binascii
import io
import os
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Final, NoReturn, cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from signer.errors import InputError
from signer.rrsig import canonical_rdata
from signer.zone import _accel
from signer.zone.model import (
    T_A,
    T_AAAA,
    T_CNAME,
    T_DNAME,
    T_DNSKEY,
    T_DS,
    T_MX,
    T_NS,
    T_NSEC,
    T_NSEC3,
    T_NSEC3PARAM,
    T_PTR,
    T_RRSIG,
    T_SOA,
    T_SRV,
    T_TXT,
    RRset,
    Zone,
    is_subdomain,
    name_from_text,
    name_to_text,
)

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

DNSSEC_TYPES: Final = frozenset({T_DNSKEY, T_RRSIG, T_NSEC, T_NSEC3, T_NSEC3PARAM})
_CLASSES: Final = {"IN": True, "CLASS1": True, "CH": False, "HS": False, "CS": False, "ANY": False}
_TTL_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_INCLUDE_DEPTH: Final = 16
_NAME_TYPES: Final = frozenset({T_NS, T_CNAME, T_PTR, T_DNAME})
_TOKEN_CACHE: Final = 1000  # bound of each fast-path token table

_type_cache: Final[dict[str, int]] = {}


def _rtype(tok: str) -> int | None:
    t = _type_cache.get(tok)
    if t is not None:
        return t
    up = tok.upper()
    try:
        v = int(dns.rdatatype.from_text(up))
    except (dns.rdatatype.UnknownRdatatype, ValueError):
        return None
    _type_cache[tok] = v
    return v


def _tname(rtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rtype))


def parse_ttl(tok: str, path: str, line: int) -> int:
    if tok.isdigit():
        v = int(tok)
    else:
        v = 0
        num = ""
        for c in tok.lower():
            if c.isdigit():
                num += c
            elif c in _TTL_UNITS and num:
                v += int(num) * _TTL_UNITS[c]
                num = ""
            else:
                raise InputError(f"bad TTL {tok!r}", path=path, line=line)
        if num:
            v += int(num)
    if v > 0x7FFFFFFF:
        raise InputError(f"TTL {tok} exceeds 2^31-1 (RFC 2181 sect. 8)", path=path, line=line)
    return v


def _u(tok: str, bits: int, what: str, path: str, line: int) -> int:
    if not tok.isdigit():
        raise InputError(f"{what}: {tok!r} is not a number", path=path, line=line)
    v = int(tok)
    if v >= 1 << bits:
        raise InputError(f"{what}: {v} does not fit in {bits} bits", path=path, line=line)
    return v


def _charstring(tok: str, path: str, line: int) -> bytes:
    if tok.startswith('"'):
        tok = tok[1:-1]
    if "\\" in tok:
        out = bytearray()
        i = 0
        n = len(tok)
        while i < n:
            c = tok[i]
            if c == "\\" and i + 1 < n:
                d = tok[i + 1]
                if d.isdigit():
                    digits = tok[i + 1 : i + 4]
                    if len(digits) != 3 or not digits.isdigit() or int(digits) > 255:
                        raise InputError(f"bad \\DDD escape in {tok!r}", path=path, line=line)
                    out.append(int(digits))
                    i += 4
                    continue
                out += d.encode()
                i += 2
                continue
            out += c.encode()
            i += 1
        raw = bytes(out)
    else:
        raw = tok.encode()
    if len(raw) > 255:
        raise InputError("character-string longer than 255 octets", path=path, line=line)
    return bytes((len(raw),)) + raw


# The loader's scratch form of a zone: owner -> [[rtype, ttl, list of RDATA wire, loc], ...]
# where loc = (index into the loader's file table << 32) | line of the RRset's first record.
Scratch = dict[bytes, list[list[object]]]


class _Range(io.RawIOBase):
    """The ``size`` bytes of ``raw`` from its current position on, as a readable raw stream."""

    def __init__(self, raw: io.FileIO, size: int) -> None:
        super().__init__()
        self._raw = raw
        self._left = max(size, 0)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self._left)
        if n <= 0:
            return 0
        got = self._raw.readinto(memoryview(buf)[:n])
        self._left -= got
        return got


class _Loader:
    def __init__(
        self,
        origin: bytes,
        allow_dnssec: bool,
        default_ttl: int | None,
        *,
        speculative: bool = False,
    ) -> None:
        self.origin = origin
        self.allow_dnssec = allow_dnssec
        self.default_ttl = default_ttl
        # speculative: loading a byte range that starts after the beginning of the file; a
        # record that would take "the last explicit TTL" of an earlier range sets
        # needs_previous_ttl instead of failing.  open_paren: a range ended inside parentheses.
        self.speculative = speculative
        self.needs_previous_ttl = False
        self.open_paren = False
        self.nodes: Scratch = {}
        self.records = 0
        self.last_ttl: int | None = None
        self.paths: list[str] = []
        self.name_cache: dict[tuple[str, bytes, bool], bytes] = {}  # NS/CNAME/... targets repeat
        self.ttls: dict[int, int] = {}
        # tokens the general record path accepted as a TTL / class IN / type, for the fast path
        self.ttl_tokens: dict[str, int] = {}
        self.class_tokens: set[str] = set()
        self.type_tokens: dict[str, int] = {}
        self.abs_targets: dict[str, bytes] = {}  # absolute NS/CNAME/... target text -> wire

    # -- tokenising ----------------------------------------------------------------------

    def _entries(
        self, lines: Iterable[str], path: str, first_line: int, *, partial: bool = False
    ) -> Iterator[tuple[int, bool, list[str]]]:
        """Yield (line, owner_omitted, tokens) for each logical entry of ``lines`` (decoded
        lines of ``path``, the first one being line ``first_line``).  ``partial``: the lines
        are a range that stops before the end of the file, so ending inside parentheses sets
        :attr:`open_paren` instead of failing."""
        lineno = first_line - 1
        toks: list[str] = []
        depth = 0
        start_line = 0
        blank_start = False
        for raw in lines:
            lineno += 1
            if depth == 0:
                if (
                    '"' not in raw
                    and "\\" not in raw
                    and "(" not in raw
                    and ";" not in raw
                    and ")" not in raw
                ):
                    parts = raw.split()
                    if parts:
                        yield lineno, raw[0] in " \t", parts
                    continue
                toks = []
                start_line = lineno
                blank_start = raw[:1] in (" ", "\t")
            depth = self._scan(raw, toks, depth, path, lineno)
            if depth == 0 and toks:
                yield start_line, blank_start, toks
                toks = []
        if depth:
            if partial:
                self.open_paren = True
                return
            raise InputError("unbalanced parenthesis: '(' never closed", path=path, line=start_line)

    @staticmethod
    def _scan(raw: str, toks: list[str], depth: int, path: str, lineno: int) -> int:
        i = 0
        n = len(raw)
        cur: list[str] = []
        while i < n:
            c = raw[i]
            if c == "\\":
                cur.append(raw[i : i + 2])
                i += 2
                continue
            if c == '"':
                j = i + 1
                while j < n and raw[j] != '"':
                    j += 2 if raw[j] == "\\" else 1
                if j >= n:
                    raise InputError("unterminated quoted string", path=path, line=lineno)
                cur.append(raw[i : j + 1])
                i = j + 1
                continue
            if c in " \t\r\n;()":
                if cur:
                    toks.append("".join(cur))
                    cur = []
                if c == ";":
                    break
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth < 0:
                        raise InputError(
                            "unbalanced parenthesis: ')' without '('", path=path, line=lineno
                        )
            else:
                cur.append(c)
            i += 1
        if cur:
            toks.append("".join(cur))
        return depth

    # -- records -------------------------------------------------------------------------

    def load_file(self, path: str, origin: bytes, depth: int) -> bytes:
        """Load all of ``path`` (a zone file or an ``$INCLUDE``); returns the final $ORIGIN."""
        try:
            fh = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot read zone file: {exc.strerror}", path=path) from None
        with fh:
            return self._load_lines(fh, path, origin, depth, 1, partial=False)

    def load_range(self, path: str, start: int, end: int, first_line: int, origin: bytes) -> bytes:
        """Load the lines of ``path`` that start in the byte range [start, end) (``start`` is
        the start of line ``first_line``), beginning with $ORIGIN ``origin`` and $TTL
        :attr:`default_ttl`; the lines are streamed, never held at once.  Returns the $ORIGIN
        after the range (the $TTL is then :attr:`default_ttl`).  A range that stops before
        the end of the file may end inside parentheses (:attr:`open_paren`)."""
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot read zone file: {exc.strerror}", path=path) from None
        with raw:
            partial = end < os.fstat(raw.fileno()).st_size
            raw.seek(start)
            buffered = io.BufferedReader(_Range(raw, end - start), 1 << 16)
            with io.TextIOWrapper(buffered, encoding="utf-8", errors="surrogateescape") as fh:
                return self._load_lines(fh, path, origin, 0, first_line, partial=partial)

    def _load_lines(
        self,
        lines: Iterable[str],
        path: str,
        origin: bytes,
        depth: int,
        first_line: int,
        *,
        partial: bool,
    ) -> bytes:
        self.paths.append(path)
        self.file_index = len(self.paths) - 1
        loc_file = self.file_index << 32
        cur_origin = origin
        origin_inside = is_subdomain(cur_origin, self.origin)  # relative owners are inside
        owner: bytes | None = None
        owner_inside = False
        owner_text = ""  # the owner's text as written: consecutive records repeat it
        owner_origin = cur_origin
        ttl_default = self.default_ttl
        nodes = self.nodes
        ttl_tokens = self.ttl_tokens
        class_tokens = self.class_tokens
        type_tokens = self.type_tokens
        targets = self.abs_targets
        records = 0
        for line, omitted, toks in self._entries(lines, path, first_line, partial=partial):
            n = len(toks)
            # Fast path: "[owner] [ttl] [class] type rdata..." whose TTL, class and type tokens
            # are ones the general path below already accepted in that role (so it would take
            # them the same way); side-effect free until the shape is known.
            j = 0 if omitted else 1 if toks[0][0] != "$" else n
            if n > j + 1:
                ttl = ttl_tokens.get(toks[j])
                if ttl is not None:
                    j += 1
                if toks[j] in class_tokens:
                    j += 1
                rtype = type_tokens.get(toks[j]) if j < n else None
                if (
                    rtype is not None
                    and n > j + 1
                    and (ttl is not None or ttl_default is not None)
                    and (owner is not None or not omitted)
                ):
                    if not omitted:
                        first = toks[0]
                        if first != owner_text or cur_origin is not owner_origin:
                            owner, owner_inside = self._owner(
                                first, cur_origin, origin_inside, path, line
                            )
                            owner_text = first
                            owner_origin = cur_origin
                    assert owner is not None
                    if not owner_inside:
                        self._outside(owner, path, line)
                    rd0 = toks[j + 1]
                    if rtype in _NAME_TYPES and n == j + 2 and rd0 != "\\#":
                        wire = targets.get(rd0)
                        if wire is None:
                            wire = self._target(rd0, cur_origin, path, line)
                    else:
                        wire = self._rdata(rtype, toks[j + 1 :], cur_origin, path, line)
                    if ttl is None:
                        ttl = ttl_default
                    else:
                        self.last_ttl = ttl
                    records += 1
                    node = nodes.get(owner)
                    if node is None:
                        nodes[owner] = [[rtype, ttl, [wire], loc_file | line]]
                        continue
                    ent = node[-1]
                    if ent[0] == rtype and ent[1] == ttl:
                        ent[2].append(wire)  # type: ignore[attr-defined]
                        continue
                    lst = join_rrset(node, owner, rtype, cast(int, ttl), self.paths, path, line)
                    if lst is None:
                        node.append([rtype, ttl, [wire], loc_file | line])
                    else:
                        lst.append(wire)
                    continue
            first = toks[0]
            if first[0] == "$" and not omitted:
                d = first.upper()
                if d == "$ORIGIN":
                    if len(toks) != 2:
                        raise InputError("$ORIGIN takes one name", path=path, line=line)
                    cur_origin = name_from_text(toks[1], cur_origin, path=path, line=line)
                    origin_inside = is_subdomain(cur_origin, self.origin)
                    continue
                if d == "$TTL":
                    if len(toks) != 2:
                        raise InputError("$TTL takes one value", path=path, line=line)
                    ttl_default = parse_ttl(toks[1], path, line)
                    self.default_ttl = ttl_default
                    continue
                if d == "$INCLUDE":
                    if len(toks) not in (2, 3):
                        raise InputError(
                            "$INCLUDE takes a file name and an optional origin",
                            path=path,
                            line=line,
                        )
                    if depth >= _MAX_INCLUDE_DEPTH:
                        raise InputError("$INCLUDE nested too deeply", path=path, line=line)
                    inc = toks[1].strip('"')
                    inc_path = inc if os.path.isabs(inc) else str(Path(path).parent / inc)
                    if not os.path.exists(inc_path):
                        raise InputError(f"$INCLUDE {inc}: no such file", path=path, line=line)
                    inc_origin = (
                        name_from_text(toks[2], cur_origin, path=path, line=line)
                        if len(toks) == 3
                        else cur_origin
                    )
                    here = self.file_index
                    self.load_file(inc_path, inc_origin, depth + 1)
                    self.file_index = here
                    ttl_default = self.default_ttl
                    continue
                raise InputError(f"unsupported directive {first}", path=path, line=line)
            i = 0
            if omitted:
                if owner is None:
                    raise InputError(
                        "record without an owner name and no previous owner", path=path, line=line
                    )
            else:
                if first != owner_text or cur_origin is not owner_origin:
                    owner, owner_inside = self._owner(first, cur_origin, origin_inside, path, line)
                    owner_text = first
                    owner_origin = cur_origin
                i = 1
            ttl = None
            rtype = None
            while i < n:
                tok = toks[i]
                c0 = tok[0]
                if c0.isdigit():
                    if ttl is not None:
                        raise InputError(f"two TTLs ({tok!r})", path=path, line=line)
                    ttl = parse_ttl(tok, path, line)
                    if len(ttl_tokens) < _TOKEN_CACHE:
                        ttl = ttl_tokens[tok] = self.ttls.setdefault(ttl, ttl)
                    i += 1
                    continue
                up = tok.upper()
                if up in _CLASSES:
                    if not _CLASSES[up]:
                        raise InputError(
                            f"class {up} not supported (only IN)", path=path, line=line
                        )
                    if len(class_tokens) < _TOKEN_CACHE:
                        class_tokens.add(tok)
                    i += 1
                    continue
                if up.startswith("CLASS") and up[5:].isdigit():
                    raise InputError(f"class {up} not supported (only IN)", path=path, line=line)
                rtype = _rtype(tok)
                if rtype is None:
                    raise InputError(f"unknown RR type {tok!r}", path=path, line=line)
                if len(type_tokens) < _TOKEN_CACHE and (
                    self.allow_dnssec or rtype not in DNSSEC_TYPES
                ):
                    type_tokens[tok] = rtype
                i += 1
                break
            if rtype is None:
                raise InputError("record without a type", path=path, line=line)
            assert owner is not None  # set above: omitted owners need a previous one
            self._add(
                owner, owner_inside, rtype, ttl, toks[i:], cur_origin, ttl_default, path, line
            )
        self.records += records
        return cur_origin

    def _owner(
        self, text: str, origin: bytes, origin_inside: bool, path: str, line: int
    ) -> tuple[bytes, bool]:
        """The owner name ``text`` (relative to ``origin``) and whether it is inside the zone
        (``origin_inside``: whether ``origin`` is).  A relative name is below its origin."""
        if (
            "." not in text
            and "\\" not in text
            and text != "@"
            and len(text) < 64
            and text.isascii()
        ):
            # one plain label: what name_from_text makes of it, without the general path
            wire = (chr(len(text)) + text.lower()).encode("ascii") + origin
            if len(wire) <= 255:
                return wire, origin_inside
        owner = self.name(text, origin, path, line, store=False)
        if text[-1] != ".":  # relative (or "@"): the name ends in its origin
            return owner, origin_inside
        return owner, is_subdomain(owner, self.origin)

    def _outside(self, owner: bytes, path: str, line: int) -> NoReturn:
        raise InputError(
            f"{name_to_text(owner)} is outside the zone {name_to_text(self.origin)}",
            path=path,
            line=line,
        )

    def _add(
        self,
        owner: bytes,
        inside: bool,
        rtype: int,
        ttl: int | None,
        rd: list[str],
        origin: bytes,
        ttl_default: int | None,
        path: str,
        line: int,
    ) -> None:
        if not inside:
            self._outside(owner, path, line)
        if rtype in DNSSEC_TYPES and not self.allow_dnssec:
            raise InputError(
                f"{_tname(rtype)} record at {name_to_text(owner)} in the unsigned "
                "input: DNSKEY comes only from the key bundles, and RRSIG/NSEC/NSEC3/NSEC3PARAM "
                "are generated by the signer",
                path=path,
                line=line,
            )
        wire = self._rdata(rtype, rd, origin, path, line)
        if ttl is None:
            if ttl_default is not None:
                ttl = ttl_default
            elif self.last_ttl is not None:
                ttl = self.last_ttl
            elif self.speculative:
                # loading the whole file would take the last explicit TTL of an earlier range:
                # unknown here, so the caller must not use this result
                self.needs_previous_ttl = True
                ttl = struct.unpack("!I", wire[-4:])[0] if rtype == T_SOA else 0
            elif rtype == T_SOA:
                ttl = struct.unpack("!I", wire[-4:])[0]
            else:
                raise InputError("no TTL given and no $TTL before", path=path, line=line)
        else:
            ttl = self.ttls.setdefault(ttl, ttl)  # one int object per distinct TTL
            self.last_ttl = ttl
        self.records += 1
        node = self.nodes.get(owner)
        if node is None:
            self.nodes[owner] = [[rtype, ttl, [wire], (self.file_index << 32) | line]]
            return
        lst = join_rrset(node, owner, rtype, ttl, self.paths, path, line)
        if lst is None:
            node.append([rtype, ttl, [wire], (self.file_index << 32) | line])
        else:
            lst.append(wire)

    def name(
        self,
        text: str,
        origin: bytes,
        path: str,
        line: int,
        lower: bool = True,
        *,
        store: bool = True,
    ) -> bytes:
        """name_from_text with a cache: NS targets and RRSIG signer names repeat, and owners
        are NSEC next names of the node before and NS targets of glue.  Owners are looked up
        but not stored (``store=False``): an unsigned registry zone would otherwise keep one
        cache entry per owner (~20 MB per 100k delegations) that nothing reuses."""
        if not lower and text.islower():
            lower = True  # same wire either way
        key = (text, origin, lower)
        wire = self.name_cache.get(key)
        if wire is None:
            wire = name_from_text(text, origin, path=path, line=line, lower=lower)
            if store:
                if len(self.name_cache) >= 200_000:
                    self.name_cache.clear()
                self.name_cache[key] = wire
        return wire

    def _target(self, text: str, origin: bytes, path: str, line: int) -> bytes:
        """The NS/CNAME/PTR/DNAME target ``text``: an absolute name without escapes (its wire
        does not depend on ``origin``) is cached in :attr:`abs_targets`, keyed by its text."""
        if text[-1] != "." or "\\" in text:
            return self.name(text, origin, path, line)
        targets = self.abs_targets
        wire = targets.get(text)
        if wire is None:
            wire = name_from_text(text, None, path=path, line=line)
            if len(targets) >= 200_000:
                targets.clear()
            targets[text] = wire
        return wire

    # -- RDATA ---------------------------------------------------------------------------

    def _rdata(self, rtype: int, rd: list[str], origin: bytes, path: str, line: int) -> bytes:
        if not rd:
            raise InputError(f"{_tname(rtype)} record without RDATA", path=path, line=line)
        if rd[0] == "\\#":
            return self._fallback(rtype, rd, origin, path, line)
        if rtype in _NAME_TYPES:
            if len(rd) != 1:
                raise InputError(f"{_tname(rtype)} takes one name", path=path, line=line)
            return self._target(rd[0], origin, path, line)
        if rtype == T_A:
            parts = rd[0].split(".")
            if (
                len(rd) != 1
                or len(parts) != 4
                or not all(p.isdigit() and len(p) <= 3 for p in parts)
            ):
                raise InputError(f"bad IPv4 address {' '.join(rd)!r}", path=path, line=line)
            vals = [int(p) for p in parts]
            if max(vals) > 255:
                raise InputError(f"bad IPv4 address {rd[0]!r}", path=path, line=line)
            return bytes(vals)
        if rtype == T_AAAA:
            if len(rd) != 1:
                raise InputError("AAAA takes one address", path=path, line=line)
            try:
                return socket.inet_pton(socket.AF_INET6, rd[0])
            except OSError:
                raise InputError(f"bad IPv6 address {rd[0]!r}", path=path, line=line) from None
        if rtype == T_DS:
            if len(rd) < 4:
                raise InputError(
                    "DS takes key tag, algorithm, digest type, digest", path=path, line=line
                )
            tag = _u(rd[0], 16, "DS key tag", path, line)
            alg = _rtype_alg(rd[1], path, line)
            dt = _u(rd[2], 8, "DS digest type", path, line)
            try:
                digest = binascii.unhexlify("".join(rd[3:]))
            except (binascii.Error, ValueError):
                raise InputError("DS digest is not hexadecimal", path=path, line=line) from None
            want = {1: 20, 2: 32, 4: 48}.get(dt)
            if want is not None and len(digest) != want:
                raise InputError(
                    f"DS digest type {dt} needs {want} octets, got {len(digest)}",
                    path=path,
                    line=line,
                )
            return struct.pack("!HBB", tag, alg, dt) + digest
        if rtype == T_MX:
            if len(rd) != 2:
                raise InputError("MX takes a preference and a name", path=path, line=line)
            return struct.pack("!H", _u(rd[0], 16, "MX preference", path, line)) + (
                name_from_text(rd[1], origin, path=path, line=line)
            )
        if rtype == T_TXT:
            return b"".join(_charstring(t, path, line) for t in rd)
        if rtype == T_SRV:
            if len(rd) != 4:
                raise InputError("SRV takes priority, weight, port, target", path=path, line=line)
            return struct.pack(
                "!HHH",
                _u(rd[0], 16, "SRV priority", path, line),
                _u(rd[1], 16, "SRV weight", path, line),
                _u(rd[2], 16, "SRV port", path, line),
            ) + name_from_text(rd[3], origin, path=path, line=line)
        if rtype == T_SOA:
            if len(rd) != 7:
                raise InputError(
                    "SOA takes mname rname serial refresh retry expire minimum",
                    path=path,
                    line=line,
                )
            return (
                name_from_text(rd[0], origin, path=path, line=line)
                + name_from_text(rd[1], origin, path=path, line=line)
                + struct.pack(
                    "!IIIII",
                    _u(rd[2], 32, "SOA serial", path, line),
                    *(parse_ttl(t, path, line) for t in rd[3:7]),
                )
            )
        if rtype == T_RRSIG:
            if len(rd) < 9:
                raise InputError(
                    "RRSIG takes type, algorithm, labels, original TTL, expiration, inception, "
                    "key tag, signer, signature",
                    path=path,
                    line=line,
                )
            return _rrsig_rdata(rd, self.name(rd[7], origin, path, line), path, line)
        if rtype == T_NSEC:
            if not rd:
                raise InputError("NSEC takes a next name and types", path=path, line=line)
            # the next name keeps its case (RFC 6840 sect. 5.1)
            nxt = self.name(rd[0], origin, path, line, lower=False)
            return nxt + _bitmap_from_tokens(rd[1:], path, line)
        if rtype == T_NSEC3:
            return _nsec3_rdata(rd, path, line)
        if rtype == T_DNSKEY:
            if len(rd) < 4:
                raise InputError(
                    "DNSKEY takes flags, protocol, algorithm, key", path=path, line=line
                )
            return struct.pack(
                "!HBB",
                _u(rd[0], 16, "DNSKEY flags", path, line),
                _u(rd[1], 8, "DNSKEY protocol", path, line),
                _rtype_alg(rd[2], path, line),
            ) + _b64("".join(rd[3:]), "DNSKEY key", path, line)
        return self._fallback(rtype, rd, origin, path, line)

    def _fallback(self, rtype: int, rd: list[str], origin: bytes, path: str, line: int) -> bytes:
        try:
            o = dns.name.from_wire(origin, 0)[0]
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN,
                dns.rdatatype.RdataType.make(rtype),
                " ".join(rd),
                origin=o,
                relativize=False,
            )
            return canonical_rdata(rdata, o)
        except (dns.exception.DNSException, ValueError, binascii.Error, TypeError) as exc:
            msg = str(exc) or type(exc).__name__
            raise InputError(
                f"bad {_tname(rtype)} RDATA {' '.join(rd)!r}: {msg}",
                path=path,
                line=line,
            ) from None

    def zone(self) -> Zone:
        """The loaded :class:`Zone` (see :func:`scratch_zone`; the name cache is dropped
        first)."""
        self.name_cache = {}
        scratch = self.nodes
        self.nodes = {}
        return scratch_zone(self.origin, scratch)


def location(paths: Sequence[str], loc: object) -> str:
    """``file:line`` of a scratch ``loc`` given the file table it indexes."""
    assert isinstance(loc, int)
    return f"{paths[loc >> 32]}:{loc & 0xFFFFFFFF}"


def join_rrset(
    node: list[list[object]],
    owner: bytes,
    rtype: int,
    ttl: int,
    paths: Sequence[str],
    path: str,
    line: int,
) -> list[bytes] | None:
    """Where records of ``rtype`` (TTL ``ttl``, from ``path:line``) join the scratch ``node``
    of ``owner``: the RDATA list of its RRset of that type, or ``None`` when it has none yet
    (the caller appends a new entry).  Applies the rules between records (``paths`` renders
    the earlier record's place): one TTL per RRset (RFC 2181 sect. 5.2; RRSIG exempt, its
    TTLs follow what each covers) and a CNAME alone (RFC 1034 sect. 3.6.2)."""
    for ent in node:
        if ent[0] == rtype:
            if ent[1] != ttl and rtype != T_RRSIG:
                raise InputError(
                    f"TTL {ttl} differs from TTL {ent[1]} of the {_tname(rtype)} "
                    f"RRset at {name_to_text(owner)} ({location(paths, ent[3])}); one TTL per "
                    "RRset (RFC 2181 sect. 5.2)",
                    path=path,
                    line=line,
                )
            return cast(list[bytes], ent[2])
    types = [e[0] for e in node]
    if rtype == T_CNAME or T_CNAME in types:
        other = [int(t) for t in (*types, rtype) if t not in (T_CNAME, T_RRSIG, T_NSEC)]  # type: ignore[call-overload]
        if other:
            raise InputError(
                f"CNAME and other data at {name_to_text(owner)} "
                f"({', '.join(_tname(t) for t in other)}); a CNAME must be "
                "alone (RFC 1034 sect. 3.6.2)",
                path=path,
                line=line,
            )
    return None


def scratch_zone(origin: bytes, scratch: Scratch) -> Zone:
    """The :class:`Zone` (nodes only) of the loader's scratch form: each owner's RRsets sorted
    by type, RDATAs deduplicated and sorted.  Converts **in place** (``scratch`` becomes the
    zone's node dict; each owner's scratch lists are freed as soon as its RRsets exist), so
    peak memory is the larger of the two forms rather than their sum."""
    nodes = cast(dict[bytes, list[RRset]], scratch)  # same dict, values replaced below
    make = tuple.__new__  # RRset(...) without its Python-level __new__: the same tuple
    for owner, ents in scratch.items():
        if len(ents) > 1:
            ents.sort(key=_rtype_of)
        rrsets: list[RRset] = []
        lst: list[bytes]
        rdatas: tuple[bytes, ...]
        for rtype, ttl, lst, _ in ents:  # type: ignore[assignment]
            if len(lst) == 1:
                rdatas = (lst[0],)
            elif len(lst) == 2:
                a, b = lst
                rdatas = (a, b) if a < b else (b, a) if b < a else (a,)
            else:
                rdatas = tuple(sorted(set(lst)))
            rrsets.append(make(RRset, (owner, rtype, ttl, rdatas, ())))
        nodes[owner] = rrsets  # replaces the scratch list: same key, order kept
    return Zone(origin, nodes)


_rtype_of: Final = itemgetter(0)


def _b64(text: str, what: str, path: str, line: int) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is not base64", path=path, line=line) from None


_day_cache: Final[dict[str, int]] = {}


def _sigtime(tok: str, path: str, line: int) -> int:
    """RRSIG time field (RFC 4034 sect. 3.2): YYYYMMDDHHmmSS (UTC) or seconds since 1970."""
    if not tok.isdigit() or not tok.isascii():
        raise InputError(f"bad RRSIG time {tok!r}", path=path, line=line)
    if len(tok) <= 10:
        return _u(tok, 32, "RRSIG time", path, line)
    if len(tok) != 14:
        raise InputError(f"bad RRSIG time {tok!r}", path=path, line=line)
    day = _day_cache.get(tok[:8])
    if day is None:
        import calendar
        import datetime

        try:
            d = datetime.date(int(tok[:4]), int(tok[4:6]), int(tok[6:8]))
        except ValueError:
            raise InputError(f"bad RRSIG time {tok!r}", path=path, line=line) from None
        day = calendar.timegm(d.timetuple())
        _day_cache[tok[:8]] = day
    hh, mm, ss = int(tok[8:10]), int(tok[10:12]), int(tok[12:14])
    if hh > 23 or mm > 59 or ss > 59:
        raise InputError(f"bad RRSIG time {tok!r}", path=path, line=line)
    return (day + hh * 3600 + mm * 60 + ss) & 0xFFFFFFFF


def _type_of(tok: str, path: str, line: int) -> int:
    t = _rtype(tok)
    if t is None:
        raise InputError(f"unknown RR type {tok!r}", path=path, line=line)
    return t


_bitmap_cache: Final[dict[tuple[str, ...], bytes]] = {}


def _bitmap_from_tokens(toks: list[str], path: str, line: int) -> bytes:
    key = tuple(toks)
    bm = _bitmap_cache.get(key)
    if bm is None:
        from signer.zone.model import type_bitmap

        bm = type_bitmap([_type_of(t, path, line) for t in toks])
        if len(_bitmap_cache) < 10_000:
            _bitmap_cache[key] = bm
    return bm


def _rrsig_rdata(rd: list[str], signer: bytes, path: str, line: int) -> bytes:
    return (
        struct.pack(
            "!HBBIIIH",
            _type_of(rd[0], path, line),
            _rtype_alg(rd[1], path, line),
            _u(rd[2], 8, "RRSIG labels", path, line),
            _u(rd[3], 32, "RRSIG original TTL", path, line),
            _sigtime(rd[4], path, line),
            _sigtime(rd[5], path, line),
            _u(rd[6], 16, "RRSIG key tag", path, line),
        )
        + signer
        + _b64("".join(rd[8:]), "RRSIG signature", path, line)
    )


def _nsec3_rdata(rd: list[str], path: str, line: int) -> bytes:
    if len(rd) < 5:
        raise InputError(
            "NSEC3 takes algorithm, flags, iterations, salt, next hash, types",
            path=path,
            line=line,
        )
    if rd[3] == "-":
        salt = b""
    else:
        try:
            salt = binascii.unhexlify(rd[3])
        except (binascii.Error, ValueError):
            raise InputError("NSEC3 salt is not hexadecimal", path=path, line=line) from None
    from signer.zone.nsec3 import b32hex_decode

    try:
        nxt = b32hex_decode(rd[4])
    except ValueError:
        raise InputError("NSEC3 next hash is not base32hex", path=path, line=line) from None
    if len(salt) > 255 or not 0 < len(nxt) < 256:
        raise InputError("NSEC3 salt or next hash too long", path=path, line=line)
    return (
        struct.pack(
            "!BBHB",
            _u(rd[0], 8, "NSEC3 algorithm", path, line),
            _u(rd[1], 8, "NSEC3 flags", path, line),
            _u(rd[2], 16, "NSEC3 iterations", path, line),
            len(salt),
        )
        + salt
        + bytes((len(nxt),))
        + nxt
        + _bitmap_from_tokens(rd[5:], path, line)
    )


def _rtype_alg(tok: str, path: str, line: int) -> int:
    if tok.isdigit():
        return _u(tok, 8, "algorithm", path, line)
    import dns.dnssectypes

    try:
        return int(dns.dnssectypes.Algorithm.from_text(tok.upper()))
    except (ValueError, dns.exception.DNSException):
        raise InputError(f"unknown DNSSEC algorithm {tok!r}", path=path, line=line) from None


def load_zone(
    path: str | os.PathLike[str],
    origin: str | bytes,
    *,
    allow_dnssec: bool = False,
    default_ttl: int | None = None,
) -> Zone:
    """Load a master file for zone ``origin`` into a :class:`Zone` (nodes unsorted).

    ``allow_dnssec`` accepts DNSSEC types (to read back a *signed* zone, e.g. ``--previous``).
    """
    o = origin if isinstance(origin, bytes) else name_from_text(origin.rstrip(".") + ".", None)
    ld = _Loader(o, allow_dnssec, default_ttl)
    ld.load_file(str(path), o, 0)
    return ld.zone()
