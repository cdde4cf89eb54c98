"""``ceremony audit verify``: review a ceremony directory end to end.

:func:`verify_ceremony_dir` re-checks, in this order, and raises at the first failure a
:class:`AuditFailed` subclass whose requirement ID and message name the record (``seq``) and
the rule broken:

=================  ==============================================================================
AUDIT-CHAIN        every line is a canonical record; sequence, ``prev`` links and hashes recompute;
                   nothing after the last complete record
AUDIT-ARTIFACT     the plan as run and every input/output file hashes as recorded; every recorded
                   value hashes as recorded
AUDIT-SEAL         the transcript ends with the seal record; ``transcript.seal`` matches it; a
                   hash or PGP words given by a witness match it
AUDIT-ROLE         every person acting is on the roster and holds the role recorded; steps are
                   confirmed by the step's role and initialled by a witness who is someone else;
                   no person holds two incompatible roles
AUDIT-QUORUM       every quorum login names enough distinct officers of the quorum role, and every
                   step that needs quorum ran after one
AUDIT-EXCEPTION    every exception was acknowledged by a second participant before it was acted
                   on; every skip and abort cites an acknowledged exception
AUDIT-STEP         every step of the plan completed (confirmed, initialled; actions ran once and
                   completed) or was skipped under an acknowledged exception; not aborted
AUDIT-RESPONSE     every key-bundle response (SKR) produced verifies against the KSK: each bundle's
                   DNSKEY RRset is signed by a SEP key of that RRset, in its validity window
=================  ==============================================================================

A directory that cannot be read at all (no transcript) is an input error (exit 2); every
failed check exits 1.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ceremony import transcript as tr
from signer.errors import CheckFailed, DnssecCeremonyError, InputError
from signer.fileio import sha256_file
from signer.pgpwords import from_pgp_words, pgp_words

log = logging.getLogger("dnssec_ceremony.audit")


# --------------------------------------------------------------------------------------------
# Errors


class AuditFailed(CheckFailed):
    """An audit check refused the ceremony directory. ``seq`` names the record, when one."""

    requirement = "AUDIT"

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        self.seq = seq
        where = f"record {seq}: " if seq is not None else ""
        super().__init__(f"{where}{message}")


class AuditChainBroken(AuditFailed):
    requirement = "AUDIT-CHAIN"


class AuditArtifactMismatch(AuditFailed):
    requirement = "AUDIT-ARTIFACT"


class AuditRoleBroken(AuditFailed):
    requirement = "AUDIT-ROLE"


class AuditQuorumBroken(AuditFailed):
    requirement = "AUDIT-QUORUM"


class AuditExceptionBroken(AuditFailed):
    requirement = "AUDIT-EXCEPTION"


class AuditStepIncomplete(AuditFailed):
    requirement = "AUDIT-STEP"


class AuditSealMismatch(AuditFailed):
    requirement = "AUDIT-SEAL"


class AuditResponseInvalid(AuditFailed):
    requirement = "AUDIT-RESPONSE"


# --------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class ResponseCheck:
    path: str  # relative to the ceremony directory
    zone: str
    bundles: int
    ksk_tags: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class AuditResult:
    directory: str
    ceremony_id: str
    records: int
    seal: str  # final hash, hex
    steps: int
    steps_skipped: int
    exceptions: int
    artifacts: int
    quorum_logins: int
    responses: tuple[ResponseCheck, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def seal_words(self) -> str:
        return pgp_words(bytes.fromhex(self.seal))

    def summary(self) -> str:
        parts = [
            f"{self.records} records chained",
            f"{self.artifacts} artifacts",
            f"{self.steps} steps ({self.steps_skipped} skipped)",
            f"{self.exceptions} exceptions acknowledged",
        ]
        if self.responses:
            parts.append(
                f"{len(self.responses)} response(s), "
                f"{sum(r.bundles for r in self.responses)} bundles verified"
            )
        return ", ".join(parts)

    def lines(self) -> list[str]:
        """What ``ceremony audit verify`` prints on success."""
        out = [
            f"ceremony {self.ceremony_id}: audit passed",
            f"  {self.summary()}",
            f"  seal (SHA-256): {self.seal}",
            f"  seal (PGP words): {self.seal_words}",
        ]
        for r in self.responses:
            tags = ", ".join(str(t) for t in r.ksk_tags)
            out.append(
                f"  response {r.path}: {r.bundles} bundles for {r.zone} signed by KSK {tags}"
            )
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out


# --------------------------------------------------------------------------------------------
# Reading


@dataclass
class Loaded:
    """The parsed contents of a ceremony directory (no check beyond parsing)."""

    directory: Path
    records: list[tr.Record]
    trailing: bytes = b""
    problems: list[AuditFailed] = field(default_factory=list)


def _read_records(directory: Path) -> tuple[list[tr.Record], bytes]:
    """Parse the transcript strictly: every line canonical JSON, nothing after the last line.

    Raises AuditChainBroken naming the first bad line (seq = line number - 1).
    """
    path = directory / tr.TRANSCRIPT_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            "no transcript here (is this a ceremony directory?)", path=str(path)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    if not raw:
        raise AuditChainBroken(f"{path}: the transcript is empty")
    records: list[tr.Record] = []
    lines = raw.split(b"\n")
    trailing = lines.pop()  # bytes after the last newline
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            rec = tr.Record.from_dict(obj)
        except (ValueError, UnicodeDecodeError, tr.TranscriptChainBroken) as exc:
            raise AuditChainBroken(
                f"{path}:{i + 1}: not a transcript record ({exc})", seq=i
            ) from None
        if rec.line() != line + b"\n":
            raise AuditChainBroken(
                f"{path}:{i + 1}: line is not the canonical JSON of its record", seq=i
            )
        records.append(rec)
    if trailing:
        raise AuditChainBroken(
            f"{path}:{len(lines) + 1}: {len(trailing)} bytes after the last complete record "
            "(a torn write never resumed, or tampering)",
            seq=len(lines),
        )
    return records, trailing


def _check_chain(directory: Path, records: list[tr.Record]) -> None:
    path = directory / tr.TRANSCRIPT_NAME
    try:
        tr.verify_chain(records, path)
    except tr.TranscriptChainBroken as exc:
        m = re.search(r"record seq (\d+)", exc.reason)
        line = re.search(r":(\d+): record seq", exc.reason)
        seq = int(line.group(1)) - 1 if line else (int(m.group(1)) if m else None)
        raise AuditChainBroken(exc.reason, seq=seq) from None


# --------------------------------------------------------------------------------------------
# Artifacts


def _hash_refs(rec: tr.Record) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for kind in ("inputs", "outputs"):
        refs = getattr(rec, kind)
        if not isinstance(refs, dict):
            raise AuditChainBroken(f"{kind} is not an object", seq=rec.seq)
        for name, ref in refs.items():
            if not isinstance(ref, dict) or not isinstance(ref.get("sha256"), str):
                raise AuditArtifactMismatch(f"{kind[:-1]} {name!r} has no sha256", seq=rec.seq)
            yield kind[:-1], name, ref


def _safe_path(directory: Path, rel: str, seq: int) -> Path:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise AuditArtifactMismatch(f"artifact path {rel!r} leaves the ceremony directory", seq=seq)
    return directory / p


def _check_artifacts(directory: Path, records: list[tr.Record]) -> tuple[int, list[str]]:
    """Every recorded file hashes as recorded. Returns (files checked, warnings)."""
    import hashlib

    checked: set[str] = set()
    warnings: list[str] = []
    begin = records[0]
    plan_sha = begin.data.get("plan_sha256")
    plan_rel = begin.data.get("plan_path") or tr.PLAN_NAME
    if isinstance(plan_sha, str):
        plan_path = _safe_path(directory, str(plan_rel), 0)
        if not plan_path.is_file():
            raise AuditArtifactMismatch(f"the plan as run ({plan_rel}) is missing", seq=0)
        got = sha256_file(plan_path)
        if got != plan_sha:
            raise AuditArtifactMismatch(
                f"{plan_rel}: SHA-256 {got} is not the {plan_sha} recorded at the start", seq=0
            )
        checked.add(Path(str(plan_rel)).as_posix())
    for rec in records:
        for kind, name, ref in _hash_refs(rec):
            rel = ref.get("path")
            if rel is None:
                value = ref.get("value")
                if isinstance(value, str):
                    got = hashlib.sha256(value.encode("utf-8")).hexdigest()
                    if got != ref["sha256"]:
                        raise AuditArtifactMismatch(
                            f"{kind} {name!r}: the recorded value does not hash to its sha256",
                            seq=rec.seq,
                        )
                continue
            if not isinstance(rel, str):
                raise AuditArtifactMismatch(f"{kind} {name!r}: path is not a string", seq=rec.seq)
            p = _safe_path(directory, rel, rec.seq)
            if not p.is_file():
                raise AuditArtifactMismatch(f"{kind} {name!r}: {rel} is missing", seq=rec.seq)
            got = sha256_file(p)
            if got != ref["sha256"]:
                raise AuditArtifactMismatch(
                    f"{kind} {name!r}: {rel} has SHA-256 {got}, recorded {ref['sha256']}",
                    seq=rec.seq,
                )
            checked.add(Path(rel).as_posix())
        torn = rec.data.get("torn_tail") if rec.event == "resume" else None
        if isinstance(torn, dict) and isinstance(torn.get("path"), str):
            p = _safe_path(directory, torn["path"], rec.seq)
            if not p.is_file() or sha256_file(p) != torn.get("sha256"):
                raise AuditArtifactMismatch(
                    f"torn tail {torn['path']} is missing or does not hash as recorded",
                    seq=rec.seq,
                )
            checked.add(Path(torn["path"]).as_posix())
    art = directory / tr.ARTIFACTS_DIR
    if art.is_dir():
        for f in sorted(art.rglob("*")):
            if f.is_file() and f.relative_to(directory).as_posix() not in checked:
                warnings.append(
                    f"{f.relative_to(directory)} is not in the transcript (not covered by the seal)"
                )
    return len(checked), warnings


# --------------------------------------------------------------------------------------------
# Seal


def parse_seal_text(text: str) -> str:
    """A witness's copy of the seal: 64 hex digits (spaces allowed) or 32 PGP words -> hex."""
    compact = re.sub(r"[\s:]", "", text)
    if re.fullmatch(r"[0-9a-fA-F]{64}", compact):
        return compact.lower()
    try:
        raw = from_pgp_words(text)
    except (ValueError, KeyError) as exc:
        raise InputError(f"--seal: neither 64 hex digits nor PGP words ({exc})") from None
    if len(raw) != 32:
        raise InputError(f"--seal: {len(raw)} PGP words given, a SHA-256 has 32")
    return raw.hex()


