"""Hash files in a thread from the start of a command, before its heavy imports.

An incremental re-sign checks the previous signed zone and its input copy against their
SHA-256 in its state (~440 MB at 1M delegations, ~0.25 s of CPU). Started here, as the
``sign`` command starts, the hashing runs on a spare core while the command imports the
signer (~0.15 s) and loads its state, and is done before the re-sign's planning needs both
cores. A result is used only for the very file it was made from: the caller passes the
``os.fstat`` of the file it opened, and a file replaced or changed since (another inode,
size, modification or change time) is hashed again by the caller.

This module imports nothing heavy (the point is to start before the rest is imported).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading

Identity = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns

# a signed zone's state files beside it (signer.zone.incremental; named here: this module is
# imported before that one)
STATE_SUFFIX = ".zsstate"
INPUT_SUFFIX = ".zsstate.input"


def previous_files(previous: str) -> list[str]:
    """What a re-sign from ``previous`` hashes: the signed zone, then its input copy."""
    return [previous, previous + INPUT_SUFFIX]


def identity(st: os.stat_result) -> Identity:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class _Job:
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.results: dict[str, tuple[Identity, str]] = {}
        self.thread = threading.Thread(target=self._run, name="zs-prefetch", daemon=True)

    def _run(self) -> None:
        for path in self.paths:
            try:
                with open(path, "rb") as fh:
                    before = identity(os.fstat(fh.fileno()))
                    h = hashlib.sha256()
                    if before[2]:
                        with (
                            mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m,
                            memoryview(m) as view,
                        ):
                            h.update(view)  # one call: the GIL is released for all of it
                    if identity(os.fstat(fh.fileno())) == before:
                        self.results[path] = (before, h.hexdigest())
            except (OSError, ValueError):
                continue  # the caller hashes it itself (and reports what is wrong)


_job: list[_Job] = []


def start(paths: list[str]) -> None:
    """Hash ``paths`` (in this order) in a daemon thread (replacing what an earlier call
    started: a process that signs twice, like the tests)."""
    job = _Job(list(paths))
    _job[:] = [job]
    job.thread.start()


def sha256(path: str, st: os.stat_result) -> str | None:
    """The SHA-256 (hex) of ``path`` made by :func:`start` (waiting for it) when the file
    hashed is the one whose ``os.fstat`` is ``st``, unchanged; else None."""
    if not _job or path not in _job[0].paths:
        return None
    _job[0].thread.join()
    got = _job[0].results.get(path)
    if got is None or got[0] != identity(st):
        return None
    return got[1]


def reset() -> None:
    """Forget what was started (tests; a later :func:`start` starts afresh)."""
    if _job:
        _job[0].thread.join()
        _job.clear()
