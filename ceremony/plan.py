"""The ceremony plan: one strict YAML document, checked before anything runs.

Schema (version 1; every key below is known, any other key is refused with ``file:line``)::

    version: 1
    metadata:                       # all required
      id: ksk-2025-01               # [A-Za-z0-9._-]+, the ceremony id in every transcript record
      title: KSK generation
      zone: example.
      date: "2025-01-15"
      place: Secure room 2
      policy: DPS example v1.0, section 5.2
    roles:                          # role id -> title and kind (kinds: ROLE_KINDS)
      CA: {title: Ceremony Administrator, kind: administrator}
      IW: {title: Internal Witness, kind: internal-witness}
      CO: {title: Crypto Officer, kind: crypto-officer}
    quorum:                         # optional: m-of-n holders of a role must log in together
      role: CO
      m: 2
      n: 3                          # optional; must equal the number of holders in the roster
    roster:
      - {name: Alice Example, initials: AE, roles: [CA]}
    equipment:                      # optional lists; laptop optional
      laptop: {id: LT-1, description: "air-gapped laptop"}
      tokens: [{label: ksk-primary, serial: "0001", model: SoftHSM, bag: TEB-100}]
      media: [{id: USB-1, description: "transfer stick", bag: TEB-200}]
      bags: [{number: TEB-100, contents: KSK token}]
    variables: {key_label: ksk-2025}   # optional, templating defaults (``vars.key_label``)
    sections:
      - title: Opening
        steps:
          - manual: Read the ceremony purpose aloud.
            role: CA
            witness: IW                # optional; default the internal-witness role
            record: [{name: bag, label: Bag number of the KSK token}]   # optional blanks
            id: open                   # optional; lets later steps use ``steps.open.bag``
          - action: generate-key       # a name from ceremony.actions.REGISTRY
            role: CA
            text: Generate the KSK.    # optional, read aloud
            params: {token: ksk-primary, algorithm: 13, label: "{{ vars.key_label }}"}
            id: ksk

Steps are numbered 1..N across sections in document order. Strings in ``manual``, ``text``
and (string) ``params`` are Jinja2 templates rendered at run time in a sandbox with
StrictUndefined; the names available are ``metadata``, ``vars``, ``steps`` (``steps.<id>.<x>``:
an earlier step's outputs and recorded blanks), ``equipment`` and ``quorum``. Template syntax
and references to unknown names or to ids of later steps are refused at load time.

Site variables: :func:`load` with ``variables={name: value}`` (``ceremony run --set``) replaces
the values of existing scalar ``variables:`` in the source text (nothing else changes, comments
stay), so the plan that runs -- hashed, copied into the ceremony directory as ``plan.yaml`` and
audited -- is exactly the effective plan. See :func:`with_variables`.

Errors: structural problems raise :class:`signer.errors.InputError` (exit 2) with ``file:line``;
:func:`lint` raises :class:`PlanLintFailed` subclasses (exit 1) for role separation
(``CER-ROLE-SEPARATION``), quorum reachability (``CER-QUORUM-REACHABLE``) and staffing
(``CER-ROLE-STAFFED``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes
import yaml
from jinja2.sandbox import SandboxedEnvironment

from signer import yamlstrict
from signer.errors import CheckFailed, InputError
from signer.yamlstrict import StrictSafeLoader

ROLE_KINDS = (
    "administrator",
    "internal-witness",
    "crypto-officer",
    "safe-controller",
    "system-administrator",
    "auditor",
    "remote-witness",
    "witness",
    "observer",
)
OPERATIONAL_KINDS = frozenset(
    {"administrator", "crypto-officer", "safe-controller", "system-administrator"}
)
# Pairs of role kinds one person may not hold together.
INCOMPATIBLE_KINDS: tuple[tuple[str, str], ...] = (
    ("administrator", "internal-witness"),
    ("internal-witness", "crypto-officer"),
    ("internal-witness", "safe-controller"),
    ("internal-witness", "system-administrator"),
    *(("auditor", k) for k in sorted(OPERATIONAL_KINDS | {"internal-witness"})),
)
TEMPLATE_NAMES = frozenset({"metadata", "vars", "steps", "equipment", "quorum"})
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PlanLintFailed(CheckFailed):
    requirement = "CER-PLAN"


class RoleSeparationViolated(PlanLintFailed):
    requirement = "CER-ROLE-SEPARATION"


class QuorumUnreachable(PlanLintFailed):
    requirement = "CER-QUORUM-REACHABLE"


class RoleNotStaffed(PlanLintFailed):
    requirement = "CER-ROLE-STAFFED"


@dataclass(frozen=True)
class Metadata:
    id: str
    title: str
    zone: str
    date: str
    place: str
    policy: str


@dataclass(frozen=True)
class Role:
    id: str
    title: str
    kind: str
    line: int


@dataclass(frozen=True)
class Person:
    name: str
    initials: str
    roles: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Quorum:
    role: str
    m: int
    n: int
    line: int


@dataclass(frozen=True)
class TokenItem:
    label: str
    serial: str
    model: str | None
    bag: str | None


@dataclass(frozen=True)
class Medium:
    id: str
    description: str | None
    bag: str | None


@dataclass(frozen=True)
class Bag:
    number: str
    contents: str


@dataclass(frozen=True)
class Laptop:
    id: str
    description: str | None


@dataclass(frozen=True)
class Equipment:
    laptop: Laptop | None = None
    tokens: tuple[TokenItem, ...] = ()
    media: tuple[Medium, ...] = ()
    bags: tuple[Bag, ...] = ()


@dataclass(frozen=True)
class Blank:
    name: str
    label: str


@dataclass(frozen=True)
class Step:
    number: int
    section: int  # 1-based section number
    kind: str  # "manual" | "action"
    text: str  # the manual text, or the action's optional description ("" if none)
    role: str
    witness: str
    id: str | None = None
    action: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    record: tuple[Blank, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Section:
    number: int
    title: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Plan:
    path: str
    sha256: str
    source: bytes
    metadata: Metadata
    roles: Mapping[str, Role]
    roster: tuple[Person, ...]
    quorum: Quorum | None
    equipment: Equipment
    variables: Mapping[str, Any]
    sections: tuple[Section, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for sec in self.sections for s in sec.steps)

    def step(self, number: int) -> Step:
        return self.steps[number - 1]

    def holders(self, role: str) -> tuple[Person, ...]:
        return tuple(p for p in self.roster if role in p.roles)

    def person(self, name: str) -> Person | None:
        for p in self.roster:
            if p.name == name:
                return p
        return None

    def roles_of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(r.id for r in self.roles.values() if r.kind == kind)

    @property
    def witness_role(self) -> str:
        return self.roles_of_kind("internal-witness")[0]

    def template_context(self) -> dict[str, Any]:
        """The static part of the Jinja2 context (``steps`` is added at run time)."""
        eq = self.equipment
        return {
            "metadata": vars(self.metadata).copy(),
            "vars": dict(self.variables),
            "equipment": {
                "laptop": vars(eq.laptop).copy() if eq.laptop else None,
                "tokens": {t.label: vars(t).copy() for t in eq.tokens},
                "media": {m.id: vars(m).copy() for m in eq.media},
                "bags": {b.number: vars(b).copy() for b in eq.bags},
            },
            "quorum": vars(self.quorum).copy() if self.quorum else None,
        }


# -- templating ------------------------------------------------------------------------------
def template_env() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def render_value(value: Any, context: Mapping[str, Any], *, where: str = "") -> Any:
    """Render every string in ``value`` (recursively) as a template against ``context``."""
    env = template_env()
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        try:
            return env.from_string(value).render(**context)
        except jinja2.UndefinedError as exc:
            raise InputError(f"{where}template: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise InputError(f"{where}template: {exc}") from None
    if isinstance(value, Mapping):
        return {k: render_value(v, context, where=where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, context, where=where) for v in value]
    return value


def _check_template(
    text: str, path: str, line: int, earlier_ids: set[str], all_ids: set[str]
) -> None:
    if "{{" not in text and "{%" not in text:
        return
    env = template_env()
    try:
        ast = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(
            f"template syntax error: {exc.message}", path=path, line=line + (exc.lineno or 1) - 1
        ) from None
    unknown = jinja2.meta.find_undeclared_variables(ast) - TEMPLATE_NAMES
    if unknown:
        raise InputError(
            f"template uses unknown name(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(TEMPLATE_NAMES))})",
            path=path,
            line=line,
        )
    for node in ast.find_all(jinja2.nodes.Getattr):
        if isinstance(node.node, jinja2.nodes.Name) and node.node.name == "steps":
            if node.attr not in all_ids:
                raise InputError(
                    f"template refers to unknown step id {node.attr!r}", path=path, line=line
                )
            if node.attr not in earlier_ids:
                raise InputError(
                    f"template refers to step {node.attr!r}, which comes later",
                    path=path,
                    line=line,
                )


# -- YAML node walking -----------------------------------------------------------------------
class _Reader:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.loader = StrictSafeLoader(text)

    def line(self, node: yaml.Node) -> int:
        return int(node.start_mark.line) + 1

    def err(self, node: yaml.Node, msg: str) -> InputError:
        return InputError(msg, path=self.path, line=self.line(node))

    def mapping(
        self, node: yaml.Node, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, yaml.Node]:
        return yamlstrict.mapping_nodes(node, what, (*required, *optional), required, self.err)

    def free_mapping(self, node: yaml.Node, what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.err(node, f"{what} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise self.err(k, f"{what}: keys must be plain strings")
            if k.value in out:
                raise self.err(k, f"{what}: duplicate key {k.value!r}")
            out[str(k.value)] = v
        return out

    def seq(self, node: yaml.Node, what: str, *, nonempty: bool = False) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.err(node, f"{what} must be a list")
        if nonempty and not node.value:
            raise self.err(node, f"{what} must not be empty")
        return list(node.value)

    def string(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.err(node, f"{what} must be a string")
        value = str(node.value)
        if not value.strip():
            raise self.err(node, f"{what} must not be empty")
        return value

    def opt_string(self, m: Mapping[str, yaml.Node], key: str, what: str) -> str | None:
        return self.string(m[key], f"{what}.{key}") if key in m else None

    def ident(self, node: yaml.Node, what: str) -> str:
        s = self.string(node, what)
        if not _ID_RE.match(s):
            raise self.err(node, f"{what} {s!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")
        return s

    def integer(self, node: yaml.Node, what: str) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:int":
            raise self.err(node, f"{what} must be an integer")
        return int(self.loader.construct_object(node, deep=True))

    def value(self, node: yaml.Node) -> Any:
        v = self.loader.construct_object(node, deep=True)
        return _plain(v)


def _plain(v: Any) -> Any:
    if isinstance(v, _dt.date | _dt.datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


# Validates an action step's params; given (action name, params, reader, params node).
ParamsValidator = Callable[[str, dict[str, Any], int], None]


def with_variables(source: bytes, path: str, values: Mapping[str, str]) -> bytes:
    """``source`` with the values of some ``variables:`` replaced in place.

    Each name must be an existing variable with a scalar value. A value that YAML reads as an
    integer, float or boolean (``13``, ``true``) keeps that type; anything else becomes a
    string. Only the value's characters change: comments and layout stay.
    """
    if not values:
        return source
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", path=path) from None
    try:
        root = yamlstrict.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InputError(f"YAML: {exc.problem}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML: {exc}", path=path) from None
    spans: dict[str, tuple[int, int]] = {}
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if k.value == "variables" and isinstance(v, yaml.MappingNode):
                for vk, vv in v.value:
                    spans[str(vk.value)] = (
                        (vv.start_mark.index, vv.end_mark.index)
                        if isinstance(vv, yaml.ScalarNode)
                        else (-1, -1)
                    )
    edits: list[tuple[int, int, str]] = []
    for name, raw in values.items():
        if name not in spans:
            known = ", ".join(sorted(spans)) or "none"
            raise InputError(
                f"--set {name}: the plan has no variable {name!r} (known: {known})", path=path
            )
        start, end = spans[name]
        if start < 0:
            raise InputError(f"--set {name}: variable {name!r} is not a single value", path=path)
        try:
            typed = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            typed = raw
        if not isinstance(typed, int | float | bool):  # bool is an int
            typed = raw
        edits.append((start, end, json.dumps(typed)))
    for start, end, rep in sorted(edits, reverse=True):
        text = text[:start] + rep + text[end:]
    return text.encode("utf-8")


def load(
    path: str | os.PathLike[str],
    *,
    check_lint: bool = True,
    variables: Mapping[str, str] | None = None,
) -> Plan:
    """Load and check a plan (with ``variables`` replaced, see :func:`with_variables`).
    Structural errors: InputError (2); lint: PlanLintFailed (1)."""
    p = Path(path)
    try:
        source = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read plan: {exc.strerror}", path=str(p)) from None
    source = with_variables(source, str(p), variables or {})
    plan = parse(source, str(p))
    if check_lint:
        lint(plan)
    return plan


def parse(source: bytes, path: str = "<plan>") -> Plan:
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", path=path) from None
    r = _Reader(path, text)
    try:
        root = r.loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InputError(f"YAML: {exc.problem}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML: {exc}", path=path) from None
    if root is None:
        raise InputError("empty plan", path=path)
    top = r.mapping(
        root,
        "plan",
        ("version", "metadata", "roles", "roster", "sections"),
        ("quorum", "equipment", "variables"),
    )
    version = r.integer(top["version"], "version")
    if version != 1:
        raise r.err(top["version"], f"unsupported plan version {version} (this tool reads 1)")

    md = r.mapping(top["metadata"], "metadata", ("id", "title", "zone", "date", "place", "policy"))
    metadata = Metadata(
        id=r.ident(md["id"], "metadata.id"),
        title=r.string(md["title"], "metadata.title"),
        zone=r.string(md["zone"], "metadata.zone"),
        date=r.string(md["date"], "metadata.date"),
        place=r.string(md["place"], "metadata.place"),
        policy=r.string(md["policy"], "metadata.policy"),
    )

    roles: dict[str, Role] = {}
    for rid, rnode in r.free_mapping(top["roles"], "roles").items():
        key_node = next(k for k, _v in top["roles"].value if k.value == rid)
        if not _ID_RE.match(rid) or rid == "system":
            raise r.err(key_node, f"role id {rid!r} is not allowed")
        rm = r.mapping(rnode, f"roles.{rid}", ("title", "kind"))
        kind = r.string(rm["kind"], f"roles.{rid}.kind")
        if kind not in ROLE_KINDS:
            raise r.err(
                rm["kind"], f"roles.{rid}.kind {kind!r} unknown (known: {', '.join(ROLE_KINDS)})"
            )
        roles[rid] = Role(rid, r.string(rm["title"], f"roles.{rid}.title"), kind, r.line(rnode))
    if not roles:
        raise r.err(top["roles"], "roles must not be empty")
    for needed in ("administrator", "internal-witness"):
        if not any(ro.kind == needed for ro in roles.values()):
            raise r.err(top["roles"], f"roles: a role of kind {needed!r} is required")

    def role_ref(node: yaml.Node, what: str) -> str:
        rid = r.string(node, what)
        if rid not in roles:
            raise r.err(node, f"{what}: unknown role {rid!r} (roles: {', '.join(roles)})")
        return rid

    roster: list[Person] = []
    names: set[str] = set()
    for i, pnode in enumerate(r.seq(top["roster"], "roster", nonempty=True)):
        pm = r.mapping(pnode, f"roster[{i}]", ("name", "initials", "roles"))
        name = r.string(pm["name"], f"roster[{i}].name")
        if name in names:
            raise r.err(pm["name"], f"roster: {name!r} listed twice")
        names.add(name)
        initials = r.string(pm["initials"], f"roster[{i}].initials")
        if not re.fullmatch(r"[A-Za-z]{1,4}", initials):
            raise r.err(pm["initials"], f"roster[{i}].initials {initials!r}: 1-4 letters")
        proles = tuple(
            role_ref(n, f"roster[{i}].roles")
            for n in r.seq(pm["roles"], f"roster[{i}].roles", nonempty=True)
        )
        roster.append(Person(name, initials.upper(), proles, r.line(pnode)))
    initials_seen: dict[str, str] = {}
    for person in roster:
        if person.initials in initials_seen:
            raise InputError(
                f"roster: {person.name!r} and {initials_seen[person.initials]!r} share "
                f"initials {person.initials}",
                path=path,
                line=person.line,
            )
        initials_seen[person.initials] = person.name

    quorum: Quorum | None = None
    if "quorum" in top:
        qm = r.mapping(top["quorum"], "quorum", ("role", "m"), ("n",))
        qrole = role_ref(qm["role"], "quorum.role")
        m = r.integer(qm["m"], "quorum.m")
        n = r.integer(qm["n"], "quorum.n") if "n" in qm else sum(qrole in p.roles for p in roster)
        if m < 1:
            raise r.err(qm["m"], "quorum.m must be at least 1")
        quorum = Quorum(qrole, m, n, r.line(top["quorum"]))

    equipment = Equipment()
    if "equipment" in top:
        em = r.mapping(top["equipment"], "equipment", (), ("laptop", "tokens", "media", "bags"))
        laptop = None
        if "laptop" in em:
            lm = r.mapping(em["laptop"], "equipment.laptop", ("id",), ("description",))
            laptop = Laptop(
                r.string(lm["id"], "equipment.laptop.id"),
                r.opt_string(lm, "description", "equipment.laptop"),
            )
        tokens = []
        for i, tn in enumerate(r.seq(em["tokens"], "equipment.tokens") if "tokens" in em else []):
            w = f"equipment.tokens[{i}]"
            tm = r.mapping(tn, w, ("label", "serial"), ("model", "bag"))
            tokens.append(
                TokenItem(
                    r.string(tm["label"], f"{w}.label"),
                    r.string(tm["serial"], f"{w}.serial"),
                    r.opt_string(tm, "model", w),
                    r.opt_string(tm, "bag", w),
                )
            )
        media = []
        for i, mn in enumerate(r.seq(em["media"], "equipment.media") if "media" in em else []):
            w = f"equipment.media[{i}]"
            mm = r.mapping(mn, w, ("id",), ("description", "bag"))
            media.append(
                Medium(
                    r.string(mm["id"], f"{w}.id"),
                    r.opt_string(mm, "description", w),
                    r.opt_string(mm, "bag", w),
                )
            )
        bags = []
        for i, bn in enumerate(r.seq(em["bags"], "equipment.bags") if "bags" in em else []):
            w = f"equipment.bags[{i}]"
            bm = r.mapping(bn, w, ("number", "contents"))
            bags.append(
                Bag(
                    r.string(bm["number"], f"{w}.number"), r.string(bm["contents"], f"{w}.contents")
                )
            )
        equipment = Equipment(laptop, tuple(tokens), tuple(media), tuple(bags))

    variables: dict[str, Any] = {}
    if "variables" in top:
        for k, vn in r.free_mapping(top["variables"], "variables").items():
            if not _NAME_RE.match(k):
                raise r.err(vn, f"variables: name {k!r} must be an identifier")
            variables[k] = r.value(vn)

    witness_default = next(ro.id for ro in roles.values() if ro.kind == "internal-witness")

    # First pass: collect step ids so templates can be checked against them.
    section_nodes = r.seq(top["sections"], "sections", nonempty=True)
    all_ids: set[str] = set()
    for sn in section_nodes:
        if isinstance(sn, yaml.MappingNode):
            for k, v in sn.value:
                if k.value == "steps" and isinstance(v, yaml.SequenceNode):
                    for st in v.value:
                        if isinstance(st, yaml.MappingNode):
                            for sk, sv in st.value:
                                if sk.value == "id" and isinstance(sv, yaml.ScalarNode):
                                    all_ids.add(str(sv.value))

    from ceremony.actions import REGISTRY, validate_params  # lazy: actions imports plan

    sections: list[Section] = []
    earlier_ids: set[str] = set()
    number = 0
    for si, sn in enumerate(section_nodes, start=1):
        sm = r.mapping(sn, f"sections[{si - 1}]", ("title", "steps"))
        title = r.string(sm["title"], f"sections[{si - 1}].title")
        steps: list[Step] = []
        for stn in r.seq(sm["steps"], f"sections[{si - 1}].steps", nonempty=True):
            number += 1
            w = f"step {number}"
            if isinstance(stn, yaml.MappingNode) and any(k.value == "action" for k, _ in stn.value):
                stm = r.mapping(
                    stn, w, ("action", "role"), ("text", "params", "id", "witness", "record")
                )
                kind = "action"
                action = r.string(stm["action"], f"{w}.action")
                if action not in REGISTRY:
                    raise r.err(
                        stm["action"],
                        f"{w}: unknown action {action!r} (known: {', '.join(sorted(REGISTRY))})",
                    )
                text = r.opt_string(stm, "text", w) or ""
                params: dict[str, Any] = {}
                if "params" in stm:
                    pnode = stm["params"]
                    r.free_mapping(pnode, f"{w}.params")
                    params = r.value(pnode)
                    try:
                        validate_params(action, params)
                    except InputError as exc:
                        raise r.err(pnode, f"{w}.params: {exc.reason}") from None
                    for pv in params.values():
                        for s in _strings(pv):
                            _check_template(s, path, r.line(pnode), earlier_ids, all_ids)
                else:
                    try:
                        validate_params(action, params)
                    except InputError as exc:
                        raise r.err(stn, f"{w}.params: {exc.reason}") from None
            else:
                stm = r.mapping(stn, w, ("manual", "role"), ("id", "witness", "record"))
                kind = "manual"
                action = None
                params = {}
                text = r.string(stm["manual"], f"{w}.manual")
            role = role_ref(stm["role"], f"{w}.role")
            witness = (
                role_ref(stm["witness"], f"{w}.witness") if "witness" in stm else witness_default
            )
            if roles[witness].kind not in (
                "internal-witness",
                "witness",
                "auditor",
                "remote-witness",
            ):
                raise r.err(stm["witness"], f"{w}.witness: role {witness!r} is not a witness role")
            text_node = stm.get("manual", stm.get("text"))
            if text and text_node is not None:
                _check_template(text, path, r.line(text_node), earlier_ids, all_ids)
            blanks: list[Blank] = []
            if "record" in stm:
                for bi, bn in enumerate(r.seq(stm["record"], f"{w}.record", nonempty=True)):
                    bm = r.mapping(bn, f"{w}.record[{bi}]", ("name", "label"))
                    bname = r.string(bm["name"], f"{w}.record[{bi}].name")
                    if not _NAME_RE.match(bname):
                        raise r.err(bm["name"], f"{w}.record[{bi}].name must be an identifier")
                    blanks.append(Blank(bname, r.string(bm["label"], f"{w}.record[{bi}].label")))
            sid = None
            if "id" in stm:
                sid = r.string(stm["id"], f"{w}.id")
                if not _NAME_RE.match(sid):
                    raise r.err(stm["id"], f"{w}.id {sid!r} must be an identifier")
                if sid in earlier_ids:
                    raise r.err(stm["id"], f"{w}.id {sid!r} used twice")
            steps.append(
                Step(
                    number=number,
                    section=si,
                    kind=kind,
                    text=text,
                    role=role,
                    witness=witness,
                    id=sid,
                    action=action,
                    params=params,
                    record=tuple(blanks),
                    line=r.line(stn),
                )
            )
            if sid:
                earlier_ids.add(sid)
        sections.append(Section(si, title, tuple(steps)))

    return Plan(
        path=path,
        sha256=hashlib.sha256(source).hexdigest(),
        source=source,
        metadata=metadata,
        roles=roles,
        roster=tuple(roster),
        quorum=quorum,
        equipment=equipment,
        variables=variables,
        sections=tuple(sections),
    )


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, list):
        return [s for x in v for s in _strings(x)]
    return []


def check_role_separation(plan: Plan) -> None:
    """CER-ROLE-SEPARATION: nobody holds two roles whose kinds are incompatible."""
    for person in plan.roster:
        kinds = {plan.roles[r].kind: r for r in person.roles}
        for a, b in INCOMPATIBLE_KINDS:
            if a in kinds and b in kinds:
                raise RoleSeparationViolated(
                    f"{plan.path}:{person.line}: {person.name} holds {kinds[a]} ({a}) and "
                    f"{kinds[b]} ({b}), which must be different people"
                )


def check_quorum_reachable(plan: Plan) -> None:
    """CER-QUORUM-REACHABLE: m >= 1, m <= n, and n people in the roster hold the role."""
    q = plan.quorum
    if q is None:
        return
    holders = len(plan.holders(q.role))
    where = f"{plan.path}:{q.line}"
    if q.n != holders:
        raise QuorumUnreachable(
            f"{where}: quorum n={q.n} but the roster has {holders} holder(s) of {q.role}"
        )
    if q.m > q.n:
        raise QuorumUnreachable(
            f"{where}: quorum needs {q.m} of {q.role} but only {q.n} are on the roster"
        )


def check_roles_staffed(plan: Plan) -> None:
    """CER-ROLE-STAFFED: every role a step needs has someone; an exception needs 2 people."""
    for step in plan.steps:
        for rid in (step.role, step.witness):
            if not plan.holders(rid):
                raise RoleNotStaffed(
                    f"{plan.path}:{step.line}: step {step.number} needs role {rid} "
                    "but nobody on the roster holds it"
                )
    if len(plan.roster) < 2:
        raise RoleNotStaffed(
            f"{plan.path}: a ceremony needs at least two people (exceptions are acknowledged "
            "by a second participant)"
        )


def lint(plan: Plan) -> None:
    check_role_separation(plan)
    check_quorum_reachable(plan)
    check_roles_staffed(plan)
