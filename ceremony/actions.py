"""The action registry: what a plan step of kind ``action`` can make the tool do.

An :class:`Action` is a small typed record::

    Action(name, params_schema, run, describe, idempotent, blanks, help)

* ``params_schema``: ``{param: Param(type, required, default, help)}``; plans are checked
  against it at load time (unknown or missing params refused with ``file:line``), and the
  rendered values again just before the action runs.
* ``run(ctx) -> ActionResult(outputs, token_identity, summary)``: ``outputs`` maps a name to
  a :class:`pathlib.Path` (a file the action wrote under ``ctx.artifacts``; hashed and
  recorded) or a ``str`` (a value such as a key tag or a DS record; hashed and recorded too).
* ``describe(ctx) -> str``: what the action would do (``--dry-run``); touches no token.
* ``idempotent``: whether re-running after an interruption is harmless. Non-idempotent actions
  (key generation) are never re-run after an ``action-started`` without ``action-completed``.
* ``blanks``: labels the printed script leaves blank for the witnesses (e.g. "DS digest").
* ``needs_quorum``: the action uses a KSK, so (when the plan has a quorum) a quorum login must
  come first; the action refuses otherwise (CER-QUORUM) and the audit checks it (AUDIT-QUORUM).

Key-bundle actions: ``make-request`` (the ZSK side: plan the policy window, proofs of
possession, write the KSR and its manifest) and ``sign-request`` (the KSK side: every KSR-*
check, sign with the KSK(s) on the token the quorum logged in to, re-parse and re-verify, write
the SKR and its manifest). Both are *repeatable* (``idempotent=True``): they change nothing on
a token, and a re-run after an interruption writes a fresh, equally valid file in place of one
that no later step has used yet (ECDSA signatures differ between runs; the transcript records
the hash of the file that was finally kept).

PINs come from :class:`signer.pin.PinSource` (file, environment, prompt), are registered with
the transcript as forbidden values and never returned in outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.dnskey import DnsKey, make_ds
from signer.errors import CheckFailed, InputError, OutputError, TokenError
from signer.fileio import atomic_writer, sha256_file, write_atomic
from signer.pgpwords import pgp_words

log = logging.getLogger("dnssec_ceremony.actions")


@dataclass(frozen=True)
class Param:
    type: type
    required: bool = True
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class TokenIdentity:
    label: str
    manufacturer: str
    model: str
    serial: str

    def as_dict(self) -> dict[str, str]:
        return {
            "label": self.label,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "serial": self.serial,
        }


@dataclass(frozen=True)
class ActionResult:
    outputs: Mapping[str, Path | str] = field(default_factory=dict)
    token_identity: TokenIdentity | None = None
    summary: str = ""
    # Said loudly at the station, recorded in the action-completed record and repeated by
    # ``ceremony audit verify`` and the report: something the witnesses must look at.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EarlierAction:
    """An action completed earlier in this ceremony (from the transcript, so also before a
    resume): its name and its outputs' values (a file output: its path)."""

    action: str
    step: int
    outputs: Mapping[str, str]


Progress = Callable[[str, float | None], None]


@dataclass
class ActionContext:
    """What an action sees. ``params`` are already rendered (templates filled in)."""

    ceremony_dir: Path
    params: Mapping[str, Any]
    step_number: int
    rehearsal: bool = False
    lab_dir: Path | None = None
    pin_source_for: Callable[[str], Any] | None = None  # token label -> signer.pin.PinSource
    forbid: Callable[[str], None] = lambda _s: None  # register a secret with the transcript
    progress: Progress = lambda _msg, _frac: None
    session: dict[str, Any] = field(default_factory=dict)  # shared between steps in one run
    officers: tuple[str, ...] = ()  # crypto officers who took part in the last quorum login
    quorum: Mapping[str, Any] | None = None
    zone: str = "."
    equipment_tokens: Mapping[str, str] = field(default_factory=dict)  # label -> serial
    earlier: tuple[EarlierAction, ...] = ()  # completed actions before this step, in order

    @property
    def artifacts(self) -> Path:
        return self.ceremony_dir / "artifacts"

    def artifact_path(self, name: str) -> Path:
        if "/" in name or name.startswith(".") or not name:
            raise InputError(f"artifact name {name!r} must be a plain file name")
        return self.artifacts / name


