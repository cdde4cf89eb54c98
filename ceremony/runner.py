"""The ceremony runner: a plan, step by step, into a hash-chained transcript.

For each step (in order): show it and who does it; record ``step-started``; the acting role's
person confirms (filling in any blanks) -> ``confirmed``; for an action, ``action-started`` is
fsynced *before* it runs and ``action-completed`` (outputs hashed, token identity) after, and
the outputs are shown with SHA-256 and PGP words; the witness types their initials ->
``initialled``; then ``step-completed``.

At any prompt the witness may record an exception (expected / happened / done), acknowledged
by a second participant, then retry, skip (with a justification) or abort. A failed action
leads to the same exception flow.

Resume: ``run`` on a directory that holds a transcript continues after the last completed
step (``resume`` record). An action with ``action-started`` but no ``action-completed`` was
interrupted: it is never blindly re-run; the witness records an exception and, after the
acknowledgement, an idempotent action may be retried; a non-idempotent one (key generation)
may only be skipped (with a justification, e.g. after checking the token by hand) or the
ceremony aborted. A completed non-idempotent action is never run again, even on retry.

Two responders answer the prompts: :class:`TerminalResponder` (a person at the keyboard) and
:class:`AnswersResponder` (an answers file, for rehearsals and tests; format in its docstring).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from ceremony import actions as A
from ceremony.plan import Person, Plan, Step, render_value
from ceremony.transcript import (
    PLAN_NAME,
    SYSTEM_ROLE,
    Record,
    Transcript,
    value_output,
    words,
)
from signer import __version__, yamlstrict
from signer.errors import CheckFailed, DnssecCeremonyError, InputError
from signer.fileio import write_atomic

YES, EXCEPTION, PAUSE = "yes", "exception", "pause"
RETRY, SKIP, ABORT = "retry", "skip", "abort"


class CeremonyAborted(CheckFailed):
    requirement = "CER-ABORTED"


class PlanChanged(CheckFailed):
    requirement = "CER-PLAN-UNCHANGED"


class Paused(Exception):
    """The ceremony was paused on purpose (exit 0)."""


@dataclass(frozen=True)
class ExceptionReport:
    expected: str
    happened: str
    done: str


# -- responders ------------------------------------------------------------------------------
class Responder(Protocol):
    def choose_person(
        self, step: Step | None, role: str, holders: tuple[Person, ...]
    ) -> Person: ...
    def confirm(self, step: Step, person: Person, what: str) -> str: ...
    def blank(self, step: Step, name: str, label: str) -> str: ...
    def initials(self, step: Step, witness: Person) -> str: ...
    def exception(
        self, step: Step, witness: Person, prefill: ExceptionReport | None
    ) -> ExceptionReport: ...
    def acknowledge(self, step: Step, others: tuple[Person, ...]) -> Person: ...
    def decision(self, step: Step, options: tuple[str, ...]) -> str: ...
    def justification(self, step: Step, decision: str) -> str: ...
    def quorum(
        self, step: Step, role: str, m: int, holders: tuple[Person, ...]
    ) -> tuple[Person, ...]: ...


class TerminalResponder:
    """A person at the keyboard. Reads lines from stdin; re-asks on a wrong answer."""

    def __init__(self, console: Console) -> None:
        self.c = console

    def _ask(self, prompt: str) -> str:
        self.c.print(prompt, end="", markup=False, highlight=False)
        line = sys.stdin.readline()
        if not line:
            raise InputError(
                "end of input at a prompt; the ceremony is resumable with 'ceremony run'"
            )
        return line.strip()

    def _pick(self, prompt: str, people: tuple[Person, ...]) -> Person:
        if len(people) == 1:
            return people[0]
        listing = ", ".join(f"{i}) {p.name}" for i, p in enumerate(people, 1))
        while True:
            ans = self._ask(f"{prompt} [{listing}]: ")
            for i, p in enumerate(people, 1):
                if ans in (str(i), p.name, p.initials):
                    return p
            self.c.print("  not one of the listed people; try again")

    def choose_person(self, step: Step | None, role: str, holders: tuple[Person, ...]) -> Person:
        return self._pick(f"Who acts as {role}?", holders)

    def confirm(self, step: Step, person: Person, what: str) -> str:
        while True:
            ans = self._ask(
                f"{person.name}: {what}? [y = yes, x = exception (witness), p = pause]: "
            ).lower()
            if ans in ("y", "yes"):
                return YES
            if ans in ("x", "exception"):
                return EXCEPTION
            if ans in ("p", "pause"):
                return PAUSE
            self.c.print("  answer y, x or p")

    def blank(self, step: Step, name: str, label: str) -> str:
        while True:
            ans = self._ask(f"  {label}: ")
            if ans:
                return ans
            self.c.print("  a value is needed")

    def initials(self, step: Step, witness: Person) -> str:
        while True:
            ans = self._ask(
                f"{witness.name}, witness: your initials to sign step {step.number} "
                "(x = exception): "
            )
            if ans.lower() == "x":
                return EXCEPTION
            if ans.upper() == witness.initials:
                return witness.initials
            self.c.print(f"  those are not {witness.name}'s initials; try again")

    def exception(
        self, step: Step, witness: Person, prefill: ExceptionReport | None
    ) -> ExceptionReport:
        self.c.print(f"[bold red]Exception at step {step.number}[/] recorded by {witness.name}")

        def field_(label: str, default: str | None) -> str:
            while True:
                hint = f" [{default}]" if default else ""
                ans = self._ask(f"  {label}{hint}: ")
                if ans or default:
                    return ans or (default or "")
                self.c.print("  a value is needed")

        return ExceptionReport(
            field_("What was expected", prefill.expected if prefill else None),
            field_("What happened", prefill.happened if prefill else None),
            field_("What was done", prefill.done if prefill else None),
        )

    def acknowledge(self, step: Step, others: tuple[Person, ...]) -> Person:
        while True:
            ans = self._ask("Second participant acknowledging the exception (name or initials): ")
            for p in others:
                if ans in (p.name, p.initials) or ans.upper() == p.initials:
                    return p
            self.c.print("  must be another person on the roster (not the witness who recorded it)")

    def decision(self, step: Step, options: tuple[str, ...]) -> str:
        while True:
            ans = self._ask(f"Then: {' / '.join(options)}? ").lower()
            if ans in options:
                return ans
            self.c.print(f"  answer one of: {', '.join(options)}")

    def justification(self, step: Step, decision: str) -> str:
        while True:
            ans = self._ask(f"  Justification for {decision}: ")
            if ans:
                return ans
            self.c.print("  a justification is needed")

    def quorum(
        self, step: Step, role: str, m: int, holders: tuple[Person, ...]
    ) -> tuple[Person, ...]:
        chosen: list[Person] = []
        while len(chosen) < m:
            rest = tuple(p for p in holders if p not in chosen)
            chosen.append(
                self._pick(f"Officer {len(chosen) + 1} of {m} presenting credentials", rest)
            )
        return tuple(chosen)


class AnswersResponder:
    """Answers from a YAML file, for rehearsals and tests. Format (all keys optional)::

        persons: {CO: Carol Officer}       # who acts when a role has several holders
        quorum: [Carol Officer, Dave Officer]
        steps:                             # by step number
          2: {blanks: {number: TEB-100}}
          4:
            pause: true                    # pause at this step (once)
            exception:                     # the witness records an exception (once)
              at: confirm                  # confirm (default) | initials
              expected: ...
              happened: ...
              done: ...
              ack: Alice Admin
              decision: retry              # retry | skip | abort
              justification: ...           # for skip / abort
        on_failure: {ack: ..., decision: retry, justification: ..., done: ...}
        on_interrupt: {ack: ..., decision: skip, justification: ..., done: ...}

    Without an answer the acting role's person confirms, the witness initials and the
    first holder of a role acts. A needed answer that is missing is an input error (exit 2).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            data = yamlstrict.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise InputError(f"cannot read answers: {exc.strerror}", path=path) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"answers file is not UTF-8 (byte {exc.start})", path=path) from None
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            raise InputError(f"answers: YAML: {exc.problem}", path=path, line=line) from None
        except yaml.YAMLError as exc:
            raise InputError(f"answers: YAML: {exc}", path=path) from None
        if not isinstance(data, dict):
            raise InputError("answers file must be a mapping", path=path)
        unknown = set(data) - {"persons", "quorum", "steps", "on_failure", "on_interrupt"}
        if unknown:
            raise InputError(f"unknown key(s) {', '.join(sorted(unknown))}", path=path)
        self.persons: dict[str, str] = dict(data.get("persons") or {})
        self.quorum_names: list[str] = list(data.get("quorum") or [])
        self.steps: dict[int, dict[str, Any]] = {
            int(k): dict(v or {}) for k, v in (data.get("steps") or {}).items()
        }
        self.on_failure: dict[str, Any] | None = data.get("on_failure")
        self.on_interrupt: dict[str, Any] | None = data.get("on_interrupt")
        self._used: set[tuple[int, str]] = set()
        self._current: dict[str, Any] | None = None  # the exception answer being played

    def _once(self, step: Step, key: str) -> Any:
        if (step.number, key) in self._used:
            return None
        value = self.steps.get(step.number, {}).get(key)
        if value is not None:
            self._used.add((step.number, key))
        return value

    def _person(self, name: str, among: tuple[Person, ...], what: str) -> Person:
        for p in among:
            if p.name == name:
                return p
        raise InputError(
            f"{what}: {name!r} is not one of {', '.join(p.name for p in among)}", path=self.path
        )

    def choose_person(self, step: Step | None, role: str, holders: tuple[Person, ...]) -> Person:
        if role in self.persons:
            return self._person(self.persons[role], holders, f"persons.{role}")
        return holders[0]

    def _exception_here(self, step: Step, at: str) -> bool:
        exc = self.steps.get(step.number, {}).get("exception")
        if exc is None or (step.number, "exception") in self._used:
            return False
        if str(exc.get("at", "confirm")) != at:
            return False
        self._used.add((step.number, "exception"))
        self._current = dict(exc)
        return True

    def confirm(self, step: Step, person: Person, what: str) -> str:
        if self._once(step, "pause"):
            return PAUSE
        if self._exception_here(step, "confirm"):
            return EXCEPTION
        return YES

    def blank(self, step: Step, name: str, label: str) -> str:
        blanks = self.steps.get(step.number, {}).get("blanks") or {}
        if name not in blanks:
            raise InputError(
                f"step {step.number} needs blank {name!r} ({label}) under steps.{step.number}.blanks",
                path=self.path,
            )
        return str(blanks[name])

    def initials(self, step: Step, witness: Person) -> str:
        if self._exception_here(step, "initials"):
            return EXCEPTION
        return witness.initials

    def prepare_failure(self, kind: str) -> None:
        """Before an automatic exception (action failed / interrupted): load the default."""
        src = self.on_interrupt if kind == "interrupt" else self.on_failure
        self._current = dict(src) if src else None
        self._current_kind = kind

    def _need(self, step: Step, key: str) -> Any:
        if self._current is None or key not in self._current:
            raise InputError(
                f"step {step.number}: no answer for the exception's {key!r} "
                "(give steps.N.exception, on_failure or on_interrupt)",
                path=self.path,
            )
        return self._current[key]

    def exception(
        self, step: Step, witness: Person, prefill: ExceptionReport | None
    ) -> ExceptionReport:
        cur = self._current or {}
        return ExceptionReport(
            str(
                cur.get("expected")
                or (prefill.expected if prefill else self._need(step, "expected"))
            ),
            str(
                cur.get("happened")
                or (prefill.happened if prefill else self._need(step, "happened"))
            ),
            str(cur.get("done") or (prefill.done if prefill else self._need(step, "done"))),
        )

    def acknowledge(self, step: Step, others: tuple[Person, ...]) -> Person:
        return self._person(
            str(self._need(step, "ack")), others, f"step {step.number} exception ack"
        )

    def decision(self, step: Step, options: tuple[str, ...]) -> str:
        d = str(self._need(step, "decision"))
        if d not in options:
            raise InputError(
                f"step {step.number}: decision {d!r} not possible here (options: {', '.join(options)})",
                path=self.path,
            )
        return d

    def justification(self, step: Step, decision: str) -> str:
        j = str(self._need(step, "justification"))
        self._current = None
        return j

    def quorum(
        self, step: Step, role: str, m: int, holders: tuple[Person, ...]
    ) -> tuple[Person, ...]:
        if not self.quorum_names:
            return holders[:m]
        return tuple(self._person(n, holders, "quorum") for n in self.quorum_names)