def _check_seal(directory: Path, records: list[tr.Record], given: str | None) -> str:
    last = records[-1]
    if last.event != "seal":
        raise AuditSealMismatch(
            f"the transcript is not sealed (last record is {last.event!r})", seq=last.seq
        )
    final = last.hash
    seal_path = directory / tr.SEAL_NAME
    try:
        text = seal_path.read_bytes()
    except FileNotFoundError:
        raise AuditSealMismatch(f"{tr.SEAL_NAME} is missing", seq=last.seq) from None
    expected = tr.Seal(final, tr.words(final), len(records)).text().encode()
    if text != expected:
        raise AuditSealMismatch(
            f"{tr.SEAL_NAME} does not match the seal record (final hash {final})", seq=last.seq
        )
    if given is not None:
        want = parse_seal_text(given)
        if want != final:
            raise AuditSealMismatch(
                f"the seal given ({want}) is not the transcript's final hash ({final})",
                seq=last.seq,
            )
    return final


# --------------------------------------------------------------------------------------------
# Entry points


def verify_ceremony_dir(path: str | Path, *, seal: str | None = None) -> AuditResult:
    """Verify a ceremony directory end to end (see the module doc); raise AuditFailed."""
    directory = Path(path)
    if not directory.is_dir():
        raise InputError("not a directory", path=str(directory))
    records, _ = _read_records(directory)
    _check_chain(directory, records)
    n_art, warnings = _check_artifacts(directory, records)
    final = _check_seal(directory, records, seal)
    plan = _plan_view(directory, records)
    conduct = _check_conduct(plan, records)
    responses = _check_responses(directory, records, plan, warnings)
    warnings.extend(_recorded_warnings(records))
    result = AuditResult(
        directory=str(directory),
        ceremony_id=records[0].ceremony,
        records=len(records),
        seal=final,
        steps=conduct.steps,
        steps_skipped=conduct.skipped,
        exceptions=conduct.exceptions,
        artifacts=n_art,
        quorum_logins=conduct.quorum_logins,
        responses=tuple(responses),
        warnings=tuple(warnings),
    )
    log.info("audit passed: %s", result.summary())
    return result