@dataclass(frozen=True)
class Action:
    name: str
    params_schema: Mapping[str, Param]
    run: Callable[[ActionContext], ActionResult]
    describe: Callable[[ActionContext], str]
    idempotent: bool
    blanks: tuple[str, ...] = ()
    help: str = ""
    needs_quorum: bool = False


REGISTRY: dict[str, Action] = {}


def register(action: Action) -> Action:
    REGISTRY[action.name] = action
    return action


def _is_template(v: Any) -> bool:
    return isinstance(v, str) and ("{{" in v or "{%" in v)


def validate_params(
    action: str, params: Mapping[str, Any], *, rendered: bool = False
) -> dict[str, Any]:
    """Check ``params`` against the action's schema; return them with defaults filled in.

    Before rendering, a string template is accepted for any type; after rendering, a string
    for an ``int`` param must be a decimal integer (and is converted).
    """
    spec = REGISTRY[action].params_schema
    for k in params:
        if k not in spec:
            raise InputError(
                f"unknown param {k!r} for action {action} (known: {', '.join(spec) or 'none'})"
            )
    out: dict[str, Any] = {}
    for k, p in spec.items():
        if k not in params:
            if p.required:
                raise InputError(f"action {action} needs param {k!r} ({p.help})")
            out[k] = p.default
            continue
        v = params[k]
        if not rendered and _is_template(v):
            out[k] = v
            continue
        if p.type is int and isinstance(v, str) and rendered and v.strip().lstrip("-").isdigit():
            v = int(v)
        if p.type is int and isinstance(v, bool):
            raise InputError(f"param {k!r} of {action} must be an integer")
        if p.type is list and isinstance(v, list):
            out[k] = v
            continue
        if not isinstance(v, p.type):
            raise InputError(
                f"param {k!r} of {action} must be {p.type.__name__}, not {type(v).__name__}"
            )
        out[k] = v
    return out


def hash_line(name: str, digest: str) -> str:
    return f"{name}: SHA-256 {digest}\n  {pgp_words(bytes.fromhex(digest))}"


# -- write-file / show-hash / copy-to-media ---------------------------------------------------
def _write_file_run(ctx: ActionContext) -> ActionResult:
    p = ctx.artifact_path(str(ctx.params["name"]))
    content = str(ctx.params["content"]).encode("utf-8")
    if p.exists():
        # Idempotent: the same content again is fine (a re-run after an interruption).
        if sha256_file(p) != hashlib.sha256(content).hexdigest():
            raise OutputError(f"{p}: exists with other content; refusing to overwrite an artifact")
        return ActionResult({"file": p}, summary=f"{p.name} already written with this content")
    write_atomic(p, content)
    return ActionResult({"file": p}, summary=f"wrote {p.name}")


register(
    Action(
        name="write-file",
        params_schema={
            "name": Param(str, help="artifact file name"),
            "content": Param(str, help="text to write (templated)"),
        },
        run=_write_file_run,
        describe=lambda ctx: (
            f"would write artifacts/{ctx.params['name']} ({len(str(ctx.params['content']))} characters)"
        ),
        idempotent=True,
        help="Write a text artifact (e.g. a filled-in form) into the ceremony directory.",
    )
)


def _resolve_in_dir(ctx: ActionContext, name: str, what: str = "file") -> Path:
    """``name`` (absolute, or relative to the ceremony directory) as an existing file."""
    p = Path(name)
    full = p if p.is_absolute() else ctx.ceremony_dir / p
    if not full.is_file():
        raise InputError(f"no such {what}", path=str(full))
    return full


def _show_hash_run(ctx: ActionContext) -> ActionResult:
    full = _resolve_in_dir(ctx, str(ctx.params["file"]))
    try:
        full.resolve().relative_to(ctx.ceremony_dir.resolve())
    except ValueError:
        digest = sha256_file(full)
        return ActionResult({"sha256": digest}, summary=hash_line(full.name, digest))
    return ActionResult({"file": full}, summary=f"hash of {full.name}:")


register(
    Action(
        name="show-hash",
        params_schema={"file": Param(str, help="file (relative to the ceremony directory)")},
        run=_show_hash_run,
        describe=lambda ctx: f"would show the SHA-256 and PGP words of {ctx.params['file']}",
        idempotent=True,
        blanks=("SHA-256 (first and last 4 PGP words)",),
        help="Show a file's SHA-256 in hex and PGP words for reading aloud.",
    )
)


