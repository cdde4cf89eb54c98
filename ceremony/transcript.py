"""The ceremony transcript: append-only, hash-chained JSON Lines, sealed at the end.

Layout of a ceremony directory::

    CEREMONY_DIR/
      transcript.jsonl     one JSON record per line (UTF-8, ``\\n`` terminated)
      transcript.seal      written by seal(): final hash in hex and in PGP words
      plan.yaml            the plan as run (copied by the runner; hashed in the ``begin`` record)
      artifacts/           files the ceremony produced or consumed (hashed in the records)

Record format (version 1). Every record is a JSON object with exactly these keys:

=========  ===================================================================================
``v``      format version, ``1``
``ceremony`` ceremony id (the plan's ``metadata.id``); the same in every record
``seq``    0, 1, 2, ... without gaps
``time``   UTC, ISO 8601 with microseconds and ``Z`` (``2025-01-15T10:00:00.000000Z``)
``step``   step number (int, numbered 1..N across sections) or ``null`` (ceremony-level)
``role``   role id from the plan (``"CA"``, ``"IW"``, ...), ``"system"`` for the tool, or null
``person`` roster name of the person acting / initialling, or null
``event``  one of :data:`EVENTS` (below)
``data``   event details (dict; never a secret -- see below)
``inputs`` ``{name: {"sha256": hex, "path": rel-path-or-null}}`` hashes of what went in
``outputs`` ``{name: {"sha256": hex, "path": rel-path-or-null, "value": str-or-null}}``:
           files are stored under ``artifacts/`` (``path`` relative to the ceremony dir);
           a string output has ``value`` and the SHA-256 of its UTF-8 bytes
``token``  ``{"label", "manufacturer", "model", "serial"}`` when a token was used, else null
``prev``   ``hash`` of the previous record; 64 zeros for ``seq`` 0
``hash``   SHA-256 (hex) of the canonical JSON of the record *without* the ``hash`` key
=========  ===================================================================================

Canonical JSON (:func:`canonical_json`): ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode("utf-8")``. The line on disk is exactly the
canonical JSON of the whole record (with ``hash``), so a verifier can recompute each hash from
the parsed line.

Events (``data`` keys in brackets):

* ``begin``         seq 0: [plan_sha256, plan_path, title, zone, tool_version]
* ``step-started``  [kind: manual|action, text, action]
* ``confirmed``     the acting role's person confirmed [fields: {name: value} for blanks]
* ``initialled``    the witness initialled the step [initials]
* ``action-started`` written (and fsynced) *before* an action runs [action, params, idempotent];
                    inputs = hashes of the rendered params and input files
* ``action-completed`` after it ran: outputs (hashed artifacts / values), token, [action,
                    summary]; this is the "action output" record
* ``action-failed`` the action raised an error [action, error, exit_code]
* ``step-completed`` the step is done (after the initials)
* ``exception``     recorded by the witness [expected, happened, done, interrupted_seq?]
* ``exception-ack`` a second participant acknowledged the exception [exception_seq]
* ``retry`` | ``skip`` [justification, exception_seq] | ``abort`` [reason, exception_seq]
* ``pause``         the ceremony stopped on purpose [after_step]
* ``resume``        a runner re-opened the directory [after_step, torn_tail?: {path, sha256,
                    bytes}, interrupted_action_seq?]
* ``quorum``        quorum login [role, m, n, officers: [names]]
* ``note``          free text by a participant [text]
* ``seal``          last record [records, final_step]; its ``hash`` is the *final hash*

Torn last line: records are written with one ``write`` + ``flush`` + ``fsync``; a ``kill -9``
or power cut can leave at most one partial final line. :meth:`Transcript.open` detects it,
moves the partial bytes to ``artifacts/torn-tail-<seq>.bin`` (so nothing is lost), truncates
the transcript to the last complete record and appends a ``resume`` record naming that file and
its SHA-256; the chain then verifies end to end.

Secrets: no record may carry a PIN, share or private key. :func:`check_no_secrets` refuses any
key (at any depth) matching :data:`SECRET_KEY_PATTERN`, and any registered secret value
(:meth:`Transcript.forbid`) appearing anywhere in the serialised record
(requirement ``TRANSCRIPT-NO-SECRET``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signer.errors import CheckFailed, InputError, OutputError
from signer.fileio import sha256_file, write_atomic
from signer.pgpwords import pgp_words

FORMAT_VERSION = 1
TRANSCRIPT_NAME = "transcript.jsonl"
SEAL_NAME = "transcript.seal"
PLAN_NAME = "plan.yaml"
ARTIFACTS_DIR = "artifacts"
GENESIS = "0" * 64
SYSTEM_ROLE = "system"

EVENTS = frozenset(
    {
        "begin",
        "step-started",
        "confirmed",
        "initialled",
        "action-started",
        "action-completed",
        "action-failed",
        "step-completed",
        "exception",
        "exception-ack",
        "retry",
        "skip",
        "abort",
        "pause",
        "resume",
        "quorum",
        "note",
        "seal",
    }
)

RECORD_KEYS = (
    "v",
    "ceremony",
    "seq",
    "time",
    "step",
    "role",
    "person",
    "event",
    "data",
    "inputs",
    "outputs",
    "token",
    "prev",
    "hash",
)

SECRET_KEY_PATTERN = re.compile(
    r"(^|[_\-. ])(pin|pins|so[_-]?pin|passphrase|password|passwd|secret|secrets|"
    r"private[_-]?key|privkey|share|shares|seed|otp)($|[_\-. ])",
    re.IGNORECASE,
)


class TranscriptChainBroken(CheckFailed):
    requirement = "TRANSCRIPT-CHAIN"


class SecretInTranscript(CheckFailed):
    requirement = "TRANSCRIPT-NO-SECRET"


class TranscriptSealed(CheckFailed):
    requirement = "TRANSCRIPT-SEALED"


class TranscriptBusy(InputError):
    """Another runner holds the transcript lock."""


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``record`` without its ``hash`` key."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def words(hex_hash: str) -> str:
    """A hex hash in PGP words."""
    return pgp_words(bytes.fromhex(hex_hash))


def check_no_secrets(obj: Any, *, forbidden: frozenset[str] = frozenset(), where: str = "") -> None:
    """Refuse secret-looking keys (any depth) and any of the ``forbidden`` values."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if isinstance(k, str) and SECRET_KEY_PATTERN.search(k):
                    raise SecretInTranscript(
                        f"{where}refusing to record key {path + k!r}: looks like a secret"
                    )
                walk(v, f"{path}{k}.")
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(v, f"{path}{i}.")

    walk(obj, "")
    if forbidden:
        text = canonical_json(obj).decode("utf-8")
        for secret in forbidden:
            if secret and secret in text:
                raise SecretInTranscript(
                    f"{where}refusing to record a value that is a registered secret"
                )