# --------------------------------------------------------------------------------------------
# The plan as run, and how the ceremony was conducted


def _plan_view(directory: Path, records: list[tr.Record]) -> Any:
    """Parse the plan as run (its hash was checked with the artifacts)."""
    from ceremony import plan as plan_mod

    begin = records[0]
    rel = str(begin.data.get("plan_path") or tr.PLAN_NAME)
    p = _safe_path(directory, rel, 0)
    try:
        source = p.read_bytes()
    except OSError as exc:
        raise AuditArtifactMismatch(f"the plan as run ({rel}): {exc.strerror}", seq=0) from None
    try:
        plan = plan_mod.parse(source, str(p))
    except DnssecCeremonyError as exc:
        raise AuditArtifactMismatch(f"the plan as run does not load: {exc}", seq=0) from None
    if plan.metadata.id != begin.ceremony:
        raise AuditChainBroken(
            f"the transcript is for ceremony {begin.ceremony!r}, the plan for {plan.metadata.id!r}",
            seq=0,
        )
    try:
        plan_mod.check_role_separation(plan)
    except CheckFailed as exc:
        raise AuditRoleBroken(f"{exc.requirement}: {exc.reason}") from None
    return plan


@dataclass(frozen=True)
class Conduct:
    steps: int
    skipped: int
    exceptions: int
    quorum_logins: int


