"""Root-zone KSR/SKR XML (the format of IANA's ``kskm``): read and write.

The document element is ``<KSR id domain serial>`` holding either a ``<Request>`` (a KSR:
``RequestPolicy`` + ``RequestBundle``\\ s) or a ``<Response>`` (an SKR: ``ResponsePolicy`` +
``ResponseBundle``\\ s). A bundle has ``Inception``, ``Expiration``, ``Key`` elements (the
DNSKEY RRset) and ``Signature`` elements (RRSIGs over it: proofs of possession in a KSR, KSK
signatures in an SKR). ``Signer`` elements (kskm's HSM hints) are accepted and ignored.

Mapping: bundle ``id``/``Inception``/``Expiration`` map 1:1 onto
:class:`~signer.bundles.model.Bundle`; ``Key`` TTLs (which must agree) become ``ttl``; the
policy block becomes ``BundleSet.declared_policy``; the document ``id``/``serial``/``domain``
and the ``keyIdentifier`` of each key (by key tag) go to ``BundleSet.meta`` so that a round
trip writes them back.

Parsing is strict and safe: expat with a DOCTYPE refused outright (so no entity expansion,
no external entities), unknown elements refused, times must be UTC (no offset, ``Z`` or
``+00:00``), durations in days/hours/minutes/seconds (months and years are refused), the
``keyTag`` attribute must match the key. Every refusal is an InputError naming file:line.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG

from signer.algorithms import Algorithm
from signer.bundles.declared import AlgorithmPolicy, DeclaredPolicy, SignaturePolicy
from signer.bundles.model import Bundle, BundleSet
from signer.bundles.policy import format_duration, parse_duration
from signer.bundles.textformat import MAX_FILE_BYTES, parse_iso_utc, read_limited
from signer.dnskey import DnsKey
from signer.errors import DnssecCeremonyError, InputError
from signer.rrsig import RrsigHeader

T = TypeVar("T")

_POLICY_FIELDS = (
    ("PublishSafety", "publish_safety"),
    ("RetireSafety", "retire_safety"),
    ("MaxSignatureValidity", "max_signature_validity"),
    ("MinSignatureValidity", "min_signature_validity"),
    ("MaxValidityOverlap", "max_validity_overlap"),
    ("MinValidityOverlap", "min_validity_overlap"),
)
_KEY_FIELDS = ("TTL", "Flags", "Protocol", "Algorithm", "PublicKey")
_SIG_FIELDS = (
    "TTL",
    "TypeCovered",
    "Algorithm",
    "Labels",
    "OriginalTTL",
    "SignatureExpiration",
    "SignatureInception",
    "KeyTag",
    "SignersName",
    "SignatureData",
)


# -- a tiny safe tree with line numbers -------------------------------------------------------


@dataclass
class _El:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[_El] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts).strip()


class _Refused(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _parse_tree(data: bytes, name: str) -> _El:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_El] = []
    root: list[_El] = []

    def refuse_doctype(*_: object) -> None:
        raise _Refused("DOCTYPE/entity declarations are not allowed", parser.CurrentLineNumber)

    def start(tag: str, attrs: dict[str, str]) -> None:
        el = _El(tag, dict(attrs), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].text_parts.append(text)

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    parser.ExternalEntityRefHandler = refuse_doctype  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise InputError(exc.message, path=name, line=exc.line) from None
    except expat.ExpatError as exc:
        raise InputError(
            f"not well-formed XML: {expat.ErrorString(exc.code)}", path=name, line=exc.lineno
        ) from None
    except RecursionError:
        raise InputError("XML nested too deeply", path=name) from None
    if not root:
        raise InputError("no XML document element", path=name, line=1)
    return root[0]


# -- reading helpers --------------------------------------------------------------------------


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, el: _El, message: str) -> InputError:
        return InputError(message, path=self.name, line=el.line)

    def children(self, el: _El, allowed: dict[str, tuple[int, int | None]]) -> dict[str, list[_El]]:
        """Children by tag; ``allowed`` maps tag -> (min, max) counts; others are refused."""
        if el.text:
            raise self.fail(el, f"<{el.tag}> holds text {el.text[:30]!r} where elements belong")
        out: dict[str, list[_El]] = {t: [] for t in allowed}
        for c in el.children:
            if c.tag not in allowed:
                raise self.fail(
                    c, f"unexpected element <{c.tag}> in <{el.tag}> (allowed: {', '.join(allowed)})"
                )
            out[c.tag].append(c)
        for tag, (lo, hi) in allowed.items():
            n = len(out[tag])
            if n < lo:
                raise self.fail(el, f"<{el.tag}> lacks <{tag}>")
            if hi is not None and n > hi:
                raise self.fail(out[tag][hi], f"<{el.tag}> has more than {hi} <{tag}>")
        return out

    def leaf(self, el: _El) -> str:
        if el.children:
            raise self.fail(
                el.children[0], f"unexpected element <{el.children[0].tag}> in <{el.tag}>"
            )
        return el.text

    def conv(self, el: _El, what: str, fn: Callable[[str], T]) -> T:
        text = self.leaf(el)
        try:
            return fn(text)
        except DnssecCeremonyError as exc:
            raise self.fail(el, f"<{el.tag}>: {getattr(exc, 'reason', exc)}") from None
        except (ValueError, OverflowError, binascii.Error) as exc:
            raise self.fail(el, f"bad {what} in <{el.tag}>: {exc}") from None

    def attr(self, el: _El, key: str, fn: Callable[[str], T] | None = None) -> T | str:
        if key not in el.attrs:
            raise self.fail(el, f"<{el.tag}> lacks the {key!r} attribute")
        value = el.attrs[key]
        if fn is None:
            return value
        try:
            return fn(value)
        except (ValueError, DnssecCeremonyError) as exc:
            raise self.fail(el, f"bad {key}={value!r} on <{el.tag}>: {exc}") from None

    def integer(self, el: _El, lo: int = 0, hi: int = 2**32 - 1) -> int:
        def fn(text: str) -> int:
            if not (text.isascii() and text.isdigit()):
                raise ValueError(f"{text!r} is not a number")
            v = int(text)
            if not lo <= v <= hi:
                raise ValueError(f"{v} is out of range {lo}..{hi}")
            return v

        return self.conv(el, "number", fn)


def _b64(text: str) -> bytes:
    data = base64.b64decode("".join(text.split()), validate=True)
    if not data:
        raise ValueError("empty")
    return data


def _algorithm_policy(r: _Reader, el: _El) -> AlgorithmPolicy:
    alg = r.attr(el, "algorithm", Algorithm.parse)
    assert isinstance(alg, Algorithm)
    kids = r.children(el, {"RSA": (0, 1), "ECDSA": (0, 1), "EdDSA": (0, 1)})
    given = [c for cs in kids.values() for c in cs]
    if len(given) != 1:
        raise r.fail(el, "<SignatureAlgorithm> needs exactly one of <RSA>, <ECDSA>, <EdDSA>")
    p = given[0]
    r.children(p, {})
    size = r.attr(p, "size", _positive)
    assert isinstance(size, int)
    if p.tag == "RSA":
        exponent = r.attr(p, "exponent", _positive)
        assert isinstance(exponent, int)
        return AlgorithmPolicy(alg, size, exponent)
    return AlgorithmPolicy(alg, size)


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise ValueError("want a positive number")
    return int(text)


def _signature_policy(r: _Reader, el: _El) -> SignaturePolicy:
    allowed: dict[str, tuple[int, int | None]] = {tag: (1, 1) for tag, _ in _POLICY_FIELDS}
    allowed["SignatureAlgorithm"] = (1, None)
    kids = r.children(el, allowed)
    values = {
        attr: r.conv(kids[tag][0], "ISO 8601 duration", parse_duration)
        for tag, attr in _POLICY_FIELDS
    }
    algs = tuple(_algorithm_policy(r, a) for a in kids["SignatureAlgorithm"])
    return SignaturePolicy(algorithms=algs, **values)


def _declared(r: _Reader, el: _El, need_ksk: bool) -> DeclaredPolicy:
    kids = r.children(el, {"KSK": (1 if need_ksk else 0, 1), "ZSK": (1, 1)})
    ksk = _signature_policy(r, kids["KSK"][0]) if kids["KSK"] else None
    return DeclaredPolicy(ksk=ksk, zsk=_signature_policy(r, kids["ZSK"][0]))


def _key(r: _Reader, el: _El, meta: dict[str, str]) -> tuple[DnsKey, int]:
    kids = r.children(el, {t: (1, 1) for t in _KEY_FIELDS})
    ttl = r.integer(kids["TTL"][0])
    flags = r.integer(kids["Flags"][0], hi=0xFFFF)
    proto = r.integer(kids["Protocol"][0], hi=255)
    alg = r.conv(kids["Algorithm"][0], "algorithm", Algorithm.parse)
    pub = r.conv(kids["PublicKey"][0], "base64", _b64)
    try:
        key = DnsKey(flags, alg, pub, proto)
        tag = key.key_tag
        key.public_key_object()  # refuse key material that is not a public key of alg
    except DnssecCeremonyError as exc:
        raise r.fail(el, f"bad key: {getattr(exc, 'reason', exc)}") from None
    except (ValueError, TypeError) as exc:
        raise r.fail(el, f"bad key material for {alg.name}: {exc}") from None
    declared = r.attr(el, "keyTag", _positive if el.attrs.get("keyTag") != "0" else int)
    if declared != tag:
        raise r.fail(el, f"keyTag attribute {declared} does not match the key (tag {tag})")
    ident = el.attrs.get("keyIdentifier")
    if ident is not None:
        meta[f"key-identifier:{tag}"] = ident
    return key, ttl


def _signature(r: _Reader, el: _El, zone: dns.name.Name) -> dns.rdtypes.ANY.RRSIG.RRSIG:
    kids = r.children(el, {t: (1, 1) for t in _SIG_FIELDS})
    covered = r.conv(kids["TypeCovered"][0], "type", _rdtype)
    if covered != dns.rdatatype.DNSKEY:
        raise r.fail(kids["TypeCovered"][0], "a root bundle signature must cover DNSKEY")
    signer = r.conv(kids["SignersName"][0], "name", lambda t: dns.name.from_text(t))
    if signer != zone:
        raise r.fail(kids["SignersName"][0], f"signer {signer} is not the domain {zone}")
    header = RrsigHeader(
        int(covered),
        r.conv(kids["Algorithm"][0], "algorithm", Algorithm.parse),
        r.integer(kids["Labels"][0], hi=127),
        r.integer(kids["OriginalTTL"][0]),
        r.conv(kids["SignatureExpiration"][0], "time", parse_iso_utc),
        r.conv(kids["SignatureInception"][0], "time", parse_iso_utc),
        r.integer(kids["KeyTag"][0], hi=0xFFFF),
        signer,
    )
    r.integer(kids["TTL"][0])
    return header.rdata(r.conv(kids["SignatureData"][0], "base64", _b64))


def _rdtype(text: str) -> dns.rdatatype.RdataType:
    if text.isdigit():
        return dns.rdatatype.RdataType.make(int(text))
    return dns.rdatatype.from_text(text)


def _bundle(r: _Reader, el: _El, zone: dns.name.Name, meta: dict[str, str]) -> Bundle:
    bid = r.attr(el, "id")
    assert isinstance(bid, str)
    if not bid.strip():
        raise r.fail(el, "empty bundle id")
    kids = r.children(
        el,
        {
            "Inception": (1, 1),
            "Expiration": (1, 1),
            "Key": (1, None),
            "Signature": (0, None),
            "Signer": (0, None),
        },
    )
    inception = r.conv(kids["Inception"][0], "time", parse_iso_utc)
    expiration = r.conv(kids["Expiration"][0], "time", parse_iso_utc)
    if expiration <= inception:
        raise r.fail(kids["Expiration"][0], "bundle expiration is not after its inception")
    keys: list[DnsKey] = []
    ttls: set[int] = set()
    for k in kids["Key"]:
        key, ttl = _key(r, k, meta)
        if key in keys:
            raise r.fail(k, f"duplicate key {key.key_tag} in bundle {bid}")
        keys.append(key)
        ttls.add(ttl)
    if len(ttls) != 1:
        raise r.fail(kids["Key"][1], f"keys of bundle {bid} have different TTLs {sorted(ttls)}")
    sigs = tuple(_signature(r, s, zone) for s in kids["Signature"])
    return Bundle(bid, inception, expiration, ttls.pop(), tuple(keys), signatures=sigs)


def _parse(data: bytes, name: str, kind: str, zone: dns.name.Name | str | None) -> BundleSet:
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"input is over the {MAX_FILE_BYTES}-byte limit", path=name)
    top = _parse_tree(data, name)
    r = _Reader(name)
    if top.tag != "KSR":
        raise r.fail(top, f"document element is <{top.tag}>, want <KSR>")
    body_tag = "Request" if kind == "request" else "Response"
    other = "Response" if kind == "request" else "Request"
    if any(c.tag == other for c in top.children):
        raise r.fail(
            top,
            f"this is a {'SKR' if other == 'Response' else 'KSR'}, not a {'KSR' if kind == 'request' else 'SKR'}",
        )
    kids = r.children(top, {body_tag: (1, 1)})
    domain_text = r.attr(top, "domain")
    assert isinstance(domain_text, str)
    try:
        domain = dns.name.from_text(domain_text)
    except Exception as exc:
        raise r.fail(top, f"bad domain {domain_text!r}: {exc}") from None
    if zone is not None:
        want = zone if isinstance(zone, dns.name.Name) else dns.name.from_text(zone)
        if want != domain:
            raise r.fail(top, f"domain {domain} is not the zone {want}")
    meta = {"format": "root-xml", "source": name, "domain": domain_text}
    for a in ("id", "serial"):
        if a in top.attrs:
            meta[a] = top.attrs[a]
    body = kids[body_tag][0]
    pol_tag, bundle_tag = f"{body_tag}Policy", f"{body_tag}Bundle"
    parts = r.children(body, {pol_tag: (1, 1), bundle_tag: (1, None)})
    policy = _declared(r, parts[pol_tag][0], need_ksk=kind == "response")
    bundles: list[Bundle] = []
    seen: dict[str, int] = {}
    for b in parts[bundle_tag]:
        bundle = _bundle(r, b, domain, meta)
        if bundle.id in seen:
            raise r.fail(b, f"duplicate bundle id {bundle.id!r} (first at line {seen[bundle.id]})")
        seen[bundle.id] = b.line
        bundles.append(bundle)
    return BundleSet(domain, tuple(bundles), kind, meta=meta, declared_policy=policy)


# -- public API: reading ----------------------------------------------------------------------


def parse_root_ksr(
    data: bytes | str, *, name: str = "<ksr>", zone: dns.name.Name | str | None = None
) -> BundleSet:
    return _parse(data.encode() if isinstance(data, str) else data, name, "request", zone)


def parse_root_skr(
    data: bytes | str, *, name: str = "<skr>", zone: dns.name.Name | str | None = None
) -> BundleSet:
    return _parse(data.encode() if isinstance(data, str) else data, name, "response", zone)


def load_root_ksr(
    path: str | os.PathLike[str],
    *,
    zone: dns.name.Name | str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> BundleSet:
    name = os.fspath(path)
    return parse_root_ksr(read_limited(name, max_bytes), name=name, zone=zone)


def load_root_skr(
    path: str | os.PathLike[str],
    *,
    zone: dns.name.Name | str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> BundleSet:
    name = os.fspath(path)
    return parse_root_skr(read_limited(name, max_bytes), name=name, zone=zone)


# -- public API: writing ----------------------------------------------------------------------


def _xml_time(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def _policy_xml(tag: str, p: SignaturePolicy, ind: str) -> list[str]:
    out = [f"{ind}<{tag}>"]
    for xml_tag, attr in _POLICY_FIELDS:
        out.append(f"{ind}  <{xml_tag}>{format_duration(getattr(p, attr))}</{xml_tag}>")
    for a in p.algorithms:
        out.append(f'{ind}  <SignatureAlgorithm algorithm="{int(a.algorithm)}">')
        family = {8: "RSA", 10: "RSA", 13: "ECDSA", 14: "ECDSA"}.get(int(a.algorithm), "EdDSA")
        if family == "RSA":
            out.append(f'{ind}    <RSA size="{a.bits}" exponent="{a.exponent or 65537}"/>')
        else:
            out.append(f'{ind}    <{family} size="{a.bits}"/>')
        out.append(f"{ind}  </SignatureAlgorithm>")
    out.append(f"{ind}</{tag}>")
    return out


def _dump(bs: BundleSet, kind: str) -> str:
    if bs.kind != kind:
        raise InputError(f"this bundle set is a {bs.kind}, not a {kind}")
    pol = bs.declared_policy
    if pol is None or pol.zsk is None or (kind == "response" and pol.ksk is None):
        raise InputError(
            f"a root {'KSR' if kind == 'request' else 'SKR'} needs the declared policy "
            "(ZSK, and KSK for an SKR) in BundleSet.declared_policy"
        )
    meta = bs.meta
    body = "Request" if kind == "request" else "Response"
    attrs = f"id={quoteattr(meta.get('id', ''))} domain={quoteattr(bs.zone.to_text())}"
    attrs += f" serial={quoteattr(meta.get('serial', '0'))}"
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<KSR {attrs}>", f"  <{body}>"]
    lines.append(f"    <{body}Policy>")
    if pol.ksk is not None and kind == "response":
        lines += _policy_xml("KSK", pol.ksk, "      ")
    lines += _policy_xml("ZSK", pol.zsk, "      ")
    lines.append(f"    </{body}Policy>")
    for b in bs.bundles:
        lines.append(f"    <{body}Bundle id={quoteattr(b.id)}>")
        lines.append(f"      <Inception>{_xml_time(b.inception)}</Inception>")
        lines.append(f"      <Expiration>{_xml_time(b.expiration)}</Expiration>")
        for k in b.keys:
            ident = meta.get(f"key-identifier:{k.key_tag}", f"K{k.key_tag}")
            lines.append(f'      <Key keyIdentifier={quoteattr(ident)} keyTag="{k.key_tag}">')
            lines.append(f"        <TTL>{b.ttl}</TTL>")
            lines.append(f"        <Flags>{k.flags}</Flags>")
            lines.append(f"        <Protocol>{k.protocol}</Protocol>")
            lines.append(f"        <Algorithm>{int(k.algorithm)}</Algorithm>")
            lines.append(
                f"        <PublicKey>{base64.b64encode(k.public_key).decode()}</PublicKey>"
            )
            lines.append("      </Key>")
        for s in b.signatures:
            h = RrsigHeader.of(s)
            ident = meta.get(f"key-identifier:{h.key_tag}", f"K{h.key_tag}")
            covered = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(h.type_covered))
            lines.append(f"      <Signature keyIdentifier={quoteattr(ident)}>")
            lines.append(f"        <TTL>{b.ttl}</TTL>")
            lines.append(f"        <TypeCovered>{escape(covered)}</TypeCovered>")
            lines.append(f"        <Algorithm>{int(h.algorithm)}</Algorithm>")
            lines.append(f"        <Labels>{h.labels}</Labels>")
            lines.append(f"        <OriginalTTL>{h.original_ttl}</OriginalTTL>")
            lines.append(
                f"        <SignatureExpiration>{_xml_time(h.expiration)}</SignatureExpiration>"
            )
            lines.append(
                f"        <SignatureInception>{_xml_time(h.inception)}</SignatureInception>"
            )
            lines.append(f"        <KeyTag>{h.key_tag}</KeyTag>")
            lines.append(f"        <SignersName>{escape(h.signer.to_text())}</SignersName>")
            sig = base64.b64encode(s.signature).decode()  # type: ignore[attr-defined]
            lines.append(f"        <SignatureData>{sig}</SignatureData>")
            lines.append("      </Signature>")
        lines.append(f"    </{body}Bundle>")
    lines += [f"  </{body}>", "</KSR>", ""]
    return "\n".join(lines)


def dump_root_ksr(bs: BundleSet) -> str:
    """A root KSR (``<Request>``) from a request bundle set with a declared ZSK policy."""
    return _dump(bs, "request")


def dump_root_skr(bs: BundleSet) -> str:
    """A root SKR (``<Response>``) from a response bundle set with declared KSK+ZSK policy."""
    return _dump(bs, "response")
