"""The sharded pipeline (signer.zone.sharded): zone files cut into chunks parsed by several
workers, shards merged, signed and verified in their own processes. Real zone files, real
validators; the cut size is lowered so that small files are split like big ones."""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any

import pytest

import signer.zone.sharded as sharded
from signer.zone import _accel
from tests.test_zone_sign import Setup, _make, _sign, _validators
from tests.zone_testlib import ORIGIN
from tests.zone_testlib import generated_zone as _generated


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharded, "MIN_CHUNK", 1)  # the forked workers inherit it


def generated_zone(n: int) -> str:
    return _generated(n).replace(ORIGIN, "example.")  # the origin of test_zone_sign's keys


def _setup(tmp_path: Path, text: str) -> Setup:
    s = _make(tmp_path)
    s.zone.write_text(text)
    return s


def _summary(s: Setup, out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    js = s.dir / (out.name + ".json")
    r = _sign(s, out, "--summary-json", str(js), *extra)
    assert r.exit_code == 0, r.output
    return json.loads(js.read_text())  # type: ignore[no-any-return]


def test_multi_chunk_multi_shard_output_identical(tmp_path: Path, small_chunks: None) -> None:
    s = _setup(tmp_path, generated_zone(3000))
    one = _summary(s, tmp_path / "j1", "--jobs", "1")
    three = _summary(s, tmp_path / "j3", "--jobs", "3")
    assert one["sign_processes"] == 1 and one["load_chunks"] == 1
    assert three["sign_processes"] == 3 and three["load_chunks"] == 3
    assert (tmp_path / "j1").read_bytes() == (tmp_path / "j3").read_bytes()
    assert one["counts"] == three["counts"]
    _validators(tmp_path / "j3")


@pytest.mark.parametrize("policy", ["nsec", "nsec3", "nsec3-optout"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_many_shards_per_worker_identical(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch, policy: str, jobs: str
) -> None:
    # a big zone is cut into SPREAD shards per worker, taken one at a time by free workers
    s = _setup(tmp_path, generated_zone(1500))
    extra: tuple[str, ...] = ()
    if policy != "nsec":
        from tests.zone_testlib import write_policy

        pol = tmp_path / "p.yaml"
        write_policy(pol, "example.", nsec3=True, optout=policy == "nsec3-optout")
        extra = ("--policy", str(pol))
    ref = _summary(s, tmp_path / "ref", "--jobs", "1", *extra)
    assert ref["shards"] == 1
    monkeypatch.setattr(sharded, "SHARD_BYTES", 1)  # inherited by the forked workers
    many = _summary(s, tmp_path / "many", "--jobs", jobs, "--verify", "full", *extra)
    assert many["shards"] == sharded.SPREAD * int(jobs)
    assert many["compiled"] is _accel.status()[0]  # which build signed it
    assert many["sign_processes"] == int(jobs)
    assert many["load_chunks"] == many["shards"]
    assert (tmp_path / "ref").read_bytes() == (tmp_path / "many").read_bytes()
    assert ref["counts"] == many["counts"]
    if jobs == "2":
        _validators(tmp_path / "many", policy == "nsec3-optout")


@pytest.mark.parametrize("optout", [False, True])
def test_nsec3_across_shards_identical(tmp_path: Path, small_chunks: None, optout: bool) -> None:
    s = _setup(tmp_path, generated_zone(2000))
    pol = tmp_path / "p.yaml"
    from tests.zone_testlib import write_policy

    write_policy(pol, "example.", nsec3=True, optout=optout)
    one = _summary(s, tmp_path / "j1", "--jobs", "1", "--policy", str(pol))
    two = _summary(s, tmp_path / "j2", "--jobs", "2", "--policy", str(pol), "--verify", "full")
    assert two["sign_processes"] == 2
    assert (tmp_path / "j1").read_bytes() == (tmp_path / "j2").read_bytes()
    assert one["counts"]["chain"] == two["counts"]["chain"] > 100
    _validators(tmp_path / "j2", optout)


def _long_parenthesised(n: int) -> str:
    """A zone whose middle is one TXT record spread over n lines, each starting with a
    quote: a cut there lands inside the parentheses."""
    head = generated_zone(50)
    body = "big TXT (\n" + "".join(f'"part{i}"\n' for i in range(n)) + ")\n"
    tail = "".join(f"tail{i} NS ns1.tail{i}.example.\n" for i in range(50))
    return head + body + tail


def test_cut_inside_parentheses_falls_back_to_one_chunk(tmp_path: Path, small_chunks: None) -> None:
    s = _setup(tmp_path, _long_parenthesised(2000))
    one = _summary(s, tmp_path / "j1", "--jobs", "1")
    two = _summary(s, tmp_path / "j2", "--jobs", "2")
    assert two["load_chunks"] == 1  # the speculative cut was detected and undone
    assert (tmp_path / "j1").read_bytes() == (tmp_path / "j2").read_bytes()
    assert one["counts"]["names"] == two["counts"]["names"]


def test_error_late_in_file_names_true_line(tmp_path: Path, small_chunks: None) -> None:
    text = generated_zone(1000)
    lines = text.splitlines()
    bad = len(lines) - 5
    lines[bad - 1] = "broken A 300.1.2.3"
    s = _setup(tmp_path, "\n".join(lines) + "\n")
    out = tmp_path / "out"
    r = _sign(s, out, "--jobs", "2")
    assert r.exit_code == 2, r.output
    assert f"{s.zone}:{bad}: bad IPv4 address" in r.output
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".zonesigner-")] == []


def test_ttl_conflict_between_chunks_is_refused(tmp_path: Path, small_chunks: None) -> None:
    text = generated_zone(1000)
    first = next(ln for ln in text.splitlines() if "\tNS\t" in ln or " NS " in ln)
    owner = first.split()[0]
    s = _setup(tmp_path, text + f"{owner} 7 IN NS ns9.elsewhere.\n")
    r = _sign(s, tmp_path / "out", "--jobs", "3")
    assert r.exit_code == 2, r.output
    assert "one TTL per RRset" in r.output
    assert not (tmp_path / "out").exists()


def test_dead_worker_fails_loudly_without_output(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fault injection: a worker process dies in the middle of signing (as on an OOM kill)
    real = sharded.ShardWorker.sign

    def die(self: sharded.ShardWorker, shard: int, *args: Any) -> sharded.SignReport:
        if shard == 1:  # handed to worker 1 (tasks start in order, one per free worker)
            os._exit(9)
        return real(self, shard, *args)

    s = _setup(tmp_path, generated_zone(1000))
    out = tmp_path / "out"
    out.write_text("previous\n")
    monkeypatch.setattr(sharded.ShardWorker, "sign", die)
    r = _sign(s, out, "--jobs", "2")
    assert r.exit_code == 1, r.output
    assert "signing worker 1 died (exit code 9)" in r.output
    assert out.read_text() == "previous\n"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".zonesigner-")] == []