# -- state from the transcript ---------------------------------------------------------------
@dataclass
class StepState:
    completed: bool = False
    action_completed: Record | None = None
    interrupted: Record | None = None  # action-started with no end
    pending_failure: Record | None = None  # action-failed with no exception after it
    blanks: dict[str, str] = field(default_factory=dict)


def step_state(records: list[Record], number: int, idempotent: bool) -> StepState:
    st = StepState()
    started: Record | None = None
    for r in records:
        if r.step != number:
            continue
        ev = r.event
        if ev in ("step-completed", "skip"):
            st.completed = True
        elif ev == "confirmed":
            st.blanks.update({str(k): str(v) for k, v in (r.data.get("fields") or {}).items()})
        elif ev == "action-started":
            started = r
            st.pending_failure = None
        elif ev == "action-completed":
            started = None
            st.action_completed = r
        elif ev == "action-failed":
            started = None
            st.pending_failure = r
        elif ev in ("exception",):
            st.pending_failure = None
            if started is not None:
                st.interrupted = started
        elif ev in ("retry", "skip", "abort"):
            started = None
            st.interrupted = None
            if ev == "retry" and idempotent:
                st.action_completed = None
    if started is not None:
        st.interrupted = started
    return st


# -- the runner ------------------------------------------------------------------------------
@dataclass
class RunOptions:
    ceremony_dir: Path
    answers: str | None = None
    dry_run: bool = False
    lab_dir: Path | None = None
    pin_files: Mapping[str, str] = field(default_factory=dict)


