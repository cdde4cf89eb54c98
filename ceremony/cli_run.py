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
    """Render the printable script of a ceremony PLAN (HTML for printing, or Markdown)."""
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
    """Run the ceremony PLAN step by step into --dir (resumes where it stopped)."""
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
    """Review a ceremony directory: verify it, or render the audit report."""


@audit.command("verify", epilog=EXIT_CODES_HELP)
@click.argument("ceremony_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--seal", default=None, help="Final hash (hex) or PGP words copied from the paper script."
)
def verify(ceremony_dir: str, seal: str | None) -> None:
    """Verify a ceremony directory end to end (chain, artifacts, steps, roles, seal)."""
    from ceremony.audit import verify_ceremony_dir

    result = verify_ceremony_dir(Path(ceremony_dir), seal=seal)
    click.echo("\n".join(result.lines()))


@audit.command("report", epilog=EXIT_CODES_HELP)
@click.argument("ceremony_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
def report(ceremony_dir: str, out: str) -> None:
    """Render the audit report of a ceremony directory as one self-contained HTML page."""
    from ceremony.report import render_report

    render_report(Path(ceremony_dir), Path(out))
    click.echo(out)