@pytest.mark.parametrize(("what", "message"), [("sum", "not the length"), ("cut", "inside a line")])
def test_nsec3_records_are_inserted_only_between_names(
    tmp_path: Path,
    small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
    what: str,
    message: str,
) -> None:
    """NSEC3: a shard's text is signed first, its NSEC3 records later and put between its
    names' blocks of lines by their lengths. Fault injection: lengths that do not add up to
    the text, or that would cut a line, fail the sign loudly, with no output."""
    import marshal

    from tests.zone_testlib import write_policy

    real = sharded.ShardWorker.sign

    def sign(self: sharded.ShardWorker, shard: int, *args: Any) -> sharded.SignReport:
        report = real(self, shard, *args)
        if shard == 1:
            path = os.path.join(self.plan.tmpdir, f"names-{shard}.m")
            with open(path, "rb") as fh:
                order, lengths, kept, lines = marshal.loads(fh.read())
            changed = array("Q")
            changed.frombytes(lengths)
            if what == "sum":
                changed[0] += 1
            else:  # the same sum, every block but the last cut one octet short
                changed[-1] += len(changed) - 1
                for i in range(len(changed) - 1):
                    changed[i] -= 1
            with open(path, "wb") as fh:
                fh.write(marshal.dumps((order, changed.tobytes(), kept, lines)))
        return report

    s = _setup(tmp_path, generated_zone(1000))
    pol = tmp_path / "p.yaml"
    write_policy(pol, "example.", nsec3=True, optout=False)
    out = tmp_path / "out"
    out.write_text("previous\n")
    monkeypatch.setattr(sharded.ShardWorker, "sign", sign)
    r = _sign(s, out, "--jobs", "2", "--policy", str(pol))
    assert r.exit_code == 1, r.output
    assert message in r.output and "nothing was written" in r.output
    assert out.read_text() == "previous\n"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".zonesigner-")] == []


