"""The key-bundle ceremony actions on real SoftHSM2 tokens, ``ceremony run --set``, and what
``ceremony audit verify`` prints.

make-request (ZSK side) and sign-request (KSK side) run here through :class:`ActionContext`
as the runner calls them; the whole-script rehearsals are in test_scripts_rehearsal.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hsmlab
import pytest
from auditkit import build

from ceremony import actions
from ceremony import plan as plan_mod
from signer.algorithms import Algorithm
from signer.bundles import textformat
from signer.bundles.request import read_request
from signer.errors import CheckFailed, InputError
from signer.keys.pkcs11 import Pkcs11Token
from signer.pgpwords import pgp_words
from signer.pin import PinSource

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "scripts" / "policies" / "example-quarter.yaml"
KSK_URI = "pkcs11:token=ksk-primary;object=ksk-2026"  # what example-quarter.yaml names
ZSK_URI = "pkcs11:token=zsk;object=zsk-test"
CEREMONY = [sys.executable, "-c", "from ceremony.cli import main; main()"]


def _keys(lab: hsmlab.Lab) -> tuple[Any, Any]:
    out = []
    for token, label, ksk in (("ksk-primary", "ksk-2026", True), ("zsk", "zsk-test", False)):
        pins = PinSource(pin_file=str(lab.pin_file(token)), interactive=False)
        with Pkcs11Token(f"pkcs11:token={token}", pins, rw=True) as tok:
            out.append(tok.generate(label, Algorithm.ECDSAP256SHA256, ksk=ksk).dnskey)
    return out[0], out[1]


def _ctx(
    lab: hsmlab.Lab,
    cdir: Path,
    action: str,
    params: dict[str, Any],
    *,
    rehearsal: bool = True,
    officers: tuple[str, ...] = ("Carol Chen", "Dave Diaz"),
    session: dict[str, Any] | None = None,
) -> actions.ActionContext:
    (cdir / "artifacts").mkdir(parents=True, exist_ok=True)
    return actions.ActionContext(
        ceremony_dir=cdir,
        params=actions.validate_params(action, params, rendered=True),
        step_number=1,
        rehearsal=rehearsal,
        lab_dir=lab.root if rehearsal else None,
        pin_source_for=lambda t: PinSource(pin_file=str(lab.pin_file(t)), interactive=False),
        officers=officers,
        quorum={"role": "CO", "m": 2, "n": 3},
        zone="example.",
        session={} if session is None else session,
    )


def _run(ctx: actions.ActionContext, action: str) -> actions.ActionResult:
    try:
        return actions.REGISTRY[action].run(ctx)
    finally:
        if ctx.session is not None:
            for tok in ctx.session.pop("tokens", {}).values():
                tok.close()


def _request(lab: hsmlab.Lab, cdir: Path) -> actions.ActionResult:
    ctx = _ctx(lab, cdir, "make-request", {"policy": str(POLICY), "zsk": ZSK_URI, "out": "ksr.txt"})
    return _run(ctx, "make-request")


def test_make_request_then_sign_request_on_tokens(lab: hsmlab.Lab, tmp_path: Path) -> None:
    ksk, zsk = _keys(lab)
    cdir = tmp_path / "cer"
    made = _request(lab, cdir)
    ksr = made.outputs["request"]
    assert isinstance(ksr, Path) and ksr == cdir / "artifacts" / "ksr.txt"
    assert made.outputs["request_manifest"] == cdir / "artifacts" / "ksr.txt.json"
    assert made.token_identity is not None and made.token_identity.label == "zsk"
    # The policy's window (2026-01-01) lies in the past: the rehearsal plans from today.
    today = int(time.time()) // 86400 * 86400
    assert "rehearsal: the policy window starts" in made.summary
    req, manifest = read_request(ksr)  # manifest hash and proofs of possession attached
    assert manifest is not None and len(req.bundles) == 9 == int(str(made.outputs["bundles"]))
    assert req.bundles[0].inception == today
    assert all(zsk.same_key(k) for b in req.bundles for k in b.keys)
    assert all(len(b.signatures) == 1 for b in req.bundles)

    # The KSK side, from the stick (outside the ceremony directory): the request is kept.
    stick = tmp_path / "media"
    stick.mkdir()
    for f in ("ksr.txt", "ksr.txt.json"):
        (stick / f).write_bytes((cdir / "artifacts" / f).read_bytes())
    kdir = tmp_path / "ksk-cer"
    ctx = _ctx(
        lab,
        kdir,
        "sign-request",
        {"request": str(stick / "ksr.txt"), "policy": str(POLICY), "out": "skr.txt"},
    )
    signed = _run(ctx, "sign-request")
    skr = kdir / "artifacts" / "skr.txt"
    assert signed.outputs["response"] == skr
    assert signed.outputs["response_manifest"] == kdir / "artifacts" / "skr.txt.json"
    assert signed.outputs["request"] == kdir / "artifacts" / "ksr.txt"
    assert (kdir / "artifacts" / "ksr.txt").read_bytes() == (stick / "ksr.txt").read_bytes()
    # The audit ties the response to the KSK through this recorded DNSKEY.
    assert signed.outputs["ksk_dnskey"] == ksk.rdata_text()
    assert signed.token_identity is not None and signed.token_identity.label == "ksk-primary"
    assert signed.token_identity.serial == lab.tokens["ksk-primary"]
    resp = textformat.load_response(skr)
    assert len(resp.bundles) == 9
    for b in resp.bundles:
        assert any(ksk.same_key(k) for k in b.keys) and any(zsk.same_key(k) for k in b.keys)
        assert b.cds and b.cdnskey  # the policy publishes CDS and CDNSKEY
    assert signed.outputs["sha256"] in signed.summary
    assert pgp_words(bytes.fromhex(str(signed.outputs["sha256"]))) in signed.summary
    # No PIN anywhere in what the transcript would record.
    pin = lab.pin_file("ksk-primary").read_text().strip()
    assert all(pin not in str(v) for v in signed.outputs.values()) and pin not in signed.summary


def test_sign_request_warns_of_a_ksk_not_vouched_for(lab: hsmlab.Lab, tmp_path: Path) -> None:
    """A KSK that no earlier step generated or verified (print-ds) signs, but loudly."""
    ksk, _zsk = _keys(lab)
    cdir = tmp_path / "cer"
    _request(lab, cdir)
    params = {"request": "artifacts/ksr.txt", "policy": str(POLICY), "out": "skr.txt"}
    from signer.dnskey import make_ds

    ds = make_ds("example.", ksk, 2).to_text("example.")
    other = actions.EarlierAction("print-ds", 3, {"key_tag": "1", "ds": ds.replace(" 2 ", " 4 ")})
    cases = [
        ((), 1),  # nothing earlier
        ((other,), 1),  # print-ds of another key
        ((actions.EarlierAction("print-ds", 3, {"key_tag": str(ksk.key_tag), "ds": ds}),), 0),
        ((actions.EarlierAction("generate-key", 2, {"dnskey": ksk.rdata_text()}),), 0),
        ((actions.EarlierAction("show-hash", 2, {"ds": ds}),), 1),  # not a vouching action
    ]
    for earlier, n in cases:
        ctx = _ctx(lab, cdir, "sign-request", params)
        ctx.earlier = earlier
        (cdir / "artifacts" / "skr.txt").unlink(missing_ok=True)
        res = _run(ctx, "sign-request")
        assert len(res.warnings) == n, (earlier, res.warnings)
        if n:
            assert f"key tag {ksk.key_tag}" in res.warnings[0]
            assert "neither generated nor verified" in res.warnings[0]


def test_sign_request_refusals(lab: hsmlab.Lab, tmp_path: Path) -> None:
    _keys(lab)
    cdir = tmp_path / "cer"
    _request(lab, cdir)
    skr = cdir / "artifacts" / "skr.txt"
    params = {"request": "artifacts/ksr.txt", "policy": str(POLICY), "out": "skr.txt"}
    # CER-QUORUM: the KSK is not touched before the quorum logged in.
    with pytest.raises(CheckFailed) as ei:
        _run(_ctx(lab, cdir, "sign-request", params, officers=("Carol Chen",)), "sign-request")
    assert ei.value.requirement == "CER-QUORUM" and "quorum login" in str(ei.value)
    # A KSK the policy names by file, not on a token: a ceremony signs with token keys only.
    soft = tmp_path / "soft-policy.yaml"
    soft.write_text(POLICY.read_text().replace(KSK_URI, str(tmp_path / "ksk.pem")))
    with pytest.raises(InputError, match="not a pkcs11: URI; a ceremony uses token keys only"):
        _run(_ctx(lab, cdir, "sign-request", {**params, "policy": str(soft)}), "sign-request")
    # One byte of the request changed: KSR-MANIFEST, before any token is opened.
    ksr = cdir / "artifacts" / "ksr.txt"
    data = bytearray(ksr.read_bytes())
    data[-2] ^= 0x01
    ksr.write_bytes(bytes(data))
    session: dict[str, Any] = {}
    with pytest.raises(CheckFailed) as ei:
        _run(_ctx(lab, cdir, "sign-request", params, session=session), "sign-request")
    assert ei.value.requirement == "KSR-MANIFEST"
    assert not session.get("tokens")
    # No such request.
    with pytest.raises(InputError, match="no such request file"):
        _run(_ctx(lab, cdir, "sign-request", {**params, "request": "nope.txt"}), "sign-request")
    assert not skr.exists()  # nothing written by any refusal


def test_make_request_refusals(lab: hsmlab.Lab, tmp_path: Path) -> None:
    _keys(lab)
    cdir = tmp_path / "cer"
    base = {"policy": str(POLICY), "zsk": ZSK_URI, "out": "ksr.txt"}
    # A real ceremony (not a rehearsal) does not move the policy's stale window.
    with pytest.raises(InputError, match="would have expired before it is signed"):
        _run(_ctx(lab, cdir, "make-request", base, rehearsal=False), "make-request")
    # ... but an explicit start is used as given.
    start = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
    done = _run(
        _ctx(lab, cdir, "make-request", {**base, "start": start}, rehearsal=False), "make-request"
    )
    assert "rehearsal" not in done.summary and str(done.outputs["window"]).startswith(start)
    with pytest.raises(InputError, match="make-request: "):
        _run(_ctx(lab, cdir, "make-request", {**base, "start": "tomorrow"}), "make-request")
    # The KSK is not a ZSK.
    with pytest.raises(InputError, match="is not a ZSK"):
        _run(_ctx(lab, cdir, "make-request", {**base, "zsk": KSK_URI}), "make-request")
    with pytest.raises(InputError, match="names no token"):
        _run(
            _ctx(lab, cdir, "make-request", {**base, "zsk": "pkcs11:object=zsk-test"}),
            "make-request",
        )
    with pytest.raises(InputError, match="no such policy file"):
        _run(_ctx(lab, cdir, "make-request", {**base, "policy": "nope.yaml"}), "make-request")


def test_audit_counts_sign_request_as_a_ksk_action() -> None:
    assert actions.REGISTRY["sign-request"].needs_quorum
    assert actions.REGISTRY["sign-request"].idempotent  # repeatable: nothing changes on a token
    assert actions.REGISTRY["make-request"].idempotent


# -- ceremony run --set ------------------------------------------------------------------------
PLAN = """\
version: 1
metadata: {id: set-test, title: Set test, zone: example., date: "2026-01-01", place: here, policy: p}
roles:
  CA: {title: Ceremony Administrator, kind: administrator}
  IW: {title: Internal Witness, kind: internal-witness}
