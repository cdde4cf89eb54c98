"""``make demo``: the whole offline-KSK rehearsal on a fresh SoftHSM2 lab.

    .venv/bin/python hsm-sim/demo.py demo-out

1. SoftHSM2 lab tokens (``ksk-primary``, ``ksk-backup``, ``zsk``) in DIR/lab;
2. the **KSK generation ceremony** (scripts/ksk-generation.yaml, non-interactive with its
   answers file): the KSK ``ksk-2026`` is generated on ``ksk-primary`` under a quorum, its DS
   printed and copied to the transfer stick (DIR/media);
3. the DNSKEY and DS read back from the token through the library and through ``zonesigner
   key ds``, checked against the ceremony's print-out;
4. the zone operator's side: ``zonesigner key generate`` makes the ZSK on ``zsk`` and
   ``zonesigner bundles request`` writes the key signing request (KSR) for a quarter of
   bundles from today onto the stick (policy scripts/policies/example-quarter.yaml: one
   policy file declares both sides);
5. the **quarterly key signing ceremony** (scripts/quarterly-signing.yaml): the KSK is
   verified (key tag and DS of its DNSKEY on the stick, from step 2), the request is checked
   and signed with the KSK; the signed response (SKR) goes onto the stick;
6. ``zonesigner bundles import`` checks the response against the request and the KSK's DS;
7. ``zonesigner sign`` signs docs/examples/example.zone with the ZSK and the bundle valid now;
8. independent validators (BIND ``dnssec-verify``, ``ldns-verify-zone``) check the signed zone;
9. ``ceremony audit verify`` (with the seal words as copied from the screen) and ``ceremony
   audit report`` for both ceremonies; then a summary (also in DIR/SUMMARY.txt).

Each stage is a function ``stage_*(demo: Demo) -> None`` listed in ``STAGES``; a stage reads
what earlier stages left in :class:`Demo` and adds to it. Commands are shown as ``$ ...``;
their full output goes to DIR/logs/. DIR is re-created on every run (only a directory the
demo made, or an empty one, is removed). PINs come from the lab's PIN files, never argv.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import hsmlab  # noqa: E402
import yaml  # noqa: E402

from signer.bundles import textformat  # noqa: E402
from signer.bundles.policy import time_text  # noqa: E402
from signer.dnskey import DIGEST_SHA256, DIGEST_SHA384, make_ds  # noqa: E402
from signer.keys.pkcs11 import Pkcs11Token  # noqa: E402
from signer.pgpwords import pgp_words  # noqa: E402
from signer.pin import PinSource  # noqa: E402

ZONE = "example."
TTL = 3600
MARKER = ".dnssec-ceremony-demo"
POLICY = REPO / "scripts" / "policies" / "example-quarter.yaml"
ZONEFILE = REPO / "docs" / "examples" / "example.zone"
KSK_SCRIPT = "ksk-generation"
SIGNING_SCRIPT = "quarterly-signing"
KSK_LABEL = "ksk-2026"  # the label ksk-generation.yaml generates and the policy's ksk.keys name
KSK_URI = f"pkcs11:token=ksk-primary;object={KSK_LABEL}"


class DemoFailed(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Ceremony:
    name: str
    directory: Path
    ceremony_id: str = ""
    seal: str = ""
    seal_words: str = ""
    audit: list[str] = field(default_factory=list)  # `ceremony audit verify` output
    report: Path | None = None


@dataclass
class Demo:
    """What the stages share."""

    out: Path
    zone: str = ZONE
    lab: hsmlab.Lab | None = None
    keys: dict[str, str] = field(default_factory=dict)  # role ("ksk", "zsk") -> key URI
    dnskeys: dict[str, str] = field(default_factory=dict)  # role -> DNSKEY RR text
    key_tags: dict[str, int] = field(default_factory=dict)
    ds: list[str] = field(default_factory=list)  # SHA-256 first
    ds_words: str = ""
    ceremonies: dict[str, Ceremony] = field(default_factory=dict)
    request: Path | None = None
    response: Path | None = None
    bundles: str = ""
    signed: Path | None = None
    signed_sha256: str = ""
    validators: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    @property
    def media(self) -> Path:
        return self.out / "media"

    @property
    def signer_dir(self) -> Path:
        return self.out / "signer"

    @property
    def trust_anchor(self) -> Path:
        return self.signer_dir / "trust-anchor.ds"

    def need_lab(self) -> hsmlab.Lab:
        if self.lab is None:
            raise RuntimeError("the lab stage has not run")
        return self.lab

    def pins(self, token: str) -> PinSource:
        return PinSource(pin_file=str(self.need_lab().pin_file(token)), interactive=False)

    def pin_file(self, token: str) -> str:
        return str(self.need_lab().pin_file(token))

    def run(self, tool: str, *args: str, log: str, show: bool = True) -> str:
        """Run an installed tool of this project (or a system tool) with the lab's
        environment; its output goes to DIR/logs/LOG.log; returns stdout+stderr."""
        exe = Path(sys.executable).parent / tool
        cmd = [str(exe) if exe.exists() else tool, *args]
        if show:
            print("$ " + short(shlex.join([tool, *args])))
        env = {**os.environ, **self.need_lab().env()}
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        logs = self.out / "logs"
        logs.mkdir(exist_ok=True)
        text = proc.stdout + proc.stderr
        with open(logs / f"{log}.log", "a", encoding="utf-8") as fh:
            fh.write(f"$ {shlex.join([tool, *args])}\n{text}\n")
        if proc.returncode != 0:
            tail = "\n".join(text.strip().splitlines()[-15:])
            raise DemoFailed(
                f"{tool} failed (exit {proc.returncode}); full output in "
                f"{short(str(logs / (log + '.log')))}:\n{tail}",
                proc.returncode,
            )
        return text


def short(text: str) -> str:
    """Paths relative to the current directory (or the repository) for display."""
    for base in (Path.cwd(), REPO):
        text = text.replace(str(base) + "/", "")
    return text


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def say(text: str) -> None:
    print("   " + short(text).replace("\n", "\n   "))


# -- stages ------------------------------------------------------------------------------------
def stage_lab(demo: Demo) -> None:
    """A fresh DIR (an old demo directory is removed first) and SoftHSM2 lab in DIR/lab."""
    heading("1. SoftHSM2 lab")
    out = demo.out
    if out.exists():
        entries = {p.name for p in out.iterdir()}
        if MARKER not in entries and not entries <= {"lab"}:
            raise DemoFailed(
                f"{out} exists and was not made by the demo; remove it or give another directory",
                2,
            )
        if (out / "lab" / "lab.json").exists():
            hsmlab.down(out / "lab")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by hsm-sim/demo.py; re-created on every run\n")
    demo.media.mkdir()
    demo.signer_dir.mkdir()
    demo.lab = hsmlab.up(out / "lab")
    demo.lab.apply()
    for label, serial in sorted(demo.lab.tokens.items()):
        say(f"token {label:<12} serial {serial}")
    say(f"transfer stick (media): {demo.media}")


def _ceremony(demo: Demo, name: str, title: str) -> Ceremony:
    """``ceremony run`` a shipped script non-interactively (its answers file), with the site
    variables pointed at the demo's stick and policy through --set."""
    script = REPO / "scripts" / f"{name}.yaml"
    answers = REPO / "scripts" / "rehearsal" / f"{name}.answers.yaml"
    c = Ceremony(name, demo.out / "ceremonies" / name)
    sets = [f"--set=media={demo.media}"]
    if "policy" in (yaml.safe_load(script.read_text()).get("variables") or {}):
        sets.append(f"--set=policy={POLICY}")
    text = demo.run(
        "ceremony", "run", str(script), "--dir", str(c.directory), "--answers", str(answers),
        "--lab", str(demo.need_lab().root), *sets, log=name,
    )  # fmt: skip
    m = re.search(r"Transcript sealed\..*\n\s+SHA-256 ([0-9a-f]{64})\n\s+(.+)\n", text)
    if m is None:
        raise DemoFailed(f"ceremony {name}: no seal in the output")
    c.seal, c.seal_words = m.group(1), m.group(2).strip()
    first = text.splitlines()[0]
    c.ceremony_id = first.split(":", 1)[0]
    steps = len(re.findall(r"(?m)^Step \d+ ", text))
    say(f"{title}: {c.ceremony_id}, {steps} steps run and witnessed, transcript sealed")
    say(f"seal {c.seal}")
    say(f"     {c.seal_words}")
    demo.ceremonies[name] = c
    return c


