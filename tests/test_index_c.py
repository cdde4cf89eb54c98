"""The index helpers in C (signer/zone/_index.c) give what the Python code gives (the
specification): running sums and where a subtree of a child of the apex is among the
previous output's names in canonical order (incremental.py), the names merged into a shard's
order (nsec3.py), and the NSEC3 chain check's look-ups of hashes (verify._Find)."""

from __future__ import annotations

import mmap
import random
import threading
import time
from array import array
from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.zone import _accel
from signer.zone import incremental as inc
from signer.zone.model import canonical_key

pytestmark = pytest.mark.skipif(
    inc._INDEX[0] is None, reason=f"no C index helpers in use ({_accel.status()[1]}): make accel"
)

ORIGIN = b"\x07example\x00"
# lowercase labels (the index holds canonical wire names), with the octets that sort
# around the usual ones: 0x00, '-', digits, 0xff, and prefixes of each other
labels = st.sampled_from([b"a", b"ab", b"a\x00", b"a-", b"0", b"z", b"\xff", b"ns1", b"b"]) | (
    st.binary(min_size=1, max_size=5).map(lambda b: b.lower())
)


def _wire(labs: list[bytes], base: bytes = ORIGIN) -> bytes:
    return b"".join(bytes([len(x)]) + x for x in labs) + base


def _plan(names: list[bytes]) -> inc._Locator:
    """What the incremental plan locates subtrees with, over ``names``."""
    return inc._Locator(ORIGIN, inc._Names(b"".join(names), array("B", [len(n) for n in names])))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(labels, min_size=1, max_size=3), min_size=0, max_size=60),
    st.lists(labels, min_size=1, max_size=12),
)
def test_locate_matches_the_python_search(tree: list[list[bytes]], queries: list[bytes]) -> None:
    names = [ORIGIN, *sorted({_wire(x) for x in tree}, key=canonical_key)]
    p = _plan(names)
    for q in queries:
        child = _wire([q])
        assert p.range_of(child) == p._range_of_py(child), (names, child)


def test_locate_finds_big_subtrees_and_new_children() -> None:
    rnd = random.Random(1)
    names = {ORIGIN}
    for i in range(3000):
        child = [f"d{i:05d}".encode()]
        names.add(_wire(child))
        for _ in range(rnd.choice([0, 0, 1, 2, 40 if i % 500 == 0 else 0])):
            names.add(_wire([f"x{rnd.randrange(10**6)}".encode(), *child]))
    order = [ORIGIN, *sorted(names - {ORIGIN}, key=canonical_key)]
    p = _plan(order)
    for i in range(0, 3000, 7):
        for child in (_wire([f"d{i:05d}".encode()]), _wire([f"d{i:05d}a".encode()])):
            got = p.range_of(child)
            assert got == p._range_of_py(child)
            lo, hi = got
            assert all(n.endswith(child) for n in order[lo:hi])
    assert p.range_of(ORIGIN) == (0, 1)


def test_cumsum_matches_accumulate() -> None:
    rnd = random.Random(2)
    fast = inc._INDEX[0]
    for n in (0, 1, 5, 1000):
        q = array("Q", [rnd.randrange(0, 1 << 40) for _ in range(n)])
        b = array("B", [rnd.randrange(0, 256) for _ in range(n)])
        assert inc._cumsum(q, True) == array("Q", accumulate(q, initial=0))
        assert inc._cumsum(b, False) == array("Q", accumulate(b))
    with pytest.raises(ValueError):
        fast.cumsum(array("H", [1, 2]), True)


def test_malformed_names_are_left_to_python() -> None:
    """A name whose label runs past its end (a state forged to match its own checksum): C
    refuses (ValueError) and range_of does what the Python search does."""
    names = [ORIGIN, b"\x01a" + ORIGIN, b"\x09bad" + ORIGIN, b"\x01z" + ORIGIN]
    p = _plan(names)
    with pytest.raises(ValueError):
        inc._INDEX[0].locate(p.names.blob, p.names.ends, b"\x01m" + ORIGIN)
    child = b"\x01m" + ORIGIN

    def outcome(f: object) -> object:
        try:
            return f(child)  # type: ignore[operator]
        except Exception as exc:  # whatever the Python search raises
            return type(exc)

    assert outcome(p.range_of) == outcome(p._range_of_py)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=4, max_size=4), max_size=80),
    st.lists(st.binary(min_size=4, max_size=4), min_size=1, max_size=10),
)
def test_bisect_fixed_matches_bisect(records: list[bytes], keys: list[bytes]) -> None:
    """The NSEC3 chain's hashes are searched in their blob (fixed-width records) as
    bisect searches the list of them; the records here are 4 octets wide so that equal
    ones and neighbours occur."""
    from bisect import bisect_left, bisect_right

    fast = inc._INDEX[0]
    records.sort()
    blob = b"".join(records)
    for k in [*keys, *records[:3]]:
        assert fast.bisect_fixed(blob, 4, k, False) == bisect_left(records, k)
        assert fast.bisect_fixed(blob, 4, k, True) == bisect_right(records, k)
    with pytest.raises(ValueError):
        fast.bisect_fixed(blob + b"x", 4, keys[0], False)
    with pytest.raises(ValueError):
        fast.bisect_fixed(blob, 4, b"12345", False)


