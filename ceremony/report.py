"""``ceremony audit report``: one self-contained HTML page about a ceremony directory.

The page has no external resource (inline CSS and SVG only, no script) so it can be archived,
mailed and opened on an air-gapped machine. It shows the audit verdict, the seal, participants
and roles, the timeline of steps with times and initials, exceptions, artifacts with hashes and
PGP words, and the bundle validity coverage of any response produced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ceremony import audit
from ceremony import coverage as cov
from ceremony import transcript as tr
from signer import __version__
from signer.errors import DnssecCeremonyError, InputError
from signer.fileio import write_atomic
from signer.pgpwords import pgp_words

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Person:
    name: str
    roles: tuple[str, ...]
    acted: int = 0
    witnessed: int = 0

    @property
    def initials(self) -> str:
        parts = [p for p in self.name.replace("-", " ").split() if p]
        return "".join(p[0] for p in parts[:3]).upper() or "?"

    @property
    def colour(self) -> str:
        palette = ("#2f7d74", "#5b4bc4", "#b7791f", "#2b6cb0", "#9c4221", "#6b46c1", "#2c7a7b")
        return palette[int(hashlib.sha256(self.name.encode()).hexdigest(), 16) % len(palette)]


@dataclass(frozen=True)
class Output:
    label: str
    value: str


@dataclass(frozen=True)
class StepRow:
    number: str
    title: str
    role: str
    person: str
    status: str  # done, skipped, exception, missing
    time: str = ""
    witness: str = ""
    initials: str = ""
    action: str = ""
    note: str = ""
    outputs: tuple[Output, ...] = ()


@dataclass(frozen=True)
class Section:
    title: str
    steps: tuple[StepRow, ...]


@dataclass(frozen=True)
class ExceptionRow:
    seq: int
    step: str
    time: str
    expected: str
    happened: str
    done: str
    recorded_by: str
    acknowledged_by: str
    resolution: str


@dataclass(frozen=True)
class ArtifactRow:
    name: str
    step: str
    size: str
    sha256: str

    @property
    def words(self) -> str:
        return pgp_words(bytes.fromhex(self.sha256))


@dataclass(frozen=True)
class Event:
    seq: int
    time: str
    kind: str
    text: str


@dataclass(frozen=True)
class ReportData:
    ceremony_id: str
    title: str
    zone: str
    directory: str
    plan_sha256: str
    verdict_ok: bool
    verdict: str
    failure_id: str = ""
    failure: str = ""
    warnings: tuple[str, ...] = ()  # the audit's warnings (it passed, but look at these)
    date: str = ""
    place: str = ""
    policy: str = ""
    seal_hex: str = ""
    started: str = ""
    finished: str = ""
    duration: str = "—"
    records: int = 0
    participants: tuple[Person, ...] = ()
    sections: tuple[Section, ...] = ()
    exceptions: tuple[ExceptionRow, ...] = ()
    artifacts: tuple[ArtifactRow, ...] = ()
    coverage: cov.Coverage | None = None
    coverage_source: str = ""
    coverage_marker: int | None = None
    events: tuple[Event, ...] = ()
    generated: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    version: str = __version__

    @property
    def seal_words(self) -> str:
        return pgp_words(bytes.fromhex(self.seal_hex)) if self.seal_hex else ""

    @property
    def plan_words(self) -> str:
        return pgp_words(bytes.fromhex(self.plan_sha256)) if self.plan_sha256 else ""

    @property
    def steps_total(self) -> int:
        return sum(len(s.steps) for s in self.sections)

    @property
    def steps_done(self) -> int:
        return sum(1 for s in self.sections for st in s.steps if st.status != "missing")

    @property
    def coverage_svg(self) -> str:
        if self.coverage is None:
            return ""
        return cov.svg(self.coverage, marker=self.coverage_marker)

    @property
    def coverage_window(self) -> str:
        if self.coverage is None:
            return ""
        fmt = "%Y-%m-%d"
        a = dt.datetime.fromtimestamp(self.coverage.start, dt.UTC).strftime(fmt)
        b = dt.datetime.fromtimestamp(self.coverage.end, dt.UTC).strftime(fmt)
        return f"{a} → {b}"


def _groups(hexstr: str) -> str:
    """Hex in groups of four for reading aloud."""
    return " ".join(hexstr[i : i + 4] for i in range(0, len(hexstr), 4))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ceremony", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["groups"] = _groups
    return env


def render_html(data: ReportData) -> str:
    return _env().get_template(TEMPLATE).render(r=data)


def render_report(path: str | Path, out: str | Path) -> None:
    """Render the audit report of the ceremony directory ``path`` into ``out`` (atomically).

    The report is written whether or not the audit passes: a failed audit shows as a red
    verdict naming the requirement ID and the record.
    """
    data = collect_report_data(Path(path))
    write_atomic(out, render_html(data))


# --------------------------------------------------------------------------------------------
# From a ceremony directory to ReportData (lenient: a broken directory still gets a report)


def _lenient_records(directory: Path) -> list[tr.Record]:
    path = directory / tr.TRANSCRIPT_NAME
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    out: list[tr.Record] = []
    for line in raw.split(b"\n"):
        try:
            obj = json.loads(line.decode("utf-8"))
            if isinstance(obj, dict):
                out.append(tr.Record.from_dict(obj))
        except (ValueError, UnicodeDecodeError, DnssecCeremonyError):
            continue
    if not out:
        raise InputError("no readable transcript record", path=str(path))
    return out


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        return None


def _hms(text: str) -> str:
    t = _parse_time(text)
    return t.strftime("%H:%M:%S") if t else ""


def _duration(a: dt.datetime | None, b: dt.datetime | None) -> str:
    if a is None or b is None:
        return "—"
    secs = int((b - a).total_seconds())
    if secs < 60:
        return f"{secs}s"
    h, rest = divmod(secs, 3600)
    m = rest // 60
    if h >= 24:
        return f"{h // 24}d {h % 24}h"
    return f"{h}h {m:02d}m" if h else f"{m}m {secs % 60:02d}s"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def _one_line(text: str, limit: int = 140) -> str:
    t = " ".join(text.split())
    return t if len(t) <= limit else t[: limit - 1] + "…"


def _output_rows(rec: tr.Record) -> list[Output]:
    rows: list[Output] = []
    for name, ref in rec.outputs.items():
        if not isinstance(ref, dict):
            continue
        if ref.get("path"):
            rows.append(Output(name, f"{ref['path']}  sha256 {str(ref.get('sha256'))[:16]}…"))
        elif isinstance(ref.get("value"), str):
            rows.append(Output(name, _one_line(ref["value"], 110)))
    return rows


def collect_report_data(directory: Path) -> ReportData:
    """Everything the report shows, with the audit verdict (pass, or the first failure)."""
    if not directory.is_dir():
        raise InputError("not a directory", path=str(directory))
    verdict_ok = True
    failure_id = failure = ""
    result: audit.AuditResult | None = None
    try:
        result = audit.verify_ceremony_dir(directory)
        verdict = result.summary()
    except audit.AuditFailed as exc:
        verdict_ok = False
        failure_id, failure = exc.requirement, exc.reason
        verdict = f"{exc.requirement}" + (f" at record {exc.seq}" if exc.seq is not None else "")
    records = _lenient_records(directory)
    begin = records[0]
    plan = None
    try:
        from ceremony import plan as plan_mod

        plan = plan_mod.parse(
            (directory / str(begin.data.get("plan_path") or tr.PLAN_NAME)).read_bytes(),
            str(directory / tr.PLAN_NAME),
        )
    except (OSError, DnssecCeremonyError):
        plan = None

    by_step: dict[int, list[tr.Record]] = {}
    for rec in records:
        if rec.step is not None:
            by_step.setdefault(rec.step, []).append(rec)

    def roles_title(rid: str) -> str:
        if plan is not None and rid in plan.roles:
            return str(plan.roles[rid].title)
        return rid

    # Participants
    acted: dict[str, int] = {}
    witnessed: dict[str, int] = {}
    for rec in records:
        if rec.person and rec.event == "confirmed":
            acted[rec.person] = acted.get(rec.person, 0) + 1
        if rec.person and rec.event == "initialled":
            witnessed[rec.person] = witnessed.get(rec.person, 0) + 1
    people: list[Person] = []
    if plan is not None:
        for p in plan.roster:
            people.append(
                Person(
                    p.name,
                    tuple(roles_title(r) for r in p.roles),
                    acted.get(p.name, 0),
                    witnessed.get(p.name, 0),
                )
            )
    else:
        for name in sorted({r.person for r in records if r.person}):
            roles = sorted({r.role for r in records if r.person == name and r.role})
            people.append(Person(name, tuple(roles), acted.get(name, 0), witnessed.get(name, 0)))

    exc_steps = {r.step for r in records if r.event == "exception"}

    def step_row(number: int, title: str, role: str, action: str) -> StepRow:
        recs = by_step.get(number, [])
        events = {r.event for r in recs}
        if "step-completed" in events:
            status = "exception" if number in exc_steps else "done"
        elif "skip" in events:
            status = "skipped"
        else:
            status = "missing"
        confirm = next((r for r in reversed(recs) if r.event == "confirmed"), None)
        ini = next((r for r in reversed(recs) if r.event == "initialled"), None)
        done = next((r for r in reversed(recs) if r.event in ("step-completed", "skip")), None)
        started = next((r for r in reversed(recs) if r.event == "step-started"), None)
        if (
            started is not None
            and isinstance(started.data.get("text"), str)
            and started.data["text"]
        ):
            title = started.data["text"]
        outputs: list[Output] = []
        for r in recs:
            if r.event == "action-completed":
                outputs.extend(_output_rows(r))
            if r.event == "confirmed" and isinstance(r.data.get("fields"), dict):
                outputs.extend(Output(str(k), str(v)) for k, v in r.data["fields"].items())
        note = ""
        if done is not None and done.event == "skip":
            note = f"skipped: {done.data.get('justification', '')}"
        return StepRow(
            number=str(number),
            title=_one_line(title or action or f"step {number}"),
            role=roles_title(role),
            person=confirm.person or "" if confirm else "",
            status=status,
            time=_hms(done.time) if done else "",
            witness=(ini.person or "") if ini else "",
            initials=str(ini.data.get("initials") or "") if ini else "",
            action=action,
            note=note,
            outputs=tuple(outputs[:6]),
        )

    sections: list[Section] = []
    if plan is not None:
        for sec in plan.sections:
            sections.append(
                Section(
                    sec.title,
                    tuple(step_row(s.number, s.text, s.role, s.action or "") for s in sec.steps),
                )
            )
    else:
        numbers = sorted(by_step)
        sections.append(
            Section(
                "Steps (plan unavailable)",
                tuple(step_row(n, "", by_step[n][0].role or "", "") for n in numbers),
            )
        )

    # Exceptions
    acks = {r.data.get("exception_seq"): r for r in records if r.event == "exception-ack"}
    resolutions: dict[int, str] = {}
    for r in records:
        if r.event in ("retry", "skip", "abort") and isinstance(r.data.get("exception_seq"), int):
            resolutions[r.data["exception_seq"]] = {
                "retry": "retried",
                "skip": "skipped",
                "abort": "aborted",
            }[r.event]
    exceptions = tuple(
        ExceptionRow(
            seq=r.seq,
            step=str(r.step) if r.step is not None else "—",
            time=_hms(r.time),
            expected=str(r.data.get("expected", "")),
            happened=str(r.data.get("happened", "")),
            done=str(r.data.get("done", "")),
            recorded_by=r.person or "",
            acknowledged_by=(acks[r.seq].person or "") if r.seq in acks else "",
            resolution=resolutions.get(r.seq, "recorded"),
        )
        for r in records
        if r.event == "exception"
    )

    # Ceremony-level events: start, quorum logins, pauses, resumptions, seal
    events: list[Event] = []
    for r in records:
        text = ""
        if r.event == "begin":
            text = f"ceremony opened; plan SHA-256 {str(r.data.get('plan_sha256', ''))[:16]}…"
        elif r.event == "quorum":
            officers = ", ".join(str(o) for o in r.data.get("officers") or [])
            text = (
                f"quorum login of {roles_title(str(r.data.get('role', '')))}: "
                f"{officers} (quorum {r.data.get('m', '?')} of {r.data.get('n', '?')})"
            )
        elif r.event == "pause":
            text = f"paused after step {r.data.get('after_step')}"
        elif r.event == "resume":
            text = f"resumed after step {r.data.get('after_step')}"
            if isinstance(r.data.get("torn_tail"), dict):
                text += f"; a torn last line was set aside ({r.data['torn_tail'].get('path')})"
            if r.data.get("interrupted_action_seq") is not None:
                text += (
                    f"; action of record {r.data['interrupted_action_seq']} had been interrupted"
                )
        elif r.event == "abort":
            text = f"ABORTED: {r.data.get('reason', '')}"
        elif r.event == "seal":
            text = f"transcript sealed ({r.data.get('records')} records)"
        elif r.event == "note":
            text = f"note by {r.person}: {r.data.get('text', '')}"
        if text:
            events.append(Event(r.seq, _hms(r.time), r.event, _one_line(text, 160)))

    # Artifacts
    artifacts: list[ArtifactRow] = []
    if len(plan_sha := str(begin.data.get("plan_sha256") or "")) == 64:
        plan_file = directory / str(begin.data.get("plan_path") or tr.PLAN_NAME)
        artifacts.append(
            ArtifactRow(
                str(begin.data.get("plan_path") or tr.PLAN_NAME),
                "plan",
                _size(plan_file.stat().st_size) if plan_file.is_file() else "missing",
                plan_sha,
            )
        )
    seen: set[str] = set()
    plan_rel = str(begin.data.get("plan_path") or tr.PLAN_NAME)
    for rec in records:
        for ref in (*rec.inputs.values(), *rec.outputs.values()):
            if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
                continue
            rel = ref["path"]
            if rel in seen or rel == plan_rel:
                continue
            seen.add(rel)
            p = directory / rel
            size = _size(p.stat().st_size) if p.is_file() else "missing"
            sha = str(ref.get("sha256", ""))
            if len(sha) != 64:
                continue
            artifacts.append(
                ArtifactRow(rel, str(rec.step) if rec.step is not None else "—", size, sha)
            )

    for r in records:
        torn = r.data.get("torn_tail") if r.event == "resume" else None
        if isinstance(torn, dict) and isinstance(torn.get("path"), str):
            p = directory / torn["path"]
            if torn["path"] not in seen and len(str(torn.get("sha256", ""))) == 64:
                seen.add(torn["path"])
                artifacts.append(
                    ArtifactRow(
                        torn["path"],
                        "resume",
                        _size(p.stat().st_size) if p.is_file() else "missing",
                        str(torn["sha256"]),
                    )
                )

    # Coverage of the (first) response produced
    coverage = None
    source = ""
    try:
        found = audit.response_files(directory, records)
    except DnssecCeremonyError:
        found = []
    for _seq, rel in found:
        try:
            bs = audit.load_response(directory / rel)
        except (DnssecCeremonyError, OSError, ImportError):
            continue
        spans = []
        for b in bs.bundles:
            keys = ", ".join(f"{'KSK' if k.is_sep else 'ZSK'} {k.key_tag}" for k in b.keys)
            spans.append(cov.Span(b.id, b.inception, b.expiration, keys))
        if spans:
            coverage = cov.compute(spans)
            source = rel
            break

    last = records[-1]
    t0, t1 = _parse_time(begin.time), _parse_time(last.time)
    md = plan.metadata if plan is not None else None
    seal_hex = last.hash if last.event == "seal" else ""
    return ReportData(
        ceremony_id=begin.ceremony,
        title=md.title if md else str(begin.data.get("title", begin.ceremony)),
        zone=md.zone if md else str(begin.data.get("zone", "")),
        directory=str(directory),
        plan_sha256=plan_sha if len(plan_sha) == 64 else "",
        verdict_ok=verdict_ok,
        verdict=verdict,
        failure_id=failure_id,
        failure=failure,
        warnings=result.warnings if result is not None else (),
        date=md.date if md else "",
        place=md.place if md else "",
        policy=md.policy if md else "",
        seal_hex=seal_hex,
        started=t0.strftime("%Y-%m-%d %H:%M") if t0 else "",
        finished=t1.strftime("%H:%M UTC") if t1 else "",
        duration=_duration(t0, t1),
        records=len(records),
        participants=tuple(people),
        sections=tuple(sections),
        exceptions=exceptions,
        artifacts=tuple(artifacts),
        coverage=coverage,
        coverage_source=source,
        coverage_marker=int(t0.timestamp()) if t0 else None,
        events=tuple(events),
    )
