"""Every requirement ID of signer/bundles/checks.py refuses its failing case (in memory)."""

from __future__ import annotations

import logging
from dataclasses import replace

import dns.name
import pytest

from signer.algorithms import Algorithm
from signer.bundles import checks as C
from signer.bundles.declared import AlgorithmPolicy, DeclaredPolicy, SignaturePolicy
from signer.bundles.model import Bundle, BundleSet
from signer.bundles.planner import PlannedZsk, plan_request
from signer.bundles.policy import (
    DAY,
    KskKeyRef,
    KskPolicy,
    OperatorRanges,
    Policy,
    Range,
    SignerPolicy,
    Window,
)
from signer.bundles.request import add_proofs
from signer.bundles.response import NoBundleValid, select_bundle
from signer.errors import CheckFailed, InputError
from signer.keys.soft import SoftKey

ZONE = dns.name.from_text("example.com.")
START = 1767225600  # 2026-01-01
NOW = START - DAY
ALG = Algorithm.ECDSAP256SHA256

Z1 = SoftKey.generate(ALG, ksk=False)
Z2 = SoftKey.generate(ALG, ksk=False)
K1 = SoftKey.generate(ALG, ksk=True)

KP = KskPolicy(
    zone=ZONE,
    dnskey_ttl=3600,
    keys=(KskKeyRef("k1", "unused"),),
    ranges=OperatorRanges(zsk_algorithms=(ALG,), zsk_bits=Range(256, 256)),
)
POLICY = Policy(ZONE, SignerPolicy(), KP, Window(START, 90 * DAY))


def _request(zsks: list[PlannedZsk] | None = None) -> BundleSet:
    plan = plan_request(POLICY, zsks or [PlannedZsk(Z1)], POLICY.window)  # type: ignore[arg-type]
    return add_proofs(plan.request, [Z1, Z2])


GOOD = _request()


def _with(req: BundleSet, i: int, **kw: object) -> BundleSet:
    bs = list(req.bundles)
    bs[i] = replace(bs[i], **kw)  # type: ignore[arg-type]
    return replace(req, bundles=tuple(bs))


def _run(
    req: BundleSet, policy: KskPolicy = KP, previous: BundleSet | None = None, **kw: object
) -> None:
    C.check_request(req, policy, now=NOW, previous=previous, disabled=set(), **kw)  # type: ignore[arg-type]


def _refused(rid: str, req: BundleSet, caplog: pytest.LogCaptureFixture, **kw: object) -> None:
    with caplog.at_level(logging.ERROR, "dnssec_ceremony.checks"), pytest.raises(CheckFailed) as ei:
        _run(req, **kw)  # type: ignore[arg-type]
    assert ei.value.requirement == rid, str(ei.value)
    assert str(ei.value).startswith(rid + ":")
    assert any(rid in r.getMessage() for r in caplog.records)


def test_good_request_passes() -> None:
    _run(GOOD)


