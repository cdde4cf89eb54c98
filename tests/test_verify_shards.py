"""Self-verification in shards (signer.zone.verify shard mode): a signed zone cut at apex-child
boundaries into k = 1..4 shards passes exactly when the whole zone does, with the same counts,
and every corruption is refused with the requirement ID of the whole-zone verification --
including faults that straddle a shard boundary and faults only the joints between shards show.

The zones are signed by BIND dnssec-signzone (as in test_zone_verify.py), read back
with read_signed_zone, and cut with the small splitter below (the design's shard rule:
boundaries are canonical keys of names directly below the apex).
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from zone_testlib import (
    HAND_ZONE,
    ORIGIN,
    BindKeys,
    bind_keys,
    bind_sign,
    drop_lines,
    generated_zone,
    lines_matching,
    sub_line,
)

from signer.algorithms import Algorithm
from signer.dnskey import DnsKey, make_ds
from signer.keys.soft import SoftKey
from signer.zone.model import (
    T_A,
    T_DNAME,
    T_DNSKEY,
    T_NS,
    T_NSEC,
    T_NSEC3,
    T_NSEC3PARAM,
    RRset,
    Zone,
    canonical_key,
    labels,
    name_from_text,
    name_to_text,
    parent_of,
    soa_fields,
)
from signer.zone.nsec3 import b32hex, nsec3_hash
from signer.zone.verify import (
    MAX_REPORTED,
    ShardContext,
    ShardVerification,
    VerifyReport,
    ZoneVerificationFailed,
    check_nsec3_chain,
    combine_shards,
    read_signed_zone,
    verify_shard,
    verify_signed_zone,
)

NOW = int(time.time())
SHARD_COUNTS = (1, 2, 3, 4)
MODES = ("nsec", "nsec3", "optout")


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> BindKeys:
    return bind_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def zsk(keys: BindKeys) -> DnsKey:
    return keys.zsk_soft().dnskey


@pytest.fixture(scope="module")
def signed(keys: BindKeys, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("signed")
    (d / "zone").write_text(HAND_ZONE)
    return {
        "nsec": bind_sign(d / "zone", keys, d / "nsec").read_text(),
        "nsec3": bind_sign(d / "zone", keys, d / "nsec3", nsec3=True).read_text(),
        "optout": bind_sign(d / "zone", keys, d / "optout", nsec3=True, optout=True).read_text(),
    }


def zone_of(text: str, tmp_path: Path) -> Zone:
    p = tmp_path / "signed.zone"
    p.write_text(text)
    return read_signed_zone(p, ORIGIN)


# -- cutting a signed zone into shards ------------------------------------------------------
def apex_child(name: bytes, origin: bytes) -> bytes:
    while parent_of(name) != origin:
        name = parent_of(name)
    return name


def chain_names(zone: Zone) -> set[bytes]:
    """Apex, authoritative names and delegations (not NSEC3 owners, not below a cut)."""
    origin = zone.origin
    out = set()
    for name, rrsets in zone.nodes.items():
        if any(rs.rtype == T_NSEC3 for rs in rrsets):
            continue
        anc = name
        while anc != origin:
            anc = parent_of(anc)
            types = {rs.rtype for rs in zone.nodes.get(anc, ())}
            if anc != origin and types & {T_NS, T_DNAME}:
                break
        else:
            out.add(name)
    return out


def split(zone: Zone, k: int) -> list[tuple[Zone, ShardContext]]:
    """k shards at apex-child boundaries, with the contexts the coordinator would hand out."""
    origin = zone.origin
    names = sorted(zone.nodes, key=canonical_key)
    assert names[0] == origin
    children = sorted({canonical_key(apex_child(n, origin)) for n in names[1:]})
    bounds = [children[j * len(children) // k] for j in range(1, k)]
    assert len(set(bounds)) == k - 1
    groups: list[list[bytes]] = [[] for _ in range(k)]
    for n in names:
        groups[bisect.bisect_right(bounds, canonical_key(n))].append(n)
    chain = chain_names(zone)
    firsts = [next((n for n in g if n in chain), None) for g in groups]
    soa = zone.soa()
    dnskey = zone.get(origin, T_DNSKEY)
    param = zone.get(origin, T_NSEC3PARAM)
    assert dnskey is not None
    out = []
    for b, group in enumerate(groups):
        ctx = ShardContext(
            index=b,
            count=k,
            dnskey=dnskey,
            negative_ttl=min(soa.ttl, soa_fields(soa.rdatas[0]).minimum),
            nsec3param=param.rdatas[0] if param else None,
            next_chain_name=next((f for f in firsts[b + 1 :] if f is not None), origin),
        )
        out.append((Zone(origin, {n: zone.nodes[n] for n in group}, order=group), ctx))
    return out


def shard_of(shards: list[tuple[Zone, ShardContext]], name: bytes) -> int:
    return next(i for i, (z, _) in enumerate(shards) if name in z.nodes)


def verify_parts(
    shards: list[tuple[Zone, ShardContext]],
    keys: BindKeys,
    zsk: DnsKey,
    *,
    level: str = "structural",
    now: int = NOW,
    pack: bool = True,
    **kw: Any,
) -> list[ShardVerification]:
    parts = []
    for z, ctx in shards:
        args: dict[str, object] = {"trust_anchor_ds": keys.ds(), "now": now, "level": level}
        args.update(kw)
        part = verify_shard(z, ctx, zsk=zsk, min_validity=0, **args)  # type: ignore[arg-type]
        if pack:
            part.pack_nsec3()  # as a worker holds it (sharded.ShardWorker.sign)
        parts.append(pickle.loads(pickle.dumps(part)))  # as it crosses the worker's pipe
    return parts


def combine(shards: list[tuple[Zone, ShardContext]], parts: list[ShardVerification]) -> object:
    z, ctx = shards[0]
    return combine_shards(parts, origin=z.origin, level="structural", nsec3param=ctx.nsec3param)


def sharded(
    zone: Zone, keys: BindKeys, zsk: DnsKey, k: int, *, level: str = "structural", **kw: Any
) -> VerifyReport:
    shards = split(zone, k)
    parts = verify_parts(shards, keys, zsk, level=level, **kw)
    return combine_shards(
        parts, origin=zone.origin, level=level, nsec3param=shards[0][1].nsec3param
    )


def whole(
    zone: Zone, keys: BindKeys, zsk: DnsKey, *, level: str = "structural", **kw: object
) -> VerifyReport:
    args: dict[str, object] = {"trust_anchor_ds": keys.ds(), "now": NOW, "level": level}
    args.update(kw)
    return verify_signed_zone(zone, zsk=zsk, **args)  # type: ignore[arg-type]


def refusal(run: Callable[[], object]) -> ZoneVerificationFailed:
    with pytest.raises(ZoneVerificationFailed) as exc:
        run()
    return exc.value


def same_counts(a: VerifyReport, b: VerifyReport) -> None:
    for field in ("denial", "names", "rrsets_signed", "rrsigs", "rrsigs_verified"):
        assert getattr(a, field) == getattr(b, field), field
    for field in ("min_expiration", "max_expiration", "trust_anchor_key", "origin", "level"):
        assert getattr(a, field) == getattr(b, field), field


# -- (a) a good zone passes with the same counts ---------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("level", ["structural", "sample", "full"])
def test_good_zone_passes_in_every_cut(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path, mode: str, level: str
) -> None:
    zone = zone_of(signed[mode], tmp_path)
    ref = whole(zone, keys, zsk, level=level)
    assert ref.denial == {"nsec": "nsec", "nsec3": "nsec3", "optout": "nsec3 opt-out"}[mode]
    assert ref.rrsigs_verified == (1 if level == "structural" else ref.rrsigs + 1)
    for k in SHARD_COUNTS:
        shards = split(zone, k)
        assert all(z.order for z, _ in shards)  # every shard has names
        parts = verify_parts(shards, keys, zsk, level=level)
        assert [p.failure_total for p in parts] == [0] * k
        assert parts[0].trust_anchor_key == keys.ksk_soft().dnskey.key_tag
        assert all(p.trust_anchor_key == 0 for p in parts[1:])
        if mode == "nsec":
            assert all(not p.nsec3_found and not p.nsec3_expected for p in parts)
        else:  # the compact lists cover the whole zone's chain, spread over the shards
            assert sum(len(p.found_nsec3()) for p in parts) == sum(
                1 for rs in zone.nodes.values() if rs[0].rtype == T_NSEC3
            )
            assert sum(1 for p in parts if p.found_nsec3()) > 1 or k == 1
        r = combine_shards(
            parts, origin=zone.origin, level=level, nsec3param=shards[0][1].nsec3param
        )
        same_counts(r, ref)
        assert r.processes == k


def test_registry_zone_full(keys: BindKeys, zsk: DnsKey, tmp_path: Path) -> None:
    """A generated registry zone (NSEC3 opt-out, many delegations, glue), every signature."""
    src = tmp_path / "gen.zone"
    src.write_text(generated_zone(150, seed=7))
    out = bind_sign(src, keys, tmp_path / "gen.signed", nsec3=True, optout=True)
    zone = read_signed_zone(out, ORIGIN)
    ref = whole(zone, keys, zsk, level="full")
    assert ref.denial == "nsec3 opt-out"
    assert ref.rrsigs > 100
    for k in SHARD_COUNTS:
        same_counts(sharded(zone, keys, zsk, k, level="full"), ref)


# -- (b) corruptions: the same requirement ID as the whole zone ------------------------------
def _graft_ns_sig(t: str) -> str:
    sig = lines_matching(t, r"^sec\.example\.test\.\s.*RRSIG\s+DS ")[0]
    sig = sig.replace("sec.example.test.", "sub.example.test.", 1).replace("RRSIG\tDS", "RRSIG\tNS")
    return t + sig + "\n"


def _graft_glue_sig(t: str) -> str:
    sig = lines_matching(t, r"^ns1\.example\.test\.\s.*RRSIG\s+A ")[0]
    return t + sig.replace("ns1.example.test.", "ns.sub.example.test.", 1) + "\n"


def _drop_nsec3(t: str) -> str:
    owner = lines_matching(t, r"\sNSEC3\s+1 ")[3].split()[0]
    return drop_lines(t, rf"^{owner}\s", count=2)


def _nsec3_extra_type(t: str) -> str:
    line = next(ln for ln in lines_matching(t, r"\sNSEC3\s+1 ") if ln.endswith(" A RRSIG"))
    return t.replace(line, line[: -len(" A RRSIG")] + " A AAAA RRSIG")


def _nsec3_ttl(t: str) -> str:
    line = lines_matching(t, r"\sNSEC3\s+1 ")[-1]
    return t.replace(line, line.replace(" 300 IN NSEC3", " 299 IN NSEC3", 1))


OTHER_KSK = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True)

# (name, zone, edit of the signed text, level, extra arguments, expected first requirement)
CASES: list[tuple[str, str, Callable[[str], str], str, dict[str, object], str]] = [
    (
        "missing-rrsig",
        "nsec",
        lambda t: drop_lines(t, r"^www\.example\.test\.\s.*RRSIG\s+A "),
        "structural",
        {},
        "ZONE-VERIFY-UNSIGNED",
    ),
    (
        "bad-signature",
        "nsec3",
        lambda t: sub_line(t, r"^www\.example\.test\.\s.*\sA\s", "192.0.2.2", "192.0.2.99"),
        "full",
        {},
        "ZONE-VERIFY-SIGNATURE",
    ),
    (
        "record-added-after-signing",
        "nsec",
        lambda t: t + "late.example.test. 3600 IN A 192.0.2.77\n",
        "structural",
        {},
        "ZONE-VERIFY-UNSIGNED",
    ),
    (
        "nsec-removed",
        "nsec",
        lambda t: drop_lines(
            drop_lines(t, r"^ns1\.example\.test\.\s.*\sNSEC\s"),
            r"^ns1\.example\.test\.\s.*RRSIG\s+NSEC ",
        ),
        "structural",
        {},
        "ZONE-VERIFY-NSEC-CHAIN",
    ),
    (
        "nsec-bitmap",
        "nsec",
        lambda t: sub_line(t, r"^ns1\.example\.test\.\s.*\sNSEC\s", " AAAA ", " "),
        "structural",
        {},
        "ZONE-VERIFY-BITMAP",
    ),
    (
        "nsec-ttl",
        "nsec",
        lambda t: sub_line(t, r"^ns1\.example\.test\.\s.*\sNSEC\s", "300 IN NSEC", "3600 IN NSEC"),
        "structural",
        {},
        "ZONE-VERIFY-RRSIG-FIELDS",  # first; ZONE-VERIFY-NEGATIVE-TTL follows
    ),
    (
        "nsec3-ttl",
        "nsec3",
        _nsec3_ttl,
        "structural",
        {},
        "ZONE-VERIFY-RRSIG-FIELDS",
    ),
    (
        "delegation-ns-signed",
        "nsec",
        _graft_ns_sig,
        "structural",
        {},
        "ZONE-VERIFY-EXTRA-SIG",
    ),
    ("glue-signed", "optout", _graft_glue_sig, "structural", {}, "ZONE-VERIFY-EXTRA-SIG"),
    (
        "expired",
        "nsec3",
        lambda t: t,
        "structural",
        {"now": NOW + 60 * 86400},
        "ZONE-VERIFY-VALIDITY",
    ),
    (
        "wrong-trust-anchor",
        "nsec",
        lambda t: t,
        "sample",
        {"trust_anchor_ds": [make_ds(ORIGIN, OTHER_KSK.dnskey)]},
        "ZONE-VERIFY-DNSKEY-TA",
    ),
    ("nsec3-removed", "nsec3", _drop_nsec3, "structural", {}, "ZONE-VERIFY-NSEC3-CHAIN"),
    (
        "opt-out-flag-cleared",
        "optout",
        lambda t: "\n".join(ln.replace("NSEC3\t1 1 ", "NSEC3\t1 0 ") for ln in t.splitlines()),
        "structural",
        {},
        "ZONE-VERIFY-NSEC3-CHAIN",
    ),
    ("nsec3-bitmap", "nsec3", _nsec3_extra_type, "structural", {}, "ZONE-VERIFY-BITMAP"),
    (
        "nsec3param-changed",
        "nsec3",
        lambda t: sub_line(t, r"\sNSEC3PARAM\s", "NSEC3PARAM\t1 0 0 -", "NSEC3PARAM\t1 0 1 -"),
        "structural",
        {},
        "ZONE-VERIFY-NSEC3-PARAM",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_corruption_refused_like_whole_zone(
    signed: dict[str, str],
    keys: BindKeys,
    zsk: DnsKey,
    tmp_path: Path,
    case: tuple[str, str, Callable[[str], str], str, dict[str, object], str],
) -> None:
    _name, mode, edit, level, kw, requirement = case
    zone = zone_of(edit(signed[mode]), tmp_path)
    ref = refusal(lambda: whole(zone, keys, zsk, level=level, **kw))
    assert ref.requirement == requirement
    for k in SHARD_COUNTS:
        e = refusal(lambda k=k: sharded(zone, keys, zsk, k, level=level, **kw))  # type: ignore[misc]
        assert e.requirement == requirement, (k, e.messages)
        assert set(e.requirements) == set(ref.requirements), k
        assert set(e.messages) <= set(ref.messages) | _joint_messages(e), k
        assert str(e).endswith("the signed zone is not published")


def _joint_messages(e: ZoneVerificationFailed) -> set[str]:
    return {m for m in e.messages if "shard" in m}


# -- faults at the boundaries between shards ------------------------------------------------
def _nsec_next(rd: bytes) -> bytes:
    end = 0
    while rd[end]:
        end += 1 + rd[end]
    return rd[: end + 1]


def _replace(zone: Zone, owner: bytes, rtype: int, rdata: bytes) -> None:
    zone.nodes[owner] = [
        rs._replace(rdatas=(rdata,)) if rs.rtype == rtype else rs for rs in zone.nodes[owner]
    ]


def _last_chain_name(shard: Zone) -> bytes:
    return [n for n in shard.order if any(rs.rtype == T_NSEC for rs in shard.nodes[n])][-1]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_nsec_next_name_wrong_at_shard_boundary(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path, k: int
) -> None:
    """The last NSEC of shard 0 skips the first name of shard 1."""
    zone = zone_of(signed["nsec"], tmp_path)
    shards = split(zone, k)
    victim = _last_chain_name(shards[0][0])
    rd = zone.get(victim, T_NSEC).rdatas[0]  # type: ignore[union-attr]
    assert _nsec_next(rd).lower() == shards[0][1].next_chain_name  # across the boundary
    skip_to = shards[2][1].next_chain_name if k > 2 else zone.origin
    _replace(zone, victim, T_NSEC, skip_to + rd[len(_nsec_next(rd)) :])
    ref = refusal(lambda: whole(zone, keys, zsk))
    e = refusal(lambda: sharded(zone, keys, zsk, k))
    assert ref.requirement == e.requirement == "ZONE-VERIFY-NSEC-CHAIN"
    assert f"NSEC at {name_to_text(victim)} points to {name_to_text(skip_to)}" in str(e)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_coordinator_skipping_a_shard_is_caught_at_the_joint(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path, k: int
) -> None:
    """The coordinator tells shard 0 (and so its signer) a wrong next chain name: shard 0's
    own chain agrees with it, only the joint between the shards' chains shows the gap."""
    zone = zone_of(signed["nsec"], tmp_path)
    shards = split(zone, k)
    victim = _last_chain_name(shards[0][0])
    rd = zone.get(victim, T_NSEC).rdatas[0]  # type: ignore[union-attr]
    _replace(zone, victim, T_NSEC, zone.origin + rd[len(_nsec_next(rd)) :])
    shards = split(zone, k)
    shards[0] = (shards[0][0], dataclasses.replace(shards[0][1], next_chain_name=zone.origin))
    parts = verify_parts(shards, keys, zsk)
    assert parts[0].failure_total == 0  # locally consistent
    e = refusal(lambda: combine(shards, parts))
    assert e.requirement == "ZONE-VERIFY-NSEC-CHAIN"
    assert "the NSEC chain of shard 0 continues at example.test." in str(e)
    assert refusal(lambda: whole(zone, keys, zsk)).requirement == "ZONE-VERIFY-NSEC-CHAIN"


