"""RFC 7512 PKCS#11 URIs: ``pkcs11:token=zsk;object=zsk-2026q1?module-path=/usr/lib/...``.

Path attributes understood: ``token``, ``manufacturer``, ``serial``, ``model`` (the token),
``slot-id``, ``object`` (CKA_LABEL), ``id`` (CKA_ID, percent-encoded bytes) and ``type``
(``private``, ``public``, ``cert``, ``secret-key``, ``data``). Query attributes:
``module-path`` (the PKCS#11 module to load) and ``pin-source`` (``file:`` URIs only).

``pin-value`` is refused: a PIN inside a URI ends up on command lines, in shell history and
in process listings. Any other attribute is refused too, rather than silently ignored (a
selector we do not honour could make us pick the wrong key). Each attribute may appear once
(RFC 7512 sect. 2.3).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, replace

from signer.errors import InputError

SCHEME = "pkcs11:"
PATH_ATTRIBUTES = ("token", "manufacturer", "serial", "model", "slot-id", "object", "id", "type")
QUERY_ATTRIBUTES = ("module-path", "pin-source")
OBJECT_TYPES = ("private", "public", "cert", "secret-key", "data")
# RFC 7512 sect. 2.3 pk11-path-res-avail / pk11-query-res-avail, plus unreserved characters.
_PATH_SAFE = "-._~:[]@!$'()*+,=&"
_QUERY_SAFE = "-._~:[]@!$'()*+,=/?|"
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_RFC7512_KNOWN = frozenset(
    {
        "library-manufacturer",
        "library-description",
        "library-version",
        "slot-manufacturer",
        "slot-description",
        "module-name",
    }
)


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed PKCS#11 URI. ``id`` holds the raw CKA_ID bytes."""

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    slot_id: int | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    module_path: str | None = None
    pin_source: str | None = None  # a file path (the ``file:`` prefix removed)

    def to_text(self) -> str:
        """The URI in canonical form (path attributes in RFC 7512 order, ``id`` as %XX)."""
        path: list[str] = []
        for name in PATH_ATTRIBUTES:
            value = getattr(self, _field(name))
            if value is None:
                continue
            if name == "id":
                assert isinstance(value, bytes)
                text = "".join(f"%{b:02X}" for b in value)
            else:
                text = urllib.parse.quote(str(value), safe=_PATH_SAFE)
            path.append(f"{name}={text}")
        query: list[str] = []
        if self.module_path is not None:
            query.append("module-path=" + urllib.parse.quote(self.module_path, safe=_QUERY_SAFE))
        if self.pin_source is not None:
            query.append(
                "pin-source=" + urllib.parse.quote("file:" + self.pin_source, safe=_QUERY_SAFE)
            )
        out = SCHEME + ";".join(path)
        if query:
            out += "?" + "&".join(query)
        return out

    def __str__(self) -> str:
        return self.to_text()

    def with_key(self, *, object: str | None, id: bytes | None) -> Pkcs11Uri:
        """The same token, pointing at another key (``type`` is cleared)."""
        return replace(self, object=object, id=id, type=None)

    def token_only(self) -> Pkcs11Uri:
        """The URI without object selectors: the token it names."""
        return replace(self, object=None, id=None, type=None)

    @property
    def id_hex(self) -> str | None:
        return None if self.id is None else self.id.hex()


def _field(attr: str) -> str:
    return attr.replace("-", "_")


def _unquote(text: str, attr: str, uri: str) -> bytes:
    if _PCT.search(text):
        raise InputError(f"PKCS#11 URI {_safe(uri)}: bad percent-encoding in {attr}=")
    return urllib.parse.unquote_to_bytes(text)


def _safe(uri: str) -> str:
    """The URI for error messages, with any pin-value masked."""
    return re.sub(r"(pin-value=)[^&]*", r"\1***", uri)


