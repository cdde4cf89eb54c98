"""Helpers for the zone-signer tests: sample zones, BIND keys, signing, the outside validators.

Used by test_zone_verify.py, test_zone_validators.py and test_zone_resolver_e2e.py.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from signer.dnskey import DsRecord, make_ds
from signer.keys.soft import SoftKey, load_bind_private

ORIGIN = "example.test."

# Wildcards, empty non-terminals, deep names, upper case, escapes, delegations with and
# without DS, glue (in and below the delegation), a CNAME, MX, TXT with escapes, a DNAME.
HAND_ZONE = r"""$ORIGIN example.test.
$TTL 3600
@           IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )
            NS  ns1
            NS  ns2.example.net.
            MX  10 Mail
ns1         A   192.0.2.1
            AAAA 2001:db8::1
Mail        A   192.0.2.25
www         A   192.0.2.2
            TXT "hello \"world\"" "semi\;colon"
*.wild      TXT "wildcard"
a.b.c.ent   A   192.0.2.3
x.y.z.deep.deeper.deepest A 192.0.2.4
UPPER.Case  A   192.0.2.5
dot\.in\.label A 192.0.2.6
\065bc\032def  TXT "escaped owner"
alias       CNAME www
redir       DNAME example.net.
sub         NS  ns.sub
            NS  ns.example.net.
ns.sub      A   192.0.2.7
sec         NS  ns.sec
sec         DS  12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.sec      A   192.0.2.8
ent.ins.deleg NS ns.example.net.
"""


def generated_zone(n: int, seed: int = 1) -> str:
    """A small registry-like zone: n delegations, 2 NS each, ~30 % with DS, some glue."""
    rnd = random.Random(seed)
    out = [
        f"$ORIGIN {ORIGIN}",
        "$TTL 86400",
        "@ SOA ns1 hostmaster 1 1800 900 604800 3600",
        "@ NS ns1",
        "@ NS ns2",
        "ns1 A 192.0.2.53",
        "ns2 A 192.0.2.54",
    ]
    for i in range(n):
        d = f"d{i:06d}"
        if rnd.random() < 0.1:
            out.append(f"{d} NS ns1.{d}")
            out.append(f"ns1.{d} A 198.51.100.{i % 250 + 1}")
        else:
            out.append(f"{d} NS a.ns{i % 7}.example.net.")
        out.append(f"{d} NS b.ns{i % 5}.example.org.")
        if rnd.random() < 0.3:
            out.append(f"{d} DS {rnd.randrange(65536)} 13 2 {rnd.randbytes(32).hex()}")
    return "\n".join(out) + "\n"


def require(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        pytest.fail(f"{name} missing: `make test` installs it from Debian")
    return path


def run(
    cmd: list[str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@dataclass(frozen=True)
class BindKeys:
    directory: Path
    ksk: Path  # K*.key
    zsk: Path
    algorithm: str = "ECDSAP256SHA256"
    bits: int = 256

    def ksk_soft(self) -> SoftKey:
        return load_bind_private(self.ksk)

    def zsk_soft(self) -> SoftKey:
        return load_bind_private(self.zsk)

    def ds(self, origin: str = ORIGIN) -> list[DsRecord]:
        return [make_ds(origin, self.ksk_soft().dnskey)]

    def ds_file(self, origin: str = ORIGIN) -> Path:
        p = self.directory / "trust-anchor.ds"
        p.write_text("".join(d.to_text(origin) + "\n" for d in self.ds(origin)))
        return p


def bind_keys(
    directory: Path, origin: str = ORIGIN, algorithm: str = "ECDSAP256SHA256", bits: int = 256
) -> BindKeys:
    directory.mkdir(parents=True, exist_ok=True)
    keygen = require("dnssec-keygen")
    size = ["-b", str(bits)] if algorithm.startswith("RSA") else []
    base = [keygen, "-q", "-K", str(directory), "-a", algorithm, *size]
    ksk = run([*base, "-f", "KSK", origin]).stdout.strip()
    zsk = run([*base, origin]).stdout.strip()
    return BindKeys(directory, directory / f"{ksk}.key", directory / f"{zsk}.key", algorithm, bits)


def bind_sign(
    zone_file: Path,
    keys: BindKeys,
    out: Path,
    *,
    origin: str = ORIGIN,
    nsec3: bool = False,
    optout: bool = False,
    extra: tuple[str, ...] = (),
) -> Path:
    """Sign with BIND dnssec-signzone (one RR per line) -- the reference the harness trusts."""
    cmd = [require("dnssec-signzone"), "-q", "-S", "-K", str(keys.directory), "-o", origin]
    cmd += ["-O", "full", "-f", str(out), *extra]
    if nsec3:
        cmd += ["-3", "-"]
        if optout:
            cmd += ["-A"]
    cmd.append(str(zone_file))
    run(cmd, cwd=keys.directory)
    return out


# -- outside validators ---------------------------------------------------------------------
def dnssec_verify(path: Path, origin: str = ORIGIN, *, ksk_only: bool = True) -> None:
    cmd = [require("dnssec-verify"), "-q", "-o", origin]
    if ksk_only:
        cmd.append("-x")
    run([*cmd, str(path)])


def ldns_verify(path: Path) -> None:
    run([require("ldns-verify-zone"), "-V", "1", str(path)])


def kzonecheck(path: Path, origin: str = ORIGIN) -> None:
    run([require("kzonecheck"), "--dnssec", "on", "-o", origin, str(path)])


def all_validators(path: Path, origin: str = ORIGIN) -> None:
    dnssec_verify(path, origin, ksk_only=True)
    dnssec_verify(path, origin, ksk_only=False)
    ldns_verify(path)
    kzonecheck(path, origin)


# -- editing signed zone text ---------------------------------------------------------------
def lines_matching(text: str, pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [ln for ln in text.splitlines() if rx.search(ln)]


def drop_lines(text: str, pattern: str, count: int = 1) -> str:
    rx = re.compile(pattern)
    out = []
    dropped = 0
    for ln in text.splitlines():
        if dropped < count and rx.search(ln):
            dropped += 1
            continue
        out.append(ln)
    assert dropped == count, f"pattern {pattern!r} matched {dropped} lines, wanted {count}"
    return "\n".join(out) + "\n"


def sub_line(text: str, pattern: str, old: str, new: str) -> str:
    rx = re.compile(pattern)
    out = []
    done = False
    for ln in text.splitlines():
        if not done and rx.search(ln):
            assert old in ln, f"{old!r} not in {ln!r}"
            ln = ln.replace(old, new, 1)
            done = True
        out.append(ln)
    assert done, f"pattern {pattern!r} matched nothing"
    return "\n".join(out) + "\n"


# -- our signer -----------------------------------------------------------------------------
POLICY = """zone: {origin}
signer:
  algorithm: {algorithm}
  bits: {bits}
  signature_validity: P14D
  refresh: P5D
  jitter: PT12H
  inception_offset: PT1H
  nsec: {nsec}
  nsec3: {{salt: "{salt}", iterations: {iterations}, opt_out: {optout}}}
  serial: keep
  bundle_margin: P2D
  bundle_warning: P14D