def _copy_run(ctx: ActionContext) -> ActionResult:
    src = _resolve_in_dir(ctx, str(ctx.params["file"]))
    dest_dir = Path(str(ctx.params["media"]))
    if not dest_dir.is_dir():
        raise InputError("media mount point is not a directory", path=str(dest_dir))
    dest = dest_dir / src.name
    if dest.exists():
        raise OutputError(f"{dest}: exists already on the media; refusing to overwrite it")
    want = sha256_file(src)
    ctx.progress(f"copying {src.name}", 0.0)
    try:
        # temporary file beside dest, fsync, rename: never a partial copy on the media
        with open(src, "rb") as fi, atomic_writer(dest) as fo:
            total = max(src.stat().st_size, 1)
            done = 0
            for chunk in iter(lambda: fi.read(1 << 20), b""):
                fo.write(chunk)
                done += len(chunk)
                ctx.progress(f"copying {src.name}", done / total)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot copy: {exc.strerror}") from None
    # Verify what is on the media, not what we wrote: re-read it from the file system.
    got = sha256_file(dest)
    if got != want:
        raise OutputError(f"{dest}: copy does not match (SHA-256 {got} != {want})")
    ctx.progress(f"copied {src.name}", 1.0)
    return ActionResult(
        {"sha256": got, "words": pgp_words(bytes.fromhex(got)), "copy": str(dest)},
        summary=f"copied to {dest} and verified\n" + hash_line(src.name, got),
    )


register(
    Action(
        name="copy-to-media",
        params_schema={
            "file": Param(str, help="file to copy (relative to the ceremony directory)"),
            "media": Param(str, help="mount point of the removable media"),
        },
        run=_copy_run,
        describe=lambda ctx: (
            f"would copy {ctx.params['file']} to {ctx.params['media']} and re-read the copy to compare SHA-256"
        ),
        idempotent=True,
        blanks=("SHA-256 of the copy (first and last 4 PGP words)",),
        help="Copy an artifact to removable media and verify the copy's hash.",
    )
)


def _sleep_run(ctx: ActionContext) -> ActionResult:
    """A long-running no-op for rehearsals and tests of progress display and interruption."""
    seconds = float(ctx.params["seconds"])
    steps = 20
    for i in range(steps):
        ctx.progress("waiting", i / steps)
        time.sleep(seconds / steps)
    ctx.progress("waiting", 1.0)
    return ActionResult({"waited": f"{seconds:g}"}, summary=f"waited {seconds:g} s")


register(
    Action(
        name="wait",
        params_schema={"seconds": Param(int, help="how long")},
        run=_sleep_run,
        describe=lambda ctx: f"would wait {ctx.params['seconds']} s",
        idempotent=True,
        help="Wait (rehearsals: e.g. for a token to initialise).",
    )
)


