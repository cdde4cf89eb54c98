"""Incremental re-signing of an NSEC or NSEC3 zone from ``--previous`` and its state file.

After every successful ``zonesigner sign`` a *state* is written beside the output ``OUT``:
``OUT.zsstate`` (what shaped the output, its SHA-256, where each owner's lines are in it,
bounds of its RRSIG times, a few facts about the unsigned input) and ``OUT.zsstate.input``
(a copy of the unsigned input that produced ``OUT``); for NSEC3 the state also holds the
chain's hashes in order. A later ``sign --previous OUT`` with a matching state re-signs only
what changed (:func:`sign_incremental`):

1. the old input copy and the new input are compared at C speed (slice comparisons; lines
   are looked at only around a difference) into hunks of removed and added lines;
2. the changed lines are parsed (the loader, in the context the file's directives set) and
   grouped by *apex child* (the name directly below the apex at or above the owner): all
   names of one apex child are contiguous in canonical order, so the state's index gives
   their blocks in ``OUT``;
3. each affected subtree is parsed back from ``OUT`` (RRsets and RRSIGs), the records are
   removed and added, the rules re-checked, the subtree classified, NSEC-chained, signed
   (reusing ``OUT``'s RRSIGs exactly as the full path does), rendered and self-verified
   at the ``--verify`` level of a full sign (:func:`signer.zone.verify.verify_shard`: every
   structural check everywhere; with the default ``sample``, the signatures of the apex and
   of an even share of the batches, :func:`_crypto_stride`); so are the apex and the
   subtree before one whose first name changed (its NSEC points to it);
   NSEC3 (RFC 5155, opt-out or not): each touched subtree's chain entries before and after
   (:func:`signer.zone.nsec3.chain_entries`: names with their bitmaps, ENTs; opt-out leaves
   insecure delegations out) give the hashes added and removed; the NSEC3 records of the
   entries added or with a new bitmap, of the removed hashes (rendered as nothing) and of
   the predecessor in hash order of every added or removed hash (its next hash changes) are
   re-rendered -- each NSEC3 owner is an apex child with its own block in ``OUT`` -- and,
   before anything is written, checked to link into the chain (its predecessor, re-rendered
   or read from ``OUT``, points to it; it points to the next hash);
4. the new output is ``OUT``'s unchanged byte ranges with the new blocks in between.

The result is byte-identical to a full sign with ``--previous OUT`` at the same ``--now``
because every name not re-rendered would be rendered by the full path exactly as in
``OUT``: same data, same NSEC or NSEC3, and each of its RRSIGs reused (the state proves every RRSIG
stays valid beyond ``now + refresh`` and was made by the same key). Whenever that cannot
be shown -- no or a mismatching state, signatures due for refresh, a large change, a
changed line that is not one plain record line in the header's context, a name equal to an
NSEC3 owner, an NSEC3 chain in the state that does not fit ``OUT``, anything the full path
would refuse -- the caller signs in full (the reason is returned).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import multiprocessing
import os
import re
import struct
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import accumulate
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Lock
from typing import IO, Any, NamedTuple, TypeVar

from signer.errors import DnssecCeremonyError, InputError, OutputError
from signer.fileio import atomic_writer
from signer.zone import _accel, prefetch
from signer.zone.loader import Scratch, _Loader
from signer.zone.model import (
    T_CDNSKEY,
    T_CDS,
    T_CNAME,
    T_DNAME,
    T_DNSKEY,
    T_NSEC,
    T_NSEC3,
    T_NSEC3PARAM,
    T_RRSIG,
    T_SOA,
    RRset,
    Zone,
    canonical_key,
    name_to_text,
    rrsig_fields,
    soa_fields,
    soa_with_serial,
)
from signer.zone.nsec import CHAIN_KINDS, add_nsec
from signer.zone.nsec3 import (
    Nsec3Collision,
    b32hex,
    chain_entries,
    hash_entries,
    insert_nsec3,
    nsec3_hash,
    nsec3_owner,
    nsec3param_rrset,
)
from signer.zone.prefetch import INPUT_SUFFIX, STATE_SUFFIX
from signer.zone.rules import Classification, classify
from signer.zone.serial import new_serial
from signer.zone.sharded import (
    Denial,
    OutputIndex,
    VerifySpec,
    WorkerFailed,
    background_thread,
    picklable_error,
)
from signer.zone.signing import (
    BUNDLE_TYPES,
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
from signer.zone.verify import ShardContext, ZoneVerificationFailed, verify_shard

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

log = logging.getLogger("dnssec_ceremony.sign")

FORMAT = 3
MAGIC = b"zonesigner-state\n"
_STRIDE = 64  # range_of: one name's canonical key sampled per stride
_HSTRIDE = 16  # _Hashes: one hash sampled per stride
_B32HEX = b"0123456789abcdefghijklmnopqrstuv"  # an NSEC3 owner's label (lowercase)
PARALLEL_MIN = 64  # fewer touched subtrees than this: one process
# NSEC3: this process's share of the signing against each forked one's (it also receives
# and unpickles their results; 1M, 1 % changed: it finished ~0.05 s after the other at 1.0)
SIGN_HEAD = 0.85
MAX_CHANGED = 0.10  # more changed lines than this fraction of the input: sign in full
HEADER_MAX = 1 << 20  # directives after the first MiB: sign in full
_WINDOWS = (4, 16, 64)  # lines looked at to resynchronise after a difference
_INCLUDE = re.compile(rb"\$include", re.IGNORECASE)
_COUNT_KEYS = (
    "names", "rrsets", "chain", "rrsets_signed",
    "delegations", "secure_delegations", "glue_names", "occluded_names",
)  # fmt: skip
HASH = 20  # octets of an NSEC3 hash (SHA-1)
BATCH_NAMES = 4096  # names of the previous output signed and verified in one go
SAMPLE_MIN = 50  # --verify sample: signatures verified at least per batch of re-signed names
SAMPLE_BATCHES = 100  # --verify sample: batches whose signatures are checked, at least


def _crypto_stride(batches: int, level: str) -> int:
    """``--verify sample`` over many batches (a big change: hundreds of batches of ~4096
    names, each of which would verify its minimum and the first signature of each type):
    the batches checked cryptographically are every k-th one of each process (at least
    SAMPLE_BATCHES of them, at least 1 %, and the apex's), the others structurally; every
    batch at the other levels."""
    if level != "sample":
        return 1
    return max(1, batches // max(SAMPLE_BATCHES, batches // 100))


@_accel.mypyc_attr(native_class=False)
class Fallback(Exception):
    """The incremental path cannot show its output would equal the full path's."""


# -- settings and state ------------------------------------------------------------------------
@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass(frozen=True)
class Settings:
    """Everything that shapes the signed output besides the input and the bundle."""

    origin: bytes
    params: SignParams
    times: SigTimes
    refresh: int
    inception_offset: int
    denial: Denial
    serial_mode: str
    apex_rrsets: tuple[RRset, ...]  # DNSKEY/CDS/CDNSKEY of the bundle valid now
    verify: VerifySpec
    zsk_wire: bytes  # the ZSK's DNSKEY RDATA

    def fingerprint(self) -> str:
        from signer import __version__

        d = self.denial
        t = self.times
        fields = {
            "version": __version__,
            "format": FORMAT,
            "origin": self.origin.hex(),
            "zsk": self.zsk_wire.hex(),
            "algorithm": self.params.algorithm,
            "key_tag": self.params.key_tag,
            "denial": [d.mode, d.salt.hex(), d.iterations, d.optout],
            "validity": t.validity,
            "jitter": t.jitter,
            "inception_offset": self.inception_offset,
            "refresh": self.refresh,
            "serial": self.serial_mode,
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass
class State:
    """The contents of ``OUT.zsstate`` (see the module docstring)."""

    fingerprint: str
    origin: str  # hex of the apex wire name
    out_size: int
    out_sha256: str
    input_size: int
    input_sha256: str
    min_expiration: int  # a lower bound of every ZSK RRSIG's expiration in OUT
    max_expiration: int  # an upper bound of it
    max_inception: int  # an upper bound of every ZSK RRSIG's inception in OUT
    serial: int  # the SOA serial in OUT
    unsigned_serial: int | None  # the input's SOA serial (None: unknown)
    negative_ttl: int
    header_end: int  # the input's lines up to here hold every directive
    include: bool  # the input has $INCLUDE (changes in included files are not seen)
    no_duplicates: bool  # proven: no record appears twice in the input
    apex_ok: bool  # the apex DNSKEY/CDS/CDNSKEY of OUT are the bundle's alone
    spans: list[tuple[int, int]]  # the input's entries spanning lines (parentheses)
    counts: dict[str, int]
    input_newlines: int  # the input's newline characters (the diff's limit: MAX_CHANGED)
    lengths: array[int] = field(default_factory=lambda: array("Q"))  # each name's block
    namelens: array[int] = field(default_factory=lambda: array("B"))
    blob: bytes = b""  # the names (canonical wire), concatenated in output order
    hashes: bytes = b""  # NSEC3: the chain's hashes (HASH octets each) in order

    def header(self) -> dict[str, Any]:
        body = ("lengths", "namelens", "blob", "hashes")
        d = {k: v for k, v in self.__dict__.items() if k not in body}
        d["format"] = FORMAT
        d["n"] = len(self.lengths)
        d["blob_size"] = len(self.blob)
        d["hashes_size"] = len(self.hashes)
        return d


def state_path(out: str) -> str:
    return out + STATE_SUFFIX


def input_path(out: str) -> str:
    return out + INPUT_SUFFIX


def remove_state(out: str, closer: Executor | None = None) -> None:
    """Delete ``out``'s state (before ``out`` is replaced). With ``closer``, the files'
    blocks are freed in its thread: each file is opened, unlinked here, and closed there
    (an unlinked file's blocks go with its last descriptor; 1M delegations: 190 MB, ~0.03 s
    of the kernel's time)."""
    for p in (state_path(out), input_path(out)):
        fd = -1
        if closer is not None:
            with contextlib.suppress(OSError):
                fd = os.open(p, os.O_RDONLY)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
        if closer is not None and fd >= 0:
            closer.submit(os.close, fd)


def _state_pieces(st: State) -> list[bytes | memoryview]:
    """The parts of a state file's body, in order (memoryviews of the arrays: no copy)."""
    return [
        memoryview(st.lengths).cast("B"),
        memoryview(st.namelens).cast("B"),
        st.blob,
        st.hashes,
    ]


def _state_digest(st: State) -> str:
    """The SHA-256 of ``st``'s body (its header holds it)."""
    h = hashlib.sha256()
    for piece in _state_pieces(st):
        h.update(piece)
    return h.hexdigest()


def _dump_state(path: str, st: State, body_sha256: str | None = None) -> None:
    """Write ``st`` to ``path``; ``body_sha256``: :func:`_state_digest` of it, when computed
    already. The body's pieces are written one by one: no ~50 MB copy of them joined."""
    head = st.header()
    head["body_sha256"] = body_sha256 or _state_digest(st)
    # not fsynced: a state lost or torn in a crash fails its own SHA-256 (or the output's)
    # and costs one full sign, never a wrong one
    with atomic_writer(path, durable=False) as fh:
        fh.write(MAGIC + json.dumps(head, sort_keys=True).encode() + b"\n")
        for piece in _state_pieces(st):
            fh.write(piece)


def load_state(path: str, deferred: list[Callable[[], None]] | None = None) -> State:
    """Read a state file; raise :class:`Fallback` when it is missing or not well formed.
    The body's parts are read straight into their arrays and bytes (no copy of a whole
    file read first: ~50 MB at 1M delegations). With ``deferred``, the body's SHA-256 and
    sizes are not checked here: a check that raises :class:`Fallback` is appended to it,
    for the caller to run (in a thread) before it writes anything."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            magic = fh.read(len(MAGIC))
            line = fh.readline(1 << 20) if magic == MAGIC else b""
            head: Any = None
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no header")
                head = json.loads(line)
                n, bsize, hsize = head.pop("n"), head.pop("blob_size"), head.pop("hashes_size")
                if not all(isinstance(x, int) and x >= 0 for x in (n, bsize, hsize)):
                    raise ValueError("bad sizes")
                if len(magic) + len(line) + n * 9 + bsize + hsize != size:
                    raise ValueError("sizes that do not fit the file")
                lengths: array[int] = array("Q")
                lengths.fromfile(fh, n)
                namelens: array[int] = array("B")
                namelens.fromfile(fh, n)
                blob = fh.read(bsize)
                hashes = fh.read(hsize)
                rest = fh.read(1)
            except (ValueError, KeyError, TypeError, AttributeError, EOFError):
                head = None
    except FileNotFoundError:
        raise Fallback(f"no state {path} for the previous signed zone") from None
    except OSError as exc:
        raise Fallback(f"cannot read the state {path}: {exc.strerror}") from None
    try:
        if head is None:
            raise ValueError("not a state file, or damaged")
        if head.pop("format") != FORMAT:
            raise ValueError("another format version")
        if rest or len(blob) != bsize or len(hashes) != hsize or hsize % HASH:
            raise ValueError("damaged")
        body_sha256 = head.pop("body_sha256")
        head["spans"] = [tuple(s) for s in head["spans"]]
        st = State(**head, lengths=lengths, namelens=namelens, blob=blob, hashes=hashes)
    except (ValueError, KeyError, TypeError) as bad:
        raise Fallback(f"the state {path} is unusable ({bad})") from None

    def check_body() -> None:
        if _state_digest(st) != body_sha256 or sum(namelens) != len(blob):
            raise Fallback(f"the state {path} is unusable (damaged)")

    if deferred is None:
        check_body()
    else:
        deferred.append(check_body)
    return st


# the C helpers of signer/zone/_index.c when the compiled build is in use (None: the Python
# code here, their specification, runs instead)
_INDEX: list[Any] = [_accel.extension("_index")]


def _cumsum(values: array[int], initial: bool) -> array[int]:
    """The running sums of ``values`` (starting with a 0 when ``initial``)."""
    fast = _INDEX[0]
    if fast is not None:
        out: array[int] = array("Q")
        out.frombytes(fast.cumsum(values, initial))
        return out
    return array("Q", accumulate(values, initial=0) if initial else accumulate(values))


@_accel.mypyc_attr(native_class=False)  # a sequence to bisect (a native class is not one)
class _Names:
    """The state's names as a read-only sequence (no per-name object until asked)."""

    def __init__(self, blob: bytes, namelens: array[int]) -> None:
        self.blob = blob
        self.ends: array[int] = _cumsum(namelens, False)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> bytes:
        return self.blob[self.ends[i - 1] if i else 0 : self.ends[i]]

    def span(self, lo: int, hi: int) -> tuple[int, int]:
        """The byte range of names [lo, hi) in the blob."""
        return (self.ends[lo - 1] if lo else 0), (self.ends[hi - 1] if hi else 0)


# -- facts about an input file -----------------------------------------------------------------
@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass(frozen=True)
class InputFacts:
    size: int
    sha256: str
    header_end: int
    include: bool
    spans: list[tuple[int, int]]
    record_lines: int  # an upper bound of the records in the file
    unsigned_serial: int | None
    newlines: int


def _paren_spans(data: bytes | mmap.mmap) -> list[tuple[int, int]]:
    """(start, end) of every entry that spans lines: from the start of the line opening
    parentheses to the end of the line closing them (tokenised like the loader)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    size = len(data)
    while True:
        i = data.find(b"(", pos)
        if i < 0:
            return spans
        start = data.rfind(b"\n", 0, i) + 1
        depth = 0
        line = start
        while True:
            eol = data.find(b"\n", line)
            end = size if eol < 0 else eol + 1
            text = data[line:end].decode("utf-8", "surrogateescape")
            try:
                depth = _Loader._scan(text, [], depth, "", 0)
            except InputError:
                depth = 0  # the loader refused the file: no state is written
            if depth <= 0 or end >= size:
                break
            line = end
        if line > start:
            spans.append((start, end))
        pos = end


def _count(buf: bytes | mmap.mmap, sub: bytes, lo: int = 0, hi: int | None = None) -> int:
    """``buf.count(sub, lo, hi)`` for a mapped file too (slices of 4 MiB)."""
    if hi is None:
        hi = len(buf)
    if isinstance(buf, bytes):
        return buf.count(sub, lo, hi)
    step = 1 << 22
    total = 0
    for x in range(lo, hi, step):
        total += buf[x : min(hi, x + step + len(sub) - 1)].count(sub)
    return total


def _input_scan(data: bytes | mmap.mmap, lo: int, hi: int) -> tuple[int, int, int, int, bool]:
    """Within ``data[lo:hi]``: how often b"\\n", b"\\n;" and b"\\n$" occur, where the last
    b"\\n$" is (-1: nowhere), and whether b"$include" occurs in any case. In one pass without
    the GIL (``_index.input_scan``) when compiled, else by count, rfind and a regular
    expression.

    The input's copy for the next state is scanned in a thread of the parent while its main
    thread hands out the workers' tasks: these scans holding the GIL (0.45 s at 1M
    delegations) kept both workers waiting for their next task."""
    fast = _INDEX[0]
    if fast is not None:
        n, c, d, last, include = fast.input_scan(data, lo, hi)
        return int(n), int(c), int(d), int(last), bool(include)
    return (
        _count(data, b"\n", lo, hi),
        _count(data, b"\n;", lo, hi),
        _count(data, b"\n$", lo, hi),
        data.rfind(b"\n$", lo, hi),
        _INCLUDE.search(data, lo, hi) is not None,
    )


def input_facts(data: bytes | mmap.mmap, origin: bytes, sha256: str) -> InputFacts:
    """What the state keeps about an unsigned input (C-speed scans and a few lines parsed)."""
    size = len(data)
    newlines, comments, directives, last_directive, include = _input_scan(data, 0, size)
    lines = newlines + (1 if size and data[size - 1 : size] != b"\n" else 0)
    # lines that surely hold no record start: comments and directives at the line start
    sure = comments + directives + (1 if data[:1] in (b";", b"$") else 0)
    spans = _paren_spans(data)
    for s, e in spans:
        first_end = data.find(b"\n", s) + 1
        cont = _count(data, b"\n", first_end, e) + (0 if data[e - 1 : e] == b"\n" else 1)
        _, comments, directives, _, _ = _input_scan(data, max(first_end - 1, 0), e)
        sure += cont - comments - directives
    # the header: up to the end of the line of the last directive at a line start
    header_end = 0
    if last_directive >= 0:
        header_end = (data.find(b"\n", last_directive + 1) + 1) or size
    elif data[:1] == b"$":
        header_end = (data.find(b"\n") + 1) or size
    return InputFacts(
        size,
        sha256,
        header_end,
        include,
        spans,
        lines - sure,
        _unsigned_serial(data, origin),
        newlines,
    )


def _unsigned_serial(data: bytes | mmap.mmap, origin: bytes) -> int | None:
    """The SOA serial of the input when its SOA is in the first 64 KiB, else None."""
    end = min(len(data), 1 << 16)
    if end < len(data):
        end = data.rfind(b"\n", 0, end) + 1
    ld = _Loader(origin, False, None)
    try:
        ld._load_lines(_lines_of(data[:end]), "", origin, 0, 1, partial=True)
    except DnssecCeremonyError:
        return None
    for ent in ld.nodes.get(origin, ()):
        if ent[0] == T_SOA:
            rds = ent[2]
            assert isinstance(rds, list)
            return soa_fields(rds[0]).serial
    return None


def _lines_of(data: bytes) -> list[str]:
    text = data.decode("utf-8", "surrogateescape")
    return text.splitlines(keepends=True) if "\r" in text else text.split("\n")


# -- writing a state after a full sign ---------------------------------------------------------
class CountingDigest:
    """SHA-256 that also counts the lines it hashed (the signed output's)."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.lines = 0
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self.h.update(data)
        self.lines += data.count(b"\n") if isinstance(data, bytes) else bytes(data).count(b"\n")
        self.size += len(data)

    def update_uncounted(self, data: bytes | memoryview) -> None:
        """:meth:`update` for data whose lines are counted elsewhere (:meth:`add_lines`):
        the full sign's workers count their parts' lines while they render them, so the
        parent's copier only hashes (counting 300 MB in the parent held its GIL ~0.2 s)."""
        self.h.update(data)
        self.size += len(data)

    def add_lines(self, lines: int) -> None:
        self.lines += lines

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def input_stat(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino


_COPY_BLOCK = 1 << 26  # _copy_input: octets hashed and written per call


def _copy_input(src: IO[bytes] | mmap.mmap | bytes, out: str) -> tuple[int, str, str]:
    """Copy the input into a temporary file beside ``out``; (size, sha256, temp path)."""
    d = os.path.dirname(out) or "."
    fd, tmp = tempfile.mkstemp(prefix=".zsstate-", suffix=".tmp", dir=d)
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(src, (mmap.mmap, bytes)):
                with memoryview(src) as view:
                    for a in range(0, len(view), _COPY_BLOCK):  # the GIL released for each
                        chunk = view[a : a + _COPY_BLOCK]
                        h.update(chunk)
                        fh.write(chunk)
                size = len(src)
            else:
                for block in iter(lambda: src.read(1 << 22), b""):  # a buffer malloc reuses
                    h.update(block)
                    fh.write(block)
                    size += len(block)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return size, h.hexdigest(), tmp


@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass(frozen=True)
class InputCopy:
    """The unsigned input copied beside the output (temporary file) and its facts."""

    size: int
    sha256: str
    tmp: str
    facts: InputFacts


def copy_input(zonefile: str, out: str, origin: bytes) -> InputCopy:
    with open(zonefile, "rb") as fh:
        size, sha, tmp = _copy_input(fh, out)
    try:
        with open(tmp, "rb") as fh, _mapped(fh) as data:
            facts = input_facts(data, origin, sha)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return InputCopy(size, sha, tmp, facts)


class BackgroundCopy:
    """:func:`copy_input` in a thread while the workers sign (the parent only waits then;
    hashing and file writes release the GIL). :meth:`start` it once the workers have
    forked; :meth:`result` runs it here when it was not started."""

    def __init__(self, zonefile: str, out: str, origin: bytes) -> None:
        self.args = (zonefile, out, origin)
        self.future: Future[InputCopy] | None = None

    def start(self) -> None:
        if self.future is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="zs-state")
            self.future = pool.submit(copy_input, *self.args)
            pool.shutdown(wait=False)

    def result(self) -> InputCopy:
        if self.future is None:
            return copy_input(*self.args)
        return self.future.result()

    def discard(self) -> None:
        """Wait for the copy and remove it (the sign failed)."""
        if self.future is not None:
            with contextlib.suppress(Exception):
                os.unlink(self.future.result().tmp)


def write_full_state(
    *,
    out: str,
    zonefile: str,
    stat_before: tuple[int, int, int],
    settings: Settings,
    index: OutputIndex,
    digest: CountingDigest,
    serial: int,
    min_expiration: int,
    max_expiration: int,
    counts: dict[str, int],
    copy: BackgroundCopy | None = None,
    nsec3_hashes: bytes = b"",
) -> str | None:
    """Write ``out``'s state after a full sign; returns why not when it is not written.
    ``copy``: the input's copy made meanwhile (else it is made now). ``nsec3_hashes``: an
    NSEC3 zone's chain (:attr:`signer.zone.sharded.ShardedResult.nsec3_hashes`)."""
    origin = settings.origin
    nsec3 = settings.denial.mode == "nsec3"
    try:
        c = (copy or BackgroundCopy(zonefile, out, origin)).result()
        size, sha, tmp, facts = c.size, c.sha256, c.tmp, c.facts
        try:
            if input_stat(zonefile) != stat_before or size != stat_before[0]:
                return "the input changed while it was signed"
            with open(out, "rb") as fh:
                apex_block = fh.read(index.lengths[0]) if index.lengths else b""
            bundle_lines = sum(len(rs.rdatas) for rs in settings.apex_rrsets)
            bundle_sigs = sum(len(rs.sigs) for rs in settings.apex_rrsets)
            distinct = (
                digest.lines
                - counts["rrsets_signed"]
                - bundle_sigs
                - counts["chain"]
                - bundle_lines
                - nsec3  # the NSEC3PARAM line
            )
            st = State(
                fingerprint=settings.fingerprint(),
                origin=origin.hex(),
                out_size=digest.size,
                out_sha256=digest.hexdigest(),
                input_size=size,
                input_sha256=sha,
                min_expiration=min_expiration,
                max_expiration=max_expiration,
                max_inception=max(settings.times.now, settings.times.inception),
                serial=serial,
                unsigned_serial=(
                    serial if settings.serial_mode == "keep" else facts.unsigned_serial
                ),
                negative_ttl=_negative_ttl_of(apex_block, origin),
                header_end=facts.header_end,
                include=facts.include,
                no_duplicates=distinct == facts.record_lines,
                apex_ok=_apex_ok(apex_block, settings.apex_rrsets),
                spans=facts.spans,
                counts=counts,
                input_newlines=facts.newlines,
                lengths=index.lengths,
                namelens=index.namelens,
                blob=index.blob,
                hashes=nsec3_hashes if nsec3 else b"",
            )
            os.replace(tmp, input_path(out))
            tmp = ""
            _dump_state(state_path(out), st)
        finally:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    except (OSError, OutputError) as exc:
        remove_state(out)
        return f"cannot write the state: {exc}"
    return None


@contextlib.contextmanager
def _mapped(fh: IO[bytes]) -> Iterator[mmap.mmap | bytes]:
    if os.fstat(fh.fileno()).st_size == 0:
        yield b""
        return
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        yield mm


def _negative_ttl_of(apex_block: bytes, origin: bytes) -> int:
    nodes = _parse_signed(apex_block, origin, "")
    for ent in nodes.get(origin, ()):
        if ent[0] == T_SOA:
            rds = ent[2]
            assert isinstance(rds, list) and isinstance(ent[1], int)
            return min(ent[1], soa_fields(rds[0]).minimum)
    return -1


def _apex_ok(apex_block: bytes, apex_rrsets: tuple[RRset, ...]) -> bool:
    """The apex's DNSKEY/CDS/CDNSKEY lines are the bundle's RRsets alone (not also input
    records of those types)."""
    want = {rs.rtype: len(rs.rdatas) for rs in apex_rrsets}
    have: dict[int, int] = {}
    names = {"DNSKEY": T_DNSKEY, "CDS": T_CDS, "CDNSKEY": T_CDNSKEY}
    for line in apex_block.split(b"\n"):
        parts = line.split(b"\t", 4)
        if len(parts) == 5:
            t = names.get(parts[3].decode("ascii", "replace"))
            if t is not None:
                have[t] = have.get(t, 0) + 1
    return have == {t: n for t, n in want.items() if n}


def _parse_signed(data: bytes, origin: bytes, path: str) -> Scratch:
    ld = _Loader(origin, True, None)
    ld._load_lines(_lines_of(data), path, origin, 0, 1, partial=False)
    return ld.nodes


# -- the diff ------------------------------------------------------------------------------------
@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass(frozen=True)
class Hunk:
    a0: int  # old input [a0, a1) is replaced by new input [b0, b1); all at line starts
    a1: int
    b0: int
    b1: int
    newlines: int = 0  # the new input's newline characters less the old one's, in the hunk


Buf = bytes | mmap.mmap


def _common(a: Buf, i: int, b: Buf, j: int) -> int:
    """The length of the common prefix of a[i:] and b[j:]: ``_index.common_prefix`` when
    the compiled build is in use, else :func:`_common_py`."""
    fast = _INDEX[0]
    if fast is not None:
        return int(fast.common_prefix(a, i, b, j))
    return _common_py(a, i, b, j)


def _common_py(a: Buf, i: int, b: Buf, j: int) -> int:
    """:func:`_common` in Python. A block is compared by finding a memoryview of ``b``'s
    block in exactly ``a``'s (``find`` takes a buffer: a memcmp-speed search with no copy;
    slicing an mmap copies both blocks)."""
    limit = min(len(a) - i, len(b) - j)
    with memoryview(b) as vb:

        def same(k: int, s: int) -> bool:
            return a.find(vb[j + k : j + k + s], i + k, i + k + s) == i + k

        k = 0
        step = 1 << 12
        while k < limit:
            s = min(step, limit - k)
            if same(k, s):
                k += s
                step = min(step * 2, 1 << 22)
                continue
            while s > 64:
                half = s // 2
                if same(k, half):
                    k += half
                    s -= half
                else:
                    s = half
            t = 0
            while a[i + k + t] == b[j + k + t]:
                t += 1
            return k + t
        return k


def _window(buf: Buf, pos: int, count: int) -> list[tuple[int, int]]:
    """Up to ``count`` lines from ``pos`` as (start, end) (end after the newline)."""
    out: list[tuple[int, int]] = []
    size = len(buf)
    while pos < size and len(out) < count:
        eol = buf.find(b"\n", pos)
        end = size if eol < 0 else eol + 1
        out.append((pos, end))
        pos = end
    return out


def _resync(a: Buf, a0: int, b: Buf, b0: int) -> tuple[int, int] | None:
    """The nearest line pair (old, new) after a0/b0 from which both files agree again
    (each: the start of a line, or the end of the file on both sides)."""
    for w in _WINDOWS:
        old = _window(a, a0, w)
        new = _window(b, b0, w)
        old_eof = len(old) < w or old[-1][1] == len(a)
        new_eof = len(new) < w or new[-1][1] == len(b)
        oc = [a[s:e] for s, e in old]
        first: dict[bytes, int] = {}
        for y, (s, e) in enumerate(new):
            first.setdefault(b[s:e], y)
        best: tuple[int, int] | None = None
        for x, line in enumerate(oc):
            y0 = first.get(line)
            if y0 is None:
                continue
            # the nearest new occurrence at or after y0 is y0 itself (first occurrence)
            if best is None or x + y0 < best[0] + best[1]:
                best = (x, y0)
        if old_eof and new_eof and (best is None or len(old) + len(new) < sum(best)):
            return len(a), len(b)
        if best is not None:
            x, y = best
            return old[x][0], new[y][0]
    return None


def diff(a: Buf, b: Buf, max_lines: int) -> list[Hunk]:
    """Hunks turning ``a`` into ``b``; :class:`Fallback` past ``max_lines`` changed lines."""
    hunks: list[Hunk] = []
    i = j = 0
    changed = 0
    na, nb = len(a), len(b)
    while True:
        k = _common(a, i, b, j)
        if i + k == na and j + k == nb:
            return hunks
        s = a.rfind(b"\n", i, i + k)
        start = s + 1 if s >= 0 else i
        a0, b0 = start, j + (start - i)
        res = _resync(a, a0, b, b0)
        if res is None:
            raise Fallback("large change (the files do not agree again within 64 lines)")
        a1, b1 = res
        old, new = _count(a, b"\n", a0, a1), _count(b, b"\n", b0, b1)
        changed += old + new + 1
        if changed > max_lines:
            raise Fallback(f"large change (more than {max_lines} changed lines)")
        hunks.append(Hunk(a0, a1, b0, b1, new - old))
        i, j = a1, b1


# -- checking and parsing the changed lines --------------------------------------------------------
def _check_line(line: bytes, where: str) -> bool:
    """A changed line must be one plain record line (True) or hold no record (False)."""
    body = line[:-1] if line.endswith(b"\n") else line
    if body.endswith(b"\r"):
        body = body[:-1]
    stripped = body.strip()
    if not stripped or stripped.startswith(b";"):
        return False
    if b"\r" in body:
        raise Fallback(f"changed line {where} holds a carriage return")
    if b"(" in body or b")" in body:
        raise Fallback(f"changed line {where} has parentheses (a record spanning lines)")
    if body[:1] in (b" ", b"\t"):
        raise Fallback(f"changed line {where} has no owner (it continues the one before)")
    if body[:1] == b"$":
        raise Fallback(f"changed line {where} is a directive")
    return True


def _after_hunk(buf: Buf, pos: int) -> None:
    """The first line with a record after a hunk must name its owner (it would otherwise
    take the owner of a changed line)."""
    size = len(buf)
    for _ in range(64):  # lines looked at one by one: usually the first holds a record
        if pos >= size:
            return
        eol = buf.find(b"\n", pos)
        end = size if eol < 0 else eol + 1
        body = buf[pos:end].strip()
        if body and not body.startswith(b";"):
            if buf[pos : pos + 1] in (b" ", b"\t", b"\r"):
                raise Fallback("a line without owner follows a changed line")
            return
        pos = end
    raise Fallback("many blank lines follow a changed line")


def _lines_between(buf: Buf, lo: int, hi: int) -> Iterator[bytes]:
    while lo < hi:
        eol = buf.find(b"\n", lo, hi)
        end = hi if eol < 0 else eol + 1
        yield buf[lo:end]
        lo = end


@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass
class Delta:
    removed: Scratch
    added: Scratch
    added_duplicates: bool
    changed_lines: int


def parse_changes(
    hunks: list[Hunk], a: Buf, b: Buf, st: State, origin: bytes, zonefile: str
) -> Delta:
    """Check the hunks and parse their removed and added lines into records."""
    if not hunks:
        return Delta({}, {}, False, 0)
    if hunks[0].a0 < st.header_end:
        raise Fallback("a change before the last directive ($ORIGIN/$TTL/...) of the input")
    if st.header_end > HEADER_MAX:
        raise Fallback("directives after the first MiB of the input")
    starts = [s for s, _ in st.spans]
    removed: list[str] = []
    added: list[str] = []
    count = 0
    for h in hunks:
        k = bisect_right(starts, h.a0) - 1
        if k >= 0 and st.spans[k][0] < h.a0 < st.spans[k][1]:
            raise Fallback("a change inside a record spanning lines (parentheses)")
        for buf, lo, hi, dest in ((a, h.a0, h.a1, removed), (b, h.b0, h.b1, added)):
            for line in _lines_between(buf, lo, hi):
                count += 1
                if _check_line(line, f"{line[:60]!r}"):
                    dest.append(line.decode("utf-8", "surrogateescape"))
        _after_hunk(b, h.b1)
    hdr = _Loader(origin, False, None)
    try:
        hdr_origin = hdr._load_lines(
            _lines_of(bytes(a[: st.header_end])), zonefile, origin, 0, 1, partial=True
        )
    except DnssecCeremonyError as exc:
        raise Fallback(f"the directives of the input: {exc}") from None
    if hdr.open_paren:
        raise Fallback("the directives of the input end inside parentheses")
    if hdr.default_ttl is None:
        raise Fallback("no $TTL before the changed lines")
    out: list[Scratch] = []
    for lines in (removed, added):
        ld = _Loader(origin, False, hdr.default_ttl)
        try:
            ld._load_lines(lines, zonefile, hdr_origin, 0, 1, partial=False)
        except DnssecCeremonyError as exc:
            raise Fallback(f"a changed line is refused ({exc.message})") from None
        out.append(ld.nodes)
    dups = any(
        len(set(rds)) != len(rds)
        for ents in out[1].values()
        for _, _, rds, _ in ents
        if isinstance(rds, list)
    )
    return Delta(out[0], out[1], dups, count)


# -- the incremental sign ----------------------------------------------------------------------
def apex_child(name: bytes, origin: bytes) -> bytes:
    """The ancestor of ``name`` directly below ``origin`` (``origin`` for the apex)."""
    if name == origin:
        return origin
    cut = len(name) - len(origin)
    i = 0
    while i + 1 + name[i] < cut:
        i += 1 + name[i]
    return name[i:]


Content = dict[bytes, dict[int, tuple[int, set[bytes]]]]  # owner -> type -> (ttl, rdatas)


@dataclass
class _Element:
    """One apex child's subtree (or the apex) and where it is in the previous output (a
    native class when compiled: tens of thousands are made per re-sign, never pickled)."""

    child: bytes
    lo: int
    hi: int
    old: Content = field(default_factory=dict)
    new: Content = field(default_factory=dict)
    first_old: bytes | None = None
    first_new: bytes | None = None
    hashed: bool = False  # an NSEC3 owner (its hash label right below the apex)
    hash: bytes = b""  # hashed: its hash
    next: bytes = b""  # hashed: its next hash in the new chain (b"": removed)
    bitmap: bytes | None = None  # hashed: its new bitmap (None: the previous record's)
    nsec3: tuple[bytes, bytes] | None = None  # hashed: (hash, new NSEC3 RDATA); None: removed


@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass
class Outcome:
    """An incremental sign that was written."""

    sha256: str
    serial: int
    counts: dict[str, int]
    created: int
    reused: int
    min_expiration: int
    max_expiration: int
    names_rendered: int
    runs: int
    changed_lines: int
    verified: int
    timings: dict[str, float]
    processes: int = 1
    nsec3: dict[str, int] | None = None  # NSEC3 records added, removed, re-rendered


class _Clock:
    def __init__(self) -> None:
        import time

        self.time = time.perf_counter
        self.mark = self.time()
        self.t: dict[str, float] = {}

    def lap(self, what: str) -> None:
        now = self.time()
        self.t[what] = round(now - self.mark, 3)
        self.mark = now


def sign_incremental(
    *,
    zonefile: str,
    previous: str,
    out: str,
    settings: Settings,
    key: KeyLike,
    stat_before: Callable[[], tuple[int, int, int]] | None = None,
    jobs: int = 1,
    opener: KeyOpener | None = None,
) -> Outcome:
    """Re-sign ``zonefile`` from ``previous`` and its state into ``out`` (atomically, the new
    state after it); raise :class:`Fallback` (nothing written) when the full path must run."""
    clock = _Clock()
    s = settings
    deferred: list[Callable[[], None]] = []  # the state's own check: in the hash thread
    st = load_state(state_path(previous), deferred)
    if st.fingerprint != s.fingerprint() or st.origin != s.origin.hex():
        raise Fallback("the state was made with another key, zone or policy")
    if s.denial.mode == "nsec3" and len(st.hashes) != HASH * st.counts["chain"]:
        raise Fallback("the state does not hold the NSEC3 chain of the previous zone")
    now = s.times.now
    if st.min_expiration <= now + s.refresh:
        raise Fallback("signatures of the previous zone expire within the refresh interval")
    if st.max_inception > now:
        raise Fallback("--now is before the previous zone was signed")
    if st.include:
        raise Fallback("the input uses $INCLUDE (changes in included files are not seen)")
    if not st.no_duplicates:
        raise Fallback(
            "cannot prove no record is written twice in the input (a duplicate, or blank or "
            "indented comment lines)"
        )
    if not st.apex_ok:
        raise Fallback("the apex holds DNSKEY/CDS/CDNSKEY records of the input")
    if st.unsigned_serial is None:
        raise Fallback("the input's SOA serial is unknown (SOA not near the top)")
    with contextlib.ExitStack() as stack:
        try:
            pf = stack.enter_context(open(previous, "rb"))
            old_f = stack.enter_context(open(input_path(previous), "rb"))
            new_f = stack.enter_context(open(zonefile, "rb"))
        except OSError as exc:
            raise Fallback(f"cannot read {exc.filename}: {exc.strerror}") from None
        pm = stack.enter_context(_mapped(pf))
        a = stack.enter_context(_mapped(old_f))
        b = stack.enter_context(_mapped(new_f))
        if len(pm) != st.out_size or len(a) != st.input_size:
            raise Fallback("the previous signed zone or the input copy does not match its state")
        # meanwhile (hashlib and file writes release the GIL): the SHA-256 of the previous
        # output and of the input copy (checked before anything is written), and the new
        # input's copy for the next state; at low priority (background_thread): they use
        # the core the planning leaves free, and do not slow the signing processes down
        # (1M NSEC3: the signing phase 0.87-1.06 -> 0.71-0.83 s)
        pool = stack.enter_context(
            ThreadPoolExecutor(1, thread_name_prefix="zs-hash", initializer=background_thread)
        )

        hashes = pool.submit(_previous_digests, deferred, previous, pf, pm, old_f, a)
        # the copy in a thread of its own: on a busy disk it can take seconds, and the
        # output's digest (below) must not queue behind it
        copier = stack.enter_context(
            ThreadPoolExecutor(1, thread_name_prefix="zs-copy", initializer=background_thread)
        )
        copied = copier.submit(_copy_input, b, out)
        stack.callback(_drop_copy, copied)

        # (partials, not nested functions: see _Plan._run_nsec3)
        check = partial(_check_previous, hashes, st)
        clock.lap("state")
        try:
            hunks = diff(a, b, int(max(1, st.input_newlines) * MAX_CHANGED))
            clock.lap("diff")
            delta = parse_changes(hunks, a, b, st, s.origin, zonefile)
            clock.lap("parse_changes")
            plan = _Plan(st, pm, s, previous)
            result = plan.run(delta, key, jobs, opener, clock)
            clock.lap("sign")
        except BaseException:
            check()  # a state that does not match explains any failure
            raise
        check()
        clock.lap("state_check")
        remove_state(out, copier)
        # the next state's index before the output (its body hashed meanwhile, in the
        # copier's thread: the input copy is done or nearly)
        new_st = plan.new_state(result, delta, hunks)
        body = copier.submit(_state_digest, new_st)
        clock.lap("new_state")
        digest = hashlib.sha256()
        # the output's digest at normal priority: the write waits for it, and it takes the
        # GIL for each of its ~40k pieces (a thread at nice 19 descheduled while it holds the
        # GIL stalls the writer; the write phase took 0.24 s or 0.55 s at random)
        hasher = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="zs-digest"))
        try:
            with atomic_writer(out) as fh:
                plan.write(fh, digest, result, hasher)
        except OSError as exc:
            raise OutputError(f"{out}: cannot write the signed zone: {exc.strerror}") from None
        clock.lap("write")
        try:
            size, sha, tmp = copied.result()
            os.replace(tmp, input_path(out))
            new_st = replace(
                new_st, out_sha256=digest.hexdigest(), input_size=size, input_sha256=sha
            )
            _dump_state(state_path(out), new_st, body.result())
        except (OSError, OutputError) as unwritten:
            remove_state(out)
            log.warning("the state of %s was not written: %s", out, unwritten)
        clock.lap("state_write")
        return Outcome(
            sha256=digest.hexdigest(),
            serial=result.serial,
            counts=result.counts,
            created=result.created,
            reused=result.counts["rrsets_signed"] - result.created,
            min_expiration=result.min_exp,
            max_expiration=result.max_exp,
            names_rendered=result.names_rendered,
            runs=len(result.runs),
            changed_lines=delta.changed_lines,
            verified=result.verified,
            timings=clock.t,
            processes=result.processes,
            nsec3=result.nsec3,
        )
    raise AssertionError("unreachable")