def parse_pkcs11_uri(text: str) -> Pkcs11Uri:
    """Parse an RFC 7512 URI; any problem raises :class:`InputError` (exit 2)."""
    uri = text.strip()
    shown = _safe(uri)
    if not uri.lower().startswith(SCHEME):
        raise InputError(f"not a PKCS#11 URI (must start with 'pkcs11:'): {shown}")
    body = uri[len(SCHEME) :]
    if "#" in body:
        raise InputError(f"PKCS#11 URI {shown}: a fragment ('#') is not allowed")
    path_part, _, query_part = body.partition("?")
    values: dict[str, object] = {}
    seen: set[str] = set()

    for item in path_part.split(";") if path_part else []:
        name, eq, raw = item.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            raise InputError(f"PKCS#11 URI {shown}: expected attr=value, got {item!r}")
        if name in seen:
            raise InputError(f"PKCS#11 URI {shown}: attribute {name} appears twice")
        seen.add(name)
        if name not in PATH_ATTRIBUTES:
            raise InputError(_unknown(shown, name, "path"))
        data = _unquote(raw, name, uri)
        if name == "id":
            if not data:
                raise InputError(f"PKCS#11 URI {shown}: id= is empty")
            values["id"] = data
            continue
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"PKCS#11 URI {shown}: {name}= is not UTF-8") from None
        if name == "type" and value not in OBJECT_TYPES:
            raise InputError(
                f"PKCS#11 URI {shown}: type={value} is not one of {', '.join(OBJECT_TYPES)}"
            )
        if name == "slot-id":
            if not value.isdigit():
                raise InputError(f"PKCS#11 URI {shown}: slot-id={value} is not a number")
            values["slot_id"] = int(value)
            continue
        values[_field(name)] = value

    for item in query_part.split("&") if query_part else []:
        name, eq, raw = item.partition("=")
        name = name.strip().lower()
        if name == "pin-value":
            raise InputError(
                "PKCS#11 URI: pin-value= is refused: a PIN must not appear on a command line "
                "or in a file name; use --pin-file, --pin-env or the prompt"
            )
        if not eq or not name:
            raise InputError(f"PKCS#11 URI {shown}: expected attr=value, got {item!r}")
        if name in seen:
            raise InputError(f"PKCS#11 URI {shown}: attribute {name} appears twice")
        seen.add(name)
        if name not in QUERY_ATTRIBUTES:
            raise InputError(_unknown(shown, name, "query"))
        try:
            value = _unquote(raw, name, uri).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"PKCS#11 URI {shown}: {name}= is not UTF-8") from None
        if not value:
            raise InputError(f"PKCS#11 URI {shown}: {name}= is empty")
        if name == "pin-source":
            values["pin_source"] = _pin_source_path(value, shown)
        else:
            values["module_path"] = value
    return Pkcs11Uri(**values)  # type: ignore[arg-type]


def _pin_source_path(value: str, shown: str) -> str:
    if not value.startswith("file:"):
        raise InputError(
            f"PKCS#11 URI {shown}: pin-source must be a file: URI (got {value.split(':')[0]}:)"
        )
    path = value[len("file:") :]
    if path.startswith("//"):
        host, slash, rest = path[2:].partition("/")
        if host not in ("", "localhost"):
            raise InputError(f"PKCS#11 URI {shown}: pin-source file: URI names a remote host")
        path = slash + rest
    if not path:
        raise InputError(f"PKCS#11 URI {shown}: pin-source file: URI has no path")
    return path


def _unknown(shown: str, name: str, part: str) -> str:
    known = PATH_ATTRIBUTES if part == "path" else QUERY_ATTRIBUTES
    what = "not supported by this tool" if name in _RFC7512_KNOWN else "unknown"
    return f"PKCS#11 URI {shown}: {part} attribute {name} is {what} (supported: {', '.join(known)})"


def is_pkcs11_uri(text: str) -> bool:
    return text.strip().lower().startswith(SCHEME)


__all__ = ["Pkcs11Uri", "is_pkcs11_uri", "parse_pkcs11_uri"]
