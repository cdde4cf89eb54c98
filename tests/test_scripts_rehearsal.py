"""The shipped ceremony scripts: each lints, renders, and rehearses on SoftHSM2 then audits.

A rehearsal runs the script as shipped, through `ceremony run --answers ... --lab ...`, with
only the site variables pointed at scratch places (the media mount point, the policy file on
the ceremony DVD); then `verify_ceremony_dir` must pass and the report must render.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ceremony import actions, audit, report
from ceremony import plan as plan_mod
from ceremony import transcript as T
from ceremony.render import render_plan

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
REHEARSAL = SCRIPTS / "rehearsal"
POLICIES = SCRIPTS / "policies"
SHIPPED = sorted(p.name for p in SCRIPTS.glob("*.yaml"))
CEREMONY = REPO / ".venv" / "bin" / "ceremony"


def _cmd() -> list[str]:
    if CEREMONY.exists():
        return [str(CEREMONY)]
    return [sys.executable, "-c", "from ceremony.cli import main; main()"]


def _actions_used(path: Path) -> set[str]:
    data = yaml.safe_load(path.read_text())
    return {
        str(step["action"])
        for sec in data["sections"]
        for step in sec["steps"]
        if isinstance(step, dict) and "action" in step
    }


def _need_actions(path: Path) -> None:
    missing = sorted(_actions_used(path) - set(actions.REGISTRY))
    if missing:
        pytest.skip(f"{path.name} needs action(s) not registered yet: {', '.join(missing)}")


def test_the_four_scripts_are_shipped_with_answers() -> None:
    assert SHIPPED == [
        "emergency-9-months.yaml",
        "ksk-generation.yaml",
        "quarterly-signing.yaml",
        "zsk-and-bundles.yaml",
    ]
    for name in SHIPPED:
        assert (REHEARSAL / name.replace(".yaml", ".answers.yaml")).is_file(), name


@pytest.mark.parametrize("name", SHIPPED)
def test_script_lints(name: str) -> None:
    path = SCRIPTS / name
    _need_actions(path)
    p = plan_mod.load(path)  # strict schema + lint (role separation, quorum, staffing)
    assert p.metadata.zone == "example."
    # Every blank the script leaves has an answer for the rehearsal, and nothing else does.
    answers = yaml.safe_load((REHEARSAL / name.replace(".yaml", ".answers.yaml")).read_text())
    given = {int(k): set((v or {}).get("blanks", {})) for k, v in answers.get("steps", {}).items()}
    for step in p.steps:
        wanted = {b.name for b in step.record}
        assert given.get(step.number, set()) == wanted, (name, step.number, wanted)
    assert set(given) <= {s.number for s in p.steps}
    if any(s.action == "quorum-login" for s in p.steps):
        assert p.quorum is not None
        assert len(answers["quorum"]) == p.quorum.m
    # The emergency variant: minimum crew and nine months.
    if name == "emergency-9-months.yaml":
        assert len(p.roster) == 4 and p.quorum is not None and p.quorum.m == p.quorum.n == 2


@pytest.mark.parametrize("name", SHIPPED)
def test_script_renders(name: str, tmp_path: Path) -> None:
    path = SCRIPTS / name
    _need_actions(path)
    p = plan_mod.load(path)
    for fmt in ("html", "md"):
        out = tmp_path / f"script.{fmt}"
        digest = render_plan(p, fmt, out)
        text = out.read_text()
        assert len(digest) == 64
        assert p.metadata.id in text and p.metadata.title.split()[0] in text
        assert str(len(p.steps)) in text


def test_policies_load() -> None:
    from signer.bundles.policy import load_policy

    quarter = load_policy(POLICIES / "example-quarter.yaml")
    nine = load_policy(POLICIES / "example-9-months.yaml")
    assert quarter.window is not None and nine.window is not None
    assert quarter.window.length == 90 * 86400
    assert nine.window.length == 270 * 86400


def _site_copy(name: str, tmp: Path) -> tuple[Path, Path]:
    """The script with its site variables pointed at scratch places; returns (plan, media)."""
    media = tmp / "media"
    media.mkdir()
    text = (SCRIPTS / name).read_text()
    text, n = re.subn(r"(?m)^  media: /media/usb0$", f"  media: {media}", text)
    assert n == 1, "the script's media variable moved"
    text = re.sub(
        r"(?m)^  policy: /etc/dnssec-ceremony/(\S+)\s.*$",
        lambda m: f"  policy: {POLICIES / m.group(1)}",
        text,
    )
    out = tmp / name
    out.write_text(text)
    return out, media


def _rehearse(name: str, tmp: Path, lab_root: Path) -> Path:
    plan_copy, _media = _site_copy(name, tmp)
    return _run(plan_copy, name, tmp, lab_root)


def _run(plan_copy: Path, name: str, tmp: Path, lab_root: Path) -> Path:
    cdir = tmp / "ceremony"
    r = subprocess.run(
        [
            *_cmd(),
            "run",
            str(plan_copy),
            "--dir",
            str(cdir),
            "--answers",
            str(REHEARSAL / name.replace(".yaml", ".answers.yaml")),
            "--lab",
            str(lab_root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr
    return cdir


def test_ksk_generation_rehearsal(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Through scripts/rehearsal/rehearse.py, as `make demo` runs it: run, verify, report."""
    name = "ksk-generation.yaml"
    _need_actions(SCRIPTS / name)
    tool = [sys.executable, str(REHEARSAL / "rehearse.py"), "ksk-generation"]
    r = subprocess.run(
        [*tool, "--lab", str(lab.root), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    report_path = tmp_path / "ksk-generation-report.html"
    assert f"audit report: {report_path}" in r.stdout
    cdir = tmp_path / "ceremony"
    result = audit.verify_ceremony_dir(cdir)
    assert result.steps == 18 and result.exceptions == 1 and result.quorum_logins == 1
    # The KSK exists on the token, its DS is on the print-out and on the stick.
    printout = (cdir / "artifacts" / "ds-printout.txt").read_text()
    assert " DS " in printout and "ksk-2026" in printout
    assert (tmp_path / "media" / "ds-printout.txt").read_bytes() == (
        cdir / "artifacts" / "ds-printout.txt"
    ).read_bytes()
    keys = audit.recorded_ksks(audit._read_records(cdir)[0])
    assert len(keys) == 1 and keys[0].is_sep
    assert f"key tag {keys[0].key_tag}" in printout
    html = report_path.read_text()
    assert "Audit verified" in html and "KSK generation ceremony" in html
    # The plan that ran is the script with the site variables set (ceremony run --set).
    ran = (cdir / "plan.yaml").read_text()
    assert f'media: "{tmp_path / "media"}"' in ran and ran != (SCRIPTS / name).read_text()
    # Running it again resumes a sealed ceremony: nothing is generated twice.
    again = subprocess.run(
        [
            *_cmd(),
            "run",
            str(cdir / "plan.yaml"),
            "--dir",
            str(cdir),
            "--answers",
            str(REHEARSAL / name.replace(".yaml", ".answers.yaml")),
            "--lab",
            str(lab.root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert again.returncode == 0 and "Traceback" not in again.stderr
    assert "complete and sealed" in again.stdout
    assert audit.verify_ceremony_dir(cdir).seal == result.seal
    # A site variable the script does not have is an input error.
    bad = subprocess.run(
        [*tool, "--lab", str(lab.root), "--out", str(tmp_path / "x"), "--set", "nope=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "no variable 'nope'" in bad.stderr


def _zonesigner() -> list[str]:
    exe = REPO / ".venv" / "bin" / "zonesigner"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from signer.cli.main import main; main()"]


def _ok(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
    return r.stdout


def _prepare_request(lab_root: Path, media: Path, policy: str, request: str) -> None:
    """What happens before a signing ceremony: the KSK exists (ksk-generation.yaml made it and
    copied its DNSKEY file onto the stick), and the zone operator planned the window and wrote
    the KSR (+ manifest) onto the stick."""
    pins = lab_root / "pins"
    generated = _ok(
        [
            *_zonesigner(),
            "key",
            "generate",
            "pkcs11:token=ksk-primary;object=ksk-2026",
            "-a",
            "13",
            "--ksk",
            "--zone",
            "example.",
            "--pin-file",
            str(pins / "ksk-primary.pin"),
        ]
    )
    (dnskey,) = [ln for ln in generated.splitlines() if " DNSKEY 257 " in ln]
    (media / "ksk-2026.dnskey").write_text(dnskey + "\n")
    _ok(
        [
            *_zonesigner(),
            "key",
            "generate",
            "pkcs11:token=zsk;object=zsk-rehearsal",
            "-a",
            "13",
            "--zsk",
            "--zone",
            "example.",
            "--pin-file",
            str(pins / "zsk.pin"),
        ]
    )
    start = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() + 86400))
    _ok(
        [
            *_zonesigner(),
            "bundles",
            "request",
            "--policy",
            str(POLICIES / policy),
            "--zsk",
            "pkcs11:token=zsk;object=zsk-rehearsal",
            "--pin-file",
            str(pins / "zsk.pin"),
            "--start",
            start,
            "-o",
            str(media / request),
        ]
    )


SIGNING = {
    # script: (policy, request file on the stick, bundles expected)
    "quarterly-signing.yaml": ("example-quarter.yaml", "ksr.txt", 9),
    "emergency-9-months.yaml": ("example-9-months.yaml", "ksr-9-months.txt", 27),
}


@pytest.mark.parametrize("name", sorted(SIGNING))
def test_signing_rehearsal(name: str, lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _need_actions(SCRIPTS / name)
    policy, request, bundles = SIGNING[name]
    plan_copy, media = _site_copy(name, tmp_path)
    _prepare_request(lab.root, media, policy, request)
    cdir = _run(plan_copy, name, tmp_path, lab.root)
    result = audit.verify_ceremony_dir(cdir)
    assert len(result.responses) == 1 and result.responses[0].bundles == bundles
    # The KSK was made before (by zonesigner here); the script verifies it before signing
    # (print-ds of its DNSKEY on the stick, compared with the published DS), so sign-request
    # recognises the key on the token and nothing warns.
    records = T.load(cdir)
    (ds_step,) = [
        r for r in records if r.event == "action-completed" and r.data["action"] == "print-ds"
    ]
    (signed,) = [
        r for r in records if r.event == "action-completed" and r.data["action"] == "sign-request"
    ]
    assert ds_step.step == signed.step - 1
    assert f"key tag {result.responses[0].ksk_tags[0]}" in ds_step.data["summary"]
    assert result.warnings == ()
    assert not [r for r in records if r.event == "action-completed" and r.data.get("warnings")]
    out = tmp_path / "report.html"
    report.render_report(cdir, out)
    html = out.read_text()
    assert html_has_chart(html, bundles)
    assert 'class="warning"' not in html


def test_zsk_and_bundles_rehearsal(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = "zsk-and-bundles.yaml"
    _need_actions(SCRIPTS / name)
    cdir = _rehearse(name, tmp_path, lab.root)
    result = audit.verify_ceremony_dir(cdir)
    assert len(result.responses) == 1 and result.responses[0].bundles >= 9
    assert result.warnings == ()  # the KSK made in this ceremony signed the response


def html_has_chart(html: str, bundles: int) -> bool:
    return "Audit verified" in html and html.count('class="bundle"') == bundles
