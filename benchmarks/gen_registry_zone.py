#!/usr/bin/env python3
"""Generate a registry (TLD-like) zone: N delegations, each with 2 NS, ~30 % with a DS,
~10 % with in-bailiwick glue (A, and AAAA for a third of those). Deterministic for a seed.

    python benchmarks/gen_registry_zone.py --origin bench. --delegations 100000 --out zone.db

Owner names are fixed-width pseudo-words (not sequential), so canonical order differs from
file order as in a real registry export. Not a test: the benchmark's input.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

_ALPHA = "abcdefghijklmnopqrstuvwxyz0123456789"


def _label(rnd: random.Random, i: int) -> str:
    # unique: a random prefix plus the index in base 36
    n = i
    suffix = ""
    while True:
        suffix = _ALPHA[n % 36] + suffix
        n //= 36
        if not n:
            break
    return "".join(rnd.choice(_ALPHA[:26]) for _ in range(rnd.randint(3, 9))) + "-" + suffix


def generate(
    origin: str,
    delegations: int,
    *,
    seed: int = 42,
    ds_share: float = 0.30,
    glue_share: float = 0.10,
) -> str:
    """The zone text (one string; 1M delegations is about 90 MB)."""
    if not origin.endswith("."):
        origin += "."
    rnd = random.Random(seed)
    out = [
        f"$ORIGIN {origin}",
        "$TTL 86400",
        f"@ 86400 IN SOA a.nic.{origin} hostmaster.nic.{origin} 2024010101 1800 900 604800 3600",
        f"@ 86400 IN NS a.nic.{origin}",
        f"@ 86400 IN NS b.nic.{origin}",
        "a.nic 86400 IN A 192.0.2.1",
        "b.nic 86400 IN A 192.0.2.2",
        "a.nic 86400 IN AAAA 2001:db8::1",
    ]
    append = out.append
    for i in range(delegations):
        name = _label(rnd, i)
        r = rnd.random()
        if r < glue_share:
            append(f"{name} 172800 IN NS ns1.{name}")
            append(f"{name} 172800 IN NS ns2.{name}")
            append(f"ns1.{name} 172800 IN A 198.51.{i % 256}.{(i >> 8) % 254 + 1}")
            append(f"ns2.{name} 172800 IN A 203.0.{i % 256}.{(i >> 8) % 254 + 1}")
            if i % 3 == 0:
                append(f"ns1.{name} 172800 IN AAAA 2001:db8:{i & 0xFFFF:x}::53")
        else:
            h = rnd.randrange(5000)
            append(f"{name} 172800 IN NS ns{h % 4 + 1}.host{h}.example.net.")
            append(f"{name} 172800 IN NS ns{h % 3 + 1}.dns{h % 997}.example.org.")
        if rnd.random() < ds_share:
            tag = rnd.randrange(65536)
            alg = 13 if rnd.random() < 0.8 else 8
            append(f"{name} 86400 IN DS {tag} {alg} 2 {rnd.randbytes(32).hex().upper()}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--origin", default="bench.")
    ap.add_argument("--delegations", "-n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--ds-share", type=float, default=0.30)
    ap.add_argument("--glue-share", type=float, default=0.10)
    ap.add_argument("--out", "-o", help="output file (default: stdout)")
    a = ap.parse_args(argv)
    text = generate(
        a.origin, a.delegations, seed=a.seed, ds_share=a.ds_share, glue_share=a.glue_share
    )
    if a.out:
        Path(a.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