# Actions that use a KSK: with a quorum in the plan, a quorum login must precede them.
KSK_ACTIONS = frozenset({"sign-request"})


def _needs_quorum(action: str | None, params: Any) -> bool:
    if action is None:
        return False
    if action in KSK_ACTIONS:
        return True
    if action == "generate-key":
        return not isinstance(params, dict) or params.get("ksk", True) is not False
    try:
        from ceremony import actions
    except ImportError:  # pragma: no cover - the engine ships actions
        return False
    return bool(getattr(actions.REGISTRY.get(action), "needs_quorum", False))


def _check_conduct(plan: Any, records: list[tr.Record]) -> Conduct:
    """Roles, quorum, exceptions and steps, replayed record by record."""
    steps = {s.number: s for s in plan.steps}
    roster = {p.name: p for p in plan.roster}
    exceptions: dict[int, tr.Record] = {}
    acked: dict[int, int] = {}  # exception seq -> ack seq
    confirmed_by: dict[int, str] = {}
    initialled: set[int] = set()
    action_done: dict[int, int] = {}  # step -> seq of the action-completed record
    completed: dict[int, int] = {}  # step -> seq of step-completed
    skipped: dict[int, int] = {}
    quorum_seq: int | None = None
    quorum_logins = 0

    def person_of(rec: tr.Record) -> Any:
        if rec.person is None:
            raise AuditRoleBroken(f"{rec.event} names no person", seq=rec.seq)
        p = roster.get(rec.person)
        if p is None:
            raise AuditRoleBroken(f"{rec.person!r} is not on the roster", seq=rec.seq)
        return p

    def cited_exception(rec: tr.Record) -> int:
        ref = rec.data.get("exception_seq")
        if not isinstance(ref, int) or ref not in exceptions:
            raise AuditExceptionBroken(
                f"{rec.event} cites no recorded exception (exception_seq={ref!r})", seq=rec.seq
            )
        if ref not in acked or acked[ref] > rec.seq:
            raise AuditExceptionBroken(
                f"{rec.event} acts on exception {ref}, which no second participant had "
                "acknowledged",
                seq=rec.seq,
            )
        return ref

    for rec in records:
        # Who: every named person is on the roster and holds the role recorded.
        if rec.role not in (None, tr.SYSTEM_ROLE):
            if rec.role not in plan.roles:
                raise AuditRoleBroken(f"unknown role {rec.role!r}", seq=rec.seq)
            p = person_of(rec)
            if rec.role not in p.roles:
                raise AuditRoleBroken(
                    f"{p.name} acted as {rec.role} but does not hold that role", seq=rec.seq
                )
        elif rec.person is not None:
            person_of(rec)
        if rec.step is not None and rec.step not in steps:
            raise AuditStepIncomplete(
                f"step {rec.step} is not in the plan (1..{len(steps)})", seq=rec.seq
            )
        step = steps.get(rec.step) if rec.step is not None else None
        ev = rec.event
        if ev == "step-started" and step is not None:
            if rec.step in completed:
                raise AuditStepIncomplete(
                    f"step {rec.step} started again after it completed (record "
                    f"{completed[rec.step]})",
                    seq=rec.seq,
                )
            confirmed_by.pop(step.number, None)
            initialled.discard(step.number)
        elif ev == "confirmed" and step is not None:
            p = person_of(rec)
            if step.role not in p.roles or rec.role != step.role:
                raise AuditRoleBroken(
                    f"step {step.number} must be confirmed by its role {step.role}; "
                    f"{p.name} confirmed as {rec.role}",
                    seq=rec.seq,
                )
            confirmed_by[step.number] = p.name
        elif ev == "initialled" and step is not None:
            p = person_of(rec)
            if step.witness not in p.roles:
                raise AuditRoleBroken(
                    f"step {step.number} must be initialled by its witness role "
                    f"{step.witness}; {p.name} does not hold it",
                    seq=rec.seq,
                )
            if confirmed_by.get(step.number) == p.name:
                raise AuditRoleBroken(
                    f"step {step.number}: {p.name} initialled a step they confirmed "
                    "themselves (the witness must be someone else)",
                    seq=rec.seq,
                )
            ini = rec.data.get("initials")
            if ini is not None and str(ini).upper() != p.initials:
                raise AuditRoleBroken(
                    f"step {step.number}: initials {ini!r} are not {p.name}'s ({p.initials})",
                    seq=rec.seq,
                )
            initialled.add(step.number)
        elif ev == "action-started" and step is not None:
            if step.kind != "action":
                raise AuditStepIncomplete(f"step {step.number} is not an action", seq=rec.seq)
            if (
                plan.quorum is not None
                and _needs_quorum(step.action, rec.data.get("params"))
                and quorum_seq is None
            ):
                raise AuditQuorumBroken(
                    f"step {step.number} ({step.action}) needs a quorum login; none preceded it",
                    seq=rec.seq,
                )
        elif ev == "action-completed" and step is not None:
            prior = action_done.get(step.number)
            if prior is not None:
                raise AuditStepIncomplete(
                    f"step {step.number}: action {step.action} completed twice (first at record "
                    f"{prior}); a completed action must never be repeated",
                    seq=rec.seq,
                )
            action_done[step.number] = rec.seq
        elif ev == "step-completed" and step is not None:
            if step.number not in confirmed_by:
                raise AuditStepIncomplete(
                    f"step {step.number} completed without the {step.role}'s confirmation",
                    seq=rec.seq,
                )
            if step.number not in initialled:
                raise AuditStepIncomplete(
                    f"step {step.number} completed without the witness's initials", seq=rec.seq
                )
            if step.kind == "action" and step.number not in action_done:
                raise AuditStepIncomplete(
                    f"step {step.number} completed but its action {step.action} never did",
                    seq=rec.seq,
                )
            completed[step.number] = rec.seq
        elif ev == "exception":
            person_of(rec)
            for k in ("expected", "happened", "done"):
                if not str(rec.data.get(k) or "").strip():
                    raise AuditExceptionBroken(f"exception does not say {k!r}", seq=rec.seq)
            exceptions[rec.seq] = rec
        elif ev == "exception-ack":
            p = person_of(rec)
            ref = rec.data.get("exception_seq")
            if not isinstance(ref, int) or ref not in exceptions:
                raise AuditExceptionBroken(
                    f"acknowledges no recorded exception (exception_seq={ref!r})", seq=rec.seq
                )
            if exceptions[ref].person == p.name:
                raise AuditExceptionBroken(
                    f"exception {ref} was acknowledged by {p.name}, who recorded it; a second "
                    "participant must acknowledge",
                    seq=rec.seq,
                )
            acked.setdefault(ref, rec.seq)
        elif ev == "retry":
            cited_exception(rec)
        elif ev == "skip":
            cited_exception(rec)
            just = str(rec.data.get("justification") or "").strip()
            if not just:
                raise AuditExceptionBroken("skip without a justification", seq=rec.seq)
            if step is None:
                raise AuditStepIncomplete("skip names no step", seq=rec.seq)
            skipped[step.number] = rec.seq
        elif ev == "abort":
            ref = cited_exception(rec) if "exception_seq" in rec.data else None
            why = f" under exception {ref}" if ref is not None else ""
            raise AuditStepIncomplete(
                f"the ceremony was aborted{why}: {rec.data.get('reason', '')}", seq=rec.seq
            )
        elif ev == "quorum":
            _check_quorum_record(plan, rec)
            quorum_seq = rec.seq
            quorum_logins += 1

    for seq, exc_rec in exceptions.items():
        if seq not in acked:
            raise AuditExceptionBroken(
                f"exception at step {exc_rec.step} ({exc_rec.data.get('happened')!r}) was never "
                "acknowledged by a second participant",
                seq=seq,
            )
    for number, step in steps.items():
        if number not in completed and number not in skipped:
            raise AuditStepIncomplete(
                f"step {number} ({_short(step)}) was neither completed nor skipped under an "
                "acknowledged exception"
            )
    return Conduct(
        steps=len(steps),
        skipped=sum(1 for n in skipped if n not in completed),
        exceptions=len(exceptions),
        quorum_logins=quorum_logins,
    )


