"""Shared pieces of the byte-mutation fuzzers (hypothesis): the edit operations, applying
them to a seed file, and the derandomized settings. Each fuzz module brings its own tokens."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

Op = tuple[str, float, object]


def byte_ops(tokens: Sequence[bytes]) -> st.SearchStrategy[Op]:
    """One edit at a relative position: delete, insert a token or random bytes, overwrite a
    byte, cut the tail, or duplicate a stretch."""
    return st.one_of(
        st.tuples(st.just("del"), st.floats(0, 1), st.integers(1, 64)),
        st.tuples(st.just("ins"), st.floats(0, 1), st.sampled_from(list(tokens))),
        st.tuples(st.just("ins"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
        st.tuples(st.just("cut"), st.floats(0, 1), st.just(0)),
        st.tuples(st.just("dup"), st.floats(0, 1), st.integers(1, 400)),
    )


def mutate(seed: bytes, ops: list[Op]) -> bytes:
    data = bytearray(seed)
    for kind, where, arg in ops:
        i = min(int(where * len(data)), max(len(data) - 1, 0))
        if kind == "del":
            assert isinstance(arg, int)
            del data[i : i + arg]
        elif kind == "ins":
            assert isinstance(arg, bytes)
            data[i:i] = arg
        elif kind == "flip" and data:
            assert isinstance(arg, int)
            data[i] = arg
        elif kind == "cut":
            del data[i:]
        elif kind == "dup":
            assert isinstance(arg, int)
            data[i:i] = data[i : i + arg]
    return bytes(data)


def fuzz_settings(examples: int) -> settings:
    """Derandomized (the same examples every run), no deadline, bounded example count."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
