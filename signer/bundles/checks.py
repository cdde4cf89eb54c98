"""Named checks on key-bundle requests (KSR-*) and responses (SKR-*), each with a requirement ID.

Every check is a function that raises a :class:`signer.errors.CheckFailed` subclass whose
``requirement`` is the ID; the ID is in the message and in the log line
(``dnssec_ceremony.checks``). :func:`check_request` runs the KSK side's checks on a request;
:func:`check_response` the signer side's checks on a response. A check is disabled only by
naming its ID in ``disabled``; that is logged at WARNING every time.

docs/bundles.md lists every ID with its meaning.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence

import dns.name
import dns.rrset

from signer.bundles.declared import SignaturePolicy
from signer.bundles.model import Bundle, BundleSet
from signer.bundles.policy import KskPolicy, format_duration, time_text
from signer.dnskey import DnsKey, DsRecord, make_ds
from signer.errors import CheckFailed, InputError, VerificationError
from signer.rrsig import RrsigHeader, verify_rrset

log = logging.getLogger("dnssec_ceremony.checks")


def _check(requirement: str) -> type[CheckFailed]:
    name = "".join(p.capitalize() for p in requirement.replace("-", "_").split("_"))
    return type(name, (CheckFailed,), {"requirement": requirement})


KsrDomain = _check("KSR-DOMAIN")
KsrBundleUnique = _check("KSR-BUNDLE-UNIQUE")
KsrBundleKeys = _check("KSR-BUNDLE-KEYS")
KsrBundlePop = _check("KSR-BUNDLE-POP")
KsrPolicyBundleCount = _check("KSR-POLICY-BUNDLE-COUNT")
KsrPolicyCycle = _check("KSR-POLICY-CYCLE")
KsrPolicySigOverlap = _check("KSR-POLICY-SIG-OVERLAP")
KsrPolicyGap = _check("KSR-POLICY-GAP")
KsrPolicySigValidity = _check("KSR-POLICY-SIG-VALIDITY")
KsrPolicyHorizon = _check("KSR-POLICY-HORIZON")
KsrBundleInterval = _check("KSR-BUNDLE-INTERVAL")
KsrKskValidity = _check("KSR-KSK-VALIDITY")
KsrKeytagCollision = _check("KSR-KEYTAG-COLLISION")
KsrCdsSep = _check("KSR-CDS-SEP")
KsrChainKeys = _check("KSR-CHAIN-KEYS")
KsrChainOverlap = _check("KSR-CHAIN-OVERLAP")
KsrPublishSafety = _check("KSR-PUBLISH-SAFETY")
KsrRetireSafety = _check("KSR-RETIRE-SAFETY")

SkrDomain = _check("SKR-DOMAIN")
SkrRequestHash = _check("SKR-REQUEST-HASH")
SkrBundleMatch = _check("SKR-BUNDLE-MATCH")
SkrBundleKeys = _check("SKR-BUNDLE-KEYS")
SkrSignature = _check("SKR-SIGNATURE")
SkrCdsSep = _check("SKR-CDS-SEP")
SkrCoverage = _check("SKR-COVERAGE")
SkrManifest = _check("SKR-MANIFEST")
PlanCoverage = _check("PLAN-COVERAGE")


def fail(cls: type[CheckFailed], message: str) -> CheckFailed:
    """Build the error and log it (ERROR, with the ID); the caller raises it."""
    exc = cls(message)
    log.error("%s", exc)
    return exc


def _b(b: Bundle) -> str:
    return f"bundle {b.id} ({time_text(b.inception)}..{time_text(b.expiration)})"


def zsks(b: Bundle) -> list[DnsKey]:
    return [k for k in b.keys if not k.is_sep]


# --------------------------------------------------------------------------------------------
# Request checks (KSK side)


def check_domain(request: BundleSet, policy: KskPolicy) -> None:
    if request.zone != policy.zone:
        raise fail(KsrDomain, f"request is for {request.zone}, the policy is for {policy.zone}")


def check_bundle_unique(request: BundleSet) -> None:
    seen: set[str] = set()
    for b in request.bundles:
        if not b.id:
            raise fail(KsrBundleUnique, f"{_b(b)} has an empty id")
        if b.id in seen:
            raise fail(KsrBundleUnique, f"bundle id {b.id} appears twice")
        seen.add(b.id)
    spans = [(b.inception, b.expiration) for b in request.bundles]
    if len(set(spans)) != len(spans):
        raise fail(KsrBundleUnique, "two bundles have the same inception and expiration")


def check_bundle_keys(request: BundleSet, policy: KskPolicy) -> None:
    r = policy.ranges
    for b in request.bundles:
        ks = list(b.keys)
        if not ks:
            raise fail(KsrBundleKeys, f"{_b(b)} has no keys")
        if b.ttl != policy.dnskey_ttl:
            raise fail(
                KsrBundleKeys,
                f"{_b(b)} has DNSKEY TTL {b.ttl}, the policy says {policy.dnskey_ttl}",
            )
        if len({k.to_wire() for k in ks}) != len(ks):
            raise fail(KsrBundleKeys, f"{_b(b)} lists a key twice")
        for k in ks:
            what = f"{_b(b)}: key {k.key_tag}"
            if k.protocol != 3:
                raise fail(KsrBundleKeys, f"{what} has protocol {k.protocol}, not 3")
            if not k.is_zone_key or k.is_sep or k.is_revoked:
                raise fail(
                    KsrBundleKeys,
                    f"{what} has flags {k.flags}; a request carries ZSKs only (flags 256)",
                )
            if k.algorithm not in r.zsk_algorithms:
                raise fail(
                    KsrBundleKeys,
                    f"{what} uses algorithm {k.algorithm.name}, not one the policy allows "
                    f"({', '.join(a.name for a in r.zsk_algorithms)})",
                )
            try:
                bits = k.bits
            except Exception:
                raise fail(KsrBundleKeys, f"{what} has an unusable public key") from None
            if bits not in r.zsk_bits:
                raise fail(
                    KsrBundleKeys, f"{what} has {bits} bits, outside {r.zsk_bits.text(False)}"
                )
        if len(ks) not in r.zsk_count:
            raise fail(
                KsrBundleKeys,
                f"{_b(b)} has {len(ks)} ZSKs, outside {r.zsk_count.text(False)}",
            )
        declared = _declared(request)
        if declared is not None and declared.algorithms:
            allowed = {(a.algorithm, a.bits) for a in declared.algorithms}
            for k in ks:
                if (k.algorithm, k.bits) not in allowed:
                    raise fail(
                        KsrBundleKeys,
                        f"{_b(b)}: key {k.key_tag} ({k.algorithm.name} {k.bits} bits) is not "
                        "an algorithm the request declares",
                    )


def check_bundle_pop(request: BundleSet, exempt: Sequence[DnsKey] = ()) -> None:
    """Proof of possession: every ZSK signed its bundle's DNSKEY RRset (``exempt``: foreign
    ZSKs the KSK policy approved without one), and every signature verifies."""
    free = {k.to_wire() for k in exempt}
    for b in request.bundles:
        rrset = b.dnskey_rrset(request.zone)
        signed: set[bytes] = set()
        for sig in b.signatures:
            tag = RrsigHeader.of(sig).key_tag
            try:
                key = verify_rrset(rrset, sig, list(b.keys))
            except VerificationError as exc:
                raise fail(
                    KsrBundlePop,
                    f"{_b(b)}: proof-of-possession signature by key {tag} does not verify "
                    f"({exc.reason})",
                ) from None
            signed.add(key.to_wire())
        for k in b.keys:
            if k.to_wire() not in signed and k.to_wire() not in free:
                raise fail(
                    KsrBundlePop,
                    f"{_b(b)}: key {k.key_tag} has no proof-of-possession signature",
                )


def check_bundle_count(request: BundleSet, policy: KskPolicy) -> None:
    n = len(request.bundles)
    if n not in policy.bundle_count:
        raise fail(
            KsrPolicyBundleCount,
            f"request has {n} bundles, the policy wants {policy.bundle_count.text(False)}",
        )


def _sorted(request: BundleSet) -> list[Bundle]:
    return sorted(request.bundles, key=lambda b: (b.inception, b.expiration))


def check_cycle(request: BundleSet, policy: KskPolicy) -> None:
    bs = _sorted(request)
    if not bs:
        raise fail(KsrPolicyCycle, "request has no bundles")
    length = bs[-1].inception - bs[0].inception
    if length not in policy.cycle:
        raise fail(
            KsrPolicyCycle,
            f"first to last inception is {format_duration(length)}, outside {policy.cycle.text()}",
        )


def check_bundle_interval(request: BundleSet, policy: KskPolicy) -> None:
    if list(request.bundles) != _sorted(request):
        raise fail(KsrBundleInterval, "bundles are not in order of inception")
    for a, b in itertools.pairwise(request.bundles):
        gap = b.inception - a.inception
        if gap not in policy.bundle_interval:
            raise fail(
                KsrBundleInterval,
                f"{_b(b)} starts {format_duration(gap)} after the previous one, outside "
                f"{policy.bundle_interval.text()}",
            )


def check_gap(request: BundleSet) -> None:
    bs = _sorted(request)
    for a, b in itertools.pairwise(bs):
        if b.inception > a.expiration:
            raise fail(
                KsrPolicyGap,
                f"gap from {time_text(a.expiration)} to {time_text(b.inception)} between "
                f"bundles {a.id} and {b.id}",
            )


def _declared(request: BundleSet) -> SignaturePolicy | None:
    d = request.declared_policy
    return d.zsk if d is not None else None


def check_sig_overlap(request: BundleSet, policy: KskPolicy) -> None:
    declared = _declared(request)
    bs = _sorted(request)
    for a, b in itertools.pairwise(bs):
        overlap = a.expiration - b.inception
        if overlap not in policy.overlap:
            raise fail(
                KsrPolicySigOverlap,
                f"bundles {a.id} and {b.id} overlap {format_duration(max(overlap, 0))}, outside "
                f"{policy.overlap.text()}",
            )
        if declared is not None and not (
            declared.min_validity_overlap <= overlap <= declared.max_validity_overlap
        ):
            raise fail(
                KsrPolicySigOverlap,
                f"bundles {a.id} and {b.id} overlap {format_duration(overlap)}, outside what "
                f"the request declares ({format_duration(declared.min_validity_overlap)}.."
                f"{format_duration(declared.max_validity_overlap)})",
            )
    if declared is not None:
        lo, hi = declared.min_validity_overlap, declared.max_validity_overlap
        r = policy.ranges.validity_overlap
        if lo > hi:
            raise fail(
                KsrPolicySigOverlap, "declared MinValidityOverlap exceeds MaxValidityOverlap"
            )
        if lo not in r or hi not in r:
            raise fail(
                KsrPolicySigOverlap,
                f"declared overlap {format_duration(lo)}..{format_duration(hi)} is outside the "
                f"operator range {r.text()}",
            )


def check_sig_validity(request: BundleSet, policy: KskPolicy) -> None:
    """Each bundle's validity lies in [min, max] (min compared with the shortest, max with the
    longest; kskm compared min against max)."""
    declared = _declared(request)
    if declared is not None:
        lo, hi = declared.min_signature_validity, declared.max_signature_validity
        if lo > hi:
            raise fail(
                KsrPolicySigValidity,
                f"declared MinSignatureValidity {format_duration(lo)} exceeds "
                f"MaxSignatureValidity {format_duration(hi)}",
            )
        r = policy.ranges.signature_validity
        if lo not in r or hi not in r:
            raise fail(
                KsrPolicySigValidity,
                f"declared signature validity {format_duration(lo)}..{format_duration(hi)} is "
                f"outside the operator range {r.text()}",
            )
    for b in request.bundles:
        v = b.expiration - b.inception
        if v <= 0:
            raise fail(KsrPolicySigValidity, f"{_b(b)} expires before it starts")
        if v < policy.signature_validity.min:
            raise fail(
                KsrPolicySigValidity,
                f"{_b(b)} is valid {format_duration(v)}, shorter than the minimum "
                f"{format_duration(policy.signature_validity.min)}",
            )
        if v > policy.signature_validity.max:
            raise fail(
                KsrPolicySigValidity,
                f"{_b(b)} is valid {format_duration(v)}, longer than the maximum "
                f"{format_duration(policy.signature_validity.max)}",
            )
        if declared is not None and not (
            declared.min_signature_validity <= v <= declared.max_signature_validity
        ):
            raise fail(
                KsrPolicySigValidity,
                f"{_b(b)} is valid {format_duration(v)}, outside what the request declares",
            )


def check_horizon(request: BundleSet, policy: KskPolicy, now: int) -> None:
    limit = now + policy.horizon
    for b in request.bundles:
        if b.expiration <= now:
            raise fail(KsrPolicyHorizon, f"{_b(b)} has already expired (now is {time_text(now)})")
        if b.expiration > limit:
            raise fail(
                KsrPolicyHorizon,
                f"{_b(b)} expires after the horizon {time_text(limit)} "
                f"(now + {format_duration(policy.horizon)})",
            )


def check_ksk_validity(request: BundleSet, policy: KskPolicy) -> None:
    """Each KSK the schema uses in a slot is valid for the whole bundle."""
    refs = {k.name: k for k in policy.keys}
    for i, b in enumerate(request.bundles):
        s = policy.slot_schema(i)
        for name in s.publish + s.sign + s.revoke:
            ref = refs.get(name)
            if ref is None:
                raise fail(KsrKskValidity, f"{_b(b)}: schema names unknown KSK {name!r}")
            if ref.valid_from is not None and b.inception < ref.valid_from:
                raise fail(
                    KsrKskValidity,
                    f"{_b(b)}: KSK {name} is valid only from {time_text(ref.valid_from)}",
                )
            if ref.valid_until is not None and b.expiration > ref.valid_until:
                raise fail(
                    KsrKskValidity,
                    f"{_b(b)}: KSK {name} is valid only until {time_text(ref.valid_until)}",
                )


def check_keytag_collision(keys: Iterable[DnsKey], where: str = "request") -> None:
    """No two different keys share a key tag, counting each key's REVOKE tag too (RFC 5011)."""
    seen: dict[tuple[int, int], bytes] = {}
    for k in keys:
        base = k.unrevoked()
        for variant in (base, base.revoked()):
            slot = (variant.key_tag, int(variant.algorithm))
            ident = base.public_key
            other = seen.get(slot)
            if other is not None and other != ident:
                raise fail(
                    KsrKeytagCollision,
                    f"{where}: key tag {variant.key_tag} (algorithm {int(variant.algorithm)}) "
                    "is shared by two different keys (REVOKE tags included); regenerate one",
                )
            seen[slot] = ident


