#!/usr/bin/env python3
"""Benchmark `zonesigner sign` against BIND dnssec-signzone and ldns-signzone.

Same zone (benchmarks/gen_registry_zone.py), same keys (ECDSA P-256 from dnssec-keygen; our
signer loads the BIND ZSK file and gets its DNSKEY RRset from a one-bundle key-bundle response
signed by the BIND KSK), NSEC and NSEC3 opt-out (RFC 9276: 0 iterations, no salt).

    .venv/bin/python benchmarks/bench_sign.py --sizes 100000
    .venv/bin/python benchmarks/bench_sign.py --sizes 100000,1000000 --workdir /var/tmp/bench

For every run: wall time, RRSIGs in the output, RRSIGs/s (end to end), peak RSS summed over
the whole process tree (sampled from /proc every 20 ms) and the largest single process
(/usr/bin/time -v "Maximum resident set size"), and for ours the phase timings from
--summary-json. Then the ratios the issue asks for. Results also go to WORKDIR/results.json.

Not a test (never collected by pytest): figures depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from gen_registry_zone import generate  # noqa: E402

ORIGIN = "bench."
INC_REPEATS = 3  # incremental runs per mode (the median is reported)


@dataclass
class Run:
    size: int
    tool: str
    mode: str  # nsec | nsec3-optout
    variant: str
    jobs: int
    seconds: float = 0.0
    rrsigs: int = 0
    rrsigs_per_s: float = 0.0
    peak_rss_tree_mb: float = 0.0
    peak_rss_single_mb: float = 0.0
    load_before: float = 0.0
    ok: bool = True
    note: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    sign_rrsigs_per_s: float | None = None
    verify_level: str | None = None
    verified: int | None = None


# -- process-tree RSS sampling -----------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(root: int) -> int:
    total = 0
    stack = [root]
    seen = set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss_kb(p)
        stack.extend(_children(p))
    return total


def measure(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, float, int]:
    """Run ``cmd`` under /usr/bin/time -v; return (seconds, tree peak MB, single peak MB, rc)."""
    timefile = log.with_suffix(".time")
    full = ["/usr/bin/time", "-v", "-o", str(timefile), *cmd]
    peak = 0
    with log.open("w") as lf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, stdout=lf, stderr=subprocess.STDOUT)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _tree_rss_kb(proc.pid) - _rss_kb(proc.pid))  # minus `time`
                stop.wait(0.02)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        rc = proc.wait()
        seconds = time.perf_counter() - t0
        stop.set()
        th.join()
    single = 0
    if timefile.exists():
        for line in timefile.read_text().splitlines():
            if "Maximum resident set size" in line:
                single = int(line.split(":")[1])
    return seconds, peak / 1024, single / 1024, rc


def count_rrsigs(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for line in fh:
            if b"RRSIG" not in line or line.startswith(b";"):
                continue
            parts = line.split(None, 4)
            if len(parts) >= 4 and parts[3] == b"RRSIG":
                n += 1
    return n


# -- inputs ------------------------------------------------------------------------------------
def make_keys(d: Path) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    existing = sorted(d.glob("K*.key"))
    if len(existing) == 2:
        ksk = next(p for p in existing if " 257 " in p.read_text())
        zsk = next(p for p in existing if p != ksk)
        return ksk, zsk
    base = ["dnssec-keygen", "-q", "-K", str(d), "-a", "ECDSAP256SHA256"]
    ksk = subprocess.run([*base, "-f", "KSK", ORIGIN], capture_output=True, text=True, check=True)
    zsk = subprocess.run([*base, ORIGIN], capture_output=True, text=True, check=True)
    return d / f"{ksk.stdout.strip()}.key", d / f"{zsk.stdout.strip()}.key"


def make_signer_inputs(d: Path, ksk: Path, zsk: Path, now: int) -> dict[str, Path]:
    """Key-bundle response, trust anchor and the two policies for our signer."""
    import dns.name

    from signer.bundles.model import Bundle, BundleSet
    from signer.bundles.textformat import dump_response
    from signer.dnskey import make_ds
    from signer.keys.soft import load_bind_private
    from signer.rrsig import sign_rrset

    k = load_bind_private(ksk)
    z = load_bind_private(zsk)
    zone = dns.name.from_text(ORIGIN)
    inc, exp = now - 86400, now + 30 * 86400
    b = Bundle("bench-1", inc, exp, 3600, (k.dnskey, z.dnskey))
    sig = sign_rrset(b.dnskey_rrset(zone), k, zone, inc, exp)
    b = Bundle("bench-1", inc, exp, 3600, b.keys, (sig,))
    resp = d / "response.skr"
    resp.write_text(dump_response(BundleSet(zone, (b,), "response")))
    ta = d / "trust-anchor.ds"
    ta.write_text(make_ds(ORIGIN, k.dnskey).to_text(ORIGIN) + "\n")
    out = {"response": resp, "trust_anchor": ta, "zsk": zsk.with_suffix(".private")}
    for mode in ("nsec", "nsec3-optout"):
        p = d / f"policy-{mode}.yaml"
        p.write_text(
            POLICY.format(
                nsec="nsec" if mode == "nsec" else "nsec3",
                optout="true" if mode != "nsec" else "false",
            )
        )
        out[f"policy-{mode}"] = p
    return out


POLICY = """zone: bench.
signer:
  algorithm: ECDSAP256SHA256
  signature_validity: P14D
  refresh: P5D
  jitter: PT12H
  inception_offset: PT1H
  nsec: {nsec}
  nsec3: {{salt: "-", iterations: 0, opt_out: {optout}}}
  serial: keep
  bundle_margin: P2D
  bundle_warning: P14D