def sha256_text(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


# -- tokens -----------------------------------------------------------------------------------
class TokenSerialMismatch(CheckFailed):
    requirement = "CER-TOKEN-SERIAL"


def apply_lab_env(lab_dir: Path) -> dict[str, str]:
    """Point this process at the SoftHSM2 lab in ``lab_dir`` (rehearsals); return label->serial."""
    meta = lab_dir / "lab.json"
    data = json.loads(meta.read_text())
    os.environ["SOFTHSM2_CONF"] = str(lab_dir / "softhsm2.conf")
    os.environ["DNSSEC_PKCS11_MODULE"] = str(data["module"])
    return {str(k): str(v) for k, v in dict(data["tokens"]).items()}


def _identity(tok: Any) -> TokenIdentity:
    i = tok.identity
    return TokenIdentity(i.label, i.manufacturer, i.model, i.serial)


def _open_token(ctx: ActionContext, label: str, *, login: bool, rw: bool = False) -> Any:
    from signer.keys.pkcs11 import Pkcs11Token

    tokens: dict[tuple[str, bool, bool], Any] = ctx.session.setdefault("tokens", {})
    key = (label, login, rw)
    if key in tokens:
        return tokens[key]
    source = None
    if login:
        if ctx.pin_source_for is None:
            raise InputError(f"no PIN source for token {label!r}")
        source = ctx.pin_source_for(label).resolved(f"token '{label}'")
        ctx.forbid(source.get(f"token '{label}'"))
    tok = Pkcs11Token(f"pkcs11:token={label}", source, login=login, rw=rw)
    tokens[key] = tok
    return tok


def _check_serial(ctx: ActionContext, ident: TokenIdentity) -> str:
    want = ctx.equipment_tokens.get(ident.label)
    if want is None or want == ident.serial:
        return ""
    msg = f"token {ident.label!r} has serial {ident.serial}, the plan lists {want}"
    if ctx.rehearsal:
        return f"rehearsal: {msg} (lab serials are random; in a real ceremony this stops)"
    raise TokenSerialMismatch(msg)


def _login_checked(ctx: ActionContext, label: str) -> tuple[Any, TokenIdentity, str]:
    """Log in to token ``label`` (read-write, the run's PIN source) and check its serial
    against the plan's equipment (CER-TOKEN-SERIAL): (token, identity, rehearsal note)."""
    tok = _open_token(ctx, label, login=True, rw=True)
    ident = _identity(tok)
    return tok, ident, _check_serial(ctx, ident)


def _lab_up_run(ctx: ActionContext) -> ActionResult:
    if ctx.lab_dir is None:
        raise InputError(
            "lab-up brings up the SoftHSM2 lab and runs only in a rehearsal (ceremony run --lab DIR)"
        )
    wanted = [str(t) for t in (ctx.params.get("tokens") or [])]
    if not (ctx.lab_dir / "lab.json").exists():
        import importlib.util
        import sys

        here = Path(__file__).resolve().parent.parent / "hsm-sim" / "hsmlab.py"
        spec = importlib.util.spec_from_file_location("hsmlab", here)
        if spec is None or spec.loader is None or not here.exists():
            raise InputError("hsm-sim/hsmlab.py not found (the lab is part of the source tree)")
        mod = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("hsmlab", mod)
        spec.loader.exec_module(mod)
        ctx.progress("initialising lab tokens", 0.1)
        try:
            mod.up(ctx.lab_dir, tuple(wanted) if wanted else mod.DEFAULT_TOKENS)
        except mod.LabError as exc:
            raise TokenError(f"lab: {exc}") from None
    serials = apply_lab_env(ctx.lab_dir)
    missing = [t for t in wanted if t not in serials]
    if missing:
        raise TokenError(f"lab {ctx.lab_dir} has no token(s) {', '.join(missing)}")
    ctx.progress("lab up", 1.0)
    listing = ", ".join(f"{k}={v}" for k, v in sorted(serials.items()))
    return ActionResult({"tokens": listing}, summary=f"SoftHSM2 lab at {ctx.lab_dir}: {listing}")


register(
    Action(
        name="lab-up",
        params_schema={"tokens": Param(list, required=False, default=[], help="token labels")},
        run=_lab_up_run,
        describe=lambda ctx: (
            f"would bring up (or reuse) the SoftHSM2 lab in {ctx.lab_dir or '(no --lab given)'}"
        ),
        idempotent=True,
        help="Rehearsal only: bring up the SoftHSM2 lab tokens.",
    )
)


def _verify_tokens_run(ctx: ActionContext) -> ActionResult:
    labels = [str(t) for t in ctx.params["tokens"]]
    outputs: dict[str, Path | str] = {}
    notes: list[str] = []
    first: TokenIdentity | None = None
    for i, label in enumerate(labels):
        ctx.progress(f"probing {label}", i / max(len(labels), 1))
        ident = _identity(_open_token(ctx, label, login=False))
        first = first or ident
        note = _check_serial(ctx, ident)
        if note:
            notes.append(note)
        outputs[f"token-{label}"] = f"{ident.manufacturer} / {ident.model} / serial {ident.serial}"
    summary = "\n".join([f"{k[6:]}: {v}" for k, v in outputs.items() if isinstance(v, str)] + notes)
    return ActionResult(
        outputs, token_identity=first if len(labels) == 1 else None, summary=summary
    )


register(
    Action(
        name="verify-tokens",
        params_schema={"tokens": Param(list, help="token labels to probe")},
        run=_verify_tokens_run,
        describe=lambda ctx: (
            f"would read manufacturer, model and serial of {', '.join(map(str, ctx.params['tokens']))} (no login) and compare with the plan"
        ),
        idempotent=True,
        blanks=("Token serial(s) read aloud",),
        help="Probe tokens (no login): manufacturer, model, serial; compare serials with the plan.",
    )
)


def _quorum_login_run(ctx: ActionContext) -> ActionResult:
    label = str(ctx.params["token"])
    q = ctx.quorum or {}
    m = int(q.get("m", 1))
    if len(set(ctx.officers)) < m:
        raise CheckFailed(
            f"quorum needs {m} distinct officers, {len(set(ctx.officers))} presented",
            requirement="CER-QUORUM",
        )
    _tok, ident, note = _login_checked(ctx, label)
    return ActionResult(
        {"officers": ", ".join(ctx.officers)},
        token_identity=ident,
        summary=f"logged in to {label} with {len(ctx.officers)} of {q.get('n', '?')} officers present"
        + (f"\n{note}" if note else ""),
    )


register(
    Action(
        name="quorum-login",
        params_schema={"token": Param(str, help="token label")},
        run=_quorum_login_run,
        describe=lambda ctx: (
            f"would ask for {(ctx.quorum or {}).get('m', '?')} crypto officers and log in to token {ctx.params['token']} (PIN from file, environment or prompt; never recorded)"
        ),
        idempotent=True,
        help="The quorum of crypto officers present their credentials; log in to the token.",
    )
)


def _dnskey_outputs(
    ctx: ActionContext, dk: DnsKey, stem: str, digest: int
) -> dict[str, Path | str]:
    out: dict[str, Path | str] = {"key_tag": str(dk.key_tag), "dnskey": dk.rdata_text()}
    if dk.is_sep:
        out["ds"] = make_ds(ctx.zone, dk, digest).to_text(ctx.zone)
    return out


def _generate_key_run(ctx: ActionContext) -> ActionResult:
    label = str(ctx.params["token"])
    key_label = str(ctx.params["label"])
    tok, ident, _note = _login_checked(ctx, label)
    ctx.progress(f"generating {key_label} on {label}", None)
    bits = ctx.params.get("bits")
    key = tok.generate(
        key_label,
        ctx.params["algorithm"],
        int(bits) if bits is not None else None,
        ksk=bool(ctx.params["ksk"]),
    )
    dk: DnsKey = key.dnskey
    file = ctx.artifact_path(f"{key_label}.dnskey")
    write_atomic(file, dk.to_text(ctx.zone, int(ctx.params["ttl"])) + "\n")
    outputs = _dnskey_outputs(ctx, dk, key_label, 2)
    outputs["dnskey_file"] = file
    outputs["uri"] = key.uri.to_text()
    summary = (
        f"generated {dk.describe()} on {ident.label} (serial {ident.serial})\nkey tag {dk.key_tag}"
    )
    if "ds" in outputs:
        summary += f"\nDS {outputs['ds']}"
    return ActionResult(outputs, token_identity=ident, summary=summary)


register(
    Action(
        name="generate-key",
        params_schema={
            "token": Param(str, help="token label"),
            "label": Param(str, help="key label on the token (must not exist)"),
            "algorithm": Param(int, help="DNSSEC algorithm number"),
            "bits": Param(int, required=False, help="RSA modulus size"),
            "ksk": Param(bool, required=False, default=True, help="SEP flag (KSK)"),
            "ttl": Param(int, required=False, default=3600, help="DNSKEY TTL in the artifact"),
        },
        run=_generate_key_run,
        describe=lambda ctx: (
            f"would generate a {'KSK' if ctx.params.get('ksk', True) else 'ZSK'} "
            f"(algorithm {ctx.params['algorithm']}) labelled {ctx.params['label']} on token {ctx.params['token']}; "
            "non-extractable; NEVER repeated"
        ),
        idempotent=False,
        blanks=("Key tag", "DS digest (SHA-256)"),
        help="Generate a key pair on a token (non-extractable); write its DNSKEY, key tag and DS.",
    )
)


def _print_ds_run(ctx: ActionContext) -> ActionResult:
    full = _resolve_in_dir(ctx, str(ctx.params["dnskey"]))
    text = full.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(";")]
    if not lines:
        raise InputError("no DNSKEY record", path=str(full))
    parts = lines[0].split()
    try:
        idx = parts.index("DNSKEY")
    except ValueError:
        raise InputError("not a DNSKEY record", path=str(full), line=1) from None
    dk = DnsKey.from_text(" ".join(parts[idx + 1 :]))
    digest = int(ctx.params["digest"])
    ds = make_ds(ctx.zone, dk, digest)
    out: dict[str, Path | str] = {"key_tag": str(dk.key_tag), "ds": ds.to_text(ctx.zone)}
    return ActionResult(out, summary=f"key tag {dk.key_tag}\nDS {out['ds']}")


