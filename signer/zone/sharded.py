"""Sharded signing: every stage of ``zonesigner sign`` runs in the workers, shard by shard.

A *shard* is a contiguous range of the zone in canonical order whose boundaries are names
directly below the apex (:func:`signer.zone.chunkload.sample_boundaries`): everything under
one child of the apex -- a delegation, its glue, occluded data, empty non-terminals -- is in
one shard, and the apex is in shard 0. NSEC3 owner names are apex children too; each lives in
the shard whose range holds it. A shard is an ordinary :class:`signer.zone.model.Zone`.

There are ``--jobs`` shards, or up to :data:`SPREAD` per worker for a big zone file (at
least :data:`SHARD_BYTES` each). The workers take the tasks of a stage (a chunk, a shard)
one at a time, as they become free, and keep no zone data between tasks: what a later stage
needs is in a private temporary directory. A worker thus holds one chunk or one shard at a
time, and the tasks balance across workers.

Stages (``W`` = tasks in the workers, ``P`` = in the parent, on small data):

1. P: cut the zone file (and ``--previous``) into byte chunks at owner lines, predicting the
   ``$ORIGIN``/``$TTL`` state at each cut (:func:`signer.zone.chunkload.plan_chunks`).
2. W ``load``: parse chunk *j*, split its nodes by shard, one marshal file per shard (its first
   owner and the apex SOA go into the report). P checks that the speculative cuts were right
   (each chunk ended in the state the next one assumed); if not, or if a chunk after the
   first failed, the file is loaded again as one chunk (so the error reported is the true
   first one).
3. P takes what the shards need from each other off the load reports: each shard's first
   chain name (NSEC: its first owner), the NSEC/NSEC3 TTL (the apex SOA), the DNSKEY RRset
   (the bundle's) and the NSEC3PARAM.
4. W ``sign``: merge the shard's pieces (TTL and CNAME rules across chunks), sort and
   classify it (shard 0 sets the serial and adds the bundle's DNSKEY/CDS/CDNSKEY RRsets and
   the NSEC3PARAM), add NSEC, sign (reusing ``--previous`` signatures), render the signed
   text to a part file and self-verify it (:func:`verify_shard`), batch by batch. P checks
   that what it read off the load reports is what the shards found (else nothing is
   written). NSEC3: the shard's chain names and ENTs are hashed; its text, without the
   chain, is written with its names and each one's text length.
5. NSEC3 only: P sorts the hashes of all shards (collisions refused) and cuts the sorted
   chain by the shard owning each owner name; W ``sign_nsec3`` links its share into NSEC3
   records (the last pointing to the hash after the share), signs, renders and verifies
   them and writes its part: the text of stage 4 with each record's block of lines
   inserted where its owner is in canonical order. (Merging each
   shard once, not twice as when the chain was linked first, saves ~1 s at 1M.)
6. P combines the verification (NSEC joints, the NSEC3 chain on compact lists) while it
   streams the parts in order into the temporary output file (SHA-256), which the caller
   renames. The output is byte-identical for any number of shards and workers.

Workers are ``fork``-ed processes talking to the parent over pipes; with one worker the same
stage functions run in the calling process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import marshal
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
import time
import traceback
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Lock
from operator import itemgetter
from typing import IO, Any

from signer.dnskey import DnsKey, DsRecord
from signer.errors import DnssecCeremonyError, OutputError
from signer.zone.chunkload import (
    Chunk,
    ChunkResult,
    ChunkState,
    chunks_consistent,
    load_chunk,
    merge_nodes,
    plan_chunks,
    sample_boundaries,
    split_nodes_first,
    split_nodes_packed,
    unpack_part,
)
from signer.zone.loader import Scratch
from signer.zone.model import (
    T_DNAME,
    T_DNSKEY,
    T_NSEC3,
    T_RRSIG,
    T_SOA,
    RRset,
    Zone,
    canonical_key,
    is_subdomain,
    rrsig_fields,
    soa_fields,
    soa_with_serial,
)
from signer.zone.nsec import CHAIN_KINDS, add_nsec, negative_ttl
from signer.zone.nsec3 import (
    Hashed,
    chain_entries,
    check_iterations,
    hash_entries,
    insertion_points,
    link_records,
    nsec3_owner,
    nsec3_zone,
    nsec3param_rrset,
    sort_chain,
)
from signer.zone.rules import Classification, classify
from signer.zone.serial import new_serial
from signer.zone.signing import (
    KeyLike,
    KeyOpener,
    Previous,
    RangeContext,
    SignParams,
    SigTimes,
    fast_signer,
    open_key_retrying,
    sign_range,
)
from signer.zone.verify import (
    ShardContext,
    ShardVerification,
    VerifyReport,
    combine_shards,
    verify_shard,
)

RANGE_NAMES = 4096  # names signed and rendered per batch (and per progress report)
# With NSEC3 opt-out the hashed owners weigh this much per name when shards are balanced
# (1M delegations, 30 % secure, 2 shards: 1.0 left one shard 23 % busier, 0.5 9 %, 0.25 -5 %)
NSEC3_OPTOUT_SHARE = 0.35
SAMPLE_MIN = 200  # --verify sample: at least this many signatures verified in all (if any)
MIN_CHUNK = 1 << 20  # smaller zone files are parsed by one worker (tests lower it)
# A big zone is cut into up to SPREAD shards per worker, each of at least SHARD_BYTES of zone
# file: a worker holds one shard (or one chunk) at a time. 1M delegations, 2 workers: peak RSS
# per worker ~560 -> ~150 MB (tests lower SHARD_BYTES to get many shards from small zones).
# Small shards also make the workers finish together (16 per worker: the sign stage ~0.6 s
# shorter at 1M than with 8, peak RSS per worker 86 MB). The file is parsed in as many chunks
# (4 per worker instead: 0.1 s faster, but 111 MB per worker).
SPREAD = 16
SHARD_BYTES = 4 << 20
_COPY = 1 << 20


@dataclass(frozen=True)
class Denial:
    mode: str  # "nsec" or "nsec3"
    salt: bytes = b""
    iterations: int = 0
    optout: bool = False


@dataclass(frozen=True)
class VerifySpec:
    level: str
    trust_anchor: tuple[DsRecord, ...]
    zsk: DnsKey
    min_validity: int


@dataclass(frozen=True)
class Plan:
    """What every worker needs; inherited through ``fork`` (never pickled)."""

    zonefile: str
    previous: str | None
    origin: bytes
    boundaries: tuple[bytes, ...]
    tmpdir: str
    params: SignParams
    times: SigTimes
    refresh: int
    denial: Denial
    verify: VerifySpec
    serial_mode: str
    apex_rrsets: tuple[RRset, ...]  # DNSKEY/CDS/CDNSKEY from the bundle, with their RRSIGs
    want_index: bool = False  # return each shard's names and text lengths (OutputIndex)
    workers: int = 1  # processes (at most the number of shards)

    @property
    def shards(self) -> int:
        return len(self.boundaries) + 1


@dataclass(frozen=True)
class LoadReport:
    records: int
    zone_meta: tuple[ChunkState | None, bool] | None  # (end_state, needs_previous_ttl)
    prev_meta: tuple[ChunkState | None, bool] | None
    apex_dname: bool
    firsts: list[bytes | None]  # per shard: its first owner in this chunk (canonical order)
    apex_soa: tuple[int, bytes] | None  # (TTL, RDATA) of the first apex SOA in this chunk
    names: int  # owners in this chunk of the zone


@dataclass(frozen=True)
class Loaded:
    """What the load stage left in the temporary directory."""

    zone_chunks: int
    prev_chunks: int
    apex_dname: bool


@dataclass(frozen=True)
class MergeReport:
    classification: Classification
    names: int
    first_chain: bytes | None
    hashed: list[Hashed]
    ents: int
    # shard 0 only
    serial: int | None = None
    negative_ttl: int | None = None
    dnskey: RRset | None = None
    nsec3param: bytes | None = None


@dataclass(frozen=True)
class SignReport:
    created: int
    reused: int
    rrsets_signed: int
    min_exp: int
    max_exp: int
    names: int
    rrsets: int
    chain: int
    part_bytes: int
    part_lines: int  # newlines in what it wrote (sign_nsec3: in the shard's whole part)
    verification: list[ShardVerification]  # one per batch, in order
    index: OutputIndex | None
    merge: MergeReport | None  # None: sign_nsec3's (NSEC3: hashed emptied once linked)


@dataclass(frozen=True)
class OutputIndex:
    """Where each name's text is in the signed output, compactly (it crosses a pipe and
    stays in the parent for the state): the names in output (canonical) order as one
    ``blob`` of wire names with each one's length in ``namelens``, and the length in bytes
    of each name's block of lines in ``lengths``."""

    blob: bytes
    namelens: array[int]
    lengths: array[int]

    @classmethod
    def of(cls, names: list[bytes], lengths: array[int]) -> OutputIndex:
        return cls(b"".join(names), array("B", map(len, names)), lengths)

    def names(self) -> list[bytes]:
        out = []
        pos = 0
        blob = self.blob
        for n in self.namelens:
            out.append(blob[pos : pos + n])
            pos += n
        return out


