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
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.errors import InputError, OutputError
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
    if p.exists():
        raise OutputError(f"{p}: exists already; refusing to overwrite an artifact")
    write_atomic(p, str(ctx.params["content"]))
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
        idempotent=False,
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
    digest = sha256_file(full)
    return ActionResult(
        {"sha256": digest, "words": pgp_words(bytes.fromhex(digest))},
        summary=hash_line(full.name, digest),
    )


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
