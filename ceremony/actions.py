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

PINs come from :class:`signer.pin.PinSource` (file, environment, prompt), are registered with
the transcript as forbidden values and never returned in outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.dnskey import DnsKey, make_ds
from signer.errors import CheckFailed, InputError, OutputError, TokenError
from signer.fileio import sha256_file, write_atomic
from signer.pgpwords import pgp_words


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


def _resolve_in_dir(ctx: ActionContext, name: str) -> Path:
    p = Path(name)
    full = p if p.is_absolute() else ctx.ceremony_dir / p
    if not full.is_file():
        raise InputError("no such file", path=str(full))
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
        tmp = dest_dir / f".{src.name}.copying"
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            total = max(src.stat().st_size, 1)
            done = 0
            for chunk in iter(lambda: fi.read(1 << 20), b""):
                fo.write(chunk)
                done += len(chunk)
                ctx.progress(f"copying {src.name}", done / total)
            fo.flush()
            os.fsync(fo.fileno())
        os.replace(tmp, dest)
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
    tok = _open_token(ctx, label, login=True, rw=True)
    ident = _identity(tok)
    note = _check_serial(ctx, ident)
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
    tok = _open_token(ctx, label, login=True, rw=True)
    ident = _identity(tok)
    _check_serial(ctx, ident)
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