class ShardWorker:
    """The stages, shard by shard: one per worker process (in-process with one worker).

    It keeps no zone data between calls: every stage reads what it needs from the private
    temporary directory (the load stage's pieces) and returns a small report, so a worker
    holds one chunk or one shard at a time, and any worker can take any shard."""

    def __init__(
        self,
        plan: Plan,
        opener: KeyOpener,
        progress: Callable[[int], None] | None = None,
        key: KeyLike | None = None,
        key_lock: Lock | None = None,
    ) -> None:
        self.plan = plan
        self.opener = opener
        self.progress = progress
        self.key = key
        self.key_lock = key_lock
        # one shard: its pieces stay in memory (nothing to hand to another process)
        self.kept: dict[str, tuple[Scratch, list[str]]] = {}

    # -- stage 2 ---------------------------------------------------------------------------
    def load(self, zone_chunk: Chunk | None, prev_chunk: Chunk | None, ci: int) -> LoadReport:
        plan = self.plan
        records = 0
        apex_dname = False
        apex_soa: tuple[int, bytes] | None = None
        firsts: list[bytes | None] = []
        names = 0
        metas: list[tuple[ChunkState | None, bool] | None] = []
        for tag, chunk in (("z", zone_chunk), ("p", prev_chunk)):
            if chunk is None:
                metas.append(None)
                continue
            res: ChunkResult = load_chunk(chunk, plan.origin, allow_dnssec=tag == "p")
            records += res.records
            if tag == "z":
                apex = res.nodes.get(plan.origin, ())
                apex_dname = any(ent[0] == T_DNAME for ent in apex)
                apex_soa = _first_soa(apex)
            metas.append((res.end_state, res.needs_previous_ttl))
            if tag == "z":
                names = len(res.nodes)
            if plan.shards == 1:  # one part: it stays here
                parts, mins = split_nodes_first(res.nodes, plan.boundaries)
                if parts[0]:
                    self.kept[self._part_path(tag, 0, ci)] = (parts[0], res.paths)
            else:
                packed, mins = split_nodes_packed(res.nodes, plan.boundaries)
                for b, (owners, blobs) in enumerate(packed):
                    if not owners:
                        continue
                    with open(self._part_path(tag, b, ci), "wb") as fh:
                        # marshal: plain lists, ints and bytes, 8x faster to write than
                        # pickle; version 2 (no references): 2x faster to write than 4
                        fh.write(marshal.dumps((owners, blobs, res.paths), 2))
                del packed
            if tag == "z":
                firsts = mins
            del res
        return LoadReport(records, metas[0], metas[1], apex_dname, firsts, apex_soa, names)

    def reset(self) -> None:
        self.kept.clear()

    def _part_path(self, tag: str, shard: int, ci: int) -> str:
        return os.path.join(self.plan.tmpdir, f"{tag}-{shard}-{ci}.pkl")

    def _parts(self, tag: str, shard: int, nchunks: int) -> list[tuple[Scratch, list[str]]]:
        """The pieces of ``shard`` from every chunk, in file order (consumed)."""
        out = []
        for ci in range(nchunks):
            path = self._part_path(tag, shard, ci)
            mine = self.kept.pop(path, None)
            if mine is not None:
                out.append(mine)
                continue
            if os.path.exists(path):
                with open(path, "rb") as fh:
                    # written by a worker of ours into our private (0700) directory; read
                    # whole: marshal.load on a file object reads item by item, 5x slower
                    owners, blobs, paths = marshal.loads(fh.read())  # noqa: S302
                out.append((unpack_part((owners, blobs)), paths))
                os.unlink(path)
        return out

    # -- stage 3 ---------------------------------------------------------------------------
    def _merge(
        self, shard: int, loaded: Loaded, *, hash_chain: bool
    ) -> tuple[Zone, Previous | None, MergeReport]:
        """Shard ``shard`` as a classified zone: its pieces merged (TTL and CNAME rules
        across chunks), sorted, classified; shard 0 sets the serial and adds the bundle's
        RRsets (and the NSEC3PARAM). ``hash_chain``: hash its NSEC3 chain names and ENTs."""
        plan = self.plan
        origin = plan.origin
        zone = merge_nodes(self._parts("z", shard, loaded.zone_chunks), origin)
        previous: Previous | None = None
        if plan.previous is not None:
            prev = merge_nodes(self._parts("p", shard, loaded.prev_chunks), origin)
            previous = _previous_from(prev)
            del prev
        first = shard == 0
        zone.sort()
        cls = classify(zone, apex=first, apex_dname=loaded.apex_dname)
        serial = ttl = None
        dnskey = None
        param = None
        if first:
            soa = zone.soa()
            prev_serial = None
            if previous is not None:
                prev_soa = previous.get((origin, T_SOA))
                if prev_soa is not None:
                    prev_serial = soa_fields(prev_soa.rdatas[0]).serial
            serial = new_serial(
                plan.serial_mode, soa_fields(soa.rdatas[0]).serial, plan.times.now, prev_serial
            )
            apex = zone.nodes[origin]
            apex[apex.index(soa)] = soa._replace(rdatas=(soa_with_serial(soa.rdatas[0], serial),))
            apex.extend(plan.apex_rrsets)
            ttl = negative_ttl(zone)
            if plan.denial.mode == "nsec3":
                d = plan.denial
                apex.append(nsec3param_rrset(origin, ttl, d.salt, d.iterations))
                param = apex[-1].rdatas[0]
            apex.sort(key=lambda r: r.rtype)
            dnskey = zone.get(origin, T_DNSKEY)
        hashed: list[Hashed] = []
        ents = 0
        if hash_chain:
            d = plan.denial
            entries, ent_names = chain_entries(zone, optout=d.optout)
            hashed = hash_entries(entries, d.salt, d.iterations)
            ents = len(ent_names)
        kinds = zone.kinds
        first_chain = next((n for n in zone.order if kinds[n] in CHAIN_KINDS), None)
        report = MergeReport(
            cls, len(zone.order), first_chain, hashed, ents,
            serial, ttl, dnskey, param,
        )  # fmt: skip
        return zone, previous, report

    # -- stage 3 ---------------------------------------------------------------------------
    def sign(
        self,
        shard: int,
        loaded: Loaded,
        wrap_to: bytes | None,
        ctx: ShardContext,
        sample_min: int,
    ) -> SignReport:
        """Merge, classify and sign the shard, render it to its part file and verify it.

        NSEC3: everything but the chain, whose names are hashed for the parent to link; the
        text goes to ``text-N.txt`` with the names and each one's text length, for
        :meth:`sign_nsec3` to put the shard's NSEC3 records in their places."""
        plan = self.plan
        nsec3 = plan.denial.mode == "nsec3"
        zone, previous, merged = self._merge(shard, loaded, hash_chain=nsec3)
        if shard == 0 and (
            merged.negative_ttl != ctx.negative_ttl
            or merged.dnskey != ctx.dnskey
            or merged.nsec3param != ctx.nsec3param
        ):
            raise WorkerFailed(
                "internal error: the apex read before signing (SOA, DNSKEY, NSEC3PARAM) differs "
                "from the merged apex; nothing was written"
            )
        lengths: array[int] | None = array("Q") if plan.want_index or nsec3 else None
        tmpdir = plan.tmpdir
        part = os.path.join(tmpdir, f"text-{shard}.txt" if nsec3 else f"part-{shard}.txt")
        with open(part, "wb") as fh:
            done = self._sign_zone(
                zone, previous, fh.write, lengths, None if nsec3 else wrap_to, ctx, sample_min,
                apex=shard == 0,
            )  # fmt: skip
        index = None
        if nsec3:
            assert lengths is not None
            # what sign_nsec3 needs of this shard: its names, their text lengths and the
            # NSEC3 RRsets of --previous (their signatures may be reused)
            kept = [
                (rs.owner, rs.ttl, rs.rdatas, rs.sigs)
                for (_, rtype), rs in (previous or {}).items()
                if rtype == T_NSEC3
            ]
            with open(os.path.join(tmpdir, f"names-{shard}.m"), "wb") as fh:
                fh.write(marshal.dumps((zone.order, lengths.tobytes(), kept, done.lines), 2))
        elif lengths is not None:
            index = OutputIndex.of(zone.order, lengths)
        count = len(zone.order)
        del zone, previous
        return done.report(count, index, merged)

    # -- stage 4 (NSEC3) -------------------------------------------------------------------
    def sign_nsec3(
        self,
        shard: int,
        routed: tuple[list[Hashed], bytes],
        ctx: ShardContext,
        sample_min: int,
    ) -> SignReport:
        """Link the shard's share of the sorted chain (``routed``: its entries and the hash
        after them) into NSEC3 records, sign, render and verify them, and write its part:
        the text :meth:`sign` made with each NSEC3 owner's block inserted where the owner is
        in canonical order."""
        plan = self.plan
        d = plan.denial
        entries, after = routed
        records = link_records(
            entries, after, salt=d.salt, iterations=d.iterations, optout=d.optout
        )
        del entries
        tmpdir = plan.tmpdir
        names_path = os.path.join(tmpdir, f"names-{shard}.m")
        with open(names_path, "rb") as fh:
            order, lengths_bytes, kept, text_lines = marshal.loads(fh.read())  # noqa: S302
        os.unlink(names_path)
        lengths: array[int] = array("Q")
        lengths.frombytes(lengths_bytes)
        zone = nsec3_zone(plan.origin, records, ctx.negative_ttl)
        owners = zone.order
        points = insertion_points(order, owners)  # refuses an owner equal to a name
        previous: Previous | None = None
        if plan.previous is not None:
            make = tuple.__new__
            previous = {
                (o, T_NSEC3): make(RRset, (o, T_NSEC3, ttl, rdatas, sigs))
                for o, ttl, rdatas, sigs in kept
            }
        pieces: list[bytes] = []
        nlengths: array[int] = array("Q")
        done = self._sign_zone(
            zone, previous, pieces.append, nlengths, None, ctx, sample_min, apex=False
        )
        done.chain = len(owners)
        done.lines += text_lines  # the part's: the text's and the records'
        text_path = os.path.join(tmpdir, f"text-{shard}.txt")
        with open(text_path, "rb") as fh:
            text = fh.read()
        os.unlink(text_path)
        chain = b"".join(pieces)
        del pieces
        starts = list(itertools.accumulate(lengths, initial=0))
        cstarts = list(itertools.accumulate(nlengths, initial=0))
        # the text is cut only between names' blocks of lines: refuse lengths that do not
        # add up to it, or a cut that is not at the start of a line
        if starts[-1] != len(text) or cstarts[-1] != len(chain):
            raise WorkerFailed(
                f"internal error: shard {shard}'s text is not the length its names add up to; "
                "nothing was written"
            )
        tv, cv = memoryview(text), memoryview(chain)
        out: list[memoryview] = []
        at = 0
        for j, k in enumerate(points):
            pos = starts[k]
            if pos and text[pos - 1] != 0x0A:
                raise WorkerFailed(
                    f"internal error: shard {shard}'s NSEC3 records would be inserted inside "
                    "a line; nothing was written"
                )
            if pos > at:
                out.append(tv[at:pos])
                at = pos
            out.append(cv[cstarts[j] : cstarts[j + 1]])
        out.append(tv[at:])
        with open(os.path.join(tmpdir, f"part-{shard}.txt"), "wb") as fh:
            fh.writelines(out)
        del out, tv, cv, text, chain
        index = None
        if plan.want_index:
            names: list[bytes] = []
            merged_lengths: array[int] = array("Q")
            prev = 0
            for j, k in enumerate(points):
                names.extend(order[prev:k])
                merged_lengths.extend(lengths[prev:k])
                names.append(owners[j])
                merged_lengths.append(nlengths[j])
                prev = k
            names.extend(order[prev:])
            merged_lengths.extend(lengths[prev:])
            index = OutputIndex.of(names, merged_lengths)
        return done.report(len(owners), index, None)

    def _sign_zone(
        self,
        zone: Zone,
        previous: Previous | None,
        write: Callable[[bytes], object],
        lengths: array[int] | None,
        wrap_to: bytes | None,
        ctx: ShardContext,
        sample_min: int,
        *,
        apex: bool,
    ) -> _Signed:
        """Sign ``zone`` batch by batch: NSEC added (``wrap_to``: the first chain name after
        the zone, for NSEC), signed (reusing ``previous``), rendered to ``write`` (each
        name's text length appended to ``lengths``) and verified. ``apex``: the first batch
        holds the apex."""
        plan = self.plan
        key = self.key
        if key is None:
            if self.key_lock is not None:
                with self.key_lock:  # one session login at a time (see open_key_retrying)
                    key = open_key_retrying(self.opener)
            else:
                key = open_key_retrying(self.opener)
            self.key = key  # opened once per process, for every shard it signs
        rctx = RangeContext(
            zone, plan.params, plan.times, previous, plan.refresh, fast_signer(key), lengths
        )
        done = _Signed()
        v = plan.verify
        order = zone.order
        nodes = zone.nodes
        kinds = zone.kinds
        batches = _batches(order, zone.origin)
        nsec = wrap_to is not None
        nexts = _batch_wraps(zone, batches, wrap_to if wrap_to is not None else zone.origin)
        for (start, end), nxt in zip(batches, nexts, strict=True):
            names = order[start:end]
            mine = dict(zip(names, map(nodes.__getitem__, names), strict=True))
            batch = Zone(zone.origin, mine, names, kinds)
            if nsec:  # added batch by batch, like the signatures
                done.chain += add_nsec(batch, wrap_to=nxt, ttl=ctx.negative_ttl)
            res = sign_range(rctx, start, end)
            write(res.text)
            done.written += len(res.text)
            done.lines += res.text.count(b"\n")
            done.created += res.created
            done.reused += res.reused
            if res.sigs:
                done.lo = min(done.lo, res.min_exp)
                done.hi = max(done.hi, res.max_exp)
            done.signed += len(res.sigs)
            # Verified as soon as signed, then dropped: only one batch of signatures,
            # NSEC/NSEC3 records and verifier state is in memory at a time.
            first = apex and start == 0  # the batch holding the apex
            done.verdicts.append(
                verify_shard(
                    batch,
                    dataclasses.replace(ctx, index=0 if first else 1, next_chain_name=nxt),
                    trust_anchor_ds=v.trust_anchor,
                    now=plan.times.now,
                    level=v.level,
                    zsk=v.zsk,
                    min_validity=v.min_validity,
                    sample_min=sample_min,
                )
            )
            done.rrsets += batch.rrset_count()
            # the zone's RRsets stay until it is done (freed all at once): freeing each
            # batch's as it was signed (deleting its names from the dicts, or emptying
            # their lists) cost ~1 s at 1M NSEC3, for ~5-15 MB less per worker
            del batch, mine, names, res
            if self.progress is not None:
                self.progress(end - start)
        if plan.denial.mode == "nsec3":  # the chain lists travel and wait in the parent
            for verdict in done.verdicts:
                verdict.pack_nsec3()
        return done


