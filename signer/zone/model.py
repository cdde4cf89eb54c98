"""In-memory zone representation shared by the loader, the signer and the verifier.

Everything is **wire-format bytes** and small tuples: there is no per-record object.

Names
-----
A *name* is its uncompressed DNS wire form, **lowercased** (canonical form, RFC 4034 sect. 6.2),
absolute, ending in the root label ``b"\\x00"``: ``b"\\x03www\\x07example\\x00"``.  The root is
``b"\\x00"``.  Helpers:

* :func:`name_from_text` / :func:`name_to_text` -- presentation <-> wire (``\\DDD``/``\\X``
  escapes; output escapes what RFC 1035 requires);
* :func:`labels` -- list of labels without the root label;
* :func:`canonical_key` -- a ``bytes`` sort key: sorting names by it gives DNSSEC canonical
  order (RFC 4034 sect. 6.1: label by label from the right, each label compared as an octet
  string, a shorter label first).  Keys of the same name are equal;
* :func:`is_subdomain` -- ``a`` equal to or below ``b``;
* :func:`label_count` -- the RRSIG *Labels* field (no root, no leading ``*``).

RRsets
------
:class:`RRset` is a ``NamedTuple`` ``(owner, rtype, ttl, rdatas, sigs)``:

* ``owner``  -- name (canonical wire, see above);
* ``rtype``  -- integer RR type (class is always IN);
* ``ttl``    -- one TTL for the RRset (the loader enforces it);
* ``rdatas`` -- tuple of **canonical** RDATA wire bytes (embedded names lowercased for the
  types RFC 4034 sect. 6.2 / RFC 6840 sect. 5.1 list), duplicates removed, **sorted** by
  bytes -- i.e. already in the order RRSIG signing data needs;
* ``sigs``   -- tuple of RRSIG RDATA wire bytes covering this RRset (``()`` when unsigned).
  Each is the full RDATA: 18-byte header ``!HBBIIIH`` (type covered, algorithm, labels,
  original TTL, expiration, inception, key tag), the signer name (canonical wire), then the
  signature.  :func:`rrsig_fields` splits one.

Zone (unsigned, and signed)
---------------------------
:class:`Zone` holds one zone:

* ``origin`` -- the apex name (wire);
* ``nodes``  -- ``dict[name, list[RRset]]``: every owner that has data, RRsets sorted by type.
  In a *signed* zone it also holds the generated NSEC or NSEC3 RRsets (NSEC3 at their hashed
  owner names ``<base32hex>.<origin>``), the DNSKEY/CDS/CDNSKEY RRsets from the bundle, and
  every RRset's ``sigs``;
* ``order``  -- list of the names of ``nodes`` in canonical order (:meth:`Zone.sort` builds it;
  empty until then);
* ``kinds``  -- ``dict[name, int]``, one of the ``KIND_*`` constants below for every node:

  - ``KIND_APEX``       -- the zone apex;
  - ``KIND_AUTH``       -- authoritative data (signed; in the NSEC/NSEC3 chain);
  - ``KIND_DELEGATION`` -- a zone cut (NS, not the apex): NS and glue are not signed; DS (and
    NSEC at the cut) is signed; in the NSEC3 chain unless opted out (insecure delegation
    with opt-out);
  - ``KIND_OCCLUDED``   -- below a delegation (glue or occluded data): never signed and
    never in any chain;
  - ``KIND_NSEC3``      -- a hashed NSEC3 owner (signed zone only).

* ``file_names`` -- ``dict[name, str]``: where a node came from (``"path:line"``, first
  occurrence), for messages; may be empty;
* ``signed`` metadata (present in a signed zone, else ``None``): :class:`SignedInfo` with the
  denial mode (``"nsec"`` or ``"nsec3"``), NSEC3 parameters, the ZSK key tag, bundle id, and the
  inception/expiration range actually used.

Empty non-terminals have no node (they own no RRset); in an NSEC3 zone their NSEC3 records
exist at hashed names and :attr:`SignedInfo.ents` lists the ENT names that got one.

The SOA is ``zone.soa()`` (an :class:`RRset`); :func:`soa_fields` decodes serial/minimum.

Example (all canonical)::

    z.origin                  == b"\\x07example\\x00"
    z.order[:2]               == [b"\\x07example\\x00", b"\\x01a\\x07example\\x00"]
    z.nodes[b"\\x01a\\x07example\\x00"] == [RRset(owner=..., rtype=1, ttl=3600,
                                                rdatas=(b"\\xc0\\x00\\x02\\x01",), sigs=(b"...",))]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from signer.errors import InputError
from signer.zone import _accel

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

# RR types the signer treats specially
T_A: Final = 1
T_NS: Final = 2
T_CNAME: Final = 5
T_SOA: Final = 6
T_PTR: Final = 12
T_MX: Final = 15
T_TXT: Final = 16
T_AAAA: Final = 28
T_SRV: Final = 33
T_DNAME: Final = 39
T_DS: Final = 43
T_RRSIG: Final = 46
T_NSEC: Final = 47
T_DNSKEY: Final = 48
T_NSEC3: Final = 50
T_NSEC3PARAM: Final = 51
T_CDS: Final = 59
T_CDNSKEY: Final = 60
T_CAA: Final = 257

CLASS_IN: Final = 1

KIND_APEX: Final = 0
KIND_AUTH: Final = 1
KIND_DELEGATION: Final = 2
KIND_OCCLUDED: Final = 3
KIND_NSEC3: Final = 4

ROOT: Final = b"\x00"


class RRset(NamedTuple):
    owner: bytes
    rtype: int
    ttl: int
    rdatas: tuple[bytes, ...]
    sigs: tuple[bytes, ...] = ()


@_accel.mypyc_attr(native_class=False)  # picklable: see _accel
@dataclass(frozen=True)
class SignedInfo:
    denial: str  # "nsec" or "nsec3"
    zsk_tag: int
    zsk_algorithm: int
    bundle_id: str
    inception: int
    min_expiration: int
    max_expiration: int
    nsec3_iterations: int = 0
    nsec3_salt: bytes = b""
    nsec3_optout: bool = False
    ents: tuple[bytes, ...] = ()


@dataclass
class Zone:
    origin: bytes
    nodes: dict[bytes, list[RRset]] = field(default_factory=dict)
    order: list[bytes] = field(default_factory=list)
    kinds: dict[bytes, int] = field(default_factory=dict)
    file_names: dict[bytes, str] = field(default_factory=dict)
    signed: SignedInfo | None = None

    def sort(self) -> None:
        """Fill :attr:`order` with the node names in canonical order."""
        self.order = sorted(self.nodes, key=canonical_key)

    def get(self, owner: bytes, rtype: int) -> RRset | None:
        for rs in self.nodes.get(owner, ()):
            if rs.rtype == rtype:
                return rs
        return None

    def soa(self) -> RRset:
        rs = self.get(self.origin, T_SOA)
        if rs is None:
            raise InputError(f"zone {name_to_text(self.origin)} has no SOA at the apex")
        return rs

    def rrset_count(self) -> int:
        return sum(len(v) for v in self.nodes.values())

    def record_count(self) -> int:
        return sum(len(rs.rdatas) for v in self.nodes.values() for rs in v)


# -- names ---------------------------------------------------------------------------------


def labels(name: bytes) -> list[bytes]:
    """The labels of a wire name, leftmost first, without the root label."""
    out = []
    i = 0
    n = name[0]
    while n:
        out.append(name[i + 1 : i + 1 + n])
        i += 1 + n
        n = name[i]
    return out


def from_labels(parts: list[bytes] | tuple[bytes, ...]) -> bytes:
    return b"".join(bytes((len(p),)) + p for p in parts) + b"\x00"


def canonical_key(name: bytes) -> bytes:
    """Sort key for DNSSEC canonical order (RFC 4034 sect. 6.1); ``name`` lowercased wire.

    Labels are taken right to left; a ``\\x00`` inside a label becomes ``\\x00\\xff`` and each
    label ends in ``\\x00\\x00``, so bytes comparison of keys is label-wise comparison with a
    shorter label first.
    """
    i = name[0] + 1
    if i > 1 and name.find(b"\x00", 1, -1) < 0:
        # one to three labels, none holding a \x00 (most names): spelled out
        m = name[i]
        if not m:
            return name[1:i] + b"\x00\x00"
        j = i + 1 + m
        m = name[j]
        if not m:
            return name[i + 1 : j] + b"\x00\x00" + name[1:i] + b"\x00\x00"
        k = j + 1 + m
        if not name[k]:
            return (
                name[j + 1 : k]
                + b"\x00\x00"
                + name[i + 1 : j]
                + b"\x00\x00"
                + name[1:i]
                + b"\x00\x00"
            )
    parts = []
    i = 0
    n = name[0]
    while n:
        j = i + 1 + n
        parts.append(name[i + 1 : j])
        i = j
        n = name[i]
    parts.reverse()
    if name.find(b"\x00", 1, -1) >= 0:
        return b"".join(p.replace(b"\x00", b"\x00\xff") + b"\x00\x00" for p in parts)
    return b"\x00\x00".join(parts) + b"\x00\x00" if parts else b""


def label_count(name: bytes) -> int:
    """RRSIG Labels field: labels without the root and without a leading ``*``."""
    count = 0
    i = 0
    n = name[0]
    while n:
        count += 1
        i += 1 + n
        n = name[i]
    if name.startswith(b"\x01*"):
        count -= 1
    return count


def is_subdomain(name: bytes, parent: bytes) -> bool:
    """``name`` equal to or below ``parent`` (both canonical wire)."""
    if not name.endswith(parent):
        return False
    if len(name) == len(parent):
        return True
    # check the suffix starts on a label boundary
    cut = len(name) - len(parent)
    i = 0
    while i < cut:
        i += 1 + name[i]
    return i == cut


def parent_of(name: bytes) -> bytes:
    return name[1 + name[0] :]


_ESCAPE_IN_LABEL: Final = frozenset(b'.\\"();@$ ')


_SAFE_OCTETS: Final = bytes(c for c in range(0x21, 0x7F) if c not in _ESCAPE_IN_LABEL)


def name_to_text(name: bytes) -> str:
    """Presentation form with a trailing dot; escapes as RFC 1035 / RFC 4343."""
    if name == ROOT:
        return "."
    out = []
    i = 0
    n = name[0]
    while n:
        lab = name[i + 1 : i + 1 + n]
        i += 1 + n
        n = name[i]
        if not lab.translate(None, _SAFE_OCTETS):
            out.append(lab.decode("ascii"))
            continue
        s = []
        for c in lab:
            if c in _ESCAPE_IN_LABEL:
                s.append("\\" + chr(c))
            elif 0x21 <= c <= 0x7E:
                s.append(chr(c))
            else:
                s.append(f"\\{c:03d}")
        out.append("".join(s))
    return ".".join(out) + "."


def _unescape_label(text: str, where: tuple[str | None, int | None]) -> bytes:
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                raise InputError("name ends in a lone backslash", path=where[0], line=where[1])
            d = text[i + 1]
            if d.isdigit():
                digits = text[i + 1 : i + 4]
                if len(digits) != 3 or not digits.isdigit() or int(digits) > 255:
                    raise InputError(
                        f"bad \\DDD escape in name {text!r}", path=where[0], line=where[1]
                    )
                out.append(int(digits))
                i += 4
                continue
            out += d.encode("utf-8")
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def _split_labels(text: str) -> list[str]:
    """Split at unescaped dots."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def name_from_text(
    text: str,
    origin: bytes | None,
    *,
    path: str | None = None,
    line: int | None = None,
    lower: bool = True,
) -> bytes:
    """Presentation -> canonical wire. Relative names are completed with ``origin``; ``@`` is
    the origin. ``lower=False`` keeps the case (for RDATA types that are not canonicalised)."""
    if text == "@":
        if origin is None:
            raise InputError("'@' used but no $ORIGIN is known", path=path, line=line)
        return origin
    if text == ".":
        return ROOT
    if lower and "\\" not in text and text.isascii():
        # fast path: plain ASCII name
        if text[-1] == ".":
            parts = text[:-1].lower().split(".")
            tail = b"\x00"
        else:
            if origin is None:
                raise InputError(f"relative name {text!r} but no $ORIGIN", path=path, line=line)
            parts = text.lower().split(".")
            tail = origin
        for lab in parts:
            if not 0 < len(lab) < 64:
                break
        else:
            w = "".join([chr(len(lab)) + lab for lab in parts]).encode("ascii") + tail
            if len(w) > 255:
                raise InputError(f"name {text!r} longer than 255 octets", path=path, line=line)
            return w
    if "\\" not in text:
        absolute = text.endswith(".")
        body = text[:-1] if absolute else text
        raw_parts = body.split(".")
        try:
            bparts = [p.encode("ascii") for p in raw_parts]
        except UnicodeEncodeError:
            bparts = [p.encode("utf-8") for p in raw_parts]
    else:
        sp = _split_labels(text)
        absolute = sp[-1] == "" and len(sp) > 1
        if absolute:
            sp = sp[:-1]
        bparts = [_unescape_label(p, (path, line)) for p in sp]
    wire = bytearray()
    for p in bparts:
        if not p:
            raise InputError(f"empty label in name {text!r}", path=path, line=line)
        if len(p) > 63:
            raise InputError(f"label longer than 63 octets in {text!r}", path=path, line=line)
        wire.append(len(p))
        wire += p.lower() if lower else p
    if absolute:
        wire.append(0)
    else:
        if origin is None:
            raise InputError(f"relative name {text!r} but no $ORIGIN", path=path, line=line)
        wire += origin
    if len(wire) > 255:
        raise InputError(f"name {text!r} longer than 255 octets", path=path, line=line)
    return bytes(wire)


