"""The Knot/BIND KSR/SKR text format: parsing real files, round trips, and every refusal."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from signer.algorithms import Algorithm
from signer.bundles import textformat as tf
from signer.bundles.model import Bundle, BundleSet
from signer.dnskey import make_ds
from signer.errors import InputError
from signer.keys.soft import SoftKey
from signer.rrsig import verify_rrset

DATA = Path(__file__).parent / "data" / "bundles"
ZONE = dns.name.from_text("example.com.")
DAY = 86400
T0 = 1_800_000_000


# -- helpers ----------------------------------------------------------------------------------


def make_set(kind: str, *, n: int = 3, sign: bool = True) -> BundleSet:
    """n overlapping bundles (root style): ZSK rollover in the middle, KSK-signed if a response."""
    ksk = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True)
    zsk1 = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    zsk2 = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    bundles = []
    for i in range(n):
        inc, exp = T0 + i * 10 * DAY, T0 + i * 10 * DAY + 21 * DAY
        zsks = [zsk1] if i < n // 2 else ([zsk1, zsk2] if i == n // 2 else [zsk2])
        if kind == "request":
            keys = tuple(z.dnskey for z in zsks)
            b = Bundle(f"b-{i}", inc, exp, 3600, keys)
            rrset = b.dnskey_rrset(ZONE)
            pop = tuple(tf_sign(rrset, z, inc, exp) for z in zsks) if sign else ()
            bundles.append(Bundle(f"b-{i}", inc, exp, 3600, keys, signatures=pop))
        else:
            keys = (ksk.dnskey, *(z.dnskey for z in zsks))
            cds = (make_ds(ZONE, ksk.dnskey),)
            b = Bundle(f"b-{i}", inc, exp, 3600, keys, cds=cds, cdnskey=(ksk.dnskey,), cds_ttl=0)
            bundles.append(
                Bundle(
                    b.id,
                    inc,
                    exp,
                    3600,
                    keys,
                    signatures=(tf_sign(b.dnskey_rrset(ZONE), ksk, inc, exp),),
                    cds=cds,
                    cds_signatures=(tf_sign(_req(b.cds_rrset(ZONE)), ksk, inc, exp),),
                    cdnskey=(ksk.dnskey,),
                    cdnskey_signatures=(tf_sign(_req(b.cdnskey_rrset(ZONE)), ksk, inc, exp),),
                    cds_ttl=0,
                )
            )
    return BundleSet(ZONE, tuple(bundles), kind)


def _req(x):  # type: ignore[no-untyped-def]
    assert x is not None
    return x


def tf_sign(rrset, key, inc, exp):  # type: ignore[no-untyped-def]
    from signer.rrsig import sign_rrset

    return sign_rrset(rrset, key, ZONE, inc, exp)


def refuse(kind: str, text: str, rule: str, line: int | None, **kw: object) -> InputError:
    parse = tf.parse_request if kind == "request" else tf.parse_response
    with pytest.raises(InputError) as ei:
        parse(text, name="f.txt", **kw)  # type: ignore[arg-type]
    err = ei.value
    assert rule in err.reason, err.message
    assert err.path == "f.txt"
    if line is not None:
        assert err.line == line, err.message
        assert err.message.startswith(f"f.txt:{line}: ")
    return err


# -- real files -------------------------------------------------------------------------------


def test_knot_request_fixture_parses_with_knot_semantics() -> None:
    bs = tf.load_request(DATA / "knot-3.2.6-ksr.txt", zone="example.com.")
    assert bs.kind == "request" and bs.zone == ZONE
    assert [b.inception for b in bs.bundles] == [1795626738, 1798218738, 1798222338]
    # each bundle lasts until the next header; the last one is open (no end given)
    assert [b.expiration for b in bs.bundles] == [1798218738, 1798222338, 1798222338]
    assert [[k.key_tag for k in b.keys] for b in bs.bundles] == [
        [26009],
        [39118, 26009],
        [39118, 26009],
    ]
    assert all(b.ttl == 3600 and not b.signatures for b in bs.bundles)
    last = tf.load_request(DATA / "knot-3.2.6-ksr.txt", end=1800000000).bundles[-1]
    assert last.expiration == 1800000000


def test_bind_style_request_reads_like_knot() -> None:
    bind = tf.load_request(DATA / "bind-9.20-style-ksr.txt")
    knot = tf.load_request(DATA / "knot-3.2.6-ksr.txt")
    assert [b.inception for b in bind.bundles] == [b.inception for b in knot.bundles[:2]]
    assert [b.keys for b in bind.bundles] == [b.keys for b in knot.bundles[:2]]


def test_knot_response_fixture_parses_and_every_rrsig_verifies() -> None:
    bs = tf.load_response(DATA / "knot-3.2.6-skr.txt", zone=ZONE)
    assert bs.kind == "response" and len(bs.bundles) == 3
    n = 0
    for b in bs.bundles:
        assert b.ttl == 3600 and b.cds_ttl == 0
        ksks = [k for k in b.keys if k.is_sep]
        assert [k.key_tag for k in ksks] == [54235]
        # expiration = the earliest RRSIG(DNSKEY) expiration (Knot: header + rrsig-lifetime 14d)
        assert b.expiration == b.inception + 14 * DAY
        for rrset, sigs in (
            (b.dnskey_rrset(ZONE), b.signatures),
            (b.cds_rrset(ZONE), b.cds_signatures),
            (b.cdnskey_rrset(ZONE), b.cdnskey_signatures),
        ):
            assert rrset is not None and len(sigs) == 1
            for sig in sigs:
                assert verify_rrset(rrset, sig, ksks).key_tag == 54235
                n += 1
        assert b.cds[0].matches(ZONE, ksks[0])
    assert n == 9


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["knot", "bind"])
def test_response_round_trip_is_exact(dialect: str) -> None:
    bs = make_set("response")
    text = tf.dump_response(bs, dialect=dialect)
    assert text.endswith(";; SignedKeyResponse 1.0 generated by dnssec-ceremony\n")
    again = tf.parse_response(text, zone=ZONE)
    assert again == bs
    assert tf.dump_response(again, dialect=dialect) == text  # deterministic bytes


def test_request_round_trip_with_and_without_proofs() -> None:
    bs = make_set("request")
    with_pop = tf.parse_request(tf.dump_request(bs, proofs=True))
    assert with_pop == bs
    plain_text = tf.dump_request(bs)
    assert "RRSIG" not in plain_text  # BIND refuses anything but DNSKEY in a KSR
    plain = tf.parse_request(plain_text)
    assert [b.keys for b in plain.bundles] == [b.keys for b in bs.bundles]
    assert [(b.inception, b.expiration, b.id) for b in plain.bundles] == [
        (b.inception, b.expiration, b.id) for b in bs.bundles
    ]
    assert all(not b.signatures for b in plain.bundles)


def test_write_text_is_atomic_and_hashes(tmp_path: Path) -> None:
    import hashlib

    text = tf.dump_response(make_set("response", n=2))
    digest = tf.write_text(tmp_path / "skr.txt", text)
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    assert tf.load_response(tmp_path / "skr.txt").bundles[1].id == "b-1"


# -- refusals ---------------------------------------------------------------------------------

KNOT_KSR = (DATA / "knot-3.2.6-ksr.txt").read_text()


def test_truncated_file_without_trailer() -> None:
    text = "".join(KNOT_KSR.splitlines(keepends=True)[:-1])
    refuse("request", text, "truncated", 28)


def test_truncated_inside_a_record() -> None:
    text = "".join(KNOT_KSR.splitlines(keepends=True)[:20])
    refuse("request", text, "truncated inside a record", 19)


def test_garbage_after_the_last_bundle() -> None:
    refuse("request", KNOT_KSR + "example.com. 3600 DNSKEY 256 3 13 AAAA\n", "garbage after", 30)
    refuse("request", KNOT_KSR + "hello\n", "garbage after the last bundle", 30)


def test_dnskey_before_the_first_header() -> None:
    text = "example.com. 3600 IN DNSKEY 256 3 13 AAAA\n" + KNOT_KSR
    refuse("request", text, "record before the first ';; KeySigningRequest' header", 1)


def test_wrong_zone() -> None:
    refuse(
        "request",
        KNOT_KSR,
        "record owner example.com. is not the zone example.org.",
        2,
        zone="example.org",
    )
    # without an expected zone, the first owner sets it and a second owner is refused
    text = KNOT_KSR.replace("example.com.  ", "example.net.  ", 2).replace(
        "example.net.  ", "example.com.  ", 1
    )
    refuse("request", text, "is not the zone example.com.", 8)


def test_duplicate_bundle_time_and_id() -> None:
    lines = KNOT_KSR.splitlines(keepends=True)
    dup = lines[:6] + lines[:6] + lines[-1:]
    refuse(
        "request",
        "".join(dup),
        "duplicate bundle: time 2026-11-25T17:12:18Z again (first at line 1)",
        7,
    )
    bs = make_set("request", n=2)
    text = tf.dump_request(bs).replace("id=b-1", "id=b-0")
    refuse("request", text, "duplicate bundle id 'b-0' (first at line 1)", 3)


def test_bundle_times_must_increase() -> None:
    lines = KNOT_KSR.splitlines(keepends=True)
    swapped = lines[6:17] + lines[:6] + lines[-1:]
    refuse("request", "".join(swapped), "goes back before the previous bundle", 12)


@pytest.mark.parametrize("when", ["2026-11-25T17:12:18+02:00", "2026-11-25T17:12:18-0500"])
def test_non_utc_times_refused(when: str) -> None:
    text = KNOT_KSR.replace("1795626738 (", f"{when} (", 1)
    refuse("request", text, "is not UTC", 1)
    ok = tf.parse_request(KNOT_KSR.replace("1795626738 (", "2026-11-25T17:12:18Z (", 1))
    assert ok.bundles[0].inception == 1795626738


def test_bad_header_time_and_version() -> None:
    refuse(
        "request", KNOT_KSR.replace("1795626738 (", "20261340171218 (", 1), "bad YYYYMMDDHHMMSS", 1
    )
    refuse(
        "request",
        KNOT_KSR.replace("1.0 1795626738", "2.0 1795626738", 1),
        "unsupported KeySigningRequest version",
        1,
    )
    refuse(
        "request",
        KNOT_KSR.replace(";; KeySigningRequest 1.0 1798218738", ";; Hello", 1),
        "unexpected ';;' line",
        7,
    )
    refuse(
        "request",
        KNOT_KSR.replace("KeySigningRequest 1.0 1798218738", "SignedKeyResponse 1.0 1798218738", 1),
        "header in a request file",
        7,
    )


def test_bad_rdata_names_the_record_line() -> None:
    text = KNOT_KSR.replace("JBkJSg==", "JBkJSg=!", 1)
    refuse("request", text, "bad record", 2)
    refuse(
        "request",
        KNOT_KSR.replace("256 3 13 (", "256 3 99 (", 1),
        "unsupported DNSSEC algorithm 99",
        2,
    )
    refuse(
        "request", KNOT_KSR.replace("3600 DNSKEY", "3600 A", 1), "A record in a key-bundle file", 2
    )
    refuse("request", KNOT_KSR.replace("3600 DNSKEY", "3600 CH DNSKEY", 1), "class CH", 2)
    refuse("request", KNOT_KSR.replace("\t3600 DNSKEY", "\tDNSKEY", 1), "without a TTL", 2)


def test_directives_and_blank_owners_refused() -> None:
    refuse(
        "request",
        KNOT_KSR.replace("example.com. ", "$INCLUDE /etc/passwd\nexample.com. ", 1),
        "directive $INCLUDE is not allowed",
        2,
    )
    refuse(
        "request", KNOT_KSR.replace("example.com. ", "   ", 1), "record without an owner name", 2
    )


def test_mixed_ttls_and_duplicate_keys_refused() -> None:
    lines = KNOT_KSR.splitlines(keepends=True)
    lines[12] = lines[12].replace("3600", "7200")
    refuse("request", "".join(lines), "different TTLs [3600, 7200]", 8)
    dup = lines[:6] + lines[1:6] + lines[-1:]
    refuse("request", "".join(dup), "duplicate DNSKEY 26009 in one bundle", 7)


def test_response_rules() -> None:
    bs = make_set("response", n=2)
    text = tf.dump_response(bs)
    # a response bundle without RRSIG over DNSKEY (and no expires= annotation)
    stripped = "".join(
        ln for ln in text.splitlines(keepends=True) if " RRSIG DNSKEY " not in ln
    ).replace(" expires=", " x=")
    refuse("response", stripped, "no RRSIG over its DNSKEY RRset", 1)
    refuse("response", text.replace("RRSIG CDS", "RRSIG A", 1), "RRSIG covers A", None)
    refuse(
        "response",
        text.replace("SignedKeyResponse 1.0 generated", "KeySigningRequest 1.0 generated"),
        "header in a response file",
        None,
    )
    # a request may not carry CDS
    req = text.replace("SignedKeyResponse", "KeySigningRequest")
    refuse("request", req, "CDNSKEY in a request (only DNSKEY)", 5)
    req = "".join(
        ln for ln in req.splitlines(keepends=True) if "CDNSKEY" not in ln and " IN CDS " not in ln
    )
    refuse("request", req, "a request carries only RRSIGs over DNSKEY", 5)


def test_non_utf8_and_nul_refused(tmp_path: Path) -> None:
    p = tmp_path / "ksr.txt"
    p.write_bytes(KNOT_KSR.encode().replace(b"Knot DNS", b"Knot \xff"))
    with pytest.raises(InputError, match=r"ksr.txt:29: not UTF-8 text"):
        tf.load_request(p)
    refuse("request", KNOT_KSR.replace("=====", "\x00", 1), "NUL character", 1)


def test_oversized_file_refused_from_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big-ksr.txt"
    with open(big, "wb") as f:
        f.write(KNOT_KSR.encode())
        f.truncate(10 * 1024 * 1024)  # a sparse 10 MB file: never read
    with pytest.raises(
        InputError, match=r"big-ksr.txt: file is 10485760 bytes, over the 4194304-byte limit"
    ):
        tf.load_request(big)
    with pytest.raises(InputError, match="over the 100-byte limit"):
        tf.load_response(DATA / "knot-3.2.6-skr.txt", max_bytes=100)
    with pytest.raises(InputError, match="cannot read"):
        tf.load_request(tmp_path / "missing.txt")


def test_empty_and_header_only_files() -> None:
    refuse("request", "", "no ';; KeySigningRequest' bundle", 1)
    refuse("request", ";; KeySigningRequest 1.0 generated by x\n", "no bundles before", 1)
    refuse(
        "request",
        ";; KeySigningRequest 1.0 1\n;; KeySigningRequest 1.0 generated\n",
        "bundles hold no records",
        1,
    )


def test_dump_refuses_what_the_format_cannot_say() -> None:
    bs = make_set("request", n=2)
    with pytest.raises(InputError, match="cannot be written"):
        tf.dump_request(
            BundleSet(ZONE, (Bundle("a b", 1, 2, 3600, bs.bundles[0].keys),), "request")
        )
    with pytest.raises(InputError, match="does not start after"):
        tf.dump_request(BundleSet(ZONE, (bs.bundles[1], bs.bundles[0]), "request"))
    with pytest.raises(InputError, match="unknown text dialect"):
        tf.dump_request(bs, dialect="nsd")
