"""The signature policy a request or response *declares* about itself (root XML style).

The root zone's KSR/SKR XML carries a ``RequestPolicy`` (the ZSK operator's parameters) and a
``ResponsePolicy`` (the KSK operator's and the ZSK operator's). They are data, not our policy:
the KSK side compares them against its operator ranges. Durations are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from signer.algorithms import Algorithm


@dataclass(frozen=True)
class AlgorithmPolicy:
    """One ``SignatureAlgorithm`` element: the algorithm and its key parameters."""

    algorithm: Algorithm
    bits: int  # RSA modulus size, or the curve size for ECDSA/EdDSA
    exponent: int | None = None  # RSA public exponent


@dataclass(frozen=True)
class SignaturePolicy:
    """A ``KSK`` or ``ZSK`` element of a RequestPolicy/ResponsePolicy."""

    publish_safety: int
    retire_safety: int
    max_signature_validity: int
    min_signature_validity: int
    max_validity_overlap: int
    min_validity_overlap: int
    algorithms: tuple[AlgorithmPolicy, ...]


@dataclass(frozen=True)
class DeclaredPolicy:
    """The policy block of a root KSR (``zsk`` only) or SKR (``ksk`` and ``zsk``)."""

    ksk: SignaturePolicy | None = None
    zsk: SignaturePolicy | None = None
