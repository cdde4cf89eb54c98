"""``ceremony``: the ceremony station's command line."""

from __future__ import annotations

import importlib

import click

from signer import __version__
from signer.cli.common import EXIT_CODES_HELP, ErrorHandlingGroup, setup_logging


@click.group(
    cls=ErrorHandlingGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="ceremony")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def cli(verbose: int, quiet: bool) -> None:
    """ceremony - run, record and audit DNSSEC key ceremonies.

    \b
    Commands by job:
      sign-request     sign a key-bundle request (KSR) with the KSK: the response (SKR)
      render           the printable script (HTML, Markdown) of a ceremony plan
      run              run a ceremony plan, step by step, into a ceremony directory
      audit verify     verify a ceremony directory end to end
      audit report     render the audit report (one HTML page)
    """
    setup_logging(verbose, quiet)


def _register() -> None:
    for mod_name, attr in (
        ("ceremony.cli_sign", "sign_request"),
        ("ceremony.cli_run", "render"),
        ("ceremony.cli_run", "run"),
        ("ceremony.cli_run", "audit"),
    ):
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue
            raise
        cmd = getattr(mod, attr, None)
        if isinstance(cmd, click.Command):
            cli.add_command(cmd)


_register()


def main() -> None:
    cli(prog_name="ceremony")