def check_cds_sep(bs: BundleSet, cls: type[CheckFailed] = KsrCdsSep) -> None:
    """CDS and CDNSKEY only from SEP, non-revoked keys of the bundle's DNSKEY RRset."""
    for b in bs.bundles:
        for k in b.cdnskey:
            if not k.is_sep or k.is_revoked:
                raise fail(cls, f"{_b(b)}: CDNSKEY for key {k.key_tag} with flags {k.flags}")
        if not b.cds:
            continue
        seps = [k for k in b.keys if k.is_sep and not k.is_revoked]
        for ds in b.cds:
            if not any(ds.matches(bs.zone, k) for k in seps):
                raise fail(
                    cls,
                    f"{_b(b)}: CDS {ds.key_tag} does not match a SEP key of the bundle",
                )


def check_chain_keys(request: BundleSet, previous: BundleSet) -> None:
    if not previous.bundles or not request.bundles:
        raise fail(KsrChainKeys, "previous response or request has no bundles")
    last = max(previous.bundles, key=lambda b: (b.inception, b.expiration))
    first = _sorted(request)[0]
    a = {k.to_wire() for k in zsks(last)}
    b = {k.to_wire() for k in zsks(first)}
    if a != b:
        raise fail(
            KsrChainKeys,
            f"the ZSKs of the previous response's last bundle {last.id} "
            f"({sorted(k.key_tag for k in zsks(last))}) differ from those of the first "
            f"bundle {first.id} ({sorted(k.key_tag for k in zsks(first))})",
        )


