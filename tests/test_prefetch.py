"""signer.zone.prefetch: a file's SHA-256 made early is used only for that very file."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from signer.zone import prefetch


def test_a_prefetched_hash_is_used_only_for_the_same_unchanged_file(tmp_path: Path) -> None:
    a, b, empty = tmp_path / "a", tmp_path / "b", tmp_path / "empty"
    a.write_bytes(os.urandom(1 << 20))
    b.write_bytes(b"zone\n" * 1000)
    empty.write_bytes(b"")
    missing = tmp_path / "missing"
    try:
        prefetch.start([str(a), str(b), str(empty), str(missing)])
        for p in (a, b, empty):
            want = hashlib.sha256(p.read_bytes()).hexdigest()
            assert prefetch.sha256(str(p), os.stat(p)) == want
        assert prefetch.sha256(str(missing), os.stat(a)) is None  # it could not be hashed
        assert prefetch.sha256(str(tmp_path / "other"), os.stat(a)) is None  # not asked for
        # the same path, another file (replaced by a rename): not its hash
        c = tmp_path / "c"
        c.write_bytes(a.read_bytes())
        os.replace(c, a)
        assert prefetch.sha256(str(a), os.stat(a)) is None
        # changed in place (same inode): its change time moved (past the file system's
        # clock tick: a change within the tick it was hashed in would not show)
        before = os.stat(b)
        time.sleep(0.05)
        with open(b, "r+b") as fh:
            fh.write(b"Z")
        after = os.stat(b)
        assert after.st_ino == before.st_ino
        assert prefetch.sha256(str(b), after) is None
        # a later start replaces the earlier one
        prefetch.start([str(b)])
        assert prefetch.sha256(str(b), os.stat(b)) == hashlib.sha256(b.read_bytes()).hexdigest()
        assert prefetch.sha256(str(empty), os.stat(empty)) is None
    finally:
        prefetch.reset()
    assert prefetch.sha256(str(b), os.stat(b)) is None


def test_previous_files_are_the_ones_the_state_names() -> None:
    from signer.zone.incremental import input_path

    assert prefetch.previous_files("z.signed") == ["z.signed", input_path("z.signed")]
