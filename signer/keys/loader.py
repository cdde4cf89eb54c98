"""One way to open a signing key from a spec: a PKCS#11 URI or a key file.

``pkcs11:...`` opens the key on its token (:mod:`signer.keys.pkcs11`); anything else is a
PEM/PKCS#8 or BIND ``K*.private`` file (:mod:`signer.keys.soft`, development and tests only,
with a warning on stderr, printed once per process).

Worker processes: call ``open_signing_key(key.spec, pin_source)`` in the worker (after the
fork or in a spawned process), never pass a :class:`~signer.keys.pkcs11.Pkcs11Key` itself.
The PKCS#11 module is (re-)initialised in the worker on first use. Use
``pin_source.resolved(label)`` in the parent so that a prompted PIN is asked only once.
"""

from __future__ import annotations

import sys

from signer.keys.base import SigningKey
from signer.keys.soft import SOFT_KEY_WARNING, load_key_file
from signer.keys.uri import is_pkcs11_uri, parse_pkcs11_uri
from signer.pin import PinSource

_warned = False


def warn_soft_key() -> None:
    """Print the software-key warning to stderr once per process."""
    global _warned
    if not _warned:
        _warned = True
        print(SOFT_KEY_WARNING, file=sys.stderr)


def open_signing_key(
    spec: str,
    pin_source: PinSource | None = None,
    *,
    flags: int | None = None,
    warn: bool = True,
) -> SigningKey:
    """Open the key ``spec`` names; ``flags`` overrides the DNSKEY flags (e.g. 257, 385).

    ``warn=False`` suppresses the software-key warning (for worker processes whose parent
    has printed it already).
    """
    if is_pkcs11_uri(spec):
        from signer.keys.pkcs11 import Pkcs11Key, Pkcs11Token

        uri = parse_pkcs11_uri(spec)
        token = Pkcs11Token(uri, pin_source)
        try:
            key = token.find(label=uri.object, id=uri.id, flags=flags)
        except BaseException:
            token.close()
            raise
        return Pkcs11Key(
            token,
            key._private,
            key.dnskey,
            key.label,
            key.id,
            on_token_hash=key.on_token_hash,
            owns_token=True,
        )
    soft = load_key_file(spec, flags=flags)
    if warn:
        warn_soft_key()
    return soft


__all__ = ["open_signing_key", "warn_soft_key"]
