"""Every command's --help reads like a man page: a synopsis, a description beyond the one-line
summary, its options, and the exit codes."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from ceremony.cli import cli as ceremony_cli
from signer.cli.main import cli as zonesigner_cli

# `zonesigner sign` (signer/cli/sign.py) is still being written by its owner; its help is
# checked once that work lands.
NOT_YET: set[str] = set()


def _walk(cmd: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, (*path, name))


COMMANDS = [
    *_walk(zonesigner_cli, ("zonesigner",)),
    *_walk(ceremony_cli, ("ceremony",)),
]


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_is_a_man_page(name: str, cmd: click.Command) -> None:
    if name in NOT_YET:
        pytest.skip(f"{name}: owned by the zone-signer work in progress")
    text = cmd.get_help(click.Context(cmd, info_name=name))
    assert text.startswith(f"Usage: {name} ")
    paragraphs = [p for p in (cmd.help or "").split("\n\n") if p.strip()]
    assert len(paragraphs) >= 2, f"{name}: only a one-line summary"
    assert "Options:" in text and "--help" in text
    for code in ("0  success", "1  refused by a check", "2  usage or input error", "3  token"):
        assert code in text, f"{name}: exit code {code[0]} not documented"
