"""The runner: answers-file rehearsals, exceptions, pause/resume, kill -9 and resume, a
non-repeatable action never re-run, PINs never recorded, dry run, and a real interactive run
through a pseudo-terminal (pexpect)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
import yaml

from ceremony import transcript as T

DATA = Path(__file__).parent / "data" / "ceremony"
MINI = DATA / "mini.yaml"
KSK = DATA / "ksk.yaml"
CEREMONY = str(Path(sys.executable).parent / "ceremony")
BASE_ANSWERS = {"steps": {2: {"blanks": {"number": "TEB-100"}}}}


def _answers(tmp_path: Path, extra: dict | None = None, name: str = "answers.yaml") -> Path:
    data = yaml.safe_load(yaml.safe_dump(BASE_ANSWERS))
    for k, v in (extra or {}).items():
        if k == "steps":
            for n, sv in v.items():
                data["steps"].setdefault(n, {}).update(sv)
        else:
            data[k] = v
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _run(
    plan: Path, d: Path, answers: Path | None = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    cmd = [CEREMONY, "run", str(plan), "--dir", str(d)]
    if answers:
        cmd += ["--answers", str(answers)]
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, check=False, timeout=120)


def _events(d: Path) -> list[T.Record]:
    return T.load(d)


def _assert_complete(d: Path, nsteps: int) -> list[T.Record]:
    recs = _events(d)
    assert recs[-1].event == "seal"
    assert T.read_seal(d) == recs[-1].hash
    done = {r.step for r in recs if r.event in ("step-completed", "skip")}
    assert done == set(range(1, nsteps + 1))
    for step, n in Counter(r.step for r in recs if r.event == "action-completed").items():
        retried = any(r.event == "retry" and r.step == step for r in recs)
        assert n == 1 or retried, f"step {step} action completed {n} times"
    return recs


def test_answers_rehearsal(tmp_path: Path) -> None:
    d = tmp_path / "c"
    proc = _run(MINI, d, _answers(tmp_path))
    assert proc.returncode == 0, proc.stderr
    recs = _assert_complete(d, 6)
    assert "Transcript sealed" in proc.stdout and recs[-1].hash in proc.stdout
    assert T.words(recs[-1].hash) in proc.stdout
    assert (d / "artifacts/note.txt").read_text() == "hello from bag TEB-100\n"
    assert (d / T.PLAN_NAME).read_bytes() == MINI.read_bytes()
    assert recs[0].data["plan_sha256"] == T.sha256_file(MINI)
    ini = [r for r in recs if r.event == "initialled"]
    assert {(r.person, r.data["initials"]) for r in ini} == {("Walter Witness", "WW")}
    out = next(r for r in recs if r.event == "action-completed" and r.step == 3)
    assert out.outputs["file"]["path"] == "artifacts/note.txt"
    assert out.outputs["file"]["sha256"] in proc.stdout  # shown with its hash
    started = next(r for r in recs if r.event == "action-started" and r.step == 3)
    assert started.seq < out.seq
    # Running again on a sealed directory changes nothing.
    again = _run(MINI, d, _answers(tmp_path))
    assert again.returncode == 0 and "sealed" in again.stdout
    assert len(_events(d)) == len(recs)


def test_exception_retry_and_skip(tmp_path: Path) -> None:
    ans = _answers(
        tmp_path,
        {
            "steps": {
                4: {
                    "exception": {
                        "expected": "hash shown",
                        "happened": "screen blank",
                        "done": "rebooted display",
                        "ack": "Alice Admin",
                        "decision": "retry",
                    }
                },
                6: {
                    "exception": {
                        "at": "initials",
                        "expected": "bag TEB-300",
                        "happened": "bag torn",
                        "done": "used TEB-301",
                        "ack": "Carol Officer",
                        "decision": "skip",
                        "justification": "documented on paper",
                    }
                },
            }
        },
    )
    d = tmp_path / "c"
    proc = _run(MINI, d, ans)
    assert proc.returncode == 0, proc.stderr
    recs = _assert_complete(d, 6)
    exc = [r for r in recs if r.event == "exception"]
    assert [(r.step, r.person, r.data["happened"]) for r in exc] == [
        (4, "Walter Witness", "screen blank"),
        (6, "Walter Witness", "bag torn"),
    ]
    acks = [r for r in recs if r.event == "exception-ack"]
    assert [(r.person, r.data["exception_seq"]) for r in acks] == [
        ("Alice Admin", exc[0].seq),
        ("Carol Officer", exc[1].seq),
    ]
    assert [r.step for r in recs if r.event == "retry"] == [4]
    skip = next(r for r in recs if r.event == "skip")
    assert skip.step == 6 and skip.data["justification"] == "documented on paper"
    assert not any(r.event == "step-completed" and r.step == 6 for r in recs)


def test_ack_by_the_witness_themself_refused(tmp_path: Path) -> None:
    ans = _answers(
        tmp_path,
        {
            "steps": {
                1: {
                    "exception": {
                        "expected": "a",
                        "happened": "b",
                        "done": "c",
                        "ack": "Walter Witness",
                        "decision": "retry",
                    }
                }
            }
        },
    )
    proc = _run(MINI, tmp_path / "c", ans)
    assert proc.returncode == 2
    assert "'Walter Witness' is not one of" in proc.stderr and "Traceback" not in proc.stderr


def test_abort_is_final(tmp_path: Path) -> None:
    ans = _answers(
        tmp_path,
        {
            "steps": {
                3: {
                    "exception": {
                        "expected": "a",
                        "happened": "b",
                        "done": "c",
                        "ack": "Alice Admin",
                        "decision": "abort",
                        "justification": "token missing",
                    }
                }
            }
        },
    )
    d = tmp_path / "c"
    proc = _run(MINI, d, ans)
    assert proc.returncode == 1
    assert "CER-ABORTED" in proc.stderr and "token missing" in proc.stderr
    assert _events(d)[-1].event == "abort"
    again = _run(MINI, d, _answers(tmp_path, name="a2.yaml"))
    assert again.returncode == 1 and "was aborted at step 3" in again.stderr


def test_pause_resume_and_changed_plan_refused(tmp_path: Path) -> None:
    d = tmp_path / "c"
    proc = _run(MINI, d, _answers(tmp_path, {"steps": {4: {"pause": True}}}))
    assert proc.returncode == 0 and "Paused before step 4" in proc.stdout
    recs = _events(d)
    assert recs[-1].event == "pause" and recs[-1].data["after_step"] == 3
    changed = tmp_path / "changed.yaml"
    changed.write_text(MINI.read_text().replace("Test room", "Other room"))
    bad = _run(changed, d, _answers(tmp_path, name="a2.yaml"))
    assert bad.returncode == 1 and "CER-PLAN-UNCHANGED" in bad.stderr
    proc = _run(MINI, d, _answers(tmp_path, name="a3.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "Resuming mini-2025-01 after step 3" in proc.stdout
    recs = _assert_complete(d, 6)
    resume = next(r for r in recs if r.event == "resume")
    assert resume.data["after_step"] == 3
    assert sum(1 for r in recs if r.event == "action-completed" and r.step == 3) == 1


def _slow_plan(tmp_path: Path) -> Path:
    p = tmp_path / "slow.yaml"
    p.write_text(MINI.read_text().replace("params: {seconds: 1}", "params: {seconds: 3}"))
    return p


def _kill_when(plan: Path, d: Path, ans: Path, cond: Callable[[list[bytes]], bool]) -> None:
    proc = subprocess.Popen(
        [CEREMONY, "run", str(plan), "--dir", str(d), "--answers", str(ans)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            p = d / T.TRANSCRIPT_NAME
            lines = p.read_bytes().splitlines() if p.exists() else []
            if cond(lines) or proc.poll() is not None:
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def _has(event: str, step: int) -> Callable[[list[bytes]], bool]:
    needle_e = f'"event":"{event}"'.encode()
    needle_s = f'"step":{step},'.encode()
    return lambda lines: any(needle_e in ln and needle_s in ln for ln in lines)


@pytest.mark.parametrize(
    "cond",
    [
        pytest.param(lambda lines: len(lines) >= 3, id="early"),
        pytest.param(_has("action-completed", 3), id="after-write-file"),
        pytest.param(_has("action-started", 5), id="inside-long-action"),
        pytest.param(_has("initialled", 6), id="before-seal"),
    ],
)
def test_kill9_and_resume(tmp_path: Path, cond: Callable[[list[bytes]], bool]) -> None:
    plan = _slow_plan(tmp_path)
    d = tmp_path / "c"
    ans = _answers(tmp_path, {"on_interrupt": {"ack": "Alice Admin", "decision": "retry"}})
    _kill_when(plan, d, ans, cond)
    T.load(d)  # whatever the moment, what is on disk verifies
    proc = _run(plan, d, ans)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recs = _assert_complete(d, 6)
    if any(r.event == "seal" for r in recs[:-1]):  # pragma: no cover - the kill came too late
        return
    assert any(r.event == "resume" for r in recs) or recs[0].event == "begin"
    inter = [r for r in recs if r.event == "exception" and "interrupted_seq" in r.data]
    for r in inter:
        assert recs[r.data["interrupted_seq"]].event == "action-started"


def test_kill9_with_torn_last_line(tmp_path: Path) -> None:
    plan = _slow_plan(tmp_path)
    d = tmp_path / "c"
    ans = _answers(tmp_path, {"on_interrupt": {"ack": "Alice Admin", "decision": "retry"}})
    _kill_when(plan, d, ans, _has("action-started", 5))
    partial = b'{"ceremony":"mini-2025-01","data":{"act'
    with open(d / T.TRANSCRIPT_NAME, "ab") as fh:  # the power cut hit mid-write
        fh.write(partial)
    proc = _run(plan, d, ans)
    assert proc.returncode == 0, proc.stderr
    recs = _assert_complete(d, 6)
    resume = next(r for r in recs if r.event == "resume")
    assert resume.data["torn_tail"]["bytes"] == len(partial)
    assert "partial last record" in proc.stdout


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    d = tmp_path / "c"
    proc = _run(KSK, d, None, "--dry-run", "--lab", str(tmp_path / "lab"))
    assert proc.returncode == 0, proc.stderr
    assert (
        "would generate a KSK (algorithm 13) labelled ksk-2025 on token ksk-primary" in proc.stdout
    )
    assert "NEVER repeated" in proc.stdout
    assert "<steps.ksk.dnskey_file>" in proc.stdout
    assert not d.exists() and not (tmp_path / "lab").exists()


def test_token_ceremony_and_non_repeatable_action_never_rerun(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    d = tmp_path / "c"
    # Stop before key generation, then simulate a kill -9 right after the action-started
    # record of generate-key was fsynced (the key may or may not exist on the token).
    proc = _run(KSK, d, _answers(tmp_path, {"steps": {4: {"pause": True}}}), "--lab", str(lab))
    assert proc.returncode == 0, proc.stderr
    with T.Transcript.open(d, "ksk-test-1") as t:
        t.append(
            "action-started",
            step=4,
            role="CA",
            person="Alice Admin",
            data={"action": "generate-key", "params": {}, "idempotent": False},
        )
    retry = _answers(
        tmp_path, {"on_interrupt": {"ack": "Alice Admin", "decision": "retry"}}, name="retry.yaml"
    )
    proc = _run(KSK, d, retry, "--lab", str(lab))
    assert proc.returncode == 2
    assert "decision 'retry' not possible here (options: skip, abort)" in proc.stderr
    skip = _answers(
        tmp_path,
        {
            "on_interrupt": {
                "ack": "Alice Admin",
                "decision": "skip",
                "justification": "token checked: no key",
            },
            "on_failure": {
                "ack": "Alice Admin",
                "decision": "skip",
                "justification": "no KSK, no DS",
            },
        },
        name="skip.yaml",
    )
    proc = _run(KSK, d, skip, "--lab", str(lab))
    assert proc.returncode == 0, proc.stderr
    recs = _assert_complete(d, 6)
    assert not any(r.event == "action-completed" and r.step == 4 for r in recs)
    assert "will NOT be run again" in proc.stdout
    from signer.keys.pkcs11 import Pkcs11Token
    from signer.pin import PinSource

    os.environ["SOFTHSM2_CONF"] = str(lab / "softhsm2.conf")
    with Pkcs11Token(
        "pkcs11:token=ksk-primary", PinSource(pin_file=str(lab / "pins/ksk-primary.pin"))
    ) as tok:
        assert tok.list_keys() == []  # generate-key never ran


def test_token_ceremony_records_identity_never_the_pin(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    d = tmp_path / "c"
    proc = _run(KSK, d, _answers(tmp_path), "--lab", str(lab))
    assert proc.returncode == 0, proc.stderr
    recs = _assert_complete(d, 6)
    gen = next(r for r in recs if r.event == "action-completed" and r.step == 4)
    assert gen.token is not None and gen.token["label"] == "ksk-primary"
    assert gen.token["manufacturer"] == "SoftHSM project" and gen.token["serial"]
    q = next(r for r in recs if r.event == "quorum")
    assert q.data == {"role": "CO", "m": 2, "n": 3, "officers": ["Carol Officer", "Dave Officer"]}
    ds = gen.outputs["ds"]["value"]
    pds = next(r for r in recs if r.event == "action-completed" and r.step == 5)
    assert pds.outputs["ds"]["value"] == ds and ds.startswith("example. IN DS ")
    assert (
        (d / "artifacts/ksk-2025.dnskey")
        .read_text()
        .startswith("example. 3600 IN DNSKEY 257 3 13 ")
    )
    pin = (lab / "pins/ksk-primary.pin").read_text().strip()
    for f in [d / T.TRANSCRIPT_NAME, *sorted((d / "artifacts").iterdir())]:
        assert pin.encode() not in f.read_bytes()
    assert pin not in proc.stdout + proc.stderr


def test_interactive_run_in_a_pty(tmp_path: Path) -> None:
    d = tmp_path / "c"
    env = {**os.environ, "COLUMNS": "200", "TERM": "xterm"}
    child = pexpect.spawn(
        CEREMONY,
        ["run", str(MINI), "--dir", str(d)],
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(50, 200),
    )
    try:

        def confirm(answer: str = "y") -> None:
            child.expect(
                r"Alice Admin: (step done|ready to run this action)\? \[y = yes, x = exception \(witness\), p = pause\]: "
            )
            child.sendline(answer)

        def initial(step: int) -> None:
            child.expect(
                rf"Walter Witness, witness: your initials to sign step {step} \(x = exception\): "
            )
            child.sendline("ww")

        confirm()
        child.expect(r"initials to sign step 1")
        child.sendline("ZZ")
        child.expect("not Walter Witness's initials")
        initial(1)
        confirm()
        child.expect("Bag number read aloud: ")
        child.sendline("TEB-100")
        initial(2)
        confirm()
        child.expect("output file: artifacts/note.txt")
        initial(3)
        confirm("x")
        child.expect("What was expected: ")
        child.sendline("the hash")
        child.expect("What happened: ")
        child.sendline("printer jammed")
        child.expect("What was done: ")
        child.sendline("cleared it")
        child.expect("Second participant acknowledging the exception")
        child.sendline("WW")
        child.expect("must be another person")
        child.sendline("AA")
        child.expect(r"Then: retry / skip / abort\? ")
        child.sendline("retry")
        confirm()
        initial(4)
        confirm()
        initial(5)
        confirm()
        initial(6)
        child.expect("Transcript sealed")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    recs = _assert_complete(d, 6)
    exc = next(r for r in recs if r.event == "exception")
    assert exc.data["happened"] == "printer jammed"
    assert next(r for r in recs if r.event == "exception-ack").person == "Alice Admin"
    assert next(r for r in recs if r.event == "confirmed" and r.step == 2).data["fields"] == {
        "number": "TEB-100"
    }
