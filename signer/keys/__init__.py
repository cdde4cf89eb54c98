"""Key backends: one small interface (:class:`signer.keys.base.SigningKey`), two backends.

* :mod:`signer.keys.pkcs11` -- keys on a PKCS#11 token (production and the SoftHSM lab);
* :mod:`signer.keys.soft` -- software keys from PEM/PKCS#8 or BIND ``K*.private`` files
  (development and tests only).
"""
