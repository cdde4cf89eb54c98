"""`ceremony audit verify`: one flipped byte anywhere is caught, with the right requirement ID.

The ceremony directories are written through the real transcript module (tests/auditkit.py)
with a real SKR signed by a software KSK; each refusal has its own directory or tamper.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import auditkit

from ceremony import audit
from ceremony import transcript as tr
from signer.errors import InputError
from signer.pgpwords import pgp_words

REPO = Path(__file__).resolve().parent.parent
CEREMONY = [str(REPO / ".venv" / "bin" / "ceremony")]
if not Path(CEREMONY[0]).exists():
    CEREMONY = [sys.executable, "-m", "ceremony.cli"]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> auditkit.Built:
    return auditkit.build(tmp_path_factory.mktemp("good") / "cer", exception_at=2)


@pytest.fixture
def cer(good: auditkit.Built, tmp_path: Path) -> Path:
    return auditkit.copy(good.dir, tmp_path / "cer")


def expect(requirement: str, directory: Path, **kw: str) -> audit.AuditFailed:
    with pytest.raises(audit.AuditFailed) as ei:
        audit.verify_ceremony_dir(directory, **kw)
    assert ei.value.requirement == requirement, str(ei.value)
    assert str(ei.value).startswith(requirement + ": ")
    return ei.value


def flip(path: Path, offset: int, mask: int = 0x01) -> bytes:
    """Flip bits of one byte; return the original content."""
    data = path.read_bytes()
    b = bytearray(data)
    b[offset] ^= mask
    path.write_bytes(bytes(b))
    return data


# -- the clean directory ------------------------------------------------------------------


def test_clean_directory_passes_with_its_seal(good: auditkit.Built) -> None:
    r = audit.verify_ceremony_dir(good.dir)
    assert r.ceremony_id == "audit-2026-q1"
    assert r.seal == good.seal
    assert r.steps == 5 and r.steps_skipped == 0 and r.exceptions == 1
    assert r.quorum_logins == 1
    assert r.artifacts == 2  # plan.yaml and the SKR
    assert len(r.responses) == 1 and r.responses[0].bundles == 9
    assert r.responses[0].ksk_tags == (good.ksk.dnskey.key_tag,)
    assert r.warnings == ()
    # The witness's copy of the seal, as hex (any case, grouped) or as PGP words.
    grouped = " ".join(good.seal[i : i + 4] for i in range(0, 64, 4)).upper()
    assert audit.verify_ceremony_dir(good.dir, seal=grouped).seal == good.seal
    words = pgp_words(bytes.fromhex(good.seal))
    assert audit.verify_ceremony_dir(good.dir, seal=words).seal == good.seal
    assert "audit passed" in r.lines()[0]


def test_wrong_seal_given_by_a_witness(good: auditkit.Built) -> None:
    other = ("0" if good.seal[0] != "0" else "1") + good.seal[1:]
    e = expect("AUDIT-SEAL", good.dir, seal=other)
    assert good.seal in str(e)
    # A single word swapped in the PGP words is a different hash too.
    words = pgp_words(bytes.fromhex(good.seal)).split()
    words[3], words[5] = words[5], words[3]
    if words != pgp_words(bytes.fromhex(good.seal)).split():
        with pytest.raises((audit.AuditFailed, InputError)):
            audit.verify_ceremony_dir(good.dir, seal=" ".join(words))


def test_garbage_seal_is_an_input_error(good: auditkit.Built) -> None:
    with pytest.raises(InputError) as ei:
        audit.verify_ceremony_dir(good.dir, seal="not a hash")
    assert ei.value.exit_code == 2


# -- one byte anywhere --------------------------------------------------------------------


def _positions(data: bytes, extra: int, seed: int) -> list[int]:
    """First, middle and last byte of every line, plus random ones."""
    pos: set[int] = set()
    start = 0
    for line in data.split(b"\n")[:-1]:
        end = start + len(line)  # index of the newline
        pos.update({start, (start + end) // 2, end})
        start = end + 1
    rng = random.Random(seed)
    pos.update(rng.randrange(len(data)) for _ in range(extra))
    return sorted(pos)


def test_any_transcript_byte_flipped_is_audit_chain(cer: Path) -> None:
    path = cer / tr.TRANSCRIPT_NAME
    original = path.read_bytes()
    positions = _positions(original, 150, seed=5)
    assert len(positions) > 90
    for off in positions:
        for mask in (0x01, 0x20):
            flip(path, off, mask)
            e = expect("AUDIT-CHAIN", cer)
            line = original[:off].count(b"\n")
            assert e.seq is not None and e.seq <= line + 1, (off, str(e))
            path.write_bytes(original)
    audit.verify_ceremony_dir(cer)  # restored: passes again


def test_transcript_line_removed_or_reordered_is_audit_chain(cer: Path) -> None:
    path = cer / tr.TRANSCRIPT_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5] + lines[6:]))
    assert expect("AUDIT-CHAIN", cer).seq == 5
    swapped = lines[:]
    swapped[7], swapped[8] = swapped[8], swapped[7]
    path.write_bytes(b"".join(swapped))
    assert expect("AUDIT-CHAIN", cer).seq == 7
    path.write_bytes(b"".join(lines[:-1]))  # the seal record cut off
    expect("AUDIT-SEAL", cer)


def test_rewritten_chain_is_caught_by_the_paper_seal(cer: Path, good: auditkit.Built) -> None:
    """An attacker who rewrites a record and re-hashes the whole chain (and the seal file) is
    only caught by the hash the witnesses wrote on paper: that is what the seal is for."""
    path = cer / tr.TRANSCRIPT_NAME
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    for r in recs:
        if r["event"] == "exception":
            r["data"]["happened"] = "nothing unusual"
    prev = tr.GENESIS
    for r in recs:
        r["prev"] = prev
        r["hash"] = tr.record_hash(r)
        prev = r["hash"]
    path.write_bytes(b"".join(tr.canonical_json(r) + b"\n" for r in recs))
    (cer / tr.SEAL_NAME).write_text(tr.Seal(prev, tr.words(prev), len(recs)).text())
    assert audit.verify_ceremony_dir(cer).seal == prev != good.seal
    expect("AUDIT-SEAL", cer, seal=good.seal)
    expect("AUDIT-SEAL", cer, seal=pgp_words(bytes.fromhex(good.seal)))


def test_any_artifact_byte_flipped_is_audit_artifact(cer: Path) -> None:
    skr = cer / "artifacts" / "skr.txt"
    original = skr.read_bytes()
    write_seq = next(
        json.loads(x)["seq"]
        for x in (cer / tr.TRANSCRIPT_NAME).read_text().splitlines()
        if "artifacts/skr.txt" in x
    )
    for off in _positions(original, 40, seed=7):
        flip(skr, off)
        e = expect("AUDIT-ARTIFACT", cer)
        assert e.seq == write_seq and "artifacts/skr.txt" in str(e)
        skr.write_bytes(original)
    skr.unlink()
    assert "missing" in str(expect("AUDIT-ARTIFACT", cer))


def test_plan_byte_flipped_is_audit_artifact(cer: Path) -> None:
    plan = cer / tr.PLAN_NAME
    original = plan.read_bytes()
    for off in (0, len(original) // 2, len(original) - 1):
        flip(plan, off)
        assert expect("AUDIT-ARTIFACT", cer).seq == 0
        plan.write_bytes(original)


def test_any_seal_file_byte_flipped_is_audit_seal(cer: Path) -> None:
    seal = cer / tr.SEAL_NAME
    original = seal.read_bytes()
    for off in range(len(original)):
        flip(seal, off)
        expect("AUDIT-SEAL", cer)
        seal.write_bytes(original)
    seal.unlink()
    assert "missing" in str(expect("AUDIT-SEAL", cer))


def test_unlisted_file_is_a_warning(cer: Path) -> None:
    (cer / "artifacts" / "extra.bin").write_bytes(b"slipped in later")
    r = audit.verify_ceremony_dir(cer)
    assert any("extra.bin" in w for w in r.warnings)


# -- how the ceremony was conducted -------------------------------------------------------


def test_unacknowledged_exception_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", exception_at=2, ack=False).dir
    e = expect("AUDIT-EXCEPTION", d)
    assert "acknowledged" in str(e)


def test_exception_acknowledged_by_its_recorder_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", exception_at=2).dir
    _rewrite(
        d,
        lambda r: (
            r.update(person="Walter Witness", role="IW") if r["event"] == "exception-ack" else None
        ),
    )
    e = expect("AUDIT-EXCEPTION", d)
    assert "second participant" in str(e)


def test_missing_step_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", omit=4).dir
    e = expect("AUDIT-STEP", d)
    assert "step 4" in str(e) and "show-hash" in str(e)
    d = auditkit.build(tmp_path / "c2", omit=1).dir
    assert "step 1 (Read the purpose" in str(expect("AUDIT-STEP", d))


def test_step_skipped_under_acknowledged_exception_passes(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", skip=5).dir
    r = audit.verify_ceremony_dir(d)
    assert r.steps_skipped == 1 and r.exceptions == 1


def test_step_skipped_without_acknowledgement_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", skip=5, ack=False).dir
    expect("AUDIT-EXCEPTION", d)


def test_quorum_short_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", quorum_officers=("Carol Officer",)).dir
    e = expect("AUDIT-QUORUM", d)
    assert e.seq == 1 and "needs 2 of 3" in str(e)


def test_quorum_officer_without_the_role_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", quorum_officers=("Carol Officer", "Alice Admin")).dir
    assert "Alice Admin" in str(expect("AUDIT-QUORUM", d))


def test_quorum_officer_counted_twice_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", quorum_officers=("Carol Officer", "Carol Officer")).dir
    expect("AUDIT-QUORUM", d)


def test_ksk_generation_without_a_quorum_login_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", plan_text=auditkit.PLAN_KEYGEN, quorum=False).dir
    e = expect("AUDIT-QUORUM", d)
    assert "step 4 (generate-key) needs a quorum login" in str(e)
    ok = auditkit.build(tmp_path / "c2", plan_text=auditkit.PLAN_KEYGEN).dir
    assert audit.verify_ceremony_dir(ok).quorum_logins == 1
    # A plan without KSK actions needs no quorum login.
    audit.verify_ceremony_dir(auditkit.build(tmp_path / "c3", quorum=False).dir)


def test_witness_initialling_their_own_step_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", initialler="Alice Admin").dir
    e = expect("AUDIT-ROLE", d)
    assert "witness role IW" in str(e)


def test_person_not_on_the_roster_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c").dir
    _rewrite(d, lambda r: r.update(person="Mallory") if r["event"] == "confirmed" else None)
    assert "Mallory" in str(expect("AUDIT-ROLE", d))


def test_action_completed_twice_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c").dir

    def dup(recs: list[dict[str, object]]) -> list[dict[str, object]]:
        i = next(i for i, r in enumerate(recs) if r["event"] == "action-completed")
        return [*recs[: i + 1], dict(recs[i]), *recs[i + 1 :]]

    _rewrite(d, None, splice=dup)
    assert "completed twice" in str(expect("AUDIT-STEP", d))


def test_aborted_ceremony_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", exception_at=2).dir

    def abort(recs: list[dict[str, object]]) -> list[dict[str, object]]:
        i = next(i for i, r in enumerate(recs) if r["event"] == "retry")
        a = dict(recs[i])
        a["event"] = "abort"
        a["data"] = {"reason": "token dead", "exception_seq": recs[i]["data"]["exception_seq"]}  # type: ignore[index]
        return [*recs[:i], a, recs[-1]]

    _rewrite(d, None, splice=abort)
    assert "aborted" in str(expect("AUDIT-STEP", d))


def test_unsealed_transcript_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", seal=False).dir
    assert "not sealed" in str(expect("AUDIT-SEAL", d))


# -- the response -------------------------------------------------------------------------


def test_response_signed_by_another_ksk_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", foreign_ksk=True).dir
    e = expect("AUDIT-RESPONSE", d)
    assert "not the KSK of this ceremony" in str(e) or "none of its DNSKEYs" in str(e)


def test_response_with_a_bad_signature_fails(tmp_path: Path) -> None:
    d = auditkit.build(tmp_path / "c", corrupt_sig=True).dir
    e = expect("AUDIT-RESPONSE", d)
    assert "bundle 5" in str(e) and "does not verify" in str(e)


# -- the command line ---------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CEREMONY, *args], capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )


def test_cli_verify_exit_codes(cer: Path, good: auditkit.Built, tmp_path: Path) -> None:
    pytest.importorskip("ceremony.cli_run")
    ok = _cli("audit", "verify", str(cer), "--seal", good.seal)
    assert ok.returncode == 0, ok.stderr
    flip(cer / "artifacts" / "skr.txt", 100)
    bad = _cli("audit", "verify", str(cer))
    assert bad.returncode == 1
    assert "AUDIT-ARTIFACT" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = _cli("audit", "verify", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nodir = _cli("audit", "verify", str(empty))
    assert nodir.returncode == 2 and "no transcript" in nodir.stderr


# -- helpers ------------------------------------------------------------------------------


def _rewrite(
    d: Path,
    edit: Callable[[dict[str, object]], object] | None,
    *,
    splice: Callable[[list[dict[str, object]]], list[dict[str, object]]] | None = None,
) -> None:
    """Edit records and re-chain consistently (as a forger would), seal file included, so
    only the rule under test can catch it."""
    path = d / tr.TRANSCRIPT_NAME
    recs: list[dict[str, object]] = [json.loads(x) for x in path.read_text().splitlines()]
    if edit is not None:
        for r in recs:
            edit(r)
    if splice is not None:
        recs = splice(recs)
    prev = tr.GENESIS
    for i, r in enumerate(recs):
        r["seq"] = i
        r["prev"] = prev
        if r["event"] == "seal":
            r["data"] = {**r["data"], "records": len(recs)}  # type: ignore[dict-item]
        r["hash"] = tr.record_hash(r)
        prev = str(r["hash"])
    path.write_bytes(b"".join(tr.canonical_json(r) + b"\n" for r in recs))
    if recs[-1]["event"] == "seal":
        (d / tr.SEAL_NAME).write_text(tr.Seal(prev, tr.words(prev), len(recs)).text())


def test_real_run_paused_torn_and_resumed_verifies(tmp_path: Path) -> None:
    """The engine's own run (tests/data/ceremony/mini.yaml): paused, a torn last line left by
    a power cut, resumed to the end -- the audit passes and counts the torn tail."""
    pytest.importorskip("ceremony.cli_run")
    plan = REPO / "tests" / "data" / "ceremony" / "mini.yaml"
    cdir = tmp_path / "cer"
    first = tmp_path / "pause.yaml"
    first.write_text("steps:\n  2: {blanks: {number: TEB-100}}\n  4: {pause: true}\n")
    rest = tmp_path / "rest.yaml"
    rest.write_text("steps:\n  2: {blanks: {number: TEB-100}}\n")
    r1 = _cli("run", str(plan), "--dir", str(cdir), "--answers", str(first))
    assert r1.returncode == 0, r1.stderr
    expect("AUDIT-SEAL", cdir)  # paused: not sealed yet
    with open(cdir / tr.TRANSCRIPT_NAME, "ab") as fh:
        fh.write(b'{"v":1,"ceremony":"mini-2025-01","seq":')  # the power went mid-write
    assert "bytes after the last complete record" in str(expect("AUDIT-CHAIN", cdir))
    r2 = _cli("run", str(plan), "--dir", str(cdir), "--answers", str(rest))
    assert r2.returncode == 0, r2.stderr
    result = audit.verify_ceremony_dir(cdir)
    assert result.steps == 6 and result.warnings == ()
    assert any(p.name.startswith("torn-tail-") for p in (cdir / "artifacts").iterdir())
    torn = next(p for p in (cdir / "artifacts").iterdir() if p.name.startswith("torn-tail-"))
    flip(torn, 3)
    assert "torn tail" in str(expect("AUDIT-ARTIFACT", cdir))