def check_chain_overlap(request: BundleSet, previous: BundleSet, policy: KskPolicy) -> None:
    last = max(previous.bundles, key=lambda b: (b.inception, b.expiration))
    first = _sorted(request)[0]
    overlap = last.expiration - first.inception
    if overlap not in policy.overlap:
        if overlap < 0:
            msg = f"gap from {time_text(last.expiration)} to {time_text(first.inception)}"
        else:
            msg = f"overlap {format_duration(overlap)} outside {policy.overlap.text()}"
        raise fail(
            KsrChainOverlap,
            f"previous response's last bundle {last.id} and first bundle {first.id}: {msg}",
        )


def _history(request: BundleSet, previous: BundleSet | None) -> tuple[list[Bundle], int]:
    """Bundles in order, previous ones first; and how many came from ``previous``."""
    prev = sorted(previous.bundles, key=lambda b: b.inception) if previous else []
    prev = [b for b in prev if not request.bundles or b.inception < _sorted(request)[0].inception]
    return prev + _sorted(request), len(prev)


def _safety(request: BundleSet, policy: KskPolicy) -> tuple[int, int]:
    d = _declared(request)
    if d is not None:
        return d.publish_safety, d.retire_safety
    return policy.ranges.publish_safety.min, policy.ranges.retire_safety.min


