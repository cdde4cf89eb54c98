"""Build ceremony directories for the audit and report tests.

The directory is written through the real :mod:`ceremony.transcript` (hash chain, fsync,
seal) following the event sequence the runner documents; the response is a real SKR in the
shared text format, signed by a real (software) KSK. Options break exactly one rule so each
audit refusal has a directory that shows it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dns.name

from ceremony import plan as plan_mod
from ceremony import transcript as tr
from signer.algorithms import Algorithm
from signer.bundles import textformat
from signer.bundles.model import Bundle, BundleSet
from signer.keys.soft import SoftKey
from signer.rrsig import sign_rrset

PLAN = """\
version: 1
metadata:
  id: audit-2026-q1
  title: Quarterly key signing (audit fixture)
  zone: example.
  date: "2026-01-15"
  place: Secure room 2
  policy: Example DPS v1.0, section 5.2
roles:
  CA: {title: Ceremony Administrator, kind: administrator}
  IW: {title: Internal Witness, kind: internal-witness}
  CO: {title: Crypto Officer, kind: crypto-officer}
quorum: {role: CO, m: 2, n: 3}
roster:
  - {name: Alice Admin, initials: AA, roles: [CA]}
  - {name: Walter Witness, initials: WW, roles: [IW]}
  - {name: Carol Officer, initials: CO, roles: [CO]}
  - {name: Dave Officer, initials: DO, roles: [CO]}
  - {name: Erin Officer, initials: EO, roles: [CO]}
sections:
  - title: Opening
    steps:
      - manual: Read the purpose of the ceremony aloud.
        role: CA
      - manual: Open tamper-evident bag TEB-100 and read its number aloud.
        role: CA
        record:
          - {name: number, label: Bag number read aloud}
  - title: Signing
    steps:
      - action: write-file
        role: CA
        text: Write the signed key response.
        params: {name: skr.txt, content: "x"}
      - action: show-hash
        role: CA
        params: {file: artifacts/skr.txt}
  - title: Closing
    steps:
      - manual: Place the token in bag TEB-300 and seal it.
        role: CA
