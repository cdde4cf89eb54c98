"""``zonesigner key ...`` and ``zonesigner token ...``: keys on PKCS#11 tokens.

Exit codes: 0 ok; 1 refused by a check (KEY-LABEL-UNIQUE: the label exists already,
KEY-FIND-UNIQUE: a URI selects several keys, KEY-DS-SEP: DS of a non-SEP key);
2 input (bad URI, algorithm, size, PIN source); 3 token (module, token, PIN, key not found,
mechanism missing, bad signature).
"""

from __future__ import annotations

import json
from typing import Any

import click
import dns.name

from signer.algorithms import Algorithm
from signer.cli.common import EXIT_CODES_HELP
from signer.dnskey import DIGEST_SHA256, DIGEST_SHA384, DnsKey, make_ds
from signer.errors import InputError
from signer.keys.pkcs11 import KeyInfo, Pkcs11Key, Pkcs11Token
from signer.keys.uri import Pkcs11Uri, parse_pkcs11_uri
from signer.pgpwords import pgp_words
from signer.pin import PinSource, pin_options

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

KEY_EPILOG = (
    """\b
Key URIs (RFC 7512):
  pkcs11:token=zsk                         the token labelled 'zsk'
  pkcs11:token=zsk;object=zsk-2026q1       the key labelled 'zsk-2026q1' on it
  pkcs11:token=zsk;id=%01%02...            the key with that CKA_ID
  ...?module-path=/usr/lib/softhsm/libsofthsm2.so   the PKCS#11 module to load
Without module-path the module is $DNSSEC_PKCS11_MODULE, else SoftHSM2.
pin-value= is refused: PINs come from --pin-file, --pin-env or the prompt.

"""
    + EXIT_CODES_HELP
)