@dataclass(frozen=True)
class Record:
    v: int
    ceremony: str
    seq: int
    time: str
    step: int | None
    role: str | None
    person: str | None
    event: str
    data: dict[str, Any]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    token: dict[str, Any] | None
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RECORD_KEYS}

    def line(self) -> bytes:
        return canonical_json(self.as_dict()) + b"\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "") -> Record:
        keys = set(d)
        if keys != set(RECORD_KEYS):
            missing = sorted(set(RECORD_KEYS) - keys)
            extra = sorted(keys - set(RECORD_KEYS))
            raise TranscriptChainBroken(
                f"{where}record keys wrong (missing {missing}, unknown {extra})"
            )
        return cls(**{k: d[k] for k in RECORD_KEYS})


@dataclass(frozen=True)
class ArtifactRef:
    path: str  # relative to the ceremony directory
    sha256: str

    def as_output(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "value": None}


@dataclass(frozen=True)
class Seal:
    hash: str
    words: str
    records: int

    def text(self) -> str:
        return (
            f"final hash (SHA-256): {self.hash}\nPGP words: {self.words}\nrecords: {self.records}\n"
        )


def value_output(value: str) -> dict[str, Any]:
    return {
        "path": None,
        "sha256": hashlib.sha256(value.encode("utf-8")).hexdigest(),
        "value": value,
    }


