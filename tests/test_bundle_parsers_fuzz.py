"""Bounded fuzzing of the three key-bundle parsers: any mutation of a valid file either parses
or is refused with InputError (file:line, exit 2) -- never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signer.bundles import rootxml as rx
from signer.bundles import textformat as tf
from signer.errors import InputError
from tests.conftest import IANA_ROOT
from tests.fuzzkit import byte_ops, fuzz_settings, mutate

DATA = Path(__file__).parent / "data" / "bundles"
KSR = (DATA / "knot-3.2.6-ksr.txt").read_bytes()
SKR = (DATA / "knot-3.2.6-skr.txt").read_bytes()

TOKENS = [
    b";;",
    b";; KeySigningRequest 1.0 ",
    b";; SignedKeyResponse 1.0 ",
    b" generated",
    b"(",
    b")",
    b"\n",
    b"\t",
    b" ",
    b"$INCLUDE /etc/passwd\n",
    b"example.com.",
    b"example.org.",
    b"@",
    b"DNSKEY",
    b"RRSIG",
    b"CDS",
    b"IN",
    b"CH",
    b"3600",
    b"99999999999999999999",
    b"20261340000000",
    b"2026-01-01T00:00:00+02:00",
    b"expires=",
    b"expires=x",
    b"id=",
    b"256 3 13 ",
    b"257 3 8 AwEAAQ==",
    b"=",
    b"\x00",
    b"\xff\xfe",
    b"\\",
    b'"',
    b"<",
    b">",
    b"&",
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"&a;",
    b"<Key>",
    b"</Key>",
    b"P1M",
    b"PT",
    b'keyTag="0"',
    b"+00:00",
    b"0",
    b"-1",
]

op = byte_ops(TOKENS)


FUZZ = fuzz_settings(300)


def text_parse(kind: str, data: bytes) -> None:
    text = tf.decode_text(data, "fuzz.txt")
    if kind == "request":
        tf.parse_request(text, name="fuzz.txt", zone="example.com.")
    else:
        tf.parse_response(text, name="fuzz.txt")


@FUZZ
@given(st.lists(op, min_size=1, max_size=6))
def test_fuzz_text_request(ops: list[tuple[str, float, object]]) -> None:
    try:
        text_parse("request", mutate(KSR, ops))
    except InputError as exc:
        assert exc.path == "fuzz.txt"


@FUZZ
@given(st.lists(op, min_size=1, max_size=6))
def test_fuzz_text_response(ops: list[tuple[str, float, object]]) -> None:
    try:
        text_parse("response", mutate(SKR, ops))
    except InputError as exc:
        assert exc.path == "fuzz.txt"


def _xml_seed() -> bytes:
    path = IANA_ROOT / "ksr-root-2018-q1-0-d_to_e.xml"
    if not path.exists():
        pytest.skip(f"{path} is absent (the read-only ../shared reference material)")
    text = path.read_text()
    # keep the policy and the first two bundles: mutations then hit every element kind
    cut = text.index(
        "<RequestBundle", text.index("<RequestBundle", text.index("<RequestBundle") + 1) + 1
    )
    return (text[:cut] + "</Request>\n</KSR>\n").encode()


@FUZZ
@given(st.lists(op, min_size=1, max_size=6), st.booleans())
def test_fuzz_root_xml(ops: list[tuple[str, float, object]], as_skr: bool) -> None:
    seed = _xml_seed()
    if as_skr:
        seed = seed.replace(b"Request", b"Response")
    parse = rx.parse_root_skr if as_skr else rx.parse_root_ksr
    try:
        parse(mutate(seed, ops), name="fuzz.xml")
    except InputError as exc:
        assert exc.path == "fuzz.xml"


def test_seeds_are_valid() -> None:
    """The unmutated seeds parse (so the fuzzers start from files that are accepted)."""
    text_parse("request", KSR)
    text_parse("response", SKR)
    if IANA_ROOT.exists():
        assert len(rx.parse_root_ksr(_xml_seed()).bundles) == 2