def _previous_digests(
    deferred: list[Callable[[], None]],
    previous: str,
    pf: IO[bytes],
    pm: Buf,
    old_f: IO[bytes],
    a: Buf,
) -> tuple[str, str]:
    """The state's own check, then the SHA-256 of the previous output and of its input copy:
    hashed since the command started (signer.zone.prefetch), or now."""
    for body_check in deferred:
        body_check()
    return (
        prefetch.sha256(previous, os.fstat(pf.fileno())) or _sha256(pm),
        prefetch.sha256(input_path(previous), os.fstat(old_f.fileno())) or _sha256(a),
    )


def _check_previous(hashes: Future[tuple[str, str]], st: State) -> None:
    if hashes.result() != (st.out_sha256, st.input_sha256):
        raise Fallback("the previous signed zone or the input copy does not match its state")


def _drop_copy(copied: Future[tuple[int, str, str]]) -> None:
    """Remove the input copy's temporary file when it was not moved into place."""
    with contextlib.suppress(Exception):  # no copy, or it was moved into place
        os.unlink(copied.result()[2])


def _sha256(buf: Buf) -> str:
    h = hashlib.sha256()
    if isinstance(buf, bytes):
        h.update(buf)
        return h.hexdigest()
    with memoryview(buf) as view:  # one call: hashlib releases the GIL for all of it (in
        h.update(view)  # pieces, this thread waited for the GIL after each one)
    return h.hexdigest()


