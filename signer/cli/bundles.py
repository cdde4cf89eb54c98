"""``zonesigner bundles``: plan key bundles, write the request (KSR), import the response (SKR)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from signer.bundles import textformat
from signer.bundles.importer import import_response
from signer.bundles.manifest import manifest_path
from signer.bundles.model import BundleSet
from signer.bundles.planner import Plan, PlannedZsk, plan_request, timeline_table
from signer.bundles.policy import (
    Policy,
    Window,
    format_duration,
    load_policy,
    parse_duration,
    time_text,
    window_with,
)
from signer.bundles.request import add_proofs, declared_policy, read_request, write_request
from signer.cli.common import EXIT_CODES_HELP
from signer.cli.options import output_option, parse_when, policy_option, previous_option
from signer.dnskey import DsRecord
from signer.errors import InputError
from signer.fileio import sha256_file
from signer.keys.loader import open_signing_key
from signer.pgpwords import pgp_words
from signer.pin import PinSource, pin_options

F = TypeVar("F", bound=Callable[..., Any])


def _zsk_arg(text: str) -> tuple[str, int | None]:
    """SPEC or SPEC@TIME (TIME: when this ZSK starts signing, UTC)."""
    if "@" in text and text.rsplit("@", 1)[1].endswith("Z"):
        spec, when = text.rsplit("@", 1)
        return spec, parse_when(when, f"--zsk {text}")
    return text, None


def _anchors(values: tuple[str, ...], files: tuple[str, ...]) -> list[DsRecord]:
    out = [DsRecord.from_text(v) for v in values]
    for f in files:
        try:
            lines = Path(f).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"cannot read trust anchor: {exc.strerror}", path=f) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"trust anchor is not UTF-8 text (byte {exc.start})", path=f) from None
        for no, line in enumerate(lines, 1):
            line = line.split(";", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if "DS" not in parts:
                raise InputError("expected a DS record", path=f, line=no)
            try:
                out.append(DsRecord.from_text(" ".join(parts[parts.index("DS") + 1 :])))
            except InputError as exc:
                raise InputError(exc.reason, path=f, line=no) from None
    if not out:
        raise InputError(
            "give the trust anchor with --trust-anchor DS-RDATA or --trust-anchor-file"
        )
    return out


@click.group(epilog=EXIT_CODES_HELP)
def bundles() -> None:
    """Key bundles: plan them, write the signing request (KSR), import the response (SKR).

    \b
    The zone signer's side of an offline-KSK exchange (docs/bundles.md):
      plan      show the slots of a window and prove coverage (writes nothing)
      request   the same plan, with proofs of possession: the KSR + its JSON manifest
      import    check the signed response (SKR) against our KSR and the KSK's DS
      show      the bundles and SHA-256 of any KSR or SKR file
    The KSK side signs the request with 'ceremony sign-request' (or a ceremony step).
    """


def _plan(
    policy_path: str,
    zsk: tuple[str, ...],
    start: str | None,
    length: str | None,
    previous: str | None,
    pin_source: PinSource | None,
) -> tuple[Policy, Window, BundleSet | None, list[PlannedZsk], Plan]:
    pol = load_policy(policy_path)
    w = window_with(
        pol.window,
        parse_when(start, "--start") if start else None,
        parse_duration(length) if length else None,
    )
    if w is None or w.length <= 0:
        raise InputError(
            f"{policy_path}: no window: give window: in the policy or --start/--length"
        )
    specs = [_zsk_arg(z) for z in zsk]
    if not specs:
        raise InputError("give at least one --zsk SPEC[@TIME]")
    prev = textformat.load_response(previous, zone=pol.zone) if previous else None
    keys = [PlannedZsk(open_signing_key(spec, pin_source), when) for spec, when in specs]
    return pol, w, prev, keys, plan_request(pol, keys, w, previous=prev)


_common = [
    policy_option("The policy YAML file (docs/bundles.md: policy keys)."),
    click.option(
        "--zsk",
        multiple=True,
        metavar="SPEC[@TIME]",
        help="A ZSK: pkcs11: URI or key file; @TIME (UTC, ...Z) when it starts signing "
        "(a rollover). Repeat for each ZSK.",
    ),
    click.option("--start", default=None, help="Window start (UTC, e.g. 2026-01-01T00:00:00Z)."),
    click.option("--length", default=None, help="Window length (ISO 8601, e.g. P90D)."),
    previous_option("The previous response (SKR): the hand-over is proven too."),
]


def _apply(func: F) -> F:
    for opt in reversed(_common):
        func = opt(func)
    return func


@bundles.command("plan", epilog=EXIT_CODES_HELP)
@_apply
@pin_options
def plan_cmd(
    policy_path: str,
    zsk: tuple[str, ...],
    start: str | None,
    length: str | None,
    previous: str | None,
    pin_file: str | None,
    pin_env: str | None,
) -> None:
    """Show the slots the window needs and prove coverage (writes nothing).

    The window is the policy's window: (or --start/--length). Each --zsk is opened (PIN from
    --pin-file, --pin-env or a prompt) and the planner lays out the bundles: ZSK pre- and
    post-publication around each @TIME rollover, the KSK schema per slot. It refuses, naming
    the gap, unless every instant of the window (and the hand-over from --previous) lies in a
    bundle with at least the policy's bundle_margin of validity left.
    """
    pins = PinSource.from_options(pin_file, pin_env)
    pol, w, _prev, _keys, plan = _plan(policy_path, zsk, start, length, previous, pins)
    Console().print(timeline_table(plan.request))
    click.echo(
        f"coverage proven from {time_text(plan.coverage_from)} to {time_text(w.end)} with at "
        f"least {format_duration(pol.signer.bundle_margin)} left at every instant"
    )


@bundles.command("request", epilog=EXIT_CODES_HELP)
@_apply
@pin_options
@output_option("The KSR file to write (its manifest goes to OUTPUT.json).")
def request_cmd(
    policy_path: str,
    zsk: tuple[str, ...],
    start: str | None,
    length: str | None,
    previous: str | None,
    pin_file: str | None,
    pin_env: str | None,
    output: str,
) -> None:
    """Plan, sign the proofs of possession with the ZSKs and write the KSR + manifest.

    The same plan as 'bundles plan'; then each ZSK signs its bundles' DNSKEY RRsets (the
    proof of possession the KSK side checks), and the KSR (text format shared with Knot
    keymgr and BIND dnssec-ksr) and OUTPUT.json (policy, window, hashes) are written
    atomically. Prints the KSR's SHA-256 in hex and PGP words, to be read aloud at the
    ceremony. Nothing is written on refusal.
    """
    pins = PinSource.from_options(pin_file, pin_env)
    pol, w, _prev, keys, plan = _plan(policy_path, zsk, start, length, previous, pins)
    req = add_proofs(plan.request, [k.key for k in keys])
    req = replace(req, declared_policy=declared_policy(pol))
    digest, mpath = write_request(
        output, req, window=(w.start, w.end), policy_path=policy_path, previous_path=previous
    )
    Console().print(timeline_table(req))
    click.echo(f"wrote {output} ({len(req.bundles)} bundles) and {mpath}")
    click.echo(f"SHA-256 {digest}")
    click.echo(f"        {pgp_words(bytes.fromhex(digest))}")


@bundles.command("import", epilog=EXIT_CODES_HELP)
@policy_option("The policy YAML file (the signer's bundle margin).")
@click.option(
    "--request",
    "request_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Our request (KSR) this response must answer.",
)
@click.option(
    "--trust-anchor",
    multiple=True,
    metavar="DS-RDATA",
    help="The KSK's DS RDATA, e.g. '12345 13 2 ABCD...'. Repeat in a KSK rollover.",
)
@click.option(
    "--trust-anchor-file",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A file of DS records (zone-file lines).",
)
@output_option("Where to install the checked response (default: only check).", required=False)
@click.argument("response", type=click.Path(dir_okay=False))
def import_cmd(
    policy_path: str,
    request_path: str,
    trust_anchor: tuple[str, ...],
    trust_anchor_file: tuple[str, ...],
    output: str | None,
    response: str,
) -> None:
    """Check a signed response (SKR) against our request and the trust anchor; install it.

    RESPONSE (with RESPONSE.json beside it) is accepted only if it answers --request
    (hash-bound, SKR-REQUEST-HASH), every RRSIG verifies against a KSK whose DS is a trust
    anchor, every requested ZSK is there and nothing else, and coverage holds with the
    policy's bundle_margin. With -o the checked response and its manifest are copied there
    (atomically) for 'zonesigner sign --bundles'.
    """
    pol = load_policy(policy_path)
    anchors = _anchors(trust_anchor, trust_anchor_file)
    resp = import_response(response, request_path, anchors, margin=pol.signer.bundle_margin)
    if output:
        from signer.fileio import write_atomic

        data = Path(response).read_bytes()
        write_atomic(output, data)
        mp = manifest_path(response)
        if mp.exists():
            write_atomic(manifest_path(output), mp.read_bytes())
    click.echo(
        f"accepted {response}: {len(resp.bundles)} bundles for {resp.zone}, valid "
        f"{time_text(resp.start)}..{time_text(resp.end)}"
    )


@bundles.command("show", epilog=EXIT_CODES_HELP)
@click.argument("path", type=click.Path(dir_okay=False))
def show_cmd(path: str) -> None:
    """Show a KSR or SKR file: its bundles and its SHA-256 (hex and PGP words).

    PATH is parsed strictly (file:line errors); a request is shown without needing its
    manifest. Checks nothing against a policy or a trust anchor: use 'bundles import' or
    'ceremony sign-request' for that. Notes when every bundle of a response has expired.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("ascii", "replace")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    if "KeySigningRequest" in head.split("SignedKeyResponse")[0] and "KeySigningRequest" in head:
        bs, _ = read_request(path, require_manifest=False)
    else:
        bs = textformat.load_response(path)
    Console().print(timeline_table(bs))
    digest = sha256_file(path)
    click.echo(f"SHA-256 {digest}")
    click.echo(f"        {pgp_words(bytes.fromhex(digest))}")
    now = int(time.time())
    if bs.kind == "response" and bs.end < now:
        click.echo(f"note: every bundle has expired (last at {time_text(bs.end)})")
