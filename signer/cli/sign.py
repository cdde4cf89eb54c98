"""``zonesigner sign``: the command line (the job itself: :mod:`signer.cli.signjob`).

This module imports little: the command starts what can start before the signer is
imported (an incremental re-sign's hashes of the previous files), then imports the rest.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from signer.cli.common import EXIT_CODES_HELP
from signer.errors import InputError
from signer.pin import PinSource, pin_options


@click.command("sign", epilog=EXIT_CODES_HELP)
@click.argument("zonefile", type=click.Path(dir_okay=False))
@click.option("--origin", required=True, help="The zone's name (apex).")
@click.option("--bundles", "bundles_path", required=True, help="Signed key-bundle response (SKR).")
@click.option("--zsk", required=True, help="ZSK: a PKCS#11 URI or a key file (tests only).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Signed zone file.")
@click.option("--policy", "policy_path", help="Policy file (YAML); default: built-in defaults.")
@click.option("--jobs", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--now", "now_text", help="Sign as of this time (YYYYMMDDHHMMSS or epoch).")
@click.option("--previous", help="Previous signed zone: reuse signatures of unchanged RRsets.")
@click.option(
    "--verify",
    "verify_level",
    type=click.Choice(["structural", "sample", "full"]),
    default=None,
    help="Self-verification before publishing (default: sample).",
)
@click.option("--trust-anchor", help="DS records of the KSK(s) the DNSKEY RRset must chain to.")
@click.option("--summary-json", help="Write a JSON summary (counts, timings, SHA-256) here.")
@click.option(
    "--no-incremental",
    is_flag=True,
    help="With --previous: sign everything even when only a few names changed.",
)
@pin_options
def sign(
    zonefile: str,
    origin: str,
    bundles_path: str,
    zsk: str,
    out: str,
    policy_path: str | None,
    jobs: int | None,
    now_text: str | None,
    previous: str | None,
    verify_level: str | None,
    trust_anchor: str | None,
    summary_json: str | None,
    no_incremental: bool,
    pin_file: str | None,
    pin_env: str | None,
) -> None:
    """Sign ZONEFILE with the ZSK and the key bundle valid now; write --out atomically.

    \b
    Synopsis:
      zonesigner sign ZONEFILE --origin ZONE --bundles SKR --zsk PKCS11-URI|KEYFILE
                      --out SIGNED [--policy P.yaml] [--trust-anchor DS-FILE] [--jobs N]
                      [--now TIME] [--previous SIGNED] [--verify structural|sample|full]
                      [--summary-json FILE] [--no-incremental]
                      [--pin-file PATH | --pin-env VAR]

    The unsigned zone is loaded (RFC 1035 master-file syntax, errors as file:line) and
    checked (SOA and NS at the apex, one TTL per RRset, CNAME alone, nothing outside the
    zone; DNSKEY, RRSIG, NSEC, NSEC3 and NSEC3PARAM in the input are refused). The DNSKEY,
    CDS and CDNSKEY RRsets and their KSK signatures come from the key bundle valid at --now
    (latest expiration if several); the command refuses when no bundle covers now, when
    the bundle expires within the policy margin (a ceremony is needed), or when the ZSK is
    not in that bundle. NSEC or NSEC3 (policy) is built, every authoritative RRset is
    signed by worker processes (--jobs, each with its own token session), and the result
    is verified before it is written to a temporary file, fsynced and renamed over --out.
    Any failure leaves --out as it was.

    Each sign also writes OUT.zsstate and OUT.zsstate.input beside --out. With --previous P
    and a matching P.zsstate, an NSEC or NSEC3 zone whose input changed in a few plain lines is
    re-signed incrementally (only the changed names; the output is identical to a full
    sign); otherwise, or with --no-incremental, everything is signed (the summary's
    "incremental" field says which and why).
    """
    if not Path(zonefile).is_file():
        raise InputError("no such zone file", path=zonefile)
    if previous and not no_incremental:
        # the re-sign's hashes of the previous files, on a spare core while the signer is
        # imported (~0.15 s) and the job set up (signer.zone.prefetch)
        from signer.zone import prefetch

        if Path(previous + prefetch.STATE_SUFFIX).is_file():  # else: no re-sign, no hashing
            prefetch.start(prefetch.previous_files(previous))
    from signer.bundles.policy import SignerPolicy, load_policy
    from signer.cli.signjob import KeyOpener, SignJob, load_response, run_sign
    from signer.rrsig import to_time
    from signer.zone.model import name_from_text
    from signer.zone.nsec3 import parse_salt
    from signer.zone.signing import default_jobs
    from signer.zone.verify import DEFAULT_LEVEL, trust_anchor_from_file

    pol = load_policy(policy_path).signer if policy_path else SignerPolicy()
    now = to_time(now_text) if now_text else int(time.time())
    origin_t = origin if origin.endswith(".") else origin + "."
    name_from_text(origin_t, None)
    if jobs is not None and jobs < 1:
        raise InputError("--jobs must be at least 1")
    pin = PinSource.from_options(pin_file, pin_env)
    from signer.keys.uri import is_pkcs11_uri

    if is_pkcs11_uri(zsk):
        pin = pin.resolved(f"the ZSK {zsk}")  # prompt once, in the parent
    ta = trust_anchor_from_file(trust_anchor) if trust_anchor else []
    job = SignJob(
        zonefile=zonefile,
        origin=origin_t,
        response=load_response(bundles_path, origin_t, ta),
        opener=KeyOpener(zsk, pin),
        out=out,
        now=now,
        jobs=jobs or default_jobs(),
        validity=pol.validity,
        refresh=pol.refresh,
        jitter=pol.jitter,
        inception_offset=pol.inception_offset,
        denial=pol.nsec,
        nsec3_salt=parse_salt(pol.nsec3_salt),
        nsec3_iterations=pol.nsec3_iterations,
        nsec3_optout=pol.nsec3_opt_out,
        serial_mode=pol.serial,
        bundle_margin=pol.bundle_margin,
        bundle_warning=pol.bundle_warning,
        previous=previous,
        verify_level=verify_level or DEFAULT_LEVEL,
        trust_anchor=ta,
        progress=sys.stderr.isatty(),
        incremental=not no_incremental,
    )
    summary = run_sign(job)
    c = summary["counts"]
    click.echo(
        f"signed {summary['zone']} serial {summary['serial']}: {c['rrsigs_created']} RRSIGs "
        f"created, {c['rrsigs_reused']} reused, bundle {summary['bundle']['id']}, "
        f"expirations {summary['min_expiration']}..{summary['max_expiration']}, "
        f"{summary['timings']['total']} s -> {out} (sha256 {summary['output_sha256'][:16]}...)",
        err=True,
    )
    if summary_json:
        from signer.fileio import write_atomic

        write_atomic(summary_json, json.dumps(summary, indent=2, sort_keys=True) + "\n")


__all__ = ["sign"]
