"""``ceremony render``, ``ceremony run`` and ``ceremony audit verify|report``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from signer.cli.common import EXIT_CODES_HELP, ErrorHandlingGroup
from signer.cli.options import name_value_pairs


def _sets(values: tuple[str, ...]) -> dict[str, str]:
    return name_value_pairs(values, "--set", "NAME=VALUE")


_set_option = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Replace the value of the plan's variable NAME (repeatable). The plan that runs, "
    "as copied into the ceremony directory (plan.yaml), carries the new value; resume with "
    "the same --set values or with DIR/plan.yaml.",
)


@click.command("render", epilog=EXIT_CODES_HELP)
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@_set_option
@click.option(
    "--format", "fmt", type=click.Choice(["html", "md"]), default="html", show_default=True
)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output file.")
def render(plan_file: str, sets: tuple[str, ...], fmt: str, out: str) -> None:
    """Render the printable script of a ceremony PLAN (HTML for printing, or Markdown).

    The plan is loaded and linted first (as 'run' would). The script numbers every step,
    says who does it, leaves Initial and Time columns and blanks for bag numbers, key tags
    and DS values, prints the plan's SHA-256 in PGP words and ends with a sign-off table.
    --out is written atomically; its SHA-256 is printed.
    """
    from ceremony import plan as plan_mod
    from ceremony.render import render_plan

    p = plan_mod.load(plan_file, variables=_sets(sets))
    digest = render_plan(p, fmt, Path(out))
    click.echo(f"{out}: {fmt} script of {p.metadata.id}, {len(p.steps)} steps (SHA-256 {digest})")


def _pin_files(values: tuple[str, ...]) -> dict[str, str]:
    return name_value_pairs(values, "--pin-file", "TOKEN=PATH", empty_value=False)


@click.command("run", epilog=EXIT_CODES_HELP)
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option(
    "--dir",
    "ceremony_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Ceremony directory (transcript and artifacts); re-run to resume.",
)
@click.option(
    "--answers",
    type=click.Path(dir_okay=False),
    default=None,
    help="Answers file (YAML) for a non-interactive rehearsal.",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what each step and action would do; record nothing."
)
@click.option(
    "--lab",
    "lab_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Rehearsal: use (or bring up) the SoftHSM2 lab in this directory.",
)
@click.option(
    "--pin-file",
    "pin_files",
    multiple=True,
    metavar="TOKEN=PATH",
    help="Read the user PIN of TOKEN from PATH (repeatable); otherwise prompted.",
)
@_set_option
def run(
    plan_file: str,
    ceremony_dir: str,
    answers: str | None,
    dry_run: bool,
    lab_dir: str | None,
    pin_files: tuple[str, ...],
    sets: tuple[str, ...],
) -> None:
    """Run the ceremony PLAN step by step into --dir (resumes where it stopped).

    Each step is shown with the role that does it; the actor confirms, the internal witness
    initials; actions run and show their outputs with SHA-256 and PGP words. Every event is
    appended (fsynced) to DIR/transcript.jsonl, hash-chained; at the end the transcript is
    sealed and the seal shown in hex and PGP words. An exception can be recorded at any step
    (acknowledged by a second person), then retry, skip or abort. Re-running on the same
    DIR resumes after the last completed step and never repeats a completed action.
    --answers replaces the terminal for rehearsals; --dry-run touches no token and records
    nothing. PINs are read without echo (or --pin-file) and never recorded.
    """
    from ceremony import plan as plan_mod
    from ceremony.runner import RunOptions, run_plan

    p = plan_mod.load(plan_file, variables=_sets(sets))
    opts = RunOptions(
        ceremony_dir=Path(ceremony_dir),
        answers=answers,
        dry_run=dry_run,
        lab_dir=Path(lab_dir).resolve() if lab_dir else None,
        pin_files=_pin_files(pin_files),
    )
    sys.exit(run_plan(p, opts))


@click.group("audit", cls=ErrorHandlingGroup, epilog=EXIT_CODES_HELP)
def audit() -> None:
    """Review a ceremony directory: verify it, or render the audit report.

    \b
      verify   recompute the chain, artifacts, steps, roles, quorum, seal, responses
      report   one self-contained HTML page for auditors (written even if the audit fails)
    """


@audit.command("verify", epilog=EXIT_CODES_HELP)
@click.argument("ceremony_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--seal", default=None, help="Final hash (hex) or PGP words copied from the paper script."
)
def verify(ceremony_dir: str, seal: str | None) -> None:
    """Verify a ceremony directory end to end (chain, artifacts, steps, roles, seal).

    Runs the AUDIT-* checks of docs/ceremonies.md in order; the first failure is one line
    naming the requirement ID and the transcript record (exit 1). On success prints the
    summary, the seal in hex and PGP words, each response with its KSK key tags, and any
    warning (e.g. a KSK no step of the ceremony generated or verified). --seal compares the
    seal with the hash or words copied from the signed paper script.
    """
    from ceremony.audit import verify_ceremony_dir

    result = verify_ceremony_dir(Path(ceremony_dir), seal=seal)
    click.echo("\n".join(result.lines()))


@audit.command("report", epilog=EXIT_CODES_HELP)
@click.argument("ceremony_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
def report(ceremony_dir: str, out: str) -> None:
    """Render the audit report of a ceremony directory as one self-contained HTML page.

    Summary and verdict (with the audit's warnings), participants and roles, the timeline of
    steps with times and initials, exceptions, artifacts with SHA-256 and PGP words, and a
    chart of the key-bundle coverage. Inline CSS and SVG only: nothing is fetched when it is
    opened. Written (atomically) even when the audit fails: the verdict then names the ID.
    """
    from ceremony.report import render_report

    render_report(Path(ceremony_dir), Path(out))
    click.echo(out)