def _short(step: Any) -> str:
    text = step.action if step.kind == "action" else step.text
    text = " ".join(str(text).split())
    return text if len(text) <= 50 else text[:47] + "..."


def _check_quorum_record(plan: Any, rec: tr.Record) -> None:
    q = plan.quorum
    if q is None:
        raise AuditQuorumBroken("a quorum login, but the plan defines no quorum", seq=rec.seq)
    officers = rec.data.get("officers")
    if not isinstance(officers, list) or not all(isinstance(o, str) for o in officers):
        raise AuditQuorumBroken("quorum record lists no officers", seq=rec.seq)
    if len(set(officers)) != len(officers):
        raise AuditQuorumBroken(f"an officer is counted twice: {officers}", seq=rec.seq)
    for name in officers:
        p = plan.person(name)
        if p is None or q.role not in p.roles:
            raise AuditQuorumBroken(f"{name!r} does not hold the quorum role {q.role}", seq=rec.seq)
    if len(officers) < q.m:
        raise AuditQuorumBroken(
            f"{len(officers)} of {q.role} logged in; the plan needs {q.m} of {q.n}", seq=rec.seq
        )
    role = rec.data.get("role")
    if role is not None and role != q.role:
        raise AuditQuorumBroken(f"quorum of {role!r}, the plan's is {q.role}", seq=rec.seq)


