"""Typed errors and the exit codes they map to.

Exit codes (documented in README.md and in every ``--help``):

* 0 -- success
* 1 -- refused by a check (policy, verification, a requirement ID)
* 2 -- usage or input error (bad file, bad option, malformed data)
* 3 -- token error (PKCS#11 module, token, PIN, mechanism)
* 4 -- output error (could not write the result; nothing was published)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK = 1
EXIT_INPUT = 2
EXIT_TOKEN = 3
EXIT_OUTPUT = 4


class DnssecCeremonyError(Exception):
    """Base of every error the tools report to a user without a traceback."""

    exit_code: int = EXIT_CHECK

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Crosses process pipes (the signer's workers) with its attributes intact: the
        # subclasses' __init__ signatures differ from ``args``.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[DnssecCeremonyError], args: tuple[object, ...], state: dict[str, object]
) -> DnssecCeremonyError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class InputError(DnssecCeremonyError):
    """Malformed or unusable input; carries ``file:line`` when known."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.reason = message


class CheckFailed(DnssecCeremonyError):
    """A named check (requirement ID) refused the input.

    Subclasses set ``requirement``; the ID appears in the message, the log and the tests.
    """

    exit_code = EXIT_CHECK
    requirement: str = "CHECK"

    def __init__(self, message: str, *, requirement: str | None = None) -> None:
        if requirement is not None:
            self.requirement = requirement
        super().__init__(f"{self.requirement}: {message}")
        self.reason = message


class VerificationError(CheckFailed):
    """A signature or structure did not verify."""

    requirement = "VERIFY"


class TokenError(DnssecCeremonyError):
    """A PKCS#11 module, token, PIN or mechanism problem."""

    exit_code = EXIT_TOKEN


class TokenNotFound(TokenError):
    """No token (or more than one) matches the URI. Defined here (and re-exported by
    :mod:`signer.keys.pkcs11`) so a worker retrying a key file need not import the
    PKCS#11 library (~40 ms)."""


class OutputError(DnssecCeremonyError):
    """The result could not be written; nothing was published."""

    exit_code = EXIT_OUTPUT