def test_common_prefix_matches_python() -> None:
    """diff's common prefix in C and in Python, on texts differing near block edges (4 KiB
    blocks in C, doubling blocks and bisection in Python), at offsets, and at the ends."""
    fast = inc._INDEX[0]
    rnd = random.Random(4)
    base = bytes(rnd.getrandbits(8) for _ in range(20000))
    for at in (0, 1, 4095, 4096, 4097, 8191, 12288, 19999):
        for shift in (0, 3):
            a = base
            b = base[:at] + bytes([base[at] ^ 1]) + base[at + 1 :]
            i, j = shift, shift
            want = at - shift if at >= shift else len(a) - shift  # the change is before i
            assert fast.common_prefix(a, i, b, j) == inc._common_py(a, i, b, j) == want
    assert fast.common_prefix(base, 0, base, 0) == len(base) == inc._common_py(base, 0, base, 0)
    assert fast.common_prefix(b"abc", 1, b"xbcd", 1) == 2 == inc._common_py(b"abc", 1, b"xbcd", 1)
    assert fast.common_prefix(b"ab", 2, b"ab", 0) == 0
    with pytest.raises(ValueError):
        fast.common_prefix(b"ab", 3, b"ab", 0)


def _scan_py(data: bytes, lo: int, hi: int) -> tuple[int, int, int, int, bool]:
    """What input_scan means, from bytes' own methods."""
    counts = tuple(data.count(sub, lo, hi) for sub in (b"\n", b"\n;", b"\n$"))
    include = b"$include" in data[lo:hi].lower()
    return (*counts, data.rfind(b"\n$", lo, hi), include)  # type: ignore[return-value]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"\n", b";", b"$", b"a", b" ", b"\n;", b"\n$", b"$INCLUDE", b"$iNcLuDe", b"includ"]
        ),
        max_size=40,
    ),
    st.integers(0, 200),
    st.integers(0, 200),
)
def test_input_scan_matches_bytes_methods(parts: list[bytes], lo: int, hi: int) -> None:
    """The input's newlines, comment and directive line starts, last directive and any
    $INCLUDE, found in one pass in C, are what count, rfind and a search find (occurrences
    wholly inside [lo, hi)); the Python fallback gives the same."""
    data = b"".join(parts)
    lo, hi = sorted((min(lo, len(data)), min(hi, len(data))))
    want = _scan_py(data, lo, hi)
    assert inc._INDEX[0].input_scan(data, lo, hi) == want
    assert inc._input_scan(data, lo, hi) == want
    inc._INDEX[0], fast = None, inc._INDEX[0]
    try:
        assert inc._input_scan(data, lo, hi) == want
    finally:
        inc._INDEX[0] = fast


def test_input_scan_on_a_mapped_file_and_refusals(tmp_path: Path) -> None:
    fast = inc._INDEX[0]
    data = b"$TTL 1\n;c\na 1 NS b\n$ORIGIN x.\n\n;" * 1000 + b"$Include"
    f = tmp_path / "z"
    f.write_bytes(data)
    with f.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert fast.input_scan(m, 0, len(m)) == _scan_py(data, 0, len(data))
        assert fast.input_scan(m, 0, len(m))[4] is True
        assert fast.input_scan(m, 8, 40) == _scan_py(data, 8, 40)
        assert fast.input_scan(m, 0, len(m) - 1)[4] is False  # "$Includ": no
    for lo, hi in ((-1, 2), (0, len(data) + 1), (3, 2)):
        with pytest.raises(ValueError):
            fast.input_scan(data, lo, hi)


def test_scans_of_whole_files_let_other_threads_run() -> None:
    """input_scan and common_prefix release the GIL: a thread counting a big buffer does
    not hold up the parent's main thread (it hands out the workers' tasks meanwhile)."""
    fast = inc._INDEX[0]
    big = b"x" * (1 << 27) + b"\n"
    ticks = 0
    stop = threading.Event()

    def scan() -> None:
        for _ in range(8):
            fast.input_scan(big, 0, len(big))
            fast.common_prefix(big, 0, big, 0)
        stop.set()

    t = threading.Thread(target=scan)
    t.start()
    while not stop.is_set():
        ticks += 1
        time.sleep(0)
    t.join()
    assert ticks > 100  # with the GIL held through each scan: a handful