register(
    Action(
        name="print-ds",
        params_schema={
            "dnskey": Param(str, help="DNSKEY file (relative to the ceremony directory)"),
            "digest": Param(int, required=False, default=2, help="DS digest type (2 = SHA-256)"),
        },
        run=_print_ds_run,
        describe=lambda ctx: (
            f"would print the key tag and DS (digest {ctx.params.get('digest', 2)}) of {ctx.params['dnskey']}"
        ),
        idempotent=True,
        blanks=("Key tag", "DS digest"),
        help="Show the key tag and DS record of a KSK for the parent zone.",
    )
)


# -- key bundles: make-request (ZSK side) and sign-request (KSK side) ---------------------------
DAY = 86400


def _token_key(ctx: ActionContext, spec: str, what: str, *, flags: int | None = None) -> Any:
    """Open the key a ``pkcs11:`` URI names through the ceremony's token sessions (the PIN from
    the run's PIN source, registered as a secret); return (key, token identity)."""
    from signer.keys.uri import is_pkcs11_uri, parse_pkcs11_uri

    if not is_pkcs11_uri(spec):
        raise InputError(f"{what} {spec!r} is not a pkcs11: URI; a ceremony uses token keys only")
    uri = parse_pkcs11_uri(spec)
    if uri.token is None:
        raise InputError(f"{what} {spec!r} names no token (token=LABEL)")
    tok, ident, _note = _login_checked(ctx, uri.token)
    return tok.find(label=uri.object, id=uri.id, flags=flags), ident


