"""The transcript: hash chain, tamper detection, torn last line, secrets refused, seal, lock."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from ceremony import transcript as T
from signer.pgpwords import from_pgp_words


def _make(d: Path, n: int = 3) -> T.Transcript:
    t = T.Transcript.open(d, "c-1")
    t.append("begin", role="system", data={"plan_sha256": "00" * 32})
    for i in range(1, n + 1):
        t.append("step-started", step=i, role="CA", person="Alice")
    return t


def test_chain_and_canonical_lines(tmp_path: Path) -> None:
    with _make(tmp_path) as t:
        ref = t.store_artifact("a.txt", "hello\n")
        t.append(
            "action-completed", step=3, outputs={"f": ref.as_output(), "v": T.value_output("x")}
        )
    recs = T.load(tmp_path)
    assert [r.seq for r in recs] == [0, 1, 2, 3, 4]
    assert recs[0].prev == T.GENESIS
    for a, b in itertools.pairwise(recs):
        assert b.prev == a.hash
    for line, rec in zip(
        (tmp_path / T.TRANSCRIPT_NAME).read_bytes().splitlines(), recs, strict=True
    ):
        assert line == T.canonical_json(rec.as_dict())
        assert T.record_hash(json.loads(line)) == rec.hash
    assert recs[4].outputs["f"]["sha256"] == T.sha256_file(tmp_path / "artifacts/a.txt")


@pytest.mark.parametrize("offset", [5, 120, -30])
def test_one_byte_changed_is_caught(tmp_path: Path, offset: int) -> None:
    _make(tmp_path).close()
    p = tmp_path / T.TRANSCRIPT_NAME
    raw = bytearray(p.read_bytes())
    pos = offset if offset >= 0 else len(raw) + offset
    # change a character inside a string value/key so the line stays JSON where possible
    raw[pos] = ord("X") if raw[pos] != ord("X") else ord("Y")
    p.write_bytes(bytes(raw))
    with pytest.raises(T.TranscriptChainBroken) as ei:
        T.load(tmp_path)
    assert "TRANSCRIPT-CHAIN" in str(ei.value)


def test_removed_record_is_caught(tmp_path: Path) -> None:
    _make(tmp_path).close()
    p = tmp_path / T.TRANSCRIPT_NAME
    lines = p.read_bytes().splitlines(keepends=True)
    p.write_bytes(b"".join(lines[:2] + lines[3:]))
    with pytest.raises(T.TranscriptChainBroken, match="sequence number"):
        T.load(tmp_path)


@pytest.mark.parametrize("cut", [1, 17, -2])
def test_torn_last_line_recorded_and_chain_verifies(tmp_path: Path, cut: int) -> None:
    t = _make(tmp_path)
    t.close()
    p = tmp_path / T.TRANSCRIPT_NAME
    # Simulate a write cut by a power failure: part of one more record.
    extra = b'{"ceremony":"c-1","data":{},"event":"step-started","hash":"ab'
    partial = extra[:cut]
    with open(p, "ab") as fh:
        fh.write(partial)
    t = T.Transcript.open(tmp_path, "c-1")
    assert t.torn_tail is not None and t.torn_tail_bytes == len(partial)
    assert (tmp_path / t.torn_tail.path).read_bytes() == partial
    t.append("resume", role="system", data={"after_step": 3, **t.torn_tail_data()})
    t.close()
    recs = T.load(tmp_path)
    assert recs[-1].event == "resume"
    assert recs[-1].data["torn_tail"]["bytes"] == len(partial)


def test_complete_json_without_newline_is_torn(tmp_path: Path) -> None:
    _make(tmp_path, 1).close()
    p = tmp_path / T.TRANSCRIPT_NAME
    raw = p.read_bytes()
    p.write_bytes(raw[:-1])  # the last record lost its newline: never fully written
    t = T.Transcript.open(tmp_path, "c-1")
    assert t.torn_tail is not None
    assert len(t.records) == 1
    t.close()


def test_garbage_in_the_middle_is_not_torn(tmp_path: Path) -> None:
    _make(tmp_path).close()
    p = tmp_path / T.TRANSCRIPT_NAME
    lines = p.read_bytes().splitlines(keepends=True)
    p.write_bytes(lines[0] + b"{not json\n" + b"".join(lines[1:]))
    with pytest.raises(T.TranscriptChainBroken, match=r"transcript.jsonl:2"):
        T.Transcript.open(tmp_path, "c-1")


@pytest.mark.parametrize(
    "key", ["pin", "user_pin", "so-pin", "PIN", "passphrase", "private_key", "share", "secret"]
)
def test_secret_keys_refused(tmp_path: Path, key: str) -> None:
    with _make(tmp_path, 0) as t:
        with pytest.raises(T.SecretInTranscript, match="TRANSCRIPT-NO-SECRET"):
            t.append("note", data={"nested": [{key: "1234"}]})
        assert len(t.records) == 1  # nothing written
    assert len(T.load(tmp_path)) == 1


def test_registered_secret_value_refused(tmp_path: Path) -> None:
    with _make(tmp_path, 0) as t:
        t.forbid("83927461")
        with pytest.raises(T.SecretInTranscript):
            t.append("note", data={"text": "the code is 83927461"})
        t.append("note", data={"text": "spinning pinwheel"})  # 'pin' inside words is fine


def test_seal_and_nothing_after(tmp_path: Path) -> None:
    with _make(tmp_path) as t:
        seal = t.seal(person="Alice", role="CA")
        assert from_pgp_words(seal.words) == bytes.fromhex(seal.hash)
        with pytest.raises(T.TranscriptSealed):
            t.append("note", data={"text": "late"})
    assert T.read_seal(tmp_path) == seal.hash == T.load(tmp_path)[-1].hash


def test_second_runner_refused_and_other_ceremony_refused(tmp_path: Path) -> None:
    t = _make(tmp_path)
    with pytest.raises(T.TranscriptBusy):
        T.Transcript.open(tmp_path, "c-1")
    t.close()
    with pytest.raises(T.InputError, match="holds ceremony 'c-1'"):
        T.Transcript.open(tmp_path, "c-2")


def test_artifact_never_overwritten(tmp_path: Path) -> None:
    with _make(tmp_path, 0) as t:
        t.store_artifact("x.bin", b"1")
        with pytest.raises(T.OutputError):
            t.store_artifact("x.bin", b"2")
    assert (tmp_path / "artifacts/x.bin").read_bytes() == b"1"


def test_seal_file_rewritten_after_a_kill_before_it(tmp_path: Path) -> None:
    with _make(tmp_path) as t:
        seal = t.seal()
    (tmp_path / T.SEAL_NAME).unlink()
    with T.Transcript.open(tmp_path, "c-1") as t:
        assert t.write_seal_file().hash == seal.hash
    assert T.read_seal(tmp_path) == seal.hash
