"""``zonesigner``: the DNSSEC engine's command line.

Sub-command groups live in their own modules and are attached here.
"""

from __future__ import annotations

import click

from signer import __version__
from signer.cli.common import EXIT_CODES_HELP, ErrorHandlingGroup, setup_logging


@click.group(
    cls=ErrorHandlingGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="zonesigner")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def cli(verbose: int, quiet: bool) -> None:
    """zonesigner - offline DNSSEC signing: keys, key bundles and zones.

    \b
    Commands by job:
      token probe      what a PKCS#11 token can do, and who made it
      key ...          generate, list, show keys on a token; print DS records
      bundles ...      plan key bundles, write the signing request, import the response
      sign             sign a zone with the ZSK and the pre-signed key bundles

    Keys live on PKCS#11 tokens, addressed by RFC 7512 URIs such as
    'pkcs11:token=zsk;object=zsk-2026q1'. PINs come from --pin-file, the environment
    variable named by --pin-env, or a prompt without echo; never from the command line.
    """
    setup_logging(verbose, quiet)


def _register() -> None:
    import importlib

    for mod_name, attr in (
        ("signer.cli.keys", "key"),
        ("signer.cli.keys", "token"),
        ("signer.cli.bundles", "bundles"),
        ("signer.cli.sign", "sign"),
    ):
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue  # that part of the tool is not built yet
            raise
        cmd = getattr(mod, attr, None)
        if isinstance(cmd, click.Command):
            cli.add_command(cmd)


_register()


def main() -> None:
    cli(prog_name="zonesigner")