class _Run(NamedTuple):
    """Names [lo, hi) of the previous output re-rendered: the new names, the length of
    each one's text (native uint64 octets, as ``array("Q").tobytes()``) and the text. A
    tuple with bytes in it: a forked process's thousands of them cross the pipe at ~1 µs
    each (as a dataclass with an array, ~3.5 µs each way: 0.06 s at 1M, 1 % changed)."""

    lo: int
    hi: int
    names: list[bytes]
    lengths: bytes
    text: bytes


@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass
class _Result:
    runs: list[_Run]
    serial: int
    unsigned_serial: int
    counts: dict[str, int]
    created: int
    min_exp: int
    max_exp: int
    names_rendered: int
    verified: int
    duplicates: bool  # an added record was in the previous zone already
    processes: int = 1
    hashes: bytes = b""  # NSEC3: the new chain's hashes in order
    nsec3: dict[str, int] | None = None


@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass
class _Partial:
    """What one process made of its share of the groups (counts: changes)."""

    runs: list[_Run]
    created: int
    lo_exp: int
    hi_exp: int
    rendered: int
    verified: int
    counts: dict[str, int]
    serial: int | None  # the share holding the apex: the new serial, the input's
    unsigned: int | None
    duplicates: bool = False
    nsec3_found: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)
    nsec3_expected: list[tuple[bytes, bool, bytes, bytes]] = field(default_factory=list)