"""

# The fixture plan with its hash step replaced by a KSK generation (needs the quorum first).
PLAN_KEYGEN = PLAN.replace(
    """      - action: show-hash
        role: CA
        params: {file: artifacts/skr.txt}""",
    """      - action: generate-key
        role: CA
        params: {token: ksk-primary, label: ksk-2026, algorithm: 13}""",
)
assert PLAN_KEYGEN != PLAN

PEOPLE = {"CA": "Alice Admin", "IW": "Walter Witness", "CO": "Carol Officer"}
INITIALS = {"Walter Witness": "WW"}
DAY = 86400
T0 = 1767225600  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Built:
    dir: Path
    seal: str
    ksk: SoftKey
    response: Path  # artifacts/skr.txt


def make_response(
    ksk: SoftKey, zsk: SoftKey, n: int = 9, *, corrupt_sig: bool = False
) -> BundleSet:
    """A root-like quarter: n bundles, one every 10 days, each signed for 21 days."""
    zone = dns.name.from_text("example.")
    bundles = []
    for i in range(n):
        inc = T0 + i * 10 * DAY
        exp = inc + 21 * DAY
        keys = (ksk.dnskey, zsk.dnskey)
        b = Bundle(id=f"{i + 1}", inception=inc, expiration=exp, ttl=3600, keys=keys)
        sig = sign_rrset(b.dnskey_rrset(zone), ksk, zone, inc, exp)
        if corrupt_sig and i == n // 2:
            bad = bytearray(sig.signature)
            bad[5] ^= 0x01
            sig = sig.replace(signature=bytes(bad))
        bundles.append(
            Bundle(id=b.id, inception=inc, expiration=exp, ttl=3600, keys=keys, signatures=(sig,))
        )
    return BundleSet(zone=zone, bundles=tuple(bundles), kind="response")


def build(
    directory: Path,
    *,
    plan_text: str = PLAN,
    exception_at: int | None = None,
    ack: bool = True,
    skip: int | None = None,
    omit: int | None = None,
    quorum_officers: tuple[str, ...] = ("Carol Officer", "Dave Officer"),
    initialler: str = "Walter Witness",
    seal: bool = True,
    response_bundles: int = 9,
    foreign_ksk: bool = False,
    corrupt_sig: bool = False,
    quorum: bool = True,
) -> Built:
    """Run the fixture plan into ``directory`` the way the runner records a ceremony."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / tr.PLAN_NAME).write_text(plan_text)
    plan = plan_mod.parse(plan_text.encode(), str(directory / tr.PLAN_NAME))
    ksk = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True)
    zsk = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=False)
    signing_ksk = SoftKey.generate(Algorithm.ECDSAP256SHA256, ksk=True) if foreign_ksk else ksk
    skr_text = textformat.dump_response(
        make_response(signing_ksk, zsk, response_bundles, corrupt_sig=corrupt_sig)
    )
    t = tr.Transcript.open(directory, plan.metadata.id)
    with t:
        t.append(
            "begin",
            role=tr.SYSTEM_ROLE,
            data={
                "plan_sha256": plan.sha256,
                "plan_path": tr.PLAN_NAME,
                "title": plan.metadata.title,
                "zone": plan.metadata.zone,
                "tool_version": "test",
            },
        )
        if quorum:
            t.append(
                "quorum",
                role="CO",
                person=quorum_officers[0],
                data={"role": "CO", "m": 2, "n": 3, "officers": list(quorum_officers)},
            )
        for step in plan.steps:
            n = step.number
            if n == omit:
                continue
            who = PEOPLE[step.role]
            t.append(
                "step-started",
                step=n,
                role=step.role,
                person=who,
                data={"kind": step.kind, "text": step.text, "action": step.action},
            )
            if n in (exception_at, skip):
                exc = t.append(
                    "exception",
                    step=n,
                    role="IW",
                    person="Walter Witness",
                    data={
                        "expected": "the bag number matches the paper script",
                        "happened": "the last digit is smudged",
                        "done": "read under the lamp, compared with the photo",
                    },
                )
                if ack:
                    t.append(
                        "exception-ack",
                        step=n,
                        role="CA",
                        person="Alice Admin",
                        data={"exception_seq": exc.seq},
                    )
                if n == skip:
                    t.append(
                        "skip",
                        step=n,
                        role="CA",
                        person="Alice Admin",
                        data={"justification": "not needed", "exception_seq": exc.seq},
                    )
                    continue
                t.append(
                    "retry",
                    step=n,
                    role="CA",
                    person="Alice Admin",
                    data={"exception_seq": exc.seq},
                )
            if step.kind == "action":
                t.append(
                    "action-started",
                    step=n,
                    role=tr.SYSTEM_ROLE,
                    data={"action": step.action, "params": dict(step.params), "idempotent": False},
                )
                if step.action == "write-file":
                    ref = t.store_artifact("skr.txt", skr_text)
                    outputs = {
                        "file": ref.as_output(),
                        "ksk_dnskey": tr.value_output(ksk.dnskey.to_text("example.", 3600)),
                        "ksk_tag": tr.value_output(str(ksk.dnskey.key_tag)),
                    }
                else:
                    digest = t.artifact_ref(directory / "artifacts/skr.txt").sha256
                    outputs = {"sha256": tr.value_output(digest)}
                t.append(
                    "action-completed",
                    step=n,
                    role=tr.SYSTEM_ROLE,
                    outputs=outputs,
                    token={
                        "label": "ksk-primary",
                        "manufacturer": "SoftHSM project",
                        "model": "SoftHSM v2",
                        "serial": "0001",
                    },
                    data={"action": step.action, "summary": "ok"},
                )
            fields = {"number": "TEB-100"} if step.record else {}
            t.append("confirmed", step=n, role=step.role, person=who, data={"fields": fields})
            t.append(
                "initialled",
                step=n,
                role="IW" if initialler == "Walter Witness" else "CA",
                person=initialler,
                data={"initials": INITIALS.get(initialler, "AA")},
            )
            t.append("step-completed", step=n, role=step.role, person=who)
        final = t.seal(person="Alice Admin", role="CA").hash if seal else ""
    return Built(directory, final, ksk, directory / "artifacts" / "skr.txt")


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
