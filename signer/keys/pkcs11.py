"""Keys on a PKCS#11 token, through python-pkcs11.

Opening a token
    :class:`Pkcs11Token` opens the token an RFC 7512 URI names (``token``, ``serial``,
    ``manufacturer``, ``model``, ``slot-id``). The module is the URI's ``module-path``, else
    ``$DNSSEC_PKCS11_MODULE``, else the first SoftHSM2 module found in the usual places.
    The PIN comes from a :class:`signer.pin.PinSource`; a URI ``pin-source=file:`` is used
    only when no --pin-file/--pin-env was given.

Mechanisms (always explicit, never the library's defaults)
    portable mode (default) hashes on the host:

    * RSASHA256/RSASHA512: ``CKM_RSA_PKCS`` over a host-built DigestInfo (RFC 8017 9.2);
    * ECDSAP256SHA256/ECDSAP384SHA384: ``CKM_ECDSA`` over the host's SHA-256/SHA-384 digest;
      the token's r||s is normalised to the fixed width of RFC 6605 sect. 4;
    * ED25519/ED448: ``CKM_EDDSA`` over the whole message (pure EdDSA has no pre-hash).

    ``on_token_hash=True`` uses ``CKM_SHA256_RSA_PKCS``, ``CKM_SHA512_RSA_PKCS``,
    ``CKM_ECDSA_SHA256``, ``CKM_ECDSA_SHA384`` instead. A missing mechanism is a
    :class:`MechanismMissing` (exit 3) naming the token and the mechanism.

Generated keys
    CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false (unless asked),
    CKA_SIGN/CKA_VERIFY only (no decrypt, unwrap, derive), CKA_ID = 16 bytes from the token's
    RNG (C_GenerateRandom), CKA_LABEL = the label, which must not exist yet on the token.
    Edwards keys use CKA_EC_PARAMS = the RFC 8410 curve OID, falling back to the PKCS#11 3.0
    printable curve name (SoftHSM 2.6.1 accepts both).

The DNSKEY role (flags) and algorithm
    A token key does not know whether it is a KSK or a ZSK, nor (for RSA) which hash it is
    meant for. Next to every key pair we generate we store a public CKO_DATA object with the
    same CKA_LABEL, CKA_APPLICATION ``dnssec-ceremony/dnskey`` and as CKA_VALUE a small JSON
    document ``{"format": "dnssec-ceremony-dnskey/1", "id": "<CKA_ID hex>", "dnskey":
    "<flags> 3 <alg> <base64>"}``. :meth:`Pkcs11Token.find` takes flags and algorithm from it
    (after checking its public key equals the token's). Keys made by other tools have no such
    object: they open as ZSKs (flags 256; RSA as RSASHA256) unless the caller passes
    ``flags=``/``algorithm=``.

Processes and threads
    A session belongs to the process that opened it. After ``fork()`` a child must not use a
    parent's :class:`Pkcs11Key`: it re-opens the key with
    ``signer.keys.loader.open_signing_key(key.spec, pin_source)``, which re-initialises the
    module in the child (C_Finalize + C_Initialize, PKCS#11 v2.40 sect. 5.4) before opening a
    new session. Using a parent's key in a child raises :class:`TokenError`; pickling a key
    raises ``TypeError``. Pass ``pin_source.resolved(...)`` to workers so that an
    interactive PIN is asked once. Within a process, one token's session is used under a
    lock, so threads may share a key (they serialise on the token).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
import pkcs11.exceptions as p11e
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass

from signer.algorithms import INFO, Algorithm, check_key_size, info
from signer.crypto import rsa_dnskey_bytes
from signer.dnskey import FLAG_SEP, FLAG_ZONE, DnsKey
from signer.errors import CheckFailed, InputError, TokenError, TokenNotFound
from signer.keys.base import SigningKey
from signer.keys.uri import Pkcs11Uri, parse_pkcs11_uri
from signer.pin import PinSource

log = logging.getLogger("dnssec_ceremony.pkcs11")

MODULE_ENV = "DNSSEC_PKCS11_MODULE"
SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
METADATA_APPLICATION = "dnssec-ceremony/dnskey"
METADATA_FORMAT = "dnssec-ceremony-dnskey/1"
KEY_ID_BYTES = 16

# CKA_EC_PARAMS (DER) of the curves DNSSEC uses.
EC_PARAMS: dict[Algorithm, tuple[bytes, ...]] = {
    Algorithm.ECDSAP256SHA256: (bytes.fromhex("06082a8648ce3d030107"),),  # prime256v1
    Algorithm.ECDSAP384SHA384: (bytes.fromhex("06052b81040022"),),  # secp384r1
    # RFC 8410 OID first, then the PKCS#11 3.0 printable curve name.
    Algorithm.ED25519: (bytes.fromhex("06032b6570"), b"\x13\x0cedwards25519"),
    Algorithm.ED448: (bytes.fromhex("06032b6571"), b"\x13\x0aedwards448"),
}
# DER DigestInfo prefixes, RFC 8017 sect. 9.2 note 1.
DIGEST_INFO: dict[str, bytes] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


@dataclass(frozen=True)
class MechanismPlan:
    """The PKCS#11 mechanisms one DNSSEC algorithm needs."""

    key_type: KeyType
    generate: Mechanism
    host_hash: Mechanism | None  # portable mode (None for EdDSA: the token gets the message)
    on_token: Mechanism  # the token hashes (or, for EdDSA, does the whole algorithm)