_CLS_FIELDS = ("delegations", "secure_delegations", "glue_names", "occluded_names")


@_accel.mypyc_attr(native_class=False)  # picklable, __dict__: see _accel
@dataclass
class _ChainPart:
    """NSEC3: what one process's share of the touched subtrees adds to the chain plan."""

    old_h: dict[bytes, bytes]  # hash -> bitmap of the share's chain entries, before
    new_h: dict[bytes, bytes]  # and after the change
    ents: int  # change in the number of empty non-terminals in the chain
    old_cls: tuple[int, ...]  # the share's subtrees' classification before (_CLS_FIELDS)
    duplicates: bool  # an added record was in the previous zone already


# a process's part of a plan -> every process's, in order (sent to and got from the others)
Exchange = Callable[[Any], list[Any]]
S = TypeVar("S")  # what one process works on


def _position(e: _Element) -> tuple[int, int]:
    return e.lo, e.hi


def _cuts(elements: list[_Element], jobs: int, head: float = 1.0) -> list[int]:
    """Positions in the previous output cutting ``elements`` (sorted by position) into up
    to ``jobs`` contiguous shares of about equal work (names of the previous output, plus
    one per element), the first share ``head`` times the others': share i holds the
    elements with cuts[i-1] <= lo < cuts[i]. The first share holds the first element (the
    apex)."""
    if jobs <= 1 or len(elements) <= 1:
        return []
    weights = [e.hi - e.lo + 1 for e in elements]
    total = sum(weights)
    unit = total / (jobs - 1 + head)
    cuts: list[int] = []
    acc = 0
    for e, w in zip(elements, weights, strict=True):
        due = acc >= unit * (len(cuts) + head) and len(cuts) < jobs - 1
        if due and e.lo > (cuts[-1] if cuts else elements[0].lo):
            cuts.append(e.lo)
        acc += w
    return cuts


def _groups(elements: list[_Element]) -> list[list[_Element]]:
    """``elements`` (sorted by position) in runs of elements adjacent in the previous output."""
    groups: list[list[_Element]] = []
    for e in elements:
        if groups and groups[-1][-1].hi == e.lo:
            groups[-1].append(e)
        else:
            groups.append([e])
    return groups


def _split(groups: list[list[_Element]], jobs: int) -> list[list[list[_Element]]]:
    """``groups`` cut into up to ``jobs`` contiguous shares of about equal work (names
    of the previous output, plus one per element)."""
    if jobs <= 1 or len(groups) <= 1:
        return [groups]
    weights = [sum(e.hi - e.lo + 1 for e in g) for g in groups]
    total = sum(weights)
    shares: list[list[list[_Element]]] = [[]]
    acc = 0
    for g, w in zip(groups, weights, strict=True):
        if shares[-1] and acc >= total * len(shares) / jobs and len(shares) < jobs:
            shares.append([])
        shares[-1].append(g)
        acc += w
    return shares


def _in_processes(
    work: Callable[[S, Callable[[], KeyLike], Exchange], _Partial],
    shares: list[S],
    key: KeyLike,
    opener: KeyOpener | None,
) -> list[_Partial]:
    """``work`` on every share: the first in this process, the others in forked processes
    (they inherit the plan copy-on-write and open the key themselves when they first need
    it); results in order. A work may exchange one part of its plan with the others (see
    :data:`Exchange`): the others' parts come to this process, which sends them all back.
    A :class:`Fallback` of any share wins, else the first share's error is raised."""
    # (partials, no nested functions or lambdas: see _Plan._run_nsec3)
    if len(shares) == 1:
        return [work(shares[0], partial(_same, key), _alone)]
    assert opener is not None
    mp = multiprocessing.get_context("fork")
    lock = mp.Lock()
    procs: list[Any] = []
    conns: list[Connection] = []

    done: list[bool] = []  # [True] once every result is in
    # per worker: None while it runs, else what it last sent and nothing follows until it
    # gets an answer ("part": it waits for the parts) or ever ("error")
    held: list[str | None] = [None] * len(shares)
    try:
        for share in shares[1:]:
            parent_end, child_end = mp.Pipe(duplex=True)
            p = mp.Process(target=_child, args=(child_end, work, share, opener, lock), daemon=True)
            p.start()
            child_end.close()
            procs.append(p)
            conns.append(parent_end)
        results: list[_Partial] = []
        errors: list[BaseException] = []
        try:
            results.append(
                work(shares[0], partial(_same, key), partial(_exchange, conns, procs, held))
            )
        except (Fallback, DnssecCeremonyError) as exc:
            errors.append(exc)
        for i in range(1, len(shares)):
            if held[i] is not None:  # waits for parts (this process failed), or failed
                continue
            kind, value = _receive(conns, procs, i)
            if kind == "ok":
                results.append(value)
            elif kind != "part":  # "part": this process failed before the exchange
                errors.append(value)
        fallback = next((e for e in errors if isinstance(e, Fallback)), None)
        if fallback is not None:
            raise fallback
        if errors:
            raise errors[0]
        done.append(True)
        return results
    finally:
        for c in conns:
            c.close()
        for p in procs:
            if not done:  # on a failure: a worker may wait for parts that never come
                p.kill()
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()


def _same(key: KeyLike) -> KeyLike:
    return key


def _alone(mine: Any) -> list[Any]:
    return [mine]


def _exchange(
    conns: list[Connection], procs: list[Any], held: list[str | None], mine: Any
) -> list[Any]:
    """:data:`Exchange` in the parent: every worker's part, in order, sent back to them all
    (``held``: see :func:`_in_processes`)."""
    got = [mine]
    failed: list[BaseException] = []
    for i in range(1, len(conns) + 1):
        kind, value = _receive(conns, procs, i)
        held[i] = kind
        if kind == "part":
            got.append(value)
        else:
            failed.append(value)
    if failed:
        raise next((e for e in failed if isinstance(e, Fallback)), failed[0])
    for i, conn in enumerate(conns, 1):
        conn.send(("parts", got))
        held[i] = None
    return got