def stage_ksk_ceremony(demo: Demo) -> None:
    """The KSK generation ceremony from the shipped script (it generates the KSK)."""
    heading("2. KSK generation ceremony (scripts/ksk-generation.yaml)")
    c = _ceremony(demo, KSK_SCRIPT, "KSK generation ceremony")
    printout = (c.directory / "artifacts" / "ds-printout.txt").read_text()
    ds = next((ln.strip() for ln in printout.splitlines() if " IN DS " in ln), None)
    if ds is None:
        raise DemoFailed("the ceremony's DS print-out has no DS record")
    say(f"DS print-out (copied to the stick): {ds}")
    demo.ds = [ds]
    demo.keys["ksk"] = KSK_URI


def stage_records(demo: Demo) -> None:
    """The KSK read back from the token: DNSKEY, key tag, DS (SHA-256, SHA-384), PGP words;
    it must equal the ceremony's print-out, and ``zonesigner key ds`` must agree."""
    heading("3. The KSK on the token: DNSKEY, DS, PGP words")
    with Pkcs11Token(demo.keys["ksk"], demo.pins("ksk-primary")) as tok:
        uri = tok.uri
        ksk = tok.find(label=uri.object, id=uri.id)
        ksk.sign(b"dnssec-ceremony demo")  # signs on the token; re-verified in software
        ident = tok.identity.describe()
    dk = ksk.dnskey
    ds256 = make_ds(demo.zone, dk, DIGEST_SHA256)
    ds384 = make_ds(demo.zone, dk, DIGEST_SHA384)
    if ds256.to_text(demo.zone) != demo.ds[0]:
        raise DemoFailed(f"the token's KSK gives {ds256.to_text(demo.zone)}, not the print-out")
    demo.dnskeys["ksk"] = dk.to_text(demo.zone, TTL)
    demo.key_tags["ksk"] = dk.key_tag
    demo.ds = [ds256.to_text(demo.zone), ds384.to_text(demo.zone)]
    demo.ds_words = pgp_words(ds256.digest)
    say(f"on {ident}: {dk.describe()}")
    print(demo.dnskeys["ksk"])
    print(f"KSK key tag {dk.key_tag}")
    for line in demo.ds:
        print(line)
    print(f"DS SHA-256 digest in PGP words:\n  {demo.ds_words}")
    out = demo.run(
        "zonesigner", "key", "ds", demo.keys["ksk"], "--zone", demo.zone,
        "--pin-file", demo.pin_file("ksk-primary"), log="zonesigner",
    )  # fmt: skip
    if demo.ds[0] not in out.splitlines():
        raise DemoFailed("zonesigner key ds disagrees with the library's DS")
    say("zonesigner key ds agrees; the ceremony's print-out agrees")
    demo.trust_anchor.write_text(demo.ds[0] + "\n")


