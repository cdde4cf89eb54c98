"""`ceremony audit report`: one self-contained page, rendered by a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import auditkit

from ceremony import coverage as cov
from ceremony import report
from ceremony import transcript as tr

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium missing: `make test` installs the Debian package chromium")


def browse(page: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1280,2000",
            *mode,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=60,
        cwd=tmp,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, auditkit.Built]:
    base = tmp_path_factory.mktemp("report")
    built = auditkit.build(base / "cer", exception_at=2)
    out = base / "report.html"
    report.render_report(built.dir, out)
    return out, built


def test_report_is_self_contained(rendered: tuple[Path, auditkit.Built]) -> None:
    out, built = rendered
    html = out.read_text()
    # No external resource of any kind: no scripts, links, remote images or fonts.
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html)
    assert "@import" not in html and "url(" not in html
    for section in ("summary", "seal", "participants", "events", "timeline", "exceptions"):
        assert f'id="{section}"' in html
    assert 'id="artifacts"' in html and 'id="coverage"' in html
    assert built.seal in html.replace(" ", "")
    assert "Audit verified" in html
    assert "Walter Witness" in html and "Crypto Officer" in html
    assert "the last digit is smudged" in html  # the exception, highlighted
    assert 'id="exception-' in html
    assert "artifacts/skr.txt" in html
    assert html.count('class="bundle"') == 9  # one bar per bundle of the response


def test_report_renders_in_headless_chromium(
    rendered: tuple[Path, auditkit.Built], tmp_path: Path
) -> None:
    out, _built = rendered
    shot = tmp_path / "shot.png"
    r = browse(out, tmp_path, f"--screenshot={shot}")
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert shot.is_file()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    # A blank page compresses to a few KB; ours has text, colour and a chart.
    assert len(data) > 60_000, len(data)
    dom = browse(out, tmp_path, "--dump-dom").stdout.decode()
    for needle in (
        'id="timeline"',
        'id="exceptions"',
        'id="coverage"',
        "Participants and roles",
        "Bundle validity coverage",
        "Hand-overs overlapping",
        "Seal",
    ):
        assert needle in dom, needle
    assert "<svg" in dom and 'class="coverage"' in dom


def test_failed_audit_still_reports_the_failure(tmp_path: Path) -> None:
    built = auditkit.build(tmp_path / "cer")
    skr = built.dir / "artifacts" / "skr.txt"
    skr.write_bytes(skr.read_bytes().replace(b"example.", b"exampl3.", 1))
    out = tmp_path / "r.html"
    report.render_report(built.dir, out)
    html = out.read_text()
    assert "Audit FAILED" in html and "AUDIT-ARTIFACT" in html
    assert 'class="verdict bad"' in html


def test_report_of_a_missing_step_and_unacknowledged_exception(tmp_path: Path) -> None:
    built = auditkit.build(tmp_path / "cer", omit=4, exception_at=2, ack=False)
    out = tmp_path / "r.html"
    report.render_report(built.dir, out)
    html = out.read_text()
    assert 'class="step missing"' in html
    assert "NOT ACKNOWLEDGED" in html
    assert "4/5" in html


def test_report_of_a_broken_chain_still_renders(tmp_path: Path) -> None:
    built = auditkit.build(tmp_path / "cer")
    path = built.dir / tr.TRANSCRIPT_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    rec = json.loads(lines[3])
    rec["person"] = "Mallory"
    lines[3] = tr.canonical_json(rec) + b"\n"
    path.write_bytes(b"".join(lines))
    out = tmp_path / "r.html"
    report.render_report(built.dir, out)
    assert "AUDIT-CHAIN" in out.read_text()


def test_coverage_finds_gaps_and_overlaps() -> None:
    day = cov.DAY
    spans = [
        cov.Span("a", 0, 15 * day),
        cov.Span("b", 10 * day, 25 * day),
        cov.Span("c", 30 * day, 40 * day),  # a 5-day gap before it
    ]
    c = cov.compute(spans)
    assert [(s.start // day, s.end // day, s.depth) for s in c.segments] == [
        (0, 10, 1),
        (10, 15, 2),
        (15, 25, 1),
        (25, 30, 0),
        (30, 40, 1),
    ]
    assert len(c.gaps) == 1 and c.gaps[0].days == 5
    assert c.handovers == (("a", "b", 5 * day), ("b", "c", -5 * day))
    assert c.overlapping_handovers == 1 and c.min_overlap_days == -5
    svg = cov.svg(c, marker=-2 * day)
    assert svg.count('class="bundle"') == 3
    assert 'class="seg gap"' in svg and 'class="seg overlap"' in svg
    assert "ceremony" in svg  # the marker is close enough to be drawn
    assert "ceremony" not in cov.svg(c, marker=-400 * day)


def test_report_input_errors(tmp_path: Path) -> None:
    from signer.errors import InputError

    with pytest.raises(InputError):
        report.render_report(tmp_path / "nowhere", tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        report.render_report(tmp_path / "empty", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
