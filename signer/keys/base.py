"""The key interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from signer.algorithms import Algorithm
from signer.crypto import PublicKey, verify_signature
from signer.dnskey import DnsKey
from signer.errors import TokenError


class BadTokenSignature(TokenError):
    """A backend returned a signature that does not verify with its own public key."""


class SigningKey(ABC):
    """A DNSSEC signing key: its public DNSKEY and ``sign(data) -> signature``.

    ``sign`` returns the signature in DNSSEC wire form and has already verified it in
    software with the public key (a bad signature never leaves a backend).
    """

    @property
    @abstractmethod
    def dnskey(self) -> DnsKey: ...

    @property
    @abstractmethod
    def identity(self) -> str:
        """Where the key lives, for messages and transcripts (never a secret)."""

    @abstractmethod
    def _raw_sign(self, data: bytes) -> bytes: ...

    @property
    def algorithm(self) -> Algorithm:
        return self.dnskey.algorithm

    @property
    def verify_signatures(self) -> bool:
        """Whether :meth:`sign` re-verifies each signature (always true for tokens)."""
        return True

    def sign(self, data: bytes) -> bytes:
        sig = self._raw_sign(data)
        if self.verify_signatures:
            dk = self.dnskey
            if not verify_signature(dk.algorithm, self._public_key(), data, sig):
                raise BadTokenSignature(
                    f"{self.identity} returned a signature that does not verify with key "
                    f"{dk.key_tag} ({dk.algorithm.name}); refusing to use it"
                )
        return sig

    def _public_key(self) -> PublicKey:
        cached: PublicKey | None = getattr(self, "_pub_cache", None)
        if cached is None:
            cached = self.dnskey.public_key_object()
            self._pub_cache = cached
        return cached