PLANS: dict[Algorithm, MechanismPlan] = {
    Algorithm.RSASHA256: MechanismPlan(
        KeyType.RSA, Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.RSA_PKCS, Mechanism.SHA256_RSA_PKCS
    ),
    Algorithm.RSASHA512: MechanismPlan(
        KeyType.RSA, Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.RSA_PKCS, Mechanism.SHA512_RSA_PKCS
    ),
    Algorithm.ECDSAP256SHA256: MechanismPlan(
        KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA, Mechanism.ECDSA_SHA256
    ),
    Algorithm.ECDSAP384SHA384: MechanismPlan(
        KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA, Mechanism.ECDSA_SHA384
    ),
    Algorithm.ED25519: MechanismPlan(
        KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN, None, Mechanism.EDDSA
    ),
    Algorithm.ED448: MechanismPlan(
        KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN, None, Mechanism.EDDSA
    ),
}


def mech_name(m: Mechanism | int) -> str:
    try:
        return "CKM_" + Mechanism(int(m)).name
    except ValueError:
        return f"CKM_0x{int(m):08X}"


# -- errors ------------------------------------------------------------------------------------
class ModuleNotFound(TokenError):
    """The PKCS#11 module (shared library) is missing or cannot be loaded."""


class PinRefused(TokenError):
    """The token refused the PIN (incorrect, locked, wrong length)."""


class KeyNotFound(TokenError):
    """No key with that label/CKA_ID on the token."""


class MechanismMissing(TokenError):
    """The token lacks a mechanism the algorithm needs."""


class KeyPairMismatch(TokenError):
    """The public and private objects (or the DNSKEY record object) do not belong together."""


class LabelExists(CheckFailed):
    """KEY-LABEL-UNIQUE: refuse to generate a key under a label the token already uses."""

    requirement = "KEY-LABEL-UNIQUE"


class DuplicateKey(CheckFailed):
    """KEY-FIND-UNIQUE: a label/CKA_ID selects more than one key; refuse to guess."""

    requirement = "KEY-FIND-UNIQUE"


def _ckr(exc: BaseException) -> str:
    name = type(exc).__name__
    if name in ("PKCS11Error", "RuntimeError") and str(exc):
        return str(exc).splitlines()[0]
    return "CKR_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


@contextmanager
def _p11(where: str, what: str) -> Iterator[None]:
    """Turn python-pkcs11 exceptions into one-line TokenErrors naming the token."""
    try:
        yield
    except (p11e.PinIncorrect, p11e.PinInvalid):
        raise PinRefused(f"{where}: PIN incorrect") from None
    except p11e.PinLocked:
        raise PinRefused(
            f"{where}: PIN locked (too many wrong PINs); the SO must reset it"
        ) from None
    except p11e.PinLenRange:
        raise PinRefused(f"{where}: PIN length out of the token's range") from None
    except p11e.PinExpired:
        raise PinRefused(f"{where}: PIN expired; change it on the token first") from None
    except p11e.UserPinNotInitialized:
        raise PinRefused(f"{where}: user PIN not initialised on this token") from None
    except p11e.MechanismInvalid:
        raise MechanismMissing(f"{where}: {what}: mechanism not supported by the token") from None
    except (p11e.PKCS11Error, NotImplementedError) as exc:
        raise TokenError(f"{where}: {what} failed ({_ckr(exc)})") from None


# -- module loading ------------------------------------------------------------------------------
# module path -> (pid that initialised it, $SOFTHSM2_CONF at that time, pkcs11.lib)
_LIBS: dict[str, tuple[int, str | None, Any]] = {}
_LIBS_LOCK = threading.Lock()
# SoftHSM2 reads its configuration (the token directory) in C_Initialize only: a process that
# switches labs (the tests do) must re-initialise the module to see the new tokens.
CONF_ENV = "SOFTHSM2_CONF"


def resolve_module(uri: Pkcs11Uri | None = None) -> str:
    """The module to load: the URI's module-path, $DNSSEC_PKCS11_MODULE, or SoftHSM2."""
    if uri is not None and uri.module_path:
        path, origin = uri.module_path, "module-path in the URI"
    elif os.environ.get(MODULE_ENV):
        path, origin = os.environ[MODULE_ENV], f"${MODULE_ENV}"
    else:
        for cand in SOFTHSM_MODULES:
            if Path(cand).exists():
                return cand
        raise ModuleNotFound(
            f"no PKCS#11 module: give module-path= in the URI or set {MODULE_ENV} "
            f"(SoftHSM2 not found in {', '.join(SOFTHSM_MODULES)})"
        )
    if not Path(path).is_file():
        raise ModuleNotFound(f"PKCS#11 module {path} ({origin}) does not exist")
    return path