def check_publish_safety(
    request: BundleSet, policy: KskPolicy, previous: BundleSet | None = None
) -> None:
    """A new ZSK is published alongside a key already in use (pre-publish), long enough."""
    ps, _ = _safety(request, policy)
    if ps not in policy.ranges.publish_safety:
        raise fail(
            KsrPublishSafety,
            f"declared publish safety {format_duration(ps)} is outside the operator range "
            f"{policy.ranges.publish_safety.text()}",
        )
    if _declared(request) is not None and ps < policy.dnskey_ttl:
        raise fail(
            KsrPublishSafety,
            f"declared publish safety {format_duration(ps)} is shorter than the DNSKEY TTL "
            f"{format_duration(policy.dnskey_ttl)}: resolvers could miss a new key",
        )
    hist, _ = _history(request, previous)
    for a, b in itertools.pairwise(hist):
        if zsks(a) and not {k.to_wire() for k in zsks(a)} & {k.to_wire() for k in zsks(b)}:
            raise fail(
                KsrPublishSafety,
                f"{_b(b)} replaces every ZSK of bundle {a.id} at once: a new ZSK must be "
                "pre-published alongside the one in use",
            )


def check_retire_safety(
    request: BundleSet, policy: KskPolicy, previous: BundleSet | None = None
) -> None:
    """A retired ZSK stayed published until its successor had been out publish+retire safety."""
    ps, rs = _safety(request, policy)
    if rs not in policy.ranges.retire_safety:
        raise fail(
            KsrRetireSafety,
            f"declared retire safety {format_duration(rs)} is outside the operator range "
            f"{policy.ranges.retire_safety.text()}",
        )
    hist, _ = _history(request, previous)
    first_seen: dict[bytes, int] = {}
    for i, b in enumerate(hist):
        for k in zsks(b):
            first_seen.setdefault(k.to_wire(), i)
        if i == 0:
            continue
        before = {k.to_wire() for k in zsks(hist[i - 1])}
        now = {k.to_wire() for k in zsks(b)}
        for gone in before - now:
            ok = False
            for succ in now & before:
                j = first_seen[succ]
                if j == 0 or hist[j].inception <= b.inception - (ps + rs):
                    ok = True  # first seen before our history began, or long enough ago
            if not ok:
                tag = DnsKey.from_wire(gone).key_tag
                raise fail(
                    KsrRetireSafety,
                    f"{_b(b)} drops ZSK {tag} before its successor was published for "
                    f"publish safety + retire safety ({format_duration(ps + rs)})",
                )


