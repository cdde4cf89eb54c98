"""The SoftHSM2 lab as the key layer sees it, and `make demo` end to end."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import dns.zone
import hsmlab
import pytest
from conftest import REPO, require_tool

from ceremony import audit
from signer.dnskey import DnsKey, DsRecord, make_ds
from signer.keys.pkcs11 import Pkcs11Token
from signer.pgpwords import from_pgp_words


def test_lab_tokens_are_distinct_and_reachable(lab: hsmlab.Lab) -> None:
    serials = set()
    for label in hsmlab.DEFAULT_TOKENS:
        assert stat.S_IMODE(lab.pin_file(label).stat().st_mode) == 0o600
        with Pkcs11Token(lab.uri(label), login=False) as tok:
            assert tok.identity.label == label
            assert tok.identity.serial == lab.tokens[label]
            serials.add(tok.identity.serial)
    assert len(serials) == 3


@pytest.mark.slow
def test_make_demo_end_to_end(tmp_path: Path) -> None:
    """hsm-sim/demo.py twice into the same directory: lab -> KSK ceremony -> KSR -> signing
    ceremony -> SKR -> signed zone -> validators -> audit; checked here independently."""
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF",)}
    out = tmp_path / "demo-out"
    for _ in range(2):  # the second run re-creates the directory and the lab
        p = subprocess.run(
            [sys.executable, str(REPO / "hsm-sim" / "demo.py"), str(out)],
            capture_output=True, text=True, env=env, check=False, timeout=150,
        )  # fmt: skip
        assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    text = p.stdout
    assert "Traceback" not in p.stderr
    dnskeys = [ln for ln in text.splitlines() if " IN DNSKEY " in ln]
    assert len(dnskeys) == 2
    ksk = DnsKey.from_text(dnskeys[0].split("DNSKEY", 1)[1])
    zsk = DnsKey.from_text(dnskeys[1].split("DNSKEY", 1)[1])
    assert ksk.flags == 257 and zsk.flags == 256 and int(ksk.algorithm) == 13
    ds_line = next(ln for ln in text.splitlines() if re.match(r"example\. IN DS \d+ 13 2 ", ln))
    ds = DsRecord.from_text(ds_line.split(" DS ", 1)[1])
    assert ds == make_ds("example.", ksk)
    assert f"KSK key tag {ksk.key_tag}" in text
    words = text.split("DS SHA-256 digest in PGP words:\n", 1)[1].splitlines()[0].strip()
    assert from_pgp_words(words) == ds.digest
    # An independent tool computes the same DS from the printed DNSKEY.
    dsfromkey = require_tool("dnssec-dsfromkey")
    keyfile = tmp_path / "dnskey.db"
    keyfile.write_text(dnskeys[0] + "\n")
    bind = subprocess.run(
        [dsfromkey, "-2", "-f", str(keyfile), "example."],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert bind.stdout.split()[-1].upper() == ds.digest.hex().upper()

    # The summary: DS, bundles, the signed zone and its SHA-256, both audits and reports.
    summary = text.split("== demo done in", 1)[1]
    assert (out / "SUMMARY.txt").read_text() == summary.split("\n", 1)[1]
    assert ds_line.strip() in summary and words in summary
    assert re.search(r"Key bundles: 9 bundles, \S+Z \.\. \S+Z", summary)
    signed = out / "signer" / "example.zone.signed"
    assert f"SHA-256 {hashlib.sha256(signed.read_bytes()).hexdigest()}" in summary
    # The signed zone validates with BIND, from the ceremony's KSK (DS) and the ZSK.
    verify = require_tool("dnssec-verify")
    v = subprocess.run(
        [verify, "-o", "example.", str(signed)], capture_output=True, text=True, check=False
    )
    assert v.returncode == 0 and "Zone fully signed" in v.stdout + v.stderr, v.stderr
    zone = dns.zone.from_file(str(signed), origin="example.", relativize=False)
    apex = zone.get_rdataset("example.", "DNSKEY")
    assert apex is not None
    keys = [DnsKey.from_rdata(r) for r in apex]
    assert any(k.same_key(ksk) for k in keys) and any(k.same_key(zsk) for k in keys)
    # Both ceremonies pass the audit, with the seal printed for the witnesses.
    for name, responses in (("ksk-generation", 0), ("quarterly-signing", 1)):
        result = audit.verify_ceremony_dir(out / "ceremonies" / name)
        assert len(result.responses) == responses
        # quarterly-signing.yaml verifies the KSK made in the other ceremony (print-ds of its
        # DNSKEY on the stick) before sign-request uses it: no warning in either audit.
        assert result.warnings == ()
        assert f"Ceremony {result.ceremony_id}: audit passed\n  seal {result.seal_words}" in summary
        report = out / "reports" / f"{name}.html"
        assert f"report {report}" in summary or f"report {report.name}" in summary
        assert "Audit verified" in report.read_text()
    assert result.responses[0].bundles == 9 and result.responses[0].ksk_tags == (ksk.key_tag,)
    # The lab's PINs are never printed.
    for pin_file in (out / "lab" / "pins").glob("*.pin"):
        assert pin_file.read_text().strip() not in text + p.stderr


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    p = subprocess.run(
        [sys.executable, str(REPO / "hsm-sim" / "demo.py"), str(mine)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2 and "was not made by the demo" in p.stderr
    assert (mine / "notes.txt").read_text() == "keep me"
