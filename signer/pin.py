"""Where a token PIN comes from: a file, an environment variable, or a prompt without echo.

A :class:`PinSource` holds the *configuration* (a path, a variable name), never the PIN,
except for :meth:`PinSource.resolved`, which carries an already-read PIN to worker processes
(its ``repr`` never shows it). PINs are never accepted on the command line, never logged,
never put into exception messages.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from signer.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

MAX_PIN_BYTES = 256


@dataclass(frozen=True)
class PinSource:
    """How to obtain a PIN. ``get`` reads it each time it is called."""

    pin_file: str | None = None
    pin_env: str | None = None
    interactive: bool = True
    _value: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_options(
        cls, pin_file: str | None, pin_env: str | None, interactive: bool = True
    ) -> PinSource:
        if pin_file is not None and pin_env is not None:
            raise InputError("give either --pin-file or --pin-env, not both")
        if pin_env is not None and not pin_env.strip():
            raise InputError("--pin-env needs the NAME of an environment variable")
        if pin_file is not None and not pin_file.strip():
            raise InputError("--pin-file needs a path")
        return cls(pin_file=pin_file, pin_env=pin_env, interactive=interactive)

    @property
    def configured(self) -> bool:
        """True when a file, a variable or a resolved value is set (no prompt needed)."""
        return self.pin_file is not None or self.pin_env is not None or self._value is not None

    def describe(self) -> str:
        """Where the PIN comes from, for messages (never the PIN)."""
        if self._value is not None:
            return "a PIN read earlier"
        if self.pin_file is not None:
            return f"PIN file {self.pin_file}"
        if self.pin_env is not None:
            return f"environment variable {self.pin_env}"
        return "the prompt"

    def get(self, prompt_label: str) -> str:
        """The PIN for ``prompt_label`` (e.g. "token 'zsk'"); raises InputError if unavailable."""
        if self._value is not None:
            return self._value
        if self.pin_file is not None:
            return _read_pin_file(self.pin_file)
        if self.pin_env is not None:
            value = os.environ.get(self.pin_env)
            if value is None:
                raise InputError(f"environment variable {self.pin_env} (--pin-env) is not set")
            return _check(value.strip("\r\n"), f"environment variable {self.pin_env}")
        if not self.interactive:
            raise InputError(
                f"no PIN for {prompt_label}: use --pin-file PATH or --pin-env VAR "
                "(prompting is disabled)"
            )
        if not _have_tty():
            raise InputError(
                f"no PIN for {prompt_label}: no terminal to prompt on; "
                "use --pin-file PATH or --pin-env VAR"
            )
        try:
            value = getpass.getpass(f"PIN for {prompt_label}: ")
        except (EOFError, KeyboardInterrupt):
            raise InputError(f"no PIN entered for {prompt_label}") from None
        return _check(value, "the prompt")

    def resolved(self, prompt_label: str) -> PinSource:
        """A source that returns the PIN read now (prompting at most once), e.g. for workers."""
        if self._value is not None:
            return self
        return PinSource(interactive=False, _value=self.get(prompt_label))

    def with_fallback_file(self, path: str | None) -> PinSource:
        """Use ``path`` (a URI's pin-source) when no explicit source was given."""
        if path is None or self.configured:
            return self
        return PinSource(pin_file=path, interactive=self.interactive)


def _have_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _read_pin_file(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PIN_BYTES * 4 + 2)
    except OSError as exc:
        raise InputError(f"cannot read PIN file: {exc.strerror}", path=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("PIN file is not UTF-8 text", path=path) from None
    first = text.splitlines()[0].strip() if text.strip() else ""
    return _check(first, f"PIN file {path}")


def _check(value: str, where: str) -> str:
    if not value:
        raise InputError(f"empty PIN from {where}")
    if len(value.encode("utf-8")) > MAX_PIN_BYTES:
        raise InputError(f"PIN from {where} is longer than {MAX_PIN_BYTES} bytes")
    return value


def pin_options(func: F) -> F:
    """Click decorator: ``--pin-file PATH`` and ``--pin-env VAR`` (no ``--pin``, by design)."""
    func = click.option(
        "--pin-env",
        "pin_env",
        metavar="VAR",
        default=None,
        help="Read the user PIN from the environment variable VAR (give its name, not the PIN).",
    )(func)
    func = click.option(
        "--pin-file",
        "pin_file",
        metavar="PATH",
        default=None,
        help="Read the user PIN from the first line of PATH (keep it mode 0600). "
        "Without --pin-file or --pin-env the PIN is prompted for, without echo.",
    )(func)
    return func


__all__ = ["PinSource", "pin_options"]