def _nsec3_parts(rd: bytes) -> tuple[int, int]:
    """(offset of the next hash, its length) in NSEC3 RDATA."""
    slen = rd[4]
    return 6 + slen, rd[5 + slen]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_nsec3_next_hash_wrong_across_shards(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path, k: int
) -> None:
    zone = zone_of(signed["nsec3"], tmp_path)
    shards = split(zone, k)
    origin = zone.origin
    straddling = []  # NSEC3 owners whose next hash is owned in another shard
    for owner, rrsets in zone.nodes.items():
        if rrsets[0].rtype != T_NSEC3:
            continue
        rd = rrsets[0].rdatas[0]
        at, n = _nsec3_parts(rd)
        nxt = bytes((32,)) + b32hex(rd[at : at + n]) + origin
        if shard_of(shards, nxt) != shard_of(shards, owner):
            straddling.append((owner, rd, at, n))
    assert straddling
    owner, rd, at, n = straddling[0]
    _replace(zone, owner, T_NSEC3, rd[:at] + bytes(n) + rd[at + n :])
    ref = refusal(lambda: whole(zone, keys, zsk))
    e = refusal(lambda: sharded(zone, keys, zsk, k))
    assert ref.requirement == e.requirement == "ZONE-VERIFY-NSEC3-CHAIN"
    assert f"NSEC3 at {name_to_text(owner)} points to 00000000" in str(e)
    assert e.messages == ref.messages


