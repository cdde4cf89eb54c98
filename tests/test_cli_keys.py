"""`zonesigner key ...` and `zonesigner token probe` on real SoftHSM2 tokens: output, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import hsmlab
import pytest
from click.testing import CliRunner, Result

from signer.cli.main import cli
from signer.dnskey import DnsKey, DsRecord
from signer.pgpwords import from_pgp_words

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), env=env, catch_exceptions=False, prog_name="zonesigner"
    )


def pin_args(lab: hsmlab.Lab, token: str) -> list[str]:
    return ["--pin-file", str(lab.pin_file(token))]


def assert_refused(r: Result, code: int, fragment: str, lab: hsmlab.Lab | None = None) -> None:
    """Exit ``code``, one line on stderr naming the problem, no traceback, no PIN."""
    assert r.exit_code == code, (r.exit_code, r.output, r.stderr)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("zonesigner: error: ") and fragment in err, err
    assert "Traceback" not in r.output + r.stderr
    assert r.stdout == ""
    if lab is not None:
        for t in lab.tokens:
            assert lab.pin(t) not in r.output + r.stderr


def test_generate_list_show_ds(lab: hsmlab.Lab) -> None:
    r = run(
        "key",
        "generate",
        "pkcs11:token=ksk-primary;object=ksk-1",
        "-a",
        "ECDSAP256SHA256",
        "--ksk",
        "--zone",
        "example.",
        *pin_args(lab, "ksk-primary"),
    )
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    dnskey_line = next(x for x in lines if " DNSKEY " in x)
    assert dnskey_line.startswith("example. 3600 IN DNSKEY 257 3 13 ")
    dk = DnsKey.from_text(dnskey_line.split("DNSKEY", 1)[1])
    uri = next(x for x in lines if x.startswith("; uri "))[len("; uri ") :]
    assert f"serial={lab.tokens['ksk-primary']}" in uri and "object=ksk-1" in uri
    ds_line = next(x for x in lines if " DS " in x)
    ds = DsRecord.from_text(ds_line.split(" DS ", 1)[1])
    assert ds.key_tag == dk.key_tag
    # dnspython computes the same DS.
    ref = dns.dnssec.make_ds(dns.name.from_text("example."), dk.to_rdata(), "SHA256")
    assert ref.digest == ds.digest

    r = run(
        "key",
        "generate",
        "pkcs11:token=ksk-primary",
        "--label",
        "zsk-1",
        "-a",
        "ED25519",
        *pin_args(lab, "ksk-primary"),
    )
    assert r.exit_code == 0 and " DS " not in r.stdout

    r = run(
        "key", "list", "pkcs11:token=ksk-primary", "-z", "example.", *pin_args(lab, "ksk-primary")
    )
    assert r.exit_code == 0, r.stderr
    rows = [x.split() for x in r.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["ksk-1", "zsk-1"]
    ksk_row = rows[0]
    assert ksk_row[2:8] == ["ECDSAP256SHA256", "256", str(dk.key_tag), "KSK", "yes", "no"]
    assert ksk_row[8:] == ds.rdata_text().split()
    assert rows[1][5] == "ZSK" and rows[1][-1] == "-"

    r = run(
        "key",
        "list",
        "pkcs11:token=ksk-primary",
        "--json",
        "-z",
        "example.",
        *pin_args(lab, "ksk-primary"),
    )
    doc = json.loads(r.stdout)
    assert doc["token"]["serial"] == lab.tokens["ksk-primary"]
    k0 = doc["keys"][0]
    assert k0["ds_sha256"] == ds.rdata_text() and k0["sensitive"] is True
    assert k0["extractable"] is False and k0["id"] in uri.lower().replace("%", "")

    r = run("key", "show", uri, "--zone", "example.", *pin_args(lab, "ksk-primary"))
    assert r.exit_code == 0 and dnskey_line in r.stdout

    r = run(
        "key",
        "ds",
        "pkcs11:token=ksk-primary;object=ksk-1",
        "--zone",
        "example.",
        "--sha384",
        *pin_args(lab, "ksk-primary"),
    )
    assert r.exit_code == 0
    out = r.stdout.splitlines()
    assert ds_line in out
    ds384 = DsRecord.from_text(next(x for x in out if " 13 4 " in x).split(" DS ", 1)[1])
    assert ds384.digest == dns.dnssec.make_ds("example.", dk.to_rdata(), "SHA384").digest
    assert f"; key tag {dk.key_tag}" in out
    words = next(x for x in out if "PGP words" in x).split(": ", 1)[1]
    assert from_pgp_words(words) == ds.digest

    # A DS from a ZSK is refused (KEY-DS-SEP) unless --force.
    zsk = "pkcs11:token=ksk-primary;object=zsk-1"
    assert_refused(run("key", "ds", zsk, *pin_args(lab, "ksk-primary")), 1, "KEY-DS-SEP", lab)
    assert run("key", "ds", zsk, "--force", *pin_args(lab, "ksk-primary")).exit_code == 0


def test_probe_text_and_json(lab: hsmlab.Lab) -> None:
    r = run("token", "probe", "pkcs11:token=zsk")
    assert r.exit_code == 0
    assert f"serial:       {lab.tokens['zsk']}" in r.stdout
    assert "SoftHSM project" in r.stdout
    assert any(
        x.startswith("13 ECDSAP256SHA256") and "host-hash: CKM_ECDSA" in x
        for x in r.stdout.splitlines()
    )
    doc = json.loads(run("token", "probe", "pkcs11:token=zsk", "--json").stdout)
    assert doc["token"]["firmware"] and len(doc["algorithms"]) == 6


def test_refusals_exit_codes_and_one_line(lab: hsmlab.Lab, tmp_path: Path) -> None:
    pins = pin_args(lab, "zsk")
    run("key", "generate", "pkcs11:token=zsk;object=taken", "-a", "13", *pins)
    cases = [
        # duplicate label
        (
            ["key", "generate", "pkcs11:token=zsk;object=taken", "-a", "13", *pins],
            1,
            "KEY-LABEL-UNIQUE",
        ),
        # missing label
        (
            ["key", "show", "pkcs11:token=zsk;object=nope", *pins],
            3,
            "no private key with label 'nope'",
        ),
        # missing token
        (["key", "list", "pkcs11:token=nonesuch", *pins], 3, "no token matches"),
        # unsupported algorithm, unsupported size
        (
            ["key", "generate", "pkcs11:token=zsk;object=a", "-a", "DSA", *pins],
            2,
            "unsupported DNSSEC algorithm",
        ),
        (
            ["key", "generate", "pkcs11:token=zsk;object=a", "-a", "8", "-b", "512", *pins],
            2,
            "outside 1024..4096",
        ),
        (
            ["key", "generate", "pkcs11:token=zsk;object=a", "-a", "15", "-b", "512", *pins],
            2,
            "ED25519 keys are 256 bits",
        ),
        # bad URIs; pin-value refused
        (["key", "list", "token=zsk", *pins], 2, "not a PKCS#11 URI"),
        (["key", "list", "pkcs11:token=zsk?pin-value=1234", *pins], 2, "pin-value= is refused"),
        (["key", "show", "pkcs11:token=zsk", *pins], 2, "name the key with object="),
        (["key", "generate", "pkcs11:token=zsk", "-a", "13", *pins], 2, "give the new key a label"),
        # missing module
        (
            ["token", "probe", f"pkcs11:token=zsk?module-path={tmp_path}/nope.so"],
            3,
            "nope.so (module-path in the URI) does not exist",
        ),
        # PIN sources
        (
            ["key", "list", "pkcs11:token=zsk", "--pin-file", str(tmp_path / "none")],
            2,
            "cannot read PIN file",
        ),
        (
            ["key", "list", "pkcs11:token=zsk", "--pin-env", "NO_SUCH_PIN_VAR_X"],
            2,
            "NO_SUCH_PIN_VAR_X (--pin-env) is not set",
        ),
    ]
    for args, code, fragment in cases:
        assert_refused(run(*args), code, fragment, lab)


def test_wrong_pin_and_env_pin(lab: hsmlab.Lab, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pin"
    bad.write_text("0000-not-the-pin\n")
    r = run("key", "list", "pkcs11:token=zsk", "--pin-file", str(bad))
    assert_refused(r, 3, "token 'zsk'", lab)
    assert "PIN incorrect" in r.stderr and "0000-not-the-pin" not in r.stderr
    r = run(
        "key", "list", "pkcs11:token=zsk", "--pin-env", "ZSK_PIN", env={"ZSK_PIN": lab.pin("zsk")}
    )
    assert r.exit_code == 0 and lab.pin("zsk") not in r.output


def test_pin_file_in_uri_and_no_pin_on_argv(lab: hsmlab.Lab) -> None:
    uri = f"pkcs11:token=zsk?pin-source=file:{lab.pin_file('zsk')}"
    assert run("key", "list", uri).exit_code == 0
    assert run("key", "list", "pkcs11:token=zsk", "--pin", lab.pin("zsk")).exit_code == 2


def test_subprocess_no_tty_no_traceback(lab: hsmlab.Lab, tmp_path: Path) -> None:
    """The installed console script, without a terminal and without a PIN source."""
    exe = Path(sys.executable).parent / "zonesigner"
    p = subprocess.run(
        [str(exe), "key", "list", "pkcs11:token=zsk"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **lab.env()},
        check=False,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == (
        "zonesigner: error: no PIN for token 'zsk': no terminal to prompt on; "
        "use --pin-file PATH or --pin-env VAR"
    )


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        (
            "bad.pem",
            b"-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
            "not a valid PEM private key",
        ),
        (
            "Kexample.+013+12345.private",
            b"Private-key-format: v1.3\nAlgorithm 13\n",
            "expected 'Name: value'",
        ),
        (
            "Kexample.+013+12346.private",
            b"Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\n",
            "lacks field PrivateKey",
        ),
    ],
)
def test_malformed_key_files(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    from signer.errors import InputError
    from signer.keys.loader import open_signing_key

    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(InputError) as ei:
        open_signing_key(str(f))
    assert str(f) in str(ei.value) and fragment in str(ei.value)
    assert ei.value.exit_code == 2 and "\n" not in str(ei.value)


def test_soft_key_warning_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from signer.algorithms import Algorithm
    from signer.keys import loader
    from signer.keys.soft import SOFT_KEY_WARNING, SoftKey

    pem = tmp_path / "k.pem"
    pem.write_bytes(SoftKey.generate(Algorithm.ED25519, ksk=False).to_pem())
    monkeypatch.setattr(loader, "_warned", False)
    loader.open_signing_key(str(pem), warn=False)  # a worker: its parent warned already
    assert SOFT_KEY_WARNING not in capsys.readouterr().err
    k1 = loader.open_signing_key(str(pem))
    k2 = loader.open_signing_key(str(pem), flags=257)
    assert k1.dnskey.flags == 256 and k2.dnskey.flags == 257
    assert capsys.readouterr().err.count(SOFT_KEY_WARNING) == 1


def test_help_reads_like_a_man_page() -> None:
    for args in (
        ["key", "--help"],
        ["key", "generate", "--help"],
        ["key", "list", "--help"],
        ["key", "ds", "--help"],
        ["token", "probe", "--help"],
    ):
        r = run(*args)
        assert r.exit_code == 0 and "Exit codes:" in r.stdout and "pkcs11:token=" in r.stdout
    assert "--pin-file" in run("key", "list", "--help").stdout
    dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, "192.0.2.1")  # dnspython loaded
