"""DNSSEC algorithms we support and their parameters (RFC 8624 recommended set)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes


class Algorithm(enum.IntEnum):
    RSASHA256 = 8
    RSASHA512 = 10
    ECDSAP256SHA256 = 13
    ECDSAP384SHA384 = 14
    ED25519 = 15
    ED448 = 16

    @classmethod
    def parse(cls, value: str | int) -> Algorithm:
        """Accept a number or a mnemonic (case-insensitive, '-' and '_' ignored)."""
        from signer.errors import InputError

        if isinstance(value, int) or str(value).isdigit():
            try:
                return cls(int(value))
            except ValueError:
                raise InputError(
                    f"unsupported DNSSEC algorithm {value} (supported: {supported_list()})"
                ) from None
        key = str(value).upper().replace("-", "").replace("_", "")
        for alg in cls:
            if alg.name == key:
                return alg
        raise InputError(f"unsupported DNSSEC algorithm {value!r} (supported: {supported_list()})")


def supported_list() -> str:
    return ", ".join(f"{a.value} {a.name}" for a in Algorithm)


@dataclass(frozen=True)
class AlgorithmInfo:
    algorithm: Algorithm
    family: str  # "rsa", "ecdsa", "eddsa"
    hash_name: str | None  # host-side digest for RSA/ECDSA; None for EdDSA
    curve: str | None  # "P-256", "P-384", "Ed25519", "Ed448"
    default_bits: int
    allowed_bits: tuple[int, int]  # inclusive range for RSA; fixed for the others
    signature_size: int | None  # fixed size, None for RSA (= modulus size)

    def hash(self) -> hashes.HashAlgorithm:
        if self.hash_name == "sha256":
            return hashes.SHA256()
        if self.hash_name == "sha384":
            return hashes.SHA384()
        if self.hash_name == "sha512":
            return hashes.SHA512()
        raise ValueError(f"{self.algorithm.name} has no host-side hash")


INFO: dict[Algorithm, AlgorithmInfo] = {
    Algorithm.RSASHA256: AlgorithmInfo(
        Algorithm.RSASHA256, "rsa", "sha256", None, 2048, (1024, 4096), None
    ),
    Algorithm.RSASHA512: AlgorithmInfo(
        Algorithm.RSASHA512, "rsa", "sha512", None, 2048, (1024, 4096), None
    ),
    Algorithm.ECDSAP256SHA256: AlgorithmInfo(
        Algorithm.ECDSAP256SHA256, "ecdsa", "sha256", "P-256", 256, (256, 256), 64
    ),
    Algorithm.ECDSAP384SHA384: AlgorithmInfo(
        Algorithm.ECDSAP384SHA384, "ecdsa", "sha384", "P-384", 384, (384, 384), 96
    ),
    Algorithm.ED25519: AlgorithmInfo(
        Algorithm.ED25519, "eddsa", None, "Ed25519", 256, (256, 256), 64
    ),
    Algorithm.ED448: AlgorithmInfo(Algorithm.ED448, "eddsa", None, "Ed448", 456, (456, 456), 114),
}


def info(algorithm: Algorithm | int) -> AlgorithmInfo:
    from signer.errors import InputError

    try:
        return INFO[Algorithm(int(algorithm))]
    except (ValueError, KeyError):
        raise InputError(
            f"unsupported DNSSEC algorithm {int(algorithm)} (supported: {supported_list()})"
        ) from None


def check_key_size(algorithm: Algorithm, bits: int) -> None:
    """Refuse a size the algorithm does not allow (exit 2)."""
    from signer.errors import InputError

    lo, hi = INFO[algorithm].allowed_bits
    if not lo <= bits <= hi:
        if lo == hi:
            raise InputError(f"{algorithm.name} keys are {lo} bits; {bits} is not possible")
        raise InputError(f"{algorithm.name} key size {bits} is outside {lo}..{hi} bits")