def test_nsec3_owner_equal_to_a_name_is_refused_across_shards(
    tmp_path: Path, small_chunks: None
) -> None:
    """A name of the zone equal to an NSEC3 owner (here: the apex's hash as a label) is
    refused when the chain is put into the shards, as in a whole-zone sign."""
    import base64
    import hashlib

    from tests.zone_testlib import write_policy

    apex_hash = hashlib.sha1(b"\x07example\x00").digest()  # 0 iterations, no salt
    label = base64.b32hexencode(apex_hash).decode().lower()
    s = _setup(tmp_path, generated_zone(1000) + f"{label} 3600 IN TXT collide\n")
    pol = tmp_path / "p.yaml"
    write_policy(pol, "example.", nsec3=True, optout=True)
    out = tmp_path / "out"
    r = _sign(s, out, "--jobs", "2", "--policy", str(pol))
    assert r.exit_code != 0, r.output
    assert "ZONE-NSEC3-COLLISION" in r.output or "equal to an NSEC3 owner" in r.output
    assert f"{label}.example." in r.output
    assert not out.exists()


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_previous_across_chunks_reuses_signatures(
    tmp_path: Path, small_chunks: None, denial: str
) -> None:
    """Every signature of --previous is reused, the NSEC3 records' too (signed in a stage of
    their own), but the SOA's."""
    from tests.zone_testlib import write_policy

    s = _setup(tmp_path, generated_zone(2000))
    pol = tmp_path / "p.yaml"
    write_policy(pol, "example.", nsec3=denial == "nsec3", optout=False)
    first = _summary(s, tmp_path / "a", "--jobs", "2", "--policy", str(pol))
    again = _summary(
        s, tmp_path / "b", "--jobs", "2", "--policy", str(pol), "--previous", str(tmp_path / "a")
    )
    assert first["counts"]["chain"] > 2000
    # everything is reused (the SOA's signature too: this policy keeps the serial)
    assert again["counts"]["rrsigs_created"] == 0
    assert again["counts"]["rrsigs_reused"] == first["counts"]["rrsigs_created"]
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_previous_with_a_new_serial_reuses_all_but_the_soa(
    tmp_path: Path, small_chunks: None
) -> None:
    s = _setup(tmp_path, generated_zone(2000))
    first = _summary(s, tmp_path / "a", "--jobs", "2")
    again = _summary(s, tmp_path / "b", "--jobs", "2", "--previous", str(tmp_path / "a"))
    # everything is reused but the SOA's signature: its serial moves past the previous one
    assert again["counts"]["rrsigs_created"] == 1
    assert again["counts"]["rrsigs_reused"] == first["counts"]["rrsigs_created"] - 1
    assert again["serial"] > first["serial"]
    a = (tmp_path / "a").read_text().splitlines()
    b = (tmp_path / "b").read_text().splitlines()
    assert a[2:] == b[2:] and a[:2] != b[:2]  # SOA and its RRSIG come first