def test_locate_refuses_ends_that_do_not_fit() -> None:
    """Offsets out of the blob (a state forged to pass its own checksum) are refused, not
    followed: ends going backwards, beyond the blob, or wrapping to negative offsets."""
    fast = inc._INDEX[0]
    names = [ORIGIN, b"\x01a" + ORIGIN, b"\x01b" + ORIGIN, b"\x01c" + ORIGIN]
    blob = b"".join(names)
    good = array("Q", accumulate(len(n) for n in names))
    assert fast.locate(blob, good, b"\x01b" + ORIGIN) == (2, 3)
    for bad in ([9, 3, 40, len(blob)], [9, 2**63 + 5, 2**63 + 10, len(blob)], [9, 99, 120, 80]):
        with pytest.raises(ValueError):
            fast.locate(blob, array("Q", bad), b"\x01b" + ORIGIN)


def test_merge_names_refuses_what_is_not_wire_names() -> None:
    """insert_nsec3's merge in C: names that are not wire names (or not bytes) are refused
    with ValueError, and the Python loop takes over; a plain merge is the sorted union."""
    fast = inc._INDEX[0]
    a = [ORIGIN, b"\x01b" + ORIGIN, b"\x01d" + ORIGIN]
    b = [b"\x01a" + ORIGIN, b"\x01c" + ORIGIN, b"\x01e" + ORIGIN]
    assert fast.merge_names(a, b) == sorted(a + b, key=canonical_key)
    assert fast.merge_names([], b) == b and fast.merge_names(a, []) == a
    for bad in ([b"\x05ab" + ORIGIN], ["text"]):
        with pytest.raises(ValueError):
            fast.merge_names(a, bad)  # type: ignore[arg-type]


# -- the NSEC3 chain check's look-ups (verify._Find) ----------------------------------------
# hashes that share their first two octets (one bucket) and neighbour buckets' edges
hashes20 = (
    st.sampled_from([b"\x00" * 20, b"\xff" * 20, b"\x12\x34" + b"\x00" * 18])
    | st.binary(min_size=20, max_size=20)
    | st.binary(min_size=18, max_size=18).map(lambda b: b"\x12\x34" + b)
    | st.binary(min_size=18, max_size=18).map(lambda b: b"\x12\x35" + b)
)


@settings(max_examples=300, deadline=None)
@given(st.sets(hashes20, max_size=40), st.lists(hashes20, max_size=40), st.booleans())
def test_find_matches_the_python_lookup(
    keys: set[bytes], queries: list[bytes], extra: bool
) -> None:
    from signer.zone import verify

    blob = b"".join(sorted(keys))
    if extra and keys:  # some queries are keys
        queries = [*queries, *sorted(keys)[::2]]
    q = b"".join(queries)
    py = verify._Find(blob)
    c = verify._Find(blob, inc._INDEX[0])
    assert c.index(q) == py.index(q)
    assert c.hits(q) == py.hits(q)
    # and the lookup is right, not merely the same
    want = [sorted(keys).index(x) if x in keys else -1 for x in queries]
    assert py.index(q) == want
    assert py.hits(q) == [j for j, i in enumerate(want) if i >= 0]


def test_find_refuses_what_does_not_fit() -> None:
    fast = inc._INDEX[0]
    keys = b"".join(sorted(bytes([i]) * 20 for i in range(5)))
    table = fast.find_table(keys, 20)
    assert fast.find(keys, 20, table, keys, True) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="ascending"):
        fast.find_table(keys[20:40] + keys[:20], 20)
    with pytest.raises(ValueError, match="another width"):
        fast.find_table(keys[:-1], 20)
    with pytest.raises(ValueError, match="another width"):
        fast.find(keys, 20, table, keys[:-1], True)
    with pytest.raises(ValueError, match="another width"):
        fast.find(keys, 1, table, keys, True)
    # a table not made for these keys could send the search outside them: refused
    with pytest.raises(ValueError, match="not a table"):
        fast.find(keys[:40], 20, table, keys, True)
    with pytest.raises(ValueError, match="not a table"):
        fast.find(keys, 20, table[:-8], keys, True)
    bad = bytearray(table)
    bad[8 * 3 : 8 * 4] = (10**6).to_bytes(8, "little")  # bucket 3 starts past the keys
    with pytest.raises(ValueError, match="not a table"):
        fast.find(keys, 20, bytes(bad), keys, True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=2, max_size=2), st.binary(min_size=18, max_size=18)),
        max_size=300,
    ),
    st.randoms(use_true_random=False),
)
def test_sort_by_hash_is_a_stable_sort(keys: list[tuple[bytes, bytes]], rnd: random.Random) -> None:
    """The NSEC3 chain's entries sorted by hash in C (counting sort on two octets, then
    insertion sort) are list.sort's, equal hashes in their order; the same tuples."""
    from operator import itemgetter

    fast = inc._INDEX[0]
    entries = [(a + b, f"bitmap{i}".encode(), b"name") for i, (a, b) in enumerate(keys)]
    entries += [(e[0], b"dup", b"name") for e in rnd.sample(entries, min(5, len(entries)))]
    rnd.shuffle(entries)
    got = fast.sort_by_hash(entries)
    assert got == sorted(entries, key=itemgetter(0))
    assert all(x is y for x, y in zip(got, sorted(entries, key=itemgetter(0)), strict=True))


