"""Command-line options and argument parsers that several commands share (``zonesigner
bundles``, ``ceremony sign-request``, ``ceremony run``/``render``), so that one option means
one thing, is checked one way and fails with one message everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from signer.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def policy_option(help_text: str) -> Callable[[F], F]:
    """``--policy FILE`` (required) into the parameter ``policy_path``."""
    return click.option(
        "--policy",
        "policy_path",
        required=True,
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help=help_text,
    )


def previous_option(help_text: str) -> Callable[[F], F]:
    """``--previous FILE``: the last signed response (SKR) for this zone, if any."""
    return click.option(
        "--previous",
        default=None,
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help=help_text,
    )


def output_option(help_text: str, *, required: bool = True) -> Callable[[F], F]:
    """``-o/--output FILE``: the file the command writes (atomically)."""
    return click.option(
        "-o",
        "--output",
        required=required,
        default=None,
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help=help_text,
    )


def parse_when(text: str, what: str) -> int:
    """A UTC time (``2026-01-01T00:00:00Z``) given as option ``what``: POSIX seconds."""
    from signer.bundles.policy import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}") from None


def name_value_pairs(
    values: tuple[str, ...], option: str, metavar: str, *, empty_value: bool = True
) -> dict[str, str]:
    """Repeated ``NAME=VALUE`` option values as a mapping; a missing ``=`` or an empty name
    (or, unless ``empty_value``, an empty value) is a usage error naming the option."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name or not (value or empty_value):
            raise InputError(f"{option} wants {metavar}, not {v!r}")
        out[name] = value
    return out
