"""Rehearse a shipped ceremony script on the SoftHSM2 lab, then audit it and write the report.

    .venv/bin/python scripts/rehearsal/rehearse.py ksk-generation --lab LAB --out DIR \\
        [--set NAME=VALUE ...]

The script runs as shipped, non-interactively (its answers file in scripts/rehearsal/), with
only its site variables changed: ``media`` -> DIR/media, a ``policy`` under
/etc/dnssec-ceremony/ -> the same file in scripts/policies/, and any ``--set NAME=VALUE``.
Then ``ceremony audit verify`` and ``ceremony audit report`` run on the ceremony directory
(DIR/ceremony); the report's path and the seal are printed. Exit code: the first failing
command's (0 when the run, the audit and the report all succeed). ``make demo`` uses this.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SCRIPTS = REPO / "scripts"
POLICIES = SCRIPTS / "policies"


def site_copy(script: Path, out: Path, sets: dict[str, str]) -> Path:
    """The script with its site variables replaced (each must exist in ``variables:``)."""
    text = script.read_text(encoding="utf-8")
    sets = dict(sets)
    sets.setdefault("media", str(out / "media"))
    m = re.search(r"(?m)^  policy: /etc/dnssec-ceremony/(\S+)", text)
    if m and "policy" not in sets:
        sets["policy"] = str(POLICIES / m.group(1))
    for name, value in sets.items():
        text, n = re.subn(
            rf"(?m)^  {re.escape(name)}: .*$",
            lambda _m, name=name, value=value: f"  {name}: {json.dumps(value)}",
            text,
        )
        if n != 1:
            raise ValueError(f"{script.name} has no variable {name!r}")
    copy = out / script.name
    copy.write_text(text, encoding="utf-8")
    return copy


def lab_env(lab: Path) -> dict[str, str]:
    meta = json.loads((lab / "lab.json").read_text())
    return {"SOFTHSM2_CONF": str(lab / "softhsm2.conf"), "DNSSEC_PKCS11_MODULE": meta["module"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("script", help="a script in scripts/ (name with or without .yaml) or a path")
    ap.add_argument(
        "--lab", required=True, type=Path, help="SoftHSM2 lab directory (hsm-sim/lab up)"
    )
    ap.add_argument("--out", required=True, type=Path, help="where the rehearsal goes (new)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)
    script = Path(args.script)
    if not script.exists():
        script = SCRIPTS / (args.script if args.script.endswith(".yaml") else f"{args.script}.yaml")
    if not script.is_file():
        print(f"rehearse: no script {args.script!r}", file=sys.stderr)
        return 2
    answers = SCRIPTS / "rehearsal" / script.name.replace(".yaml", ".answers.yaml")
    if not answers.is_file():
        print(f"rehearse: no answers file {answers}", file=sys.stderr)
        return 2
    if not (args.lab / "lab.json").is_file():
        print(f"rehearse: {args.lab} is not a SoftHSM2 lab (hsm-sim/lab up DIR)", file=sys.stderr)
        return 2
    sets: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"rehearse: --set wants NAME=VALUE, not {item!r}", file=sys.stderr)
            return 2
        sets[name] = value
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "media").mkdir(exist_ok=True)
    try:
        plan = site_copy(script, out, sets)
    except ValueError as exc:
        print(f"rehearse: {exc}", file=sys.stderr)
        return 2
    cdir = out / "ceremony"
    report = out / f"{script.stem}-report.html"
    bindir = Path(sys.executable).parent
    ceremony = str(bindir / "ceremony") if (bindir / "ceremony").exists() else "ceremony"
    env = {**os.environ, **lab_env(args.lab.resolve())}
    for cmd in (
        [ceremony, "run", str(plan), "--dir", str(cdir), "--answers", str(answers),
         "--lab", str(args.lab.resolve())],
        [ceremony, "audit", "verify", str(cdir)],
        [ceremony, "audit", "report", str(cdir), "--out", str(report)],
    ):  # fmt: skip
        print("$ " + " ".join(cmd[:2] + [c.replace(str(REPO) + "/", "") for c in cmd[2:]]))
        rc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, check=False).returncode
        if rc != 0:
            return rc
    print(f"rehearsal of {script.name}: ceremony directory {cdir}")
    print(f"audit report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