# --------------------------------------------------------------------------------------------
# Responses (SKR) produced by the ceremony


def _looks_like_response(path: Path) -> bool:
    """A text-format SKR (Knot ``keymgr`` / BIND ``dnssec-ksr`` / ours) starts with its header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b";; SignedKeyResponse" in head


def load_response(path: Path) -> Any:
    """Parse a response file (the shared text format) into a BundleSet."""
    from signer.bundles import textformat

    return textformat.load_response(path)


def response_files(directory: Path, records: list[tr.Record]) -> list[tuple[int, str]]:
    """(seq, relative path) of every recorded output file that is a key-bundle response."""
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for rec in records:
        for _kind, _name, ref in _hash_refs(rec):
            rel = ref.get("path")
            if _kind != "output" or not isinstance(rel, str) or rel in seen:
                continue
            seen.add(rel)
            p = _safe_path(directory, rel, rec.seq)
            if p.is_file() and _looks_like_response(p):
                out.append((rec.seq, rel))
    return out


def recorded_ksks(records: list[tr.Record]) -> list[Any]:
    """SEP DNSKEYs the ceremony recorded as values (e.g. a generated KSK's DNSKEY record)."""
    from signer.dnskey import DnsKey

    keys: list[DnsKey] = []
    for rec in records:
        for name, ref in rec.outputs.items():
            value = ref.get("value") if isinstance(ref, dict) else None
            if not isinstance(value, str) or "dnskey" not in name.lower():
                continue
            text = value.strip()
            if "DNSKEY" in text.split():
                text = " ".join(text.split()[text.split().index("DNSKEY") + 1 :])
            try:
                k = DnsKey.from_text(text)
            except (DnssecCeremonyError, ValueError, TypeError, IndexError) as exc:
                log.debug("output %r of record %d is not a DNSKEY: %s", name, rec.seq, exc)
                continue
            if k.is_sep and not any(k.same_key(x) for x in keys):
                keys.append(k)
    return keys


def _recorded_warnings(records: list[tr.Record]) -> list[str]:
    """Warnings the station recorded with an action (e.g. sign-request with a KSK no earlier
    step generated or verified), repeated for the reviewers."""
    out: list[str] = []
    for r in records:
        if r.event != "action-completed":
            continue
        for w in r.data.get("warnings") or ():
            out.append(f"record {r.seq} (step {r.step}, {r.data.get('action')}): {w}")
    return out


def _check_responses(
    directory: Path, records: list[tr.Record], plan: Any, warnings: list[str]
) -> list[ResponseCheck]:
    from signer.errors import VerificationError
    from signer.rrsig import RrsigHeader, verify_rrset

    found = response_files(directory, records)
    if not found:
        return []
    ksks = recorded_ksks(records)
    if not ksks:
        warnings.append(
            "no KSK DNSKEY is recorded in this ceremony (an output named *dnskey*): responses "
            "were verified against the SEP keys they carry; compare their key tags with the DS"
        )
    checks: list[ResponseCheck] = []
    for seq, rel in found:
        try:
            bs = load_response(directory / rel)
        except DnssecCeremonyError as exc:
            raise AuditResponseInvalid(f"{rel} does not parse: {exc}", seq=seq) from None
        if not bs.bundles:
            raise AuditResponseInvalid(f"{rel} holds no bundle", seq=seq)
        tags: set[int] = set()
        for b in bs.bundles:
            rrset = b.dnskey_rrset(bs.zone)
            seps = [k for k in b.keys if k.is_sep]
            trusted = [k for k in seps if any(k.same_key(x) for x in ksks)] if ksks else seps
            if not b.signatures:
                raise AuditResponseInvalid(f"{rel}: bundle {b.id} carries no RRSIG", seq=seq)
            if not trusted:
                raise AuditResponseInvalid(
                    f"{rel}: bundle {b.id}: none of its DNSKEYs is the KSK of this ceremony",
                    seq=seq,
                )
            signed_by_ksk = False
            for what, extra_rrset, extra_sigs in (
                ("CDNSKEY", b.cdnskey_rrset(bs.zone), b.cdnskey_signatures),
                ("CDS", b.cds_rrset(bs.zone), b.cds_signatures),
            ):
                if extra_rrset is None:
                    continue
                if not extra_sigs:
                    raise AuditResponseInvalid(
                        f"{rel}: bundle {b.id}: the {what} RRset is not signed", seq=seq
                    )
                for sig in extra_sigs:
                    try:
                        verify_rrset(extra_rrset, sig, trusted)
                    except VerificationError as exc:
                        raise AuditResponseInvalid(
                            f"{rel}: bundle {b.id}: {exc.reason}", seq=seq
                        ) from None
            for sig in b.signatures:
                hdr = RrsigHeader.of(sig)
                try:
                    key = verify_rrset(rrset, sig, trusted)
                except VerificationError as exc:
                    raise AuditResponseInvalid(
                        f"{rel}: bundle {b.id}: {exc.reason}", seq=seq
                    ) from None
                if hdr.inception > b.inception or hdr.expiration < b.expiration:
                    raise AuditResponseInvalid(
                        f"{rel}: bundle {b.id}: RRSIG by key {hdr.key_tag} does not cover the "
                        "bundle's validity",
                        seq=seq,
                    )
                tags.add(key.key_tag)
                signed_by_ksk = True
            if not signed_by_ksk:  # pragma: no cover - loop above raises or sets it
                raise AuditResponseInvalid(f"{rel}: bundle {b.id} not signed by the KSK", seq=seq)
        checks.append(
            ResponseCheck(
                rel, bs.zone.to_text(), len(bs.bundles), tuple(sorted(tags)), bs.start, bs.end
            )
        )
    return checks
