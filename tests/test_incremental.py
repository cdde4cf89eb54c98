"""Incremental re-signing (signer.zone.incremental): a full sign writes a state; a later
sign with --previous re-signs only what changed. The oracle is the full path with
--previous at the same --now (--no-incremental): byte-identical output, validators pass.
Every fallback is exercised and its reason checked. Real zone files, real keys."""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from signer.zone.incremental import STATE_SUFFIX, load_state
from tests.test_sharded import generated_zone
from tests.test_zone_sign import DAY, NOW, Setup, _make, _sign, _validators


def _setup(tmp_path: Path, text: str) -> Setup:
    s = _make(tmp_path)
    s.zone.write_text(text)
    return s


def _run(s: Setup, out: Path, *extra: str, now: int = NOW, code: int = 0) -> dict:  # type: ignore[type-arg]
    js = out.with_name(out.name + ".json")
    r = _sign(s, out, "--summary-json", str(js), *extra, now=now)
    assert r.exit_code == code, r.output
    return json.loads(js.read_text()) if code == 0 else {"output": r.output}  # type: ignore[no-any-return]


def _first(s: Setup, tmp_path: Path) -> Path:
    p = tmp_path / "p.signed"
    summary = _run(s, p)
    assert summary["incremental"] == {"used": False, "reason": "no --previous"}
    assert Path(str(p) + STATE_SUFFIX).exists()
    return p


def _both(
    s: Setup, tmp_path: Path, prev: Path, tag: str, *extra: str, now: int = NOW
) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """The incremental run and the oracle; asserts byte identity and equal counts."""
    inc_out, full_out = tmp_path / f"inc-{tag}", tmp_path / f"full-{tag}"
    inc = _run(s, inc_out, "--previous", str(prev), *extra, now=now)
    full = _run(s, full_out, "--previous", str(prev), "--no-incremental", *extra, now=now)
    assert full["incremental"]["used"] is False
    assert inc_out.read_bytes() == full_out.read_bytes(), tag
    assert inc["output_sha256"] == full["output_sha256"]
    assert inc["serial"] == full["serial"]
    keys = ("names", "rrsets", "chain", "rrsets_signed", "rrsigs_created", "rrsigs_reused",
            "delegations", "secure_delegations", "glue_names", "occluded_names")  # fmt: skip
    assert {k: inc["counts"][k] for k in keys} == {k: full["counts"][k] for k in keys}, tag
    return inc, full


