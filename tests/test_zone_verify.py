"""Self-verification (signer.zone.verify): a correct zone passes, every tampering is caught
with its requirement ID.

The zones are signed by BIND dnssec-signzone (an implementation nobody here wrote), then
edited as text the way a broken signer or a later edit would break them.
"""

from __future__ import annotations

import time
from pathlib import Path

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

import signer.zone.verify as verify_mod
from signer.algorithms import Algorithm
from signer.dnskey import DsRecord, make_ds
from signer.errors import EXIT_CHECK, InputError
from signer.keys.soft import SoftKey
from signer.zone.model import name_from_text
from signer.zone.verify import (
    ZoneVerificationFailed,
    read_signed_zone,
    trust_anchor_from_file,
    verify_signed_zone,
)

NOW = int(time.time())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> BindKeys:
    return bind_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signed(keys: BindKeys, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("signed")
    (d / "zone").write_text(HAND_ZONE)
    return {
        "nsec": bind_sign(d / "zone", keys, d / "nsec").read_text(),
        "nsec3": bind_sign(d / "zone", keys, d / "nsec3", nsec3=True).read_text(),
        "optout": bind_sign(d / "zone", keys, d / "optout", nsec3=True, optout=True).read_text(),
    }


def verify(
    text: str, keys: BindKeys, tmp_path: Path, *, level: str = "full", **kw: object
) -> object:
    p = tmp_path / "signed.zone"
    p.write_text(text)
    args: dict[str, object] = {"trust_anchor_ds": keys.ds(), "now": NOW, "level": level}
    args.update(kw)
    return verify_signed_zone(p, origin=ORIGIN, **args)  # type: ignore[arg-type]


def refused(text: str, keys: BindKeys, tmp_path: Path, **kw: object) -> ZoneVerificationFailed:
    with pytest.raises(ZoneVerificationFailed) as exc:
        verify(text, keys, tmp_path, **kw)
    assert exc.value.exit_code == EXIT_CHECK
    assert str(exc.value).startswith(exc.value.requirement + ": ")
    assert "not published" in str(exc.value)
    return exc.value


@pytest.mark.parametrize("mode", ["nsec", "nsec3", "optout"])
@pytest.mark.parametrize("level", ["structural", "sample", "full"])
def test_reference_zone_passes(
    signed: dict[str, str], keys: BindKeys, tmp_path: Path, mode: str, level: str
) -> None:
    r = verify(signed[mode], keys, tmp_path, level=level, zsk=keys.zsk_soft().dnskey)
    assert r.denial == {"nsec": "nsec", "nsec3": "nsec3", "optout": "nsec3 opt-out"}[mode]  # type: ignore[attr-defined]
    assert r.trust_anchor_key == keys.ksk_soft().dnskey.key_tag  # type: ignore[attr-defined]
    n = r.rrsigs  # type: ignore[attr-defined]
    assert r.rrsigs_verified == {"structural": 1, "sample": n + 1, "full": n + 1}[level]  # type: ignore[attr-defined]


def test_missing_rrsig(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    text = drop_lines(signed["nsec"], r"^www\.example\.test\.\s.*RRSIG\s+A ")
    e = refused(text, keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-UNSIGNED"
    assert "A at www.example.test." in str(e)


def test_changed_data_caught_by_crypto_only(
    signed: dict[str, str], keys: BindKeys, tmp_path: Path
) -> None:
    text = sub_line(signed["nsec"], r"^www\.example\.test\.\s.*\sA\s", "192.0.2.2", "192.0.2.99")
    verify(text, keys, tmp_path, level="structural")  # structure is intact
    for level in ("sample", "full"):  # a tiny zone: the sample is every signature
        e = refused(text, keys, tmp_path, level=level)
        assert e.requirement == "ZONE-VERIFY-SIGNATURE"
        assert "RRSIG A www.example.test." in str(e)


def test_signature_of_other_owner_is_caught(
    signed: dict[str, str], keys: BindKeys, tmp_path: Path
) -> None:
    # the RRSIG of ns1 A copied over Mail A's (same labels, type, TTL): only crypto sees it
    sig = lines_matching(signed["nsec"], r"^ns1\.example\.test\.\s.*RRSIG\s+A ")[0]
    text = drop_lines(signed["nsec"], r"^Mail\.example\.test\.\s.*RRSIG\s+A ")
    text += sig.replace("ns1.example.test.", "Mail.example.test.", 1) + "\n"
    e = refused(text, keys, tmp_path, level="full", jobs=1)
    assert e.requirement == "ZONE-VERIFY-SIGNATURE"
    assert "mail.example.test." in str(e).lower()


def test_record_added_after_signing(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    text = signed["nsec"] + "late.example.test. 3600 IN A 192.0.2.77\n"
    e = refused(text, keys, tmp_path, level="structural")
    assert {"ZONE-VERIFY-UNSIGNED", "ZONE-VERIFY-NSEC-CHAIN"} <= set(e.requirements)
    assert "late.example.test." in str(e)


def test_nsec_removed_breaks_chain(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    text = drop_lines(signed["nsec"], r"^ns1\.example\.test\.\s.*\sNSEC\s")
    text = drop_lines(text, r"^ns1\.example\.test\.\s.*RRSIG\s+NSEC ")
    e = refused(text, keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-NSEC-CHAIN"
    assert "ns1.example.test. has no NSEC" in str(e)


def test_nsec_bitmap_wrong(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    text = sub_line(signed["nsec"], r"^ns1\.example\.test\.\s.*\sNSEC\s", " AAAA ", " ")
    e = refused(text, keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-BITMAP"
    assert "missing: AAAA" in str(e)


def test_nsec_ttl_rfc9077(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    text = sub_line(
        signed["nsec"], r"^ns1\.example\.test\.\s.*\sNSEC\s", "300 IN NSEC", "3600 IN NSEC"
    )
    e = refused(text, keys, tmp_path, level="structural")
    assert "ZONE-VERIFY-NEGATIVE-TTL" in e.requirements


def test_delegation_ns_must_not_be_signed(
    signed: dict[str, str], keys: BindKeys, tmp_path: Path
) -> None:
    # graft a (structurally plausible) RRSIG NS onto the delegation sub.example.test.
    sig = lines_matching(signed["nsec"], r"^sec\.example\.test\.\s.*RRSIG\s+DS ")[0]
    text = (
        signed["nsec"]
        + sig.replace("sec.example.test.", "sub.example.test.", 1).replace("RRSIG\tDS", "RRSIG\tNS")
        + "\n"
    )
    e = refused(text, keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-EXTRA-SIG"
    assert "delegation sub.example.test." in str(e)


def test_signed_glue_refused(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    sig = lines_matching(signed["nsec"], r"^ns1\.example\.test\.\s.*RRSIG\s+A ")[0]
    text = signed["nsec"] + sig.replace("ns1.example.test.", "ns.sub.example.test.", 1) + "\n"
    e = refused(text, keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-EXTRA-SIG"
    assert "ns.sub.example.test. is glue or occluded" in str(e)


def test_expired_and_not_yet_valid(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    e = refused(signed["nsec"], keys, tmp_path, level="structural", now=NOW + 60 * 86400)
    assert e.requirement == "ZONE-VERIFY-VALIDITY"
    assert "expires" in str(e)
    e = refused(signed["nsec"], keys, tmp_path, level="structural", now=NOW - 86400)
    assert e.requirement == "ZONE-VERIFY-VALIDITY"
    assert "not valid before" in str(e)
    # BIND signs for 30 days: a 40-day margin refuses, a 20-day one passes
    e = refused(signed["nsec"], keys, tmp_path, level="structural", min_validity=40 * 86400)
    assert e.requirement == "ZONE-VERIFY-VALIDITY"
    verify(signed["nsec"], keys, tmp_path, level="structural", min_validity=20 * 86400)


def test_wrong_trust_anchor(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    other = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True)
    e = refused(signed["nsec"], keys, tmp_path, trust_anchor_ds=[make_ds(ORIGIN, other.dnskey)])
    assert e.requirement == "ZONE-VERIFY-DNSKEY-TA"
    # the right DS, but the KSK signature over the DNSKEY RRset removed
    ksk_tag = keys.ksk_soft().dnskey.key_tag
    text = drop_lines(signed["nsec"], rf"RRSIG\s+DNSKEY 13 2 3600 \d+ \d+ {ksk_tag} ")
    e = refused(text, keys, tmp_path)
    assert e.requirement == "ZONE-VERIFY-DNSKEY-TA"
    assert f"trust-anchor key(s) {ksk_tag}" in str(e)


def test_zsk_not_published(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    other = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    e = refused(signed["nsec"], keys, tmp_path, level="structural", zsk=other.dnskey)
    assert e.requirement == "ZONE-VERIFY-ZSK-PUBLISHED"


def test_nsec3_removed(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    owner = lines_matching(signed["nsec3"], r"\sNSEC3\s+1 ")[3].split()[0]
    text = drop_lines(signed["nsec3"], rf"^{owner}\s", count=2)  # NSEC3 and its RRSIG
    e = refused(text, keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-NSEC3-CHAIN"


def test_nsec3_opt_out_flag_cleared(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    # clearing every opt-out flag leaves the insecure delegation sub. without proof
    text = "\n".join(
        ln.replace("NSEC3\t1 1 ", "NSEC3\t1 0 ") for ln in signed["optout"].splitlines()
    )
    e = refused(text + "\n", keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-NSEC3-CHAIN"
    assert "no opt-out flag" in str(e)


def test_nsec3_bitmap_and_params(signed: dict[str, str], keys: BindKeys, tmp_path: Path) -> None:
    line = next(
        ln for ln in lines_matching(signed["nsec3"], r"\sNSEC3\s+1 ") if ln.endswith(" A RRSIG")
    )
    text = signed["nsec3"].replace(line, line[: -len(" A RRSIG")] + " A AAAA RRSIG")
    e = refused(text, keys, tmp_path, level="structural")
    assert e.requirement == "ZONE-VERIFY-BITMAP"
    assert "extra: AAAA" in str(e)
    text = sub_line(
        signed["nsec3"], r"\sNSEC3PARAM\s", "NSEC3PARAM\t1 0 0 -", "NSEC3PARAM\t1 0 1 -"
    )
    e = refused(text, keys, tmp_path, level="structural")
    assert "ZONE-VERIFY-NSEC3-PARAM" in e.requirements


def test_parallel_full_verification_finds_one_bad_signature(
    keys: BindKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_mod, "PARALLEL_MIN", 500)
    zone = tmp_path / "gen.zone"
    zone.write_text(generated_zone(1500))
    text = bind_sign(zone, keys, tmp_path / "gen.signed").read_text()
    lines_before = text
    lines = text.splitlines()
    victim = next(
        i for i, ln in enumerate(lines) if ln.startswith("d001200.") and "RRSIG\tNSEC" in ln
    )
    sig = lines[victim].rsplit(" ", 1)
    lines[victim] = sig[0] + " " + ("A" if sig[1][0] != "A" else "B") + sig[1][1:]
    text = "\n".join(lines) + "\n"
    ok = verify(text, keys, tmp_path, level="structural")
    assert ok.rrsigs > 1500  # type: ignore[attr-defined]
    ok = verify(lines_before, keys, tmp_path, level="full", jobs=2)
    assert ok.processes == 2  # type: ignore[attr-defined]
    e = refused(text, keys, tmp_path, level="full", jobs=2)
    assert e.requirement == "ZONE-VERIFY-SIGNATURE"
    assert e.total == 1
    assert "d001200.example.test." in str(e)


def test_input_errors(tmp_path: Path, keys: BindKeys) -> None:
    with pytest.raises(InputError, match="unknown verification level"):
        verify_signed_zone(
            tmp_path / "x", origin=ORIGIN, trust_anchor_ds=keys.ds(), now=NOW, level="quick"
        )
    with pytest.raises(InputError, match="needs the trust anchor"):
        verify_signed_zone(tmp_path / "x", origin=ORIGIN, trust_anchor_ds=[], now=NOW)
    with pytest.raises(InputError, match="cannot read signed zone"):
        read_signed_zone(tmp_path / "missing.zone", ORIGIN)
    bad = tmp_path / "ta.ds"
    bad.write_text("example.test. IN DNSKEY 257 3 13 AAAA\n")
    with pytest.raises(InputError, match=r"ta\.ds:1: expected a DS record"):
        trust_anchor_from_file(bad)
    good = keys.ds_file()
    assert trust_anchor_from_file(good) == keys.ds()
    assert isinstance(keys.ds()[0], DsRecord)
    assert name_from_text(ORIGIN, None) == b"\x07example\x04test\x00"


def test_sample_covers_every_type(keys: BindKeys, tmp_path: Path) -> None:
    """In a zone too big to check every signature, the sample still checks each RR type: a
    forged TXT (the only one in the zone) is caught."""
    zone = tmp_path / "gen.zone"
    zone.write_text(generated_zone(1500) + 'only-txt 3600 TXT "original"\n')
    text = bind_sign(zone, keys, tmp_path / "gen.signed").read_text()
    forged = text.replace('"original"', '"forged"')
    r = verify(text, keys, tmp_path, level="sample")
    assert r.rrsigs_verified < r.rrsigs / 2  # type: ignore[attr-defined]
    e = refused(forged, keys, tmp_path, level="sample")
    assert e.requirement == "ZONE-VERIFY-SIGNATURE"
    assert "RRSIG TXT only-txt.example.test." in str(e)


def _prepared_then_signed(text: str, keys: BindKeys, tmp_path: Path, level: str) -> object:
    """What the signer does: prepare on the zone without RRSIGs, sign (put them back into
    the same node lists), then finish the verification."""
    from signer.zone.verify import prepare_verification

    p = tmp_path / "signed.zone"
    p.write_text(text)
    zone = read_signed_zone(p, ORIGIN)
    sigs = {name: [rs.sigs for rs in lst] for name, lst in zone.nodes.items()}
    for lst in zone.nodes.values():
        lst[:] = [rs._replace(sigs=()) for rs in lst]
    prep = prepare_verification(zone, now=NOW, zsk=keys.zsk_soft().dnskey)
    for name, lst in zone.nodes.items():
        lst[:] = [rs._replace(sigs=s) for rs, s in zip(lst, sigs[name], strict=True)]
    return verify_signed_zone(
        zone, trust_anchor_ds=keys.ds(), now=NOW, level=level, prepared=prep,
        zsk=keys.zsk_soft().dnskey,
    )  # fmt: skip


def test_prepared_verification_same_verdict(
    signed: dict[str, str], keys: BindKeys, tmp_path: Path
) -> None:
    r = _prepared_then_signed(signed["nsec"], keys, tmp_path, "full")
    direct = verify(signed["nsec"], keys, tmp_path, level="full", zsk=keys.zsk_soft().dnskey)
    assert r.rrsigs == direct.rrsigs > 0  # type: ignore[attr-defined]
    assert r.rrsigs_verified == direct.rrsigs_verified  # type: ignore[attr-defined]
    # failures of both halves, in the unprepared order (signatures first, then the chain)
    text = signed["nsec"] + "late.example.test. 3600 IN A 192.0.2.77\n"
    with pytest.raises(ZoneVerificationFailed) as exc:
        _prepared_then_signed(text, keys, tmp_path, "structural")
    e = refused(text, keys, tmp_path, level="structural", zsk=keys.zsk_soft().dnskey)
    assert exc.value.messages == e.messages
    assert exc.value.requirement == "ZONE-VERIFY-UNSIGNED"
    assert "ZONE-VERIFY-NSEC-CHAIN" in exc.value.requirements