def _receive(conns: list[Connection], procs: list[Any], i: int) -> tuple[str, Any]:
    """Worker ``i``'s next message (kind, value); its death as an error."""
    try:
        kind, value = conns[i - 1].recv()
    except (EOFError, OSError):
        procs[i - 1].join(timeout=5)
        code = procs[i - 1].exitcode
        return "error", WorkerFailed(f"incremental worker {i} died (exit code {code})")
    return str(kind), value


def _child(
    conn: Connection,
    work: Callable[[S, Callable[[], KeyLike], Exchange], _Partial],
    share: S,
    opener: KeyOpener,
    lock: Lock,
) -> None:
    opened: list[KeyLike] = []

    def key() -> KeyLike:
        if not opened:
            with lock:  # one token login at a time (see open_key_retrying)
                opened.append(open_key_retrying(opener))
        return opened[0]

    def exchange(mine: Any) -> list[Any]:
        conn.send(("part", mine))
        kind, value = conn.recv()  # EOFError: the parent gave up
        if kind != "parts":
            raise WorkerFailed("the parent sent no parts")
        return list(value)

    try:
        result: tuple[str, Any] = ("ok", work(share, key, exchange))
    except Fallback as fallback:
        result = ("error", Fallback(str(fallback)))
    except EOFError:
        return  # the parent stopped (it failed itself): nothing to tell it
    except BaseException as exc:  # sent to the parent, raised there
        result = ("error", picklable_error(exc))
    try:
        with contextlib.suppress(OSError):  # the parent is gone
            conn.send(result)
    finally:
        conn.close()


# -- the NSEC3 chain -----------------------------------------------------------------------------
class _Hashes:
    """A blob of hashes (HASH octets each, in order) as a read-only sequence, searched
    in C (``_index.bisect_fixed``) or through a sample of every _HSTRIDE-th hash, made
    when first needed (no object per hash)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.n = len(blob) // HASH
        self.sample: list[bytes] | None = None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> bytes:
        return self.blob[i * HASH : i * HASH + HASH]

    def _window(self, h: bytes) -> tuple[int, list[bytes]]:
        """(base, the hashes from base on) where every hash before base is < ``h`` and
        every one after the window is > ``h``."""
        if self.sample is None:
            blob = self.blob
            self.sample = [blob[i : i + HASH] for i in range(0, len(blob), HASH * _HSTRIDE)]
        j = bisect_right(self.sample, h)  # sample[j - 1] <= h < sample[j]
        if not j:
            return 0, []
        base = (j - 1) * _HSTRIDE
        w = self.blob[base * HASH : (base + _HSTRIDE) * HASH]
        return base, [w[k : k + HASH] for k in range(0, len(w), HASH)]

    def left(self, h: bytes) -> int:
        """``bisect_left``: the index of the first hash >= ``h``."""
        fast = _INDEX[0]
        if fast is not None and len(h) == HASH:
            return int(fast.bisect_fixed(self.blob, HASH, h, False))
        base, w = self._window(h)
        return base + bisect_left(w, h)

    def right(self, h: bytes) -> int:
        """``bisect_right``: the index of the first hash > ``h``."""
        fast = _INDEX[0]
        if fast is not None and len(h) == HASH:
            return int(fast.bisect_fixed(self.blob, HASH, h, True))
        base, w = self._window(h)
        return base + bisect_right(w, h)

    def has(self, h: bytes) -> bool:
        i = self.left(h)
        return i < self.n and self[i] == h


class _Chain:
    """The NSEC3 chain after the change: the previous chain (sorted hashes, from the state)
    less ``removed`` (hashes of that chain) plus ``added`` (hashes not in it)."""

    def __init__(self, old: _Hashes, removed: set[bytes], added: list[bytes]) -> None:
        self.old = old
        self.removed = removed
        self.added = sorted(added)
        self.size = len(old) - len(removed) + len(added)
        if self.size <= 0:
            raise Fallback("the NSEC3 chain would be empty")

    def _up(self, i: int) -> bytes | None:
        """The first hash of the previous chain at or after index ``i`` that stays."""
        old, removed = self.old, self.removed
        while i < len(old):
            h = old[i]
            if h not in removed:
                return h
            i += 1
        return None

    def _down(self, i: int) -> bytes | None:
        """The last hash of the previous chain at or before index ``i`` that stays."""
        old, removed = self.old, self.removed
        while i >= 0:
            h = old[i]
            if h not in removed:
                return h
            i -= 1
        return None

    def has(self, h: bytes) -> bool:
        if h in self.removed:
            return False
        i = bisect_left(self.added, h)
        return (i < len(self.added) and self.added[i] == h) or self.old.has(h)

    def succ(self, h: bytes) -> bytes:
        """The next hash after ``h`` in the chain (the first after the last)."""
        added = self.added
        j = bisect_right(added, h)
        a = added[j] if j < len(added) else None
        found = [c for c in (self._up(self.old.right(h)), a) if c is not None]
        if not found:  # wrap around
            found = [c for c in (self._up(0), added[0] if added else None) if c is not None]
        return min(found)

    def pred(self, h: bytes) -> bytes:
        """The hash before ``h`` in the chain (the last before the first)."""
        added = self.added
        j = bisect_left(added, h)
        a = added[j - 1] if j else None
        found = [c for c in (self._down(self.old.left(h) - 1), a) if c is not None]
        if not found:  # wrap around
            last = added[-1] if added else None
            found = [c for c in (self._down(len(self.old) - 1), last) if c is not None]
        return max(found)

    def blob(self) -> bytes:
        """The chain's hashes in order, concatenated (for the next state)."""
        old = self.old
        cuts = sorted(old.left(h) for h in self.removed)
        parts: list[bytes] = []
        prev = 0
        for i in cuts:
            parts.append(old.blob[prev * HASH : i * HASH])
            prev = i + 1
        parts.append(old.blob[prev * HASH :])
        kept = _Hashes(b"".join(parts))
        out: list[bytes] = []
        prev = 0
        for h in self.added:
            i = kept.left(h)
            out.append(kept.blob[prev * HASH : i * HASH])
            out.append(h)
            prev = i
        out.append(kept.blob[prev * HASH :])
        return b"".join(out)


def _nsec3_fields(rd: bytes) -> tuple[bytes, bytes, bytes]:
    """(header up to the salt, next hash, type bitmap) of an NSEC3 RDATA."""
    slen = rd[4]
    hl = rd[5 + slen]
    return rd[: 5 + slen], rd[6 + slen : 6 + slen + hl], rd[6 + slen + hl :]


def _nsec3_head(d: Denial) -> bytes:
    """What every NSEC3 RDATA of the chain starts with (see nsec3.link_chain)."""
    return struct.pack("!BBHB", 1, 1 if d.optout else 0, d.iterations, len(d.salt)) + d.salt


class _Locator:
    """Where an apex child's subtree is among the previous output's names (canonical
    order): in C (``_index.locate``) when compiled, else (and for what C refuses) in Python."""

    def __init__(self, origin: bytes, names: _Names) -> None:
        self.origin = origin
        self.names = names
        self.n = len(names)
        self.sample: list[bytes] | None = None  # canonical keys of every _STRIDE-th name

    def range_of(self, child: bytes) -> tuple[int, int]:
        """The names [lo, hi) of ``child``'s subtree in the previous output (lo == hi: none;
        a new subtree goes there)."""
        if child == self.origin:
            return 0, 1
        fast = _INDEX[0]
        if fast is not None:
            try:
                lo, hi = fast.locate(self.names.blob, self.names.ends, child)
                return int(lo), int(hi)
            except ValueError:
                pass  # a malformed name: the Python search below says what it makes of it
        return self._range_of_py(child)

    def _range_of_py(self, child: bytes) -> tuple[int, int]:
        """:meth:`range_of` in Python (the specification of ``_index.locate``)."""
        kc = canonical_key(child)
        names = self.names
        # the sampled keys narrow the search to one stride (bisect in C, no key function)
        if self.sample is None:
            self.sample = [canonical_key(names[i]) for i in range(0, self.n, _STRIDE)]
        j = bisect_left(self.sample, kc)  # sample[j - 1] < kc <= sample[j]
        lo = bisect_left(
            names,
            kc,
            max(1, (j - 1) * _STRIDE + 1),
            min(self.n, j * _STRIDE) if j < len(self.sample) else self.n,
            key=canonical_key,
        )
        hi = lo
        origin = self.origin
        while hi < self.n and hi - lo < 8 and apex_child(names[hi], origin) == child:
            hi += 1
        if hi - lo == 8:  # a big subtree
            hi = bisect_left(names, kc[:-1] + b"\x01", hi, self.n, key=canonical_key)
        return lo, hi


