"""The policy file: one strict YAML document for the zone, the signer (ZSK) side and the KSK side.

Strict means: an unknown or duplicate key, a value of the wrong kind, a duration in months or
years, or a time that is not UTC ("Z") is refused with ``file:line`` and the rule broken, before
anything else happens (no token is opened for a bad policy).

Durations are ISO 8601 ``PnW``, ``PnDTnHnMnS`` (``P10D``, ``PT1H``, ``P1DT12H``); months and years
are refused because their length depends on the calendar. Times are ISO 8601 in UTC with a ``Z``:
``2026-01-01T00:00:00Z``. Every duration is held in seconds, every time in seconds since the epoch.

:func:`load_policy` returns the whole :class:`Policy`; :func:`load_ksk_policy` accepts either a
whole policy file or one holding only the ``ksk:`` section (what the ceremony station needs).
See docs/bundles.md for every key.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dns.exception
import dns.name
import yaml

from signer import yamlstrict
from signer.algorithms import INFO, Algorithm
from signer.dnskey import DIGEST_SHA256, DIGEST_SHA384, DnsKey
from signer.errors import DnssecCeremonyError, InputError

DAY = 86400
HOUR = 3600
MAX_POLICY_BYTES = 1 << 20

T = TypeVar("T")

# ASCII digits only (re.ASCII): "P\u0665D" (an Arabic-Indic five) is not a duration.
_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W|(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?)$",
    re.ASCII,
)
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$", re.ASCII)
# RRSIG times are 32-bit serial numbers (RFC 4034 3.1.5): a duration of 2**31 s (68 years) or
# more cannot be represented, and refusing it keeps the time arithmetic away from overflows.
MAX_DURATION = 2**31 - 1


class PolicyError(InputError):
    """A policy file breaks a rule (exit 2)."""


def parse_duration(text: str) -> int:
    """ISO 8601 duration -> seconds. Months and years are refused (their length varies)."""
    t = text.strip()
    if re.match(r"^P[^T]*[YM]", t):
        raise ValueError(
            f"duration {text!r} uses months or years, whose length is ambiguous; "
            "write days instead (P90D)"
        )
    m = _DURATION.match(t)
    if not m or t in ("P", "PT") or t.endswith("T"):
        raise ValueError(f"bad ISO 8601 duration {text!r} (examples: P10D, PT1H, P1DT12H)")
    if any(len(v) > 12 for v in m.groupdict().values() if v):
        raise ValueError(f"duration {text!r} is too long (at most {MAX_DURATION} seconds)")
    g = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
    value = g["w"] * 7 * DAY + g["d"] * DAY + g["h"] * HOUR + g["m"] * 60 + g["s"]
    if value > MAX_DURATION:
        raise ValueError(f"duration {text!r} is too long (at most {MAX_DURATION} seconds)")
    return value


def format_duration(seconds: int) -> str:
    if seconds == 0:
        return "PT0S"
    d, rest = divmod(seconds, DAY)
    h, rest = divmod(rest, HOUR)
    mi, s = divmod(rest, 60)
    out = "P" + (f"{d}D" if d else "")
    if h or mi or s:
        out += "T" + (f"{h}H" if h else "") + (f"{mi}M" if mi else "") + (f"{s}S" if s else "")
    return out


def parse_time(text: str) -> int:
    """ISO 8601 UTC time with 'Z' -> seconds since the epoch."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(
            f"bad time {text!r}: write UTC as YYYY-MM-DDTHH:MM:SSZ (e.g. 2026-01-01T00:00:00Z); "
            "local times and offsets are refused"
        )
    y, mo, d, h, mi, s = (int(x) for x in m.groups())
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        raise ValueError(f"bad time {text!r}: field out of range")
    value = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    if time_text(value) != text.strip():
        raise ValueError(f"bad time {text!r}: no such date")
    return value


