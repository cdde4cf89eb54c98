"""Failing cases for the bundle, KSK, transcript and token IDs that had none
(test_requirement_ids.py lists them): SKR-DOMAIN, SKR-BUNDLE-MATCH, SKR-CDS-SEP, KSK-KEY-MATCH,
SIGNER-BUNDLE-WARNING, VERIFY, TRANSCRIPT-SEALED, CER-TOKEN-SERIAL."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import dns.name
import hsmlab
import pytest

from ceremony import actions
from ceremony import transcript as T
from signer.algorithms import Algorithm
from signer.bundles import textformat
from signer.bundles.checks import check_response
from signer.bundles.request import read_request
from signer.bundles.response import select_bundle
from signer.dnskey import DsRecord
from signer.errors import CheckFailed, VerificationError
from signer.keys.soft import SoftKey, load_key_file
from signer.rrsig import sign_rrset, verify_rrset
from tests.manifestkit import Exchange, invoke, make_exchange, sign_args


@pytest.fixture(scope="module")
def ex(tmp_path_factory: pytest.TempPathFactory) -> Exchange:
    return make_exchange(tmp_path_factory.mktemp("exchange"))


def _refused(rid: str, fn: object, caplog: pytest.LogCaptureFixture) -> CheckFailed:
    with caplog.at_level(logging.ERROR, "dnssec_ceremony.checks"), pytest.raises(CheckFailed) as ei:
        fn()  # type: ignore[operator]
    assert ei.value.requirement == rid, str(ei.value)
    assert str(ei.value).startswith(rid + ": ")
    assert any(rid in r.getMessage() for r in caplog.records)
    return ei.value


def test_skr_checks(ex: Exchange, caplog: pytest.LogCaptureFixture) -> None:
    request, _ = read_request(ex.ksr)
    resp = textformat.load_response(ex.skr)
    anchors = [DsRecord.from_text(ex.anchor)]
    check_response(resp, request, anchors)  # the control passes
    other = replace(resp, zone=dns.name.from_text("example.net."))
    _refused("SKR-DOMAIN", lambda: check_response(other, request, anchors), caplog)
    short = replace(resp, bundles=resp.bundles[:-1])
    _refused("SKR-BUNDLE-MATCH", lambda: check_response(short, request, anchors), caplog)
    b0 = resp.bundles[0]
    moved = replace(resp, bundles=(replace(b0, expiration=b0.expiration + 1), *resp.bundles[1:]))
    _refused("SKR-BUNDLE-MATCH", lambda: check_response(moved, request, anchors), caplog)
    # A CDNSKEY RRset holding the ZSK, properly signed by the KSK: still refused (not a SEP key)
    ksk = load_key_file(ex.ksk, flags=257)
    zsk = next(k for k in b0.keys if not k.is_sep)
    b = replace(b0, cdnskey=(*b0.cdnskey, zsk))
    rrset = b.cdnskey_rrset(resp.zone)
    assert rrset is not None
    b = replace(
        b,
        cdnskey_signatures=(sign_rrset(rrset, ksk, resp.zone, b.inception, b.expiration),),
    )
    bad = replace(resp, bundles=(b, *resp.bundles[1:]))
    e = _refused("SKR-CDS-SEP", lambda: check_response(bad, request, anchors), caplog)
    assert str(zsk.key_tag) in str(e)


def test_ksk_key_match(ex: Exchange, tmp_path: Path) -> None:
    """A KSK of an algorithm the policy does not allow: refused before signing, nothing written."""
    ed = tmp_path / "ed.pem"
    ed.write_bytes(SoftKey.generate(Algorithm.ED25519, ksk=True).to_pem())
    out = tmp_path / "out.skr"
    r = invoke("ceremony", sign_args(ex.policy, ex.ksr, out, "--ksk", f"k1={ed}"))
    assert r.exit_code == 1
    assert "KSK-KEY-MATCH: KSK k1 uses ED25519, not allowed by the policy" in r.output
    assert "Traceback" not in r.output
    assert not out.exists() and not Path(f"{out}.json").exists()


def test_signer_bundle_warning(ex: Exchange, caplog: pytest.LogCaptureFixture) -> None:
    resp = textformat.load_response(ex.skr)
    now = resp.bundles[-2].inception + 1
    with caplog.at_level(logging.WARNING, "dnssec_ceremony.checks"):
        select_bundle(resp, now, warning=86400)  # more than a day left: quiet
        assert not caplog.records
        select_bundle(resp, now, warning=60 * 86400)
    assert any(r.getMessage().startswith("SIGNER-BUNDLE-WARNING:") for r in caplog.records)


def test_verify_generic(ex: Exchange) -> None:
    """VerificationError without a more specific ID: its own, VERIFY."""
    resp = textformat.load_response(ex.skr)
    b = resp.bundles[0]
    rrset = b.dnskey_rrset(resp.zone)
    with pytest.raises(VerificationError) as ei:
        verify_rrset(rrset, b.signatures[0], list(b.keys), now=b.expiration + 1)
    assert ei.value.requirement == "VERIFY"
    assert str(ei.value).startswith("VERIFY: ") and "expired" in str(ei.value)


def test_transcript_sealed(tmp_path: Path) -> None:
    t = T.Transcript.open(tmp_path, "c-1")
    t.append("begin", role="system", data={"plan_sha256": "00" * 32})
    t.seal()
    with pytest.raises(T.TranscriptSealed) as ei:
        t.append("note", role="system", data={"text": "after the seal"})
    assert ei.value.requirement == "TRANSCRIPT-SEALED"
    assert "sealed" in str(ei.value)


def test_cer_token_serial(lab: hsmlab.Lab, tmp_path: Path) -> None:
    """A real ceremony stops when a token's serial is not the plan's; a rehearsal notes it."""
    (tmp_path / "artifacts").mkdir()

    def ctx(rehearsal: bool) -> actions.ActionContext:
        return actions.ActionContext(
            ceremony_dir=tmp_path,
            params=actions.validate_params("verify-tokens", {"tokens": ["zsk"]}, rendered=True),
            step_number=1,
            rehearsal=rehearsal,
            lab_dir=None,
            equipment_tokens={"zsk": "0000000000000000"},
        )

    def run(c: actions.ActionContext) -> actions.ActionResult:
        try:
            return actions.REGISTRY["verify-tokens"].run(c)
        finally:
            for tok in c.session.pop("tokens", {}).values():
                tok.close()

    with pytest.raises(CheckFailed) as ei:
        run(ctx(False))
    assert ei.value.requirement == "CER-TOKEN-SERIAL"
    assert "the plan lists 0000000000000000" in str(ei.value)
    assert "in a real ceremony this stops" in run(ctx(True)).summary