@dataclass
class _Signed:
    """What :meth:`ShardWorker._sign_zone` counted."""

    created: int = 0
    reused: int = 0
    signed: int = 0
    lo: int = 0xFFFFFFFFFFFF
    hi: int = 0
    rrsets: int = 0
    chain: int = 0
    written: int = 0
    lines: int = 0
    verdicts: list[ShardVerification] = field(default_factory=list)

    def report(
        self, names: int, index: OutputIndex | None, merged: MergeReport | None
    ) -> SignReport:
        return SignReport(
            self.created, self.reused, self.signed, self.lo if self.signed else 0, self.hi,
            names, self.rrsets, self.chain, self.written, self.lines, self.verdicts, index,
            merged,
        )  # fmt: skip


def _apex_child(name: bytes, origin: bytes) -> bytes | None:
    """The name directly below the apex that is ``name`` or its ancestor (None: the apex)."""
    cut = len(name) - len(origin)
    if cut <= 0:
        return None
    i = last = 0
    while i < cut:
        last = i
        i += 1 + name[i]
    return name[last:]


def _batches(order: list[bytes], origin: bytes) -> list[tuple[int, int]]:
    """``order`` cut into runs of about RANGE_NAMES names, never inside the subtree of an apex
    child (so a batch can be classified and verified on its own)."""
    n = len(order)
    out = []
    start = 0
    while start < n:
        end = min(n, start + RANGE_NAMES)
        child = _apex_child(order[end - 1], origin) if end < n else None
        if child is not None:
            while end < n and order[end].endswith(child) and is_subdomain(order[end], child):
                end += 1
        out.append((start, end))
        start = end
    return out