def test_sort_by_hash_refuses_other_entries() -> None:
    fast = inc._INDEX[0]
    assert fast.sort_by_hash([]) == []
    for bad in ([(b"x" * 19, b"", b"")], [(b"x" * 21,)], [b"x" * 20], [()], [("x" * 20,)]):
        with pytest.raises(ValueError):
            fast.sort_by_hash(bad)


@st.composite
def _index_and_runs(
    draw: st.DrawFn,
) -> tuple[array[int], array[int], bytes, list[tuple[int, int, array[int], list[bytes]]]]:  # type: ignore[type-arg]
    names = draw(st.lists(st.binary(min_size=0, max_size=20), min_size=0, max_size=40))
    lengths = array("Q", [draw(st.integers(0, 2**64 - 1)) for _ in names])
    namelens = array("B", [len(x) for x in names])
    cuts = sorted(draw(st.lists(st.integers(0, len(names)), max_size=10)))
    runs = []
    for lo, hi in zip(cuts[::2], cuts[1::2], strict=False):
        new = draw(st.lists(st.binary(min_size=0, max_size=255), max_size=5))
        runs.append((lo, hi, array("Q", [draw(st.integers(0, 2**64 - 1)) for _ in new]), new))
    return lengths, namelens, b"".join(names), runs


@settings(max_examples=300, deadline=None)
@given(_index_and_runs())
def test_splice_index_matches_the_python_splice(case) -> None:  # type: ignore[no-untyped-def]
    lengths, namelens, blob, runs = case
    want = inc._splice_index_py(lengths, namelens, blob, runs)
    assert inc._INDEX[0].splice_index(lengths, namelens, blob, runs) == want
    # and it is the splice: the names and lengths of each part, in order
    names, ends, cur = [], list(accumulate(namelens, initial=0)), 0
    out_lengths: list[int] = []
    for lo, hi, rl, rn in runs:
        names += [blob[ends[i] : ends[i + 1]] for i in range(cur, lo)] + rn
        out_lengths += list(lengths[cur:lo]) + list(rl)
        cur = hi
    names += [blob[ends[i] : ends[i + 1]] for i in range(cur, len(namelens))]
    out_lengths += list(lengths[cur:])
    assert want[2] == b"".join(names) and want[1] == bytes(len(x) for x in names)
    assert array("Q", want[0]).tolist() == out_lengths


def test_splice_index_refuses_runs_that_do_not_fit() -> None:
    names = [b"\x00", b"\x01a\x00", b"\x01b\x00"]
    lengths, namelens = array("Q", [5, 6, 7]), array("B", [len(x) for x in names])
    blob = b"".join(names)
    ok = (1, 2, array("Q", [9]), [b"\x01c\x00"])
    bad_runs = [
        [(2, 3, array("Q"), []), (1, 2, array("Q"), [])],  # not ascending
        [(2, 1, array("Q"), [])],  # hi < lo
        [(1, 4, array("Q"), [])],  # past the end
        [(1, 2, array("Q", [1, 2]), [b"x"])],  # a length per name
        [(1, 2, array("Q", [1]), [b"x" * 256])],  # a name too long
        [(1, 2, array("Q", [1]), ["x"])],  # not bytes
        [(1, 2)],  # not a run
    ]
    for fn in (inc._INDEX[0].splice_index, inc._splice_index_py):
        assert fn(lengths, namelens, blob, [ok])[2] == names[0] + b"\x01c\x00" + names[2]
        for runs in bad_runs:
            with pytest.raises((ValueError, TypeError)):
                fn(lengths, namelens, blob, runs)
        with pytest.raises(ValueError):  # the names do not fill the blob
            fn(lengths, namelens, blob + b"x", [ok])
        with pytest.raises(ValueError):  # a length per name
            fn(array("Q", [5, 6]), namelens, blob, [ok])