def _zone(text: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except Exception as exc:
        raise InputError(f"--zone {text!r} is not a domain name: {exc}") from None


def _uri(text: str) -> Pkcs11Uri:
    return parse_pkcs11_uri(text)


def _pins(pin_file: str | None, pin_env: str | None) -> PinSource:
    return PinSource.from_options(pin_file, pin_env)


def _open_key(
    uri_text: str, pin_file: str | None, pin_env: str | None
) -> tuple[Pkcs11Token, Pkcs11Key]:
    uri = _uri(uri_text)
    if uri.object is None and uri.id is None:
        raise InputError(f"{uri_text}: name the key with object=LABEL and/or id=%XX in the URI")
    token = Pkcs11Token(uri, _pins(pin_file, pin_env))
    try:
        return token, token.find(label=uri.object, id=uri.id)
    except BaseException:
        token.close()
        raise


def _role(dk: DnsKey) -> str:
    return dk.role


def _ds_lines(zone: dns.name.Name, dk: DnsKey, sha384: bool, force: bool) -> list[str]:
    ds256 = make_ds(zone, dk, DIGEST_SHA256, force=force)
    lines = [ds256.to_text(zone)]
    if sha384:
        lines.append(make_ds(zone, dk, DIGEST_SHA384, force=force).to_text(zone))
    return lines


# -- key ---------------------------------------------------------------------------------------
@click.group(name="key", context_settings=CONTEXT, epilog=KEY_EPILOG)
def key() -> None:
    """Generate, list and show DNSSEC keys on a PKCS#11 token; print DS records.

    Keys are generated on the token (sensitive, not extractable, CKA_ID from the token's
    random number generator) and never leave it. Next to each key pair a public data
    object records its DNSKEY flags and algorithm, so a KSK opens as a KSK again.
    """


@key.command("generate", context_settings=CONTEXT, epilog=KEY_EPILOG)
@click.argument("uri", metavar="TOKEN-URI")
@click.option(
    "-a",
    "--algorithm",
    "algorithm",
    required=True,
    metavar="ALG",
    help="DNSSEC algorithm, by number or name: 8 RSASHA256, 10 RSASHA512, "
    "13 ECDSAP256SHA256, 14 ECDSAP384SHA384, 15 ED25519, 16 ED448.",
)
@click.option(
    "-b", "--bits", type=int, default=None, help="RSA modulus size (1024..4096, default 2048)."
)
@click.option(
    "--ksk/--zsk", default=False, help="Key-signing key (flags 257, SEP) or zone-signing key (256)."
)
@click.option(
    "-l",
    "--label",
    default=None,
    help="CKA_LABEL of the new key (or object= in the URI). Must not exist on the token.",
)
@click.option(
    "--extractable",
    is_flag=True,
    help="Allow the key to be wrapped out of the token (default: never; tests only).",
)
@click.option("-z", "--zone", default=".", show_default=True, help="Owner name of the DNSKEY/DS.")
@click.option("--ttl", type=int, default=3600, show_default=True, help="TTL of the printed RRs.")
@pin_options
def generate_cmd(
    uri: str,
    algorithm: str,
    bits: int | None,
    ksk: bool,
    label: str | None,
    extractable: bool,
    zone: str,
    ttl: int,
    pin_file: str | None,
    pin_env: str | None,
) -> None:
    """Generate a key pair on the token named by TOKEN-URI.

    Prints the new key's URI (use it with 'key show', 'key ds' and the signer), its DNSKEY
    record and key tag, and for a KSK its DS record. Refuses a label the token already uses
    (KEY-LABEL-UNIQUE, exit 1) and an algorithm the token cannot do (exit 3).

    \b
    Example:
      zonesigner key generate 'pkcs11:token=ksk-primary;object=ksk-2026' \\
          --algorithm ECDSAP256SHA256 --ksk --zone example. --pin-file ksk.pin
    """
    u = _uri(uri)
    alg = Algorithm.parse(algorithm)
    if label is not None and u.object is not None and label != u.object:
        raise InputError(f"--label {label!r} and object={u.object!r} in the URI disagree")
    name = label if label is not None else u.object
    if name is None:
        raise InputError("give the new key a label: --label LABEL or object=LABEL in the URI")
    if u.id is not None:
        raise InputError("id= is chosen by the token's random number generator; remove it")
    owner = _zone(zone)
    with Pkcs11Token(u.token_only(), _pins(pin_file, pin_env), rw=True) as tok:
        k = tok.generate(name, alg, bits, ksk=ksk, extractable=extractable)
        dk = k.dnskey
        click.echo(f"; generated {dk.describe()}")
        click.echo(f"; on {tok.identity.describe()}")
        click.echo(f"; label {k.label}  CKA_ID {k.id.hex()}")
        click.echo(f"; uri {k.spec}")
        click.echo(dk.to_text(owner, ttl))
        if dk.is_sep:
            for line in _ds_lines(owner, dk, False, False):
                click.echo(line)


def _info_dict(i: KeyInfo, owner: dns.name.Name, spec: str) -> dict[str, Any]:
    d: dict[str, Any] = {
        "label": i.label,
        "id": i.id.hex(),
        "uri": spec,
        "algorithm": None if i.algorithm is None else int(i.algorithm),
        "algorithm_name": None if i.algorithm is None else i.algorithm.name,
        "bits": i.bits,
        "key_tag": i.key_tag,
        "flags": None if i.dnskey is None else i.dnskey.flags,
        "role": None if i.dnskey is None else i.dnskey.role,
        "role_recorded": i.role_recorded,
        "dnskey": None if i.dnskey is None else i.dnskey.rdata_text(),
        "ds_sha256": None,
        "sensitive": i.sensitive,
        "extractable": i.extractable,
        "always_sensitive": i.always_sensitive,
        "never_extractable": i.never_extractable,
        "local": i.local,
        "has_private": i.has_private,
        "has_public": i.has_public,
        "problem": i.problem,
    }
    if i.dnskey is not None and i.dnskey.is_sep and not i.dnskey.is_revoked:
        d["ds_sha256"] = make_ds(owner, i.dnskey, DIGEST_SHA256).rdata_text()
    return d


def _yn(v: bool | None) -> str:
    return "?" if v is None else ("yes" if v else "no")


@key.command("list", context_settings=CONTEXT, epilog=KEY_EPILOG)
@click.argument("uri", metavar="TOKEN-URI")
@click.option("-z", "--zone", default=".", show_default=True, help="Owner name for the DS.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@pin_options
def list_cmd(uri: str, zone: str, as_json: bool, pin_file: str | None, pin_env: str | None) -> None:
    """List the keys on the token named by TOKEN-URI.

    One line per key: label, CKA_ID (hex), algorithm, size, key tag, role (KSK/ZSK; '?'
    when the key has no DNSKEY record object, e.g. made by another tool), whether the
    private key is sensitive and extractable, and for SEP keys the SHA-256 DS at --zone.
    """
    owner = _zone(zone)
    with Pkcs11Token(_uri(uri).token_only(), _pins(pin_file, pin_env)) as tok:
        infos = tok.list_keys()
        rows = [_info_dict(i, owner, tok.key_uri(i.label, i.id).to_text()) for i in infos]
        if as_json:
            doc = {"token": tok.identity.as_dict(), "zone": owner.to_text(), "keys": rows}
            click.echo(json.dumps(doc, indent=2))
            return
        click.echo(f"# {tok.identity.describe()}: {len(rows)} key(s); DS owner {owner}")
    header = ("LABEL", "CKA_ID", "ALG", "BITS", "TAG", "ROLE", "SENS", "EXTR", "DS (SHA-256)")
    table = [header]
    for r in rows:
        role = r["role"] or "?"
        if r["role"] and not r["role_recorded"]:
            role += "?"
        table.append(
            (
                r["label"],
                r["id"],
                r["algorithm_name"] or "?",
                str(r["bits"] or "?"),
                str(r["key_tag"] if r["key_tag"] is not None else "?"),
                role,
                _yn(r["sensitive"]),
                _yn(r["extractable"]),
                r["ds_sha256"] or ("-" if not r["problem"] else f"! {r['problem']}"),
            )
        )
    widths = [max(len(row[c]) for row in table) for c in range(len(header) - 1)]
    for row in table:
        cells = [row[c].ljust(widths[c]) for c in range(len(header) - 1)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


@key.command("show", context_settings=CONTEXT, epilog=KEY_EPILOG)
@click.argument("uri", metavar="KEY-URI")
@click.option("-z", "--zone", default=".", show_default=True, help="Owner name of the DNSKEY.")
@click.option("--ttl", type=int, default=3600, show_default=True, help="TTL of the DNSKEY RR.")
@pin_options
def show_cmd(uri: str, zone: str, ttl: int, pin_file: str | None, pin_env: str | None) -> None:
    """Print the DNSKEY record of the key named by KEY-URI (object= and/or id=).

    The key is found on the token by label and/or CKA_ID (more than one match is refused,
    KEY-FIND-UNIQUE), its public half checked against the DNSKEY record object kept beside
    it, and printed as a zone-file DNSKEY RR preceded by comments: algorithm, size, key tag,
    the token's identity and the key's URI. Logs in to the token (the PIN is not echoed).
    """
    owner = _zone(zone)
    tok, k = _open_key(uri, pin_file, pin_env)
    with tok:
        click.echo(f"; {k.dnskey.describe()}")
        click.echo(f"; {k.identity}")
        click.echo(f"; uri {k.spec}")
        click.echo(k.dnskey.to_text(owner, ttl))


@key.command("ds", context_settings=CONTEXT, epilog=KEY_EPILOG)
@click.argument("uri", metavar="KEY-URI")
@click.option("-z", "--zone", default=".", show_default=True, help="Owner name of the DS.")
@click.option("--sha384", is_flag=True, help="Also print the SHA-384 DS (digest type 4).")
@click.option(
    "--force", is_flag=True, help="Make a DS even from a key without the SEP flag (a ZSK)."
)
@pin_options
def ds_cmd(
    uri: str, zone: str, sha384: bool, force: bool, pin_file: str | None, pin_env: str | None
) -> None:
    """Print the DS record(s) of the KSK named by KEY-URI, its key tag and PGP words.

    The SHA-256 digest is also spelt in PGP words, to read aloud and compare in a
    ceremony. A key without the SEP flag is refused (KEY-DS-SEP, exit 1) unless --force.
    """
    owner = _zone(zone)
    tok, k = _open_key(uri, pin_file, pin_env)
    with tok:
        dk = k.dnskey
        lines = _ds_lines(owner, dk, sha384, force)
        ds256 = make_ds(owner, dk, DIGEST_SHA256, force=force)
        click.echo(f"; {dk.describe()} on {tok.identity.describe()}")
        for line in lines:
            click.echo(line)
        click.echo(f"; key tag {dk.key_tag}")
        click.echo(f"; SHA-256 digest in PGP words: {pgp_words(ds256.digest)}")


# -- token ---------------------------------------------------------------------------------------
@click.group(name="token", context_settings=CONTEXT, epilog=KEY_EPILOG)
def token() -> None:
    """Inspect PKCS#11 tokens.

    \b
      probe    which DNSSEC algorithms a token can generate and sign, through which
               mechanisms, and its identity (manufacturer, model, serial, firmware)
    Tokens are named by RFC 7512 URIs ('pkcs11:token=LABEL', serial=, module-path=).
    """


@token.command("probe", context_settings=CONTEXT, epilog=KEY_EPILOG)
@click.argument("uri", metavar="TOKEN-URI")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def probe_cmd(uri: str, as_json: bool) -> None:
    """What the token can do for DNSSEC, and who made it. Needs no PIN.

    For each DNSSEC algorithm: whether the token can generate such keys (and which key
    sizes its mechanism allows), and how it can sign: 'host-hash' (the host hashes, the
    token signs the digest: CKM_RSA_PKCS with a DigestInfo, CKM_ECDSA) or 'on-token'
    (CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256, ...; for EdDSA CKM_EDDSA over the message).
    Also the token's identity: manufacturer, model, serial, firmware, and the module.
    """
    with Pkcs11Token(_uri(uri).token_only(), login=False) as tok:
        p = tok.probe()
    if as_json:
        click.echo(json.dumps(p, indent=2))
        return
    t, lib = p["token"], p["library"]
    click.echo(f"token:        {t['label']}")
    click.echo(f"manufacturer: {t['manufacturer']}")
    click.echo(f"model:        {t['model']}")
    click.echo(f"serial:       {t['serial']}")
    click.echo(f"firmware:     {t['firmware']}  (hardware {t['hardware']})")
    click.echo(
        f"module:       {t['module']}  ({lib['manufacturer']} {lib['description']} "
        f"{lib['version']}, PKCS#11 {lib['cryptoki']})"
    )
    click.echo("")
    click.echo(f"{'ALGORITHM':<20} {'GENERATE':<9} {'SIGN':<5} MECHANISMS")
    for a in p["algorithms"]:
        gen = "yes" if a["generate"] else "no"
        sign = "yes" if a["usable"] else "no"
        mechs = "; ".join(a["modes"]) or "none"
        if a["missing"]:
            mechs += "  (missing: " + ", ".join(a["missing"]) + ")"
        click.echo(f"{str(a['algorithm']) + ' ' + a['name']:<20} {gen:<9} {sign:<5} {mechs}")


__all__ = ["key", "token"]
