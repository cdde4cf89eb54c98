"""Shared CLI plumbing: error-to-exit-code mapping, PIN options, logging set-up."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from signer.errors import EXIT_INPUT, DnssecCeremonyError

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  refused by a check (policy, verification; the message names the requirement ID)
  2  usage or input error (bad file, option or data; the message names file:line)
  3  token error (PKCS#11 module, token, PIN, mechanism)
  4  output error (nothing was written)"""


class ErrorHandlingGroup(click.Group):
    """A click group that turns our typed errors into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DnssecCeremonyError as exc:
            click.echo(f"{ctx.find_root().info_name}: error: {exc}", err=True)
            logging.getLogger("dnssec_ceremony").debug("exit %d: %s", exc.exit_code, exc)
            sys.exit(exc.exit_code)
        except click.exceptions.Exit:
            raise
        except KeyboardInterrupt:
            click.echo(f"{ctx.find_root().info_name}: interrupted; nothing was written", err=True)
            sys.exit(130)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # click's own usage errors exit 2 already, matching EXIT_INPUT.
        assert EXIT_INPUT == 2
        return super().main(*args, **kwargs)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
