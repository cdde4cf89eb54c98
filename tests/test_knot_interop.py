"""Interop with Knot DNS 3.2.6 ``keymgr`` in offline-KSK mode (Debian's ``knot`` package).

ZSK side (knot-zsk.conf, policy ``offline-ksk: on`` + ``manual: on``)::

    keymgr -c knot-zsk.conf example.com. pregenerate +90d
    keymgr -c knot-zsk.conf example.com. generate-ksr +0 +90d > ksr.txt
    keymgr -c knot-zsk.conf example.com. validate-skr skr.txt
    keymgr -c knot-zsk.conf example.com. import-skr skr.txt
    keymgr -c knot-zsk.conf example.com. show-offline <time>

KSK side (knot-ksk.conf, a separate KASP database; keymgr 3.2.6 also insists on
``offline-ksk: on`` + ``manual: on`` there, and the KSK must be active at every bundle time)::

    keymgr -c knot-ksk.conf example.com. generate algorithm=13 ksk=yes zsk=no \
        created=1 publish=1 ready=1 active=1
    keymgr -c knot-ksk.conf example.com. sign-ksr ksr.txt > skr.txt

Knot 3.2.6 quirk: ``validate-skr`` exits 0 and prints ``OK`` even when a signature is bad;
the failure is only the ``error: invalid SignedKeyResponse ...`` line on stderr, so the tests
look at stderr too (and show that a tampered SKR produces that line).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import dns.name

from signer.algorithms import Algorithm
from signer.bundles import textformat as tf
from signer.bundles.model import Bundle, BundleSet
from signer.dnskey import DsRecord, make_ds
from signer.keys.soft import SoftKey
from signer.rrsig import sign_rrset, verify_rrset
from tests.conftest import require_tool

ZONE = dns.name.from_text("example.com.")
DAY = 86400

_CONF = """\
server:
    rundir: "{d}"
database:
    storage: "{d}"
policy:
  - id: p
    algorithm: ecdsap256sha256
    offline-ksk: on
    manual: on
    dnskey-ttl: 3600
    zone-max-ttl: 3600
    zsk-lifetime: 30d
    rrsig-lifetime: 14d
    rrsig-refresh: 7d
    cds-cdnskey-publish: always
zone:
  - domain: example.com.
    storage: "{d}"
    dnssec-signing: on
    dnssec-policy: p
"""


@dataclass
class Knot:
    conf: Path
    keymgr: str

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        cp = subprocess.run(
            [self.keymgr, "-c", str(self.conf), "example.com.", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if ok:
            assert cp.returncode == 0, f"keymgr {' '.join(args)}: {cp.stderr}"
        return cp


def knot_side(tmp: Path, name: str) -> Knot:
    d = tmp / name
    d.mkdir()
    conf = d / "knot.conf"
    conf.write_text(_CONF.format(d=d))
    return Knot(conf, require_tool("keymgr"))


def accepted(cp: subprocess.CompletedProcess[str]) -> bool:
    """validate-skr verdict (3.2.6 reports a bad SKR only on stderr)."""
    return cp.returncode == 0 and "error" not in cp.stderr.lower() and "OK" in cp.stdout


def sign_like_a_ksk_side(request: BundleSet, ksk: SoftKey) -> BundleSet:
    """Our KSK side's signing step for a foreign request: per bundle, the DNSKEY RRset
    (requested ZSKs + our KSK), CDS and CDNSKEY, signed from 1 h before the bundle time for
    14 days (Knot's own rrsig-lifetime, so bundles overlap by a week)."""
    out = []
    ds = make_ds(ZONE, ksk.dnskey, 2)
    for b in request.bundles:
        inc, exp = b.inception - 3600, b.inception + 14 * DAY
        nb = Bundle(
            b.id,
            b.inception,
            exp,
            b.ttl,
            (*b.keys, ksk.dnskey),
            cds=(ds,),
            cdnskey=(ksk.dnskey,),
        )
        cds = nb.cds_rrset(ZONE)
        cdnskey = nb.cdnskey_rrset(ZONE)
        assert cds is not None and cdnskey is not None
        out.append(
            replace(
                nb,
                signatures=(sign_rrset(nb.dnskey_rrset(ZONE), ksk, ZONE, inc, exp),),
                cds_signatures=(sign_rrset(cds, ksk, ZONE, inc, exp),),
                cdnskey_signatures=(sign_rrset(cdnskey, ksk, ZONE, inc, exp),),
            )
        )
    return BundleSet(ZONE, tuple(out), "response")


def test_knot_ksr_signed_by_us_is_accepted_by_knot(tmp_path: Path) -> None:
    zsk_side = knot_side(tmp_path, "zsk")
    zsk_side.run("pregenerate", "+60d")
    ksr = tmp_path / "ksr.txt"
    ksr.write_text(zsk_side.run("generate-ksr", "+0", "+60d").stdout)

    request = tf.load_request(ksr, zone=ZONE)
    assert len(request.bundles) >= 3  # at least one ZSK rollover in 60 days (30-day lifetime)
    assert all(not k.is_sep for b in request.bundles for k in b.keys)
    assert any(len(b.keys) == 2 for b in request.bundles)  # pre-published successor

    ksk = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True)
    response = sign_like_a_ksk_side(request, ksk)
    skr = tmp_path / "skr.txt"
    tf.write_text(skr, tf.dump_response(response))
    assert tf.load_response(skr, zone=ZONE) == response

    verdict = zsk_side.run("validate-skr", str(skr))
    assert accepted(verdict), verdict.stderr

    # the same SKR with one signature byte changed: Knot says so (on stderr)
    text = skr.read_text()
    i = text.index(" RRSIG DNSKEY ")
    j = text.index("\n", i) - 5
    bad = tmp_path / "bad-skr.txt"
    bad.write_text(text[:j] + ("A" if text[j] != "A" else "B") + text[j + 1 :])
    assert not accepted(zsk_side.run("validate-skr", str(bad), ok=False))

    # import it and read back what Knot will serve at the second bundle's time
    zsk_side.run("import-skr", str(skr))
    when = str(request.bundles[1].inception)
    shown = zsk_side.run("show-offline", when, when).stdout
    assert ksk.dnskey.rdata_text().split()[-1][:40] in shown.replace("\n", "").replace("\t", "")


