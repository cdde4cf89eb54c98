"""The signing job behind ``zonesigner sign`` (:mod:`signer.cli.sign` reads the command
line and starts what can start early, then imports this module).

``zonesigner sign``: sign a zone with the ZSK and the pre-signed key bundle valid now.

Pipeline (:func:`run_sign`): policy -> bundle valid at ``now`` (SIGNER-BUNDLE-*) -> ZSK opened
and found in that bundle's DNSKEY RRset (SIGNER-ZSK-IN-BUNDLE) -> zone loaded (file:line
errors) and checked (ZONE-*) -> serial -> DNSKEY/CDS/CDNSKEY + bundle RRSIGs at the apex ->
NSEC or NSEC3 -> RRSIGs in ``--jobs`` processes (reusing ``--previous`` ones) ->
self-verification (:func:`signer.zone.verify.verify_signed_zone`) -> atomic write. Any
failure leaves no output and the previous signed zone untouched.

After every sign a state (``OUT.zsstate`` and ``OUT.zsstate.input``) is written beside the
output; ``--previous P`` with a matching ``P.zsstate`` re-signs an NSEC or NSEC3 zone incrementally
(:mod:`signer.zone.incremental`: only the changed subtrees, byte-identical to the full path)
unless ``--no-incremental``; the summary's ``incremental`` says which path ran and why.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.name
import dns.rdata

from signer.bundles.model import Bundle, BundleSet
from signer.dnskey import DnsKey, DsRecord, make_ds
from signer.errors import CheckFailed, InputError, OutputError
from signer.fileio import atomic_writer
from signer.keys.base import SigningKey
from signer.pin import PinSource
from signer.rrsig import canonical_rdata, time_text
from signer.zone import _accel, incremental
from signer.zone.model import (
    T_CDNSKEY,
    T_CDS,
    T_DNSKEY,
    RRset,
    name_from_text,
    name_to_text,
)
from signer.zone.sharded import Denial, VerifySpec, sign_sharded
from signer.zone.signing import SignParams, SigTimes

log = logging.getLogger("dnssec_ceremony.sign")


class ZskNotInBundle(CheckFailed):
    requirement = "SIGNER-ZSK-IN-BUNDLE"


@dataclass(frozen=True)
class KeyOpener:
    """Picklable: opens the ZSK in the calling process (own PKCS#11 session and login)."""

    spec: str
    pin: PinSource | None
    quiet: bool = False

    def __call__(self) -> SigningKey:
        import signer.keys.loader as keyloader

        # quiet: the parent printed the software-key warning already
        return keyloader.open_signing_key(self.spec, self.pin, warn=not self.quiet)


@dataclass
class SignJob:
    zonefile: str
    origin: str
    response: BundleSet
    opener: KeyOpener
    out: str
    now: int
    jobs: int = 1
    validity: int = 14 * 86400
    refresh: int = 5 * 86400
    jitter: int = 12 * 3600
    inception_offset: int = 3600
    denial: str = "nsec"
    nsec3_salt: bytes = b""
    nsec3_iterations: int = 0
    nsec3_optout: bool = False
    serial_mode: str = "keep"
    bundle_margin: int = 2 * 86400
    bundle_warning: int = 14 * 86400
    previous: str | None = None
    verify_level: str = "sample"
    trust_anchor: Sequence[DsRecord] = ()
    progress: bool = False
    incremental: bool = True  # --previous: re-sign only what changed when the state allows
    timings: dict[str, float] = field(default_factory=dict)


def bundle_rrsets(origin: bytes, bundle: Bundle) -> list[RRset]:
    """DNSKEY (and CDS/CDNSKEY) RRsets with their KSK RRSIGs from the bundle, for the apex."""
    rrsets: tuple[tuple[int, int, Sequence[DnsKey | DsRecord], Sequence[dns.rdata.Rdata]], ...] = (
        (T_DNSKEY, bundle.ttl, bundle.keys, bundle.signatures),
        (T_CDS, bundle.sync_ttl, bundle.cds, bundle.cds_signatures),
        (T_CDNSKEY, bundle.sync_ttl, bundle.cdnskey, bundle.cdnskey_signatures),
    )
    return [
        RRset(
            origin,
            rtype,
            ttl,
            tuple(sorted({r.to_wire() for r in records})),
            tuple(canonical_rdata(s) for s in sigs),
        )
        for rtype, ttl, records, sigs in rrsets
        if records or rtype == T_DNSKEY
    ]


def _select_bundle(job: SignJob) -> Bundle:
    from signer.bundles.response import select_bundle

    return select_bundle(
        job.response, job.now, margin=job.bundle_margin, warning=job.bundle_warning
    )


def run_sign(job: SignJob) -> dict[str, Any]:
    """Sign ``job.zonefile`` into ``job.out``; return the summary. Raises on any failure.

    The cyclic garbage collector is paused meanwhile: the zone is millions of acyclic tuples
    and bytes, and full collections over them cost seconds on big zones for nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_sign(job)
    finally:
        if enabled:
            gc.enable()


def _run_sign(job: SignJob) -> dict[str, Any]:
    t = job.timings
    started = time.perf_counter()
    mark = started

    def lap(what: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        t[what] = round(now - mark, 3)
        mark = now

    bundle = _select_bundle(job)
    zsk = job.opener()
    dk = zsk.dnskey
    if not any(k == dk for k in bundle.keys):
        raise ZskNotInBundle(
            f"the ZSK ({dk.describe()}) is not in the DNSKEY RRset of bundle {bundle.id} "
            f"(keys {', '.join(str(k.key_tag) for k in bundle.keys)}); it would not validate"
        )
    trust_anchor = list(job.trust_anchor)
    if not trust_anchor:
        origin_name = dns.name.from_text(job.origin)
        trust_anchor = [make_ds(origin_name, k, 2) for k in bundle.keys if k.is_sep]
        log.warning(
            "no --trust-anchor given: self-verification trusts the SEP keys of bundle %s",
            bundle.id,
        )
    lap("bundle_and_key")

    if job.denial not in ("nsec", "nsec3"):
        raise InputError(f"unknown denial mode {job.denial!r} (nsec or nsec3)")
    previous = job.previous
    if previous is not None and not Path(previous).exists():
        log.warning("--previous %s does not exist: signing everything", previous)
        previous = None
    origin = name_from_text(job.origin, None)
    params = SignParams(int(dk.algorithm), dk.key_tag, origin)
    times = SigTimes(job.now, job.now - job.inception_offset, job.validity, job.jitter)
    denial = Denial(job.denial, job.nsec3_salt, job.nsec3_iterations, job.nsec3_optout)
    verify = VerifySpec(
        job.verify_level, tuple(trust_anchor), dk, min(job.refresh, job.bundle_margin)
    )
    settings = incremental.Settings(
        origin, params, times, job.refresh, job.inception_offset, denial, job.serial_mode,
        tuple(bundle_rrsets(origin, bundle)), verify, dk.to_wire(),
    )  # fmt: skip
    inc: dict[str, Any] = {"used": False, "reason": None}
    if previous is None:
        inc["reason"] = "no --previous"
    elif not job.incremental:
        inc["reason"] = "--no-incremental"
    else:
        try:
            outcome = incremental.sign_incremental(
                zonefile=job.zonefile, previous=previous, out=job.out, settings=settings, key=zsk,
                jobs=job.jobs, opener=KeyOpener(job.opener.spec, job.opener.pin, quiet=True),
            )  # fmt: skip
        except incremental.Fallback as exc:
            inc["reason"] = str(exc)
            log.info("signing in full: %s", exc)
        else:
            t.update(outcome.timings)
            t["total"] = round(time.perf_counter() - started, 3)
            return _incremental_summary(job, origin, bundle, dk, outcome, t)
    stat_before = incremental.input_stat(job.zonefile)
    digest = incremental.CountingDigest()
    progress = _Progress(job.progress)
    incremental.remove_state(job.out)
    # the input is copied for the state while the workers load (started once they forked;
    # early, while they are far from their peak memory: the scan maps the whole input)
    copy = incremental.BackgroundCopy(job.zonefile, job.out, origin)

    try:
        # The workers render the signed text of their shards; it streams into the temporary
        # file, which is renamed over job.out only after self-verification passed.
        with atomic_writer(job.out) as fh:
            try:
                res = sign_sharded(
                    zonefile=job.zonefile,
                    previous=previous,
                    origin=origin,
                    jobs=job.jobs,
                    params=params,
                    times=times,
                    refresh=job.refresh,
                    denial=denial,
                    verify=verify,
                    serial_mode=job.serial_mode,
                    apex_rrsets=settings.apex_rrsets,
                    opener=KeyOpener(job.opener.spec, job.opener.pin, quiet=True),
                    key=zsk,
                    out=fh,
                    out_dir=str(Path(job.out).parent),
                    digest=digest,
                    progress_start=progress.start,
                    meanwhile=copy.start,
                    want_index=True,
                )
            finally:
                progress.stop()
            signed_at = [time.perf_counter()]
    except OSError as exc:
        copy.discard()
        raise OutputError(f"{job.out}: cannot write the signed zone: {exc.strerror}") from None
    except BaseException:
        copy.discard()
        raise
    t.update(res.timings)
    mark = signed_at[0]
    lap("fsync_and_rename")
    cls = res.classification
    counts = {
        "names": res.names, "rrsets": res.rrsets, "chain": res.chain,
        "rrsets_signed": res.rrsets_signed, "delegations": cls.delegations,
        "secure_delegations": cls.secure_delegations, "glue_names": cls.glue_names,
        "occluded_names": cls.occluded_names, "empty_non_terminals": res.ents,
    }  # fmt: skip
    assert res.index is not None
    not_written = incremental.write_full_state(
        out=job.out, zonefile=job.zonefile, stat_before=stat_before, settings=settings,
        index=res.index, digest=digest, serial=res.serial,
        min_expiration=res.min_expiration, max_expiration=res.max_expiration, counts=counts,
        copy=copy, nsec3_hashes=res.nsec3_hashes,
    )  # fmt: skip
    if not_written:
        log.warning("no incremental state for %s: %s", job.out, not_written)
    lap("state")
    t["total"] = round(time.perf_counter() - started, 3)
    report = res.verification
    serial = res.serial
    sign_seconds = t.get("sign", 0.0)
    return {
        "zone": name_to_text(origin),
        "output": str(job.out),
        "output_sha256": digest.hexdigest(),
        "serial": serial,
        "now": time_text(job.now),
        "jobs": job.jobs,
        "compiled": _accel.status()[0],
        "sign_processes": res.processes,
        "shards": res.shards,
        "load_chunks": res.load_chunks,
        "denial": _denial_text(job),
        "counts": {
            "names": res.names,
            "rrsets": res.rrsets,
            "delegations": cls.delegations,
            "secure_delegations": cls.secure_delegations,
            "glue_names": cls.glue_names,
            "occluded_names": cls.occluded_names,
            "chain": res.chain,
            "empty_non_terminals": res.ents,
            "rrsets_signed": res.rrsets_signed,
            "rrsigs_created": res.created,
            "rrsigs_reused": res.reused,
        },
        "rrsigs_per_second": round(res.created / sign_seconds) if sign_seconds else None,
        "min_expiration": time_text(res.min_expiration) if res.min_expiration else None,
        "max_expiration": time_text(res.max_expiration) if res.max_expiration else None,
        **_key_fields(job, bundle, dk),
        "verification": report.summary(),
        "timings": t,
        "shard_timings": res.shard_seconds,
        "shard_peak_rss_mb": res.shard_peak_mb,
        "incremental": inc,
    }


def _denial_text(job: SignJob) -> str:
    return job.denial + (" opt-out" if job.denial == "nsec3" and job.nsec3_optout else "")


def _key_fields(job: SignJob, bundle: Bundle, dk: DnsKey) -> dict[str, Any]:
    """The summary's bundle and ZSK fields (full and incremental signs alike)."""
    return {
        "bundle": {
            "id": bundle.id,
            "inception": time_text(bundle.inception),
            "expiration": time_text(bundle.expiration),
            "bundles_run_out": time_text(job.response.end),
        },
        "zsk": {"key_tag": dk.key_tag, "algorithm": int(dk.algorithm)},
    }


def _incremental_summary(
    job: SignJob,
    origin: bytes,
    bundle: Bundle,
    dk: DnsKey,
    o: incremental.Outcome,
    t: dict[str, float],
) -> dict[str, Any]:
    """The summary of an incremental sign: the same fields as a full one (counts of the
    whole zone; expirations: bounds kept in the state)."""
    c = o.counts
    return {
        "zone": name_to_text(origin),
        "output": str(job.out),
        "output_sha256": o.sha256,
        "serial": o.serial,
        "now": time_text(job.now),
        "jobs": job.jobs,
        "compiled": _accel.status()[0],
        "sign_processes": o.processes,
        "shards": 0,
        "load_chunks": 0,
        "denial": _denial_text(job),
        "counts": {
            "names": c["names"],
            "rrsets": c["rrsets"],
            "delegations": c["delegations"],
            "secure_delegations": c["secure_delegations"],
            "glue_names": c["glue_names"],
            "occluded_names": c["occluded_names"],
            "chain": c["chain"],
            "empty_non_terminals": c.get("empty_non_terminals", 0),
            "rrsets_signed": c["rrsets_signed"],
            "rrsigs_created": o.created,
            "rrsigs_reused": o.reused,
        },
        "rrsigs_per_second": None,
        "min_expiration": time_text(o.min_expiration) if o.min_expiration else None,
        "max_expiration": time_text(o.max_expiration) if o.max_expiration else None,
        **_key_fields(job, bundle, dk),
        "verification": {
            "level": job.verify_level,
            "scope": "re-signed names",
            "names": o.names_rendered,
            "rrsigs_verified": o.verified,
        },
        "timings": t,
        "incremental": {
            "used": True,
            "reason": None,
            "changed_lines": o.changed_lines,
            "names_rendered": o.names_rendered,
            "runs": o.runs,
            **({"nsec3": o.nsec3} if o.nsec3 is not None else {}),
        },
    }


class _Progress:
    """A rich progress bar on a TTY, started once the number of names is known."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.stop: Callable[[], None] = lambda: None
        self.advance: Callable[[int], None] | None = None
        self.retotal: Callable[[int], None] = lambda total: None

    def start(self, total: int) -> Callable[[int], None] | None:
        """The bar, for ``total`` names; called again, the same bar with a new total (an
        NSEC3 zone's chain is counted once it is linked)."""
        if not self.enabled:
            return None
        if self.advance is not None:
            self.retotal(total)
            return self.advance
        from rich.progress import Progress

        prog = Progress(transient=True)
        prog.start()
        self.stop = prog.stop
        task = prog.add_task("signing", total=total)

        def advance(n: int) -> None:
            prog.advance(task, n)

        def retotal(total: int) -> None:
            prog.update(task, total=total)

        self.advance, self.retotal = advance, retotal
        return advance


def load_response(path: str, origin: str, trust_anchor: list[DsRecord]) -> BundleSet:
    """The SKR; with a trust anchor every bundle's RRSIGs are verified against it first."""
    from signer.bundles.importer import load_response_for_signer
    from signer.bundles.textformat import load_response

    if trust_anchor:
        resp = load_response_for_signer(path, trust_anchor)
    else:
        resp = load_response(path, zone=origin)
    if resp.zone != dns.name.from_text(origin):
        raise InputError(f"the key bundles are for {resp.zone}, not {origin}", path=path)
    return resp


__all__ = ["KeyOpener", "SignJob", "bundle_rrsets", "load_response", "run_sign"]
