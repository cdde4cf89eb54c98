"""``zonesigner sign`` end to end with software keys: validators, byte-identical output for any
--jobs, refusals (bundle, ZSK), atomic output, --previous reuse, JSON summary."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.name
import pytest
from click.testing import CliRunner

from signer.algorithms import Algorithm
from signer.bundles.model import Bundle, BundleSet
from signer.bundles.textformat import dump_response
from signer.cli.main import cli
from signer.dnskey import make_ds
from signer.keys.soft import SoftKey
from signer.rrsig import sign_rrset, time_text
from tests.manifestkit import distinct_tag_keys

DATA = Path(__file__).parent / "data" / "zones"
DAY = 86400
NOW = int(time.time()) // DAY * DAY  # today 00:00 UTC: dnssec-verify has no "as of" option


@dataclass
class Setup:
    dir: Path
    zone: Path
    bundles: Path
    zsk: Path
    ta: Path
    other_zsk: Path


def _make(tmp_path: Path, *, start: int = NOW - DAY, length: int = 20 * DAY) -> Setup:
    z = dns.name.from_text("example.")
    ksk, zsk, other = distinct_tag_keys(True, False, False)
    keys = (ksk.dnskey, zsk.dnskey)
    unsigned = Bundle("b1", start, start + length, 3600, keys)
    sig = sign_rrset(unsigned.dnskey_rrset(z), ksk, z, unsigned.inception, unsigned.expiration)
    bs = BundleSet(z, (Bundle("b1", start, start + length, 3600, keys, (sig,)),), "response")
    (tmp_path / "skr").write_text(dump_response(bs))
    (tmp_path / "zsk.pem").write_bytes(zsk.to_pem())
    (tmp_path / "other.pem").write_bytes(other.to_pem())
    (tmp_path / "ta.ds").write_text(make_ds(z, ksk.dnskey, 2).to_text(z) + "\n")
    shutil.copy(DATA / "example.zone", tmp_path / "example.zone")
    shutil.copy(DATA / "included.zone", tmp_path / "included.zone")
    return Setup(
        tmp_path,
        tmp_path / "example.zone",
        tmp_path / "skr",
        tmp_path / "zsk.pem",
        tmp_path / "ta.ds",
        tmp_path / "other.pem",
    )


def _sign(s: Setup, out: Path, *extra: str, zsk: Path | None = None, now: int = NOW):  # type: ignore[no-untyped-def]
    args = [
        "sign",
        str(s.zone),
        "--origin",
        "example.",
        "--bundles",
        str(s.bundles),
        "--zsk",
        str(zsk or s.zsk),
        "--out",
        str(out),
        "--now",
        str(now),
        "--trust-anchor",
        str(s.ta),
        *extra,
    ]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _validators(path: Path, optout: bool = False) -> None:
    r = subprocess.run(
        ["dnssec-verify", "-q", "-x", "-o", "example.", str(path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        ["ldns-verify-zone", "-t", time_text(NOW), str(path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(
        ["kzonecheck", "-o", "example.", "--dnssec", "on", "-t", str(NOW), str(path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_sign_nsec_validates_and_is_identical_for_any_jobs(tmp_path: Path) -> None:
    s = _make(tmp_path)
    r1 = _sign(
        s, tmp_path / "one.signed", "--jobs", "1", "--summary-json", str(tmp_path / "s.json")
    )
    assert r1.exit_code == 0, r1.output
    js2 = tmp_path / "s2.json"
    r2 = _sign(
        s, tmp_path / "two.signed", "--jobs", "2", "--verify", "full", "--summary-json", str(js2)
    )
    assert r2.exit_code == 0, r2.output
    assert json.loads(js2.read_text())["sign_processes"] == 2
    one = (tmp_path / "one.signed").read_bytes()
    assert one == (tmp_path / "two.signed").read_bytes()
    summary = json.loads((tmp_path / "s.json").read_text())
    import hashlib

    assert summary["output_sha256"] == hashlib.sha256(one).hexdigest()
    assert summary["counts"]["rrsigs_created"] == summary["counts"]["rrsets_signed"] > 20
    assert summary["bundle"]["id"] == "b1"
    assert summary["min_expiration"] <= summary["max_expiration"] <= time_text(NOW + 14 * DAY)
    _validators(tmp_path / "one.signed")


@pytest.mark.parametrize("optout", [False, True])
def test_sign_nsec3_validates(tmp_path: Path, optout: bool) -> None:
    from signer.bundles.textformat import load_response
    from signer.cli.signjob import KeyOpener, SignJob, run_sign
    from signer.zone.verify import trust_anchor_from_file

    s = _make(tmp_path)
    out = tmp_path / "z.signed"
    job = SignJob(
        zonefile=str(s.zone),
        origin="example.",
        response=load_response(s.bundles),
        opener=KeyOpener(str(s.zsk), None),
        out=str(out),
        now=NOW,
        jobs=2,
        denial="nsec3",
        nsec3_optout=optout,
        nsec3_salt=b"\xab",
        nsec3_iterations=1,
        verify_level="full",
        trust_anchor=trust_anchor_from_file(s.ta),
    )
    summary = run_sign(job)
    assert summary["counts"]["empty_non_terminals"] == (
        5 if optout else 6
    )  # deep, c.deep, b.c.deep, wild, _tcp (+ ent)
    body = out.read_text()
    assert "NSEC3PARAM\t1 0 1 AB" in body.upper() and f"\tNSEC3\t1 {int(optout)} 1 AB" in body
    _validators(out)


def test_refusals_leave_previous_output_untouched(tmp_path: Path) -> None:
    s = _make(tmp_path)
    out = tmp_path / "z.signed"
    out.write_text("previous signed zone\n")
    # ZSK not in the bundle's DNSKEY RRset
    r = _sign(s, out, zsk=s.other_zsk)
    assert r.exit_code == 1 and "SIGNER-ZSK-IN-BUNDLE" in r.output
    # no bundle valid at now (bundles ran out)
    r = _sign(s, out, now=NOW + 30 * DAY)
    assert r.exit_code == 1 and "SIGNER-BUNDLE-NONE" in r.output and "ceremony" in r.output
    # bundle expiring within the margin (2 days by default)
    r = _sign(s, out, now=NOW + 18 * DAY + 3600)
    assert r.exit_code == 1 and "SIGNER-BUNDLE-MARGIN" in r.output
    # bad zone: file:line
    s.zone.write_text(s.zone.read_text() + "bad IN A 999.1.1.1\n")
    r = _sign(s, out)
    assert r.exit_code == 2 and f"{s.zone}:" in r.output and "IPv4" in r.output
    assert out.read_text() == "previous signed zone\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".z.signed")) == []


def test_previous_reuses_unchanged_signatures(tmp_path: Path) -> None:
    s = _make(tmp_path)
    first = tmp_path / "first.signed"
    assert _sign(s, first, "--jobs", "1").exit_code == 0
    s.zone.write_text(s.zone.read_text().replace("192.0.2.25", "192.0.2.26"))
    js = tmp_path / "s.json"
    r = _sign(
        s,
        tmp_path / "second.signed",
        "--previous",
        str(first),
        "--summary-json",
        str(js),
        now=NOW + 3600,
    )
    assert r.exit_code == 0, r.output
    c = json.loads(js.read_text())["counts"]
    # mail A changed; the SOA (serial kept, same data) and NSECs unchanged: most reused
    assert c["rrsigs_created"] >= 1
    assert c["rrsigs_reused"] >= c["rrsets_signed"] - 3
    _validators(tmp_path / "second.signed")


def test_pkcs11_zsk_with_two_workers_validates(tmp_path: Path, lab) -> None:  # type: ignore[no-untyped-def]
    """The ZSK on the lab's "zsk" token: parent and each forked worker open their own session
    and login (--pin-file); the output validates and equals the --jobs 1 output."""
    from signer.keys.pkcs11 import Pkcs11Token
    from signer.pin import PinSource

    z = dns.name.from_text("example.")
    with Pkcs11Token(lab.uri("zsk"), PinSource(pin_file=str(lab.pin_file("zsk"))), rw=True) as tok:
        zsk_dnskey = tok.generate("zone-zsk", Algorithm.ECDSAP256SHA256).dnskey
    ksk = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True)
    keys = (ksk.dnskey, zsk_dnskey)
    start, length = NOW - DAY, 20 * DAY
    unsigned = Bundle("b1", start, start + length, 3600, keys)
    sig = sign_rrset(unsigned.dnskey_rrset(z), ksk, z, start, start + length)
    bs = BundleSet(z, (Bundle("b1", start, start + length, 3600, keys, (sig,)),), "response")
    (tmp_path / "skr").write_text(dump_response(bs))
    (tmp_path / "ta.ds").write_text(make_ds(z, ksk.dnskey, 2).to_text(z) + "\n")
    shutil.copy(DATA / "example.zone", tmp_path / "example.zone")
    shutil.copy(DATA / "included.zone", tmp_path / "included.zone")
    s = Setup(tmp_path, tmp_path / "example.zone", tmp_path / "skr", tmp_path, tmp_path / "ta.ds",
              tmp_path)  # fmt: skip
    uri = lab.uri("zsk", "zone-zsk")
    pin = ("--pin-file", str(lab.pin_file("zsk")))
    two = tmp_path / "two.signed"
    js = tmp_path / "s.json"
    r = _sign(s, two, "--jobs", "2", "--verify", "full", "--summary-json", str(js), *pin, zsk=uri)  # type: ignore[arg-type]
    assert r.exit_code == 0, r.output
    assert json.loads(js.read_text())["sign_processes"] == 2  # forked workers, own sessions
    assert lab.pin("zsk") not in r.output
    one = tmp_path / "one.signed"
    r = _sign(s, one, "--jobs", "1", *pin, zsk=uri)  # type: ignore[arg-type]
    assert r.exit_code == 0, r.output

    def unsigned(path: Path) -> list[str]:  # SoftHSM's ECDSA is randomised: drop signatures
        return [ln.rsplit(" ", 1)[0] if "\tRRSIG\t" in ln else ln for ln in path.open()]

    assert unsigned(one) == unsigned(two) and one.read_bytes() != two.read_bytes()
    assert sum("\tRRSIG\t" in ln for ln in unsigned(two)) > 20
    _validators(two)
