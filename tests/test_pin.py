"""PIN sources: file, environment variable, prompt without echo; never shown."""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from signer.errors import EXIT_INPUT, InputError
from signer.pin import PinSource, pin_options

SECRET = "pin-Zq81-secret"


def test_pin_file_first_line_stripped(tmp_path: Path) -> None:
    f = tmp_path / "pin"
    f.write_text(f"  {SECRET}  \nsecond line ignored\n")
    src = PinSource.from_options(str(f), None)
    assert src.get("token 'zsk'") == SECRET
    assert SECRET not in repr(src) and SECRET not in src.describe()


def test_pin_env_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN_PIN", SECRET)
    src = PinSource.from_options(None, "MY_TOKEN_PIN")
    assert src.get("token 'zsk'") == SECRET
    monkeypatch.delenv("MY_TOKEN_PIN")
    with pytest.raises(InputError, match=r"MY_TOKEN_PIN .* is not set"):
        src.get("token 'zsk'")


def test_resolved_hides_value_and_pickles() -> None:
    src = PinSource(_value=SECRET)
    assert SECRET not in repr(src)
    assert src.resolved("x") is src
    again = pickle.loads(pickle.dumps(src))
    assert again.get("x") == SECRET and SECRET not in repr(again)
    file_src = PinSource(pin_file="/nonexistent")
    assert file_src.with_fallback_file("/other") is file_src
    assert PinSource().with_fallback_file("/other").pin_file == "/other"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty PIN"),
        (b"\n\n", "empty PIN"),
        (b"\xff\xfe", "not UTF-8"),
        (b"x" * 300, "longer"),
    ],
)
def test_bad_pin_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    f = tmp_path / "pin"
    f.write_bytes(content)
    with pytest.raises(InputError, match=fragment):
        PinSource(pin_file=str(f)).get("t")


def test_missing_pin_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as ei:
        PinSource(pin_file=str(tmp_path / "nope")).get("t")
    assert str(tmp_path / "nope") in str(ei.value) and ei.value.exit_code == EXIT_INPUT


def test_option_conflicts() -> None:
    with pytest.raises(InputError, match="not both"):
        PinSource.from_options("a", "B")
    with pytest.raises(InputError, match="NAME"):
        PinSource.from_options(None, " ")


def test_no_tty_and_nothing_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    with pytest.raises(InputError, match="no terminal to prompt on"):
        PinSource().get("token 'zsk'")
    with pytest.raises(InputError, match="prompting is disabled"):
        PinSource(interactive=False).get("token 'zsk'")


def test_click_decorator_has_no_pin_option() -> None:
    @click.command()
    @pin_options
    def cmd(pin_file: str | None, pin_env: str | None) -> None:
        click.echo(f"{pin_file}|{pin_env}")

    r = CliRunner().invoke(cmd, ["--pin-file", "/p", "--pin-env", "V"])
    assert r.output.strip() == "/p|V"
    r = CliRunner().invoke(cmd, ["--pin", SECRET])
    assert r.exit_code == 2
    assert "--pin-file" in CliRunner().invoke(cmd, ["--help"]).output


def test_prompt_does_not_echo(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    script = tmp_path / "p.py"
    script.write_text(
        "from signer.pin import PinSource\n"
        "v = PinSource().get(\"token 'zsk'\")\n"
        "print('LEN', len(v))\n"
    )
    child = pexpect.spawn(sys.executable, [str(script)], timeout=20, encoding="utf-8")
    seen = io.StringIO()
    child.logfile_read = seen  # everything the terminal would show
    child.expect("PIN for token 'zsk': ")
    child.sendline(SECRET)
    child.expect(r"LEN (\d+)")
    assert child.match.group(1) == str(len(SECRET))
    child.expect(pexpect.EOF)
    # The terminal never showed the PIN (getpass turned echo off), only the prompt.
    assert "PIN for token 'zsk'" in seen.getvalue()
    assert SECRET not in seen.getvalue()