# --------------------------------------------------------------------------------------------
# The whole request


REQUEST_CHECK_IDS = (
    "KSR-DOMAIN",
    "KSR-BUNDLE-UNIQUE",
    "KSR-BUNDLE-KEYS",
    "KSR-BUNDLE-POP",
    "KSR-POLICY-BUNDLE-COUNT",
    "KSR-POLICY-CYCLE",
    "KSR-BUNDLE-INTERVAL",
    "KSR-POLICY-GAP",
    "KSR-POLICY-SIG-OVERLAP",
    "KSR-POLICY-SIG-VALIDITY",
    "KSR-POLICY-HORIZON",
    "KSR-KSK-VALIDITY",
    "KSR-KEYTAG-COLLISION",
    "KSR-CDS-SEP",
    "KSR-CHAIN-KEYS",
    "KSR-CHAIN-OVERLAP",
    "KSR-PUBLISH-SAFETY",
    "KSR-RETIRE-SAFETY",
)


def check_request(
    request: BundleSet,
    policy: KskPolicy,
    *,
    now: int,
    previous: BundleSet | None,
    disabled: set[str],
    ksks: Sequence[DnsKey] = (),
) -> None:
    """Run every KSR-* check on ``request`` (the KSK side, before any signing).

    ``previous`` is the last response signed for this zone (for the chain checks);
    ``disabled`` names check IDs to skip (each skip logged at WARNING); ``ksks`` are the KSK
    DNSKEYs that will sign (for the key-tag collision check).
    """
    unknown = set(disabled) - set(REQUEST_CHECK_IDS)
    if unknown:
        raise InputError(
            f"cannot disable unknown check(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(REQUEST_CHECK_IDS)})"
        )
    if not request.bundles:
        raise fail(KsrPolicyBundleCount, "request has no bundles")
    all_keys = [k for b in request.bundles for k in b.keys] + list(ksks)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("KSR-DOMAIN", lambda: check_domain(request, policy)),
        ("KSR-BUNDLE-UNIQUE", lambda: check_bundle_unique(request)),
        ("KSR-BUNDLE-KEYS", lambda: check_bundle_keys(request, policy)),
        (
            "KSR-BUNDLE-POP",
            lambda: check_bundle_pop(request, policy.foreign_zsks) if policy.check_pop else None,
        ),
        ("KSR-POLICY-BUNDLE-COUNT", lambda: check_bundle_count(request, policy)),
        ("KSR-POLICY-CYCLE", lambda: check_cycle(request, policy)),
        ("KSR-BUNDLE-INTERVAL", lambda: check_bundle_interval(request, policy)),
        ("KSR-POLICY-GAP", lambda: check_gap(request)),
        ("KSR-POLICY-SIG-OVERLAP", lambda: check_sig_overlap(request, policy)),
        ("KSR-POLICY-SIG-VALIDITY", lambda: check_sig_validity(request, policy)),
        ("KSR-POLICY-HORIZON", lambda: check_horizon(request, policy, now)),
        ("KSR-KSK-VALIDITY", lambda: check_ksk_validity(request, policy)),
        ("KSR-KEYTAG-COLLISION", lambda: check_keytag_collision(all_keys)),
        ("KSR-CDS-SEP", lambda: check_cds_sep(request)),
    ]
    if previous is not None:
        steps += [
            ("KSR-CHAIN-KEYS", lambda: check_chain_keys(request, previous)),
            ("KSR-CHAIN-OVERLAP", lambda: check_chain_overlap(request, previous, policy)),
        ]
    steps += [
        ("KSR-PUBLISH-SAFETY", lambda: check_publish_safety(request, policy, previous)),
        ("KSR-RETIRE-SAFETY", lambda: check_retire_safety(request, policy, previous)),
    ]
    if not policy.check_pop and "KSR-BUNDLE-POP" not in disabled:
        log.warning("KSR-BUNDLE-POP disabled by the policy (check_proof_of_possession: false)")
    for rid, step in steps:
        if rid in disabled:
            log.warning("%s disabled by the operator: this check was NOT run", rid)
            continue
        step()
        log.info("%s passed", rid)


