"""Worker key opening: transient token failures are retried, a refused PIN never is."""

from __future__ import annotations

import pytest

from signer.errors import TokenError
from signer.keys.pkcs11 import KeyNotFound, PinRefused, TokenNotFound
from signer.zone.signing import open_key_retrying


class _Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "key"


def test_transient_failures_are_retried() -> None:
    opener = _Flaky([TokenNotFound("no token matches"), TokenError("session failed")])
    assert open_key_retrying(opener) == "key"  # type: ignore[arg-type]
    assert opener.calls == 3


@pytest.mark.parametrize("exc", [PinRefused("PIN incorrect"), KeyNotFound("no key")])
def test_pin_and_missing_key_are_not_retried(exc: Exception) -> None:
    opener = _Flaky([exc])
    with pytest.raises(type(exc)):
        open_key_retrying(opener)  # type: ignore[arg-type]
    assert opener.calls == 1


def test_retries_end() -> None:
    opener = _Flaky([TokenNotFound("gone")] * 10)
    with pytest.raises(TokenNotFound):
        open_key_retrying(opener, attempts=3)  # type: ignore[arg-type]
    assert opener.calls == 3