ksk:
  algorithms: [{algorithm}]
  bits: [{bits}]
  dnskey_ttl: PT1H
  signature_validity: {{min: P21D, max: P21D}}
  bundle_spacing: P10D
  bundle_interval: {{min: P9D, max: P11D}}
  bundle_count: {{min: 1, max: 28}}
  overlap: {{min: P9D, max: P12D}}
  cycle: {{min: P79D, max: P271D}}
  horizon: P300D
  keys:
    ksk: {{key: "pkcs11:token=ksk-primary;object=ksk"}}
  schema:
    - {{sign: [ksk]}}
"""


def write_policy(
    path: Path,
    origin: str = ORIGIN,
    *,
    nsec3: bool = False,
    optout: bool = False,
    salt: str = "-",
    iterations: int = 0,
    algorithm: str = "ECDSAP256SHA256",
    bits: int = 256,
) -> Path:
    path.write_text(
        POLICY.format(
            algorithm=algorithm,
            bits=bits,
            origin=origin,
            nsec="nsec3" if nsec3 else "nsec",
            salt=salt,
            iterations=iterations,
            optout="true" if optout else "false",
        )
    )
    return path


def write_response(
    path: Path,
    keys: BindKeys,
    *,
    origin: str = ORIGIN,
    inception: int,
    expiration: int,
    ttl: int = 3600,
) -> Path:
    """A one-bundle key-bundle response: DNSKEY RRset {KSK, ZSK} signed by the KSK."""
    import dns.name

    from signer.bundles.model import Bundle, BundleSet
    from signer.bundles.textformat import dump_response
    from signer.rrsig import sign_rrset

    ksk = keys.ksk_soft()
    zone = dns.name.from_text(origin)
    b = Bundle("b1", inception, expiration, ttl, (ksk.dnskey, keys.zsk_soft().dnskey))
    sig = sign_rrset(b.dnskey_rrset(zone), ksk, zone, inception, expiration)
    b = Bundle("b1", inception, expiration, ttl, b.keys, (sig,))
    path.write_text(dump_response(BundleSet(zone, (b,), "response")))
    return path


def zonesigner(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `zonesigner` command (the installed console script)."""
    exe = Path(sys.executable).with_name("zonesigner")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def sign_with_zonesigner(
    zone_file: Path,
    keys: BindKeys,
    out: Path,
    *,
    origin: str = ORIGIN,
    nsec3: bool = False,
    optout: bool = False,
    salt: str = "-",
    iterations: int = 0,
    now: int | None = None,
    jobs: int = 1,
    verify: str | None = None,
    extra: tuple[str, ...] = (),
) -> Path:
    """Sign with `zonesigner sign` (the BIND ZSK file, a response signed by the BIND KSK)."""
    when = int(time.time()) if now is None else now
    d = out.parent
    policy = write_policy(
        d / f"{out.name}.policy.yaml",
        origin,
        nsec3=nsec3,
        optout=optout,
        salt=salt,
        iterations=iterations,
        algorithm=keys.algorithm,
        bits=keys.bits,
    )
    resp = write_response(
        d / f"{out.name}.skr",
        keys,
        origin=origin,
        inception=when - 86400,
        expiration=when + 30 * 86400,
    )
    args = ["sign", str(zone_file), "--origin", origin, "--bundles", str(resp)]
    args += ["--zsk", str(keys.zsk.with_suffix(".private")), "--out", str(out)]
    args += ["--policy", str(policy), "--now", str(when), "--jobs", str(jobs)]
    args += ["--trust-anchor", str(keys.ds_file(origin))]
    if verify:
        args += ["--verify", verify]
    p = zonesigner(*args, *extra)
    if p.returncode != 0:
        raise AssertionError(f"zonesigner {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
    return out