def test_opt_out_misuse_across_shards(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path
) -> None:
    """The NSEC3 covering the insecure delegation sub. (in another shard) loses its opt-out
    flag: sub. is left without proof."""
    zone = zone_of(signed["optout"], tmp_path)
    sub = name_from_text("sub." + ORIGIN, None)
    h = nsec3_hash(sub, b"", 0)
    chain = sorted(
        (base64.b32hexdecode(labels(o)[0].upper()), o)
        for o, rrsets in zone.nodes.items()
        if rrsets[0].rtype == T_NSEC3
    )
    assert h not in dict(chain)  # opted out
    cover = ([o for h2, o in chain if h2 < h] or [chain[-1][1]])[-1]
    rd = zone.get(cover, T_NSEC3).rdatas[0]  # type: ignore[union-attr]
    assert rd[1] & 1
    _replace(zone, cover, T_NSEC3, rd[:1] + bytes((rd[1] & ~1,)) + rd[2:])
    crossed = 0
    for k in SHARD_COUNTS:
        shards = split(zone, k)
        crossed += shard_of(shards, cover) != shard_of(shards, sub)
        e = refusal(lambda k=k: sharded(zone, keys, zsk, k))  # type: ignore[misc]
        assert e.requirement == "ZONE-VERIFY-NSEC3-CHAIN"
        assert "insecure sub.example.test. has no NSEC3" in str(e)
    assert crossed  # at least one cut puts them in different shards
    assert refusal(lambda: whole(zone, keys, zsk)).requirement == "ZONE-VERIFY-NSEC3-CHAIN"


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_wrong_context_is_caught_by_shard_zero(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path, mode: str
) -> None:
    """What the coordinator tells the shards about the apex is checked against the apex."""
    zone = zone_of(signed[mode], tmp_path)
    shards = split(zone, 3)
    ctx = shards[0][1]
    other = RRset(zone.origin, T_DNSKEY, 3600, (OTHER_KSK.dnskey.to_wire(),))
    wrong: dict[str, tuple[str, Any]] = {
        "negative_ttl": ("ZONE-VERIFY-NEGATIVE-TTL", ctx.negative_ttl + 1),
        "dnskey": ("ZONE-VERIFY-DNSKEY-TA", other),
        "nsec3param": ("ZONE-VERIFY-NSEC3-PARAM", None if ctx.nsec3param else b"\x01\0\0\0\0"),
    }
    for field, (requirement, value) in wrong.items():
        bad = [(z, dataclasses.replace(c, **{field: value})) for z, c in shards]
        parts = verify_parts(bad, keys, zsk)
        assert parts[0].failures[0][0] == requirement, field
        e = refusal(lambda bad=bad, parts=parts: combine(bad, parts))  # type: ignore[misc]
        assert e.requirement == requirement
    # a wrong negative TTL alone: the NSEC/NSEC3 of the other shards are refused too
    bad = [(z, dataclasses.replace(c, negative_ttl=1)) for z, c in shards]
    parts = verify_parts(bad, keys, zsk)
    assert all(p.failures[-1][0] == "ZONE-VERIFY-NEGATIVE-TTL" for p in parts)


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_missing_or_repeated_shard_result(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path, mode: str
) -> None:
    zone = zone_of(signed[mode], tmp_path)
    shards = split(zone, 3)
    parts = verify_parts(shards, keys, zsk)
    combine(shards, parts)  # all there: passes
    for bad in ([parts[0], parts[2]], [parts[0], parts[1], parts[1]], parts[1:]):
        e = refusal(lambda bad=bad: combine(shards, bad))  # type: ignore[misc]
        assert e.requirement == "ZONE-VERIFY-ORDER"
        assert "are not those of shards 0 to n-1" in str(e)
    # the last shard missing: its indices look complete, the chain does not
    e = refusal(lambda: combine(shards, parts[:2]))
    assert (
        e.requirement
        == {"nsec": "ZONE-VERIFY-NSEC-CHAIN", "nsec3": "ZONE-VERIFY-NSEC3-CHAIN"}[mode]
    )


