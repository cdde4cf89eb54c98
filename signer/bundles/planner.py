"""The planner: policy + ZSKs + window -> the ordered slots of a request, with coverage proven.

Slots start at the window start, ``ksk.bundle_spacing`` apart, each valid
``ksk.signature_validity.max``. A bundle is *in use* from its inception until the next one's
(the signer picks, among the bundles valid now, the one expiring last). A ZSK is in a bundle
when its publication period meets that use period: ZSK *i* signs from ``active_from[i]`` until
the next ZSK's ``active_from``, and is published ``pre_publish`` before and ``post_publish``
after (RFC 6781 sect. 4.1.1.1, pre-publish rollover). Foreign ZSKs (multi-signer model 1,
RFC 8901) are in every bundle.

Before returning, :func:`plan_request` proves that every instant of the window, and the hand-over
from the previous response, lies in a bundle with at least ``signer.bundle_margin`` left;
otherwise it refuses with PLAN-COVERAGE naming the gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

from signer.bundles.checks import PlanCoverage, fail, prove_coverage
from signer.bundles.model import Bundle, BundleSet
from signer.bundles.policy import Policy, Window, format_duration, time_text
from signer.dnskey import DnsKey
from signer.errors import InputError
from signer.rrsig import Signer

FAR = 2**62


@dataclass(frozen=True)
class PlannedZsk:
    """One of our ZSKs: its key (a token key or software key) and when it starts signing
    (``None``: already signing before the window)."""

    key: Signer
    active_from: int | None = None


@dataclass(frozen=True)
class Plan:
    request: BundleSet  # unsigned (no proofs of possession yet)
    window: Window
    coverage_from: int  # where the coverage proof began (hand-over from the previous response)


def _publication(zsks: Sequence[PlannedZsk], pre: int, post: int) -> list[tuple[DnsKey, int, int]]:
    order = sorted(zsks, key=lambda z: -FAR if z.active_from is None else z.active_from)
    if sum(1 for z in order if z.active_from is None) > 1:
        raise InputError("only the first ZSK may have no start time (it signs already)")
    out = []
    for i, z in enumerate(order):
        start = -FAR if z.active_from is None else z.active_from - pre
        if i == 0 and z.active_from is not None:
            start = -FAR  # the first key of the plan is the one in use: no pre-publication
        nxt = order[i + 1].active_from if i + 1 < len(order) else None
        end = FAR if nxt is None else nxt + post
        out.append((z.key.dnskey, start, end))
    keys = [k for k, _, _ in out]
    if len({k.to_wire() for k in keys}) != len(keys):
        raise InputError("the same ZSK is listed twice")
    return out


def plan_request(
    policy: Policy,
    zsks: Sequence[PlannedZsk],
    window: Window,
    *,
    previous: BundleSet | None = None,
) -> Plan:
    """The request's slots for ``window`` (unsigned). Refuses with PLAN-COVERAGE if coverage
    of the window and of the hand-over from ``previous`` cannot be proven."""
    if not zsks:
        raise InputError("no ZSK given")
    k, s = policy.ksk, policy.signer
    for z in zsks:
        dk = z.key.dnskey
        if dk.is_sep or dk.is_revoked or not dk.is_zone_key:
            raise InputError(f"key {dk.key_tag} is not a ZSK (flags {dk.flags})")
        if dk.algorithm != s.algorithm:
            raise InputError(
                f"ZSK {dk.key_tag} uses {dk.algorithm.name}, the policy says {s.algorithm.name}"
            )
    if window.length > window.max_length:
        raise InputError(
            f"window {format_duration(window.length)} exceeds the maximum "
            f"{format_duration(window.max_length)}"
        )
    validity = k.signature_validity.max
    spacing = k.bundle_spacing
    margin = s.bundle_margin
    # enough slots that the last one, minus the margin, reaches the window end
    n = max(1, math.ceil((window.length - validity + margin) / spacing) + 1)
    n = max(n, k.bundle_count.min)
    if n > k.bundle_count.max:
        raise fail(
            PlanCoverage,
            f"a window of {format_duration(window.length)} needs {n} bundles "
            f"{format_duration(spacing)} apart; the policy allows at most {k.bundle_count.max}",
        )
    pubs = _publication(zsks, s.pre_publish, s.post_publish)
    incs = [window.start + i * spacing for i in range(n)]
    bundles = []
    for i, inc in enumerate(incs):
        exp = inc + validity
        use_end = incs[i + 1] if i + 1 < n else exp
        keys = [dk for dk, a, b in pubs if a < use_end and b > inc]
        keys += [f for f in s.foreign_zsks if all(f.to_wire() != x.to_wire() for x in keys)]
        if not keys:
            raise InputError(f"no ZSK is published in slot {i + 1} ({time_text(inc)})")
        bundles.append(
            Bundle(
                id=f"{i + 1:03d}-{inc}",
                inception=inc,
                expiration=exp,
                ttl=k.dnskey_ttl,
                keys=tuple(sorted(keys, key=lambda d: (d.key_tag, d.public_key))),
            )
        )
    request = BundleSet(policy.zone, tuple(bundles), "request")
    start = window.start
    everything: list[Bundle] = list(bundles)
    if previous is not None:
        if previous.zone != policy.zone:
            raise InputError(f"previous response is for {previous.zone}, not {policy.zone}")
        # the hand-over: from the moment the previous response stops being usable
        start = min(start, max(previous.start, previous.end - margin))
        everything += list(previous.bundles)
    prove_coverage(everything, start, window.end, margin, PlanCoverage)
    return Plan(request, window, start)


def timeline_table(request: BundleSet, *, active: Sequence[PlannedZsk] = ()) -> Table:
    """A rich table: one row per slot with its times and the keys it publishes."""
    t = Table(title=f"Key bundles for {request.zone}")
    for col in ("#", "id", "inception (UTC)", "expiration (UTC)", "valid", "DNSKEYs"):
        t.add_column(col)
    for i, b in enumerate(request.bundles, 1):
        t.add_row(
            str(i),
            b.id,
            time_text(b.inception),
            time_text(b.expiration),
            format_duration(b.expiration - b.inception),
            " ".join(f"{d.role}{d.key_tag}" for d in b.keys),
        )
    return t