def _batch_wraps(zone: Zone, batches: list[tuple[int, int]], wrap_to: bytes) -> list[bytes]:
    """For each batch, the first NSEC-chain name after it (``wrap_to`` after the last)."""
    kinds = zone.kinds
    order = zone.order
    out: list[bytes] = []
    nxt = wrap_to
    for start, end in reversed(batches):
        out.append(nxt)
        for i in range(start, end):
            if kinds[order[i]] in CHAIN_KINDS:
                nxt = order[i]
                break
    out.reverse()
    return out


def _previous_from(z: Zone) -> Previous:
    """The previous signed zone as {(owner, type): RRset with its RRSIGs}."""
    prev: Previous = {}
    for owner, rrsets in z.nodes.items():
        sigs: dict[int, list[bytes]] = {}
        for rs in rrsets:
            if rs.rtype == T_RRSIG:
                for sig in rs.rdatas:
                    sigs.setdefault(rrsig_fields(sig).type_covered, []).append(sig)
        for rs in rrsets:
            if rs.rtype != T_RRSIG:
                prev[(owner, rs.rtype)] = rs._replace(sigs=tuple(sigs.get(rs.rtype, ())))
    return prev


# -- running the workers ----------------------------------------------------------------------
class WorkerFailed(DnssecCeremonyError):
    """A worker process died or raised something that is not one of our errors."""


