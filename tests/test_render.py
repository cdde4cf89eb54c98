"""``ceremony render``: the printable script in HTML and Markdown from the same plan."""

from __future__ import annotations

import html.parser
import subprocess
import sys
from pathlib import Path

import pytest

from ceremony import plan as P
from ceremony.render import render_text
from signer.pgpwords import pgp_words

DATA = Path(__file__).parent / "data" / "ceremony"
CEREMONY = str(Path(sys.executable).parent / "ceremony")


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_script_has_steps_roles_blanks_hash_and_signoff(fmt: str) -> None:
    plan = P.load(DATA / "mini.yaml")
    text = render_text(plan, fmt)
    assert plan.sha256 in text
    assert pgp_words(bytes.fromhex(plan.sha256)) in text
    for head in ("Initial", "Time", "Sign-off", "Witness"):
        assert head in text
    for person in plan.roster:
        assert person.name in text
    assert "Bag number read aloud" in text  # a blank declared by a step
    assert "SHA-256 (first and last 4 PGP words)" in text  # a blank declared by an action
    assert "Minimal rehearsal ceremony" in text  # a template filled from metadata
    assert "(steps.bag.number)" in text  # a run-time value shown as a blank
    assert "TEB-100" in text and "serial 0001" in text
    if fmt == "md":
        rows = [
            ln
            for ln in text.splitlines()
            if ln.startswith("| ") and ln.split("|")[1].strip().isdigit()
        ]
        assert [int(r.split("|")[1]) for r in rows] == [1, 2, 3, 4, 5, 6]
        assert all(r.count("|") == 7 for r in rows)  # newlines/pipes in params do not break rows
    else:
        ids: list[str] = []

        class Collect(html.parser.HTMLParser):
            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                for k, v in attrs:
                    if k == "id" and v and v.startswith("step-"):
                        ids.append(v)

        Collect().feed(text)
        assert ids == [f"step-{i}" for i in range(1, 7)]


def test_html_escapes_plan_text(tmp_path: Path) -> None:
    src = (
        (DATA / "mini.yaml")
        .read_text()
        .replace("Place the token in bag", "Place <b>the</b> token & bag")
    )
    p = tmp_path / "p.yaml"
    p.write_text(src)
    text = render_text(P.load(p), "html")
    assert "Place &lt;b&gt;the&lt;/b&gt; token &amp; bag" in text


def test_cli_render_and_refusal(tmp_path: Path) -> None:
    out = tmp_path / "s.html"
    proc = subprocess.run(
        [CEREMONY, "render", str(DATA / "mini.yaml"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (DATA / "mini.yaml")
        .read_text()
        .replace("  place: Test room", "  place: Test room\n  extra: 1")
    )
    out2 = tmp_path / "s2.md"
    proc = subprocess.run(
        [CEREMONY, "render", str(bad), "--format", "md", "--out", str(out2)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{bad}:9: " in proc.stderr and "unknown key 'extra'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out2.exists()