def time_text(value: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


# --------------------------------------------------------------------------------------------
# The typed policy


@dataclass(frozen=True)
class Range:
    """An inclusive range of integers (seconds for durations)."""

    min: int
    max: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.min <= value <= self.max

    def text(self, duration: bool = True) -> str:
        if duration:
            return f"{format_duration(self.min)}..{format_duration(self.max)}"
        return f"{self.min}..{self.max}"


@dataclass(frozen=True)
class SignerPolicy:
    """The zone signer's (ZSK) side. Read by the zone signer and the planner."""

    algorithm: Algorithm = Algorithm.ECDSAP256SHA256
    bits: int = 256
    validity: int = 14 * DAY  # RRSIG validity of zone data
    refresh: int = 5 * DAY  # re-sign when less than this remains
    jitter: int = 12 * HOUR
    inception_offset: int = HOUR  # inception this far in the past (clock skew)
    nsec: str = "nsec"  # "nsec" or "nsec3"
    nsec3_salt: str = ""  # hex, "" for none (RFC 9276)
    nsec3_iterations: int = 0
    nsec3_opt_out: bool = False
    serial: str = "unixtime"  # keep | increment | unixtime | datecounter
    bundle_margin: int = 2 * DAY  # refuse to sign with a bundle expiring sooner than this
    bundle_warning: int = 14 * DAY  # warn when the bundles run out within this
    pre_publish: int = 10 * DAY  # ZSK rollover: publish the new ZSK this long before use
    post_publish: int = 10 * DAY  # ... keep the old one this long after
    publish_safety: int = 2 * DAY  # declared in the request
    retire_safety: int = 2 * DAY
    foreign_zsks: tuple[DnsKey, ...] = ()  # multi-signer model 1: other providers' ZSKs


@dataclass(frozen=True)
class SlotSchema:
    """What the KSK side does with its KSKs in one slot (RFC 5011 rollover steps)."""

    publish: tuple[str, ...]  # published, not signing
    sign: tuple[str, ...]  # published and signing
    revoke: tuple[str, ...] = ()  # published with REVOKE, self-signing (RFC 5011 sect. 2.1)


@dataclass(frozen=True)
class KskKeyRef:
    name: str
    spec: str  # a key spec for signer.keys.loader (pkcs11: URI) or a software key file
    key_tag: int | None = None  # expected, checked when the key is opened
    valid_from: int | None = None  # the KSK may sign bundles only within this period
    valid_until: int | None = None


@dataclass(frozen=True)
class OperatorRanges:
    """What a request may declare (the KSK operator's limits on the ZSK operator)."""

    zsk_algorithms: tuple[Algorithm, ...] = tuple(Algorithm)
    zsk_bits: Range = Range(256, 4096)
    zsk_count: Range = Range(1, 4)  # ZSKs (incl. foreign ones) per bundle
    publish_safety: Range = Range(0, 30 * DAY)
    retire_safety: Range = Range(0, 30 * DAY)
    signature_validity: Range = Range(DAY, 60 * DAY)  # declared min/max must lie inside
    validity_overlap: Range = Range(0, 60 * DAY)


@dataclass(frozen=True)
class KskPolicy:
    """The KSK side: what a request must look like and how the response is signed."""

    zone: dns.name.Name
    algorithms: tuple[Algorithm, ...] = (Algorithm.ECDSAP256SHA256,)
    bits: tuple[int, ...] = (256,)
    dnskey_ttl: int = 2 * DAY
    signature_validity: Range = Range(21 * DAY, 21 * DAY)
    bundle_spacing: int = 10 * DAY
    bundle_interval: Range = Range(9 * DAY, 11 * DAY)
    bundle_count: Range = Range(9, 9)
    overlap: Range = Range(9 * DAY, 12 * DAY)
    cycle: Range = Range(79 * DAY, 81 * DAY)  # first to last inception
    horizon: int = 180 * DAY  # no signature may expire later than now + horizon
    cds: bool = False
    cdnskey: bool = False
    digest_types: tuple[int, ...] = (DIGEST_SHA256,)
    keys: tuple[KskKeyRef, ...] = ()
    schema: tuple[SlotSchema, ...] = ()  # per slot; the last entry repeats; () = all sign
    ranges: OperatorRanges = OperatorRanges()
    check_pop: bool = True
    foreign_zsks: tuple[DnsKey, ...] = ()  # other providers' ZSKs, approved without PoP

    def slot_schema(self, index: int) -> SlotSchema:
        if self.schema:
            return self.schema[min(index, len(self.schema) - 1)]
        names = tuple(k.name for k in self.keys)
        return SlotSchema(publish=(), sign=names)


def root_ksk_policy(**changes: Any) -> KskPolicy:
    """The KSK-side policy with the root zone's parameters (IANA kskm defaults).

    9 bundles 10 days apart, 21-day signatures, 9..12 days overlap, RSA/SHA-256 2048-bit keys,
    DNSKEY TTL 2 days, 180-day horizon.
    """
    from dataclasses import replace

    base = KskPolicy(
        zone=dns.name.root,
        algorithms=(Algorithm.RSASHA256,),
        bits=(2048,),
        dnskey_ttl=2 * DAY,
        signature_validity=Range(21 * DAY, 21 * DAY),
        bundle_spacing=10 * DAY,
        bundle_interval=Range(9 * DAY, 11 * DAY),
        bundle_count=Range(9, 9),
        overlap=Range(9 * DAY, 12 * DAY),
        cycle=Range(79 * DAY, 81 * DAY),
        horizon=180 * DAY,
        ranges=OperatorRanges(
            zsk_algorithms=(Algorithm.RSASHA256,),
            zsk_bits=Range(2048, 2048),
            zsk_count=Range(1, 3),
            publish_safety=Range(0, 30 * DAY),
            retire_safety=Range(0, 30 * DAY),
            signature_validity=Range(21 * DAY, 21 * DAY),
            validity_overlap=Range(9 * DAY, 12 * DAY),
        ),
    )
    return replace(base, **changes)


@dataclass(frozen=True)
class Window:
    start: int
    length: int
    max_length: int = 280 * DAY  # 9 months must work; more is refused

    @property
    def end(self) -> int:
        return self.start + self.length


def window_with(base: Window | None, start: int | None, length: int | None) -> Window | None:
    """The policy's window ``base`` with ``start`` and/or ``length`` given instead; ``None``
    when neither the policy nor the arguments make a whole window."""
    if base is None:
        return Window(start, length) if start is not None and length is not None else None
    return Window(
        base.start if start is None else start,
        base.length if length is None else length,
        base.max_length,
    )


@dataclass(frozen=True)
class Policy:
    zone: dns.name.Name
    signer: SignerPolicy
    ksk: KskPolicy
    window: Window | None
    path: str = field(default="", compare=False)

    @property
    def dnskey_ttl(self) -> int:
        return self.ksk.dnskey_ttl


# --------------------------------------------------------------------------------------------
# Strict YAML reading: we walk the node tree ourselves so that every error has a line and no
# YAML implicit typing (dates, yes/no, octal) sneaks in.


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, message: str) -> PolicyError:
        line = node.start_mark.line + 1 if node is not None else None
        return PolicyError(message, path=self.path, line=line)

    def mapping(
        self,
        node: yaml.Node,
        where: str,
        allowed: set[str],
        required: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, yaml.Node]:
        return yamlstrict.mapping_nodes(node, where, allowed, required, self.fail)

    def scalar(self, node: yaml.Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{where} must be a single value")
        return str(node.value)

    def conv(self, node: yaml.Node, where: str, fn: Callable[[str], T]) -> T:
        text = self.scalar(node, where)
        try:
            return fn(text)
        except DnssecCeremonyError as exc:
            raise self.fail(node, f"{where}: {getattr(exc, 'reason', exc)}") from None
        except ValueError as exc:
            raise self.fail(node, f"{where}: {exc}") from None

    def duration(self, node: yaml.Node, where: str) -> int:
        return self.conv(node, where, parse_duration)

    def time(self, node: yaml.Node, where: str) -> int:
        return self.conv(node, where, parse_time)

    def integer(self, node: yaml.Node, where: str, lo: int = 0, hi: int = 2**31) -> int:
        def fn(text: str) -> int:
            if not re.fullmatch(r"[0-9]+", text):
                raise ValueError(f"want a whole number, got {text!r}")
            v = int(text)
            if not lo <= v <= hi:
                raise ValueError(f"{v} is outside {lo}..{hi}")
            return v

        return self.conv(node, where, fn)

    def boolean(self, node: yaml.Node, where: str) -> bool:
        def fn(text: str) -> bool:
            if text in ("true", "false"):
                return text == "true"
            raise ValueError(f"want true or false, got {text!r}")

        return self.conv(node, where, fn)

    def choice(self, node: yaml.Node, where: str, choices: tuple[str, ...]) -> str:
        def fn(text: str) -> str:
            if text not in choices:
                raise ValueError(f"want one of {', '.join(choices)}, got {text!r}")
            return text

        return self.conv(node, where, fn)

    def seq(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list")
        if not node.value:
            raise self.fail(node, f"{where} must not be empty")
        return list(node.value)

    def algorithm(self, node: yaml.Node, where: str) -> Algorithm:
        return self.conv(node, where, Algorithm.parse)

    def range(self, node: yaml.Node, where: str, item: Callable[[yaml.Node, str], int]) -> Range:
        if isinstance(node, yaml.ScalarNode):
            v = item(node, where)
            return Range(v, v)
        m = self.mapping(node, where, {"min", "max"}, {"min", "max"})
        lo = item(m["min"], f"{where}.min")
        hi = item(m["max"], f"{where}.max")
        if lo > hi:
            raise self.fail(node, f"{where}: min {lo} is larger than max {hi}")
        return Range(lo, hi)

    def duration_range(self, node: yaml.Node, where: str) -> Range:
        return self.range(node, where, self.duration)

    def int_range(self, node: yaml.Node, where: str) -> Range:
        return self.range(node, where, lambda n, w: self.integer(n, w))


def _at(node: yaml.Node, *keys: str) -> yaml.Node:
    """The value node at ``keys`` below ``node`` (as deep as the path exists): a cross-field
    rule names the line of the value that breaks it, not the start of its section."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        found = [v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
        if not found:
            break
        node = found[0]
    return node


def _zone(r: _Reader, node: yaml.Node) -> dns.name.Name:
    def fn(text: str) -> dns.name.Name:
        if not text.endswith("."):
            raise ValueError(f"zone {text!r} must be absolute (end with '.')")
        try:
            return dns.name.from_text(text)
        except dns.exception.DNSException as exc:
            raise ValueError(f"bad zone name {text!r}: {exc}") from None

    return r.conv(node, "zone", fn)


_SIGNER_KEYS = {
    "algorithm",
    "bits",
    "signature_validity",
    "refresh",
    "jitter",
    "inception_offset",
    "nsec",
    "nsec3",
    "serial",
    "bundle_margin",
    "bundle_warning",
    "zsk_rollover",
    "publish_safety",
    "retire_safety",
    "foreign_zsks",
}


def _signer(r: _Reader, node: yaml.Node) -> SignerPolicy:
    m = r.mapping(node, "signer", _SIGNER_KEYS, {"algorithm"})
    alg = r.algorithm(m["algorithm"], "signer.algorithm")
    bits = INFO[alg].default_bits
    if "bits" in m:
        bits = r.integer(m["bits"], "signer.bits")
        lo, hi = INFO[alg].allowed_bits
        if not lo <= bits <= hi:
            raise r.fail(m["bits"], f"signer.bits: {alg.name} allows {lo}..{hi} bits, not {bits}")
    d = SignerPolicy()
    kw: dict[str, Any] = {"algorithm": alg, "bits": bits}
    for key, attr in (
        ("signature_validity", "validity"),
        ("refresh", "refresh"),
        ("jitter", "jitter"),
        ("inception_offset", "inception_offset"),
        ("bundle_margin", "bundle_margin"),
        ("bundle_warning", "bundle_warning"),
        ("publish_safety", "publish_safety"),
        ("retire_safety", "retire_safety"),
    ):
        if key in m:
            kw[attr] = r.duration(m[key], f"signer.{key}")
    if "nsec" in m:
        kw["nsec"] = r.choice(m["nsec"], "signer.nsec", ("nsec", "nsec3"))
    if "nsec3" in m:
        n3 = r.mapping(m["nsec3"], "signer.nsec3", {"salt", "iterations", "opt_out"})

        def salt(text: str) -> str:
            t = "" if text in ("", "-") else text.lower()
            if not re.fullmatch(r"([0-9a-f]{2}){0,255}", t):
                raise ValueError(f"salt must be hex (or '-' for none), got {text!r}")
            return t

        if "salt" in n3:
            kw["nsec3_salt"] = r.conv(n3["salt"], "signer.nsec3.salt", salt)
        if "iterations" in n3:
            kw["nsec3_iterations"] = r.integer(n3["iterations"], "signer.nsec3.iterations", 0, 100)
        if "opt_out" in n3:
            kw["nsec3_opt_out"] = r.boolean(n3["opt_out"], "signer.nsec3.opt_out")
    if "serial" in m:
        kw["serial"] = r.choice(
            m["serial"], "signer.serial", ("keep", "increment", "unixtime", "datecounter")
        )
    if "zsk_rollover" in m:
        zr = r.mapping(m["zsk_rollover"], "signer.zsk_rollover", {"pre_publish", "post_publish"})
        if "pre_publish" in zr:
            kw["pre_publish"] = r.duration(zr["pre_publish"], "signer.zsk_rollover.pre_publish")
        if "post_publish" in zr:
            kw["post_publish"] = r.duration(zr["post_publish"], "signer.zsk_rollover.post_publish")
    if "foreign_zsks" in m:
        kw["foreign_zsks"] = _foreign(r, m["foreign_zsks"], "signer.foreign_zsks")
    sp = SignerPolicy(**{**d.__dict__, **kw})
    if sp.refresh >= sp.validity:
        where = m.get("refresh", m.get("signature_validity", node))
        raise r.fail(where, "signer: refresh must be shorter than signature_validity")
    if sp.jitter >= sp.refresh and sp.jitter:
        raise r.fail(m.get("jitter", node), "signer: jitter must be shorter than refresh")
    if sp.bundle_margin > sp.bundle_warning:
        where = m.get("bundle_margin", m.get("bundle_warning", node))
        raise r.fail(where, "signer: bundle_margin must not exceed bundle_warning")
    return sp


def _foreign(r: _Reader, node: yaml.Node, where: str) -> tuple[DnsKey, ...]:
    foreign: list[DnsKey] = []
    for i, item in enumerate(r.seq(node, where)):
        k = r.conv(item, f"{where}[{i}]", DnsKey.from_text)
        if k.is_sep or k.is_revoked or not k.is_zone_key:
            raise r.fail(item, f"{where}[{i}]: not a ZSK (flags {k.flags})")
        foreign.append(k)
    return tuple(foreign)


_KSK_KEYS = {
    "zone",
    "algorithms",
    "bits",
    "dnskey_ttl",
    "signature_validity",
    "bundle_spacing",
    "bundle_interval",
    "bundle_count",
    "overlap",
    "cycle",
    "horizon",
    "cds",
    "keys",
    "schema",
    "ranges",
    "check_proof_of_possession",
    "foreign_zsks",
}


def _ksk(r: _Reader, node: yaml.Node, zone: dns.name.Name | None) -> KskPolicy:
    m = r.mapping(node, "ksk", _KSK_KEYS, {"algorithms"} | (set() if zone else {"zone"}))
    if "zone" in m:
        z = _zone(r, m["zone"])
        if zone is not None and z != zone:
            raise r.fail(m["zone"], f"ksk.zone {z} differs from zone {zone}")
        zone = z
    assert zone is not None
    kw: dict[str, Any] = {"zone": zone}
    algs = tuple(
        r.algorithm(n, f"ksk.algorithms[{i}]")
        for i, n in enumerate(r.seq(m["algorithms"], "ksk.algorithms"))
    )
    kw["algorithms"] = algs
    if "bits" in m:
        kw["bits"] = tuple(
            r.integer(n, f"ksk.bits[{i}]") for i, n in enumerate(r.seq(m["bits"], "ksk.bits"))
        )
    else:
        kw["bits"] = tuple(sorted({INFO[a].default_bits for a in algs}))
    for key in ("dnskey_ttl", "bundle_spacing", "horizon"):
        if key in m:
            kw[key] = r.duration(m[key], f"ksk.{key}")
    for key in ("signature_validity", "bundle_interval", "overlap", "cycle"):
        if key in m:
            kw[key] = r.duration_range(m[key], f"ksk.{key}")
    if "bundle_count" in m:
        kw["bundle_count"] = r.int_range(m["bundle_count"], "ksk.bundle_count")
    if "check_proof_of_possession" in m:
        kw["check_pop"] = r.boolean(m["check_proof_of_possession"], "ksk.check_proof_of_possession")
    if "cds" in m:
        c = r.mapping(m["cds"], "ksk.cds", {"cds", "cdnskey", "digest_types"})
        if "cds" in c:
            kw["cds"] = r.boolean(c["cds"], "ksk.cds.cds")
        if "cdnskey" in c:
            kw["cdnskey"] = r.boolean(c["cdnskey"], "ksk.cds.cdnskey")
        if "digest_types" in c:
            dts = []
            for i, n in enumerate(r.seq(c["digest_types"], "ksk.cds.digest_types")):
                dt = r.integer(n, f"ksk.cds.digest_types[{i}]")
                if dt not in (DIGEST_SHA256, DIGEST_SHA384):
                    raise r.fail(n, f"ksk.cds.digest_types[{i}]: use 2 (SHA-256) or 4 (SHA-384)")
                dts.append(dt)
            kw["digest_types"] = tuple(dts)
    names: list[str] = []
    if "keys" in m:
        km = r.mapping(
            m["keys"],
            "ksk.keys",
            {
                str(k.value)
                for k, _ in (m["keys"].value if isinstance(m["keys"], yaml.MappingNode) else [])
            },
        )
        refs = []
        for name, kn in km.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise r.fail(kn, f"ksk.keys: bad key name {name!r}")
            one = r.mapping(
                kn, f"ksk.keys.{name}", {"key", "key_tag", "valid_from", "valid_until"}, {"key"}
            )
            tag = (
                r.integer(one["key_tag"], f"ksk.keys.{name}.key_tag", 0, 65535)
                if "key_tag" in one
                else None
            )
            vf = (
                r.time(one["valid_from"], f"ksk.keys.{name}.valid_from")
                if "valid_from" in one
                else None
            )
            vu = (
                r.time(one["valid_until"], f"ksk.keys.{name}.valid_until")
                if "valid_until" in one
                else None
            )
            refs.append(KskKeyRef(name, r.scalar(one["key"], f"ksk.keys.{name}.key"), tag, vf, vu))
            names.append(name)
        kw["keys"] = tuple(refs)
    if "schema" in m:
        slots = []
        for i, sn in enumerate(r.seq(m["schema"], "ksk.schema")):
            where = f"ksk.schema[{i}]"
            sm = r.mapping(sn, where, {"publish", "sign", "revoke"}, {"sign"})
            parts: dict[str, tuple[str, ...]] = {}
            for part in ("publish", "sign", "revoke"):
                vals: list[str] = []
                if part in sm:
                    pn = sm[part]
                    items = pn.value if isinstance(pn, yaml.SequenceNode) else [pn]
                    for it in items:
                        nm = r.scalar(it, f"{where}.{part}")
                        if nm not in names:
                            raise r.fail(it, f"{where}.{part}: {nm!r} is not a key in ksk.keys")
                        vals.append(nm)
                parts[part] = tuple(vals)
            if not parts["sign"] and not parts["revoke"]:
                raise r.fail(sn, f"{where}: no key signs in this slot")
            all_named = parts["publish"] + parts["sign"] + parts["revoke"]
            if len(set(all_named)) != len(all_named):
                raise r.fail(
                    sn, f"{where}: a key appears twice (publish, sign, revoke exclude each other)"
                )
            slots.append(SlotSchema(parts["publish"], parts["sign"], parts["revoke"]))
        kw["schema"] = tuple(slots)
    if "ranges" in m:
        kw["ranges"] = _ranges(r, m["ranges"])
    if "foreign_zsks" in m:
        kw["foreign_zsks"] = _foreign(r, m["foreign_zsks"], "ksk.foreign_zsks")
    kp = KskPolicy(**kw)
    for a in kp.algorithms:
        lo, hi = INFO[a].allowed_bits
        if not any(lo <= b <= hi for b in kp.bits):
            raise r.fail(
                m.get("bits", node), f"ksk: no size in ksk.bits suits {a.name} ({lo}..{hi})"
            )
    if not kp.bundle_interval.min <= kp.bundle_spacing <= kp.bundle_interval.max:
        at = m.get("bundle_spacing", m.get("bundle_interval", node))
        raise r.fail(at, "ksk: bundle_spacing lies outside ksk.bundle_interval")
    if kp.signature_validity.max <= kp.bundle_spacing:
        raise r.fail(
            m.get("signature_validity", m.get("bundle_spacing", node)),
            "ksk: signature_validity.max must exceed bundle_spacing (bundles would not overlap)",
        )
    return kp


def _ranges(r: _Reader, node: yaml.Node) -> OperatorRanges:
    m = r.mapping(
        node,
        "ksk.ranges",
        {
            "zsk_algorithms",
            "zsk_bits",
            "zsk_count",
            "publish_safety",
            "retire_safety",
            "signature_validity",
            "validity_overlap",
        },
    )
    kw: dict[str, Any] = {}
    if "zsk_algorithms" in m:
        kw["zsk_algorithms"] = tuple(
            r.algorithm(n, f"ksk.ranges.zsk_algorithms[{i}]")
            for i, n in enumerate(r.seq(m["zsk_algorithms"], "ksk.ranges.zsk_algorithms"))
        )
    for key in ("zsk_bits", "zsk_count"):
        if key in m:
            kw[key] = r.int_range(m[key], f"ksk.ranges.{key}")
    for key in ("publish_safety", "retire_safety", "signature_validity", "validity_overlap"):
        if key in m:
            kw[key] = r.duration_range(m[key], f"ksk.ranges.{key}")
    return OperatorRanges(**kw)


def _window(r: _Reader, node: yaml.Node) -> Window:
    m = r.mapping(node, "window", {"start", "length", "max_length"}, {"start", "length"})
    w = Window(
        start=r.time(m["start"], "window.start"),
        length=r.duration(m["length"], "window.length"),
    )
    if "max_length" in m:
        w = Window(w.start, w.length, r.duration(m["max_length"], "window.max_length"))
    if w.length <= 0:
        raise r.fail(m["length"], "window.length must be positive")
    if w.length > w.max_length:
        raise r.fail(
            m["length"],
            f"window.length {format_duration(w.length)} exceeds window.max_length "
            f"{format_duration(w.max_length)}",
        )
    return w


def _compose(path: str | Path) -> tuple[_Reader, yaml.Node]:
    p = Path(path)
    r = _Reader(str(p))
    try:
        if p.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyError(f"policy file is larger than {MAX_POLICY_BYTES} bytes", path=str(p))
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy: {exc.strerror}", path=str(p)) from None
    except UnicodeDecodeError:
        raise PolicyError("policy is not UTF-8 text", path=str(p)) from None
    try:
        node = yamlstrict.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise PolicyError(f"not valid YAML: {exc.problem}", path=str(p), line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {exc}", path=str(p)) from None
    except RecursionError:
        raise PolicyError("not valid YAML: nested too deeply", path=str(p)) from None
    if node is None:
        raise PolicyError("policy file is empty", path=str(p))
    return r, node


def load_policy(path: str | Path) -> Policy:
    """Read and check a whole policy file (zone, signer, ksk, window)."""
    r, node = _compose(path)
    m = r.mapping(node, "policy", {"zone", "signer", "ksk", "window"}, {"zone", "signer", "ksk"})
    zone = _zone(r, m["zone"])
    signer = _signer(r, m["signer"])
    ksk = _ksk(r, m["ksk"], zone)
    window = _window(r, m["window"]) if "window" in m else None
    if signer.pre_publish < signer.publish_safety:
        raise r.fail(
            _at(m["signer"], "zsk_rollover", "pre_publish"),
            "signer: zsk_rollover.pre_publish is shorter than publish_safety",
        )
    if signer.post_publish < signer.retire_safety:
        raise r.fail(
            _at(m["signer"], "zsk_rollover", "post_publish"),
            "signer: zsk_rollover.post_publish is shorter than retire_safety",
        )
    if signer.bundle_margin >= ksk.signature_validity.min - ksk.bundle_spacing:
        # every instant must be covered by a bundle with at least bundle_margin left
        raise r.fail(
            _at(m["signer"], "bundle_margin"),
            "signer.bundle_margin is too long: it must be shorter than "
            "ksk.signature_validity.min - ksk.bundle_spacing, or no bundle could hand over",
        )
    return Policy(zone, signer, ksk, window, str(path))


def load_ksk_policy(path: str | Path) -> KskPolicy:
    """The KSK side of a policy file: a whole policy, or a file with only ``ksk:`` (+ zone)."""
    r, node = _compose(path)
    m = r.mapping(node, "policy", {"zone", "signer", "ksk", "window"}, {"ksk"})
    if "signer" in m:
        return load_policy(path).ksk
    zone = _zone(r, m["zone"]) if "zone" in m else None
    return _ksk(r, m["ksk"], zone)


__all__ = [
    "DAY",
    "HOUR",
    "KskKeyRef",
    "KskPolicy",
    "OperatorRanges",
    "Policy",
    "PolicyError",
    "Range",
    "SignerPolicy",
    "SlotSchema",
    "Window",
    "format_duration",
    "load_ksk_policy",
    "load_policy",
    "parse_duration",
    "parse_time",
    "root_ksk_policy",
    "time_text",
]