def load_module(path: str) -> Any:
    """The initialised pkcs11.lib for ``path``.

    Re-initialised (C_Finalize + C_Initialize) once in a forked child, as PKCS#11 requires,
    and when ``$SOFTHSM2_CONF`` changed since the last initialisation.
    """
    pid = os.getpid()
    conf = os.environ.get(CONF_ENV)
    with _LIBS_LOCK:
        entry = _LIBS.get(path)
        if entry is not None:
            init_pid, init_conf, lib = entry
            if init_pid != pid or init_conf != conf:
                why = "after fork" if init_pid != pid else f"after ${CONF_ENV} changed"
                with _p11(f"PKCS#11 module {path}", f"re-initialising {why}"):
                    lib.reinitialize()
                _LIBS[path] = (pid, conf, lib)
            return lib
        try:
            lib = pkcs11.lib(path)
        except (p11e.PKCS11Error, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModuleNotFound(f"cannot load PKCS#11 module {path}: {first}") from None
        _LIBS[path] = (pid, conf, lib)
        return lib


# -- token identity --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenIdentity:
    label: str
    manufacturer: str
    model: str
    serial: str
    firmware: str
    hardware: str
    module: str

    def describe(self) -> str:
        return (
            f"token '{self.label}' ({self.manufacturer} {self.model}, serial {self.serial}, "
            f"firmware {self.firmware})"
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "label": self.label,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
            "hardware": self.hardware,
            "module": self.module,
        }


def _version(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def _serial_text(serial: bytes | str) -> str:
    if isinstance(serial, bytes):
        return serial.decode("ascii", "replace").strip()
    return serial.strip()


# -- key metadata ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyInfo:
    """One key on a token, as ``key list`` shows it."""

    label: str
    id: bytes
    dnskey: DnsKey | None
    has_private: bool
    has_public: bool
    sensitive: bool | None
    extractable: bool | None
    always_sensitive: bool | None
    never_extractable: bool | None
    local: bool | None
    role_recorded: bool  # flags/algorithm come from our DNSKEY record object
    problem: str | None = None

    @property
    def algorithm(self) -> Algorithm | None:
        return None if self.dnskey is None else self.dnskey.algorithm

    @property
    def bits(self) -> int | None:
        return None if self.dnskey is None else self.dnskey.bits

    @property
    def key_tag(self) -> int | None:
        return None if self.dnskey is None else self.dnskey.key_tag


def _bool(obj: Any, attr: Attribute) -> bool | None:
    try:
        return bool(obj[attr])
    except (p11e.PKCS11Error, NotImplementedError, KeyError):
        return None


def _der_octet_string(data: bytes) -> bytes | None:
    if len(data) < 2 or data[0] != 0x04:
        return None
    n = data[1]
    off = 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 2 or len(data) < 2 + k:
            return None
        n = int.from_bytes(data[2 : 2 + k], "big")
        off = 2 + k
    if len(data) != off + n:
        return None
    return data[off:]


def _ec_point(raw: bytes, algorithm: Algorithm) -> bytes:
    """CKA_EC_POINT (DER OCTET STRING, or raw on some tokens) -> DNSKEY public key bytes."""
    ai = INFO[algorithm]
    if ai.family == "ecdsa":
        size = ai.default_bits // 8
        point = raw if (len(raw) == 1 + 2 * size and raw[0] == 4) else _der_octet_string(raw)
        if point is None or len(point) != 1 + 2 * size or point[0] != 4:
            raise TokenError(f"unexpected CKA_EC_POINT for {algorithm.name} ({len(raw)} bytes)")
        return point[1:]
    size = 32 if algorithm == Algorithm.ED25519 else 57
    if len(raw) == size:
        return raw
    point = _der_octet_string(raw)
    if point is None or len(point) != size:
        raise TokenError(f"unexpected CKA_EC_POINT for {algorithm.name} ({len(raw)} bytes)")
    return point


def _algorithm_of(key_type: Any, ec_params: bytes | None) -> Algorithm | None:
    if key_type == KeyType.RSA:
        return Algorithm.RSASHA256
    if ec_params is None:
        return None
    for alg, params in EC_PARAMS.items():
        if ec_params in params:
            return alg
    return None


def _public_dnskey_bytes(pub: Any, algorithm: Algorithm) -> bytes:
    if INFO[algorithm].family == "rsa":
        n = int.from_bytes(pub[Attribute.MODULUS], "big")
        e = int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big")
        return rsa_dnskey_bytes(e, n)
    return _ec_point(bytes(pub[Attribute.EC_POINT]), algorithm)


def _fixed_ecdsa(sig: bytes, algorithm: Algorithm) -> bytes:
    """Token ECDSA signature -> r||s, each left-padded to the curve size (RFC 6605 sect. 4)."""
    size = INFO[algorithm].default_bits // 8
    if len(sig) == 2 * size:
        return sig
    if sig[:1] == b"\x30":
        try:
            r, s = decode_dss_signature(sig)
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        except (ValueError, OverflowError):
            pass
    if len(sig) % 2 == 0 and len(sig) < 2 * size:
        half = len(sig) // 2
        return sig[:half].rjust(size, b"\x00") + sig[half:].rjust(size, b"\x00")
    return sig  # wrong size: the software re-verification refuses it


def _digest(algorithm: Algorithm, data: bytes) -> bytes:
    h = hashes.Hash(info(algorithm).hash())
    h.update(data)
    return h.finalize()


# -- login state -----------------------------------------------------------------------------------
# A token's login state is shared by every session of a process, so a second session on a
# logged-in token opens without the token checking its PIN. To refuse a wrong PIN there too,
# we keep, per (process, module, token), a keyed hash of the PIN that logged in -- never the PIN
# itself; the key is random per process and never leaves it.
_LOGINS: dict[tuple[int, str, str, str], bytes] = {}
_PIN_KEY = os.urandom(32)


def _pin_digest(pin: str) -> bytes:
    return hmac.new(_PIN_KEY, pin.encode("utf-8"), hashlib.sha256).digest()


# -- the token -------------------------------------------------------------------------------------
class Pkcs11Token:
    """An open, logged-in session on one token. Use as a context manager or ``close()``."""

    def __init__(
        self,
        uri: Pkcs11Uri | str,
        pin_source: PinSource | None = None,
        *,
        login: bool = True,
        rw: bool = False,
    ) -> None:
        self.uri = parse_pkcs11_uri(uri) if isinstance(uri, str) else uri
        self.module_path = resolve_module(self.uri)
        self._lib = load_module(self.module_path)
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._rw = rw
        self._session: Any = None
        self._token = self._select_token()
        tok = self._token
        self.identity = TokenIdentity(
            label=tok.label.strip(),
            manufacturer=tok.manufacturer_id.strip(),
            model=tok.model.strip(),
            serial=_serial_text(tok.serial),
            firmware=_version(tok.firmware_version),
            hardware=_version(tok.hardware_version),
            module=self.module_path,
        )
        where = self.identity.describe()
        source = (pin_source or PinSource()).with_fallback_file(self.uri.pin_source)
        with _p11(where, "opening a session"):
            if login:
                pin = source.get(f"token '{self.identity.label}'")
                login_key = (os.getpid(), self.module_path, self.identity.serial, where)
                try:
                    self._session = tok.open(rw=rw, user_pin=pin)
                    _LOGINS[login_key] = _pin_digest(pin)
                except p11e.UserAlreadyLoggedIn:
                    # Login state is per application and token (PKCS#11 v2.40 sect. 5.6):
                    # another session of this process is logged in, so this one is too, and
                    # the token never sees this PIN. Accept it only if it is the PIN that
                    # logged in; otherwise it is refused as the token would have refused it.
                    known = _LOGINS.get(login_key)
                    if known is None or not hmac.compare_digest(known, _pin_digest(pin)):
                        log.debug("%s: logged in already, with another PIN", where)
                        raise PinRefused(f"{where}: PIN incorrect") from None
                    self._session = tok.open(rw=rw)
            else:
                self._session = tok.open(rw=rw)
        log.info("opened %s (%s)", where, "login" if login else "no login")

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a Pkcs11Token cannot be pickled; open the token again in the worker")

    # -- plumbing --------------------------------------------------------------------------
    def _select_token(self) -> Any:
        u = self.uri
        where = f"PKCS#11 module {self.module_path}"
        with _p11(where, "listing slots"):
            slots = self._lib.get_slots(token_present=True)
        present: list[str] = []
        found: list[Any] = []
        for slot in slots:
            try:
                tok = slot.get_token()
            except (p11e.TokenNotPresent, p11e.TokenNotRecognised):
                continue
            if not tok.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
                continue  # SoftHSM's free slot, a blank card
            label = tok.label.strip()
            present.append(label)
            if u.token is not None and label != u.token:
                continue
            if u.serial is not None and _serial_text(tok.serial) != u.serial:
                continue
            if u.manufacturer is not None and tok.manufacturer_id.strip() != u.manufacturer:
                continue
            if u.model is not None and tok.model.strip() != u.model:
                continue
            if u.slot_id is not None and slot.slot_id != u.slot_id:
                continue
            found.append(tok)
        want = u.token_only().to_text()
        if not found:
            have = ", ".join(f"'{p}'" for p in sorted(present)) or "none"
            raise TokenNotFound(f"no token matches {want} (tokens present: {have})")
        if len(found) > 1:
            raise TokenNotFound(
                f"{len(found)} tokens match {want}; add serial= to the URI to pick one"
            )
        return found[0]

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise TokenError(
                f"{self.identity.describe()}: session opened in another process; re-open the "
                "key with open_signing_key(key.spec, pin_source) in this process"
            )

    @property
    def session(self) -> Any:
        self._check_process()
        if self._session is None:
            raise TokenError(f"{self.identity.describe()}: session is closed")
        return self._session

    @contextmanager
    def calls(self, what: str) -> Iterator[Any]:
        """Serialise use of the session; map PKCS#11 errors to TokenErrors naming the token."""
        with self._lock, _p11(self.identity.describe(), what):
            yield self.session

    def mechanisms(self) -> set[int]:
        with self.calls("listing mechanisms"):
            return {int(m) for m in self._token.slot.get_mechanisms()}

    def require_mechanism(self, mech: Mechanism, purpose: str) -> None:
        if int(mech) not in self.mechanisms():
            raise MechanismMissing(
                f"{self.identity.describe()} lacks {mech_name(mech)}, needed for {purpose}"
            )

    def close(self) -> None:
        if self._session is not None and os.getpid() == self._pid:
            with self._lock, suppress(p11e.PKCS11Error, NotImplementedError):
                self._session.close()
        self._session = None

    def __enter__(self) -> Pkcs11Token:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Pkcs11Token {self.identity.describe()}>"

    # -- objects ---------------------------------------------------------------------------
    def _objects(self, attrs: dict[Attribute, Any]) -> list[Any]:
        with self.calls("searching objects") as s:
            return list(s.get_objects(attrs))

    def _metadata(self, label: str) -> list[tuple[Any, dict[str, Any]]]:
        out: list[tuple[Any, dict[str, Any]]] = []
        for obj in self._objects(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.APPLICATION: METADATA_APPLICATION,
                Attribute.LABEL: label,
            }
        ):
            try:
                doc = json.loads(bytes(obj[Attribute.VALUE]).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(doc, dict) and doc.get("format") == METADATA_FORMAT:
                out.append((obj, doc))
        return out

    def _dnskey_from_objects(
        self,
        label: str,
        key_id: bytes,
        pub: Any,
        priv: Any | None,
        *,
        algorithm: Algorithm | None = None,
        flags: int | None = None,
    ) -> tuple[DnsKey, bool]:
        """The DNSKEY of a key pair; True when flags/algorithm came from our record object."""
        where = f"{self.identity.describe()} key '{label}'"
        with self.calls("reading the public key"):
            key_type = pub[Attribute.KEY_TYPE]
            ec_params = None if key_type == KeyType.RSA else bytes(pub[Attribute.EC_PARAMS])
        guessed = _algorithm_of(key_type, ec_params)
        if guessed is None:
            raise KeyNotFound(
                f"{where}: key type {key_type!r} is not a DNSSEC algorithm we support"
            )
        recorded: DnsKey | None = None
        for _obj, doc in self._metadata(label):
            if doc.get("id") == key_id.hex():
                try:
                    recorded = DnsKey.from_text(str(doc["dnskey"]))
                except (InputError, KeyError):
                    raise KeyPairMismatch(f"{where}: DNSKEY record object is unreadable") from None
                break
        alg = algorithm or (recorded.algorithm if recorded else guessed)
        if INFO[alg].family != INFO[guessed].family or (
            INFO[alg].family != "rsa" and alg != guessed
        ):
            raise KeyPairMismatch(f"{where}: the token key is {guessed.name}-type, not {alg.name}")
        with self.calls("reading the public key"):
            public = _public_dnskey_bytes(pub, alg)
            if priv is not None and key_type == KeyType.RSA:
                same = bytes(priv[Attribute.MODULUS]) == bytes(pub[Attribute.MODULUS])
            elif priv is not None:
                # Compare curves, not encodings: SoftHSM 2.6 stores an OID on the public
                # and the printable name on the private Edwards key.
                same = _algorithm_of(key_type, bytes(priv[Attribute.EC_PARAMS])) == guessed
            else:
                same = True
        if not same or (priv is not None and priv[Attribute.KEY_TYPE] != key_type):
            raise KeyPairMismatch(f"{where}: public and private key objects do not match")
        if recorded is not None and recorded.public_key != public:
            raise KeyPairMismatch(
                f"{where}: DNSKEY record object holds another public key than the token's"
            )
        f = flags if flags is not None else (recorded.flags if recorded else FLAG_ZONE)
        return DnsKey(f, alg, public), recorded is not None

    # -- operations ------------------------------------------------------------------------
    def generate(
        self,
        label: str,
        algorithm: Algorithm | str | int,
        bits: int | None = None,
        ksk: bool = False,
        extractable: bool = False,
    ) -> Pkcs11Key:
        """Generate a key pair on the token; refuse an existing label (KEY-LABEL-UNIQUE)."""
        alg = algorithm if isinstance(algorithm, Algorithm) else Algorithm.parse(algorithm)
        ai = INFO[alg]
        size = ai.default_bits if bits is None else bits
        check_key_size(alg, size)
        if not label or not label.strip() or label != label.strip():
            raise InputError(f"key label {label!r} must be non-empty without outer spaces")
        where = self.identity.describe()
        if not self._rw:
            raise TokenError(f"{where}: opened read-only; cannot generate keys")
        plan = PLANS[alg]
        have = self.mechanisms()
        for mech, purpose in ((plan.generate, f"generating {alg.name} keys"),):
            if int(mech) not in have:
                raise MechanismMissing(f"{where} lacks {mech_name(mech)}, needed for {purpose}")
        if int(plan.on_token) not in have and (
            plan.host_hash is None or int(plan.host_hash) not in have
        ):
            sign_mech = plan.host_hash if plan.host_hash is not None else plan.on_token
            raise MechanismMissing(
                f"{where} lacks {mech_name(sign_mech)}, needed for signing with {alg.name}"
            )
        with self.calls(f"reading {mech_name(plan.generate)} info"):
            mi = self._token.slot.get_mechanism_info(plan.generate)
        if ai.family == "rsa" and not mi.min_key_length <= size <= mi.max_key_length:
            raise TokenError(
                f"{where}: {mech_name(plan.generate)} supports {mi.min_key_length}.."
                f"{mi.max_key_length}-bit keys, not {size}"
            )
        if self._objects({Attribute.LABEL: label}):
            raise LabelExists(
                f"{where} already has objects labelled '{label}'; choose another label"
            )
        with self.calls("generating random CKA_ID (C_GenerateRandom)") as s:
            key_id = bytes(s.generate_random(KEY_ID_BYTES * 8))
        if len(key_id) != KEY_ID_BYTES or self._objects({Attribute.ID: key_id}):
            raise TokenError(f"{where}: C_GenerateRandom gave an unusable CKA_ID; retry")

        common: dict[Attribute, Any] = {
            Attribute.TOKEN: True,
            Attribute.LABEL: label,
            Attribute.ID: key_id,
            Attribute.KEY_TYPE: plan.key_type,
        }
        public_t: dict[Attribute, Any] = {
            **common,
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        private_t: dict[Attribute, Any] = {
            **common,
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: bool(extractable),
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        candidates: tuple[dict[Attribute, Any], ...]
        if ai.family == "rsa":
            candidates = (
                {Attribute.MODULUS_BITS: size, Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
            )
        else:
            candidates = tuple({Attribute.EC_PARAMS: p} for p in EC_PARAMS[alg])
        pub = priv = None
        last: BaseException | None = None
        for extra in candidates:
            try:
                with self._lock:
                    pub, priv = self.session.generate_keypair(
                        plan.key_type,
                        size if ai.family == "rsa" else None,
                        store=True,
                        capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                        mechanism=plan.generate,
                        public_template={**public_t, **extra},
                        private_template=private_t,
                    )
                break
            except (p11e.PKCS11Error, NotImplementedError) as exc:
                last = exc
                # Only a refused curve encoding is worth another try (e.g. CKR_CURVE_NOT_SUPPORTED,
                # which python-pkcs11 reports as a plain PKCS11Error).
                if (
                    not isinstance(exc, (p11e.AttributeValueInvalid, p11e.DomainParamsInvalid))
                    and type(exc) is not p11e.PKCS11Error
                ):
                    break
        if pub is None or priv is None:
            assert last is not None
            with _p11(
                where, f"generating a {alg.name} {size}-bit key with {mech_name(plan.generate)}"
            ):
                raise last
        flags = FLAG_ZONE | (FLAG_SEP if ksk else 0)
        try:
            dnskey, _ = self._dnskey_from_objects(
                label, key_id, pub, priv, algorithm=alg, flags=flags
            )
            doc = {"format": METADATA_FORMAT, "id": key_id.hex(), "dnskey": dnskey.rdata_text()}
            with self.calls("storing the DNSKEY record object") as s:
                s.create_object(
                    {
                        Attribute.CLASS: ObjectClass.DATA,
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: False,
                        Attribute.MODIFIABLE: False,
                        Attribute.LABEL: label,
                        Attribute.APPLICATION: METADATA_APPLICATION,
                        Attribute.VALUE: json.dumps(doc, sort_keys=True).encode("utf-8"),
                    }
                )
        except Exception:
            # Leave no half-made key behind.
            with self._lock:
                for obj in (priv, pub):
                    with suppress(p11e.PKCS11Error, NotImplementedError):
                        obj.destroy()
            raise
        log.info(
            "generated %s %s key '%s' id %s on %s",
            alg.name,
            "KSK" if ksk else "ZSK",
            label,
            key_id.hex(),
            where,
        )
        return Pkcs11Key(self, priv, dnskey, label, key_id)

    def find(
        self,
        label: str | None = None,
        id: bytes | None = None,
        *,
        algorithm: Algorithm | None = None,
        flags: int | None = None,
        on_token_hash: bool = False,
    ) -> Pkcs11Key:
        """The one key pair with this label and/or CKA_ID; refuse none or several."""
        where = self.identity.describe()
        if label is None and id is None:
            raise InputError("the key URI must name the key: object=LABEL and/or id=%XX...")
        sel: dict[Attribute, Any] = {}
        if label is not None:
            sel[Attribute.LABEL] = label
        if id is not None:
            sel[Attribute.ID] = id
        what = " ".join(
            p
            for p in (
                f"label '{label}'" if label is not None else "",
                f"id {id.hex()}" if id is not None else "",
            )
            if p
        )
        privs = self._objects({**sel, Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        if not privs:
            raise KeyNotFound(f"{where}: no private key with {what}")
        if len(privs) > 1:
            ids = ", ".join(sorted(bytes(p[Attribute.ID]).hex() or "(empty)" for p in privs))
            raise DuplicateKey(
                f"{where}: {len(privs)} private keys have {what} (CKA_IDs {ids}); "
                "add id= to the URI"
            )
        priv = privs[0]
        with self.calls("reading key attributes"):
            key_label = str(priv[Attribute.LABEL])
            key_id = bytes(priv[Attribute.ID])
        pubs = self._objects(
            {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.ID: key_id,
                Attribute.LABEL: key_label,
            }
        )
        if not pubs:
            raise KeyNotFound(f"{where}: private key {what} has no public key object")
        if len(pubs) > 1:
            raise DuplicateKey(f"{where}: {len(pubs)} public keys match {what}")
        dnskey, _ = self._dnskey_from_objects(
            key_label, key_id, pubs[0], priv, algorithm=algorithm, flags=flags
        )
        return Pkcs11Key(self, priv, dnskey, key_label, key_id, on_token_hash=on_token_hash)

    def list_keys(self) -> list[KeyInfo]:
        """Every key pair (and lone public/private key) on the token, by label."""
        privs = self._objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        pubs = self._objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY})
        groups: dict[tuple[str, bytes], dict[str, Any]] = {}
        with self.calls("reading key attributes"):
            for kind, objs in (("priv", privs), ("pub", pubs)):
                for o in objs:
                    k = (str(o[Attribute.LABEL]), bytes(o[Attribute.ID]))
                    groups.setdefault(k, {})[kind] = o
        out: list[KeyInfo] = []
        for (label, key_id), g in sorted(groups.items()):
            priv, pub = g.get("priv"), g.get("pub")
            dnskey: DnsKey | None = None
            recorded = False
            problem: str | None = None
            if pub is not None:
                try:
                    dnskey, recorded = self._dnskey_from_objects(label, key_id, pub, priv)
                except TokenError as exc:
                    problem = str(exc).split(": ", 1)[-1]
            else:
                problem = "no public key object"
            if priv is None:
                problem = problem or "no private key object"
            with self.calls("reading key attributes"):
                out.append(
                    KeyInfo(
                        label=label,
                        id=key_id,
                        dnskey=dnskey,
                        has_private=priv is not None,
                        has_public=pub is not None,
                        sensitive=None if priv is None else _bool(priv, Attribute.SENSITIVE),
                        extractable=None if priv is None else _bool(priv, Attribute.EXTRACTABLE),
                        always_sensitive=None
                        if priv is None
                        else _bool(priv, Attribute.ALWAYS_SENSITIVE),
                        never_extractable=None
                        if priv is None
                        else _bool(priv, Attribute.NEVER_EXTRACTABLE),
                        local=None if priv is None else _bool(priv, Attribute.LOCAL),
                        role_recorded=recorded,
                        problem=problem,
                    )
                )
        return out

    def key_uri(self, label: str, key_id: bytes) -> Pkcs11Uri:
        """A URI that names exactly this key on exactly this token."""
        return Pkcs11Uri(
            token=self.identity.label,
            serial=self.identity.serial,
            object=label,
            id=key_id,
            type="private",
            module_path=self.uri.module_path,
            pin_source=self.uri.pin_source,
        )

    def probe(self) -> dict[str, Any]:
        """Identity, and which DNSSEC algorithms the token can generate and sign with, how."""
        have = self.mechanisms()
        algs: list[dict[str, Any]] = []
        for alg, plan in PLANS.items():
            ai = INFO[alg]
            gen = int(plan.generate) in have
            sizes: list[int] | None = None
            if gen:
                with self.calls(f"reading {mech_name(plan.generate)} info"):
                    mi = self._token.slot.get_mechanism_info(plan.generate)
                sizes = [int(mi.min_key_length), int(mi.max_key_length)]
                if ai.family == "eddsa":
                    # Edwards curves share one mechanism; the size range says which fit.
                    gen = sizes[0] <= ai.default_bits <= sizes[1]
                elif ai.family == "ecdsa":
                    gen = sizes[0] <= ai.default_bits <= sizes[1]
            host = plan.host_hash is not None and int(plan.host_hash) in have
            on_token = int(plan.on_token) in have
            if ai.family == "eddsa":
                host = False
            modes: list[str] = []
            if host:
                assert plan.host_hash is not None
                modes.append(f"host-hash: {mech_name(plan.host_hash)}")
            if on_token:
                modes.append(
                    f"on-token: {mech_name(plan.on_token)}"
                    + (" (message to token; EdDSA has no pre-hash)" if ai.family == "eddsa" else "")
                )
            missing = [
                mech_name(m)
                for m in (plan.generate, plan.host_hash, plan.on_token)
                if m is not None and int(m) not in have
            ]
            algs.append(
                {
                    "algorithm": int(alg),
                    "name": alg.name,
                    "generate": gen,
                    "generate_mechanism": mech_name(plan.generate),
                    "key_sizes": sizes,
                    "sign_host_hash": mech_name(plan.host_hash)
                    if host and plan.host_hash
                    else None,
                    "sign_on_token": mech_name(plan.on_token) if on_token else None,
                    "usable": gen and (host or on_token),
                    "default_mode": "host-hash" if host else ("on-token" if on_token else None),
                    "modes": modes,
                    "missing": missing,
                }
            )
        lib = self._lib
        return {
            "token": self.identity.as_dict(),
            "library": {
                "manufacturer": str(lib.manufacturer_id).strip(),
                "description": str(lib.library_description).strip(),
                "version": _version(lib.library_version),
                "cryptoki": _version(lib.cryptoki_version),
            },
            "algorithms": algs,
        }


# -- the key --------------------------------------------------------------------------------------
class Pkcs11Key(SigningKey):
    """A DNSSEC key pair on a token. ``sign`` re-verifies every signature in software."""

    def __init__(
        self,
        token: Pkcs11Token,
        private: Any,
        dnskey: DnsKey,
        label: str,
        key_id: bytes,
        *,
        on_token_hash: bool = False,
        owns_token: bool = False,
    ) -> None:
        self.token = token
        self._private = private
        self._dnskey = dnskey
        self.label = label
        self.id = key_id
        self.on_token_hash = on_token_hash
        self._owns_token = owns_token
        plan = PLANS[dnskey.algorithm]
        if on_token_hash or plan.host_hash is None:
            self.mechanism = plan.on_token
        else:
            self.mechanism = plan.host_hash
        self._checked = False

    @property
    def dnskey(self) -> DnsKey:
        return self._dnskey

    @property
    def identity(self) -> str:
        return f"{self.token.identity.describe()} key '{self.label}' (id {self.id.hex()})"

    @property
    def uri(self) -> Pkcs11Uri:
        return self.token.key_uri(self.label, self.id)

    @property
    def spec(self) -> str:
        """URI text to re-open this key, e.g. in a worker (with ``open_signing_key``)."""
        return self.uri.to_text()

    def with_flags(self, flags: int) -> Pkcs11Key:
        """The same token key presented with other DNSKEY flags (e.g. REVOKE)."""
        k = Pkcs11Key(
            self.token,
            self._private,
            DnsKey(flags, self._dnskey.algorithm, self._dnskey.public_key),
            self.label,
            self.id,
            on_token_hash=self.on_token_hash,
        )
        k._checked = self._checked
        return k

    def _raw_sign(self, data: bytes) -> bytes:
        alg = self._dnskey.algorithm
        ai = INFO[alg]
        if not self._checked:
            self.token.require_mechanism(self.mechanism, f"signing with {alg.name}")
            self._checked = True
        if self.mechanism == Mechanism.RSA_PKCS:
            assert ai.hash_name is not None
            payload = DIGEST_INFO[ai.hash_name] + _digest(alg, data)
        elif self.mechanism == Mechanism.ECDSA:
            payload = _digest(alg, data)
        else:
            payload = data
        with self.token.calls(f"signing with {mech_name(self.mechanism)}"):
            sig = bytes(self._private.sign(payload, mechanism=self.mechanism))
        if ai.family == "ecdsa":
            sig = _fixed_ecdsa(sig, alg)
        return sig

    def close(self) -> None:
        if self._owns_token:
            self.token.close()

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "a Pkcs11Key cannot be pickled; pass key.spec and re-open it with "
            "open_signing_key(spec, pin_source) in the worker"
        )

    def __repr__(self) -> str:
        return f"<Pkcs11Key {self._dnskey.describe()} on {self.identity}>"


def open_token(
    uri: Pkcs11Uri | str,
    pin_source: PinSource | None = None,
    *,
    login: bool = True,
    rw: bool = False,
) -> Pkcs11Token:
    return Pkcs11Token(uri, pin_source, login=login, rw=rw)


__all__ = [
    "DuplicateKey",
    "KeyInfo",
    "KeyNotFound",
    "KeyPairMismatch",
    "LabelExists",
    "MechanismMissing",
    "ModuleNotFound",
    "PinRefused",
    "Pkcs11Key",
    "Pkcs11Token",
    "TokenIdentity",
    "TokenNotFound",
    "open_token",
    "resolve_module",
]
