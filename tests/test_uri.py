"""RFC 7512 PKCS#11 URI parsing and formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signer.errors import EXIT_INPUT, InputError
from signer.keys.uri import Pkcs11Uri, is_pkcs11_uri, parse_pkcs11_uri


def test_rfc7512_examples_parse() -> None:
    # RFC 7512 sect. 3 examples (the ones using attributes we support).
    u = parse_pkcs11_uri(
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
        "manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;"
        "type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial="
        "?pin-source=file:/etc/token_pin"
    )
    assert u.token == "The Software PKCS#11 Softtoken"
    assert u.manufacturer == "Snake Oil, Inc."
    assert u.model == "1.0"
    assert u.object == "my-certificate"
    assert u.type == "cert"
    assert u.id == bytes.fromhex("69953e5cf4bdec91")
    assert u.serial == ""
    assert u.pin_source == "/etc/token_pin"
    assert parse_pkcs11_uri("pkcs11:") == Pkcs11Uri()
    m = parse_pkcs11_uri("pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1")
    assert m.module_path == "/mnt/libmypkcs11.so.1" and m.type == "private"


def test_round_trip_and_canonical_form() -> None:
    text = "pkcs11:token=zsk;serial=abc;slot-id=3;object=zsk%202026;id=%00%FF?module-path=/x/y.so"
    u = parse_pkcs11_uri(text)
    assert u.slot_id == 3 and u.id == b"\x00\xff" and u.object == "zsk 2026"
    assert u.to_text() == text
    assert parse_pkcs11_uri(u.to_text()) == u
    assert u.token_only().to_text() == "pkcs11:token=zsk;serial=abc;slot-id=3?module-path=/x/y.so"
    assert u.with_key(object="k", id=b"\x01").object == "k"
    assert parse_pkcs11_uri("pkcs11:id=%0a").id_hex == "0a"
    assert parse_pkcs11_uri("pkcs11:token=a?pin-source=file:///run/p").pin_source == "/run/p"
    assert is_pkcs11_uri(" PKCS11:token=x") and not is_pkcs11_uri("Kexample.+013+1.private")


@given(
    token=st.text(min_size=1, max_size=20),
    obj=st.text(max_size=20),
    key_id=st.binary(min_size=1, max_size=20),
)
def test_round_trip_property(token: str, obj: str, key_id: bytes) -> None:
    u = Pkcs11Uri(token=token, object=obj, id=key_id)
    assert parse_pkcs11_uri(u.to_text()) == u


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("token=zsk", "must start with 'pkcs11:'"),
        ("pkcs11:token=zsk;token=ksk", "appears twice"),
        ("pkcs11:tokn=zsk", "path attribute tokn is unknown"),
        ("pkcs11:slot-description=x", "not supported by this tool"),
        ("pkcs11:token", "expected attr=value"),
        ("pkcs11:type=secret", "type=secret is not one of"),
        ("pkcs11:slot-id=x1", "slot-id=x1 is not a number"),
        ("pkcs11:id=", "id= is empty"),
        ("pkcs11:object=a%2", "bad percent-encoding"),
        ("pkcs11:object=%FF", "not UTF-8"),
        ("pkcs11:token=a?pin-source=|/bin/getpin", "pin-source must be a file: URI"),
        ("pkcs11:token=a?pin-source=file://host/p", "remote host"),
        ("pkcs11:token=a?module-name=softhsm2", "query attribute module-name"),
        ("pkcs11:token=a?module-path=", "module-path= is empty"),
        ("pkcs11:token=a#frag", "fragment"),
    ],
)
def test_bad_uris_refused(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as ei:
        parse_pkcs11_uri(text)
    assert fragment in str(ei.value)
    assert ei.value.exit_code == EXIT_INPUT
    assert "\n" not in str(ei.value)


def test_pin_value_refused_and_never_echoed() -> None:
    with pytest.raises(InputError) as ei:
        parse_pkcs11_uri("pkcs11:token=zsk;object=k?pin-value=s3cr3t-1234")
    msg = str(ei.value)
    assert "pin-value= is refused" in msg
    assert "s3cr3t-1234" not in msg