class _Pool:
    """``plan.workers`` forked :class:`ShardWorker` processes (or one in-process), handed
    the tasks of a stage one at a time as they become free."""

    def __init__(
        self,
        plan: Plan,
        opener: KeyOpener,
        key: KeyLike | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.progress = progress
        self.seconds: dict[str, list[float]] = {}  # per stage, each worker's busy time
        self.peak_mb: dict[str, list[int]] = {}  # per stage, each worker's peak RSS after it
        self.local: ShardWorker | None = None
        self.closed = False
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        if plan.workers == 1:
            self.local = ShardWorker(plan, opener, progress, key)
            return
        mp = multiprocessing.get_context("fork")
        lock = mp.Lock()
        for i in range(plan.workers):
            parent_end, child_end = mp.Pipe()
            p = mp.Process(
                target=_worker_main,
                args=(child_end, plan, opener, lock),
                name=f"zonesigner-worker-{i}",
                daemon=True,
            )
            p.start()
            child_end.close()
            self.procs.append(p)
            self.conns.append(parent_end)

    def map(
        self,
        method: str,
        args: list[tuple[object, ...] | None],
        on_result: Callable[[int, Any], None] | None = None,
    ) -> list[Any]:
        """Run ``method(*args[t])`` for every task t, in order of t on the first free worker;
        results in task order. ``on_result(t, result)``: called in the parent as each task succeeds
        (after the worker got its next task).

        Each ``args[t]`` is dropped once handed over (NSEC3 records need not stay in the
        parent while the workers sign). After an error no further task starts; the tasks
        already running finish, and the error of the lowest task is raised (every task
        below it has started: they start in order)."""
        if self.local is not None:
            started = time.perf_counter()
            results: list[Any] = []
            for t, a in enumerate(args):
                assert a is not None
                args[t] = None
                results.append(getattr(self.local, method)(*a))
                if on_result is not None:
                    on_result(t, results[t])
            self.seconds[method] = [round(time.perf_counter() - started, 3)]
            self.peak_mb[method] = [_peak_rss_mb()]
            return results
        from multiprocessing.connection import wait

        workers = len(self.conns)
        results = [None] * len(args)
        seconds = [0.0] * workers
        peak = [0] * workers
        self.seconds[method] = seconds
        self.peak_mb[method] = peak
        errors: dict[int, BaseException] = {}
        busy: dict[int, int] = {}  # worker -> its task
        dead: set[int] = set()
        todo = iter(range(len(args)))

        def hand_out(w: int) -> None:
            if errors or w in dead:
                return
            t = next(todo, None)
            if t is None:
                return
            a = args[t]
            args[t] = None
            self.conns[w].send((method, a))
            busy[w] = t

        for w in range(workers):
            hand_out(w)
        while busy:
            ready = wait([self.conns[w] for w in busy])
            for w in [w for w in busy if self.conns[w] in ready]:
                try:
                    kind, value = self.conns[w].recv()
                except (EOFError, OSError):
                    self.procs[w].join(timeout=5)
                    code = self.procs[w].exitcode
                    errors[busy.pop(w)] = WorkerFailed(
                        f"signing worker {w} died (exit code {code})"
                    )
                    dead.add(w)
                    continue
                if kind == "progress":
                    if self.progress is not None:
                        self.progress(value)
                    continue
                t = busy.pop(w)
                if kind == "ok":
                    results[t], secs, mb = value
                    seconds[w] = round(seconds[w] + secs, 3)
                    peak[w] = max(peak[w], mb)
                else:
                    errors[t] = value
                hand_out(w)
                if kind == "ok" and on_result is not None and not errors:
                    on_result(t, results[t])
        if errors:
            raise errors[min(errors)]
        return results

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        for conn in self.conns:
            conn.close()


def _worker_main(conn: Connection, plan: Plan, opener: KeyOpener, lock: Lock) -> None:
    import gc

    gc.disable()  # millions of acyclic tuples: full collections would cost seconds for nothing

    def progress(n: int) -> None:
        conn.send(("progress", n))

    worker = ShardWorker(plan, opener, progress, key_lock=lock)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        method, args = msg
        started = time.perf_counter()
        try:
            result = getattr(worker, method)(*args)
        except BaseException as exc:
            conn.send(("error", picklable_error(exc)))
            continue
        del args
        conn.send(("ok", (result, round(time.perf_counter() - started, 3), _peak_rss_mb())))
        del result  # not kept alive through the next task (NSEC3: the shard's hashes)


def _peak_rss_mb() -> int:
    """This process's peak resident set size so far (MB), 0 where /proc is missing."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def picklable_error(exc: BaseException) -> BaseException:
    if isinstance(exc, DnssecCeremonyError):
        with contextlib.suppress(Exception):  # not picklable: sent as text below
            pickle.dumps(exc)
            return exc
    text = "".join(traceback.format_exception(exc)).rstrip()
    return WorkerFailed(f"signing worker failed: {text}")


# -- the coordinator --------------------------------------------------------------------------
@dataclass
class ShardedResult:
    serial: int
    classification: Classification
    names: int
    rrsets: int
    chain: int
    ents: int
    created: int
    reused: int
    rrsets_signed: int
    min_expiration: int
    max_expiration: int
    processes: int
    shards: int
    load_chunks: int
    verification: VerifyReport
    timings: dict[str, float] = field(default_factory=dict)
    shard_seconds: dict[str, list[float]] = field(default_factory=dict)  # stage -> per shard
    shard_peak_mb: dict[str, list[int]] = field(default_factory=dict)  # peak RSS after it
    index: OutputIndex | None = None
    # NSEC3 with want_index: the chain's hashes (20 bytes each) in hash order, concatenated
    nsec3_hashes: bytes = b""


def sign_sharded(
    *,
    zonefile: str,
    previous: str | None,
    origin: bytes,
    jobs: int,
    params: SignParams,
    times: SigTimes,
    refresh: int,
    denial: Denial,
    verify: VerifySpec,
    serial_mode: str,
    apex_rrsets: Sequence[RRset],
    opener: KeyOpener,
    key: KeyLike | None,
    out: IO[bytes],
    out_dir: str,
    digest: Any,
    progress_start: Callable[[int], Callable[[int], None] | None] | None = None,
    want_index: bool = False,
    meanwhile: Callable[[], None] | None = None,
) -> ShardedResult:
    """Sign ``zonefile`` into ``out`` (the open temporary output file), updating ``digest``.

    ``out_dir``: where the shards' temporary files go (the output's directory: same
    file system, and the caller can write there). ``key``: the ZSK already opened by the caller (used when there is one shard; workers
    open their own). ``progress_start(total)`` is called once the name count is known (again
    with a larger total once an NSEC3 chain is linked) and returns the per-batch progress
    callback. ``want_index``: return the
    :class:`OutputIndex` of the output (:attr:`ShardedResult.index`). ``meanwhile``: called
    once the workers are forked, before they load (to start a thread of the caller's own:
    starting it before the fork would copy its state into every worker).
    """
    if denial.mode == "nsec3":
        check_iterations(denial.iterations)
    t: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(what: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        t[what] = round(now - mark, 3)
        mark = now

    shards = _shard_count(zonefile, jobs)
    boundaries: tuple[bytes, ...] = ()
    if shards > 1:
        boundaries = tuple(
            sample_boundaries(
                zonefile,
                origin,
                shards,
                nsec3=denial.mode == "nsec3",
                nsec3_share=NSEC3_OPTOUT_SHARE if denial.optout else 1.0,
            )
        )
    n = len(boundaries) + 1
    workers = min(jobs, n)
    chunks = plan_chunks(zonefile, origin, n, min_chunk=MIN_CHUNK)
    prev_chunks = (
        plan_chunks(previous, origin, n, min_chunk=MIN_CHUNK) if previous is not None else []
    )
    try:
        tmpdir = tempfile.mkdtemp(prefix=".zonesigner-", dir=out_dir)
    except OSError as exc:
        raise OutputError(
            f"{out_dir}: cannot create a temporary directory: {exc.strerror}"
        ) from None
    plan = Plan(
        zonefile, previous, origin, boundaries, tmpdir, params, times, refresh, denial,
        verify, serial_mode, tuple(apex_rrsets), want_index, workers,
    )  # fmt: skip
    progress_cb: list[Callable[[int], None] | None] = [None]

    def progress(k: int) -> None:
        cb = progress_cb[0]
        if cb is not None:
            cb(k)

    pool = _Pool(plan, opener, key, progress)
    copier: _PartCopier | None = None
    try:
        if meanwhile is not None:
            meanwhile()  # the workers exist: no fork happens after this
        lap("start")
        loaded, loads = _load(pool, plan, chunks, prev_chunks)
        lap("load")
        nsec3 = denial.mode == "nsec3"
        nsec3_hashes = b""
        # The shards merge and sign in one stage: what they need from each other is read off
        # the load reports (checked after signing, before anything is written). NSEC3: the
        # chain, linked from the hashes the shards report, is signed in a stage of its own.
        dnskey = _bundle_dnskey(plan)
        ttl = _negative_ttl(loads)
        param = nsec3param_rrset(origin, ttl, denial.salt, denial.iterations).rdatas[0]
        nexts = [b""] * n
        if not nsec3:
            nexts = _nsec_wraps(_shard_firsts(loads, n, loaded.apex_dname), origin)
        contexts = [
            _context(plan, i, dnskey, ttl, param if nsec3 else None, nexts[i]) for i in range(n)
        ]
        total = sum(r.names for r in loads)  # owners seen in several chunks count twice
        # each batch verifies its share of the sample's minimum size
        per_batch = max(1, -(-SAMPLE_MIN * RANGE_NAMES // max(1, total)))
        sign_args: list[tuple[object, ...] | None] = [
            (i, loaded, None if nsec3 else nexts[i], contexts[i], per_batch) for i in range(n)
        ]
        if progress_start is not None:
            progress_cb[0] = progress_start(total)
        lap("rules")
        # the parts are copied into the output as soon as they and those before them are
        # done, while the workers sign the rest (the parent has nothing else to do then)
        copier = _PartCopier(tmpdir, n, out, digest)
        signed: list[SignReport] = pool.map("sign", sign_args, None if nsec3 else copier.done)
        lap("sign")
        merged = [s.merge for s in signed if s.merge is not None]
        if nsec3:
            routed = _route_nsec3(merged, plan)
            if want_index:  # the chain's hashes in order, for the incremental state
                nsec3_hashes = b"".join(
                    map(itemgetter(0), itertools.chain.from_iterable(r for r, _ in routed))
                )
            for m in merged:
                m.hashed.clear()  # sorted and routed: not needed any more
            chain_total = sum(len(r) for r, _ in routed)
            chain_args: list[tuple[object, ...] | None] = [
                (i, routed[i], contexts[i], per_batch) for i in range(n)
            ]
            del routed
            if progress_start is not None:
                progress_cb[0] = progress_start(total + chain_total)
            lap("denial")
            chained: list[SignReport] = pool.map("sign_nsec3", chain_args, copier.done)
            lap("nsec3_chain")
        else:
            chained = []
            if _nsec_wraps([m.first_chain for m in merged], origin) != nexts:
                raise WorkerFailed(
                    "internal error: the NSEC chain was linked across shards from names that "
                    "were not the shards' first chain names; nothing was written"
                )
        pool.close()  # the workers exit (and give their memory back) before what follows
        indexed = chained if nsec3 else signed
        signed += chained
        head = merged[0]
        verdicts = [b for s in signed for b in s.verification]
        t["verify_in_shards"] = round(sum(b.seconds for b in verdicts) / workers, 3)
        for number, b in enumerate(verdicts):
            b.index = number  # batch 0 holds the apex (verify_shard was told so)

        def combine() -> VerifyReport:
            started = time.perf_counter()
            combined = combine_shards(
                verdicts, origin=origin, level=verify.level, nsec3param=head.nsec3param
            )
            t["verify"] = round(time.perf_counter() - started, 3)
            return dataclasses.replace(combined, processes=workers)

        # the checks across shards run while the parts are copied into the output (hashing
        # and writing mostly release the GIL); a failure still stops the rename
        with ThreadPoolExecutor(1, thread_name_prefix="zs-verify") as ex:
            combined = ex.submit(combine)
            copier.finish()
            report = combined.result()
        lap("write")
        shard_seconds = dict(pool.seconds)
        shard_peak = dict(pool.peak_mb)
        shard_peak["parent"] = [_peak_rss_mb()]
    finally:
        pool.close()
        if copier is not None:
            copier.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    cls = Classification()
    for m in merged:
        for f in ("delegations", "secure_delegations", "glue_names", "occluded_names",
                  "authoritative_names", "warnings"):  # fmt: skip
            setattr(cls, f, getattr(cls, f) + getattr(m.classification, f))
    assert head.serial is not None
    return ShardedResult(
        serial=head.serial,
        classification=cls,
        names=sum(s.names for s in signed),
        rrsets=sum(s.rrsets for s in signed),
        chain=sum(s.chain for s in signed),
        ents=sum(m.ents for m in merged),
        created=sum(s.created for s in signed),
        reused=sum(s.reused for s in signed),
        rrsets_signed=sum(s.rrsets_signed for s in signed),
        min_expiration=min((s.min_exp for s in signed if s.rrsets_signed), default=0),
        max_expiration=max((s.max_exp for s in signed), default=0),
        processes=workers,
        shards=n,
        load_chunks=loaded.zone_chunks,
        verification=report,
        timings=t,
        shard_seconds=shard_seconds,
        shard_peak_mb=shard_peak,
        index=_join_index([s.index for s in indexed]) if want_index else None,
        nsec3_hashes=nsec3_hashes,
    )


class _PartCopier:
    """Copies the shards' part files, in shard order, into the output (and its digest), in
    a thread of low priority (:func:`background_thread`): while the workers sign, it runs
    when a core is free instead of slowing them down. A digest that counts lines
    (:class:`signer.zone.incremental.CountingDigest`) is given each part's count from its
    report instead of counting them again."""

    def __init__(self, tmpdir: str, count: int, out: IO[bytes], digest: Any) -> None:
        self.tmpdir = tmpdir
        self.count = count
        self.out = out
        self.digest = digest
        self.update: Callable[[bytes], object] = getattr(digest, "update_uncounted", digest.update)
        self.add_lines: Callable[[int], object] | None = getattr(digest, "add_lines", None)
        self.ready: list[int | None] = [None] * count  # each finished part's line count
        self.next = 0  # the first part not handed to the thread yet
        self.pool = ThreadPoolExecutor(
            1, thread_name_prefix="zs-parts", initializer=background_thread
        )
        self.copies: list[Future[None]] = []

    def done(self, shard: int, report: SignReport) -> None:
        """Shard ``shard`` wrote its part: copy every part now complete from the start."""
        self.ready[shard] = report.part_lines
        while self.next < self.count and self.ready[self.next] is not None:
            self.copies.append(self.pool.submit(self._copy, self.next, self.ready[self.next]))
            self.next += 1

    def finish(self) -> None:
        """Copy the parts not copied yet; return when every part is in the output and on
        its way to the disk (an ``fdatasync`` while the parent checks the chain across the
        shards: the fsync before the rename then has little left to write)."""
        for shard in range(self.next, self.count):
            self.copies.append(self.pool.submit(self._copy, shard, self.ready[shard]))
        self.next = self.count
        self.copies.append(self.pool.submit(self._sync))
        for copy in self.copies:
            copy.result()  # a copy's error is raised here
        self.pool.shutdown()

    def close(self) -> None:
        """Stop copying (after an error): no part is written into the output after this."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _sync(self) -> None:
        self.out.flush()
        with contextlib.suppress(OSError, AttributeError, ValueError):  # not a real file
            os.fdatasync(self.out.fileno())

    def _copy(self, shard: int, lines: int | None) -> None:
        part = os.path.join(self.tmpdir, f"part-{shard}.txt")
        update = self.update if lines is not None else self.digest.update
        with open(part, "rb") as fh:
            while True:
                block = fh.read(_COPY)
                if not block:
                    break
                update(block)
                self.out.write(block)
        if lines is not None and self.add_lines is not None:
            self.add_lines(lines)
        os.unlink(part)


