"""``ceremony render``: the printable script of a plan (HTML for printing, and Markdown).

Both formats come from the same plan and show: metadata, the plan's SHA-256 in hex and PGP
words, roles and roster, equipment (with blanks for bag numbers), every step numbered with
its section, who does it and who witnesses it, an Initial and a Time column, blanks for the
values recorded at run time (bag numbers, DS digests, hashes), and a final sign-off table with
a blank for the transcript's final hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ceremony import actions as A
from ceremony.plan import Plan, render_value
from ceremony.runner import Placeholder
from signer.errors import InputError
from signer.fileio import write_atomic
from signer.pgpwords import pgp_words

BLANK = "______________"


@dataclass(frozen=True)
class RenderedStep:
    number: int
    role: str
    role_title: str
    witness: str
    kind: str
    text: str
    action: str | None
    action_help: str
    params: dict[str, Any]
    blanks: tuple[str, ...]


def _steps(plan: Plan) -> list[tuple[str, list[RenderedStep]]]:
    ctx = plan.template_context()
    ctx["steps"] = Placeholder("steps", BLANK + " ({})")
    out: list[tuple[str, list[RenderedStep]]] = []
    for sec in plan.sections:
        rows: list[RenderedStep] = []
        for s in sec.steps:
            where = f"{plan.path}:{s.line}: "
            text = str(render_value(s.text, ctx, where=where)) if s.text else ""
            blanks = tuple(b.label for b in s.record)
            help_ = ""
            params: dict[str, Any] = {}
            if s.action:
                act = A.REGISTRY[s.action]
                blanks += act.blanks
                help_ = act.help
                params = dict(render_value(dict(s.params), ctx, where=where))
            rows.append(
                RenderedStep(
                    s.number,
                    s.role,
                    plan.roles[s.role].title,
                    s.witness,
                    s.kind,
                    text,
                    s.action,
                    help_,
                    params,
                    blanks,
                )
            )
        out.append((f"{sec.number}. {sec.title}", rows))
    return out


def render_text(plan: Plan, fmt: str) -> str:
    if fmt not in ("html", "md"):
        raise InputError(f"unknown format {fmt!r} (html or md)")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ceremony", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    tpl = env.get_template("script.html.j2" if fmt == "html" else "script.md.j2")
    signers = [(p.name, ", ".join(p.roles)) for p in plan.roster]
    return tpl.render(
        plan=plan,
        md=plan.metadata,
        sha256=plan.sha256,
        words=pgp_words(bytes.fromhex(plan.sha256)),
        sections=_steps(plan),
        signers=signers,
        blank=BLANK,
        plan_name=Path(plan.path).name,
    )


def render_plan(plan: Plan, fmt: str, out: Path) -> str:
    """Write the script; return the output's SHA-256."""
    return write_atomic(out, render_text(plan, fmt))
