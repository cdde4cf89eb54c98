"""Shared CLI plumbing: error-to-exit-code mapping, PIN options, logging set-up."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable
from typing import Any

import click

from signer import __version__
from signer.errors import EXIT_INPUT, DnssecCeremonyError

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  refused by a check (policy, verification; the message names the requirement ID)
  2  usage or input error (bad file, option or data; the message names file:line)
  3  token error (PKCS#11 module, token, PIN, mechanism)
  4  output error (nothing was written)"""


class ErrorHandlingGroup(click.Group):
    """A click group that turns our typed errors into one line on stderr and an exit code.

    Its commands can be registered lazily (:func:`register_commands`): a command's module is
    imported when that command runs or when help lists them all, so ``zonesigner sign``
    does not import the key and bundle commands (start-up time counts in incremental signs).
    """

    lazy: dict[str, tuple[str, str]]

    def _load(self, name: str) -> click.Command | None:
        entry = getattr(self, "lazy", {}).pop(name, None)
        if entry is None:
            return None
        mod_name, attr = entry
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:  # that part of the tool is not built
                return None
            raise
        cmd = getattr(mod, attr, None)
        if not isinstance(cmd, click.Command):
            return None
        if cmd.name != name:
            raise AssertionError(f"{mod_name}.{attr} is the command {cmd.name!r}, not {name!r}")
        self.add_command(cmd)
        return cmd

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._load(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for name in list(getattr(self, "lazy", {})):
            self._load(name)
        return super().list_commands(ctx)

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


def root_group(prog_name: str, help_text: str) -> click.Group:
    """The top-level group of one of our commands (``zonesigner``, ``ceremony``): man-page
    help with the exit codes, ``--version``, ``-v``/``-q`` logging, typed errors -> exit codes."""

    @click.group(
        name=prog_name,
        cls=ErrorHandlingGroup,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        help=help_text,
        epilog=EXIT_CODES_HELP,
    )
    @click.version_option(__version__, prog_name=prog_name)
    @click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
    @click.option("-q", "--quiet", is_flag=True, help="Only errors.")
    def group(verbose: int, quiet: bool) -> None:
        setup_logging(verbose, quiet)

    return group


def register_commands(group: click.Group, entries: Iterable[tuple[str, str, str]]) -> None:
    """Attach to ``group`` (made by :func:`root_group`) each command ``name``: the click
    command ``attr`` of module ``mod_name``, imported only when needed; a module that does
    not exist (that part of the tool is not built) is passed over."""
    assert isinstance(group, ErrorHandlingGroup)
    if not hasattr(group, "lazy"):
        group.lazy = {}
    for name, mod_name, attr in entries:
        group.lazy[name] = (mod_name, attr)