def parse_lines(raw: bytes, path: Path) -> tuple[list[Record], bytes]:
    """Split raw transcript bytes into records; return (records, torn tail bytes).

    Only the *last* line may be partial (no newline, or not valid JSON); anything else that
    does not parse is a broken chain.
    """
    records: list[Record] = []
    torn = b""
    lines = raw.split(b"\n")
    last_complete = raw.endswith(b"\n")
    if last_complete:
        lines = lines[:-1]
    for i, line in enumerate(lines, start=1):
        is_last = i == len(lines)
        try:
            obj = json.loads(line.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            rec = Record.from_dict(obj, where=f"{path}:{i}: ")
        except (ValueError, UnicodeDecodeError, TranscriptChainBroken) as exc:
            if is_last and not last_complete:
                torn = line
                break
            raise TranscriptChainBroken(f"{path}:{i}: not a transcript record ({exc})") from None
        if is_last and not last_complete:
            # A complete JSON object without its newline: the write was cut after the
            # closing brace. Treat it as torn too (it was never fsynced as a full line).
            torn = line
            break
        records.append(rec)
    return records, torn


def verify_chain(records: list[Record], path: Path | str = TRANSCRIPT_NAME) -> None:
    """Recompute every hash and link; raise TranscriptChainBroken naming the line."""
    prev = GENESIS
    cid = records[0].ceremony if records else None
    for i, rec in enumerate(records):
        where = f"{path}:{i + 1}: record seq {rec.seq}"
        if rec.seq != i:
            raise TranscriptChainBroken(f"{where}: sequence number should be {i}")
        if rec.v != FORMAT_VERSION:
            raise TranscriptChainBroken(f"{where}: unknown format version {rec.v}")
        if rec.ceremony != cid:
            raise TranscriptChainBroken(f"{where}: ceremony id {rec.ceremony!r} != {cid!r}")
        if rec.event not in EVENTS:
            raise TranscriptChainBroken(f"{where}: unknown event {rec.event!r}")
        if rec.prev != prev:
            raise TranscriptChainBroken(f"{where}: prev hash does not match the previous record")
        if record_hash(rec.as_dict()) != rec.hash:
            raise TranscriptChainBroken(f"{where}: hash does not match the record's content")
        if i == 0 and rec.event != "begin":
            raise TranscriptChainBroken(f"{where}: first record must be 'begin'")
        if rec.event == "seal" and i != len(records) - 1:
            raise TranscriptChainBroken(f"{where}: records after the seal")
        prev = rec.hash


def load(directory: str | os.PathLike[str]) -> list[Record]:
    """Read and verify the chain of a ceremony directory's transcript (read-only).

    A torn final line is tolerated (ignored) here; the next ``Transcript.open`` records it.
    """
    path = Path(directory) / TRANSCRIPT_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no transcript here", path=str(path)) from None
    records, _torn = parse_lines(raw, path)
    verify_chain(records, path)
    return records


class Transcript:
    """An open, locked, append-only transcript. Use :meth:`open` (or :meth:`create`)."""

    def __init__(self, directory: Path, ceremony_id: str, records: list[Record], fd: int) -> None:
        self.dir = directory
        self.ceremony_id = ceremony_id
        self.records = records
        self._fd = fd
        self._forbidden: set[str] = set()
        self.torn_tail: ArtifactRef | None = None
        self.torn_tail_bytes = 0

    # -- opening -------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.dir / TRANSCRIPT_NAME

    @classmethod
    def open(cls, directory: str | os.PathLike[str], ceremony_id: str) -> Transcript:
        """Open (creating if needed) the transcript in ``directory`` and lock it.

        An existing transcript must verify and belong to ``ceremony_id``. A torn final line
        is moved aside (see module doc); the caller then writes the ``resume`` record and
        should include :attr:`torn_tail` in it (see :meth:`torn_tail_data`).
        """
        d = Path(directory)
        try:
            d.mkdir(parents=True, exist_ok=True)
            (d / ARTIFACTS_DIR).mkdir(exist_ok=True)
            fd = os.open(d / TRANSCRIPT_NAME, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise OutputError(f"{d}: cannot open the transcript: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise TranscriptBusy(
                "another ceremony runner has this transcript open", path=str(d / TRANSCRIPT_NAME)
            ) from None
        try:
            raw = _read_all(fd)
            records, torn = parse_lines(raw, d / TRANSCRIPT_NAME)
            verify_chain(records, d / TRANSCRIPT_NAME)
            if records and records[0].ceremony != ceremony_id:
                raise InputError(
                    f"this directory holds ceremony {records[0].ceremony!r}, not {ceremony_id!r}",
                    path=str(d / TRANSCRIPT_NAME),
                )
            t = cls(d, ceremony_id, records, fd)
            if torn:
                t._set_aside_torn_tail(raw, torn)
            return t
        except BaseException:
            os.close(fd)
            raise

    def _set_aside_torn_tail(self, raw: bytes, torn: bytes) -> None:
        name = f"{ARTIFACTS_DIR}/torn-tail-{len(self.records)}.bin"
        digest = write_atomic(self.dir / name, torn)
        os.ftruncate(self._fd, len(raw) - len(torn))
        os.fsync(self._fd)
        self.torn_tail = ArtifactRef(name, digest)
        self.torn_tail_bytes = len(torn)

    def torn_tail_data(self) -> dict[str, Any]:
        """``{"torn_tail": {...}}`` for the resume record, or ``{}``."""
        if self.torn_tail is None:
            return {}
        return {
            "torn_tail": {
                "path": self.torn_tail.path,
                "sha256": self.torn_tail.sha256,
                "bytes": self.torn_tail_bytes,
            }
        }

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Transcript:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ---------------------------------------------------------------------------
    @property
    def last_hash(self) -> str:
        return self.records[-1].hash if self.records else GENESIS

    @property
    def sealed(self) -> bool:
        return bool(self.records) and self.records[-1].event == "seal"

    def forbid(self, secret: str) -> None:
        """Register a secret value (a PIN just read): no record may ever contain it."""
        if secret:
            self._forbidden.add(secret)

    # -- writing -------------------------------------------------------------------------
    def append(
        self,
        event: str,
        *,
        step: int | None = None,
        role: str | None = None,
        person: str | None = None,
        data: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        token: Mapping[str, Any] | None = None,
    ) -> Record:
        """Append one record; it is on disk (fsynced) when this returns."""
        if event not in EVENTS:
            raise ValueError(f"unknown transcript event {event!r}")
        if self.sealed:
            raise TranscriptSealed("the transcript is sealed; nothing more can be recorded")
        if not self.records and event != "begin":
            raise ValueError("the first transcript record must be 'begin'")
        body: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "ceremony": self.ceremony_id,
            "seq": len(self.records),
            "time": utc_now(),
            "step": step,
            "role": role,
            "person": person,
            "event": event,
            "data": dict(data or {}),
            "inputs": dict(inputs or {}),
            "outputs": dict(outputs or {}),
            "token": dict(token) if token is not None else None,
            "prev": self.last_hash,
        }
        # Round-trip through JSON so what we hash is exactly what a reader parses.
        body = json.loads(canonical_json(body))
        check_no_secrets(body, forbidden=frozenset(self._forbidden), where=f"{event}: ")
        body["hash"] = record_hash(body)
        rec = Record.from_dict(body)
        line = rec.line()
        try:
            n = os.write(self._fd, line)
            if n != len(line):
                raise OSError(28, "short write")
            os.fsync(self._fd)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot append: {exc.strerror}") from None
        self.records.append(rec)
        return rec

    def store_artifact(self, name: str, data: bytes | str, mode: int = 0o644) -> ArtifactRef:
        """Write ``artifacts/<name>`` atomically (refusing to overwrite); return its ref."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"artifact name {name!r} must be a plain file name")
        rel = f"{ARTIFACTS_DIR}/{name}"
        target = self.dir / rel
        if target.exists():
            raise OutputError(f"{target}: artifact exists already; refusing to overwrite it")
        digest = write_atomic(target, data, mode)
        return ArtifactRef(rel, digest)

    def artifact_ref(self, path: str | os.PathLike[str]) -> ArtifactRef:
        """Hash a file inside the ceremony directory; return its ref (path made relative)."""
        p = Path(path)
        full = p if p.is_absolute() else self.dir / p
        try:
            rel = full.resolve().relative_to(self.dir.resolve())
        except ValueError:
            raise InputError("artifact is outside the ceremony directory", path=str(full)) from None
        return ArtifactRef(rel.as_posix(), sha256_file(full))

    def seal(self, *, person: str | None = None, role: str | None = None) -> Seal:
        """Append the ``seal`` record, write ``transcript.seal``; return the final hash."""
        last_step = max((r.step for r in self.records if r.step is not None), default=None)
        self.append(
            "seal",
            role=role,
            person=person,
            data={"records": len(self.records) + 1, "final_step": last_step},
        )
        return self.write_seal_file()

    def write_seal_file(self) -> Seal:
        """(Re)write ``transcript.seal`` from the seal record (e.g. after a kill right after
        the seal record was fsynced but before the file was written)."""
        if not self.sealed:
            raise ValueError("the transcript is not sealed")
        rec = self.records[-1]
        seal = Seal(rec.hash, words(rec.hash), len(self.records))
        if read_seal(self.dir) != rec.hash:
            write_atomic(self.dir / SEAL_NAME, seal.text())
        return seal


def read_seal(directory: str | os.PathLike[str]) -> str | None:
    """The final hash written in ``transcript.seal`` (hex), or None when absent."""
    p = Path(directory) / SEAL_NAME
    if not p.exists():
        return None
    for line in p.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "final hash (SHA-256)":
            return value.strip()
    raise InputError("no 'final hash (SHA-256):' line", path=str(p))


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def iter_events(records: list[Record], event: str) -> Iterator[Record]:
    return (r for r in records if r.event == event)