class _Plan:
    def __init__(self, st: State, pm: Buf, s: Settings, path: str) -> None:
        self.st = st
        self.pm = pm
        self.s = s
        self.path = path
        self.origin = s.origin
        self.names = _Names(st.blob, st.namelens)
        self.n = len(self.names)
        self.off: array[int] = _cumsum(st.lengths, True)
        if not self.n or self.names[0] != self.origin or self.off[-1] != st.out_size:
            raise Fallback("the state's index does not fit the previous signed zone")
        self.previous: Previous = {}
        self.types: dict[bytes, list[int]] = {}  # the previous RRsets' types, by owner
        self.locator = _Locator(self.origin, self.names)
        # NSEC3 (see _plan_chain)
        self.nsec3 = s.denial.mode == "nsec3"
        self.chain: _Chain | None = None
        self.render: frozenset[bytes] = frozenset()  # hashes whose NSEC3 is re-rendered
        self.kept: dict[bytes, bytes] = {}  # touched subtrees' hashes whose NSEC3 stays
        self.elems: dict[bytes, _Element] = {}  # the NSEC3 owners rendered, by hash
        self.fresh: set[bytes] = set()  # the hashes added
        self.gone: frozenset[bytes] = frozenset()  # the owners of the hashes removed
        self.ents = 0  # change in the number of empty non-terminals in the chain
        self.old_cls = Classification()  # of the touched subtrees before the change
        self.nsec3_stats: dict[str, int] | None = None

    def range_of(self, child: bytes) -> tuple[int, int]:
        """The names [lo, hi) of ``child``'s subtree in the previous output (see _Locator)."""
        return self.locator.range_of(child)

    def _parse(self, elements: list[_Element]) -> None:
        """Read the elements' blocks of the previous output: their unsigned content (NSEC,
        RRSIGs and the bundle's RRsets left out, the SOA serial the input's) and the
        previous RRsets with their RRSIGs (for reuse)."""
        parts = [self.pm[self.off[e.lo] : self.off[e.hi]] for e in elements if e.hi > e.lo]
        try:
            nodes = _parse_signed(b"".join(parts), self.origin, self.path)
        except DnssecCeremonyError as exc:
            raise Fallback(f"the previous signed zone does not parse ({exc})") from None
        by_child = {e.child: e for e in elements}
        if len(nodes) != sum(e.hi - e.lo for e in elements):
            raise Fallback("the previous signed zone does not fit the state's index")
        origin = self.origin
        prev = self.previous
        types_of = self.types
        unsigned = self.st.unsigned_serial
        assert unsigned is not None
        skip = (T_NSEC, T_NSEC3)
        apex_skip = (*BUNDLE_TYPES, T_NSEC3PARAM)
        for owner, ents in nodes.items():
            e = by_child.get(apex_child(owner, origin))
            if e is None:
                raise Fallback("the previous signed zone does not fit the state's index")
            if self.nsec3:
                types = {ent[0] for ent in ents}
                if e.hashed:
                    ok = owner == e.child and T_NSEC3 in types and types <= {T_NSEC3, T_RRSIG}
                else:
                    ok = T_NSEC3 not in types
                if not ok:
                    raise Fallback(
                        "a name of the zone is the owner of an NSEC3 record (a hash collision)"
                    )
            sigs: dict[int, list[bytes]] = {}
            content: dict[int, tuple[int, set[bytes]]] = {}
            kinds = types_of.setdefault(owner, [])
            for rtype, ttl, rds, _ in ents:
                assert isinstance(rtype, int) and isinstance(ttl, int)
                assert isinstance(rds, list)
                if rtype == T_RRSIG:
                    for sig in rds:
                        sigs.setdefault(rrsig_fields(sig).type_covered, []).append(sig)
            for rtype, ttl, rds, _ in ents:
                assert isinstance(rtype, int) and isinstance(ttl, int)
                assert isinstance(rds, list)
                if rtype == T_RRSIG:
                    continue
                rdatas = tuple(sorted(set(rds)))
                if (owner, rtype) not in prev:
                    kinds.append(rtype)
                prev[(owner, rtype)] = RRset(
                    owner, rtype, ttl, rdatas, tuple(sorted(set(sigs.get(rtype, ()))))
                )
                if rtype in skip or (owner == origin and rtype in apex_skip):
                    continue
                if owner == origin and rtype == T_SOA:
                    rdatas = (soa_with_serial(rdatas[0], unsigned),)
                content[rtype] = (ttl, set(rdatas))
            e.old[owner] = content
            e.new[owner] = {t: (ttl, set(rds)) for t, (ttl, rds) in content.items()}
        for e in elements:
            if e.hi > e.lo:
                e.first_old = self.names[e.lo]

    # -- the whole plan ------------------------------------------------------------------
    def run(
        self,
        delta: Delta,
        key: KeyLike,
        jobs: int = 1,
        opener: KeyOpener | None = None,
        clock: _Clock | None = None,
    ) -> _Result:
        """Plan the elements (in this process), then parse, apply, sign, render and verify
        them in up to ``jobs`` processes (runs are independent: each holds whole groups)."""
        origin = self.origin
        touched: dict[bytes, _Element] = {origin: _Element(origin, 0, 1)}
        for scratch in (delta.removed, delta.added):
            for owner in scratch:
                c = apex_child(owner, origin)
                if c not in touched:
                    touched[c] = _Element(c, *self.range_of(c))
        if self.nsec3:
            return self._run_nsec3(touched, delta, key, jobs, opener, clock)
        for c in self._extras(touched, delta):
            touched[c] = _Element(c, *self.range_of(c))
        elements = sorted(touched.values(), key=lambda e: (e.lo, canonical_key(e.child)))
        groups = _groups(elements)  # runs of elements adjacent in the previous output
        if len(elements) < PARALLEL_MIN or opener is None:
            jobs = 1
        planned = frozenset(touched)
        if clock is not None:
            clock.lap("plan")

        work = partial(self._nsec_share, delta, planned)  # not a closure: see _run_nsec3
        return self._combine(_in_processes(work, _split(groups, jobs), key, opener))

    def _nsec_share(
        self,
        delta: Delta,
        planned: frozenset[bytes],
        groups: list[list[_Element]],
        k: Callable[[], KeyLike],
        _exchange: Exchange,
    ) -> _Partial:
        return self._work(groups, k(), delta, planned)

    def _run_nsec3(
        self,
        touched: dict[bytes, _Element],
        delta: Delta,
        key: KeyLike,
        jobs: int,
        opener: KeyOpener | None,
        clock: _Clock | None,
    ) -> _Result:
        """NSEC3: the processes fork before the plan. Each parses and changes its share of
        the touched subtrees (a contiguous range of the previous output) and hashes their
        chain entries; the shares' entries are exchanged, every process plans the same new
        chain from all of them (:meth:`_plan_chain`), then signs its share of the subtrees
        and of the NSEC3 owners to re-render (those in its range)."""
        regular = sorted(touched.values(), key=lambda e: (e.lo, canonical_key(e.child)))
        if len(regular) < PARALLEL_MIN or opener is None:
            jobs = 1
        cuts = _cuts(regular, jobs)
        # a partial of a method, not a nested function: mypyc keeps a compiled function's
        # nested functions in a closure object they refer to, a reference cycle that would
        # keep the whole plan alive until the garbage collector runs (~0.09 s at 1M)
        work = partial(self._nsec3_share, regular, cuts, frozenset(touched), delta, clock)
        return self._combine(_in_processes(work, list(range(len(cuts) + 1)), key, opener))

    def _nsec3_share(
        self,
        regular: list[_Element],
        cuts: list[int],
        keys: frozenset[bytes],
        delta: Delta,
        clock: _Clock | None,
        i: int,
        k: Callable[[], KeyLike],
        exchange: Exchange,
    ) -> _Partial:
        """Process ``i``'s part of :meth:`_run_nsec3`."""
        mine = [e for e in regular if bisect_right(cuts, e.lo) == i]
        entries = exchange(self._chain_part(mine, delta, i == 0))
        hashed = self._plan_chain(entries, keys)
        if i == 0 and clock is not None:
            clock.lap("plan")
        # the shares signed: cut again over the NSEC3 owners too (they cluster: hash
        # labels are digits and a-v); a subtree that another process parsed is parsed
        # and changed here as well (its chain entries are in the plan already)
        # (lo, hi): the canonical order where it matters (an added subtree, hi == lo,
        # sorts before the one that starts there); no name keys made
        every = sorted([*regular, *hashed], key=_position)
        final = _cuts(every, len(cuts) + 1, SIGN_HEAD)
        own = [e for e in every if bisect_right(final, e.lo) == i]
        moved = [e for e in own if not e.hashed and bisect_right(cuts, e.lo) != i]
        if moved:
            self._parse(moved)
            self._apply({e.child: e for e in moved}, delta)
        self._nsec3_records([e for e in own if e.hashed])
        part = self._sign(_groups(own), k())
        part.duplicates = any(entry.duplicates for entry in entries)
        return part

    def _extras(self, touched: dict[bytes, _Element], delta: Delta) -> dict[bytes, None]:
        """The untouched subtrees before a touched one whose first name may change (their
        last NSEC points to it). A superset is harmless (an unchanged subtree re-rendered
        is its old text); :meth:`_work` checks that nothing needed is missing."""
        origin = self.origin
        added: dict[bytes, list[bytes]] = {}
        for owner in delta.added:
            added.setdefault(apex_child(owner, origin), []).append(owner)
        extra: dict[bytes, None] = {}
        for c, e in touched.items():
            if c == origin or e.lo <= 1 or not self._first_may_change(e, delta, added.get(c)):
                continue
            p = apex_child(self.names[e.lo - 1], origin)
            if p not in touched:
                extra[p] = None
        return extra

    def _first_may_change(self, e: _Element, delta: Delta, added: list[bytes] | None) -> bool:
        if e.hi == e.lo:
            return True  # a new subtree
        first = self.names[e.lo]
        kf = canonical_key(first)
        if added and any(o != first and canonical_key(o) < kf for o in added):
            return True
        gone = delta.removed.get(first)
        if not gone or first in delta.added:
            return False
        # the records of ``first`` in P: its lines less RRSIG and NSEC lines (a lower bound)
        block = self.pm[self.off[e.lo] : self.off[e.lo + 1]]
        have = block.count(b"\n") - block.count(b"\tRRSIG\t") - block.count(b"\tNSEC\t")
        removed = sum(len(set(ent[2])) for ent in gone if isinstance(ent[2], list))
        return removed >= have

    # -- NSEC3 -----------------------------------------------------------------------------
    def _chain_part(self, elements: list[_Element], delta: Delta, has_apex: bool) -> _ChainPart:
        """NSEC3, one process's share of the touched subtrees: parsed and changed (here: the
        process signs them), and their chain entries (names with an NSEC3 and their bitmaps,
        ENTs; opt-out leaves insecure delegations out) hashed, before and after."""
        d = self.s.denial
        self._parse(elements)
        duplicates = self._apply({e.child: e for e in elements}, delta)
        part = _ChainPart({}, {}, 0, (0, 0, 0, 0), duplicates)
        # All the share's subtrees in one zone (before, then after): they are disjoint
        # subtrees of apex children (and the apex), so its chain entries and classification
        # are those of each subtree alone, summed -- one zone instead of two per subtree.
        for dest, new in ((part.old_h, False), (part.new_h, True)):
            contents = [e.new if new else e.old for e in elements]
            entries, ents, cls = self._chain_entries(has_apex, contents, new)
            part.ents += len(ents) if new else -len(ents)
            if not new:
                part.old_cls = tuple(getattr(cls, f) for f in _CLS_FIELDS)
            for h, bitmap, _name in hash_entries(entries, d.salt, d.iterations):
                if h in dest:
                    raise Fallback("an NSEC3 hash collision among the changed names")
                dest[h] = bitmap
        return part

    def _plan_chain(self, parts: list[_ChainPart], touched: frozenset[bytes]) -> list[_Element]:
        """The new chain from every share's entries (the same in every process), and the
        NSEC3 owners to render: each added chain entry or one with a new bitmap (and the
        apex's), each removed one (rendered as nothing), and the predecessor in hash order
        of every added or removed hash (its next hash changes). The chain's order comes from
        the state. Returns those owners' elements."""
        origin = self.origin
        d = self.s.denial
        old_h: dict[bytes, bytes] = {}  # hash -> bitmap, of the touched subtrees before
        new_h: dict[bytes, bytes] = {}  # and after the change
        for part in parts:
            for dest, src in ((old_h, part.old_h), (new_h, part.new_h)):
                if len(dest) + len(src) != len(dest | src):
                    raise Fallback("an NSEC3 hash collision among the changed names")
                dest.update(src)
            self.ents += part.ents
            for f, v in zip(_CLS_FIELDS, part.old_cls, strict=True):
                setattr(self.old_cls, f, getattr(self.old_cls, f) + v)
        old = _Hashes(self.st.hashes)
        if not all(old.has(h) for h in old_h):
            raise Fallback("the state's NSEC3 chain lacks a hash of the previous zone")
        added = [h for h in new_h if h not in old_h]
        if any(old.has(h) for h in added):
            raise Fallback("an added name's NSEC3 hash is in the chain already (a hash collision)")
        removed = {h for h in old_h if h not in new_h}
        chain = _Chain(old, removed, added)
        # the apex's bitmap may change with the bundle (CDS, CDNSKEY): always rendered
        render = {nsec3_hash(origin, d.salt, d.iterations)}
        render.update(h for h, bitmap in new_h.items() if old_h.get(h) != bitmap)
        render.update(chain.pred(h) for h in (*added, *removed))
        # the others keep their record: same bitmap, same next hash
        self.kept = {h: bitmap for h, bitmap in new_h.items() if h not in render}
        hashed: list[_Element] = []
        fresh = set(added)
        for h in sorted(render | removed):
            owner = nsec3_owner(h, origin)
            if owner in touched:
                raise Fallback("a changed name is the owner of an NSEC3 record (a hash collision)")
            e = _Element(owner, *self.range_of(owner), hashed=True, hash=h)
            if e.hi == e.lo and h not in fresh:
                raise Fallback("the state's index lacks an NSEC3 owner of its chain")
            hashed.append(e)
        for e in hashed:  # their records are made where they are signed (_nsec3_records)
            if e.hash not in removed:
                e.next = chain.succ(e.hash)
                e.bitmap = new_h.get(e.hash)
        self.chain = chain
        self.render = frozenset(render)
        self.elems = {e.hash: e for e in hashed}
        self.fresh = fresh
        self.gone = frozenset(e.child for e in hashed if e.hash in removed)
        self.nsec3_stats = {"added": len(added), "removed": len(removed), "rendered": len(render)}
        return hashed

    def _nsec3_records(self, hashed: list[_Element]) -> None:
        """The new NSEC3 RDATA of each NSEC3 owner planned (not removed): the planned next
        hash and bitmap, or the previous record's bitmap for a predecessor outside the
        touched subtrees. Parses their blocks of the previous output (refusing other data
        at an NSEC3 owner)."""
        if not hashed:
            return
        self._parse([e for e in hashed if e.hi > e.lo])
        head = _nsec3_head(self.s.denial)
        for e in hashed:
            if not e.next:
                continue  # removed
            bitmap = e.bitmap
            if bitmap is None:  # a predecessor in an untouched subtree: its bitmap stays
                prev = self.previous.get((e.child, T_NSEC3))
                if prev is None or len(prev.rdatas) != 1:
                    raise Fallback("an NSEC3 owner of the previous zone has not one NSEC3")
                phead, _next, bitmap = _nsec3_fields(prev.rdatas[0])
                if phead != head:
                    raise Fallback("an NSEC3 record of the previous zone has other parameters")
            e.nsec3 = (e.hash, head + bytes((HASH,)) + e.next + bitmap)

    def _nsec3param(self) -> RRset:
        d = self.s.denial
        return nsec3param_rrset(self.origin, self.st.negative_ttl, d.salt, d.iterations)

    def _chain_entries(
        self, apex: bool, contents: list[Content], new: bool
    ) -> tuple[dict[bytes, list[int]], list[bytes], Classification]:
        """The NSEC3 chain entries of subtrees' contents (the apex with the bundle's RRsets
        and the NSEC3PARAM, as the full path hashes it), and their classification."""
        zone = _zone(self.origin, contents, serial=None)
        if not zone.order:
            return {}, [], Classification()
        if apex:
            node = zone.nodes[self.origin]
            node.extend(self.s.apex_rrsets)
            node.append(self._nsec3param())
            node.sort(key=lambda r: r.rtype)
        what = "a zone rule" if new else "the previous zone breaks a rule"
        cls = _quiet_classify(zone, apex, what)  # old: counted once, not where it is signed
        entries, ents = chain_entries(zone, optout=self.s.denial.optout)
        return entries, ents, cls

    def _old_owner(self, i: int, step: int) -> int:
        """From name ``i`` of the previous output on (``step`` 1: forward, -1: backward,
        wrapping around past the apex), the index of the first name shaped like an NSEC3
        owner (a base32hex hash label right below the apex) that was not removed; -1 when
        there is none."""
        names, n, origin = self.names, self.n, self.origin
        size = 33 + len(origin)
        gone = self.gone
        for _ in range(n):
            if i >= n:
                i = 1  # after the apex
            elif i < 1:
                i = n - 1
            name = names[i]
            if (
                len(name) == size
                and name[0] == 32
                and name.endswith(origin)
                and not name[1:33].translate(None, _B32HEX)
                and name not in gone
            ):
                return i
            i += step
        return -1

    def _owner(self, h: bytes) -> bytes:
        e = self.elems.get(h)
        return e.child if e is not None else nsec3_owner(h, self.origin)

    def _check_before(self, h: bytes, before: bytes) -> None:
        """``before`` (not re-rendered) precedes ``h`` in the new chain: the previous zone's
        last NSEC3 owner (not removed) before ``h``'s must be ``before``'s, and its record
        must point to ``h``."""
        i = self._old_owner(self.elems[h].lo - 1, -1)
        if i < 0 or self.names[i] != self._owner(before):
            raise Fallback(
                f"the previous zone has an NSEC3 owner between {b32hex(before).decode()} and "
                f"{b32hex(h).decode()} that the state's chain lacks"
            )
        label = self.elems[h].child[1:33]
        for line in bytes(self.pm[self.off[i] : self.off[i + 1]]).split(b"\n"):
            f = line.split(b"\t")
            if len(f) == 5 and f[3] == b"NSEC3":
                rd = f[4].split()
                if len(rd) > 4 and rd[4].lower() == label:
                    return
        raise Fallback(f"the NSEC3 record before {b32hex(h).decode()} does not point to it")

    def _check_gap(self, h: bytes, nxt: bytes) -> None:
        """The previous zone has no NSEC3 owner between those of ``h`` and ``nxt`` (its next
        hash in the new chain) but removed ones: the first one after ``h``'s owner that was
        not removed must be ``nxt``'s, unless ``nxt`` is added and goes before it."""
        e = self.elems[h]
        i = e.hi
        j = self._old_owner(i, 1)
        if nxt in self.fresh:
            stop, n = self.elems[nxt].lo, self.n  # where the added owner goes
            # the names from h's owner up to where nxt's goes, and up to the owner found
            span = stop - i if stop >= i else (n - i) + (stop - 1)
            dist = j - i if j >= i else (n - i) + (j - 1)
            if j < 0 or dist >= span:
                return
        elif j >= 0 and self.names[j] == self._owner(nxt):
            return
        raise Fallback(
            f"the previous zone has an NSEC3 owner between {b32hex(h).decode()} and "
            f"{b32hex(nxt).decode()} that the state's chain lacks"
        )

    def _check_links(self, found: list[tuple[bytes, bytes, bytes]]) -> None:
        """In the process that rendered them: each NSEC3 record is the one planned, and links
        into the chain (the record before it, when it is kept from the previous zone,
        points to it; the previous zone has no NSEC3 owner between it and its next hash
        but removed ones). A re-rendered record before it is checked as one of these."""
        chain = self.chain
        assert chain is not None
        render = self.render
        for h, rd, _owner in found:
            e = self.elems.get(h)
            if e is None or e.nsec3 is None or e.nsec3[1] != rd:
                raise Fallback(
                    f"the re-rendered NSEC3 record of {b32hex(h).decode()} is not the planned one"
                )
            before = chain.pred(h)
            if before not in render:
                self._check_before(h, before)
            self._check_gap(h, _nsec3_fields(rd)[1])

    def _check_chain(self, parts: list[_Partial]) -> None:
        """Before anything is written (with :meth:`_check_links` in each process): the NSEC3
        records rendered are the planned ones, and every chain name of the re-rendered
        subtrees has its NSEC3 (rendered or kept) with the bitmap the verifier expects."""
        chain = self.chain
        assert chain is not None
        found = {h: rd for p in parts for h, rd, _owner in p.nsec3_found}
        if found.keys() != self.render:
            raise Fallback("the NSEC3 records rendered are not the planned ones")
        kept = self.kept
        for part in parts:
            for h, required, bitmap, name in part.nsec3_expected:
                got = found.get(h)
                if got is None and h in kept:  # its record stays: the bitmap it was planned with
                    have = kept[h]
                elif got is None:
                    if required or chain.has(h):
                        raise Fallback(f"{name_to_text(name)} has no NSEC3 record")
                    continue
                else:
                    have = _nsec3_fields(got)[2]
                if have != bitmap:
                    raise Fallback(f"the NSEC3 bitmap of {name_to_text(name)} is not the expected")

    def _work(
        self, groups: list[list[_Element]], key: KeyLike, delta: Delta, planned: frozenset[bytes]
    ) -> _Partial:
        elements = [e for g in groups for e in g]
        self._parse(elements)
        mine = {e.child: e for e in elements}
        duplicates = self._apply(mine, delta)
        origin = self.origin
        for e in elements:
            names = sorted(e.new, key=canonical_key)
            e.first_new = names[0] if names else None
            moved = e.child != origin and e.first_old != e.first_new and e.lo > 1
            if moved and apex_child(self.names[e.lo - 1], origin) not in planned:
                raise Fallback("a subtree whose NSEC changes was not planned")
        part = self._sign(groups, key)
        part.duplicates = duplicates
        return part

    def _apply(self, touched: dict[bytes, _Element], delta: Delta) -> bool:
        """Apply the delta's records under ``touched``; True when an added record was
        there already."""
        origin = self.origin
        duplicates = False
        for owner, ents in delta.removed.items():
            e = touched.get(apex_child(owner, origin))
            if e is None:
                continue
            node = e.new.get(owner)
            for rtype, ttl, rds, _ in ents:
                assert isinstance(rtype, int) and isinstance(rds, list)
                have = node.get(rtype) if node is not None else None
                if node is None or have is None or have[0] != ttl or not set(rds) <= have[1]:
                    raise Fallback("a removed record is not in the previous signed zone")
                have[1].difference_update(rds)
                if not have[1]:
                    del node[rtype]
            if node is not None and not node:
                del e.new[owner]
        for owner, ents in delta.added.items():
            e = touched.get(apex_child(owner, origin))
            if e is None:
                continue
            node = e.new.setdefault(owner, {})
            for rtype, ttl, rds, _ in ents:
                assert isinstance(rtype, int) and isinstance(ttl, int)
                assert isinstance(rds, list)
                if owner == origin and rtype in BUNDLE_TYPES:
                    raise Fallback("CDS/CDNSKEY records at the apex changed")
                have = node.get(rtype)
                if have is None:
                    node[rtype] = (ttl, set(rds))
                    continue
                if have[0] != ttl:
                    raise Fallback("a changed line gives an RRset a second TTL")
                if not duplicates and have[1] & set(rds):
                    duplicates = True
                have[1].update(rds)
            types = set(node)
            if T_CNAME in types and len(types) > 1:
                raise Fallback("a CNAME beside other data")
        apex = touched.get(origin)
        if apex is not None:
            for content in (apex.new, apex.old):
                if any(T_DNAME in node for node in content.values()):
                    raise Fallback("the apex holds a DNAME")
        return duplicates

    def _apex_serial(self, apex: _Element) -> tuple[bytes, int, int]:
        """(the new SOA RDATA without its serial, the new serial, the input's serial)."""
        origin = self.origin
        soa = apex.new.get(origin, {}).get(T_SOA)
        old_soa = apex.old.get(origin, {}).get(T_SOA)
        if soa is None or len(soa[1]) != 1 or old_soa is None:
            raise Fallback("the SOA changed shape")
        soa_rd = next(iter(soa[1]))
        neg = min(soa[0], soa_fields(soa_rd).minimum)
        if neg != self.st.negative_ttl:
            raise Fallback("the SOA TTL or MINIMUM changed (every NSEC would change)")
        unsigned = soa_fields(soa_rd).serial
        prev_soa = self.previous.get((origin, T_SOA))
        assert prev_soa is not None
        s = self.s
        try:
            serial = new_serial(
                s.serial_mode, unsigned, s.times.now, soa_fields(prev_soa.rdatas[0]).serial
            )
        except DnssecCeremonyError as exc:
            raise Fallback(f"the serial: {exc}") from None
        return soa_rd, serial, unsigned

    def _batches(self, groups: list[list[_Element]]) -> list[list[list[_Element]]]:
        """The groups signed together: the apex's alone and the others up to about
        BATCH_NAMES names at a time (fewer calls into the signer and verifier; disjoint
        subtrees verify alike side by side; NSEC: each group has its own wrap, see
        :meth:`_add_nsec`)."""
        out: list[list[list[_Element]]] = []
        size = BATCH_NAMES
        for g in groups:
            if g[0].child == self.origin:
                out.append([g])
                size = BATCH_NAMES
                continue
            if size >= BATCH_NAMES:
                out.append([])
                size = 0
            out[-1].append(g)
            size += sum(e.hi - e.lo + 1 for e in g)
        return out

    def _sign(self, groups: list[list[_Element]], key: KeyLike) -> _Partial:
        s = self.s
        origin = self.origin
        neg = self.st.negative_ttl  # the apex's is checked equal in _apex_serial
        soa_rd = b""
        serial: int | None = None
        unsigned: int | None = None
        if groups and groups[0][0].child == origin:
            soa_rd, serial, unsigned = self._apex_serial(groups[0][0])
        dnskey = next(rs for rs in s.apex_rrsets if rs.rtype == T_DNSKEY)
        param = self._nsec3param() if self.nsec3 else None
        found: list[tuple[bytes, bytes, bytes]] = []
        expected: list[tuple[bytes, bool, bytes, bytes]] = []
        sign = fast_signer(key)
        counts = dict.fromkeys(_COUNT_KEYS, 0)
        runs: list[_Run] = []
        created = 0
        lo_exp, hi_exp = 0xFFFFFFFFFFFF, 0
        rendered = verified = 0
        old_cls = Classification()
        new_cls = Classification()
        by_owner = self.types
        batches = self._batches(groups)
        stride = _crypto_stride(len(batches), s.verify.level)
        for number, batch in enumerate(batches):
            elements = [e for g in batch for e in g]
            has_apex = batch[0][0].child == origin
            hi = batch[-1][-1].hi
            wrap = self._name_after(hi)  # NSEC: the last group's
            for g in batch:
                counts["names"] -= g[-1].hi - g[0].lo
            for e in elements:
                for owner in e.old:
                    for t in by_owner[owner]:
                        counts["rrsets"] -= 1
                        counts["chain"] -= t in (T_NSEC, T_NSEC3)
                        bundle = owner == origin and t in BUNDLE_TYPES
                        counts["rrsets_signed"] -= (
                            bool(self.previous[(owner, t)].sigs) and not bundle
                        )
            if not self.nsec3:  # NSEC3: classified while planning (self.old_cls)
                old_zone = _zone(origin, [e.old for e in elements], serial=None)
                _add_cls(old_cls, _quiet_classify(old_zone, has_apex))
            zone = _zone(origin, [e.new for e in elements], serial=None)
            records = sorted(e.nsec3 for e in elements if e.nsec3 is not None)
            if not zone.order and not records:
                runs.extend(_Run(g[0].lo, g[-1].hi, [], b"", b"") for g in batch)
                continue
            if has_apex:
                assert serial is not None
                node = zone.nodes[origin]
                node[:] = [
                    rs._replace(rdatas=(soa_with_serial(soa_rd, serial),))
                    if rs.rtype == T_SOA
                    else rs
                    for rs in node
                ]
                node.extend(s.apex_rrsets)
                if param is not None:
                    node.append(param)
                node.sort(key=lambda r: r.rtype)
            if zone.order:
                try:
                    cls = classify(zone, apex=has_apex)
                except DnssecCeremonyError as exc:
                    raise Fallback(f"a zone rule: {exc}") from None
                _add_cls(new_cls, cls)
            breaks: dict[bytes, bytes] | None = None
            if param is None:
                chain, breaks = self._add_nsec(zone, batch, neg)
            else:
                try:
                    insert_nsec3(zone, records, neg)
                except Nsec3Collision as collision:
                    raise Fallback(f"NSEC3: {collision}") from None
                chain = len(records)
            lengths: array[int] = array("Q")
            rctx = RangeContext(zone, s.params, s.times, self.previous, s.refresh, sign, lengths)
            res = sign_range(rctx, 0, len(zone.order))
            created += res.created
            if res.sigs:
                lo_exp = min(lo_exp, res.min_exp)
                hi_exp = max(hi_exp, res.max_exp)
            counts["names"] += len(zone.order)
            counts["rrsets"] += zone.rrset_count()
            counts["chain"] += chain
            counts["rrsets_signed"] += len(res.sigs)
            v = s.verify
            part = verify_shard(
                zone,
                ShardContext(
                    0 if has_apex else 1,
                    2,
                    dnskey,
                    neg,
                    param.rdatas[0] if param is not None else None,
                    wrap,
                    breaks,
                ),
                trust_anchor_ds=v.trust_anchor,
                now=s.times.now,
                # as a full sign would (--verify; sample by default: see _crypto_stride)
                level=v.level if has_apex or number % stride == 0 else "structural",
                zsk=v.zsk,
                min_validity=v.min_validity,
                sample_min=SAMPLE_MIN,
            )
            if part.failure_total:
                raise ZoneVerificationFailed(part.failures, part.failure_total)
            verified += part.rrsigs_verified
            found.extend(part.nsec3_found)
            expected.extend(part.nsec3_expected)
            rendered += len(zone.order)
            runs.extend(_split_runs(batch, zone.order, lengths, res.text, origin))
        for f in ("delegations", "secure_delegations", "glue_names", "occluded_names"):
            counts[f] += getattr(new_cls, f) - getattr(old_cls, f)
        if self.chain is not None:
            self._check_links(found)
        return _Partial(
            runs, created, lo_exp, hi_exp, rendered, verified, counts, serial, unsigned,
            nsec3_found=found, nsec3_expected=expected,
        )  # fmt: skip

    def _name_after(self, hi: int) -> bytes:
        """The name at ``hi`` in the previous output (the apex past the end): the next
        NSEC name after a group of subtrees ending before ``hi``."""
        return self.names[hi] if hi < self.n else self.origin

    def _add_nsec(
        self, zone: Zone, batch: list[list[_Element]], ttl: int
    ) -> tuple[int, dict[bytes, bytes]]:
        """NSEC for a batch of groups: each group's chain closes on the first name after
        it in the previous output (unchanged: adjacent subtrees are one group). Returns the
        NSEC count and, for the verifier, each group's last chain name but the last group's
        -> that name."""
        origin = self.origin
        group_of = {e.child: k for k, g in enumerate(batch) for e in g}
        order, nodes, kinds = zone.order, zone.nodes, zone.kinds
        segments: list[tuple[int, list[bytes]]] = []  # (group, its names in order)
        for name in order:
            k = group_of[origin if name == origin else apex_child(name, origin)]
            if not segments or segments[-1][0] != k:
                segments.append((k, []))
            segments[-1][1].append(name)
        chain = 0
        breaks: dict[bytes, bytes] = {}
        last = len(batch) - 1
        for k, names in segments:
            wrap = self._name_after(batch[k][-1].hi)
            part = Zone(origin, {n: nodes[n] for n in names}, names, kinds)
            chain += add_nsec(part, wrap_to=wrap, ttl=ttl)
            if k != last:
                tail = next((n for n in reversed(names) if kinds[n] in CHAIN_KINDS), None)
                if tail is not None:
                    breaks[tail] = wrap
        return chain, breaks

    def _combine(self, parts: list[_Partial]) -> _Result:
        head = parts[0]
        if head.serial is None or head.unsigned is None or not head.runs or head.runs[0].lo:
            raise Fallback("the apex was not rendered")
        counts = dict(self.st.counts)
        for p in parts:
            for k, v in p.counts.items():
                counts[k] += v
        hashes = b""
        if self.chain is not None:
            self._check_chain(parts)
            hashes = self.chain.blob()
            if len(hashes) != HASH * counts["chain"]:
                raise Fallback("the NSEC3 chain and the records rendered disagree in number")
            counts["empty_non_terminals"] = counts.get("empty_non_terminals", 0) + self.ents
            for f in ("delegations", "secure_delegations", "glue_names", "occluded_names"):
                counts[f] -= getattr(self.old_cls, f)
        return _Result(
            [r for p in parts for r in p.runs], head.serial, head.unsigned, counts,
            sum(p.created for p in parts),
            min([p.lo_exp for p in parts] + [self.st.min_expiration]),
            max([p.hi_exp for p in parts] + [self.st.max_expiration]),
            sum(p.rendered for p in parts), sum(p.verified for p in parts),
            any(p.duplicates for p in parts), len(parts), hashes, self.nsec3_stats,
        )  # fmt: skip

    # -- output --------------------------------------------------------------------------
    def write(self, fh: IO[bytes], digest: Any, result: _Result, pool: Executor) -> None:
        """The previous output's unchanged ranges and the new runs, in order; hashed in
        ``pool``'s thread while this one writes."""
        view = memoryview(self.pm)
        pieces: list[bytes | memoryview] = []
        step = 1 << 24
        try:
            cur = 0
            for r in result.runs:
                a = self.off[r.lo]
                pieces.extend(view[x : min(a, x + step)] for x in range(cur, a, step))
                pieces.append(r.text)
                cur = self.off[r.hi]
            end = len(view)
            pieces.extend(view[x : min(end, x + step)] for x in range(cur, end, step))
            hashed = pool.submit(_hash_all, digest, pieces)
            try:
                _write_all(fh, pieces)
            finally:
                hashed.result()
        finally:
            for piece in pieces:
                if isinstance(piece, memoryview):
                    piece.release()
            view.release()

    def new_state(self, result: _Result, delta: Delta, hunks: list[Hunk]) -> State:
        """The next state, but for the facts of the files not written yet (the output's and
        the input copy's SHA-256, the copy's size: the caller fills them in). The index is
        spliced from the previous one and the runs (``_index.splice_index``)."""
        st = self.st
        runs = [(r.lo, r.hi, r.lengths, r.names) for r in result.runs]
        fast = _INDEX[0]
        try:
            if fast is not None:
                lb, nb, joined = fast.splice_index(st.lengths, st.namelens, st.blob, runs)
            else:
                lb, nb, joined = _splice_index_py(st.lengths, st.namelens, st.blob, runs)
        except ValueError:
            raise Fallback("the names re-rendered do not fit the state's index") from None
        lengths: array[int] = array("Q")
        lengths.frombytes(lb)
        namelens: array[int] = array("B")
        namelens.frombytes(nb)
        off = self.off
        out_size = st.out_size + sum(len(r.text) - (off[r.hi] - off[r.lo]) for r in result.runs)
        # the input's multi-line entries, shifted by the hunks before them (no changed line
        # is in one: parse_changes refuses parentheses and continuation lines); one sweep
        # over both in file order, not every hunk for every entry
        spans = []
        shift = k = 0
        for s0, e0 in sorted(st.spans):
            while k < len(hunks) and hunks[k].a1 <= s0:
                h = hunks[k]
                shift += (h.b1 - h.b0) - (h.a1 - h.a0)
                k += 1
            spans.append((s0 + shift, e0 + shift))
        return replace(
            st,
            out_size=out_size,
            out_sha256="",
            input_size=0,
            input_sha256="",
            min_expiration=result.min_exp,
            max_expiration=result.max_exp,
            max_inception=max(st.max_inception, self.s.times.now, self.s.times.inception),
            serial=result.serial,
            unsigned_serial=result.unsigned_serial,
            no_duplicates=st.no_duplicates and not delta.added_duplicates and not result.duplicates,
            spans=spans,
            counts=result.counts,
            input_newlines=st.input_newlines + sum(h.newlines for h in hunks),
            lengths=lengths,
            namelens=namelens,
            blob=joined,
            hashes=result.hashes,
        )