BACKGROUND_NICE = 19  # the hashing and copying threads: behind the signing processes


def background_thread() -> None:
    """Lower the calling thread's CPU priority (``ThreadPoolExecutor(initializer=...)``).

    The threads that hash and copy files while a zone is signed use spare CPU: on Linux
    ``nice`` is per thread, so the scheduler runs them when a core is free (while the parent
    plans, or one process has finished its share) instead of taking a share of the cores
    the signing processes need. A thread that must finish first is waited for as before;
    where this cannot be set, the thread just runs at normal priority.

    Not for a thread that runs Python code often while the parent's main thread has work
    to do: the scheduler stops a low-priority thread while it holds the GIL, and the main
    thread waits (the full sign's input copy, at this priority, delayed the hand-out of
    the workers' tasks by up to 0.6 s; docs/performance.md)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def _shard_count(zonefile: str, jobs: int) -> int:
    """How many shards: ``jobs``, or up to SPREAD times as many for a big zone file (a worker
    then holds one of several smaller shards at a time: less memory, better balance)."""
    try:
        size = os.stat(zonefile).st_size
    except OSError:
        size = 0
    spread = max(1, min(SPREAD, size // max(1, jobs * SHARD_BYTES)))
    return jobs * spread


def _join_index(parts: Sequence[OutputIndex | None]) -> OutputIndex:
    namelens: array[int] = array("B")
    lengths: array[int] = array("Q")
    for p in parts:
        assert p is not None
        namelens.extend(p.namelens)
        lengths.extend(p.lengths)
    return OutputIndex(b"".join(p.blob for p in parts if p is not None), namelens, lengths)


def _load(
    pool: _Pool, plan: Plan, chunks: list[Chunk], prev_chunks: list[Chunk]
) -> tuple[Loaded, list[LoadReport]]:
    """Stage 2: every chunk parsed and split into pieces by shard (in the temporary
    directory); the load reports of the zone's chunks."""
    count = max(len(chunks), len(prev_chunks))
    args: list[tuple[object, ...] | None] = [
        (
            chunks[i] if i < len(chunks) else None,
            prev_chunks[i] if i < len(prev_chunks) else None,
            i,
        )
        for i in range(count)
    ]
    reports: list[LoadReport] | None
    try:
        reports = pool.map("load", args)
    except DnssecCeremonyError:
        if len(chunks) == 1 and len(prev_chunks) <= 1:
            raise
        reports = None  # maybe an artefact of a wrong cut: load again as one chunk
    if reports is not None:
        zone_ok = chunks_consistent(chunks, [_meta(r.zone_meta) for r in reports[: len(chunks)]])
        prev_ok = not prev_chunks or chunks_consistent(
            prev_chunks, [_meta(r.prev_meta) for r in reports[: len(prev_chunks)]]
        )
        if zone_ok and prev_ok:
            dname = any(r.apex_dname for r in reports)
            return Loaded(len(chunks), len(prev_chunks), dname), reports[: len(chunks)]
    # fall back: the whole file(s) as one chunk, parsed by one worker
    for f in os.listdir(plan.tmpdir):
        os.unlink(os.path.join(plan.tmpdir, f))
    if pool.local is not None:
        pool.local.reset()
    one = plan_chunks(plan.zonefile, plan.origin, 1)
    prev_one = plan_chunks(plan.previous, plan.origin, 1) if plan.previous is not None else []
    reports = pool.map("load", [(one[0], prev_one[0] if prev_one else None, 0)])
    return Loaded(1, len(prev_one), reports[0].apex_dname), reports