def stage_request(demo: Demo) -> None:
    """The zone operator: the ZSK on its token and the request (KSR) for a quarter of bundles
    from today (00:00 UTC), written onto the transfer stick."""
    heading("4. Zone operator: ZSK and key signing request (KSR)")
    t = time.gmtime()
    label = f"zsk-{t.tm_year}q{(t.tm_mon - 1) // 3 + 1}"
    uri = f"pkcs11:token=zsk;object={label}"
    out = demo.run(
        "zonesigner", "key", "generate", uri, "-a", "13", "--zsk", "--zone", demo.zone,
        "--pin-file", demo.pin_file("zsk"), log="zonesigner",
    )  # fmt: skip
    rr = next((ln for ln in out.splitlines() if " DNSKEY 256 " in ln), "")
    demo.keys["zsk"] = uri
    if rr:
        demo.dnskeys["zsk"] = rr.strip()
        print(rr.strip())
    start = time.strftime("%Y-%m-%dT00:00:00Z", t)
    demo.request = demo.media / "ksr.txt"
    out = demo.run(
        "zonesigner", "bundles", "request", "--policy", str(POLICY), "--zsk", uri,
        "--pin-file", demo.pin_file("zsk"), "--start", start, "-o", str(demo.request),
        log="zonesigner",
    )  # fmt: skip
    wrote = next((ln for ln in out.splitlines() if ln.startswith("wrote ")), "")
    say(wrote)


def stage_signing_ceremony(demo: Demo) -> None:
    """The quarterly key signing ceremony from the shipped script: KSR in, SKR out."""
    heading("5. Key signing ceremony (scripts/quarterly-signing.yaml)")
    c = _ceremony(demo, SIGNING_SCRIPT, "Key signing ceremony")
    responses = sorted(
        p for p in (c.directory / "artifacts").glob("skr*.txt") if (demo.media / p.name).exists()
    )
    if len(responses) != 1:
        raise DemoFailed(f"expected one response on the stick, found {len(responses)}")
    demo.response = demo.media / responses[0].name
    say(f"signed response on the stick: {demo.response}")


def stage_import(demo: Demo) -> None:
    """The signer host imports the response: checked against our request and the KSK's DS."""
    heading("6. Signer: import the response (SKR)")
    assert demo.response is not None and demo.request is not None
    installed = demo.signer_dir / "skr.txt"
    out = demo.run(
        "zonesigner", "bundles", "import", "--policy", str(POLICY), "--request",
        str(demo.request), "--trust-anchor-file", str(demo.trust_anchor), "-o", str(installed),
        str(demo.response), log="zonesigner",
    )  # fmt: skip
    say(next((ln for ln in out.splitlines() if ln.startswith("accepted ")), out.strip()))
    bs = textformat.load_response(installed)
    demo.bundles = f"{len(bs.bundles)} bundles, {time_text(bs.start)} .. {time_text(bs.end)}"
    demo.response = installed


