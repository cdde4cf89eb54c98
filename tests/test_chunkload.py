"""Chunked zone loading: planned cuts + per-chunk parsing + per-shard merge give exactly what the
serial loader gives; wrong speculation is detected; cross-chunk rules raise the loader's errors."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from signer.errors import InputError
from signer.zone.chunkload import (
    Chunk,
    ChunkResult,
    ChunkState,
    chunks_consistent,
    load_chunk,
    merge_nodes,
    plan_chunks,
    sample_boundaries,
    shard_of,
    split_nodes,
    split_nodes_first,
    split_nodes_packed,
    unpack_part,
)
from signer.zone.loader import load_zone
from signer.zone.model import RRset, canonical_key, labels, name_from_text
from tests.zone_testlib import ORIGIN, generated_zone

APEX = name_from_text(ORIGIN, None)

# $ORIGIN and $TTL changes, an SOA in parentheses over several lines, comments holding '(' and
# '"', quoted TXT holding ';' and '(', omitted owners, relative names, '@', escapes, $INCLUDE
# (whose $ORIGIN does not leak out), one owner's records far apart.
HAND = r"""; test zone -- a comment with ( and " inside
$ORIGIN example.test.
$TTL 3600
@ IN SOA ns1 hostmaster.example.test. (
        2024010101 ; serial ( with a paren
        7200 3600 1209600
        300 )
    NS ns1
    NS ns2.example.net.
    TXT "semi;colon (paren" "esc\"quote" ; trailing "comment
ns1 A 192.0.2.1
split A 192.0.2.10
www 300 A 192.0.2.2
www 300 IN A 192.0.2.3
dot\.in\.label TXT "escaped \059 owner"
\065bc AAAA 2001:db8::1
UPPER.Case A 192.0.2.12
$TTL 7200
sub NS ns.sub
ns.sub A 192.0.2.7
$ORIGIN deep.example.test.
a.b A 192.0.2.4
@ MX 10 mail.example.test.
$INCLUDE inc.zone other.example.test.
c TXT "after include" ; comment "
$ORIGIN example.test.
alias CNAME www
x.y.z.sub A 192.0.2.8
split 3600 A 192.0.2.11
split TXT "second ( type"
mail A 192.0.2.25
sec NS ns.example.net.
sec DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
zz 60 IN TXT ( "one"
    "two" )
last A 192.0.2.99
"""
INC = """host A 192.0.2.50
$ORIGIN inner.other.example.test.
x A 192.0.2.51
split.example.test. 3600 A 192.0.2.12
"""


def write(tmp_path: Path, text: str, name: str = "zone.db") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def serial_nodes(path: str) -> dict[bytes, list[RRset]]:
    return load_zone(path, ORIGIN).nodes


def pipeline(
    path: str, n: int, boundaries: list[bytes], *, allow_dnssec: bool = False
) -> tuple[bool, dict[bytes, list[RRset]]]:
    """What the coordinator does: plan, load each chunk, check the speculation (else one
    chunk), split by shard, merge each shard; returns (consistent, union of the shards)."""
    chunks = plan_chunks(path, APEX, n, min_chunk=1)
    results = [load_chunk(c, APEX, allow_dnssec=allow_dnssec) for c in chunks]
    ok = chunks_consistent(chunks, results)
    if not ok:
        chunks = plan_chunks(path, APEX, 1, min_chunk=1)
        results = [load_chunk(chunks[0], APEX, allow_dnssec=allow_dnssec)]
    split = [split_nodes(r.nodes, boundaries) for r in results]
    assert all(len(s) == len(boundaries) + 1 for s in split)
    union: dict[bytes, list[RRset]] = {}
    for shard in range(len(boundaries) + 1):
        zone = merge_nodes([(s[shard], r.paths) for s, r in zip(split, results, strict=True)], APEX)
        assert zone.origin == APEX and zone.order == [] and zone.kinds == {}
        for owner in zone.nodes:
            assert shard_of(owner, boundaries) == shard
        assert not zone.nodes.keys() & union.keys()
        union.update(zone.nodes)
    return ok, union


def check_plan(path: str, chunks: list[Chunk], n: int) -> None:
    data = Path(path).read_bytes()
    assert 1 <= len(chunks) <= n
    assert chunks[0].start == 0 and chunks[0].first_line == 1
    assert chunks[0].state == ChunkState(APEX, None)
    assert chunks[-1].end == len(data)
    for a, b in itertools.pairwise(chunks):
        assert a.end == b.start and a.start < b.start
    for c in chunks:
        assert c.path == path
        assert c.first_line == data.count(b"\n", 0, c.start) + 1
        if c.start:
            assert data[c.start - 1 : c.start] == b"\n"
            assert data[c.start : c.start + 1] not in (b" ", b"\t", b";", b"$", b"(", b")")


@pytest.mark.parametrize("n", range(1, 7))
def test_hand_zone_chunked_equals_serial(tmp_path: Path, n: int) -> None:
    write(tmp_path, INC, "inc.zone")
    path = write(tmp_path, HAND)
    chunks = plan_chunks(path, APEX, n, min_chunk=1)
    check_plan(path, chunks, n)
    assert len(chunks) == n  # small min_chunk: as many as asked
    boundaries = sample_boundaries(path, APEX, n)
    ok, nodes = pipeline(path, n, boundaries)
    assert ok  # every predicted state was right
    assert nodes == serial_nodes(path)
    split = nodes[name_from_text("split.example.test.", None)]
    assert [(rs.rtype, len(rs.rdatas)) for rs in split] == [(1, 3), (16, 1)]


@pytest.mark.parametrize("n", range(1, 7))
def test_generated_zone_chunked_equals_serial(tmp_path: Path, n: int) -> None:
    path = write(tmp_path, generated_zone(1500))
    chunks = plan_chunks(path, APEX, n, min_chunk=1)
    check_plan(path, chunks, n)
    boundaries = sample_boundaries(path, APEX, n)
    assert len(boundaries) == n - 1
    ok, nodes = pipeline(path, n, boundaries)
    assert ok and nodes == serial_nodes(path)
    results = [load_chunk(c, APEX) for c in chunks]
    assert sum(r.records for r in results) == sum(
        len(rs.rdatas) for v in nodes.values() for rs in v
    )


def test_plan_chunks_sizes(tmp_path: Path) -> None:
    path = write(tmp_path, generated_zone(300))
    size = Path(path).stat().st_size
    assert len(plan_chunks(path, APEX, 8)) == 1  # default min_chunk (1 MiB): one chunk
    assert len(plan_chunks(path, APEX, 8, min_chunk=size // 3)) == 3
    chunks = plan_chunks(path, APEX, 4, min_chunk=1)
    assert len(chunks) == 4
    assert max(c.end - c.start for c in chunks) < size / 4 + 200
    empty = write(tmp_path, "", "empty.db")
    assert plan_chunks(empty, APEX, 4, min_chunk=1) == [
        Chunk(empty, 0, 0, 1, ChunkState(APEX, None))
    ]
    with pytest.raises(InputError, match="cannot read zone file"):
        plan_chunks(str(tmp_path / "missing.db"), APEX, 2)


def test_plan_predicts_origin_and_ttl(tmp_path: Path) -> None:
    lines = ["$ORIGIN example.test.", "$ttl 100", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    for i in range(40):
        lines += [
            f"$ORIGIN s{i}.example.test.",
            f"$TTL {1000 + i}",
            *(f"h{j} A 192.0.2.1" for j in range(5)),
        ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    chunks = plan_chunks(path, APEX, 6, min_chunk=1)
    assert len(chunks) == 6
    for c in chunks[1:]:
        text = Path(path).read_bytes()[: c.start].decode()
        i = text.count("$ORIGIN s") - 1
        assert c.state == ChunkState(name_from_text(f"s{i}.example.test.", None), 1000 + i)
    results = [load_chunk(c, APEX) for c in chunks]
    assert chunks_consistent(chunks, results)
    assert results[-1].end_state == ChunkState(name_from_text("s39.example.test.", None), 1039)
    ok, nodes = pipeline(path, 6, [])
    assert ok and nodes == serial_nodes(path)


def _line_offset(data: bytes, line: int) -> int:
    """Byte offset of the start of 1-based ``line``."""
    off = 0
    for _ in range(line - 1):
        off = data.index(b"\n", off) + 1
    return off


def test_cut_inside_parentheses_is_detected(tmp_path: Path) -> None:
    text = (
        "$ORIGIN example.test.\n"
        "$TTL 300\n"
        "@ SOA ns1 hostmaster 1 2 3 4 5\n"
        'big TXT ( "start"\n'  # line 4: opens
        "inner A 192.0.2.5\n"  # line 5: looks like a record, is TXT data
        'other TXT "x"\n'  # line 6
        '"end" )\n'  # line 7: closes
        "after A 192.0.2.1\n"
    )
    path = write(tmp_path, text)
    data = text.encode()
    cut1, cut2 = _line_offset(data, 5), _line_offset(data, 7)
    state = ChunkState(APEX, 300)
    chunks = [
        Chunk(path, 0, cut1, 1, ChunkState(APEX, None)),
        Chunk(path, cut1, cut2, 5, state),
        Chunk(path, cut2, len(data), 7, state),
    ]
    results = [load_chunk(c, APEX) for c in chunks[:2]]
    assert results[0].end_state is None  # ended inside parentheses
    assert results[1].end_state == state  # the inside looked like ordinary records
    assert not chunks_consistent(chunks[:2], results)
    with pytest.raises(InputError, match=r"'\)' without '\('") as err:
        load_chunk(chunks[2], APEX)  # the coordinator then loads the file serially
    assert err.value.line == 7
    # the planner itself may cut there too (line 5 names an "owner"); the pipeline falls back
    for n in range(2, 8):
        chunks = plan_chunks(path, APEX, n, min_chunk=1)
        try:
            results = [load_chunk(c, APEX) for c in chunks]
        except InputError:
            continue
        if any(c.first_line in (5, 6) for c in chunks):
            assert not chunks_consistent(chunks, results)
    assert pipeline(path, 1, [])[1] == serial_nodes(path)


def test_ttl_less_region_is_detected(tmp_path: Path) -> None:
    # no $TTL: records without a TTL take the last explicit one, which a later chunk lacks
    lines = ["$ORIGIN example.test.", "@ 3600 SOA ns1 hostmaster 1 2 3 4 5", "  NS ns1"]
    lines += [f"h{i} A 192.0.2.{i % 250 + 1}" for i in range(60)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    chunks = plan_chunks(path, APEX, 3, min_chunk=1)
    results = [load_chunk(c, APEX) for c in chunks]
    assert [r.needs_previous_ttl for r in results] == [False, True, True]
    assert [r.end_state for r in results] == [ChunkState(APEX, None)] * 3
    assert not chunks_consistent(chunks, results)
    ok, nodes = pipeline(path, 3, sample_boundaries(path, APEX, 3))
    assert not ok and nodes == serial_nodes(path)
    assert all(rs.ttl == 3600 for v in nodes.values() for rs in v)
    # a chunk with an explicit TTL before its TTL-less records is fine
    lines.insert(33, "h30b 60 A 192.0.2.1")
    path = write(tmp_path, "\n".join(lines) + "\n", "zone2.db")
    data = Path(path).read_bytes()
    cut = _line_offset(data, 34)
    chunks = [
        Chunk(path, 0, cut, 1, ChunkState(APEX, None)),
        Chunk(path, cut, len(data), 34, ChunkState(APEX, None)),
    ]
    results = [load_chunk(c, APEX) for c in chunks]
    assert chunks_consistent(chunks, results)
    merged = merge_nodes([(r.nodes, r.paths) for r in results], APEX).nodes
    assert merged == serial_nodes(path)
    assert merged[name_from_text("h40.example.test.", None)][0].ttl == 60


def test_ttl_in_included_file_is_detected(tmp_path: Path) -> None:
    # the loader carries a $TTL set inside an $INCLUDE on in the including file; the planner
    # does not look into included files, so a cut after it is caught as a wrong prediction
    write(tmp_path, "inc1 A 192.0.2.1\n$TTL 60\ninc2 A 192.0.2.2\n", "inc.zone")
    lines = ["$ORIGIN example.test.", "$TTL 3600", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    lines += [f"a{i} A 192.0.2.1" for i in range(10)] + ["$INCLUDE inc.zone"]
    lines += [f"b{i} A 192.0.2.1" for i in range(30)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    chunks = plan_chunks(path, APEX, 2, min_chunk=1)
    assert chunks[1].state == ChunkState(APEX, 3600) and chunks[1].first_line > 14
    results = [load_chunk(c, APEX) for c in chunks]
    assert results[0].end_state == ChunkState(APEX, 60)
    assert not chunks_consistent(chunks, results)
    ok, nodes = pipeline(path, 2, [])
    assert not ok and nodes == serial_nodes(path)
    assert nodes[name_from_text("b0.example.test.", None)][0].ttl == 60


def _two_chunks(path: str, first: int, later: int) -> list[ChunkResult]:
    """Two planned chunks, lines ``first`` and ``later`` in different ones."""
    chunks = plan_chunks(path, APEX, 2, min_chunk=1)
    assert first < chunks[1].first_line <= later, chunks
    results = [load_chunk(c, APEX) for c in chunks]
    assert chunks_consistent(chunks, results)
    return results


def _filler(n: int) -> list[str]:
    return [f"f{i:03d} A 192.0.2.{i % 250 + 1}" for i in range(n)]


def test_ttl_mismatch_across_chunks(tmp_path: Path) -> None:
    head = ["$ORIGIN example.test.", "$TTL 3600", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    lines = [*head, "www 300 A 192.0.2.1", *_filler(40), "www 600 A 192.0.2.2", *_filler(1)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as serial:
        load_zone(path, ORIGIN)
    results = _two_chunks(path, 4, 45)
    boundaries = sample_boundaries(path, APEX, 3)
    parts = [split_nodes(r.nodes, boundaries) for r in results]
    shard = shard_of(name_from_text("www.example.test.", None), boundaries)
    with pytest.raises(InputError) as err:
        merge_nodes([(p[shard], r.paths) for p, r in zip(parts, results, strict=True)], APEX)
    assert (err.value.path, err.value.line) == (path, 45)
    assert f"({path}:4)" in str(err.value) and "RFC 2181" in str(err.value)
    assert str(err.value) == str(serial.value)


def test_cname_and_other_data_across_chunks(tmp_path: Path) -> None:
    head = ["$ORIGIN example.test.", "$TTL 3600", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    lines = [*head, "alias CNAME www", *_filler(40), "alias TXT x", *_filler(1)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as serial:
        load_zone(path, ORIGIN)
    results = _two_chunks(path, 4, 45)
    with pytest.raises(InputError, match=r"CNAME and other data .*\(TXT\).*RFC 1034") as err:
        merge_nodes([(r.nodes, r.paths) for r in results], APEX)
    assert (err.value.path, err.value.line) == (path, 45)
    assert str(err.value) == str(serial.value)
    # and the other way round: data first, CNAME later
    lines[3], lines[44] = "alias TXT x", "alias CNAME www"
    path = write(tmp_path, "\n".join(lines) + "\n", "zone2.db")
    with pytest.raises(InputError) as serial:
        load_zone(path, ORIGIN)
    results = _two_chunks(path, 4, 45)
    with pytest.raises(InputError) as err:
        merge_nodes([(r.nodes, r.paths) for r in results], APEX)
    assert str(err.value) == str(serial.value)


def test_mismatch_between_included_files_names_both(tmp_path: Path) -> None:
    # each chunk has its own file table; the merge renders each record's place with its own
    write(tmp_path, "x 300 A 192.0.2.1\n", "one.zone")
    write(tmp_path, "y A 192.0.2.9\nx 600 A 192.0.2.2\n", "two.zone")
    head = ["$ORIGIN example.test.", "$TTL 3600", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    lines = [*head, "$INCLUDE one.zone", *_filler(40), "$INCLUDE two.zone", *_filler(1)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as serial:
        load_zone(path, ORIGIN)
    results = _two_chunks(path, 4, 45)
    assert results[0].paths == [path, str(tmp_path / "one.zone")]
    assert results[1].paths == [path, str(tmp_path / "two.zone")]
    with pytest.raises(InputError) as err:
        merge_nodes([(r.nodes, r.paths) for r in results], APEX)
    assert (err.value.path, err.value.line) == (str(tmp_path / "two.zone"), 2)
    assert f"({tmp_path / 'one.zone'}:1)" in str(err.value)
    assert str(err.value) == str(serial.value)


def test_rrsig_ttls_may_differ_across_chunks(tmp_path: Path) -> None:
    sig = "13 3 {ttl} 20240201000000 20240101000000 12345 example.test. AAAA"
    head = ["$ORIGIN example.test.", "$TTL 3600", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    lines = [*head, "www 300 A 192.0.2.1", "www 300 RRSIG A " + sig.format(ttl=300)]
    lines += [*_filler(40), "www 600 TXT x", "www 600 RRSIG TXT " + sig.format(ttl=600)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    ok, nodes = pipeline(path, 2, [], allow_dnssec=True)
    assert ok and nodes == load_zone(path, ORIGIN, allow_dnssec=True).nodes
    www = nodes[name_from_text("www.example.test.", None)]
    assert [(rs.rtype, rs.ttl, len(rs.rdatas)) for rs in www] == [
        (1, 300, 1),
        (16, 600, 1),
        (46, 300, 2),
    ]


def test_errors_in_later_chunks_name_the_true_line(tmp_path: Path) -> None:
    head = ["$ORIGIN example.test.", "$TTL 3600", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    for bad, msg in (
        ("bad A 192.0.2.300", "bad IPv4"),
        ("out.example.net. A 192.0.2.1", "outside the zone"),
        ('q TXT "open', "unterminated"),
        ("k DNSKEY 257 3 13 AAAA", "unsigned"),
    ):
        lines = [*head, *_filler(50), bad, *_filler(5)]
        path = write(tmp_path, "\n".join(lines) + "\n")
        with pytest.raises(InputError, match=msg) as serial:
            load_zone(path, ORIGIN)
        chunks = plan_chunks(path, APEX, 3, min_chunk=1)
        assert chunks[2].first_line < 54 and chunks[1].first_line < 54  # in the last chunk
        with pytest.raises(InputError) as err:
            load_chunk(chunks[2], APEX)
        assert str(err.value) == str(serial.value) and err.value.line == 54
    # a parenthesis never closed: the last chunk fails like the loader; an earlier one reports
    lines = [*head, *_filler(50), "open TXT ( x", *_filler(5)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    chunks = plan_chunks(path, APEX, 3, min_chunk=1)
    with pytest.raises(InputError, match="never closed") as err:
        load_chunk(chunks[2], APEX)
    assert err.value.line == 54
    cut = Chunk(
        path, chunks[2].start, _line_offset(Path(path).read_bytes(), 56), 0, chunks[2].state
    )
    assert load_chunk(Chunk(path, cut.start, cut.end, 54, cut.state), APEX).end_state is None


def test_split_nodes_and_shard_of(tmp_path: Path) -> None:
    path = write(tmp_path, generated_zone(200))
    nodes = load_chunk(plan_chunks(path, APEX, 1)[0], APEX).nodes
    keys = sorted(canonical_key(name_from_text(f"d{i:06d}.{ORIGIN}", None)) for i in (50, 120))
    parts = split_nodes(dict(nodes), keys)
    assert len(parts) == 3 and sum(len(p) for p in parts) == len(nodes)
    assert APEX in parts[0]
    assert name_from_text(f"d000049.{ORIGIN}", None) in parts[0]
    assert name_from_text(f"d000050.{ORIGIN}", None) in parts[1]  # a boundary opens its shard
    assert name_from_text(f"d000119.{ORIGIN}", None) in parts[1]
    assert name_from_text(f"d000120.{ORIGIN}", None) in parts[2]
    for i, part in enumerate(parts):
        assert all(shard_of(owner, keys) == i for owner in part)
    assert split_nodes(dict(nodes), []) == [nodes]


@pytest.mark.parametrize("cuts", [(), (50,), (50, 120), (0, 199, 1000)])
def test_packed_parts_are_the_parts(tmp_path: Path, cuts: tuple[int, ...]) -> None:
    """A part packed for another process (owners, one blob each) unpacks to the part
    split_nodes_first makes, owners in the same order, with the same first owner; empty
    parts stay empty."""
    path = write(tmp_path, generated_zone(200))
    nodes = load_chunk(plan_chunks(path, APEX, 1)[0], APEX).nodes
    keys = sorted(canonical_key(name_from_text(f"d{i:06d}.{ORIGIN}", None)) for i in cuts)
    packed, firsts = split_nodes_packed(nodes, keys)
    parts, want_firsts = split_nodes_first(nodes, keys)
    assert firsts == want_firsts
    assert len(packed) == len(parts) == len(keys) + 1
    for (owners, blobs), part in zip(packed, parts, strict=True):
        assert len(owners) == len(blobs)
        got = unpack_part((owners, blobs))
        assert list(got.items()) == list(part.items())
    assert sum(len(o) for o, _ in packed) == len(nodes)


def _is_apex_child_key(key: bytes) -> bool:
    apex = canonical_key(APEX)
    rest = key[len(apex) :]
    return key.startswith(apex) and rest.endswith(b"\x00\x00") and b"\x00\x00" not in rest[:-2]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_sample_boundaries_balance_shards(tmp_path: Path, n: int) -> None:
    path = write(tmp_path, generated_zone(20000))
    bounds = sample_boundaries(path, APEX, n)
    assert len(bounds) == n - 1 and bounds == sorted(set(bounds))
    assert all(_is_apex_child_key(k) for k in bounds)
    zone = load_zone(path, ORIGIN)
    sizes = [0] * n
    for owner in zone.nodes:
        sizes[shard_of(owner, bounds)] += 1
    avg = len(zone.nodes) / n
    assert all(avg / 2 <= s <= 2 * avg for s in sizes), sizes


def test_sample_boundaries_reduce_to_apex_children(tmp_path: Path) -> None:
    # deep names only below two apex children, relative to several $ORIGINs
    lines = ["$ORIGIN example.test.", "$TTL 60", "@ SOA ns1 hostmaster 1 2 3 4 5"]
    lines += ["$ORIGIN deep.alpha.example.test."]
    lines += [f"h{i}.x A 192.0.2.1" for i in range(300)]
    lines += ["$ORIGIN example.net.", "outside A 192.0.2.1", "$ORIGIN beta.example.test."]
    lines += [f"h{i}.y A 192.0.2.1" for i in range(300)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    bounds = sample_boundaries(path, APEX, 4, samples=512)
    kids = {canonical_key(name_from_text(f"{c}.{ORIGIN}", None)) for c in ("alpha", "beta")}
    assert bounds and set(bounds) <= kids and bounds == sorted(bounds)
    tiny = write(tmp_path, f"$ORIGIN {ORIGIN}\n@ 60 SOA ns1 hostmaster 1 2 3 4 5\n", "tiny.db")
    assert sample_boundaries(tiny, APEX, 4) == []
    assert sample_boundaries(path, APEX, 1) == []


def test_sample_boundaries_nsec3_mixes_in_hashes(tmp_path: Path) -> None:
    path = write(tmp_path, generated_zone(3000))
    plain = sample_boundaries(path, APEX, 8)
    mixed = sample_boundaries(path, APEX, 8, nsec3=True)
    assert mixed == sorted(set(mixed)) and len(mixed) == 7
    assert all(_is_apex_child_key(k) for k in mixed)
    hashlike = [k for k in mixed if re.fullmatch(rb"[0-9a-v]{32}", labels(_key_name(k))[0])]
    assert hashlike and mixed != plain
    assert sample_boundaries(path, APEX, 8, nsec3=True) == mixed  # deterministic


def _key_name(key: bytes) -> bytes:
    """The apex child whose canonical key is ``key`` (labels without NUL octets)."""
    apex = canonical_key(APEX)
    label = key[len(apex) : -2]
    return bytes((len(label),)) + label + APEX


def test_chunk_line_numbers_counted_in_c_and_in_python(tmp_path: Path) -> None:
    """Each chunk's first line number: counted on the mapping in C (no copies, no GIL) or
    in copied slices in Python, the same plan; and the true line (a serial count)."""
    import signer.zone.chunkload as ck

    path = write(tmp_path, generated_zone(3000))
    fast = ck._INDEX[0]
    plans = []
    for use in (fast, None):
        ck._INDEX[0] = use
        try:
            plans.append(plan_chunks(path, APEX, 7, min_chunk=1 << 12))
        finally:
            ck._INDEX[0] = fast
    assert plans[0] == plans[1] and len(plans[0]) == 7
    data = Path(path).read_bytes()
    for c in plans[0]:
        assert c.first_line == data.count(b"\n", 0, c.start) + 1
