"""dnssec-ceremony's DNSSEC engine: records, keys, bundles and the zone signer.

This package never imports :mod:`ceremony` (the signer host must not need ceremony code).
"""

__version__ = "0.1.0"