ksk:
  algorithms: [ECDSAP256SHA256]
  bits: [256]
  dnskey_ttl: PT1H
  signature_validity: {{min: P21D, max: P21D}}
  bundle_spacing: P10D
  bundle_interval: {{min: P9D, max: P11D}}
  bundle_count: {{min: 1, max: 28}}
  overlap: {{min: P9D, max: P12D}}
  cycle: {{min: P79D, max: P271D}}
  horizon: P300D
  keys:
    ksk: {{key: "pkcs11:token=ksk-primary;object=ksk"}}
  schema:
    - {{sign: [ksk]}}
"""


def change_one_percent(src: Path, dst: Path) -> int:
    """Every 100th delegation gets one more DS record (1 % of delegations changed): its DS
    RRset is new or different, and so is its NSEC/NSEC3 bitmap when it had no DS."""
    seen = 0
    changed = 0
    last_owner = None
    with src.open() as fin, dst.open("w") as fout:
        for line in fin:
            fout.write(line)
            parts = line.split()
            if len(parts) >= 5 and parts[3] == "NS" and parts[0] != "@" and parts[0] != last_owner:
                last_owner = parts[0]
                seen += 1
                if seen % 100 == 0 and "." not in parts[0]:
                    fout.write(f"{parts[0]} 86400 IN DS {seen % 65536} 13 2 {seen:064X}\n")
                    changed += 1
    return changed


# -- the runs ----------------------------------------------------------------------------------
def zonesigner_exe() -> str:
    exe = Path(sys.executable).with_name("zonesigner")
    return str(exe) if exe.exists() else "zonesigner"


TOOLS = frozenset({"ours", "bind", "ldns"})


def run_ours(
    size: int,
    zone: Path,
    inputs: dict[str, Path],
    mode: str,
    jobs: int,
    d: Path,
    now: int,
    *,
    verify: str | None = None,
    previous: Path | None = None,
    variant: str = "",
) -> Run:
    slug = "incremental" if previous is not None else (verify or "default")
    tag = f"ours-{mode}-j{jobs}-{slug}"
    out = d / f"{tag}.signed"
    summary = d / f"{tag}.json"
    cmd = [zonesigner_exe(), "sign", str(zone), "--origin", ORIGIN,
           "--bundles", str(inputs["response"]), "--zsk", str(inputs["zsk"]),
           "--out", str(out), "--policy", str(inputs[f"policy-{mode}"]),
           "--now", str(now), "--jobs", str(jobs),
           "--trust-anchor", str(inputs["trust_anchor"]), "--summary-json", str(summary)]  # fmt: skip
    if verify:
        cmd += ["--verify", verify]
    if previous is not None:
        cmd += ["--previous", str(previous)]
    r = Run(size, "zonesigner", mode, variant or f"verify={verify or 'default'}", jobs)
    _execute(r, cmd, d, out, d / f"{tag}.log")
    if r.ok and summary.exists():
        s = json.loads(summary.read_text())
        r.phases = {k: float(v) for k, v in s.get("timings", {}).items()}
        r.sign_rrsigs_per_s = s.get("rrsigs_per_second")
        v = s.get("verification", {})
        r.verify_level = v.get("level")
        r.verified = v.get("rrsigs_verified")
        c = s.get("counts", {})
        r.note = f"created {c.get('rrsigs_created')} reused {c.get('rrsigs_reused')}"
    return r


def run_bind(
    size: int, zone: Path, keydir: Path, mode: str, jobs: int, verify: bool, d: Path
) -> Run:
    tag = f"bind-{mode}-n{jobs}-{'verify' if verify else 'P'}"
    out = d / f"{tag}.signed"
    cmd = ["dnssec-signzone", "-q", "-S", "-K", str(keydir), "-o", ORIGIN, "-O", "full",
           "-n", str(jobs), "-f", str(out)]  # fmt: skip
    if not verify:
        cmd.append("-P")
    if mode != "nsec":
        cmd += ["-3", "-", "-A"]
    cmd.append(str(zone))
    r = Run(size, "dnssec-signzone", mode, "default (verifies)" if verify else "-P", jobs)
    _execute(r, cmd, d, out, d / f"{tag}.log")
    return r


def run_ldns(size: int, zone: Path, ksk: Path, zsk: Path, mode: str, d: Path) -> Run:
    tag = f"ldns-{mode}"
    out = d / f"{tag}.signed"
    cmd = ["ldns-signzone", "-o", ORIGIN, "-f", str(out)]
    if mode != "nsec":
        cmd += ["-n", "-t", "0", "-s", "", "-p"]
    cmd += [str(zone), str(ksk.with_suffix("")), str(zsk.with_suffix(""))]
    r = Run(size, "ldns-signzone", mode, "default", 1)
    _execute(r, cmd, d, out, d / f"{tag}.log")
    return r


def _execute(r: Run, cmd: list[str], d: Path, out: Path, log: Path) -> None:
    if out.exists():
        out.unlink()
    # Flush what earlier runs left to write (each writes a 100-500 MB zone): otherwise that
    # writeback competes with this run's own reads, writes and fsync, and lands on whichever
    # tool runs next (the short incremental sign most of all). Every tool gets the same.
    os.sync()
    r.load_before = os.getloadavg()[0]
    secs, tree, single, rc = measure(cmd, d, log)
    r.seconds = round(secs, 2)
    r.peak_rss_tree_mb = round(tree, 1)
    r.peak_rss_single_mb = round(single, 1)
    if rc != 0 or not out.exists():
        r.ok = False
        r.note = f"exit {rc}: " + log.read_text()[-300:].replace("\n", " | ")
        return
    r.rrsigs = count_rrsigs(out)
    r.rrsigs_per_s = round(r.rrsigs / secs) if secs else 0
    print(
        f"  {r.tool:16} {r.mode:13} {r.variant:22} jobs={r.jobs} {r.seconds:7.2f} s "
        f"{r.rrsigs:9d} RRSIGs {r.rrsigs_per_s:8.0f}/s tree {r.peak_rss_tree_mb:7.1f} MB "
        f"single {r.peak_rss_single_mb:7.1f} MB load {r.load_before:.2f}",
        flush=True,
    )


def bench_size(
    size: int, work: Path, jobs_list: list[int], modes: list[str], now: int
) -> list[Run]:
    d = work / f"n{size}"
    d.mkdir(parents=True, exist_ok=True)
    zone = d / "zone.db"
    if not zone.exists():
        t0 = time.perf_counter()
        zone.write_text(generate(ORIGIN, size))
        print(f"generated {zone} ({size} delegations) in {time.perf_counter() - t0:.1f} s")
    ksk, zsk = make_keys(work / "keys")
    inputs = make_signer_inputs(d, ksk, zsk, now)
    runs: list[Run] = []
    for mode in modes:
        print(f"n={size} {mode}", flush=True)
        for j in jobs_list if "ours" in TOOLS else ():
            runs.append(run_ours(size, zone, inputs, mode, j, d, now))
        jmax = max(jobs_list)
        if mode == "nsec" and "ours" in TOOLS:
            for level in ("structural", "full"):
                runs.append(run_ours(size, zone, inputs, mode, jmax, d, now, verify=level))
        if "ours" in TOOLS:
            # incremental: 1 % of delegations changed, previous = the default jmax output
            prev = d / f"ours-{mode}-j{jmax}-default.signed"
            changed = d / "zone-1pct.db"
            n = change_one_percent(zone, changed)
            # a few seconds each, and the ones that swing most with the disk (right after the
            # full signs' writes): run INC_REPEATS times from the same previous output
            for k in range(1, INC_REPEATS + 1):
                r = run_ours(size, changed, inputs, mode, jmax, d, now + 3600, previous=prev,
                             variant=f"--previous, {n} changed, run {k}")  # fmt: skip
                runs.append(r)
        if "ours" in TOOLS and mode != "nsec":
            runs.append(run_ours(size, zone, inputs, mode, jmax, d, now, verify="full"))
        for j in jobs_list if "bind" in TOOLS else ():
            runs.append(run_bind(size, zone, work / "keys", mode, j, True, d))
        for j in jobs_list if "bind" in TOOLS else ():
            runs.append(run_bind(size, zone, work / "keys", mode, j, False, d))
        if "ldns" in TOOLS:
            runs.append(run_ldns(size, zone, ksk, zsk, mode, d))
    return runs


def ratios(runs: list[Run]) -> list[str]:
    out = []

    sizes = sorted({r.size for r in runs})
    for size in sizes:

        def find(tool: str, mode: str, variant: str, jobs: int, size: int = size) -> Run | None:
            for r in runs:
                key = (r.size, r.tool, r.mode, r.variant, r.jobs)
                if key == (size, tool, mode, variant, jobs) and r.ok:
                    return r
            return None

        rs = [r for r in runs if r.size == size]
        jmax = max(r.jobs for r in rs)
        for mode in sorted({r.mode for r in rs}):
            ours = find("zonesigner", mode, "verify=default", jmax)
            ours1 = find("zonesigner", mode, "verify=default", 1)
            bind_v = find("dnssec-signzone", mode, "default (verifies)", jmax)
            bind_p = find("dnssec-signzone", mode, "-P", jmax)
            bind_p1 = find("dnssec-signzone", mode, "-P", 1)
            ldns = find("ldns-signzone", mode, "default", 1)
            sub = [r for r in rs if r.size == size and r.mode == mode]
            if ours and bind_v:
                out.append(f"n={size} {mode}: ours (default verify, {jmax} jobs) vs dnssec-signzone "
                           f"-n {jmax} (verifies): throughput x{ours.rrsigs_per_s / bind_v.rrsigs_per_s:.2f}")  # fmt: skip
            if ours and bind_p:
                out.append(f"n={size} {mode}: ours (default verify) vs dnssec-signzone -P -n {jmax}: "
                           f"x{ours.rrsigs_per_s / bind_p.rrsigs_per_s:.2f}")  # fmt: skip
            if ours and bind_p1:
                out.append(
                    f"n={size} {mode}: ours vs dnssec-signzone -P -n 1: "
                    f"x{ours.rrsigs_per_s / bind_p1.rrsigs_per_s:.2f}"
                )
            if ours and ldns:
                out.append(
                    f"n={size} {mode}: ours vs ldns-signzone: x{ours.rrsigs_per_s / ldns.rrsigs_per_s:.2f}"
                )
            if ours and ours1:
                out.append(f"n={size} {mode}: ours --jobs {jmax} vs --jobs 1: "
                           f"x{ours.rrsigs_per_s / ours1.rrsigs_per_s:.2f} (end to end)"
                           + (f", sign phase x{ours1.phases.get('sign', 0) / ours.phases['sign']:.2f}"
                              if ours.phases.get("sign") else ""))  # fmt: skip
            if ours and bind_v:
                out.append(f"n={size} {mode}: peak RSS (tree) ours {ours.peak_rss_tree_mb:.0f} MB, "
                           f"dnssec-signzone {bind_v.peak_rss_tree_mb:.0f} MB, "
                           f"ratio {ours.peak_rss_tree_mb / bind_v.peak_rss_tree_mb:.2f}")  # fmt: skip
            incs = sorted(r.seconds for r in sub if r.variant.startswith("--previous") and r.ok)
            if ours and incs:
                med = statistics.median(incs)
                each = ", ".join(f"{x:.2f}" for x in incs)
                out.append(
                    f"n={size} {mode}: incremental (1 % changed) median {med:.2f} s = "
                    f"{100 * med / ours.seconds:.1f} % of a full sign ({len(incs)} runs: {each} s)"
                )
            full = find("zonesigner", mode, "verify=full", jmax)
            if full and bind_v:
                out.append(f"n={size} {mode}: ours --verify full ({jmax} jobs) vs dnssec-signzone "
                           f"-n {jmax} (verifies): x{full.rrsigs_per_s / bind_v.rrsigs_per_s:.2f}")  # fmt: skip
            structural = find("zonesigner", mode, "verify=structural", jmax)
            if structural:
                out.append(f"n={size} {mode}: ours --verify structural ({jmax} jobs): "
                           f"{structural.rrsigs_per_s:.0f} RRSIG/s end to end")  # fmt: skip
            if ours and bind_v:
                out.append(f"n={size} {mode}: peak RSS, largest process: ours "
                           f"{ours.peak_rss_single_mb:.0f} MB, dnssec-signzone "
                           f"{bind_v.peak_rss_single_mb:.0f} MB")  # fmt: skip
            key = "verify_in_shards"
            for level in ("structural", "full"):
                lv = find("zonesigner", mode, f"verify={level}", jmax)
                if lv and ours and key in lv.phases and key in ours.phases:
                    out.append(f"n={size} {mode}: verification in each shard: {level} "
                               f"{lv.phases[key]:.2f} s, default (sample) {ours.phases[key]:.2f} s; "
                               f"sign stage {ours.phases.get('sign', 0):.2f} s")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000", help="comma-separated delegation counts")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--modes", default="nsec,nsec3-optout")
    ap.add_argument("--workdir", default="/tmp/zonesigner-bench")
    ap.add_argument("--keep", action="store_true", help="keep signed outputs")
    ap.add_argument("--tools", default="ours,bind,ldns", help="which signers to run")
    a = ap.parse_args(argv)
    global TOOLS
    TOOLS = frozenset(a.tools.split(","))
    for tool in ("dnssec-keygen", "dnssec-signzone", "ldns-signzone"):
        if shutil.which(tool) is None:
            print(f"{tool} missing (make debs)", file=sys.stderr)
            return 2
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    jobs_list = [int(x) for x in a.jobs.split(",")]
    modes = a.modes.split(",")
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()}, workdir {work}")
    runs: list[Run] = []
    for size in (int(x) for x in a.sizes.split(",")):
        runs.extend(bench_size(size, work, jobs_list, modes, now))
        if not a.keep:
            for p in (work / f"n{size}").glob("*.signed*"):
                p.unlink()
    print("\nratios:")
    lines = ratios(runs)
    for line in lines:
        print("  " + line)
    (work / "results.json").write_text(
        json.dumps({"runs": [asdict(r) for r in runs], "ratios": lines}, indent=2) + "\n"
    )
    print(f"\nresults: {work / 'results.json'}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