def test_our_ksr_signed_by_knot_verifies(tmp_path: Path) -> None:
    ksk_side = knot_side(tmp_path, "ksk")
    ksk_side.run(
        "generate",
        "algorithm=13",
        "ksk=yes",
        "zsk=no",
        "created=1",
        "publish=1",
        "ready=1",
        "active=1",
    )
    knot_ds = DsRecord.from_text(
        next(
            ln.split("DS", 1)[1].strip()
            for ln in ksk_side.run("ds").stdout.splitlines()
            if " DS " in ln and " 13 2 " in ln
        )
    )

    # our request: a ZSK rollover over three bundles, 10 days apart
    zsk1 = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    zsk2 = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    t0 = 1_900_000_000
    sets = [(zsk1.dnskey,), (zsk1.dnskey, zsk2.dnskey), (zsk2.dnskey,)]
    request = BundleSet(
        ZONE,
        tuple(
            Bundle(f"slot-{i}", t0 + i * 10 * DAY, t0 + i * 10 * DAY + 14 * DAY, 3600, keys)
            for i, keys in enumerate(sets)
        ),
        "request",
    )
    ksr = tmp_path / "ours-ksr.txt"
    tf.write_text(ksr, tf.dump_request(request))
    skr = tmp_path / "knot-skr.txt"
    skr.write_text(ksk_side.run("sign-ksr", str(ksr)).stdout)

    response = tf.load_response(skr, zone=ZONE)
    assert response.kind == "response"
    by_time = {b.inception: b for b in response.bundles}
    ksk_tag = knot_ds.key_tag
    for req in request.bundles:
        got = by_time[req.inception]  # Knot answers every requested bundle time
        assert set(req.keys) <= set(got.keys)
    n = 0
    for b in response.bundles:
        ksks = [k for k in b.keys if k.is_sep]
        assert [k.key_tag for k in ksks] == [ksk_tag]
        assert knot_ds.matches(ZONE, ksks[0])  # chains to the DS Knot publishes
        for rrset, sigs in (
            (b.dnskey_rrset(ZONE), b.signatures),
            (b.cds_rrset(ZONE), b.cds_signatures),
            (b.cdnskey_rrset(ZONE), b.cdnskey_signatures),
        ):
            assert rrset is not None and sigs
            for sig in sigs:
                verify_rrset(rrset, sig, ksks, now=b.inception)
                n += 1
        assert b.cds and all(d.matches(ZONE, ksks[0]) for d in b.cds)
    assert n >= 9
    # the ZSKs of each bundle are exactly the requested set in force at that time
    for b in response.bundles:
        current = max(
            (r for r in request.bundles if r.inception <= b.inception), key=lambda r: r.inception
        )
        assert {k for k in b.keys if not k.is_sep} == set(current.keys)
