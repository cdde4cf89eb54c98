"""``ceremony sign-request``: check a key-bundle request (KSR) and sign it with the KSK(s)."""

from __future__ import annotations

import time

import click

from ceremony.ksk import check_request_file, sign_request_file
from signer.bundles.policy import load_ksk_policy, time_text
from signer.cli.common import EXIT_CODES_HELP
from signer.cli.options import (
    name_value_pairs,
    output_option,
    parse_when,
    policy_option,
    previous_option,
)
from signer.errors import InputError
from signer.keys.loader import open_signing_key
from signer.pgpwords import pgp_words
from signer.pin import PinSource, pin_options
from signer.rrsig import Signer


@click.command("sign-request", epilog=EXIT_CODES_HELP)
@policy_option("The KSK policy (a whole policy file or one with only ksk: and zone:).")
@click.option(
    "--ksk",
    "ksk_specs",
    multiple=True,
    metavar="NAME=SPEC",
    help="Open KSK NAME from SPEC (pkcs11: URI or key file) instead of the policy's "
    "ksk.keys entry. Repeatable.",
)
@previous_option("The last response signed for this zone (chain checks).")
@click.option(
    "--now",
    "now_text",
    default=None,
    help="The time the checks use (UTC ...Z); default: the clock.",
)
@click.option(
    "--disable-check",
    "disabled",
    multiple=True,
    metavar="ID",
    help="Skip one check by its requirement ID (logged at WARNING). Repeatable.",
)
@click.option(
    "--no-manifest",
    is_flag=True,
    help="Accept a request without our JSON manifest (made by Knot or BIND).",
)
@output_option("The SKR to write (its manifest goes to OUTPUT.json).")
@pin_options
@click.argument("request", type=click.Path(dir_okay=False))
def sign_request(
    policy_path: str,
    ksk_specs: tuple[str, ...],
    previous: str | None,
    now_text: str | None,
    disabled: tuple[str, ...],
    no_manifest: bool,
    output: str,
    pin_file: str | None,
    pin_env: str | None,
    request: str,
) -> None:
    """Check REQUEST against the KSK policy, sign every slot with the KSK(s), write the SKR.

    Every check is run before any token is used; the response is parsed again from its bytes
    and re-verified before it is written. Nothing is written on refusal.
    """
    policy = load_ksk_policy(policy_path)
    now = parse_when(now_text, "--now") if now_text is not None else int(time.time())
    specs = {r.name: r.spec for r in policy.keys}
    for name, spec in name_value_pairs(ksk_specs, "--ksk", "NAME=SPEC").items():
        if name not in specs:
            raise InputError(f"--ksk {name}: no such key in ksk.keys of {policy_path}")
        specs[name] = spec
    if not specs:
        raise InputError(f"{policy_path}: ksk.keys names no KSK")
    pins = PinSource.from_options(pin_file, pin_env)
    # the request is checked (and the manifest read) before a token is opened
    check_request_file(
        request,
        policy,
        now=now,
        previous_path=previous,
        disabled=set(disabled),
        require_manifest=not no_manifest,
    )
    ksks: dict[str, Signer] = {
        name: open_signing_key(spec, pins, flags=257) for name, spec in specs.items()
    }
    res = sign_request_file(
        request,
        output,
        policy,
        ksks,
        now=now,
        previous_path=previous,
        disabled=set(disabled),
        policy_path=policy_path,
        require_manifest=not no_manifest,
    )
    click.echo(
        f"wrote {output}: {len(res.response.bundles)} bundles "
        f"{time_text(res.response.start)}..{time_text(res.response.end)}, and {res.manifest}"
    )
    click.echo(f"request  SHA-256 {res.request_sha256}")
    click.echo(f"         {pgp_words(bytes.fromhex(res.request_sha256))}")
    click.echo(f"response SHA-256 {res.sha256}")
    click.echo(f"         {pgp_words(bytes.fromhex(res.sha256))}")
