"""The PKCS#11 key layer against real SoftHSM2 tokens (the `lab` fixture)."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.name
import dns.rrset
import hsmlab
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from signer.algorithms import Algorithm
from signer.dnskey import DnsKey
from signer.errors import EXIT_CHECK, EXIT_INPUT, EXIT_TOKEN, InputError, TokenError
from signer.keys.base import BadTokenSignature
from signer.keys.loader import open_signing_key
from signer.keys.pkcs11 import (
    EC_PARAMS,
    DuplicateKey,
    KeyNotFound,
    KeyPairMismatch,
    LabelExists,
    MechanismMissing,
    ModuleNotFound,
    PinRefused,
    Pkcs11Key,
    Pkcs11Token,
    TokenNotFound,
    _fixed_ecdsa,
    load_module,
)
from signer.pin import PinSource
from signer.rrsig import sign_rrset

ZONE = dns.name.from_text("example.")
INCEPTION, EXPIRATION, NOW = 1_700_000_000, 2_000_000_000, 1_800_000_000

# RSA keygen in SoftHSM is the slow part: 1024 bits is enough to exercise the mechanisms.
ALGS = [
    (Algorithm.RSASHA256, 1024),
    (Algorithm.RSASHA512, 1024),
    (Algorithm.ECDSAP256SHA256, None),
    (Algorithm.ECDSAP384SHA384, None),
    (Algorithm.ED25519, None),
    (Algorithm.ED448, None),
]


def pins(lab: hsmlab.Lab, token: str) -> PinSource:
    return PinSource(pin_file=str(lab.pin_file(token)), interactive=False)


def open_rw(lab: hsmlab.Lab, token: str = "zsk") -> Pkcs11Token:
    return Pkcs11Token(f"pkcs11:token={token}", pins(lab, token), rw=True)


def assert_validates(key: Any) -> None:
    """Sign an RRset through signer.rrsig with ``key``; dnspython must validate it."""
    rrset = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    rrsig = sign_rrset(rrset, key, ZONE, INCEPTION, EXPIRATION)
    keys = {ZONE: dns.rrset.from_rdata(ZONE, 300, key.dnskey.to_rdata())}
    dns.dnssec.validate(rrset, dns.rrset.from_rdata("www.example.", 300, rrsig), keys, now=NOW)


def test_ec_params_constants_are_der() -> None:
    from asn1crypto.core import ObjectIdentifier, PrintableString

    assert EC_PARAMS[Algorithm.ECDSAP256SHA256][0] == ObjectIdentifier("1.2.840.10045.3.1.7").dump()
    assert EC_PARAMS[Algorithm.ECDSAP384SHA384][0] == ObjectIdentifier("1.3.132.0.34").dump()
    assert EC_PARAMS[Algorithm.ED25519] == (
        ObjectIdentifier("1.3.101.112").dump(),
        PrintableString("edwards25519").dump(),
    )
    assert EC_PARAMS[Algorithm.ED448][1] == PrintableString("edwards448").dump()


def test_generate_sign_find_every_algorithm(lab: hsmlab.Lab) -> None:
    with open_rw(lab) as tok:
        assert tok.identity.label == "zsk" and tok.identity.manufacturer == "SoftHSM project"
        assert tok.identity.serial == lab.tokens["zsk"]
        made = {}
        for alg, bits in ALGS:
            key = tok.generate(f"k-{alg.name}", alg, bits, ksk=alg == Algorithm.ECDSAP256SHA256)
            assert key.dnskey.algorithm == alg
            assert key.dnskey.flags == (257 if alg == Algorithm.ECDSAP256SHA256 else 256)
            assert len(key.id) == 16
            assert_validates(key)
            made[alg] = key
        infos = {i.label: i for i in tok.list_keys()}
        assert set(infos) == {f"k-{a.name}" for a, _ in ALGS}
        for alg, key in made.items():
            i = infos[f"k-{alg.name}"]
            assert i.dnskey == key.dnskey and i.id == key.id
            assert i.sensitive is True and i.extractable is False
            assert i.never_extractable is True and i.local is True and i.role_recorded
    # Re-open in a new session: flags and algorithm (RSASHA512!) survive.
    with Pkcs11Token("pkcs11:token=zsk", pins(lab, "zsk")) as tok2:
        for alg, key in made.items():
            again = tok2.find(label=f"k-{alg.name}")
            assert again.dnskey == key.dnskey
            assert_validates(again)
        by_id = tok2.find(id=made[Algorithm.ED448].id)
        assert by_id.label == "k-ED448"


def test_on_token_hash_modes(lab: hsmlab.Lab) -> None:
    with open_rw(lab) as tok:
        rsa = tok.generate("rsa", Algorithm.RSASHA256, 1024)
        ec = tok.generate("ec", Algorithm.ECDSAP256SHA256)
        hashed = tok.find(label="rsa", on_token_hash=True)
        assert hashed.mechanism == Mechanism.SHA256_RSA_PKCS and rsa.mechanism == Mechanism.RSA_PKCS
        # RSA PKCS#1 v1.5 is deterministic: both modes give the same bytes.
        assert hashed.sign(b"data") == rsa.sign(b"data")
        ec_on_token = tok.find(label="ec", on_token_hash=True)
        if int(Mechanism.ECDSA_SHA256) in tok.mechanisms():
            assert_validates(ec_on_token)
        else:  # SoftHSM 2.6.1 has no CKM_ECDSA_SHA256: a clear refusal naming both
            with pytest.raises(MechanismMissing) as ei:
                ec_on_token.sign(b"data")
            assert "CKM_ECDSA_SHA256" in str(ei.value) and "token 'zsk'" in str(ei.value)
            assert ei.value.exit_code == EXIT_TOKEN
        assert ec.mechanism == Mechanism.ECDSA


def test_extractable_only_on_request(lab: hsmlab.Lab) -> None:
    with open_rw(lab) as tok:
        tok.generate("x", Algorithm.ECDSAP256SHA256, extractable=True)
        (info,) = tok.list_keys()
        assert info.extractable is True and info.sensitive is True


def test_bad_token_signature_names_token(lab: hsmlab.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_rw(lab) as tok:
        key = tok.generate("k", Algorithm.ECDSAP256SHA256)
        good = key.sign(b"payload")
        real = Pkcs11Key._raw_sign

        def corrupt(self: Pkcs11Key, data: bytes) -> bytes:
            sig = real(self, data)
            return sig[:-1] + bytes([sig[-1] ^ 1])

        monkeypatch.setattr(Pkcs11Key, "_raw_sign", corrupt)
        with pytest.raises(BadTokenSignature) as ei:
            key.sign(b"payload")
        msg = str(ei.value)
        assert "token 'zsk'" in msg and lab.tokens["zsk"] in msg and "does not verify" in msg
        assert ei.value.exit_code == EXIT_TOKEN
        assert len(good) == 64


def test_ecdsa_width_normalisation() -> None:
    r = (5).to_bytes(31, "big")  # a token that strips leading zero bytes
    s = (7).to_bytes(31, "big")
    fixed = _fixed_ecdsa(r + s, Algorithm.ECDSAP256SHA256)
    assert fixed == (5).to_bytes(32, "big") + (7).to_bytes(32, "big")
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    der = encode_dss_signature(5, 7)  # a token that answers in DER
    assert _fixed_ecdsa(der, Algorithm.ECDSAP384SHA384) == (5).to_bytes(48, "big") + (7).to_bytes(
        48, "big"
    )


def test_refusals(lab: hsmlab.Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_rw(lab) as tok:
        tok.generate("dup", Algorithm.ECDSAP256SHA256)
        with pytest.raises(LabelExists) as e1:
            tok.generate("dup", Algorithm.ED25519)
        assert e1.value.exit_code == EXIT_CHECK and "KEY-LABEL-UNIQUE" in str(e1.value)
        with pytest.raises(KeyNotFound) as e2:
            tok.find(label="nope")
        assert e2.value.exit_code == EXIT_TOKEN and "no private key with label 'nope'" in str(
            e2.value
        )
        with pytest.raises(InputError):
            tok.generate("r", Algorithm.RSASHA256, 512)
        with pytest.raises(InputError):
            tok.generate("r", Algorithm.ECDSAP256SHA256, 384)
        with pytest.raises(InputError, match="unsupported DNSSEC algorithm"):
            tok.generate("r", "DSA")
        with pytest.raises(InputError, match="must name the key"):
            tok.find()
    # Wrong PIN.
    bad = tmp_path / "bad.pin"
    bad.write_text("wrong-pin-0000\n")
    with pytest.raises(PinRefused) as e3:
        Pkcs11Token("pkcs11:token=zsk", PinSource(pin_file=str(bad)))
    assert "PIN incorrect" in str(e3.value) and "wrong-pin-0000" not in str(e3.value)
    # Missing token.
    with pytest.raises(TokenNotFound) as e4:
        Pkcs11Token("pkcs11:token=nonesuch", pins(lab, "zsk"))
    assert "tokens present: 'ksk-backup', 'ksk-primary', 'zsk')" in str(e4.value)
    # Missing module, and a file that is not a module.
    monkeypatch.setenv("DNSSEC_PKCS11_MODULE", str(tmp_path / "missing.so"))
    with pytest.raises(ModuleNotFound, match=r"missing.so .* does not exist"):
        Pkcs11Token("pkcs11:token=zsk", pins(lab, "zsk"))
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not an ELF file")
    with pytest.raises(ModuleNotFound, match="cannot load PKCS#11 module"):
        Pkcs11Token(f"pkcs11:token=zsk?module-path={junk}", pins(lab, "zsk"))


def test_duplicate_keys_refused_and_foreign_keys_open(lab: hsmlab.Lab) -> None:
    """Keys made by another tool (no DNSKEY record object), some sharing a label."""
    lib = load_module(lab.module)  # re-initialised for this lab
    with lib.get_token(token_label="zsk").open(rw=True, user_pin=lab.pin("zsk")) as s:
        for kid in (b"\x01", b"\x02"):
            s.generate_keypair(
                KeyType.EC,
                store=True,
                label="foreign",
                id=kid,
                mechanism=Mechanism.EC_KEY_PAIR_GEN,
                public_template={Attribute.EC_PARAMS: EC_PARAMS[Algorithm.ECDSAP256SHA256][0]},
            )
        s.generate_keypair(KeyType.RSA, 1024, store=True, label="foreign-rsa", id=b"\x03")
    with Pkcs11Token("pkcs11:token=zsk", pins(lab, "zsk")) as tok:
        with pytest.raises(DuplicateKey) as ei:
            tok.find(label="foreign")
        assert "KEY-FIND-UNIQUE" in str(ei.value) and "01, 02" in str(ei.value)
        k = tok.find(label="foreign", id=b"\x02")
        assert k.dnskey.flags == 256 and k.dnskey.algorithm == Algorithm.ECDSAP256SHA256
        assert_validates(k)
        r = tok.find(label="foreign-rsa")
        assert r.dnskey.algorithm == Algorithm.RSASHA256
        assert tok.find(label="foreign-rsa", algorithm=Algorithm.RSASHA512).dnskey.algorithm == 10
        assert not [i for i in tok.list_keys() if i.role_recorded]
        # The objects really are distinct on the token.
        n = len(list(tok.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})))
        assert n == 3


def test_probe(lab: hsmlab.Lab) -> None:
    with Pkcs11Token("pkcs11:token=ksk-primary", login=False) as tok:
        p = tok.probe()
    assert (
        p["token"]["label"] == "ksk-primary" and p["token"]["serial"] == lab.tokens["ksk-primary"]
    )
    algs = {a["name"]: a for a in p["algorithms"]}
    assert algs["ECDSAP256SHA256"]["sign_host_hash"] == "CKM_ECDSA"
    assert algs["RSASHA256"]["sign_on_token"] == "CKM_SHA256_RSA_PKCS"
    assert algs["ED25519"]["sign_on_token"] == "CKM_EDDSA" and algs["ED25519"]["usable"]
    assert all(a["usable"] for a in algs.values())


def test_loader_and_flags_override(lab: hsmlab.Lab) -> None:
    with open_rw(lab, "ksk-primary") as tok:
        spec = tok.generate("ksk", Algorithm.ECDSAP256SHA256, ksk=True).spec
    key = open_signing_key(spec, pins(lab, "ksk-primary"))
    assert isinstance(key, Pkcs11Key) and key.dnskey.flags == 257
    revoked = open_signing_key(spec, pins(lab, "ksk-primary"), flags=385)
    assert revoked.dnskey.flags == 385 and revoked.dnskey.key_tag != key.dnskey.key_tag
    assert revoked.sign(b"self-signed DNSKEY RRset")  # re-verified with the same public key
    assert_validates(key)
    with pytest.raises(TypeError, match="open_signing_key"):
        pickle.dumps(key)
    key.close()


_FORK_KEY: Pkcs11Key | None = None  # inherited by forked workers, never pickled


def _worker(spec: str, source: PinSource) -> tuple[bytes, bytes, str]:
    err = ""
    if _FORK_KEY is not None:
        try:
            _FORK_KEY.sign(b"x")
        except TokenError as exc:
            err = str(exc)
    key = open_signing_key(spec, source)
    return key.dnskey.to_wire(), key.sign(b"signed in a worker"), err


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_reopen_in_worker_process(
    lab: hsmlab.Lab, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from signer.crypto import verify_signature

    with open_rw(lab) as tok:
        key = tok.generate("zsk-w", Algorithm.ECDSAP256SHA256)
        key.sign(b"the parent uses the module first")
        if method == "fork":
            monkeypatch.setattr(f"{__name__}._FORK_KEY", key)
        source = pins(lab, "zsk").resolved("token 'zsk'")
        with multiprocessing.get_context(method).Pool(1) as pool:
            wire, sig, err = pool.apply(_worker, (key.spec, source))
        assert DnsKey.from_wire(wire) == key.dnskey
        assert verify_signature(key.algorithm, key._public_key(), b"signed in a worker", sig)
        if method == "fork":
            assert "session opened in another process" in err
        assert key.sign(b"the parent still works")


def test_errors_have_exit_codes() -> None:
    assert ModuleNotFound("x").exit_code == EXIT_TOKEN
    assert DuplicateKey("x").exit_code == EXIT_CHECK
    assert InputError("x").exit_code == EXIT_INPUT


def test_rsa_default_size_is_2048(lab: hsmlab.Lab) -> None:
    with open_rw(lab) as tok:
        key = tok.generate("rsa-default", Algorithm.RSASHA256)
        assert key.dnskey.bits == 2048
        assert len(key.sign(b"x")) == 256


def test_dnskey_record_object_must_match_token_key(lab: hsmlab.Lab) -> None:
    """A DNSKEY record object whose public key differs from the token key is refused."""
    with open_rw(lab) as tok:
        a = tok.generate("a", Algorithm.ECDSAP256SHA256, ksk=True)
        b = tok.generate("b", Algorithm.ECDSAP256SHA256)
        # Re-point a's record at b's public key (a real token state, no fake involved).
        s = tok.session
        (meta,) = s.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: "a"})
        meta.destroy()
        doc = json.dumps(
            {
                "format": "dnssec-ceremony-dnskey/1",
                "id": a.id.hex(),
                "dnskey": "257 3 13 " + b.dnskey.rdata_text().split()[-1],
            }
        )
        s.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: "a",
                Attribute.APPLICATION: "dnssec-ceremony/dnskey",
                Attribute.VALUE: doc.encode(),
            }
        )
        with pytest.raises(KeyPairMismatch) as ei:
            tok.find(label="a")
        assert ei.value.exit_code == EXIT_TOKEN and "another public key" in str(ei.value)
        problems = {i.label: i.problem for i in tok.list_keys()}
        assert problems["b"] is None and "another public key" in (problems["a"] or "")


def test_second_session_refuses_a_wrong_pin(lab: hsmlab.Lab, tmp_path: Path) -> None:
    """The token is logged in for the whole process once one session logged in, so it never
    sees a second session's PIN: we refuse a PIN other than the one that logged in."""
    from signer.keys import pkcs11 as p11

    bad = tmp_path / "bad.pin"
    bad.write_text("wrong-pin-0000\n")
    with Pkcs11Token("pkcs11:token=zsk", pins(lab, "zsk"), rw=True) as first:
        with pytest.raises(PinRefused) as ei:
            Pkcs11Token("pkcs11:token=zsk", PinSource(pin_file=str(bad), interactive=False))
        assert ei.value.exit_code == EXIT_TOKEN
        assert "PIN incorrect" in str(ei.value) and "wrong-pin-0000" not in str(ei.value)
        assert first.identity.label in str(ei.value)
        # the right PIN opens a second session, and the first one still works
        with Pkcs11Token("pkcs11:token=zsk", pins(lab, "zsk")) as second:
            assert second.identity == first.identity
        first.generate("after-refusal", Algorithm.ECDSAP256SHA256)
        # what we keep is a keyed hash, not the PIN
        pin = lab.pin("zsk")
        assert p11._LOGINS and all(pin.encode() not in v for v in p11._LOGINS.values())
        assert pin not in repr(p11._LOGINS)
    # all sessions closed: the token checks the PIN itself again
    with pytest.raises(PinRefused, match="PIN incorrect"):
        Pkcs11Token("pkcs11:token=zsk", PinSource(pin_file=str(bad), interactive=False))
    # another token of the same process is not logged in by the zsk login
    with Pkcs11Token("pkcs11:token=zsk", pins(lab, "zsk")):
        with pytest.raises(PinRefused):
            Pkcs11Token("pkcs11:token=ksk-primary", PinSource(pin_file=str(bad), interactive=False))
        Pkcs11Token("pkcs11:token=ksk-primary", pins(lab, "ksk-primary")).close()