def _meta(meta: tuple[ChunkState | None, bool] | None) -> ChunkResult:
    """A stand-in ChunkResult carrying only what :func:`chunks_consistent` reads."""
    assert meta is not None
    end_state, needs = meta
    return ChunkResult({}, [], 0, end_state, needs)


def _first_soa(apex: Sequence[list[object]]) -> tuple[int, bytes] | None:
    for ent in apex:
        if ent[0] == T_SOA:
            ttl, rdatas = ent[1], ent[2]
            assert isinstance(ttl, int) and isinstance(rdatas, list)
            return ttl, rdatas[0]
    return None


def _negative_ttl(loads: Sequence[LoadReport]) -> int:
    """The NSEC TTL (RFC 9077) from the first apex SOA in file order. Without one, shard 0
    refuses the zone (its own check names the rule); 0 only fills the gap until then."""
    for r in loads:
        if r.apex_soa is not None:
            ttl, rdata = r.apex_soa
            return min(ttl, soa_fields(rdata).minimum)
    return 0


def _bundle_dnskey(plan: Plan) -> RRset:
    for rs in plan.apex_rrsets:
        if rs.rtype == T_DNSKEY:
            return rs
    raise AssertionError("the bundle has no DNSKEY RRset")  # checked when it was chosen


def _shard_firsts(loads: Sequence[LoadReport], n: int, apex_dname: bool) -> list[bytes | None]:
    """Each shard's first owner in canonical order over all chunks: its first NSEC chain
    name (the first owner of a shard after the first one is never glue or occluded: the
    delegation or DNAME above it would be in the same shard and sort before it), except
    under an apex DNAME, which occludes everything but the apex."""
    best: list[tuple[bytes, bytes] | None] = [None] * n
    for r in loads:
        for i, owner in enumerate(r.firsts):
            if owner is None:
                continue
            key = canonical_key(owner)
            b = best[i]
            if b is None or key < b[0]:
                best[i] = (key, owner)
    firsts = [b[1] if b is not None else None for b in best]
    if apex_dname:
        firsts = [firsts[0]] + [None] * (n - 1)
    return firsts