# -- record helpers ------------------------------------------------------------------------


class RrsigFields(NamedTuple):
    type_covered: int
    algorithm: int
    labels: int
    original_ttl: int
    expiration: int
    inception: int
    key_tag: int
    signer: bytes
    signature: bytes


_RRSIG_HEAD: Final = struct.Struct("!HBBIIIH")


def rrsig_fields(rdata: bytes) -> RrsigFields:
    """Split RRSIG RDATA wire bytes (the signer name is uncompressed, as we store it)."""
    tc, alg, lab, ottl, exp, inc, tag = _RRSIG_HEAD.unpack_from(rdata, 0)
    i = 18
    while rdata[i]:
        i += 1 + rdata[i]
    i += 1
    return RrsigFields(tc, alg, lab, ottl, exp, inc, tag, rdata[18:i], rdata[i:])


class SoaFields(NamedTuple):
    mname: bytes
    rname: bytes
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


def soa_fields(rdata: bytes) -> SoaFields:
    i = 0
    while rdata[i]:
        i += 1 + rdata[i]
    m_end = i + 1
    i = m_end
    while rdata[i]:
        i += 1 + rdata[i]
    r_end = i + 1
    serial, refresh, retry, expire, minimum = struct.unpack_from("!IIIII", rdata, r_end)
    return SoaFields(rdata[:m_end], rdata[m_end:r_end], serial, refresh, retry, expire, minimum)