def test_apex_outside_shard_zero(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path
) -> None:
    zone = zone_of(signed["nsec"], tmp_path)
    (z0, c0), (z1, c1) = split(zone, 2)
    z1.nodes[zone.origin] = zone.nodes[zone.origin]
    z1.sort()
    part = verify_parts([(z1, c1)], keys, zsk)[0]
    assert part.failures == [
        ("ZONE-VERIFY-ORDER", "the apex example.test. is in shard 1, not in shard 0")
    ]
    # shard 0 without its apex
    del z0.nodes[zone.origin]
    z0.sort()
    part = verify_parts([(z0, c0)], keys, zsk)[0]
    assert part.failures[0] == ("ZONE-VERIFY-ORDER", "no data at the apex example.test.")


# -- the sample, per shard ------------------------------------------------------------------
def test_sample_checks_apex_and_first_of_each_type_per_shard(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path
) -> None:
    """With the stride sample cut to one signature, each shard still verifies the apex
    signatures (shard 0) and the first signature over each type among its own names: a
    forged A record that is the first A of the last shard (not of the zone) is caught."""
    zone = zone_of(signed["nsec"], tmp_path)
    shards = split(zone, 3)
    last = shards[2][0]
    victim = next(n for n in last.order if last.get(n, T_A) and last.get(n, T_A).sigs)  # type: ignore[union-attr]
    first_a = next(n for n in sorted(zone.nodes, key=canonical_key) if zone.get(n, T_A))
    assert victim != first_a  # only a per-shard choice reaches it
    tiny: dict[str, Any] = {"sample_rate": 0.0, "sample_min": 1}
    good = verify_parts(shards, keys, zsk, level="sample", **tiny)
    assert all(p.failure_total == 0 for p in good)
    assert 1 < sum(p.rrsigs_verified for p in good) < sum(p.rrsigs for p in good)
    _replace(zone, victim, T_A, b"\xc0\x00\x02\x63")
    parts = verify_parts(split(zone, 3), keys, zsk, level="sample", **tiny)
    assert [p.failure_total for p in parts] == [0, 0, 1]
    assert parts[2].failures[0] == (
        "ZONE-VERIFY-SIGNATURE",
        f"RRSIG A {name_to_text(victim)}: signature by key {zsk.key_tag} does not verify",
    )
    # an apex record forged: shard 0's sample checks every apex signature
    zone = zone_of(signed["nsec"], tmp_path)
    mx = zone.get(zone.origin, 15)
    assert mx is not None
    _replace(zone, zone.origin, 15, b"\x00\x14" + mx.rdatas[0][2:])
    parts = verify_parts(split(zone, 3), keys, zsk, level="sample", **tiny)
    assert parts[0].failures[0][0] == "ZONE-VERIFY-SIGNATURE"
    assert "RRSIG MX example.test." in parts[0].failures[0][1]


