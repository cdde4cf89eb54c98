"""Chunked (parallelisable) front end of :mod:`signer.zone.loader`.

A zone file is cut into byte ranges (:func:`plan_chunks`) at lines that name their owner; the
``$ORIGIN``/``$TTL`` state at each cut is *predicted* by a fast scan of the directive lines
only.  Each chunk is parsed on its own (:func:`load_chunk`, the loader's own code on a byte
range) into the loader's scratch form; :func:`chunks_consistent` tells whether every chunk
really started in the state predicted for it (the caller loads the file as one chunk if not).
The scratch nodes are split by shard (:func:`split_nodes`, shard boundaries from
:func:`sample_boundaries`) and each shard's parts are merged (:func:`merge_nodes`) with the
loader's rules between records (one TTL per RRset, a CNAME alone) into a :class:`Zone`.

Scratch form (see :data:`signer.zone.loader.Scratch`): ``owner -> [[rtype, ttl, [rdata wire,
...], loc], ...]``; ``loc = (file_index << 32) | line`` indexes the chunk's file table
(``paths``), ``line`` being the RRset's first record.

Limits of the prediction, all caught by :func:`chunks_consistent`: a ``$TTL`` inside an
``$INCLUDE``d file (the loader carries it on in the including file; the planner does not read
included files), directive-looking lines inside parentheses, a cut inside parentheses, and a
TTL-less record that would take the last explicit TTL of an earlier chunk.  Chunk line numbers
count ``\n`` (a file ending its lines with a lone ``\r`` would be numbered differently).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import marshal
import mmap
import os
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from signer.errors import InputError
from signer.zone import _accel
from signer.zone.loader import (
    Scratch,
    _Loader,
    join_rrset,
    parse_ttl,
    scratch_zone,
)
from signer.zone.model import Zone, canonical_key, is_subdomain, name_from_text

# first octets of a line that does not name its owner (a cut never starts there)
_NO_OWNER = frozenset(b" \t;$()\r\n")
_SPECIAL = ('"', "\\", "(", ")", ";")
_COUNT_STEP = 1 << 22  # newlines are counted in slices of this size (bounded copies)
# signer/zone/_index.c when the compiled build is in use (None: Python)
_INDEX: list[Any] = [_accel.extension("_index")]
_SAMPLE_LINES = 64  # lines looked at after a sample offset for one that names its owner


@dataclass(frozen=True)
class ChunkState:
    """Loader state at the start of a chunk."""

    origin: bytes  # current $ORIGIN, canonical wire
    ttl_default: int | None  # current $TTL (None: none seen yet)


@dataclass(frozen=True)
class Chunk:
    path: str
    start: int  # byte offset of the first line of the chunk
    end: int  # byte offset where the chunk ends (exclusive; file size for the last)
    first_line: int  # 1-based line number of the line at `start`
    state: ChunkState  # predicted state at `start`


class ChunkResult(NamedTuple):
    nodes: Scratch  # owner -> [[rtype, ttl, list_of_rdata_wire, loc], ...]
    paths: list[str]  # file table; loc = (file_index << 32) | line
    records: int
    end_state: ChunkState | None  # real state after `end` (None: ended inside parentheses)
    needs_previous_ttl: bool  # a TTL-less record needed the last explicit TTL of a chunk before


# -- planning ------------------------------------------------------------------------------


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"cannot read zone file: {exc.strerror}", path=path) from None


def _tokens(raw: bytes, *, open_ok: bool = False) -> list[str] | None:
    """The tokens of one line (None: it does not tokenise, or it opens parentheses and not
    ``open_ok``)."""
    text = raw.decode("utf-8", errors="surrogateescape")
    if not any(c in text for c in _SPECIAL):
        return text.split()
    toks: list[str] = []
    try:
        depth = _Loader._scan(text, toks, 0, "", 0)
    except InputError:
        return None
    return toks if depth == 0 or open_ok else None


class _States:
    """The predicted loader state along a file: ``state_at(offset)`` is the state in force for
    a line starting at ``offset``, from the ``$ORIGIN``/``$TTL`` lines before it (found with
    C-speed searches for ``$``; ``$INCLUDE`` does not change it)."""

    def __init__(self, mm: mmap.mmap, end: int, zone_origin: bytes) -> None:
        self.offsets = [-1]
        self.states = [ChunkState(zone_origin, None)]
        origin, ttl = zone_origin, None
        names: dict[tuple[str, bytes], bytes] = {}
        pos = 0 if mm[:1] == b"$" else _directive_after(mm, 0, end)
        while 0 <= pos < end:
            eol = mm.find(b"\n", pos, end)
            toks = _tokens(mm[pos : eol if eol >= 0 else end])
            if toks is not None and len(toks) == 2:
                word = toks[0].upper()
                if word == "$ORIGIN":
                    key = (toks[1], origin)
                    new = names.get(key)
                    if new is None:
                        try:
                            new = name_from_text(toks[1], origin)
                        except InputError:
                            new = origin  # the chunk holding the line reports it
                        names[key] = new
                    origin = new
                elif word == "$TTL":
                    with contextlib.suppress(InputError):  # the chunk holding it reports it
                        ttl = parse_ttl(toks[1], "", 0)
                if ChunkState(origin, ttl) != self.states[-1]:
                    self.offsets.append(pos)
                    self.states.append(ChunkState(origin, ttl))
            if eol < 0:
                break
            pos = _directive_after(mm, eol, end)

    def state_at(self, offset: int) -> ChunkState:
        return self.states[bisect_left(self.offsets, offset) - 1]


def _directive_after(mm: mmap.mmap, pos: int, end: int) -> int:
    """Start of the next line after ``pos`` (< ``end``) that begins with ``$`` (-1: none).
    Searches for the rare ``$`` alone (memchr speed), then checks it starts a line; the
    pages searched are dropped from this process's resident set as it goes (they stay in the
    page cache), so scanning a big file does not show as memory of the signer."""
    start = pos + 1
    while start < end:
        stop = min(end, start + _COUNT_STEP)
        i = mm.find(b"$", start, stop)
        while i >= 0 and mm[i - 1] != 10:  # b"\n"
            i = mm.find(b"$", i + 1, stop)
        if i >= 0:
            return i
        _drop_pages(mm, start, stop)
        start = stop
    return -1


def _drop_pages(mm: mmap.mmap, start: int, stop: int) -> None:
    """Forget the whole pages of [start, stop) in this mapping (MADV_DONTNEED; read-only
    file mapping: they are read again from the page cache if touched)."""
    first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    if stop - first >= mmap.PAGESIZE and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError):
            mm.madvise(mmap.MADV_DONTNEED, first, (stop - first) // mmap.PAGESIZE * mmap.PAGESIZE)


def _line_start(mm: mmap.mmap, offset: int, size: int) -> int:
    """The first line start at or after ``offset`` (``size``: none)."""
    if offset <= 0:
        return 0
    if mm[offset - 1] == 10:  # b"\n"
        return offset
    nl = mm.find(b"\n", offset)
    return nl + 1 if nl >= 0 else size


def _owner_line(mm: mmap.mmap, pos: int, size: int, limit: int | None = None) -> int:
    """The first line start at or after the line start ``pos`` whose line names its owner
    (-1: none before the end, or within ``limit`` lines)."""
    seen = 0
    while pos < size:
        if mm[pos] not in _NO_OWNER:
            return pos
        seen += 1
        if limit is not None and seen >= limit:
            return -1
        nl = mm.find(b"\n", pos)
        if nl < 0:
            return -1
        pos = nl + 1
    return -1


def _count_lines(mm: mmap.mmap, start: int, end: int) -> int:
    """The newlines in ``mm[start:end]`` (each chunk's first line number), in slices whose
    pages are dropped once counted. With the compiled build in C, on the mapping itself and
    without the GIL (``_index.input_scan``: 0.12 -> 0.04 s for 137 MB, before the workers
    can start); else slices are copied and counted."""
    fast = _INDEX[0]
    count = 0
    for a in range(start, end, _COUNT_STEP):
        stop = min(a + _COUNT_STEP, end)
        count += fast.input_scan(mm, a, stop)[0] if fast is not None else mm[a:stop].count(b"\n")
        _drop_pages(mm, a, stop)
    return count


def plan_chunks(path: str, zone_origin: bytes, n: int, *, min_chunk: int = 1 << 20) -> list[Chunk]:
    """Cut ``path`` into at most ``n`` chunks of roughly equal size (fewer when the file is
    smaller than ``n * min_chunk``; always one at least).  Every cut is at the start of a line
    that names its owner (first octet not blank, tab, ``;``, ``$``, ``(`` or ``)``); each
    chunk's state is predicted from the ``$ORIGIN``/``$TTL`` lines before it."""
    size = _file_size(path)
    first = Chunk(path, 0, size, 1, ChunkState(zone_origin, None))
    count = max(1, min(n, size // max(1, min_chunk)))
    if count == 1 or size == 0:
        return [first]
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        cuts: list[int] = []
        for k in range(1, count):
            target = max(k * size // count, cuts[-1] + 1 if cuts else 1)
            cut = _owner_line(mm, _line_start(mm, target, size), size)
            if cut < 0:
                break
            cuts.append(cut)
        if not cuts:
            return [first]
        states = _States(mm, cuts[-1], zone_origin)
        chunks: list[Chunk] = []
        start, line = 0, 1
        for cut in [*cuts, size]:
            state = states.state_at(start) if start else first.state
            chunks.append(Chunk(path, start, cut, line, state))
            line += _count_lines(mm, start, cut)
            start = cut
        return chunks


# -- loading -------------------------------------------------------------------------------


def load_chunk(chunk: Chunk, zone_origin: bytes, *, allow_dnssec: bool = False) -> ChunkResult:
    """Parse the lines of ``chunk`` (those starting in [start, end)) with the loader's
    syntax, checks and messages, starting in ``chunk.state``; ``$INCLUDE`` files are loaded
    inline.  A chunk after the first may end inside parentheses (``end_state`` None) and may
    lack the last explicit TTL a TTL-less record takes (``needs_previous_ttl``); either makes
    the split unusable (:func:`chunks_consistent`)."""
    ld = _Loader(zone_origin, allow_dnssec, chunk.state.ttl_default, speculative=chunk.start > 0)
    origin = ld.load_range(chunk.path, chunk.start, chunk.end, chunk.first_line, chunk.state.origin)
    end_state = None if ld.open_paren else ChunkState(origin, ld.default_ttl)
    return ChunkResult(ld.nodes, ld.paths, ld.records, end_state, ld.needs_previous_ttl)


def chunks_consistent(chunks: Sequence[Chunk], results: Sequence[ChunkResult]) -> bool:
    """True iff every chunk after the first started in the state the chunk before really
    ended in and needed no TTL from before it: the speculative split gave what loading the
    whole file gives."""
    if len(chunks) != len(results):
        return False
    return all(
        results[i - 1].end_state == chunks[i].state and not results[i].needs_previous_ttl
        for i in range(1, len(chunks))
    )


# -- shards --------------------------------------------------------------------------------


def shard_of(owner: bytes, boundaries: Sequence[bytes]) -> int:
    """The shard holding ``owner``: b with boundaries[b-1] <= key < boundaries[b]."""
    return bisect_right(boundaries, canonical_key(owner))


def split_nodes(nodes: Scratch, boundaries: Sequence[bytes]) -> list[Scratch]:
    """``nodes`` split by shard (``len(boundaries) + 1`` dicts; the lists are shared)."""
    parts: list[Scratch] = [{} for _ in range(len(boundaries) + 1)]
    if not boundaries:
        parts[0].update(nodes)
        return parts
    for owner, ents in nodes.items():
        parts[bisect_right(boundaries, canonical_key(owner))][owner] = ents
    return parts


def split_nodes_first(
    nodes: Scratch, boundaries: Sequence[bytes]
) -> tuple[list[Scratch], list[bytes | None]]:
    """:func:`split_nodes`, and each part's first owner in canonical order (None: empty)."""
    parts: list[Scratch] = [{} for _ in range(len(boundaries) + 1)]
    mins: list[tuple[bytes, bytes] | None] = [None] * len(parts)
    for owner, ents in nodes.items():
        key = canonical_key(owner)
        b = bisect_right(boundaries, key) if boundaries else 0
        parts[b][owner] = ents
        m = mins[b]
        if m is None or key < m[0]:
            mins[b] = (key, owner)
    return parts, [None if m is None else m[1] for m in mins]


# A part packed for another process: its owners, and each owner's scratch entries as one
# marshal blob (version 2).
PackedPart = tuple[list[bytes], list[bytes]]


def split_nodes_packed(
    nodes: Scratch, boundaries: Sequence[bytes]
) -> tuple[list[PackedPart], list[bytes | None]]:
    """:func:`split_nodes_first` for parts that another process merges: each owner's entries
    are dumped as they come, in the chunk's own order (:func:`unpack_part` undoes it).

    Dumping each part's dict whole visits the chunk's objects once per part, in scattered
    memory order: with 32 parts 4x slower than this one pass (1M delegations: the load
    stage's marshal work 1.6 -> ~0.7 s of CPU)."""
    n = len(boundaries) + 1
    owners: list[list[bytes]] = [[] for _ in range(n)]
    blobs: list[list[bytes]] = [[] for _ in range(n)]
    mins: list[tuple[bytes, bytes] | None] = [None] * n
    dumps = marshal.dumps
    for owner, ents in nodes.items():
        key = canonical_key(owner)
        b = bisect_right(boundaries, key) if boundaries else 0
        owners[b].append(owner)
        blobs[b].append(dumps(ents, 2))
        m = mins[b]
        if m is None or key < m[0]:
            mins[b] = (key, owner)
    return list(zip(owners, blobs, strict=True)), [None if m is None else m[1] for m in mins]


def unpack_part(part: PackedPart) -> Scratch:
    """The scratch nodes of a part packed by :func:`split_nodes_packed`."""
    owners, blobs = part
    # made by a worker of ours, in our private (0700) temporary directory
    return dict(zip(owners, map(marshal.loads, blobs), strict=True))


def merge_nodes(parts: Sequence[tuple[Scratch, list[str]]], zone_origin: bytes) -> Zone:
    """One shard's :class:`Zone` (nodes only) from the scratch nodes of several chunks, given
    in file order with each chunk's file table.  Records of one owner and type are one RRset;
    the loader's rules between records apply across chunks, naming the later record's
    ``file:line`` and the earlier one's place.  The parts' node dicts and lists are reused
    (consumed)."""
    index: dict[str, int] = {}  # the merged file table, path -> its index
    merged: Scratch = {}
    for nodes, paths in parts:
        remap = [index.setdefault(p, len(index)) for p in paths]
        table = list(index)
        if remap != list(range(len(remap))):
            for ents in nodes.values():
                for ent in ents:
                    loc = ent[3]
                    assert isinstance(loc, int)
                    ent[3] = (remap[loc >> 32] << 32) | (loc & 0xFFFFFFFF)
        if not merged:
            merged = nodes
            continue
        for owner, ents in nodes.items():
            node = merged.get(owner)
            if node is None:
                merged[owner] = ents
                continue
            for ent in ents:
                rtype, ttl, loc = ent[0], ent[1], ent[3]
                assert isinstance(rtype, int) and isinstance(ttl, int) and isinstance(loc, int)
                path, line = table[loc >> 32], loc & 0xFFFFFFFF
                lst = join_rrset(node, owner, rtype, ttl, table, path, line)
                if lst is None:
                    node.append(ent)
                else:
                    lst.extend(ent[2])  # type: ignore[arg-type]
    return scratch_zone(zone_origin, merged)


# -- shard boundaries ----------------------------------------------------------------------


def _apex_child(name: bytes, zone_origin: bytes) -> bytes:
    """The ancestor of ``name`` (strictly below the apex) directly below the apex."""
    cut = len(name) - len(zone_origin)
    i = 0
    while i + 1 + name[i] < cut:
        i += 1 + name[i]
    return name[i:]


def _hash_children(zone_origin: bytes, count: int) -> list[bytes]:
    """``count`` deterministic NSEC3-like apex children (32 base32hex octets each)."""
    out = []
    for i in range(count):
        digest = hashlib.sha256(b"shard-boundary-%d" % i).digest()[:20]
        label = base64.b32hexencode(digest).lower()
        out.append(bytes((len(label),)) + label + zone_origin)
    return out


def sample_boundaries(
    path: str,
    zone_origin: bytes,
    n: int,
    *,
    nsec3: bool = False,
    samples: int = 4096,
    nsec3_share: float = 1.0,
) -> list[bytes]:
    """Up to ``n - 1`` sorted, distinct canonical keys of apex children: quantiles of the
    owners at ``samples`` evenly spaced offsets of the file (each reduced to its apex-child
    ancestor; the apex, names outside the zone and unparsable lines skipped).  ``nsec3``
    mixes in ``nsec3_share`` times as many uniformly spread hash-like apex children (NSEC3
    owners: with opt-out only secure delegations get one, so they weigh less)."""
    size = _file_size(path)
    if n <= 1 or size == 0:
        return []
    children: list[bytes] = []
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        states = _States(mm, size, zone_origin)
        for k in range(max(1, samples)):
            pos = _owner_line(mm, _line_start(mm, k * size // samples, size), size, _SAMPLE_LINES)
            if pos < 0:
                continue
            eol = mm.find(b"\n", pos)
            toks = _tokens(mm[pos : eol if eol >= 0 else size], open_ok=True)
            if not toks or toks[0].startswith("$"):
                continue
            try:
                owner = name_from_text(toks[0], states.state_at(pos).origin)
            except InputError:
                continue
            if owner != zone_origin and is_subdomain(owner, zone_origin):
                children.append(_apex_child(owner, zone_origin))
    if nsec3:
        children += _hash_children(zone_origin, round(len(children) * nsec3_share))
    keys = sorted(canonical_key(c) for c in children)
    if not keys:
        return []
    picked = {keys[j * len(keys) // n] for j in range(1, n)}
    return sorted(picked)
