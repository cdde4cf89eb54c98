"""Atomic output: temporary file in the target directory, fsync, rename. Never a partial file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from signer.errors import OutputError


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str], mode: int = 0o644, *, durable: bool = True
) -> Iterator[IO[bytes]]:
    """Yield a binary file; on clean exit it is fsynced and renamed over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    ``durable=False`` skips the fsyncs (still never a partial file under ``path`` while
    the system runs): only for files that check themselves and can be lost, like the
    signer's incremental state.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(
            f"{target}: cannot create a file in {directory}: {exc.strerror}"
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        if durable:
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o644) -> str:
    """Write ``data`` atomically; return its SHA-256 in hex."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        with atomic_writer(path, mode) as fh:
            fh.write(raw)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
    return hashlib.sha256(raw).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