# -- the compact NSEC3 check on its own -----------------------------------------------------
def test_check_nsec3_chain_on_compact_lists(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path
) -> None:
    zone = zone_of(signed["optout"], tmp_path)
    shards = split(zone, 4)
    parts = verify_parts(shards, keys, zsk, pack=False)
    param = shards[0][1].nsec3param
    assert param is not None
    found = [x for p in parts for x in p.nsec3_found]
    expected = [x for p in parts for x in p.nsec3_expected]
    assert check_nsec3_chain(found, expected, param) == []
    assert any(not req for _, req, _, _ in expected)  # the insecure delegations: optional
    # the order of the lists does not matter
    assert check_nsec3_chain(found[::-1], expected[::-1], param) == []
    # a required name without NSEC3, and nothing at all
    h, _req, _bm, name = next(x for x in expected if x[1])
    fewer = [x for x in found if x[0] != h]
    assert (
        "ZONE-VERIFY-NSEC3-CHAIN",
        f"{name_to_text(name)} has no NSEC3",
    ) in check_nsec3_chain(fewer, expected, param)
    assert check_nsec3_chain([], expected, param) == [
        ("ZONE-VERIFY-NSEC3-CHAIN", "the zone has an NSEC3PARAM but no NSEC3 chain")
    ]
    # a second name with the hash of a name that has an NSEC3 (optional or not), or of a
    # required name without one, is a collision; the lists may come in pieces
    twin = (h, False, _bm, b"\x04twin" + name)
    out = check_nsec3_chain(found, [*expected, twin], param)
    assert ("ZONE-VERIFY-NSEC3-CHAIN", f"NSEC3 hash collision at twin.{name_to_text(name)}") in out
    twin = (h, True, _bm, b"\x04twin" + name)
    out = check_nsec3_chain(fewer, [*expected, twin], param)
    assert ("ZONE-VERIFY-NSEC3-CHAIN", f"NSEC3 hash collision at twin.{name_to_text(name)}") in out
    assert out[0][1].startswith("NSEC3 hash collision")  # listed first
    # every failure is returned (not only MAX_REPORTED): each name lacks its NSEC3
    many = [(bytes([i]) * 20, True, b"", name) for i in range(MAX_REPORTED + 5)]
    out = check_nsec3_chain(found[:1], many, param)
    assert len(out) > MAX_REPORTED + 5


