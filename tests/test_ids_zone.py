"""Failing cases for the zone and signer IDs that had none (test_requirement_ids.py lists
them): ZONE-VERIFY-ORDER, ZONE-VERIFY-RRSIG-FIELDS, ZONE-NSEC3-COLLISION, SIGNER-SERIAL.

Uses the zone signer's public API only (signer.zone.verify, signer.zone.nsec3,
signer.zone.serial) on zones signed by BIND (tests/zone_testlib.py), like test_zone_verify.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from zone_testlib import HAND_ZONE, ORIGIN, BindKeys, bind_keys, bind_sign, drop_lines, sub_line

import signer.zone.nsec3 as nsec3_mod
from signer.errors import EXIT_CHECK
from signer.zone.loader import load_zone
from signer.zone.nsec3 import Nsec3Collision, add_nsec3
from signer.zone.rules import classify
from signer.zone.serial import SerialWentBackwards, new_serial
from signer.zone.verify import ZoneVerificationFailed, verify_signed_zone

NOW = int(time.time())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> BindKeys:
    return bind_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signed(keys: BindKeys, tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("signed")
    (d / "zone").write_text(HAND_ZONE)
    return bind_sign(d / "zone", keys, d / "nsec").read_text()


def _refused(text: str, keys: BindKeys, tmp_path: Path) -> ZoneVerificationFailed:
    p = tmp_path / "signed.zone"
    p.write_text(text)
    with pytest.raises(ZoneVerificationFailed) as ei:
        verify_signed_zone(p, origin=ORIGIN, trust_anchor_ds=keys.ds(), now=NOW, level="full")
    assert ei.value.exit_code == EXIT_CHECK
    assert str(ei.value).startswith(ei.value.requirement + ": ")
    return ei.value


def test_zone_verify_order_no_soa_at_apex(signed: str, keys: BindKeys, tmp_path: Path) -> None:
    text = drop_lines(signed, r"^example\.test\.\s+\d+\s+IN\s+SOA\s")
    e = _refused(text, keys, tmp_path)
    assert e.requirement == "ZONE-VERIFY-ORDER"
    assert "no SOA and NS at the apex" in str(e)


def test_zone_verify_rrsig_fields_wrong_labels(signed: str, keys: BindKeys, tmp_path: Path) -> None:
    # www.example.test. has 3 labels; an RRSIG claiming 2 would be a wildcard expansion
    text = sub_line(signed, r"^www\.example\.test\.\s.*RRSIG\s+A 13 3 ", "A 13 3 ", "A 13 2 ")
    e = _refused(text, keys, tmp_path)
    assert "ZONE-VERIFY-RRSIG-FIELDS" in e.requirements
    assert any(
        r == "ZONE-VERIFY-RRSIG-FIELDS" and "labels 2, expected 3" in m for r, m in e.failures
    ), str(e)


def test_zone_nsec3_collision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A SHA-1 collision cannot be produced for real: the hash is replaced (fault injection)."""
    f = tmp_path / "zone"
    f.write_text(HAND_ZONE)
    zone = load_zone(f, ORIGIN)
    classify(zone)
    monkeypatch.setattr(nsec3_mod, "nsec3_hash", lambda name, salt, it: b"\x00" * 20)
    with pytest.raises(Nsec3Collision) as ei:
        add_nsec3(zone)
    assert ei.value.requirement == "ZONE-NSEC3-COLLISION"
    assert "choose another salt" in str(ei.value)


def test_signer_serial_went_backwards(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SerialWentBackwards) as ei:
        new_serial("keep", 100, NOW, previous=200)
    assert ei.value.requirement == "SIGNER-SERIAL"
    assert str(ei.value).startswith("SIGNER-SERIAL: the new SOA serial 100 is lower")
    # equal to the previous one: a warning with the ID, not a refusal
    with caplog.at_level(logging.WARNING, "dnssec_ceremony.zone"):
        assert new_serial("keep", 200, NOW, previous=200) == 200
    assert any(r.getMessage().startswith("SIGNER-SERIAL:") for r in caplog.records)
