"""Rehearse a shipped ceremony script on the SoftHSM2 lab, then audit it and write the report.

    .venv/bin/python scripts/rehearsal/rehearse.py ksk-generation --lab LAB --out DIR \\
        [--set NAME=VALUE ...]

The script runs as shipped, non-interactively (its answers file in scripts/rehearsal/), with
only its site variables changed through ``ceremony run --set``: ``media`` -> DIR/media, a
``policy`` under /etc/dnssec-ceremony/ -> the same file in scripts/policies/, and any
``--set NAME=VALUE`` given here. The effective plan is DIR/ceremony/plan.yaml. Then ``ceremony audit verify`` and ``ceremony audit report`` run on the ceremony directory
(DIR/ceremony); the report's path and the seal are printed. Exit code: the first failing
command's (0 when the run, the audit and the report all succeed). ``make demo`` uses this.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
SCRIPTS = REPO / "scripts"
POLICIES = SCRIPTS / "policies"
ETC = "/etc/dnssec-ceremony/"


def site_sets(script: Path, out: Path, sets: dict[str, str]) -> dict[str, str]:
    """The ``--set`` values for a rehearsal: the media mount point and the policy file."""
    data = yaml.safe_load(script.read_text(encoding="utf-8")) or {}
    variables = data.get("variables") or {}
    sets = dict(sets)
    if "media" in variables:
        sets.setdefault("media", str(out / "media"))
    policy = variables.get("policy")
    if isinstance(policy, str) and policy.startswith(ETC):
        sets.setdefault("policy", str(POLICIES / policy[len(ETC) :]))
    return sets


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
    sets = site_sets(script, out, sets)
    cdir = out / "ceremony"
    report = out / f"{script.stem}-report.html"
    bindir = Path(sys.executable).parent
    ceremony = str(bindir / "ceremony") if (bindir / "ceremony").exists() else "ceremony"
    env = {**os.environ, **lab_env(args.lab.resolve())}
    for cmd in (
        [ceremony, "run", str(script), "--dir", str(cdir), "--answers", str(answers),
         "--lab", str(args.lab.resolve()), *(f"--set={k}={v}" for k, v in sets.items())],
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