def stage_sign_zone(demo: Demo) -> None:
    """``zonesigner sign``: the example zone with the ZSK and the bundle valid now."""
    heading("7. Sign the example zone (zonesigner sign)")
    assert demo.response is not None
    demo.signed = demo.signer_dir / "example.zone.signed"
    out = demo.run(
        "zonesigner", "sign", str(ZONEFILE), "--origin", demo.zone, "--bundles",
        str(demo.response), "--zsk", demo.keys["zsk"], "--pin-file", demo.pin_file("zsk"),
        "--policy", str(POLICY), "--trust-anchor", str(demo.trust_anchor), "--verify", "full",
        "--jobs", "2", "--out", str(demo.signed),
        "--summary-json", str(demo.signer_dir / "sign-summary.json"), log="zonesigner",
    )  # fmt: skip
    say(next((ln for ln in out.splitlines() if ln.startswith("signed ")), out.strip()))
    demo.signed_sha256 = hashlib.sha256(demo.signed.read_bytes()).hexdigest()


def stage_validate(demo: Demo) -> None:
    """Independent validators on the signed zone (a missing tool is reported, not hidden)."""
    heading("8. Independent validation of the signed zone")
    assert demo.signed is not None
    checks = (
        ("dnssec-verify", ["-o", demo.zone, str(demo.signed)], "Zone fully signed"),
        ("ldns-verify-zone", [str(demo.signed)], "Zone is verified and complete"),
    )
    for tool, args, ok in checks:
        if shutil.which(tool) is None:
            line = f"{tool}: SKIPPED (not installed; `make deps` installs it)"
        else:
            text = demo.run(tool, *args, log="validators")
            if ok not in text:
                raise DemoFailed(f"{tool} did not say {ok!r}:\n{text.strip()}")
            line = f"{tool}: {ok}"
        say(line)
        demo.validators.append(line)


def stage_audit(demo: Demo) -> None:
    """``ceremony audit verify`` with the seal words as copied from the screen, and the
    one-page HTML audit report, for each ceremony."""
    heading("9. Audit review of both ceremonies")
    reports = demo.out / "reports"
    reports.mkdir(exist_ok=True)
    for c in demo.ceremonies.values():
        text = demo.run(
            "ceremony", "audit", "verify", str(c.directory), "--seal", c.seal_words,
            log="audit",
        )  # fmt: skip
        c.audit = text.strip().splitlines()
        for line in c.audit[:2]:
            say(line.strip())
        c.report = reports / f"{c.name}.html"
        demo.run(
            "ceremony", "audit", "report", str(c.directory), "--out", str(c.report), log="audit"
        )
        say(f"report: {c.report}")


def stage_summary(demo: Demo) -> None:
    """What the witnesses and the operator take home (also in DIR/SUMMARY.txt)."""
    lines = [
        f"KSK {KSK_LABEL} (key tag {demo.key_tags.get('ksk')}) on token ksk-primary",
        f"  {demo.ds[0]}",
        f"  DS digest in PGP words: {demo.ds_words}",
        f"Key bundles: {demo.bundles}",
        f"  response {short(str(demo.response))}",
        f"Signed zone: {short(str(demo.signed))}",
        f"  SHA-256 {demo.signed_sha256}",
        *(f"  {v}" for v in demo.validators),
    ]
    for c in demo.ceremonies.values():
        verdict = c.audit[0].split(": ", 1)[1] if c.audit else "not audited"
        lines += [
            f"Ceremony {c.ceremony_id}: {verdict}",
            f"  seal {c.seal_words}",
            f"  report {short(str(c.report))}",
        ]
    demo.summary = lines
    (demo.out / "SUMMARY.txt").write_text("\n".join(lines) + "\n")


STAGES: list[Callable[[Demo], None]] = [
    stage_lab,
    stage_ksk_ceremony,
    stage_records,
    stage_request,
    stage_signing_ceremony,
    stage_import,
    stage_sign_zone,
    stage_validate,
    stage_audit,
    stage_summary,
]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: demo.py DIR   (DIR is re-created)", file=sys.stderr)
        return 2
    demo = Demo(Path(args[0]).resolve())
    started = time.monotonic()
    try:
        for stage in STAGES:
            stage(demo)
    except hsmlab.LabError as exc:
        print(f"demo: lab error: {exc}", file=sys.stderr)
        return 2
    except DemoFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return exc.exit_code or 1
    except Exception as exc:  # our typed errors carry an exit code
        code = getattr(exc, "exit_code", None)
        if code is None:
            raise
        print(f"demo: error: {exc}", file=sys.stderr)
        return int(code)
    heading(f"demo done in {time.monotonic() - started:.1f} s: {short(str(demo.out))}")
    for line in demo.summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
