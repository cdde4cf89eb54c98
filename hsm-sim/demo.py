"""``make demo``: the toolkit end to end on a fresh SoftHSM2 lab.

    .venv/bin/python hsm-sim/demo.py demo-out

Each stage is a function ``stage_*(demo: Demo) -> None`` listed in ``STAGES``; later parts of
the project (ceremony, key bundles, zone signing) append their own stages. A stage reads what
earlier stages left in :class:`Demo` (the lab, the key specs) and adds to it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import hsmlab  # noqa: E402

from signer.algorithms import Algorithm  # noqa: E402
from signer.dnskey import DIGEST_SHA256, DIGEST_SHA384, make_ds  # noqa: E402
from signer.keys.pkcs11 import Pkcs11Key, Pkcs11Token  # noqa: E402
from signer.pgpwords import pgp_words  # noqa: E402
from signer.pin import PinSource  # noqa: E402

ZONE = "example."
TTL = 3600


@dataclass
class Demo:
    """What the stages share."""

    out: Path
    zone: str = ZONE
    lab: hsmlab.Lab | None = None
    keys: dict[str, str] = field(default_factory=dict)  # role ("ksk", "zsk") -> key URI
    dnskeys: dict[str, str] = field(default_factory=dict)  # role -> DNSKEY RR text
    ds: list[str] = field(default_factory=list)

    def need_lab(self) -> hsmlab.Lab:
        if self.lab is None:
            raise RuntimeError("the lab stage has not run")
        return self.lab

    def pins(self, token: str) -> PinSource:
        return PinSource(pin_file=str(self.need_lab().pin_file(token)), interactive=False)

    def zonesigner(self, *args: str) -> str:
        """Run the installed ``zonesigner`` with the lab's environment; its stdout."""
        exe = Path(sys.executable).parent / "zonesigner"
        cmd = [str(exe) if exe.exists() else "zonesigner", *args]
        print("$ " + shlex.join(["zonesigner", *args]))
        proc = subprocess.run(
            cmd,
            env={**os.environ, **self.need_lab().env()},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"demo: zonesigner failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def stage_lab(demo: Demo) -> None:
    """A fresh SoftHSM2 lab in OUT/lab (an old one is removed first)."""
    heading("SoftHSM2 lab")
    root = demo.out / "lab"
    if root.exists():
        if (root / "lab.json").exists():
            hsmlab.down(root)
        else:
            shutil.rmtree(root)
    demo.out.mkdir(parents=True, exist_ok=True)
    demo.lab = hsmlab.up(root)
    demo.lab.apply()
    print(demo.lab.shell_env())


def stage_keys(demo: Demo) -> None:
    """A KSK on ksk-primary and a ZSK on zsk, both ECDSAP256SHA256, generated on the tokens."""
    heading("Key generation on the tokens")
    year = time.gmtime().tm_year
    for role, token, label in (
        ("ksk", "ksk-primary", f"ksk-{year}"),
        ("zsk", "zsk", f"zsk-{year}q1"),
    ):
        with Pkcs11Token(f"pkcs11:token={token}", demo.pins(token), rw=True) as tok:
            key: Pkcs11Key = tok.generate(
                label, Algorithm.ECDSAP256SHA256, ksk=role == "ksk", extractable=False
            )
            dk = key.dnskey
            print(f"{role.upper()}: {dk.describe()}")
            print(f"  on    {tok.identity.describe()}")
            print(f"  id    {key.id.hex()} (from the token's RNG), sensitive, not extractable")
            print(f"  uri   {key.spec}")
            demo.keys[role] = key.spec
            demo.dnskeys[role] = dk.to_text(demo.zone, TTL)


def stage_records(demo: Demo) -> None:
    """The DNSKEY RRset, key tags, the KSK's DS and its digest in PGP words."""
    heading("DNSKEY, key tags, DS")
    for role in ("ksk", "zsk"):
        print(demo.dnskeys[role])
    with Pkcs11Token(demo.keys["ksk"], demo.pins("ksk-primary")) as tok:
        uri = tok.uri
        ksk = tok.find(label=uri.object, id=uri.id)
        dk = ksk.dnskey
        ds256 = make_ds(demo.zone, dk, DIGEST_SHA256)
        ds384 = make_ds(demo.zone, dk, DIGEST_SHA384)
        # Prove the KSK signs: sign and (inside sign()) re-verify in software.
        ksk.sign(b"dnssec-ceremony demo")
    demo.ds = [ds256.to_text(demo.zone), ds384.to_text(demo.zone)]
    print()
    print(f"KSK key tag {dk.key_tag}")
    for line in demo.ds:
        print(line)
    print(f"DS SHA-256 digest in PGP words:\n  {pgp_words(ds256.digest)}")


def stage_cli(demo: Demo) -> None:
    """The same records through the command line, which must agree."""
    heading("The same through zonesigner")
    lab = demo.need_lab()
    listing = demo.zonesigner(
        "key", "list", "pkcs11:token=ksk-primary", "--zone", demo.zone,
        "--pin-file", str(lab.pin_file("ksk-primary")),
    )  # fmt: skip
    print(listing, end="")
    out = demo.zonesigner(
        "key", "ds", demo.keys["ksk"], "--zone", demo.zone,
        "--pin-file", str(lab.pin_file("ksk-primary")),
    )  # fmt: skip
    print(out, end="")
    if demo.ds[0] not in out.splitlines():
        raise SystemExit("demo: zonesigner key ds disagrees with the library's DS")


STAGES: list[Callable[[Demo], None]] = [stage_lab, stage_keys, stage_records, stage_cli]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: demo.py DIR   (DIR/lab is re-created)", file=sys.stderr)
        return 2
    demo = Demo(Path(args[0]).resolve())
    started = time.monotonic()
    try:
        for stage in STAGES:
            stage(demo)
    except hsmlab.LabError as exc:
        print(f"demo: lab error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # our typed errors carry an exit code
        code = getattr(exc, "exit_code", None)
        if code is None:
            raise
        print(f"demo: error: {exc}", file=sys.stderr)
        return int(code)
    heading(f"demo done in {time.monotonic() - started:.1f} s; lab in {demo.out / 'lab'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