def _file_param(ctx: ActionContext, name: str, what: str) -> Path:
    return _resolve_in_dir(ctx, str(ctx.params[name]), what)


def _midnight(now: int) -> int:
    return now - now % DAY


def _make_request_window(ctx: ActionContext, policy: Any, now: int) -> tuple[Any, str]:
    """The window to plan: the policy's, or ``start``/``length`` from the params.

    A rehearsal on a policy whose window already began before today starts it today (00:00
    UTC) instead, and says so; a real ceremony refuses a window whose first bundle would be
    expired before it is signed.
    """
    from signer.bundles.policy import Window, parse_duration, parse_time, time_text, window_with

    base = policy.window
    start_text, length_text = ctx.params.get("start"), ctx.params.get("length")
    try:
        start = parse_time(str(start_text)) if start_text else None
        length = parse_duration(str(length_text)) if length_text else None
    except ValueError as exc:
        raise InputError(f"make-request: {exc}") from None
    w = window_with(base, start, length)
    if w is None:
        raise InputError(f"{policy.path}: no window: in the policy; give params start and length")
    note = ""
    today = _midnight(now)
    if start is None and w.start < today and ctx.rehearsal:
        note = (
            f"rehearsal: the policy window starts {time_text(w.start)}, in the past; planned "
            f"from {time_text(today)} instead (a real ceremony sets the policy's window)"
        )
        w = Window(today, w.length, w.max_length)
    elif w.start + policy.ksk.signature_validity.max <= now:
        raise InputError(
            f"the window starts {time_text(w.start)}: its first bundle would have expired "
            "before it is signed; set window: in the policy (or the step's start param)"
        )
    return w, note