roster:
  - {name: Alice Adams, initials: AA, roles: [CA]}
  - {name: Walter White, initials: WW, roles: [IW]}
variables:
  label: ksk-2026     # the key label
  bits: 2048
  tokens: [a, b]
sections:
  - title: One
    steps:
      - action: write-file
        role: CA
        params: {name: out.txt, content: "{{ vars.label }} {{ vars.bits }}"}
"""


def test_with_variables_replaces_values_in_place(tmp_path: Path) -> None:
    src = PLAN.encode()
    out = plan_mod.with_variables(src, "p.yaml", {"label": "ksk 2027: new", "bits": "4096"})
    text = out.decode()
    assert 'label: "ksk 2027: new"     # the key label' in text  # the comment stays
    assert "bits: 4096\n" in text
    p = plan_mod.parse(out, "p.yaml")
    assert p.variables["label"] == "ksk 2027: new" and p.variables["bits"] == 4096
    assert plan_mod.with_variables(src, "p.yaml", {}) == src
    with pytest.raises(InputError, match="the plan has no variable 'nope'"):
        plan_mod.with_variables(src, "p.yaml", {"nope": "1"})
    with pytest.raises(InputError, match="is not a single value"):
        plan_mod.with_variables(src, "p.yaml", {"tokens": "c"})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CEREMONY, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


def test_run_set_and_audit_verify_output(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    answers = tmp_path / "answers.yaml"
    answers.write_text("{}\n")
    cdir = tmp_path / "cer"
    r = _cli("run", str(plan), "--dir", str(cdir), "--answers", str(answers), "--set", "label=zz")
    assert r.returncode == 0, r.stderr
    assert (cdir / "artifacts" / "out.txt").read_text() == "zz 2048"
    assert 'label: "zz"' in (cdir / "plan.yaml").read_text()  # the plan as run
    v = _cli("audit", "verify", str(cdir))
    assert v.returncode == 0, v.stderr
    seal = (cdir / "transcript.seal").read_text().split()[3]  # "final hash (SHA-256): X"
    lines = v.stdout.splitlines()
    assert lines[0] == "ceremony set-test: audit passed"
    assert f"  seal (SHA-256): {seal}" in lines
    assert f"  seal (PGP words): {pgp_words(bytes.fromhex(seal))}" in lines
    # Refusals: unknown variable, malformed --set; one line, exit 2, nothing run.
    for bad, msg in (("nope=1", "no variable 'nope'"), ("label", "--set wants NAME=VALUE")):
        x = _cli(
            "run", str(plan), "--dir", str(tmp_path / "x"), "--answers", str(answers), "--set", bad
        )
        assert x.returncode == 2 and msg in x.stderr and "Traceback" not in x.stderr
        assert len(x.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()


def test_audit_verify_prints_responses(tmp_path: Path) -> None:
    built = build(tmp_path / "cer")
    v = _cli("audit", "verify", str(built.dir))
    assert v.returncode == 0, v.stderr
    assert "response artifacts/skr.txt: 9 bundles for example. signed by KSK" in v.stdout