def test_domain(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-DOMAIN", replace(GOOD, zone=dns.name.from_text("other.")), caplog)


def test_bundle_unique(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-BUNDLE-UNIQUE", _with(GOOD, 1, id=GOOD.bundles[0].id), caplog)


def test_bundle_keys_ksk_in_request(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-BUNDLE-KEYS", _with(GOOD, 0, keys=(K1.dnskey,)), caplog)


def test_bundle_keys_algorithm(caplog: pytest.LogCaptureFixture) -> None:
    other = SoftKey.generate(Algorithm.ED25519, ksk=False)
    _refused("KSR-BUNDLE-KEYS", _with(GOOD, 0, keys=(other.dnskey,)), caplog)


def test_bundle_keys_ttl(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-BUNDLE-KEYS", _with(GOOD, 0, ttl=7200), caplog)


def test_pop_missing_and_swapped(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-BUNDLE-POP", _with(GOOD, 0, signatures=()), caplog)
    sig = GOOD.bundles[0].signatures[0]
    bad = sig.replace(signature=bytes([sig.signature[0] ^ 1]) + sig.signature[1:])  # type: ignore[attr-defined]
    _refused("KSR-BUNDLE-POP", _with(GOOD, 0, signatures=(bad,)), caplog)
    # a signature made over another bundle's key set
    other = add_proofs(_with(GOOD, 0, keys=(Z1.dnskey, Z2.dnskey)), [Z1, Z2])
    _refused("KSR-BUNDLE-POP", _with(GOOD, 0, signatures=other.bundles[0].signatures[:1]), caplog)


def test_pop_disabled_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dnssec_ceremony.checks"):
        C.check_request(
            _with(GOOD, 0, signatures=()), KP, now=NOW, previous=None, disabled={"KSR-BUNDLE-POP"}
        )
    assert any(
        "KSR-BUNDLE-POP" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


def test_disable_unknown_id_refused() -> None:
    with pytest.raises(InputError):
        C.check_request(GOOD, KP, now=NOW, previous=None, disabled={"KSR-NOPE"})


def test_bundle_count(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-POLICY-BUNDLE-COUNT", replace(GOOD, bundles=GOOD.bundles[:8]), caplog)


def test_cycle(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-POLICY-CYCLE", GOOD, caplog, policy=replace(KP, cycle=Range(10 * DAY, 20 * DAY)))


def test_bundle_interval(caplog: pytest.LogCaptureFixture) -> None:
    b = GOOD.bundles[1]
    req = _with(GOOD, 1, inception=b.inception + 2 * DAY, expiration=b.expiration + 2 * DAY)
    req = add_proofs(req, [Z1])
    _refused("KSR-BUNDLE-INTERVAL", req, caplog)


def test_gap(caplog: pytest.LogCaptureFixture) -> None:
    pol = replace(KP, bundle_interval=Range(0, 100 * DAY), cycle=Range(0, 400 * DAY))
    last = GOOD.bundles[-1]
    req = add_proofs(
        _with(GOOD, 8, inception=last.inception + 30 * DAY, expiration=last.expiration + 30 * DAY),
        [Z1],
    )
    _refused("KSR-POLICY-GAP", req, caplog, policy=pol)


def test_sig_overlap(caplog: pytest.LogCaptureFixture) -> None:
    _refused(
        "KSR-POLICY-SIG-OVERLAP", GOOD, caplog, policy=replace(KP, overlap=Range(DAY, 2 * DAY))
    )


def test_sig_validity_min_and_max(caplog: pytest.LogCaptureFixture) -> None:
    longer = replace(KP, signature_validity=Range(22 * DAY, 30 * DAY))
    _refused("KSR-POLICY-SIG-VALIDITY", GOOD, caplog, policy=longer)
    shorter = replace(KP, signature_validity=Range(10 * DAY, 20 * DAY))
    _refused("KSR-POLICY-SIG-VALIDITY", GOOD, caplog, policy=shorter)


def test_declared_min_above_max(caplog: pytest.LogCaptureFixture) -> None:
    sp = SignaturePolicy(
        DAY, DAY, 21 * DAY, 22 * DAY, 12 * DAY, 9 * DAY, (AlgorithmPolicy(ALG, 256),)
    )
    _refused(
        "KSR-POLICY-SIG-VALIDITY", replace(GOOD, declared_policy=DeclaredPolicy(zsk=sp)), caplog
    )


def test_horizon(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-POLICY-HORIZON", GOOD, caplog, policy=replace(KP, horizon=30 * DAY))


def test_ksk_validity(caplog: pytest.LogCaptureFixture) -> None:
    pol = replace(KP, keys=(KskKeyRef("k1", "unused", valid_until=START + 30 * DAY),))
    _refused("KSR-KSK-VALIDITY", GOOD, caplog, policy=pol)


def test_keytag_collision_including_revoke_tag(caplog: pytest.LogCaptureFixture) -> None:
    # find two keys where one's tag equals the other's REVOKE tag (tags differ by 128 mostly)
    k = K1.dnskey
    with caplog.at_level(logging.ERROR, "dnssec_ceremony.checks"), pytest.raises(CheckFailed) as ei:
        C.check_keytag_collision([k, _colliding(k)])
    assert ei.value.requirement == "KSR-KEYTAG-COLLISION"
    assert "KSR-KEYTAG-COLLISION" in caplog.text


def _colliding(k):  # type: ignore[no-untyped-def]
    """Another 257 key whose tag (or REVOKE tag) equals ``k``'s: adjust the last two bytes."""
    target = {k.key_tag, k.revoked().key_tag}
    body = bytearray(k.public_key)
    for a in range(256):
        for b in range(256):
            body[-2], body[-1] = a, b
            cand = replace(k, public_key=bytes(body))
            if cand.public_key != k.public_key and cand.key_tag in target:
                return cand
    raise AssertionError("no collision found")


def test_cds_sep(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-CDS-SEP", _with(GOOD, 0, cdnskey=(Z1.dnskey,)), caplog)


def _previous(keys: tuple, shift: int) -> BundleSet:  # type: ignore[type-arg]
    last = Bundle("prev", START - shift, START - shift + 21 * DAY, 3600, keys)
    return BundleSet(ZONE, (last,), "response")


def test_chain_keys(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-CHAIN-KEYS", GOOD, caplog, previous=_previous((Z2.dnskey, K1.dnskey), 10 * DAY))


def test_chain_overlap(caplog: pytest.LogCaptureFixture) -> None:
    _refused("KSR-CHAIN-OVERLAP", GOOD, caplog, previous=_previous((Z1.dnskey,), 25 * DAY))
    _run(GOOD, previous=_previous((Z1.dnskey, K1.dnskey), 10 * DAY))


def test_publish_safety(caplog: pytest.LogCaptureFixture) -> None:
    # bundle 2 swaps the ZSK without pre-publication
    req = add_proofs(_with(GOOD, 1, keys=(Z2.dnskey,)), [Z1, Z2])
    _refused("KSR-PUBLISH-SAFETY", req, caplog)


def test_retire_safety(caplog: pytest.LogCaptureFixture) -> None:
    # Z2 appears in bundle 3, Z1 dropped in bundle 4: only 10 days, less than 2 x P10D
    pol = replace(
        KP,
        ranges=replace(
            KP.ranges,
            publish_safety=Range(10 * DAY, 10 * DAY),
            retire_safety=Range(10 * DAY, 10 * DAY),
        ),
    )
    req = _with(GOOD, 2, keys=(Z1.dnskey, Z2.dnskey))
    for i in range(3, 9):
        req = _with(req, i, keys=(Z2.dnskey,))
    _refused("KSR-RETIRE-SAFETY", add_proofs(req, [Z1, Z2]), caplog, policy=pol)


def test_rollover_plan_passes_safety() -> None:
    req = _request([PlannedZsk(Z1), PlannedZsk(Z2, START + 40 * DAY)])
    pol = replace(
        KP,
        ranges=replace(
            KP.ranges,
            publish_safety=Range(10 * DAY, 10 * DAY),
            retire_safety=Range(10 * DAY, 10 * DAY),
        ),
    )
    _run(req, policy=pol)


def test_plan_coverage_refused_names_gap(caplog: pytest.LogCaptureFixture) -> None:
    prev = _previous((Z1.dnskey,), 40 * DAY)  # expired 19 days before the window
    with pytest.raises(CheckFailed) as ei:
        plan_request(POLICY, [PlannedZsk(Z1)], POLICY.window, previous=prev)  # type: ignore[list-item]
    assert ei.value.requirement == "PLAN-COVERAGE"
    assert "2025-12-" in str(ei.value)


def test_plan_too_many_bundles() -> None:
    with pytest.raises(CheckFailed) as ei:
        plan_request(POLICY, [PlannedZsk(Z1)], Window(START, 270 * DAY))  # type: ignore[list-item]
    assert ei.value.requirement == "PLAN-COVERAGE"


def test_select_bundle_none_and_latest() -> None:
    with pytest.raises(NoBundleValid) as ei:
        select_bundle(GOOD, GOOD.end + 1)
    assert "SIGNER-BUNDLE-NONE" in str(ei.value) and "ran out" in str(ei.value)
    assert select_bundle(GOOD, START + 15 * DAY).id == GOOD.bundles[1].id


def test_coverage_gap_named() -> None:
    with pytest.raises(CheckFailed) as ei:
        C.prove_coverage(GOOD.bundles[:3], START, START + 90 * DAY, 2 * DAY, C.SkrCoverage)
    assert ei.value.requirement == "SKR-COVERAGE"
    assert "2026-02-09" in str(ei.value)