def _splice_index_py(
    lengths: array[int],
    namelens: array[int],
    blob: bytes,
    runs: Sequence[tuple[int, int, bytes | array[int], list[bytes]]],
) -> tuple[bytes, bytes, bytes]:
    """The state's index (each name's output length, each name's length, the names) with
    names [lo, hi) replaced by each run's: ``_index.splice_index`` in Python (its
    specification). ValueError for runs that do not fit."""
    n = len(namelens)
    if len(lengths) != n or sum(namelens) != len(blob):
        raise ValueError("splice_index: runs that do not fit the index")
    ends = _cumsum(namelens, True)
    out_l: list[bytes] = []
    out_n: list[bytes] = []
    out_b: list[bytes] = []
    cur = 0
    for lo, hi, run_lengths, run_names in runs:
        with memoryview(run_lengths).cast("B") as raw:
            octets = raw.tobytes()
        if lo < cur or hi < lo or hi > n or len(octets) != 8 * len(run_names):
            raise ValueError("splice_index: runs that do not fit the index")
        if any(len(x) > 255 for x in run_names):
            raise ValueError("splice_index: runs that do not fit the index")
        out_l += [lengths[cur:lo].tobytes(), octets]
        out_n += [namelens[cur:lo].tobytes(), bytes(len(x) for x in run_names)]
        out_b += [blob[ends[cur] : ends[lo]], *run_names]
        cur = hi
    out_l.append(lengths[cur:].tobytes())
    out_n.append(namelens[cur:].tobytes())
    out_b.append(blob[ends[cur] :])
    return b"".join(out_l), b"".join(out_n), b"".join(out_b)


