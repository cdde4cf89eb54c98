"""Zone rules checked after loading, and the classification of every name.

Rules raising :class:`ZoneRuleError` (exit code 2: it is the input that is wrong; the message
starts with the requirement ID):

* ZONE-APEX-SOA: exactly one SOA record, at the apex, and no SOA anywhere else;
* ZONE-APEX-NS: an NS RRset at the apex;
* ZONE-DS-PLACEMENT: DS only at a delegation (never at the apex, never at a name without NS);

Checked by the loader while the line is known (InputError with file:line): data outside the
zone, DNSSEC types in the unsigned input, CNAME beside other data, one TTL per RRset.

Classification (:func:`classify` fills ``zone.kinds``):

* the apex is ``KIND_APEX``;
* a name with NS other than the apex is a delegation (``KIND_DELEGATION``): its NS is not
  signed, its DS is; A/AAAA there are glue (kept, unsigned); any other type there is occluded
  (kept unsigned, warned about);
* every name below a delegation or below a DNAME is ``KIND_OCCLUDED``: A/AAAA are glue, kept
  unsigned; anything else is occluded data: kept unsigned and warned about (ZONE-OCCLUDED);
* everything else is authoritative (``KIND_AUTH``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from operator import attrgetter
from typing import Final

from signer.errors import EXIT_INPUT, CheckFailed
from signer.zone import _accel
from signer.zone.model import (
    KIND_APEX,
    KIND_AUTH,
    KIND_DELEGATION,
    KIND_OCCLUDED,
    T_A,
    T_AAAA,
    T_DNAME,
    T_DS,
    T_NS,
    T_SOA,
    RRset,
    Zone,
    is_subdomain,
    name_to_text,
)

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

log = logging.getLogger("dnssec_ceremony.zone")

GLUE_TYPES: Final = frozenset({T_A, T_AAAA})
DELEGATION_TYPES: Final = frozenset({T_NS, T_DS, T_A, T_AAAA})
_rtype: Final = attrgetter("rtype")

# flag bits of a name's types (see _type_codes)
_SOA: Final = 1
_NS: Final = 2
_DS: Final = 4
_DNAME: Final = 8
_GLUE_ONLY: Final = 16
_DELEGATION_ONLY: Final = 32


@_accel.mypyc_attr(native_class=False)
class ZoneRuleError(CheckFailed):
    """The unsigned zone breaks a zone rule (exit code 2, an input error)."""

    exit_code = EXIT_INPUT
    requirement = "ZONE-RULE"


@dataclass
class Classification:
    delegations: int = 0
    secure_delegations: int = 0
    glue_names: int = 0
    occluded_names: int = 0
    authoritative_names: int = 0
    warnings: int = 0


def check_apex(zone: Zone) -> None:
    """ZONE-APEX-SOA and ZONE-APEX-NS."""
    apex = zone.nodes.get(zone.origin)
    where = name_to_text(zone.origin)
    soa = zone.get(zone.origin, T_SOA) if apex else None
    if soa is None:
        raise ZoneRuleError(f"no SOA record at the apex {where}", requirement="ZONE-APEX-SOA")
    if len(soa.rdatas) != 1:
        raise ZoneRuleError(
            f"{len(soa.rdatas)} SOA records at the apex {where}; exactly one is allowed",
            requirement="ZONE-APEX-SOA",
        )
    if zone.get(zone.origin, T_NS) is None:
        raise ZoneRuleError(f"no NS RRset at the apex {where}", requirement="ZONE-APEX-NS")


def classify(
    zone: Zone, *, max_warnings: int = 20, apex: bool = True, apex_dname: bool = False
) -> Classification:
    """Check the rules and fill ``zone.kinds``; needs ``zone.order`` (call ``zone.sort()``).

    A shard of a zone without the apex (:mod:`signer.zone.sharded`) passes ``apex=False``
    and whether the apex holds a DNAME (which occludes everything below it).
    """
    if not zone.order:
        zone.sort()
    if apex:
        check_apex(zone)
    kinds = zone.kinds
    kinds.clear()
    c = Classification()
    origin = zone.origin
    # the current delegation or DNAME owner
    cut: bytes | None = origin if apex_dname and not apex else None
    warned = 0

    def warn(msg: str) -> None:
        nonlocal warned
        c.warnings += 1
        if warned < max_warnings:
            log.warning("ZONE-OCCLUDED: %s", msg)
        warned += 1

    nodes = zone.nodes
    # What the loop below needs of each name's types, as a few flag bits, found in the
    # nodes' own (memory) order: reading every RRset in canonical order is cache-unfriendly.
    codes = _type_codes(nodes)
    delegations = secure = glue = occluded = auth = 0
    for name in zone.order:
        code = codes[name]
        if name == origin:
            kinds[name] = KIND_APEX
            for rs in nodes[name]:
                if rs.rtype == T_DS:
                    raise ZoneRuleError(
                        f"DS at the apex {name_to_text(name)}: the DS of this zone belongs in "
                        "the parent zone",
                        requirement="ZONE-DS-PLACEMENT",
                    )
                if rs.rtype == T_DNAME:
                    cut = name
            continue
        # endswith first: most names are not below the cut before them (no call then)
        if cut is not None and name.endswith(cut) and is_subdomain(name, cut):
            kinds[name] = KIND_OCCLUDED
            if code & _GLUE_ONLY:
                glue += 1
            else:
                occluded += 1
                bad = [rs.rtype for rs in nodes[name] if rs.rtype not in GLUE_TYPES]
                warn(
                    f"{name_to_text(name)} is below the {('delegation' if zone.get(cut, T_NS) else 'DNAME')} "
                    f"{name_to_text(cut)}: its {', '.join(_tn(t) for t in bad)} data is occluded "
                    "and is not signed"
                )
            if code & _SOA:
                raise ZoneRuleError(
                    f"SOA at {name_to_text(name)}, not at the apex",
                    requirement="ZONE-APEX-SOA",
                )
            continue
        if code & _SOA:
            raise ZoneRuleError(
                f"SOA at {name_to_text(name)}, not at the apex {name_to_text(origin)}",
                requirement="ZONE-APEX-SOA",
            )
        if code & _NS:
            kinds[name] = KIND_DELEGATION
            cut = name
            delegations += 1
            if code & _DS:
                secure += 1
            if not code & _DELEGATION_ONLY:
                other = [rs.rtype for rs in nodes[name] if rs.rtype not in DELEGATION_TYPES]
                warn(
                    f"{name_to_text(name)} is a delegation: its "
                    f"{', '.join(_tn(t) for t in other)} data is occluded and is not signed"
                )
            continue
        if code & _DS:
            raise ZoneRuleError(
                f"DS at {name_to_text(name)}, which is not a delegation (no NS RRset there)",
                requirement="ZONE-DS-PLACEMENT",
            )
        kinds[name] = KIND_AUTH
        auth += 1
        if code & _DNAME:
            cut = name
    c.delegations = delegations
    c.secure_delegations = secure
    c.glue_names = glue
    c.occluded_names = occluded
    c.authoritative_names = auth
    if warned > max_warnings:
        log.warning("ZONE-OCCLUDED: %d more such warnings not shown", warned - max_warnings)
    return c


def _type_codes(nodes: dict[bytes, list[RRset]]) -> dict[bytes, int]:
    """Each name's types as flag bits: SOA, NS, DS, DNAME among them; all of them glue types
    (and at least one); all of them types a delegation may hold."""
    code_of: dict[tuple[int, ...], int] = {}
    codes: dict[bytes, int] = {}
    for name, rrsets in nodes.items():
        types = tuple(map(_rtype, rrsets))
        code = code_of.get(types)
        if code is None:
            code = code_of[types] = (
                (_SOA if T_SOA in types else 0)
                | (_NS if T_NS in types else 0)
                | (_DS if T_DS in types else 0)
                | (_DNAME if T_DNAME in types else 0)
                | (_GLUE_ONLY if types and GLUE_TYPES.issuperset(types) else 0)
                | (_DELEGATION_ONLY if DELEGATION_TYPES.issuperset(types) else 0)
            )
        codes[name] = code
    return codes


def _tn(t: int) -> str:
    import dns.rdatatype

    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(t))