def test_output_index_locates_every_name(tmp_path: Path, small_chunks: None) -> None:
    """want_index: each name's block of lines, at the offsets the lengths give, is exactly
    the lines whose owner is that name -- for one shard and for three."""
    import hashlib

    from signer.bundles.textformat import load_response
    from signer.cli.signjob import KeyOpener, bundle_rrsets
    from signer.keys.loader import open_signing_key
    from signer.zone.model import name_from_text, name_to_text
    from signer.zone.signing import SignParams, SigTimes
    from signer.zone.verify import trust_anchor_from_file
    from tests.test_zone_sign import NOW

    s = _setup(tmp_path, generated_zone(1500))
    origin = name_from_text("example.", None)
    key = open_signing_key(str(s.zsk), None, warn=False)
    resp = load_response(str(s.bundles), zone="example.")
    ta = trust_anchor_from_file(s.ta)
    for jobs in (1, 3):
        out = tmp_path / f"idx{jobs}"
        with out.open("wb") as fh:
            res = sharded.sign_sharded(
                zonefile=str(s.zone), previous=None, origin=origin, jobs=jobs,
                params=SignParams(int(key.dnskey.algorithm), key.dnskey.key_tag, origin),
                times=SigTimes(NOW, NOW - 3600, 14 * 86400, 0), refresh=5 * 86400,
                denial=sharded.Denial("nsec"),
                verify=sharded.VerifySpec("structural", tuple(ta), key.dnskey, 0),
                serial_mode="keep", apex_rrsets=bundle_rrsets(origin, resp.bundles[0]),
                opener=KeyOpener(str(s.zsk), None, quiet=True), key=key, out=fh,
                out_dir=str(tmp_path), digest=hashlib.sha256(), want_index=True,
            )  # fmt: skip
        data = out.read_bytes()
        idx = res.index
        assert idx is not None and len(idx.names()) == len(idx.lengths) == res.names
        assert sum(idx.lengths) == len(data)
        pos = 0
        for name, n in zip(idx.names(), idx.lengths, strict=True):
            owners = {ln.split(b"\t")[0] for ln in data[pos : pos + n].splitlines()}
            assert owners == {name_to_text(name).encode()}
            pos += n


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_self_verification_catches_a_bad_signature(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    """Fault injection: one RRSIG comes back corrupted (as from a faulty token or a signing
    bug). --verify full finds it in whichever batch and shard it is; nothing is published."""
    import signer.zone.signing as signing

    real = signing._sign_one

    def corrupt(sign, params, inception, owner, *rest):  # type: ignore[no-untyped-def]
        sig = real(sign, params, inception, owner, *rest)
        if owner.startswith(b"\x07d001234"):
            sig = sig[:-1] + bytes([sig[-1] ^ 1])
        return sig

    monkeypatch.setattr(signing, "_sign_one", corrupt)
    s = _setup(tmp_path, generated_zone(6000))
    out = tmp_path / "out"
    r = _sign(s, out, "--jobs", jobs, "--verify", "full")
    assert r.exit_code == 1, r.output
    assert "ZONE-VERIFY-SIGNATURE" in r.output and "d001234.example." in r.output
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".zonesigner-")] == []


def test_self_verification_catches_a_broken_chain_between_shards(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection in the parent: the NSEC chain is linked to the wrong name between two
    shards; the joint check of the shard verifications refuses to publish."""
    real = sharded._nsec_wraps

    def skip_one(merged, origin):  # type: ignore[no-untyped-def]
        wraps = real(merged, origin)
        wraps[0] = b"\x07d999999\x07example\x00"  # not the next shard's first name
        return wraps

    monkeypatch.setattr(sharded, "_nsec_wraps", skip_one)
    s = _setup(tmp_path, generated_zone(3000))
    r = _sign(s, tmp_path / "out", "--jobs", "2")
    assert r.exit_code == 1, r.output
    assert "ZONE-VERIFY-NSEC-CHAIN" in r.output
    assert not (tmp_path / "out").exists()


def test_links_read_off_the_load_reports_are_checked(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection in the parent: NSEC shards sign with the next shard's first name as
    predicted from the load reports; a wrong prediction is caught after signing (the shards'
    own first chain names differ) and nothing is published."""
    real = sharded._shard_firsts

    def wrong(loads, n, apex_dname):  # type: ignore[no-untyped-def]
        firsts = real(loads, n, apex_dname)
        firsts[1] = b"\x07d999999\x07example\x00"
        return firsts

    monkeypatch.setattr(sharded, "_shard_firsts", wrong)
    s = _setup(tmp_path, generated_zone(3000))
    out = tmp_path / "out"
    out.write_text("previous\n")
    r = _sign(s, out, "--jobs", "2")
    assert r.exit_code == 1, r.output
    assert "were not the shards' first chain names" in r.output
    assert out.read_text() == "previous\n"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".zonesigner-")] == []


