"""The SoftHSM2 lab: a self-contained set of tokens in one directory.

Nothing global is touched: the lab has its own ``softhsm2.conf`` and token directory, and is
selected with ``SOFTHSM2_CONF``. User PINs are random and kept in ``pins/<token>.pin``
(mode 0600) so rehearsals and tests can run unattended; they are never printed.

Used by ``hsm-sim/lab up|down|env DIR``, by ``make demo`` and by the tests' ``lab`` fixture.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TOKENS = ("ksk-primary", "ksk-backup", "zsk")
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
MODULE_ENV = "DNSSEC_PKCS11_MODULE"


class LabError(Exception):
    pass


def find_module() -> str:
    env = os.environ.get(MODULE_ENV)
    if env and Path(env).exists():
        return env
    for cand in MODULE_CANDIDATES:
        if Path(cand).exists():
            return cand
    raise LabError(
        "SoftHSM2 PKCS#11 module not found (install the Debian package softhsm2, "
        f"or set {MODULE_ENV})"
    )


@dataclass
class Lab:
    root: Path
    module: str
    tokens: dict[str, str] = field(default_factory=dict)  # label -> serial

    @property
    def conf(self) -> Path:
        return self.root / "softhsm2.conf"

    def pin_file(self, token: str) -> Path:
        return self.root / "pins" / f"{token}.pin"

    def so_pin_file(self, token: str) -> Path:
        return self.root / "pins" / f"{token}.so-pin"

    def pin(self, token: str) -> str:
        return self.pin_file(token).read_text().strip()

    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf), MODULE_ENV: self.module}

    def uri(self, token: str, obj: str | None = None) -> str:
        u = f"pkcs11:token={token}"
        if obj:
            u += f";object={obj}"
        return u

    def apply(self) -> None:
        """Point this process (and its children) at the lab."""
        os.environ.update(self.env())

    def add_token(self, label: str) -> str:
        """Initialise a new token in a free slot; return its serial."""
        if label in self.tokens:
            raise LabError(f"token {label!r} already exists in {self.root}")
        pin = secrets.token_hex(8)
        so_pin = secrets.token_hex(8)
        for path, value in ((self.pin_file(label), pin), (self.so_pin_file(label), so_pin)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value + "\n")
        env = {**os.environ, **self.env()}
        # softhsm2-util takes PINs only on its command line; the lab is a simulator and its
        # PINs are random, throw-away values that never leave the lab directory.
        proc = subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                so_pin,
                "--pin",
                pin,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"softhsm2-util --init-token {label} failed: {proc.stderr.strip()}")
        serial = _serial_of(self, label)
        self.tokens[label] = serial
        self._save()
        return serial

    def _save(self) -> None:
        (self.root / "lab.json").write_text(
            json.dumps({"module": self.module, "tokens": self.tokens}, indent=2) + "\n"
        )

    def shell_env(self) -> str:
        lines = [f"export {k}={v}" for k, v in self.env().items()]
        for t in self.tokens:
            lines.append(f"# token {t}: user PIN in {self.pin_file(t)} (--pin-file)")
        return "\n".join(lines)


def _serial_of(lab: Lab, label: str) -> str:
    """The serial softhsm2-util shows for ``label`` (it prints Serial before Label)."""
    proc = subprocess.run(
        ["softhsm2-util", "--show-slots"],
        env={**os.environ, **lab.env()},
        capture_output=True,
        text=True,
        check=True,
    )
    serial = ""
    for line in proc.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Serial number":
            serial = value.strip()
        elif key == "Label" and value.strip() == label:
            return serial
    raise LabError(f"token {label!r} not found after initialising it")


def up(root: str | os.PathLike[str], tokens: tuple[str, ...] = DEFAULT_TOKENS) -> Lab:
    """Create a lab in ``root`` (which must not exist or be empty)."""
    r = Path(root).resolve()
    if r.exists() and any(r.iterdir()):
        raise LabError(f"{r} exists and is not empty; use 'lab down {r}' first")
    if shutil.which("softhsm2-util") is None:
        raise LabError("softhsm2-util not found (install the Debian package softhsm2)")
    (r / "tokens").mkdir(parents=True)
    (r / "pins").mkdir(mode=0o700)
    lab = Lab(r, find_module())
    lab.conf.write_text(
        "# SoftHSM2 configuration of a dnssec-ceremony lab (never the system-wide one)\n"
        f"directories.tokendir = {r / 'tokens'}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    for t in tokens:
        lab.add_token(t)
    return lab


def load(root: str | os.PathLike[str]) -> Lab:
    r = Path(root).resolve()
    meta = r / "lab.json"
    if not meta.exists():
        raise LabError(f"{r} is not a lab (no lab.json); create one with 'lab up {r}'")
    data = json.loads(meta.read_text())
    return Lab(r, data["module"], dict(data["tokens"]))


def down(root: str | os.PathLike[str]) -> None:
    r = Path(root).resolve()
    if not (r / "lab.json").exists():
        raise LabError(f"{r} is not a lab (no lab.json); refusing to delete it")
    shutil.rmtree(r)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="hsm-sim/lab",
        description="SoftHSM2 lab: self-contained PKCS#11 tokens for rehearsals and tests.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="create a lab with tokens in DIR and print its environment")
    p_up.add_argument("dir")
    p_up.add_argument(
        "--token",
        action="append",
        help="token label (repeat); default: " + ", ".join(DEFAULT_TOKENS),
    )
    p_down = sub.add_parser("down", help="remove the lab in DIR")
    p_down.add_argument("dir")
    p_env = sub.add_parser("env", help="print the environment of the lab in DIR")
    p_env.add_argument("dir")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            lab = up(args.dir, tuple(args.token) if args.token else DEFAULT_TOKENS)
            print(lab.shell_env())
        elif args.cmd == "env":
            print(load(args.dir).shell_env())
        else:
            down(args.dir)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    return 0