# --------------------------------------------------------------------------------------------
# Coverage (planner and import)


def prove_coverage(
    bundles: Sequence[Bundle],
    start: int,
    end: int,
    margin: int,
    cls: type[CheckFailed] = PlanCoverage,
) -> None:
    """Every instant of [start, end) lies in a bundle with at least ``margin`` validity left.

    A bundle is usable from its inception until ``margin`` before its expiration. Raises ``cls``
    naming the first uncovered interval.
    """
    usable = sorted((b.inception, b.expiration - margin) for b in bundles)
    t = start
    while t < end:
        reach = [e for s, e in usable if s <= t < e]
        if not reach:
            later = [s for s, e in usable if s > t and e > s]
            until = min(later) if later else end
            raise fail(
                cls,
                f"no bundle with {format_duration(margin)} of validity left covers "
                f"{time_text(t)}..{time_text(min(until, end))}",
            )
        t = max(reach)


# --------------------------------------------------------------------------------------------
# Response checks (signer side on import; KSK side after writing)


def trust_keys(bundle: Bundle, zone: dns.name.Name, anchors: Sequence[DsRecord]) -> list[DnsKey]:
    """The SEP keys of ``bundle`` that a trust-anchor DS matches (unrevoked form)."""
    out = []
    for k in bundle.keys:
        if k.is_sep and any(ds.matches(zone, k.unrevoked()) for ds in anchors):
            out.append(k)
    return out


