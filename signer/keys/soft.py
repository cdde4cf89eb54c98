"""Software keys: PEM/PKCS#8 and BIND ``K*.private`` files. For development and tests only.

Production keys live on tokens; the CLIs print a warning whenever a software key is used.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from signer.algorithms import INFO, Algorithm, info
from signer.crypto import (
    PrivateKey,
    ec_curve,
    generate_private_key,
    public_key_to_dnskey_bytes,
    sign_with_private_key,
)
from signer.dnskey import FLAG_SEP, FLAG_ZONE, DnsKey
from signer.errors import InputError
from signer.keys.base import SigningKey

SOFT_KEY_WARNING = (
    "warning: using a software key file (development and tests only; "
    "production keys belong on a token)"
)


class SoftKey(SigningKey):
    """A private key held in memory."""

    def __init__(self, private: PrivateKey, algorithm: Algorithm, flags: int, source: str) -> None:
        self._private = private
        self._dnskey = DnsKey(
            flags, algorithm, public_key_to_dnskey_bytes(algorithm, private.public_key())
        )
        self._source = source
        self._verify = False

    @property
    def dnskey(self) -> DnsKey:
        return self._dnskey

    @property
    def identity(self) -> str:
        return f"software key {self._source}"

    @property
    def verify_signatures(self) -> bool:
        # Software signatures come from pyca/cryptography; re-verifying them doubles the cost
        # of the signer's hot path. Opt in with ``SoftKey.enable_verification()``.
        return self._verify

    def enable_verification(self) -> SoftKey:
        self._verify = True
        return self

    def _raw_sign(self, data: bytes) -> bytes:
        return sign_with_private_key(self._dnskey.algorithm, self._private, data)

    @property
    def private_key(self) -> PrivateKey:
        return self._private

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def generate(
        cls, algorithm: Algorithm, *, ksk: bool, bits: int | None = None, source: str = "generated"
    ) -> SoftKey:
        flags = FLAG_ZONE | (FLAG_SEP if ksk else 0)
        return cls(generate_private_key(algorithm, bits), algorithm, flags, source)


def _guess_algorithm(private: PrivateKey) -> Algorithm:
    if isinstance(private, rsa.RSAPrivateKey):
        return Algorithm.RSASHA256
    if isinstance(private, ec.EllipticCurvePrivateKey):
        if private.curve.name == "secp256r1":
            return Algorithm.ECDSAP256SHA256
        if private.curve.name == "secp384r1":
            return Algorithm.ECDSAP384SHA384
        raise InputError(f"unsupported elliptic curve {private.curve.name}")
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return Algorithm.ED25519
    if isinstance(private, ed448.Ed448PrivateKey):
        return Algorithm.ED448
    raise InputError("unsupported private key type")


def load_pem(
    path: str | os.PathLike[str],
    *,
    flags: int = FLAG_ZONE,
    algorithm: Algorithm | None = None,
    password: bytes | None = None,
) -> SoftKey:
    """Load a PEM (PKCS#8 or traditional) private key; RSA defaults to RSASHA256."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read key file: {exc.strerror}", path=str(p)) from None
    try:
        private = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not a valid PEM private key ({first})", path=str(p)) from None
    if not isinstance(
        private,
        (
            rsa.RSAPrivateKey,
            ec.EllipticCurvePrivateKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey,
        ),
    ):
        raise InputError("unsupported private key type", path=str(p))
    alg = algorithm or _guess_algorithm(private)
    if INFO[alg].family == "rsa" and not isinstance(private, rsa.RSAPrivateKey):
        raise InputError(f"algorithm {alg.name} needs an RSA key", path=str(p))
    key = SoftKey(private, alg, flags, str(p))
    return key


def _b64int(value: str) -> int:
    return int.from_bytes(base64.b64decode(value), "big")


def load_bind_private(path: str | os.PathLike[str]) -> SoftKey:
    """Load a BIND ``K<zone>+<alg>+<tag>.private`` file; flags come from the ``.key`` beside it."""
    p = Path(path)
    if p.suffix == ".key":
        p = p.with_suffix(".private")
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read key file: {exc.strerror}", path=str(p)) from None
    except UnicodeDecodeError:
        raise InputError("not a BIND private key file (not text)", path=str(p)) from None
    fields: dict[str, str] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if ":" not in line:
            raise InputError(
                "expected 'Name: value' in BIND private key file", path=str(p), line=no
            )
        k, v = line.split(":", 1)
        fields[k.strip()] = v.strip()
    if not fields.get("Private-key-format", "").startswith("v1."):
        raise InputError("not a BIND private key file (no Private-key-format: v1.x)", path=str(p))
    try:
        alg = Algorithm.parse(fields["Algorithm"].split()[0])
    except KeyError:
        raise InputError("BIND private key file has no Algorithm field", path=str(p)) from None
    ai = info(alg)
    private: PrivateKey
    try:
        if ai.family == "rsa":
            n = _b64int(fields["Modulus"])
            e = _b64int(fields["PublicExponent"])
            private = rsa.RSAPrivateNumbers(
                p=_b64int(fields["Prime1"]),
                q=_b64int(fields["Prime2"]),
                d=_b64int(fields["PrivateExponent"]),
                dmp1=_b64int(fields["Exponent1"]),
                dmq1=_b64int(fields["Exponent2"]),
                iqmp=_b64int(fields["Coefficient"]),
                public_numbers=rsa.RSAPublicNumbers(e, n),
            ).private_key()
        elif ai.family == "ecdsa":
            private = ec.derive_private_key(_b64int(fields["PrivateKey"]), ec_curve(alg))
        elif alg == Algorithm.ED25519:
            private = ed25519.Ed25519PrivateKey.from_private_bytes(
                base64.b64decode(fields["PrivateKey"])
            )
        else:
            private = ed448.Ed448PrivateKey.from_private_bytes(
                base64.b64decode(fields["PrivateKey"])
            )
    except KeyError as exc:
        raise InputError(f"BIND private key file lacks field {exc.args[0]}", path=str(p)) from None
    except ValueError as exc:
        raise InputError(f"invalid key material: {exc}", path=str(p)) from None
    flags = FLAG_ZONE
    keyfile = p.with_suffix(".key")
    if keyfile.exists():
        for line in keyfile.read_text().splitlines():
            if line.startswith(";") or "DNSKEY" not in line:
                continue
            rdata = line.split("DNSKEY", 1)[1].replace("(", " ").split()
            try:
                flags = int(rdata[0])
            except (IndexError, ValueError):
                raise InputError("no DNSKEY flags in the key file", path=str(keyfile)) from None
            break
    return SoftKey(private, alg, flags, str(p))


def load_key_file(path: str | os.PathLike[str], *, flags: int | None = None) -> SoftKey:
    """Load either a PEM file or a BIND key file, by its content."""
    p = Path(path)
    try:
        head = p.read_bytes()[:64]
    except OSError as exc:
        raise InputError(f"cannot read key file: {exc.strerror}", path=str(p)) from None
    if head.startswith(b"Private-key-format") or p.suffix in (".private", ".key"):
        key = load_bind_private(p)
        if flags is not None and flags != key.dnskey.flags:
            key = SoftKey(key.private_key, key.dnskey.algorithm, flags, str(p))
        return key
    return load_pem(p, flags=FLAG_ZONE if flags is None else flags)