def soa_with_serial(rdata: bytes, serial: int) -> bytes:
    f = soa_fields(rdata)
    return (
        f.mname
        + f.rname
        + struct.pack("!IIIII", serial & 0xFFFFFFFF, f.refresh, f.retry, f.expire, f.minimum)
    )


def type_bitmap(types: list[int] | set[int] | tuple[int, ...]) -> bytes:
    """RFC 4034 sect. 4.1.2 type bit maps field for a set of types."""
    windows: dict[int, bytearray] = {}
    for t in sorted(set(types)):
        w, b = divmod(t, 256)
        bm = windows.setdefault(w, bytearray(32))
        bm[b // 8] |= 0x80 >> (b % 8)
    out = bytearray()
    for w in sorted(windows):
        bm = windows[w]
        n = 32
        while n > 0 and bm[n - 1] == 0:
            n -= 1
        out += bytes((w, n)) + bm[:n]
    return bytes(out)


def bitmap_types(bitmap: bytes) -> list[int]:
    """Inverse of :func:`type_bitmap`."""
    out = []
    i = 0
    while i < len(bitmap):
        w, n = bitmap[i], bitmap[i + 1]
        for j in range(n):
            byte = bitmap[i + 2 + j]
            for k in range(8):
                if byte & (0x80 >> k):
                    out.append(w * 256 + j * 8 + k)
        i += 2 + n
    return out