def test_apex_read_off_the_load_reports_is_checked(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the NSEC TTL the parent took from the first apex SOA is not the one
    shard 0 computes from its merged apex; shard 0 refuses before signing."""
    monkeypatch.setattr(sharded, "_negative_ttl", lambda loads: 12345)
    s = _setup(tmp_path, generated_zone(3000))
    r = _sign(s, tmp_path / "out", "--jobs", "2")
    assert r.exit_code == 1, r.output
    assert "the apex read before signing (SOA, DNSKEY, NSEC3PARAM) differs" in r.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("policy", ["nsec", "nsec3", "nsec3-optout"])
def test_hand_written_zone_identical_for_any_cut(
    tmp_path: Path, small_chunks: None, policy: str
) -> None:
    """Wildcards, ENTs, deep names, uppercase, escapes, CNAME, DNAME, delegations with and
    without DS, glue: cut into up to 5 chunks and shards, the signed zone is the same bytes
    as in one process, and it validates."""
    from tests.zone_testlib import HAND_ZONE, write_policy

    s = _setup(tmp_path, HAND_ZONE.replace(ORIGIN, "example."))
    extra: list[str] = []
    if policy != "nsec":
        pol = write_policy(
            tmp_path / "p.yaml", "example.", nsec3=True, optout=policy == "nsec3-optout"
        )
        extra = ["--policy", str(pol)]
    outs = {}
    for jobs in (1, 2, 3, 5):
        summary = _summary(s, tmp_path / f"j{jobs}", "--jobs", str(jobs), *extra)
        outs[jobs] = (tmp_path / f"j{jobs}").read_bytes()
        if jobs > 1:
            assert summary["sign_processes"] > 1  # really cut
    assert len(set(outs.values())) == 1
    _validators(tmp_path / "j5", policy == "nsec3-optout")


def test_background_threads_yield_the_cpu() -> None:
    """The hashing and copying threads run at the lowest priority (Linux: per thread); the
    calling thread keeps its own."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(1, initializer=sharded.background_thread) as ex:
        theirs = ex.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert theirs.result() == sharded.BACKGROUND_NICE > mine
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_part_copier_writes_parts_in_order_and_raises_a_failed_copy(tmp_path: Path) -> None:
    import hashlib
    import io
    from types import SimpleNamespace

    from signer.zone.incremental import CountingDigest

    def report(lines: int) -> sharded.SignReport:
        return SimpleNamespace(part_lines=lines)  # type: ignore[return-value]

    for i in range(4):
        (tmp_path / f"part-{i}.txt").write_bytes(b"part %d\n" % i * 1000)
    out, digest = io.BytesIO(), CountingDigest()
    copier = sharded._PartCopier(str(tmp_path), 4, out, digest)
    for shard in (2, 0, 3):  # as the workers finish: 0 is copied, 1 holds back 2 and 3
        copier.done(shard, report(1000))
    copier.done(1, report(999))  # the lines are the reports' (the workers count them)
    copier.finish()
    want = b"".join(b"part %d\n" % i * 1000 for i in range(4))
    assert out.getvalue() == want and digest.hexdigest() == hashlib.sha256(want).hexdigest()
    assert digest.lines == 3999 and digest.size == len(want)
    assert not list(tmp_path.iterdir())  # each part removed once copied

    # a plain hashlib digest (no line count) works too
    (tmp_path / "part-0.txt").write_bytes(b"a\n")
    plain = hashlib.sha256()
    copier = sharded._PartCopier(str(tmp_path), 1, io.BytesIO(), plain)
    copier.done(0, report(1))
    copier.finish()
    assert plain.hexdigest() == hashlib.sha256(b"a\n").hexdigest()

    (tmp_path / "part-0.txt").write_bytes(b"x")  # part 1 is missing
    copier = sharded._PartCopier(str(tmp_path), 2, io.BytesIO(), hashlib.sha256())
    copier.done(0, report(0))
    with pytest.raises(FileNotFoundError):
        copier.finish()
    copier.close()


def test_progress_bar_grows_once_the_nsec3_chain_is_linked() -> None:
    """The bar starts with the names the load stage found; an NSEC3 zone's chain, known
    once linked, is added to the same bar (started again: same callback, new total)."""
    from signer.cli.signjob import _Progress

    assert _Progress(False).start(10) is None
    p = _Progress(True)
    advance = p.start(10)
    assert advance is not None
    prog = p.stop.__self__  # type: ignore[attr-defined]
    try:
        advance(4)
        assert p.start(25) is advance
        (task,) = prog.tasks
        assert (task.completed, task.total) == (4, 25)
    finally:
        p.stop()
