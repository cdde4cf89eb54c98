"""Public-key material in DNSKEY form, and software signature verification.

DNSKEY public key formats: RSA RFC 3110 sect. 2, ECDSA RFC 6605 sect. 4 (x || y),
EdDSA RFC 8080 sect. 3 (the raw public key). Signature formats: RSA PKCS#1 v1.5,
ECDSA r || s (RFC 6605 sect. 4), EdDSA RFC 8032.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signer.algorithms import INFO, Algorithm, info
from signer.errors import InputError

PublicKey = Union[  # noqa: UP007
    rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey
]
PrivateKey = Union[  # noqa: UP007
    rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey
]

_CURVES: dict[Algorithm, ec.EllipticCurve] = {
    Algorithm.ECDSAP256SHA256: ec.SECP256R1(),
    Algorithm.ECDSAP384SHA384: ec.SECP384R1(),
}


def ec_curve(algorithm: Algorithm) -> ec.EllipticCurve:
    return _CURVES[algorithm]


def rsa_dnskey_bytes(e: int, n: int) -> bytes:
    exp = e.to_bytes((e.bit_length() + 7) // 8, "big")
    mod = n.to_bytes((n.bit_length() + 7) // 8, "big")
    prefix = bytes([len(exp)]) if len(exp) < 256 else b"\x00" + len(exp).to_bytes(2, "big")
    return prefix + exp + mod


def rsa_from_dnskey_bytes(key: bytes) -> tuple[int, int]:
    if not key:
        raise InputError("empty RSA public key")
    if key[0] == 0:
        if len(key) < 3:
            raise InputError("truncated RSA public key")
        elen = int.from_bytes(key[1:3], "big")
        off = 3
    else:
        elen = key[0]
        off = 1
    if len(key) < off + elen + 1:
        raise InputError("truncated RSA public key")
    e = int.from_bytes(key[off : off + elen], "big")
    n = int.from_bytes(key[off + elen :], "big")
    return e, n


def public_key_to_dnskey_bytes(algorithm: Algorithm, pub: PublicKey) -> bytes:
    fam = info(algorithm).family
    if fam == "rsa":
        if not isinstance(pub, rsa.RSAPublicKey):
            raise InputError(f"{algorithm.name} needs an RSA key")
        nums = pub.public_numbers()
        return rsa_dnskey_bytes(nums.e, nums.n)
    if fam == "ecdsa":
        if (
            not isinstance(pub, ec.EllipticCurvePublicKey)
            or pub.curve.name != _CURVES[algorithm].name
        ):
            raise InputError(f"{algorithm.name} needs a {INFO[algorithm].curve} key")
        size = INFO[algorithm].default_bits // 8
        pn = pub.public_numbers()
        return pn.x.to_bytes(size, "big") + pn.y.to_bytes(size, "big")
    from cryptography.hazmat.primitives import serialization

    if algorithm == Algorithm.ED25519 and isinstance(pub, ed25519.Ed25519PublicKey):
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if algorithm == Algorithm.ED448 and isinstance(pub, ed448.Ed448PublicKey):
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise InputError(f"{algorithm.name} needs a {INFO[algorithm].curve} key")


def public_key_from_dnskey_bytes(algorithm: Algorithm, key: bytes) -> PublicKey:
    fam = info(algorithm).family
    try:
        if fam == "rsa":
            e, n = rsa_from_dnskey_bytes(key)
            return rsa.RSAPublicNumbers(e, n).public_key()
        if fam == "ecdsa":
            size = INFO[algorithm].default_bits // 8
            if len(key) != 2 * size:
                raise InputError(
                    f"{algorithm.name} public key must be {2 * size} bytes, not {len(key)}"
                )
            return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[algorithm], b"\x04" + key)
        if algorithm == Algorithm.ED25519:
            return ed25519.Ed25519PublicKey.from_public_bytes(key)
        return ed448.Ed448PublicKey.from_public_bytes(key)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(f"invalid {algorithm.name} public key: {exc}") from None


def key_bits(algorithm: Algorithm, key: bytes) -> int:
    """Key size in bits as DNS operators quote it (RSA modulus size; curve size)."""
    if INFO[algorithm].family == "rsa":
        _, n = rsa_from_dnskey_bytes(key)
        return n.bit_length()
    return INFO[algorithm].default_bits


def ecdsa_der_to_raw(der: bytes, algorithm: Algorithm) -> bytes:
    r, s = decode_dss_signature(der)
    size = INFO[algorithm].default_bits // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def verify_signature(algorithm: Algorithm, pub: PublicKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` (DNSSEC wire form) is valid over ``data``."""
    ai = info(algorithm)
    try:
        if ai.family == "rsa":
            assert isinstance(pub, rsa.RSAPublicKey)
            pub.verify(signature, data, padding.PKCS1v15(), ai.hash())
        elif ai.family == "ecdsa":
            assert isinstance(pub, ec.EllipticCurvePublicKey)
            if ai.signature_size is None or len(signature) != ai.signature_size:
                return False
            pub.verify(ecdsa_raw_to_der(signature), data, ec.ECDSA(ai.hash()))
        else:
            assert isinstance(pub, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))
            pub.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def signature_checker(algorithm: Algorithm, pub: PublicKey) -> Callable[[bytes, bytes], bool]:
    """``check(data, signature)``: :func:`verify_signature` for one key, with the per-call
    work (the algorithm's table entry, the type checks, the hash object) done once: a zone
    verified in full makes a million calls."""
    ai = info(algorithm)
    if ai.family == "ecdsa":
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        verify = pub.verify
        scheme = ec.ECDSA(ai.hash())
        size = ai.signature_size

        def check(data: bytes, signature: bytes) -> bool:
            if len(signature) != size:
                return False
            try:
                verify(ecdsa_raw_to_der(signature), data, scheme)
            except InvalidSignature:
                return False
            return True

        return check

    def check_any(data: bytes, signature: bytes) -> bool:
        return verify_signature(algorithm, pub, data, signature)

    return check_any


def sign_with_private_key(algorithm: Algorithm, key: PrivateKey, data: bytes) -> bytes:
    """Software signature in DNSSEC wire form. ECDSA is deterministic (RFC 6979)."""
    ai = info(algorithm)
    if ai.family == "rsa":
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, padding.PKCS1v15(), ai.hash())
    if ai.family == "ecdsa":
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        der = key.sign(data, ec.ECDSA(ai.hash(), deterministic_signing=True))
        return ecdsa_der_to_raw(der, algorithm)
    assert isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey))
    return key.sign(data)


def generate_private_key(algorithm: Algorithm, bits: int | None = None) -> PrivateKey:
    from signer.algorithms import check_key_size

    ai = info(algorithm)
    size = bits or ai.default_bits
    check_key_size(algorithm, size)
    if ai.family == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if ai.family == "ecdsa":
        return ec.generate_private_key(_CURVES[algorithm])
    if algorithm == Algorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ed448.Ed448PrivateKey.generate()