def _split_runs(
    batch: list[list[_Element]], order: list[bytes], lengths: array[int], text: bytes, origin: bytes
) -> Iterator[_Run]:
    """The runs of a batch's groups: their names are consecutive in ``order`` (each group
    holds whole apex children, the groups in canonical order), their text too."""
    if len(batch) == 1:
        g = batch[0]
        yield _Run(g[0].lo, g[-1].hi, order, lengths.tobytes(), text)
        return
    i = pos = 0
    for g in batch:
        children = {e.child for e in g}
        j = i
        while j < len(order) and apex_child(order[j], origin) in children:
            j += 1
        size = sum(lengths[i:j])
        yield _Run(g[0].lo, g[-1].hi, order[i:j], lengths[i:j].tobytes(), text[pos : pos + size])
        i, pos = j, pos + size
    if i != len(order):
        raise Fallback("a signed name is in none of the subtrees rendered")


_IOV_BATCH = 1024  # pieces per writev call (Linux IOV_MAX)
_FLUSH_EVERY = 64 << 20  # _write_all: octets written between two fdatasync calls


def _write_all(fh: IO[bytes], pieces: list[bytes | memoryview]) -> None:
    """Write ``pieces`` in order, many per system call (an incremental output is ~2 pieces
    per re-signed run: tens of thousands of small writes otherwise). What is written goes
    to the disk meanwhile (an ``fdatasync`` in a thread every _FLUSH_EVERY octets), so the
    caller's final fsync does not wait for the whole file (~450 MB at 1M delegations)."""
    fh.flush()
    fd = fh.fileno()
    pending: Future[None] | None = None
    unflushed = 0
    with ThreadPoolExecutor(1, thread_name_prefix="zs-flush") as flusher:
        for i in range(0, len(pieces), _IOV_BATCH):
            batch = [memoryview(p) for p in pieces[i : i + _IOV_BATCH] if len(p)]
            first = 0  # batch[first:] is still to write
            while first < len(batch):
                n = os.writev(fd, batch[first:] if first else batch)
                unflushed += n
                while first < len(batch) and n >= len(batch[first]):  # written whole
                    n -= len(batch[first])
                    first += 1
                if n:  # a piece written in part
                    batch[first] = batch[first][n:]
            if unflushed >= _FLUSH_EVERY and (pending is None or pending.done()):
                if pending is not None:
                    pending.result()  # an I/O error surfaces here
                pending = flusher.submit(os.fdatasync, fd)
                unflushed = 0
        if pending is not None:
            pending.result()
    # the rest on the disk now, while the caller's digest thread may still be hashing (the
    # caller's fsync then finds nothing left to write)
    os.fdatasync(fd)


def _hash_all(digest: Any, pieces: list[bytes | memoryview]) -> None:
    for piece in pieces:
        digest.update(piece)


def _zone(origin: bytes, contents: list[Content], serial: int | None) -> Zone:
    z = Zone(origin)
    nodes = z.nodes
    make = tuple.__new__  # RRset(...) without its Python-level __new__: the same tuple
    for c in contents:
        for owner, node in c.items():
            if len(node) == 1:
                for t, (ttl, rds) in node.items():
                    nodes[owner] = [make(RRset, (owner, t, ttl, tuple(sorted(rds)), ()))]
            elif node:
                nodes[owner] = [
                    make(RRset, (owner, t, ttl, tuple(sorted(rds)), ()))
                    for t, (ttl, rds) in sorted(node.items())
                ]
    z.sort()
    return z


def _quiet_classify(
    zone: Zone, apex: bool, what: str = "the previous zone breaks a rule"
) -> Classification:
    if not zone.order:
        return Classification()
    lg = logging.getLogger("dnssec_ceremony.zone")
    was = lg.disabled
    lg.disabled = True
    try:
        return classify(zone, apex=apex)
    except DnssecCeremonyError as exc:
        raise Fallback(f"{what} ({exc})") from None
    finally:
        lg.disabled = was


def _add_cls(total: Classification, c: Classification) -> None:
    for f in ("delegations", "secure_delegations", "glue_names", "occluded_names"):
        setattr(total, f, getattr(total, f) + getattr(c, f))


__all__ = [
    "STATE_SUFFIX",
    "CountingDigest",
    "Fallback",
    "Outcome",
    "Settings",
    "State",
    "diff",
    "input_facts",
    "input_stat",
    "load_state",
    "remove_state",
    "sign_incremental",
    "write_full_state",
]