def _make_request_run(ctx: ActionContext) -> ActionResult:
    from dataclasses import replace

    from signer.bundles.planner import PlannedZsk, plan_request
    from signer.bundles.policy import load_policy, time_text
    from signer.bundles.request import add_proofs, declared_policy, write_request
    from signer.bundles.textformat import load_response

    policy_path = _file_param(ctx, "policy", "policy file")
    pol = load_policy(policy_path)
    previous = (
        _file_param(ctx, "previous", "previous response") if ctx.params.get("previous") else None
    )
    now = int(time.time())
    window, note = _make_request_window(ctx, pol, now)
    ctx.progress("opening the ZSK", 0.1)
    zsk, ident = _token_key(ctx, str(ctx.params["zsk"]), "ZSK")
    prev = load_response(previous, zone=pol.zone) if previous else None
    plan = plan_request(pol, [PlannedZsk(zsk)], window, previous=prev)
    ctx.progress("proofs of possession", 0.4)
    req = add_proofs(plan.request, [zsk])
    req = replace(req, declared_policy=declared_policy(pol))
    out = ctx.artifact_path(str(ctx.params["out"]))
    digest, mpath = write_request(
        out,
        req,
        window=(window.start, window.end),
        policy_path=str(policy_path),
        previous_path=str(previous) if previous else None,
    )
    ctx.progress("request written", 1.0)
    span = f"{time_text(req.start)}..{time_text(req.end)}"
    outputs: dict[str, Path | str] = {
        "request": out,
        "request_manifest": mpath,
        "bundles": str(len(req.bundles)),
        "window": f"{time_text(window.start)}..{time_text(window.end)}",
        "zsk_key_tag": str(zsk.dnskey.key_tag),
        "sha256": digest,
    }
    summary = (
        f"request {out.name}: {len(req.bundles)} bundles {span} for {pol.zone.to_text()}, "
        f"ZSK {zsk.dnskey.key_tag} on {ident.label} (serial {ident.serial})\n"
        + hash_line(out.name, digest)
        + (f"\n{note}" if note else "")
    )
    return ActionResult(outputs, token_identity=ident, summary=summary)


register(
    Action(
        name="make-request",
        params_schema={
            "policy": Param(str, help="policy file (YAML: signer:, ksk:, window:)"),
            "zsk": Param(str, help="the ZSK's pkcs11: URI, e.g. {{ steps.zsk.uri }}"),
            "out": Param(str, help="artifact name of the request (KSR); manifest: OUT.json"),
            "start": Param(str, required=False, help="window start (UTC ...Z); default: policy"),
            "length": Param(str, required=False, help="window length (ISO 8601); default: policy"),
            "previous": Param(str, required=False, help="previous response (hand-over proof)"),
        },
        run=_make_request_run,
        describe=lambda ctx: (
            f"would plan the bundles of the window in {ctx.params['policy']} for ZSK "
            f"{ctx.params['zsk']}, sign the proofs of possession on its token and write "
            f"artifacts/{ctx.params['out']} (+ .json manifest)"
        ),
        idempotent=True,
        blanks=("Request SHA-256 (first and last 4 PGP words)",),
        help="ZSK side: plan the key bundles of the policy window and write the request (KSR).",
    )
)


def _copy_in(ctx: ActionContext, src: Path) -> Path:
    """``src`` if it is inside the ceremony directory, else a copy in artifacts/ (same name)."""
    try:
        src.resolve().relative_to(ctx.ceremony_dir.resolve())
        return src
    except ValueError:
        pass
    dest = ctx.artifact_path(src.name)
    data = src.read_bytes()
    if dest.exists() and dest.read_bytes() != data:
        raise OutputError(f"{dest}: exists with other content; refusing to overwrite an artifact")
    if not dest.exists():
        write_atomic(dest, data)
    return dest


# Actions whose outputs vouch for a KSK in this ceremony: it was generated here (its DNSKEY),
# or its key tag and DS were read out for the witnesses (print-ds, generate-key).
_VOUCHING_ACTIONS = ("generate-key", "print-ds")


def _unvouched_ksks(ctx: ActionContext, ksks: Mapping[str, Any]) -> tuple[str, ...]:
    """The KSKs about to sign that no earlier step of this ceremony generated or verified
    (print-ds): each gets a warning naming it, its key tag and its DS."""
    dnskeys: set[str] = set()
    ds_texts: set[str] = set()
    for e in ctx.earlier:
        if e.action in _VOUCHING_ACTIONS:
            if "dnskey" in e.outputs:
                dnskeys.add(e.outputs["dnskey"])
            if "ds" in e.outputs:
                ds_texts.add(e.outputs["ds"])
    out: list[str] = []
    for name, key in ksks.items():
        dk: DnsKey = key.dnskey
        if dk.rdata_text() in dnskeys:
            continue
        ds = {make_ds(ctx.zone, dk, digest).to_text(ctx.zone) for digest in (2, 4)}
        if ds & ds_texts:
            continue
        out.append(
            f"KSK {name} (key tag {dk.key_tag}, DS {make_ds(ctx.zone, dk, 2).rdata_text()}) "
            "was neither generated nor verified (print-ds) earlier in this ceremony: compare "
            "its key tag and DS with the parent's DS before the response leaves the room"
        )
    for w in out:
        log.warning("sign-request: %s", w)
    return tuple(out)