def test_malformed_nsec_bitmap_is_reported_not_crashed() -> None:
    """A truncated type bit map window (possible only in a Zone built in memory: text input
    is parsed by dnspython) is a ZONE-VERIFY-BITMAP failure, not an IndexError."""
    from signer.zone.verify import _types_in

    assert _types_in(b"\x00\x06\x40\x01") == {-1}
    assert _types_in(b"\x00\x01\x40") == {1}


def test_nsec_breaks_let_a_shard_hold_disjoint_runs(
    signed: dict[str, str], keys: BindKeys, zsk: DnsKey, tmp_path: Path
) -> None:
    """Incremental re-signing verifies several disjoint runs of the zone at once: the last
    chain name of each run but the last points outside, to the name the context names.
    Without that entry, or with another name in it, the chain is refused."""
    import dataclasses

    zone = zone_of(signed["nsec"], tmp_path)
    shards = split(zone, 3)
    (z0, c0), _, (z2, c2) = shards
    runs = z0.order + z2.order  # the middle shard left out: a gap after run 0
    both = Zone(zone.origin, {n: zone.nodes[n] for n in runs}, order=runs)
    gap_from, gap_to = _last_chain_name(z0), c0.next_chain_name
    ctx = dataclasses.replace(c2, index=0, count=1, nsec_breaks={gap_from: gap_to})

    def check(c: ShardContext) -> None:
        part = verify_parts([(both, c)], keys, zsk)[0]
        if part.failure_total:
            raise ZoneVerificationFailed(part.failures, part.failure_total)

    check(ctx)  # passes
    e = refusal(lambda: check(dataclasses.replace(ctx, nsec_breaks=None)))
    assert e.requirement == "ZONE-VERIFY-NSEC-CHAIN"
    assert f"NSEC at {name_to_text(gap_from)} points to {name_to_text(gap_to)}" in str(e)
    wrong = dataclasses.replace(ctx, nsec_breaks={gap_from: z2.order[0]})
    assert refusal(lambda: check(wrong)).requirement == "ZONE-VERIFY-NSEC-CHAIN"