def _nsec_wraps(firsts: Sequence[bytes | None], origin: bytes) -> list[bytes]:
    """For each shard, the first chain name after it (the apex after the last), from each
    shard's first chain name (None: it has none)."""
    out: list[bytes] = []
    nxt = origin
    for first in reversed(firsts):
        out.append(nxt)
        if first is not None:
            nxt = first
    out.reverse()
    return out


def _route_nsec3(merged: list[MergeReport], plan: Plan) -> list[tuple[list[Hashed], bytes]]:
    """The chain entries of all shards sorted (collisions refused) and cut by shard: for each
    shard, the entries whose NSEC3 owners it holds, and the hash that follows its last one
    in the chain (the workers make the records: :func:`signer.zone.nsec3.link_records`)."""
    hashed: list[Hashed] = []
    for m in merged:
        hashed.extend(m.hashed)
    sort_chain(hashed)
    first = hashed[0][0] if hashed else b""
    if plan.shards == 1:
        return [(hashed, first)]
    # Entries in hash order have their owners in canonical order (base32hex keeps the
    # order): each shard's entries are one slice, found by bisecting at each boundary.
    origin = plan.origin

    def key(entry: Hashed) -> bytes:
        return canonical_key(nsec3_owner(entry[0], origin))

    cuts = [0, *(bisect_left(hashed, b, key=key) for b in plan.boundaries), len(hashed)]
    return [
        (hashed[lo:hi], hashed[hi][0] if hi < len(hashed) else first)
        for lo, hi in itertools.pairwise(cuts)
    ]


def _context(
    plan: Plan, index: int, dnskey: RRset, ttl: int, nsec3param: bytes | None, next_chain: bytes
) -> ShardContext:
    return ShardContext(
        index=index,
        count=plan.shards,
        dnskey=dnskey,
        negative_ttl=ttl,
        nsec3param=nsec3param,
        next_chain_name=next_chain,
    )
