"""End to end: our signed zone served by a real authoritative server (Debian knotd on
127.0.0.1, a free high port, everything in a temp dir), resolved through a validating resolver
(BIND delv, trust anchor = the KSK's DS): validated answers, wildcard, and validated NXDOMAIN
and NODATA proofs, with NSEC and with NSEC3 (plain and opt-out).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from zone_testlib import HAND_ZONE, ORIGIN, BindKeys, bind_keys, require, sign_with_zonesigner

ZONE = ORIGIN.rstrip(".")


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


@dataclass(frozen=True)
class Served:
    port: int
    anchors: Path
    mode: str


def _start_knotd(directory: Path, zone_file: Path) -> tuple[subprocess.Popen[bytes], int]:
    knotd = require("knotd")
    port = free_port()
    conf = directory / "knot.conf"
    conf.write_text(
        f"""server:
    rundir: "{directory}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{directory}/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{directory}"
    semantic-checks: off
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {ZONE}
    file: "{zone_file}"
"""
    )
    log = (directory / "knotd.log").open("wb")
    proc = subprocess.Popen([knotd, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    q = dns.message.make_query(ORIGIN, "SOA")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"knotd exited: {(directory / 'knotd.log').read_text()}")
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3)
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                return proc, port
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"knotd did not serve the zone: {(directory / 'knotd.log').read_text()}")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> BindKeys:
    return bind_keys(tmp_path_factory.mktemp("e2e-keys"))


@pytest.fixture(scope="module", params=["nsec", "nsec3", "nsec3-optout"])
def served(
    request: pytest.FixtureRequest, keys: BindKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    mode = str(request.param)
    d = tmp_path_factory.mktemp(f"e2e-{mode}")
    (d / "zone").write_text(HAND_ZONE)
    signed = sign_with_zonesigner(
        d / "zone", keys, d / "signed.zone", nsec3=mode != "nsec", optout=mode == "nsec3-optout"
    )
    proc, port = _start_knotd(d, signed)
    ds = keys.ds()[0]
    anchors = d / "anchors.conf"
    anchors.write_text(
        "trust-anchors {\n"
        f'  {ORIGIN} static-ds {ds.key_tag} {int(ds.algorithm)} {ds.digest_type} "{ds.digest.hex()}";\n'
        "};\n"
    )
    try:
        yield Served(port, anchors, mode)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def delv(s: Served, name: str, rtype: str) -> str:
    cmd = [require("delv"), "@127.0.0.1", "-p", str(s.port), "-a", str(s.anchors)]
    p = subprocess.run(
        [*cmd, f"+root={ORIGIN}", "+nottl", name, rtype],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return p.stdout + p.stderr


def test_positive_answers_validate(served: Served) -> None:
    out = delv(served, "www.example.test", "A")
    assert "; fully validated" in out, out
    assert "192.0.2.2" in out
    out = delv(served, "UPPER.case.example.test", "A")
    assert "; fully validated" in out and "192.0.2.5" in out, out
    out = delv(served, "dot\\.in\\.label.example.test", "A")
    assert "; fully validated" in out and "192.0.2.6" in out, out
    out = delv(served, ORIGIN, "DNSKEY")
    assert "; fully validated" in out, out


def test_wildcard_answer_validates(served: Served) -> None:
    out = delv(served, "anything.wild.example.test", "TXT")
    assert '"wildcard"' in out, out
    if served.mode == "nsec3-optout":
        # the next closer name's hash falls in an opt-out span: a validator may only call the
        # expansion insecure (RFC 5155 sect. 8.8 with 6), never bogus
        assert "; fully validated" in out or "; unsigned answer" in out, out
    else:
        assert "; fully validated" in out, out


def test_nxdomain_is_proven(served: Served) -> None:
    out = delv(served, "no-such-name.wild.example.test.", "A")
    # *.wild exists: any name below wild. matches the wildcard -> NODATA for A
    assert "negative response, fully validated" in out, out
    out = delv(served, "nothing-here.deep.example.test", "A")
    assert "negative response, fully validated" in out, out
    assert "NXDOMAIN" in out, out


def test_nodata_is_proven(served: Served) -> None:
    out = delv(served, "www.example.test", "AAAA")
    assert "negative response, fully validated" in out and "NXRRSET" in out, out
    out = delv(served, "b.c.ent.example.test", "A")  # an empty non-terminal
    assert "negative response, fully validated" in out and "NXRRSET" in out, out


def test_delegations(served: Served) -> None:
    out = delv(served, "sec.example.test", "DS")
    assert "; fully validated" in out and "12345 13 2" in out, out
    out = delv(served, "sub.example.test", "DS")  # insecure delegation: proven absent
    if served.mode == "nsec3-optout":
        # RFC 5155 sect. 6: an opted-out delegation is proven insecure, not absent
        assert "fully validated" in out or "insecure" in out, out
    else:
        assert "negative response, fully validated" in out and "NXRRSET" in out, out