def _sign_request_run(ctx: ActionContext) -> ActionResult:
    from ceremony.ksk import check_request_file, sign_request_file
    from signer.bundles.manifest import manifest_path
    from signer.bundles.policy import load_ksk_policy, time_text

    q = ctx.quorum or {}
    m = int(q.get("m", 0)) if ctx.quorum else 0
    if len(set(ctx.officers)) < m:
        raise CheckFailed(
            f"sign-request uses the KSK: a quorum login ({m} officers) must come first",
            requirement="CER-QUORUM",
        )
    request = _file_param(ctx, "request", "request file")
    policy_path = _file_param(ctx, "policy", "policy file")
    previous = (
        _file_param(ctx, "previous", "previous response") if ctx.params.get("previous") else None
    )
    policy = load_ksk_policy(policy_path)
    if not policy.keys:
        raise InputError(f"{policy_path}: ksk.keys names no KSK")
    # Check the request before any key is touched (sign_request_file checks again).
    now = int(time.time())
    req = check_request_file(request, policy, now=now, previous_path=previous)
    ctx.progress("opening the KSK(s)", 0.2)
    ksks: dict[str, Any] = {}
    first: TokenIdentity | None = None
    for ref in policy.keys:
        key, ident = _token_key(ctx, ref.spec, f"KSK {ref.name}", flags=257)
        ksks[ref.name] = key
        first = first or ident
    warnings = _unvouched_ksks(ctx, ksks)
    ctx.progress(f"signing {len(req.bundles)} bundles", 0.4)
    out = ctx.artifact_path(str(ctx.params["out"]))
    res = sign_request_file(
        request,
        out,
        policy,
        ksks,
        now=now,
        previous_path=previous,
        policy_path=str(policy_path),
    )
    ctx.progress("response written and re-verified", 1.0)
    kept_request = _copy_in(ctx, request)
    outputs: dict[str, Path | str] = {"response": out, "response_manifest": res.manifest}
    outputs["request"] = kept_request
    rm = manifest_path(request)
    if rm.is_file():
        outputs["request_manifest"] = _copy_in(ctx, rm)
    names = list(ksks)
    outputs["ksk_dnskey"] = ksks[names[0]].dnskey.rdata_text()
    for n in names[1:]:
        outputs[f"ksk_dnskey_{n}"] = ksks[n].dnskey.rdata_text()
    tags = ", ".join(f"{n} {k.dnskey.key_tag}" for n, k in ksks.items())
    resp = res.response
    outputs["ksk_key_tags"] = tags
    outputs["bundles"] = str(len(resp.bundles))
    outputs["window"] = f"{time_text(resp.start)}..{time_text(resp.end)}"
    outputs["request_sha256"] = res.request_sha256
    outputs["sha256"] = res.sha256
    summary = (
        f"signed {len(resp.bundles)} bundles {outputs['window']} for {resp.zone.to_text()} "
        f"with KSK {tags}; the response was re-parsed and re-verified\n"
        + hash_line(request.name + " (request)", res.request_sha256)
        + "\n"
        + hash_line(out.name + " (response)", res.sha256)
    )
    return ActionResult(outputs, token_identity=first, summary=summary, warnings=warnings)


register(
    Action(
        name="sign-request",
        params_schema={
            "request": Param(str, help="the request (KSR), with its .json manifest beside it"),
            "policy": Param(str, help="the KSK policy (ksk: and zone:); ksk.keys name the KSKs"),
            "out": Param(str, help="artifact name of the response (SKR); manifest: OUT.json"),
            "previous": Param(str, required=False, help="the last response (chain checks)"),
        },
        run=_sign_request_run,
        describe=lambda ctx: (
            f"would check {ctx.params['request']} against {ctx.params['policy']} (every KSR-* "
            "check), sign every bundle with the KSK(s) of its ksk.keys on the token logged in "
            f"by the quorum, re-verify and write artifacts/{ctx.params['out']} (+ .json manifest)"
        ),
        idempotent=True,
        blanks=("Response SHA-256 (first and last 4 PGP words)",),
        help="KSK side: check a key-bundle request and sign it with the KSK(s): the response.",
        needs_quorum=True,
    )
)