def verify_set(
    zone: dns.name.Name,
    b: Bundle,
    rrset: dns.rrset.RRset | None,
    sigs: Sequence[object],
    signers: Sequence[DnsKey],
    what: str,
) -> None:
    if rrset is None:
        if sigs:
            raise fail(SkrSignature, f"{_b(b)}: {what} signatures without a {what} RRset")
        return
    if not sigs:
        raise fail(SkrSignature, f"{_b(b)}: the {what} RRset is not signed")
    by_anchor = False
    for sig in sigs:
        h = RrsigHeader.of(sig)  # type: ignore[arg-type]
        if h.inception != b.inception or h.expiration != b.expiration:
            raise fail(
                SkrSignature,
                f"{_b(b)}: {what} RRSIG by key {h.key_tag} has validity "
                f"{time_text(h.inception)}..{time_text(h.expiration)}, not the bundle's",
            )
        if h.signer != zone:
            raise fail(SkrSignature, f"{_b(b)}: {what} RRSIG signer {h.signer} is not {zone}")
        try:
            verify_rrset(rrset, sig, list(b.keys))  # type: ignore[arg-type]
        except VerificationError as exc:
            raise fail(SkrSignature, f"{_b(b)}: {exc.reason}") from None
        if any(k.key_tag == h.key_tag and k.algorithm == h.algorithm for k in signers):
            by_anchor = True
    if not by_anchor:
        raise fail(SkrSignature, f"{_b(b)}: no {what} signature by a trust-anchor KSK")


def check_response(
    response: BundleSet,
    request: BundleSet,
    anchors: Sequence[DsRecord],
) -> None:
    """SKR-* checks: the response answers ``request`` and every RRSIG chains to ``anchors``."""
    if response.zone != request.zone:
        raise fail(SkrDomain, f"response is for {response.zone}, the request for {request.zone}")
    if len(response.bundles) != len(request.bundles):
        raise fail(
            SkrBundleMatch,
            f"response has {len(response.bundles)} bundles, the request {len(request.bundles)}",
        )
    zone = response.zone
    for q, r in zip(_sorted(request), _sorted(response), strict=True):
        if (q.inception, q.expiration) != (r.inception, r.expiration):
            raise fail(
                SkrBundleMatch,
                f"{_b(r)} does not answer requested {_b(q)}",
            )
        have = {k.to_wire() for k in r.keys}
        for k in q.keys:
            if k.to_wire() not in have:
                raise fail(SkrBundleKeys, f"{_b(r)}: requested ZSK {k.key_tag} is missing")
        asked = {k.to_wire() for k in q.keys}
        for k in r.keys:
            if k.to_wire() in asked:
                continue
            if not k.is_sep or not any(ds.matches(zone, k.unrevoked()) for ds in anchors):
                raise fail(
                    SkrBundleKeys,
                    f"{_b(r)}: unexpected key {k.key_tag} (flags {k.flags}): neither requested "
                    "nor a trust-anchor KSK",
                )
        signers = trust_keys(r, zone, anchors)
        verify_set(zone, r, r.dnskey_rrset(zone), r.signatures, signers, "DNSKEY")
        verify_set(zone, r, r.cds_rrset(zone), r.cds_signatures, signers, "CDS")
        verify_set(zone, r, r.cdnskey_rrset(zone), r.cdnskey_signatures, signers, "CDNSKEY")
    check_cds_sep(response, SkrCdsSep)
    log.info("SKR checks passed for %d bundles of %s", len(response.bundles), zone)


def anchors_for(
    zone: dns.name.Name, keys: Iterable[DnsKey], digest_type: int = 2
) -> list[DsRecord]:
    """DS records for ``keys`` (the KSK side's own trust anchors when re-validating)."""
    return [make_ds(zone, k.unrevoked(), digest_type) for k in keys]