class Runner:
    def __init__(self, plan: Plan, opts: RunOptions, console: Console | None = None) -> None:
        self.plan = plan
        self.opts = opts
        self.c = console or Console(highlight=False)
        self.responder: Responder | AnswersResponder = (
            AnswersResponder(opts.answers) if opts.answers else TerminalResponder(self.c)
        )
        self.t: Transcript | None = None
        self.session: dict[str, Any] = {}
        self.officers: tuple[str, ...] = ()

    # -- output helpers --------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        self.c.print(text, highlight=False, soft_wrap=True)

    def _context(self) -> dict[str, Any]:
        assert self.t is not None
        ctx = self.plan.template_context()
        steps: dict[str, dict[str, Any]] = {}
        for s in self.plan.steps:
            if not s.id:
                continue
            vals: dict[str, Any] = {}
            for r in self.t.records:
                if r.step != s.number:
                    continue
                if r.event == "confirmed":
                    vals.update(r.data.get("fields") or {})
                elif r.event == "action-completed":
                    for k, o in r.outputs.items():
                        vals[k] = o["value"] if o.get("value") is not None else o["path"]
            steps[s.id] = vals
        ctx["steps"] = steps
        return ctx

    def _record(
        self,
        event: str,
        step: Step | None = None,
        person: Person | None = None,
        role: str | None = None,
        **kw: Any,
    ) -> Record:
        assert self.t is not None
        return self.t.append(
            event,
            step=step.number if step else None,
            role=role if role is not None else (step.role if step else None),
            person=person.name if person else None,
            **kw,
        )

    # -- entry points ----------------------------------------------------------------------
    def dry_run(self) -> None:
        p = self.plan
        self.say(
            f"DRY RUN of {p.metadata.id}: {p.metadata.title} (nothing is recorded, no token is touched)"
        )
        self.say(f"plan SHA-256 {p.sha256}")
        ctx = p.template_context()
        ctx["steps"] = Placeholder("steps")
        sec = 0
        for s in p.steps:
            if s.section != sec:
                sec = s.section
                self.say(f"\n== {sec}. {p.sections[sec - 1].title}")
            text = render_value(s.text, ctx) if s.text else ""
            if not text and s.action:
                text = A.REGISTRY[s.action].help
            self.say(f"{s.number:>3}. [{s.role}] {text}")
            if s.kind == "action" and s.action:
                params = render_value(dict(s.params), ctx)
                act = A.REGISTRY[s.action]
                try:
                    params = A.validate_params(s.action, params, rendered=True)
                except InputError:
                    params = A.validate_params(s.action, params)
                actx = self._action_context(s, params)
                self.say(
                    f"     action {s.action}: {act.describe(actx)}"
                    + ("" if act.idempotent else "  (not repeatable)")
                )

    def run(self) -> int:
        p = self.plan
        d = self.opts.ceremony_dir
        if self.opts.lab_dir is not None and (self.opts.lab_dir / "lab.json").exists():
            A.apply_lab_env(self.opts.lab_dir)
        self.t = Transcript.open(d, p.metadata.id)
        try:
            return self._run()
        finally:
            self.t.close()
            for tok in self.session.get("tokens", {}).values():
                tok.close()

    def _run(self) -> int:
        assert self.t is not None
        p, t = self.plan, self.t
        if not t.records:
            plan_copy = self.opts.ceremony_dir / PLAN_NAME
            write_atomic(plan_copy, p.source)
            self._record(
                "begin",
                role=SYSTEM_ROLE,
                data={
                    "plan_sha256": p.sha256,
                    "plan_path": PLAN_NAME,
                    "title": p.metadata.title,
                    "zone": p.metadata.zone,
                    "tool_version": __version__,
                },
                inputs={"plan": {"path": PLAN_NAME, "sha256": p.sha256}},
            )
            self.say(
                f"[bold]{p.metadata.id}[/]: {p.metadata.title} -- {p.metadata.place}, {p.metadata.date}"
            )
            self.say(f"plan SHA-256 {p.sha256}\n  {words(p.sha256)}")
        else:
            begin = t.records[0]
            if begin.data.get("plan_sha256") != p.sha256:
                raise PlanChanged(
                    f"{p.path}: the plan changed since this ceremony began (SHA-256 "
                    f"{p.sha256} != {begin.data.get('plan_sha256')}); refusing to continue"
                )
            if t.sealed:
                t.write_seal_file()
                self.say(
                    f"ceremony {p.metadata.id} is complete and sealed; final hash {t.records[-1].hash}"
                )
                self.say(f"  {words(t.records[-1].hash)}")
                return 0
            aborts = [r for r in t.records if r.event == "abort"]
            if aborts:
                raise CeremonyAborted(
                    f"ceremony {p.metadata.id} was aborted at step {aborts[-1].step}; it cannot continue"
                )
            done = [s.number for s in p.steps if step_state(t.records, s.number, True).completed]
            after = max(done, default=0)
            data: dict[str, Any] = {"after_step": after, **t.torn_tail_data()}
            self._record("resume", role=SYSTEM_ROLE, data=data)
            self.say(
                f"[bold]Resuming[/] {p.metadata.id} after step {after} ({len(done)} of {len(p.steps)} steps done)"
            )
            if t.torn_tail is not None:
                self.say(
                    f"  a partial last record ({t.torn_tail_bytes} bytes) was set aside in {t.torn_tail.path}"
                )
            for r in reversed(t.records):
                if r.event == "quorum":
                    self.officers = tuple(r.data.get("officers") or ())
                    break
        try:
            for step in p.steps:
                act = A.REGISTRY[step.action] if step.action else None
                st = step_state(t.records, step.number, act.idempotent if act else True)
                if st.completed:
                    continue
                self._run_step(step, st)
        except Paused:
            return 0
        # All steps done: seal.
        admin_role = p.roles_of_kind("administrator")[0]
        admin = self.responder.choose_person(None, admin_role, p.holders(admin_role))
        seal = t.seal(person=admin.name, role=admin_role)
        self.say(
            "\n[bold]Transcript sealed.[/] Copy the final hash onto the paper script and sign it:"
        )
        self.say(f"  SHA-256 {seal.hash}")
        self.say(f"  {seal.words}")
        return 0

    # -- one step --------------------------------------------------------------------------
    def _show_step(self, step: Step, actor: Person, text: str) -> None:
        p = self.plan
        sec = p.sections[step.section - 1]
        role = p.roles[step.role]
        self.say(
            f"\n[bold]Step {step.number}[/] ({sec.number}. {sec.title}) -- {role.title} ({step.role}): {actor.name}"
        )
        if text:
            self.say(f"  {text}")
        if step.kind == "action":
            self.say(f"  action: {step.action}")

    def _run_step(self, step: Step, st: StepState) -> None:
        p = self.plan
        assert self.t is not None
        act = A.REGISTRY[step.action] if step.action else None
        if st.interrupted is not None:
            assert act is not None
            witness = self.responder.choose_person(step, step.witness, p.holders(step.witness))
            self.say(
                f"\n[bold red]Step {step.number}: action {step.action} was started "
                f"(record {st.interrupted.seq}) and never completed.[/]"
            )
            if not act.idempotent:
                self.say(
                    "  It is not repeatable: it will NOT be run again. Check the token / media by hand."
                )
            prefill = ExceptionReport(
                expected=f"action {step.action} completes",
                happened=f"interrupted: action-started at record {st.interrupted.seq}, no completion recorded",
                done="ceremony resumed; state checked by the participants",
            )
            if isinstance(self.responder, AnswersResponder):
                self.responder.prepare_failure("interrupt")
            options = (RETRY, SKIP, ABORT) if act.idempotent else (SKIP, ABORT)
            decision = self._exception_flow(
                step, witness, prefill, options, interrupted_seq=st.interrupted.seq
            )
            if decision == SKIP:
                return
            st = step_state(self.t.records, step.number, act.idempotent)
        if st.pending_failure is not None:
            witness = self.responder.choose_person(step, step.witness, p.holders(step.witness))
            err = str(st.pending_failure.data.get("error", ""))
            if isinstance(self.responder, AnswersResponder):
                self.responder.prepare_failure("failure")
            decision = self._exception_flow(
                step,
                witness,
                ExceptionReport(f"action {step.action} succeeds", f"it failed: {err}", "recorded"),
                (RETRY, SKIP, ABORT),
            )
            if decision == SKIP:
                return
            st = step_state(self.t.records, step.number, act.idempotent if act else True)

        while True:
            outcome = self._attempt(step, act, st)
            if outcome == "done":
                return
            st = step_state(self.t.records, step.number, act.idempotent if act else True)
            if st.completed:
                return

    def _attempt(self, step: Step, act: A.Action | None, st: StepState) -> str:
        """One attempt at a step; returns "done" or "again" (after a retry)."""
        p = self.plan
        actor = self.responder.choose_person(step, step.role, p.holders(step.role))
        witness = self.responder.choose_person(step, step.witness, p.holders(step.witness))
        try:
            text = str(render_value(step.text, self._context())) if step.text else ""
        except InputError as exc:
            text = f"{step.text}  [template not filled: {exc.reason}]"
        self._show_step(step, actor, text)
        self._record(
            "step-started",
            step,
            actor,
            data={"kind": step.kind, "text": text, "action": step.action},
        )

        def exc_flow(prefill: ExceptionReport | None = None) -> str:
            d = self._exception_flow(step, witness, prefill, (RETRY, SKIP, ABORT))
            return "done" if d == SKIP else "again"

        if act is not None and st.action_completed is not None:
            self.say("  the action completed earlier (it is not run again):")
            self._show_outputs(st.action_completed.outputs)
        else:
            what = "ready to run this action" if act else "step done"
            ans = self.responder.confirm(step, actor, what)
            if ans == PAUSE:
                self._record("pause", step, actor, data={"after_step": step.number - 1})
                self.say(
                    f"Paused before step {step.number}. Continue later with the same 'ceremony run' command."
                )
                raise Paused
            if ans == EXCEPTION:
                return exc_flow()
            fields = {b.name: self.responder.blank(step, b.name, b.label) for b in step.record}
            self._record("confirmed", step, actor, data={"fields": fields} if fields else {})
            if act is not None:
                ok = self._run_action(step, act, actor)
                if not ok:
                    err = str(self.t.records[-1].data.get("error", "")) if self.t else ""
                    if isinstance(self.responder, AnswersResponder):
                        self.responder.prepare_failure("failure")
                    return exc_flow(
                        ExceptionReport(
                            f"action {step.action} succeeds", f"it failed: {err}", "recorded"
                        )
                    )
        ans = self.responder.initials(step, witness)
        if ans == EXCEPTION:
            return exc_flow()
        self._record("initialled", step, witness, role=step.witness, data={"initials": ans})
        self._record("step-completed", step, actor)
        return "done"

    def _exception_flow(
        self,
        step: Step,
        witness: Person,
        prefill: ExceptionReport | None,
        options: tuple[str, ...],
        interrupted_seq: int | None = None,
    ) -> str:
        rep = self.responder.exception(step, witness, prefill)
        data: dict[str, Any] = {
            "expected": rep.expected,
            "happened": rep.happened,
            "done": rep.done,
        }
        if interrupted_seq is not None:
            data["interrupted_seq"] = interrupted_seq
        exc_rec = self._record("exception", step, witness, role=step.witness, data=data)
        others = tuple(x for x in self.plan.roster if x.name != witness.name)
        acker = self.responder.acknowledge(step, others)
        ack_role = next(iter(acker.roles))
        self._record(
            "exception-ack", step, acker, role=ack_role, data={"exception_seq": exc_rec.seq}
        )
        decision = self.responder.decision(step, options)
        if decision == RETRY:
            self._record(
                "retry", step, witness, role=step.witness, data={"exception_seq": exc_rec.seq}
            )
            return RETRY
        just = self.responder.justification(step, decision)
        if decision == SKIP:
            self._record(
                "skip",
                step,
                witness,
                role=step.witness,
                data={"exception_seq": exc_rec.seq, "justification": just},
            )
            self.say(f"  step {step.number} skipped")
            return SKIP
        self._record(
            "abort",
            step,
            witness,
            role=step.witness,
            data={"exception_seq": exc_rec.seq, "reason": just},
        )
        raise CeremonyAborted(f"ceremony aborted at step {step.number}: {just}")

    # -- actions ---------------------------------------------------------------------------
    def _pin_source_for(self, token: str) -> Any:
        from signer.pin import PinSource

        if token in self.opts.pin_files:
            return PinSource(pin_file=self.opts.pin_files[token], interactive=False)
        if self.opts.lab_dir is not None:
            f = self.opts.lab_dir / "pins" / f"{token}.pin"
            if f.exists():
                return PinSource(pin_file=str(f), interactive=False)
        return PinSource(interactive=self.opts.answers is None)

    def _action_context(
        self, step: Step, params: Mapping[str, Any], progress: A.Progress | None = None
    ) -> A.ActionContext:
        q = self.plan.quorum
        return A.ActionContext(
            ceremony_dir=self.opts.ceremony_dir,
            params=params,
            step_number=step.number,
            rehearsal=self.opts.lab_dir is not None,
            lab_dir=self.opts.lab_dir,
            pin_source_for=self._pin_source_for,
            forbid=self.t.forbid if self.t else (lambda _s: None),
            progress=progress or (lambda _m, _f: None),
            session=self.session,
            officers=self.officers,
            quorum=vars(q).copy() if q else None,
            zone=self.plan.metadata.zone,
            equipment_tokens={t.label: t.serial for t in self.plan.equipment.tokens},
            earlier=self._earlier_actions(),
        )

    def _earlier_actions(self) -> tuple[A.EarlierAction, ...]:
        """The actions completed so far in this ceremony (the transcript: resumes included)."""
        if self.t is None:
            return ()
        return tuple(
            A.EarlierAction(
                action=str(r.data.get("action", "")),
                step=r.step or 0,
                outputs={
                    k: str(o["value"] if o.get("value") is not None else o["path"])
                    for k, o in r.outputs.items()
                },
            )
            for r in self.t.records
            if r.event == "action-completed"
        )

    def _run_action(self, step: Step, act: A.Action, actor: Person) -> bool:
        assert self.t is not None and step.action
        try:
            params = render_value(dict(step.params), self._context(), where=f"step {step.number}: ")
            params = A.validate_params(step.action, params, rendered=True)
        except InputError as exc:
            self._record(
                "action-failed",
                step,
                actor,
                data={"action": step.action, "error": exc.reason, "exit_code": exc.exit_code},
            )
            self.say(f"  [red]cannot prepare the action: {exc.reason}[/]")
            return False
        if step.action == "quorum-login":
            q = self.plan.quorum
            if q is None:
                self._record(
                    "action-failed",
                    step,
                    actor,
                    data={"action": step.action, "error": "the plan has no quorum", "exit_code": 2},
                )
                self.say("  [red]quorum-login needs a quorum in the plan[/]")
                return False
            chosen = self.responder.quorum(step, q.role, q.m, self.plan.holders(q.role))
            self.officers = tuple(x.name for x in chosen)
            self._record(
                "quorum",
                step,
                actor,
                data={"role": q.role, "m": q.m, "n": q.n, "officers": list(self.officers)},
            )
            self.say(f"  quorum: {', '.join(self.officers)} ({q.m} of {q.n} {q.role})")
        self._record(
            "action-started",
            step,
            actor,
            data={"action": step.action, "params": params, "idempotent": act.idempotent},
            inputs={"params": value_output(_canon(params))},
        )
        interactive = not isinstance(self.responder, AnswersResponder) and self.c.is_terminal
        try:
            if interactive:
                with Progress(
                    TextColumn("  {task.description}"),
                    BarColumn(),
                    TaskProgressColumn(),
                    console=self.c,
                    transient=True,
                ) as prog:
                    task = prog.add_task(step.action, total=1.0)

                    def progress(msg: str, frac: float | None) -> None:
                        prog.update(
                            task, description=msg, completed=frac if frac is not None else 0.0
                        )

                    result = act.run(self._action_context(step, params, progress))
            else:
                result = act.run(self._action_context(step, params))
        except DnssecCeremonyError as exc:
            self._record(
                "action-failed",
                step,
                actor,
                data={"action": step.action, "error": str(exc), "exit_code": exc.exit_code},
            )
            self.say(f"  [red]action {step.action} failed: {exc}[/]")
            return False
        outputs: dict[str, Any] = {}
        for name, out in result.outputs.items():
            if isinstance(out, Path):
                outputs[name] = self.t.artifact_ref(out).as_output()
            else:
                outputs[name] = value_output(out)
        token = result.token_identity.as_dict() if result.token_identity else None
        data: dict[str, Any] = {"action": step.action, "summary": result.summary}
        if result.warnings:
            data["warnings"] = list(result.warnings)
        self._record("action-completed", step, actor, data=data, outputs=outputs, token=token)
        for w in result.warnings:
            self.say(f"  [bold red]WARNING[/] (recorded in the transcript): {escape(w)}")
        if result.summary:
            self.say("  " + result.summary.replace("\n", "\n  "))
        if token:
            self.say(
                f"  token {token['label']}: {token['manufacturer']} {token['model']} serial {token['serial']}"
            )
        self._show_outputs(outputs)
        return True

    def _show_outputs(self, outputs: Mapping[str, Any]) -> None:
        for name, o in outputs.items():
            shown = o.get("path") or o.get("value")
            self.say(f"  output {name}: {shown}")
            self.say(f"    SHA-256 {o['sha256']}")
            self.say(f"    {words(o['sha256'])}")


def _canon(params: Mapping[str, Any]) -> str:
    from ceremony.transcript import canonical_json

    return canonical_json(dict(params)).decode("utf-8")


class Placeholder:
    """Stands for run-time values in a dry run / printed script: renders as a blank."""

    def __init__(self, name: str, fmt: str = "<{}>") -> None:
        self._name = name
        self._fmt = fmt

    def __getattr__(self, item: str) -> Placeholder:
        if item.startswith("__"):
            raise AttributeError(item)
        return Placeholder(f"{self._name}.{item}", self._fmt)

    def __getitem__(self, item: str) -> Placeholder:
        return Placeholder(f"{self._name}.{item}", self._fmt)

    def __str__(self) -> str:
        return self._fmt.format(self._name)


def run_plan(plan: Plan, opts: RunOptions, console: Console | None = None) -> int:
    r = Runner(plan, opts, console)
    if opts.dry_run:
        r.dry_run()
        return 0
    return r.run()


__all__ = ["AnswersResponder", "RunOptions", "Runner", "TerminalResponder", "run_plan"]
