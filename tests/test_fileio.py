"""Atomic output: the target is replaced whole or not at all, and no temporary file is left."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from signer.errors import OutputError
from signer.fileio import atomic_writer, sha256_file, write_atomic


def test_write_atomic_replaces_and_hashes(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    digest = write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert digest == hashlib.sha256(b"new\n").hexdigest() == sha256_file(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failure_keeps_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "signed.zone"
    target.write_bytes(b"previous")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_writer(target) as fh:
        fh.write(b"partial output")
        raise Boom
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signed.zone"]


def test_missing_directory_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot create a file"):
        write_atomic(tmp_path / "no-such-dir" / "x", b"data")


def test_durable_writes_fsync_and_the_others_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signed zone is fsynced (file and directory) before and after the rename; a
    non-durable file (the incremental state) is renamed the same way without the fsyncs."""
    import os

    from signer import fileio

    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    for durable, want in ((True, 2), (False, 0)):
        calls.clear()
        target = tmp_path / f"f-{durable}"
        with atomic_writer(target, durable=durable) as fh:
            fh.write(b"data")
        assert target.read_bytes() == b"data" and len(calls) == want, durable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f-False", "f-True"]
