"""The SoftHSM2 lab as the key layer sees it, and `make demo` end to end."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import hsmlab
from conftest import REPO, require_tool

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


def test_make_demo_end_to_end(tmp_path: Path) -> None:
    """hsm-sim/demo.py from a clean directory: KSK+ZSK, DNSKEYs, DS, PGP words; BIND agrees."""
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF",)}
    out = tmp_path / "demo-out"
    for _ in range(2):  # the second run re-creates the lab
        p = subprocess.run(
            [sys.executable, str(REPO / "hsm-sim" / "demo.py"), str(out)],
            capture_output=True, text=True, env=env, check=False, timeout=120,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
    text = p.stdout
    dnskeys = [ln for ln in text.splitlines() if " IN DNSKEY " in ln]
    assert len(dnskeys) == 2
    ksk = DnsKey.from_text(dnskeys[0].split("DNSKEY", 1)[1])
    zsk = DnsKey.from_text(dnskeys[1].split("DNSKEY", 1)[1])
    assert ksk.flags == 257 and zsk.flags == 256 and int(ksk.algorithm) == 13
    ds_line = next(ln for ln in text.splitlines() if re.match(r"example\. IN DS \d+ 13 2 ", ln))
    ds = DsRecord.from_text(ds_line.split(" DS ", 1)[1])
    assert ds == make_ds("example.", ksk)
    assert f"KSK key tag {ksk.key_tag}" in text
    words = text.split("DS SHA-256 digest in PGP words:\n", 1)[1].splitlines()[0]
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
    # The lab's PINs are never printed.
    for pin_file in (out / "lab" / "pins").glob("*.pin"):
        assert pin_file.read_text().strip() not in text + p.stderr