# -- mutations of generated_zone's text (owners relative to $ORIGIN example.) -----------------
def _owners(lines: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for ln in lines:
        if ln and not ln.startswith(("$", "@", " ")) and ln.split()[1] == "NS":
            seen.setdefault(ln.split()[0], None)
    return list(seen)


def _mutate(lines: list[str], rnd: random.Random, k: int) -> list[str]:
    """k random edits of the kinds a registry makes (and some odd ones)."""
    lines = list(lines)
    for _ in range(k):
        owners = [o for o in _owners(lines) if "." not in o]
        kind = rnd.choice(
            ["add_deleg", "del_deleg", "add_ds", "del_ds", "ns_target", "add_glue",
             "del_glue", "ttl", "deep_new_ent", "deep_old_ent", "occluded"]
        )  # fmt: skip
        o = rnd.choice(owners)
        mine = [i for i, ln in enumerate(lines) if ln.split()[:1] == [o]]
        if kind == "add_deleg":
            name = f"n{rnd.randrange(10**6):06d}"
            lines.insert(rnd.randrange(7, len(lines)), f"{name} NS ns.{name}.example.net.")
        elif kind == "del_deleg":
            lines = [ln for i, ln in enumerate(lines) if i not in mine]
        elif kind == "add_ds":
            lines.insert(
                mine[-1] + 1, f"{o} DS {rnd.randrange(65536)} 13 2 {rnd.randbytes(32).hex()}"
            )
        elif kind == "del_ds":
            ds = [i for i in mine if lines[i].split()[1] == "DS"]
            if ds:
                del lines[ds[0]]
        elif kind == "ns_target":
            ns = [i for i in mine if lines[i].split()[1] == "NS"]
            lines[ns[-1]] = f"{o} NS ns{rnd.randrange(99)}.changed.example.org."
        elif kind == "add_glue":
            lines.insert(mine[0], f"{o} NS ns7.{o}")
            lines.insert(mine[0], f"ns7.{o} A 203.0.113.{rnd.randrange(1, 250)}")
        elif kind == "del_glue":
            glue = [i for i, ln in enumerate(lines) if ln.split()[:1] == [f"ns1.{o}"]]
            if glue:
                nsl = [i for i in mine if lines[i] == f"{o} NS ns1.{o}"]
                lines = [ln for i, ln in enumerate(lines) if i not in glue + nsl]
        elif kind == "ttl":  # every line of the RRset gets the new TTL
            for i in mine:
                f = lines[i].split(maxsplit=1)
                if f[1].startswith("NS "):
                    lines[i] = f"{f[0]} 7200 {f[1]}"
        elif kind == "deep_new_ent":
            lines.append(f"www.e{rnd.randrange(10**6)} A 192.0.2.{rnd.randrange(1, 250)}")
        elif kind == "deep_old_ent":
            lines.append(f"mail{rnd.randrange(99)}.ent A 192.0.2.{rnd.randrange(1, 250)}")
        else:  # data below a delegation: occluded
            lines.append(f'txt.{o} TXT "occluded {rnd.randrange(99)}"')
    return lines


def test_state_written_and_mutations_match_the_full_path(tmp_path: Path) -> None:
    text = generated_zone(400) + "x.ent A 192.0.2.9\n"
    s = _setup(tmp_path, text)
    prev = _first(s, tmp_path)
    st = load_state(str(prev) + STATE_SUFFIX)
    assert st.no_duplicates and not st.include and st.apex_ok
    base = text.splitlines()
    owners = _owners(base)
    first, last = min(owners), max(owners)
    cases: list[tuple[str, list[str]]] = [
        ("del-first", [ln for ln in base if ln.split()[:1] != [first]]),
        ("del-last", [ln for ln in base if ln.split()[:1] != [last]]),
        ("add-first", [*base, "a NS ns.a.example.net."]),
        ("add-last", [*base, "zzzz NS ns.z.example.net.", "zzzz DS 1 13 2 " + "ab" * 32]),
        ("apex", [ln.replace("1800 900", "1801 901") if "SOA" in ln else ln for ln in base]
         + ["@ NS ns3.example.net."]),
    ]  # fmt: skip
    for seed in range(4):
        rnd = random.Random(seed)
        cases.append((f"random{seed}", _mutate(base, rnd, 6)))
    for tag, lines in cases:
        s.zone.write_text("\n".join(lines) + "\n")
        inc, _ = _both(s, tmp_path, prev, tag)
        assert inc["incremental"]["used"] is True, (tag, inc["incremental"])
        assert inc["incremental"]["changed_lines"] > 0 and inc["counts"]["rrsigs_created"] > 0
        _validators(tmp_path / f"inc-{tag}")
        # the state carried forward is the one a full sign writes (the newline count kept
        # from the hunks, the index, the spans)
        got = load_state(str(tmp_path / f"inc-{tag}") + STATE_SUFFIX)
        want = load_state(str(tmp_path / f"full-{tag}") + STATE_SUFFIX)
        assert got.input_newlines == s.zone.read_bytes().count(b"\n") == want.input_newlines
        for f in ("out_sha256", "input_sha256", "spans", "lengths", "namelens", "blob"):
            assert getattr(got, f) == getattr(want, f), (tag, f)
    # chained: the incremental output's own state serves the next run
    s.zone.write_text("\n".join(_mutate(base, random.Random(99), 3)) + "\n")
    inc, _ = _both(s, tmp_path, tmp_path / "inc-random0", "chained")
    assert inc["incremental"]["used"] is True, inc["incremental"]


def _reason(s: Setup, tmp_path: Path, prev: Path, tag: str, *extra: str, now: int = NOW) -> str:
    """Why the incremental path was not taken (its output is the oracle's all the same)."""
    inc, _ = _both(s, tmp_path, prev, tag, *extra, now=now)
    assert inc["incremental"]["used"] is False
    return str(inc["incremental"]["reason"])


def test_fallbacks_give_the_full_output_and_say_why(tmp_path: Path) -> None:
    text = generated_zone(200)
    s = _setup(tmp_path, text)
    prev = _first(s, tmp_path)
    lines = text.splitlines()
    # a changed line spanning lines (parentheses)
    s.zone.write_text(text + 'pp TXT ( "a"\n "b" )\n')
    assert "parentheses" in _reason(s, tmp_path, prev, "paren")
    # a changed line continuing the owner of the line before
    s.zone.write_text("\n".join([*lines[:10], "\tNS ns9.example.net.", *lines[10:]]) + "\n")
    assert "no owner" in _reason(s, tmp_path, prev, "continuation")
    # a large change
    s.zone.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    assert "large change" in _reason(s, tmp_path, prev, "large")
    # signatures expiring within the refresh interval (a later --now)
    s.zone.write_text(text)
    assert "refresh" in _reason(s, tmp_path, prev, "late", now=NOW + 10 * DAY)
    # no state
    other = tmp_path / "nostate.signed"
    other.write_bytes(prev.read_bytes())
    assert "no state" in _reason(s, tmp_path, other, "nostate")
    # the state of another file: the previous zone edited by hand
    edited = tmp_path / "edited.signed"
    edited.write_bytes(prev.read_bytes().replace(b"\t3600\tIN\tNSEC\t", b"\t3601\tIN\tNSEC\t", 1))
    for suffix in (STATE_SUFFIX, STATE_SUFFIX + ".input"):
        Path(str(edited) + suffix).write_bytes(Path(str(prev) + suffix).read_bytes())
    r = _run(s, tmp_path / "edited-out", "--previous", str(edited))
    assert "does not match its state" in r["incremental"]["reason"]


# -- NSEC3 ------------------------------------------------------------------------------------
def _nsec3_setup(tmp_path: Path, text: str, optout: bool) -> tuple[Setup, tuple[str, str]]:
    from tests.zone_testlib import write_policy

    s = _setup(tmp_path, text)
    pol = write_policy(tmp_path / "p.yaml", nsec3=True, optout=optout, salt="c0ffee")
    return s, ("--policy", str(pol))


def _owner_of(name: str, salt: str = "c0ffee") -> str:
    """The NSEC3 owner label (base32hex) of ``name`` (relative to example.)."""
    from signer.zone.model import name_from_text
    from signer.zone.nsec3 import b32hex, nsec3_hash

    wire = name_from_text(name, name_from_text("example.", None))
    return b32hex(nsec3_hash(wire, bytes.fromhex(salt), 0)).decode()


def _ends(chain: bytes) -> list[str]:
    """Names whose NSEC3 hashes sort before the first and after the last of ``chain``."""
    from signer.zone.nsec3 import b32hex_decode

    lo, hi = chain[:20], chain[-20:]
    found: dict[bool, str] = {}
    i = 0
    while len(found) < 2:
        h = b32hex_decode(_owner_of(f"w{i}"))
        if h < lo or h > hi:
            found.setdefault(h < lo, f"w{i}")
        i += 1
    return list(found.values())


def _secure_and_insecure(lines: list[str]) -> tuple[list[str], list[str]]:
    owners = [o for o in _owners(lines) if "." not in o]
    secure = {ln.split()[0] for ln in lines if " DS " in ln}
    return [o for o in owners if o in secure], [o for o in owners if o not in secure]


@pytest.mark.parametrize("optout", [False, True])
def test_nsec3_mutations_match_the_full_path(
    tmp_path: Path, optout: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = generated_zone(300) + "x.ent A 192.0.2.9\n"
    s, pol = _nsec3_setup(tmp_path, text, optout)
    prev = tmp_path / "p.signed"
    summary = _run(s, prev, *pol)
    assert summary["denial"] == "nsec3" + (" opt-out" if optout else "")
    st = load_state(str(prev) + STATE_SUFFIX)
    assert st.no_duplicates and len(st.hashes) == 20 * summary["counts"]["chain"]
    base = text.splitlines()
    secure, insecure = _secure_and_insecure(base)
    ds = "DS 1 13 2 " + "ab" * 32
    cases: list[tuple[str, list[str]]] = [
        # a delegation gets a DS: into the opt-out chain; loses its DS: out of it
        ("add-ds", [*base, f"{insecure[5]} {ds}"]),
        ("del-ds", [ln for ln in base if not ln.startswith(f"{secure[3]} DS ")]),
        ("del-secure", [ln for ln in base if ln.split()[:1] != [secure[7]]]),
        ("del-insecure", [ln for ln in base if ln.split()[:1] != [insecure[9]]]),
        ("add-secure", [*base, "zz NS ns.zz.example.net.", f"zz {ds}"]),
        ("add-insecure", [*base, "a NS ns.a.example.net."]),
        # names creating and removing empty non-terminals
        ("new-ent", [*base, "www.sub.new A 192.0.2.7", "b.ent NS ns.example.net.", f"b.ent {ds}"]),
        ("old-ent-gone", [ln for ln in base if not ln.startswith("x.ent ")]),
        ("glue", [ln.replace("198.51.100.", "203.0.113.") for ln in base]
         + [f"ns9.{insecure[2]} A 192.0.2.99", f"{insecure[2]} NS ns9.{insecure[2]}"]),
        ("apex", [ln.replace("1800 900", "1801 901") if "SOA" in ln else ln for ln in base]
         + ["@ NS ns3.example.net.", "@ TXT apex"]),
        ("random", _mutate(base, random.Random(5), 8)),
        # new first and last hashes of the chain: the predecessors wrap around
        ("wrap", [*base, *(f"{n} NS ns.example.net.\n{n} {ds}" for n in _ends(st.hashes))]),
    ]  # fmt: skip
    nsec3: dict[str, dict[str, int]] = {}
    from signer.zone import incremental

    monkeypatch.setattr(incremental, "PARALLEL_MIN", 1)  # forked processes inherit it
    two = 0
    for tag, lines in cases:
        s.zone.write_text("\n".join(lines) + "\n")
        # in two processes too (forked after the planning): the NSEC3 owners re-rendered
        # go with the share whose range of the output holds them
        par, _ = _both(s, tmp_path, prev, tag + "-j2", *pol, "--jobs", "2")
        assert par["incremental"]["used"] is True, (tag, par["incremental"])
        two += par["sign_processes"] == 2  # one when a single subtree changed
        inc, full = _both(s, tmp_path, prev, tag, *pol, "--jobs", "1")
        assert (tmp_path / f"inc-{tag}-j2").read_bytes() == (tmp_path / f"inc-{tag}").read_bytes()
        assert inc["sign_processes"] == 1, tag
        pi, ii = dict(par["incremental"]), dict(inc["incremental"])
        assert pi.pop("runs") >= ii.pop("runs") and pi == ii, tag  # runs: cut at shares
        assert inc["incremental"]["used"] is True, (tag, inc["incremental"])
        assert inc["denial"] == full["denial"]
        assert inc["counts"]["empty_non_terminals"] == full["counts"]["empty_non_terminals"], tag
        n3 = nsec3[tag] = inc["incremental"]["nsec3"]
        assert n3["rendered"] >= n3["added"] and n3["rendered"] > 0, tag
        if n3["added"] or n3["removed"]:  # a predecessor's next hash changed at least
            assert inc["counts"]["rrsigs_created"] > 0, tag

    assert two >= len(cases) - 1
    wrapped = load_state(str(tmp_path / "inc-wrap") + STATE_SUFFIX).hashes
    assert wrapped[:20] < st.hashes[:20] and wrapped[-20:] > st.hashes[-20:]
    assert len(wrapped) == len(st.hashes) + 40

    # what each change did to the chain
    assert nsec3["add-ds"]["added"] == (1 if optout else 0)
    assert nsec3["del-ds"]["removed"] == (1 if optout else 0)
    assert nsec3["del-insecure"]["removed"] == (0 if optout else 1)
    assert nsec3["new-ent"]["added"] == 4  # www.sub.new, the ENTs sub.new and new, b.ent
    assert nsec3["old-ent-gone"]["removed"] == 2  # x.ent and the ENT ent
    assert nsec3["wrap"]["added"] == 2
    _validators(tmp_path / "inc-random", optout)
    # chained: the incremental output's own state serves the next run
    s.zone.write_text("\n".join(_mutate(base, random.Random(6), 4)) + "\n")
    inc, _ = _both(s, tmp_path, tmp_path / "inc-random", "chained", *pol)
    assert inc["incremental"]["used"] is True, inc["incremental"]
    # in two processes, a bigger change
    s.zone.write_text("\n".join(_mutate(base, random.Random(7), 12)) + "\n")
    inc, _ = _both(s, tmp_path, prev, "jobs2", *pol, "--jobs", "2")
    assert inc["incremental"]["used"] is True and inc["sign_processes"] == 2, inc


def test_nsec3_collisions_give_the_full_paths_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A name of the zone equal to an NSEC3 owner: the incremental path falls back (why is
    logged) and the full path refuses the zone (ZONE-NSEC3-COLLISION); nothing written."""
    caplog.set_level(logging.INFO, logger="dnssec_ceremony.sign")
    text = generated_zone(100)
    secure, _ = _secure_and_insecure(text.splitlines())
    y = "newsecure"  # X below is the NSEC3 owner of y, an existing name in the first case
    x = _owner_of(y)
    s, pol = _nsec3_setup(tmp_path, text + f"{x} TXT here\n", optout=True)
    prev = _first_nsec3(s, tmp_path, pol)
    ds = f"DS 1 13 2 {'cd' * 32}"
    cases = [
        # an added name is the owner of an NSEC3 of the chain
        (text + f"{x} TXT here\n{_owner_of(secure[0])} A 192.0.2.1\n", "a name of the zone"),
        # an added name's NSEC3 owner is a name of the zone already
        (text + f"{x} TXT here\n{y} NS ns.example.net.\n{y} {ds}\n", "a name of the zone"),
        # both at once
        (text + f"{y} NS ns.example.net.\n{y} {ds}\n{x} A 192.0.2.1\n", "a changed name"),
    ]
    for n, (zone_text, why) in enumerate(cases):
        s.zone.write_text(zone_text)
        caplog.clear()
        r = _run(s, tmp_path / f"o{n}", *pol, "--previous", str(prev), code=1)
        assert "ZONE-NSEC3-COLLISION" in r["output"], r["output"]
        assert f"signing in full: {why} is the owner of an NSEC3 record" in caplog.text, n
        assert not (tmp_path / f"o{n}").exists()


def _first_nsec3(s: Setup, tmp_path: Path, pol: tuple[str, str]) -> Path:
    prev = tmp_path / "p.signed"
    _run(s, prev, *pol)
    return prev


def _forge_chain(prev: Path, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    """Rewrite the state's NSEC3 chain (its checksum made to match): a state that lies."""
    from dataclasses import replace

    from signer.zone.incremental import _dump_state

    path = str(prev) + STATE_SUFFIX
    st = load_state(path)
    hashes = [st.hashes[i : i + 20] for i in range(0, len(st.hashes), 20)]
    _dump_state(path, replace(st, hashes=b"".join(sorted(edit(hashes)))))


def _before(hashes: list[bytes], h: bytes) -> bytes:
    return max((x for x in hashes if x < h), default=max(hashes))


def test_nsec3_state_that_does_not_fit_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from signer.zone.nsec3 import b32hex_decode

    text = generated_zone(120)
    s, pol = _nsec3_setup(tmp_path, text, optout=True)
    base = text.splitlines()
    secure, insecure = _secure_and_insecure(base)
    target = secure[len(secure) // 2]
    h = b32hex_decode(_owner_of(target))
    # a secure delegation's NS changes: its NSEC3 is re-rendered (same next hash and bitmap)
    ns_change = "\n".join(
        ln.replace(" NS b.", " NS c.") if ln.startswith(f"{target} NS b.") else ln for ln in base
    )
    added = b32hex_decode(_owner_of(insecure[4]))
    add_ds = text + f"{insecure[4]} DS 1 13 2 {'ef' * 32}\n"
    far = bytes(20)  # a hash no test name is near
    cases: list[tuple[str, Callable[[list[bytes]], list[bytes]], str]] = [
        (ns_change, lambda hs: [], "does not hold the NSEC3 chain"),
        (ns_change, lambda hs: [x for x in hs if x != h] + [far], "lacks a hash"),
        (add_ds, lambda hs: [x for x in hs if x != h] + [added], "in the chain already"),
        # the hash before an added one left out: the re-rendered record before it would skip
        # an NSEC3 owner of the previous zone
        (add_ds, lambda hs: [x for x in hs if x != _before(hs, added)] + [far],
         "that the state's chain lacks"),
        # the hash before that left out: the one kept before the re-rendered record is not
        # the previous zone's
        (add_ds, lambda hs: [x for x in hs if x != _before(hs, _before(hs, added))] + [far],
         "that the state's chain lacks"),
        # a hash without an owner in the index right before an added one
        (add_ds, lambda hs: [x for x in hs if x != h] + [bytes([*added[:-1], added[-1] - 1])],
         "lacks an NSEC3 owner"),
    ]  # fmt: skip
    from signer.zone import incremental

    monkeypatch.setattr(incremental, "PARALLEL_MIN", 1)  # forked processes inherit it
    for n, (zone_text, edit, why) in enumerate(cases):
        s.zone.write_text(text)
        prev = _first_nsec3(s, tmp_path, pol)
        _forge_chain(prev, edit)
        s.zone.write_text(zone_text.rstrip("\n") + "\n")
        assert why in _reason(s, tmp_path, prev, f"forged{n}", *pol), n
        # the same in two processes (the refusal comes from the planning here, or from
        # the process that rendered the record)
        assert why in _reason(s, tmp_path, prev, f"forged{n}-j2", *pol, "--jobs", "2"), n
    # the previous zone edited (its state made to match): the NSEC3 record before an added
    # hash lost its opt-out flag; the one before that points elsewhere
    from dataclasses import replace
    from hashlib import sha256

    from signer.zone.incremental import _dump_state
    from signer.zone.incremental import _Names as Names
    from signer.zone.model import name_from_text
    from signer.zone.nsec3 import b32hex

    def edited(owner: bytes, old: bytes, new: bytes) -> Path:
        """The previous zone with ``old`` replaced by ``new`` in the NSEC3 line of ``owner``
        (the state's index, size and checksum made to match)."""
        s.zone.write_text(text)
        prev = _first_nsec3(s, tmp_path, pol)
        name = f"{b32hex(owner).decode()}.example."
        line = f"{name}\t3600\tIN\tNSEC3\t1 1 0 C0FFEE ".encode()
        data = prev.read_bytes()
        start = data.index(line)
        end = data.index(b"\n", start)
        assert data.count(line) == 1 and old in data[start:end]
        changed = data[start:end].replace(old, new)
        prev.write_bytes(data[:start] + changed + data[end:])
        st = load_state(str(prev) + STATE_SUFFIX)
        names = Names(st.blob, st.namelens)
        i = next(k for k in range(len(names)) if names[k] == name_from_text(name, None))
        st.lengths[i] += len(changed) - (end - start)
        digest = sha256(prev.read_bytes()).hexdigest()
        st = replace(st, out_sha256=digest, out_size=sum(st.lengths))
        _dump_state(str(prev) + STATE_SUFFIX, st)
        s.zone.write_text(add_ds)
        return prev

    st = load_state(str(_first_nsec3(s, tmp_path, pol)) + STATE_SUFFIX)
    chain = [st.hashes[i : i + 20] for i in range(0, len(st.hashes), 20)]
    one, two = _before(chain, added), _before(chain, _before(chain, added))
    prev = edited(one, b"1 1 0", b"1 0 0")
    assert "other parameters" in _reason(s, tmp_path, prev, "edited1", *pol)
    nxt = b32hex(one).upper()
    prev = edited(two, nxt, b32hex(_before(chain, two)).upper())
    assert "does not point to it" in _reason(s, tmp_path, prev, "edited2", *pol)
    # found in a forked process (the NSEC3 records signed apart from the subtrees)
    from signer.zone import incremental

    monkeypatch.setattr(incremental, "PARALLEL_MIN", 1)  # forked processes inherit it
    assert "does not point to it" in _reason(s, tmp_path, prev, "edited2j", *pol, "--jobs", "3")
    # a second NSEC3 record at the owner before an added hash
    second = b"\n" + b"\t".join(
        [
            f"{b32hex(one).decode()}.example.".encode(),
            b"3600",
            b"IN",
            b"NSEC3",
            b"1 1 0 C0FFEE " + b32hex(two).upper() + b" NS",
        ]
    )
    prev = edited(one, b" NS DS RRSIG", b" NS DS RRSIG" + second)
    assert "has not one NSEC3" in _reason(s, tmp_path, prev, "edited3", *pol)


def test_rule_error_in_changed_line_reports_the_full_paths_message(tmp_path: Path) -> None:
    text = generated_zone(200)
    s = _setup(tmp_path, text)
    prev = _first(s, tmp_path)
    lines = text.splitlines()
    owner = _owners(lines)[3]
    bad = len(lines) + 1
    s.zone.write_text(text + f"{owner} 60 IN NS ns9.example.net.\n")  # a second TTL
    r = _run(s, tmp_path / "o", "--previous", str(prev), code=2)
    assert f"{s.zone}:{bad}:" in r["output"] and "one TTL per RRset" in r["output"]
    s.zone.write_text(text + "broken A 300.1.2.3\n")
    r = _run(s, tmp_path / "o", "--previous", str(prev), code=2)
    assert f"{s.zone}:{bad}: bad IPv4 address" in r["output"]
    assert not (tmp_path / "o").exists()


def test_include_and_duplicates_fall_back(tmp_path: Path) -> None:
    # the hand-written test zone uses $INCLUDE and a SOA spanning lines
    s = _make(tmp_path)
    prev = _first(s, tmp_path)
    assert load_state(str(prev) + STATE_SUFFIX).include
    assert "$INCLUDE" in _reason(s, tmp_path, prev, "include")
    # a record written twice: removing one line must keep the record
    text = generated_zone(100)
    line = next(ln for ln in text.splitlines() if " DS " in ln)
    s.zone.write_text(text + line + "\n")
    prev = _first(s, tmp_path)
    assert not load_state(str(prev) + STATE_SUFFIX).no_duplicates
    s.zone.write_text(text)
    assert "twice" in _reason(s, tmp_path, prev, "dup")


def _signed_once(tmp_path: Path, text: str, denial: str) -> tuple[Setup, tuple[str, ...], Path]:
    """``text`` signed in full ("nsec" or "nsec3-optout"): the setup, the extra arguments
    of its policy, the signed zone."""
    if denial == "nsec":
        s, extra = _setup(tmp_path, text), ()
    else:
        s, extra = _nsec3_setup(tmp_path, text, optout=True)
    prev = tmp_path / "p.signed"
    _run(s, prev, *extra)
    return s, extra, prev


@pytest.mark.parametrize("denial", ["nsec", "nsec3-optout"])
def test_runs_in_several_processes_match_the_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, denial: str
) -> None:
    """NSEC: the planned subtrees cut into shares. NSEC3: the processes fork before the
    plan, exchange their shares' chain entries and sign their ranges of the output."""
    import time

    from signer.zone import incremental

    monkeypatch.setattr(incremental, "PARALLEL_MIN", 1)  # forked processes inherit it
    text = generated_zone(600) + "x.ent A 192.0.2.9\n"
    s, extra, prev = _signed_once(tmp_path, text, denial)
    base = text.splitlines()
    for seed, jobs in ((7, "2"), (8, "3")):
        s.zone.write_text("\n".join(_mutate(base, random.Random(seed), 12)) + "\n")
        inc, _ = _both(s, tmp_path, prev, f"jobs{jobs}", "--jobs", jobs, *extra)
        assert inc["incremental"]["used"] is True, inc["incremental"]
        assert inc["sign_processes"] == int(jobs)
        _validators(tmp_path / f"inc-jobs{jobs}")
    # a fallback in the last share, the first, the middle one (a second TTL at an owner
    # that sorts last, first, in the middle): the full path's error, with no wait for a
    # worker that waits for the others' parts (NSEC3)
    owners = sorted(o for o in _owners(base) if "." not in o)
    for owner, jobs in ((owners[-1], "2"), (owners[0], "2"), (owners[-1], "3"),
                        (owners[0], "3"), (owners[len(owners) // 2], "3")):  # fmt: skip
        lines = _mutate(base, random.Random(9), 12)
        bad = len(lines) + 1
        s.zone.write_text("\n".join([*lines, f"{owner} 60 IN NS ns9.example.net."]) + "\n")
        t = time.monotonic()
        r = _run(s, tmp_path / "o", "--previous", str(prev), "--jobs", jobs, *extra, code=2)
        assert f"{s.zone}:{bad}:" in r["output"] and "one TTL per RRset" in r["output"]
        assert "Traceback" not in r["output"]
        assert time.monotonic() - t < 4.5  # the workers stop, not after join's 5 s timeout


def test_nsec3_chain_model_matches_a_sorted_list() -> None:
    """_Chain (the previous chain from the state, less removed, plus added hashes) against
    a plain sorted list: successors and predecessors (wrapping), membership, the blob."""
    from signer.zone.incremental import _Chain, _Hashes

    rnd = random.Random(3)
    for size in (1, 2, 17, 300):
        old = sorted({rnd.randbytes(20) for _ in range(size)})
        removed = set(rnd.sample(old, min(len(old) - 1, rnd.randrange(0, 6) * size // 10)))
        added = [rnd.randbytes(20) for _ in range(rnd.randrange(0, 5))]
        chain = _Chain(_Hashes(b"".join(old)), removed, added)
        new = sorted(set(old) - removed | set(added))
        assert chain.blob() == b"".join(new) and chain.size == len(new)
        probes = new + [rnd.randbytes(20) for _ in range(20)] + [bytes(20), b"\xff" * 20]
        for h in probes:
            after = [x for x in new if x > h]
            before = [x for x in new if x < h]
            assert chain.succ(h) == (after[0] if after else new[0])
            assert chain.pred(h) == (before[-1] if before else new[-1])
            assert chain.has(h) == (h in new)


def test_verification_level_as_a_full_sign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-signed subtrees are verified at the --verify level of a full sign: with the
    default sample, every structural check and the signatures of an even share of them;
    with --verify full, every signature (and a corrupted one is refused)."""
    text = generated_zone(6000)
    s = _setup(tmp_path, text)
    prev = _first(s, tmp_path)
    lines = text.splitlines()
    changed = 0
    for i, ln in enumerate(lines):  # a new DS digest for 300 secure delegations
        if " DS " in ln and changed < 300:
            lines[i] = ln[:-8] + "00000000"
            changed += 1
    s.zone.write_text("\n".join(lines) + "\n")
    sample, _ = _both(s, tmp_path, prev, "sample", "--jobs", "1")
    full, _ = _both(s, tmp_path, prev, "full", "--verify", "full", "--jobs", "1")
    assert sample["incremental"]["used"], sample["incremental"]
    assert full["incremental"]["used"], full["incremental"]
    created = sample["counts"]["rrsigs_created"]
    assert created >= 300
    verified = sample["verification"]["rrsigs_verified"]
    assert full["verification"]["rrsigs_verified"] >= created
    assert 0 < verified < 0.7 * full["verification"]["rrsigs_verified"]  # every other batch
    assert sample["verification"]["level"] == "sample"

    from signer.zone import signing

    real = signing._sign_one

    def corrupt(sign, params, inception, owner, *rest):  # type: ignore[no-untyped-def]
        sig = real(sign, params, inception, owner, *rest)
        return sig[:-1] + bytes([sig[-1] ^ 1]) if owner.startswith(b"\x06zzz999") else sig

    monkeypatch.setattr(signing, "_sign_one", corrupt)
    lines += ["zzz999 NS ns9.example.net.", "zzz999 DS 1 13 2 " + "ab" * 32]
    s.zone.write_text("\n".join(lines) + "\n")
    out = tmp_path / "bad"
    r = _run(s, out, "--previous", str(prev), "--verify", "full", code=1)
    assert "ZONE-VERIFY-SIGNATURE" in r["output"] and "zzz999.example." in r["output"]
    assert not out.exists()


def test_write_all_writes_every_piece_in_order_through_partial_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output's pieces go out many per writev; a short write (a signal, a full disk
    queue) resumes inside the piece it stopped in. os.writev is made to write at most 7
    octets per call: a fault a regular file does not show on demand."""
    import os
    import random

    from signer.zone import incremental as inc

    rng = random.Random(7)
    pieces: list[bytes | memoryview] = []
    for i in range(3000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        pieces.append(memoryview(data) if i % 3 else data)
    real = os.writev

    def short(fd: int, bufs: list[memoryview]) -> int:
        return real(fd, [bytes(b)[:7] for b in bufs[:1]])

    synced: list[int] = []
    real_sync = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        real_sync(fd)

    monkeypatch.setattr(inc, "_IOV_BATCH", 100)
    monkeypatch.setattr(inc, "_FLUSH_EVERY", 1000)  # flushed to disk meanwhile, in a thread
    monkeypatch.setattr(inc.os, "fdatasync", fdatasync)
    for writev in (real, short):
        monkeypatch.setattr(inc.os, "writev", writev)
        out = tmp_path / f"out-{writev.__name__}"
        with open(out, "wb") as fh:
            fh.write(b"head:")  # buffered before: flushed first
            inc._write_all(fh, pieces)
        assert out.read_bytes() == b"head:" + b"".join(bytes(p) for p in pieces)
    assert synced  # the early flushes ran


def test_diff_hunks_rebuild_the_new_input_from_the_old(tmp_path: Path) -> None:
    """diff's hunks, applied to the old input, give the new one, on random line edits of
    a zone-like text, for bytes and for mapped files (blocks are compared through
    ``find`` with a memoryview; a wrong common length would misplace a hunk). Edits near
    the start, the end and 4 KiB block edges are included."""
    import mmap

    from signer.zone import incremental as inc

    rnd = random.Random(11)
    base = [f"d{i:05d} NS ns{i % 7}.example.net.\n".encode() for i in range(3000)]
    for trial in range(40):
        new = list(base)
        for _ in range(rnd.randrange(1, 12)):
            at = rnd.choice([0, len(new) - 1, 147, 148, rnd.randrange(len(new))])
            kind = rnd.randrange(3)
            if kind == 0:
                new.insert(at, f"x{rnd.randrange(10**6)} A 192.0.2.1\n".encode())
            elif kind == 1 and len(new) > 1:
                del new[at]
            else:
                new[at] = new[at].replace(b"NS", b"NS  ")
        a, b = b"".join(base), b"".join(new)
        for wrap in ("bytes", "mmap"):
            if wrap == "mmap":
                pa, pb = tmp_path / f"a{trial}", tmp_path / f"b{trial}"
                pa.write_bytes(a)
                pb.write_bytes(b)
                with open(pa, "rb") as fa, open(pb, "rb") as fb:
                    ma = mmap.mmap(fa.fileno(), 0, access=mmap.ACCESS_READ)
                    mb = mmap.mmap(fb.fileno(), 0, access=mmap.ACCESS_READ)
                    hunks = inc.diff(ma, mb, 10**6)
                    ma.close()  # no view left open (it would raise BufferError)
                    mb.close()
            else:
                hunks = inc.diff(a, b, 10**6)
            assert hunks or a == b
            rebuilt, pos = [], 0
            for h in hunks:
                rebuilt += [a[pos : h.a0], b[h.b0 : h.b1]]
                pos = h.a1
            rebuilt.append(a[pos:])
            assert b"".join(rebuilt) == b, (trial, wrap)
    assert inc._common(b"abc", 0, b"abd", 0) == 2 and inc._common(b"ab", 1, b"xb", 1) == 1


def test_damaged_state_files_are_refused(tmp_path: Path) -> None:
    """load_state reads the body straight into its parts; every damage is a Fallback
    (the full path runs), none an exception or a huge allocation."""
    from signer.zone.incremental import MAGIC, Fallback

    s = _setup(tmp_path, generated_zone(60))
    prev = _first(s, tmp_path)
    path = Path(str(prev) + STATE_SUFFIX)
    good = path.read_bytes()
    st = load_state(str(path))
    assert len(st.lengths) == st.counts["names"] and st.input_newlines > 0
    eol = good.index(b"\n", len(MAGIC))
    head = good[len(MAGIC) : eol]
    cases = {
        "truncated": good[:-1],
        "appended": good + b"\0",
        "flipped": good[:-5] + bytes([good[-5] ^ 1]) + good[-4:],
        "magic": b"x" + good[1:],
        "no header end": good[: len(MAGIC)] + head,
        "huge n": good.replace(b'"n": ', b'"n": 99999999999999', 1),
        "negative n": good.replace(b'"n": ', b'"n": -', 1),
        "format": good.replace(b'"format": 3', b'"format": 2', 1),
        "not json": good[: len(MAGIC)] + b"[" + good[len(MAGIC) + 1 :],
    }
    for what, data in cases.items():
        assert data != good, what
        path.write_bytes(data)
        with pytest.raises(Fallback, match=r"unusable"):
            load_state(str(path))
    # deferred (as a re-sign loads it): the body's checks are the caller's to run, later
    for what in ("flipped", "truncated"):
        path.write_bytes(cases[what])
        checks: list[Callable[[], None]] = []
        try:
            load_state(str(path), checks)
        except Fallback as exc:
            assert "unusable" in str(exc) and what == "truncated", what  # sizes: checked here
            continue
        assert what == "flipped" and len(checks) == 1, what
        with pytest.raises(Fallback, match=r"unusable"):
            checks[0]()
    path.write_bytes(good)
    assert load_state(str(path)) == st
    # a re-sign from a state whose body is damaged runs the full path and says why
    path.write_bytes(cases["flipped"])
    s.zone.write_text(s.zone.read_text() + "late NS ns.late.example.net.\n")
    assert "unusable" in _reason(s, tmp_path, prev, "damaged")


def test_multi_line_entries_keep_their_places_in_the_next_state(tmp_path: Path) -> None:
    """Entries spanning lines (parentheses) are kept in the state by their byte ranges; an
    incremental run shifts them by the changes before them (lines added and removed
    around them) exactly as a full sign finds them, and the next run still sees them."""
    lines = generated_zone(300).splitlines()
    owners = _owners(lines)
    with_txt: list[str] = []
    for i, ln in enumerate(lines):
        with_txt.append(ln)
        if i > 6 and i % 97 == 0:
            with_txt += [f'txt{i} TXT ( "part one {i}"', f'  "part two {i}" )']
    s = _setup(tmp_path, "\n".join(with_txt) + "\n")
    prev = _first(s, tmp_path)
    assert len(load_state(str(prev) + STATE_SUFFIX).spans) >= 5
    rnd = random.Random(21)
    edited = list(with_txt)
    for o in rnd.sample(owners, 12):  # delegations removed and added before and after them
        edited = [ln for ln in edited if ln.split()[:1] != [o]]
    edited[10:10] = [f"new{k} NS ns.new{k}.example.net." for k in range(7)]
    edited += ["zzlast NS ns.zz.example.net."]
    s.zone.write_text("\n".join(edited) + "\n")
    inc, _ = _both(s, tmp_path, prev, "spans")
    assert inc["incremental"]["used"] is True, inc["incremental"]
    got = load_state(str(tmp_path / "inc-spans") + STATE_SUFFIX).spans
    want = load_state(str(tmp_path / "full-spans") + STATE_SUFFIX).spans
    assert got == want and len(got) >= 5
    # and the next run from the incremental output uses them (a change right after one)
    nxt = list(edited)
    at = next(i for i, ln in enumerate(nxt) if ln.startswith('  "part two'))
    nxt.insert(at + 1, "after1 NS ns.after.example.net.")
    s.zone.write_text("\n".join(nxt) + "\n")
    inc2, _ = _both(s, tmp_path, tmp_path / "inc-spans", "spans2")
    assert inc2["incremental"]["used"] is True, inc2["incremental"]


def test_a_failed_input_copy_costs_the_state_not_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The input's copy for the next state is made by a thread while the zone is signed;
    when it fails (here: no space for it) the signed zone is still written, the state is
    not, and the next --previous run says why it signs in full. Full and incremental paths
    alike."""
    import errno
    import tempfile

    s = _setup(tmp_path, generated_zone(300))
    prev = _first(s, tmp_path)
    real = tempfile.mkstemp

    def no_space(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("prefix") == ".zsstate-":  # the input copy
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    s.zone.write_text(s.zone.read_text().replace("d000007 NS b.", "d000007 NS c."))
    with caplog.at_level(logging.WARNING):
        inc = _run(s, tmp_path / "inc.signed", "--previous", str(prev), now=NOW + 3600)
        full = _run(s, tmp_path / "full.signed", now=NOW + 3600)
    assert inc["incremental"]["used"] is True
    assert full["incremental"]["used"] is False
    for out in ("inc.signed", "full.signed"):
        assert (tmp_path / out).read_bytes()  # written
        assert not (tmp_path / (out + STATE_SUFFIX)).exists()
    assert "No space left on device" in caplog.text
    assert not list(tmp_path.glob(".zsstate-*"))  # no temporary copy left behind
    monkeypatch.undo()
    again = _run(s, tmp_path / "again.signed", "--previous", str(tmp_path / "inc.signed"))
    assert again["incremental"]["used"] is False and "no state" in again["incremental"]["reason"]


@pytest.mark.parametrize("denial", ["nsec", "nsec3-optout"])
def test_a_re_sign_leaves_no_reference_cycle_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, denial: str
) -> None:
    """The plan and its elements are freed when the re-sign returns, not by the garbage
    collector (compiled code keeps a function's nested functions in a closure object they
    refer to: a cycle; at 1M delegations a collection of it took ~0.09 s before the
    command could exit)."""
    import gc

    from signer.zone import incremental

    monkeypatch.setattr(incremental, "PARALLEL_MIN", 1)
    text = generated_zone(300)
    s, extra, prev = _signed_once(tmp_path, text, denial)
    s.zone.write_text("\n".join(_mutate(text.splitlines(), random.Random(3), 8)) + "\n")
    gc.collect()
    gc.disable()
    try:
        r = _run(s, tmp_path / "inc.signed", "--previous", str(prev), "--jobs", "2", *extra)
        assert r["incremental"]["used"] is True and r["sign_processes"] == 2
        left = [o for o in gc.get_objects() if type(o).__name__ in ("_Plan", "_Element")]
    finally:
        gc.enable()
    assert not left, f"{len(left)} plan objects wait for the garbage collector"


def test_remove_state_frees_the_files_in_the_closers_thread(tmp_path: Path) -> None:
    """The state files are gone at once; their descriptors (what frees the blocks) are
    closed in the given thread, none left open."""
    from concurrent.futures import ThreadPoolExecutor

    from signer.zone.incremental import input_path, remove_state, state_path

    out = str(tmp_path / "z.signed")
    fds = len(os.listdir("/proc/self/fd"))
    for closer in (None, ThreadPoolExecutor(1)):
        Path(state_path(out)).write_bytes(b"s" * 4096)
        Path(input_path(out)).write_bytes(b"i" * 4096)
        remove_state(out, closer)
        assert not Path(state_path(out)).exists() and not Path(input_path(out)).exists()
        if closer is not None:
            closer.shutdown(wait=True)
        assert len(os.listdir("/proc/self/fd")) == fds
    remove_state(out, None)  # nothing there: no error
