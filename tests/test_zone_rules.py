"""Zone rules after loading (requirement IDs) and the classification of names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from signer.zone.loader import load_zone
from signer.zone.model import KIND_APEX, KIND_AUTH, KIND_DELEGATION, KIND_OCCLUDED, name_from_text
from signer.zone.rules import ZoneRuleError, classify

DATA = Path(__file__).parent / "data" / "zones"
HEAD = "$ORIGIN t.\n$TTL 60\n"
SOA = "@ SOA ns hm 1 2 3 4 5\n"


def _zone(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    p = tmp_path / "z"
    p.write_text(HEAD + text)
    return load_zone(p, "t.")


@pytest.mark.parametrize(
    ("text", "req", "needle"),
    [
        ("@ NS ns\nns A 192.0.2.1\n", "ZONE-APEX-SOA", "no SOA"),
        (SOA + "@ SOA ns2 hm 1 2 3 4 5\n@ NS ns\n", "ZONE-APEX-SOA", "2 SOA records"),
        (SOA + "ns A 192.0.2.1\n", "ZONE-APEX-NS", "no NS RRset at the apex"),
        (SOA + "@ NS ns\nx SOA ns hm 1 2 3 4 5\n", "ZONE-APEX-SOA", "SOA at x.t."),
        (SOA + "@ NS ns\n@ DS 1 13 2 " + "00" * 32 + "\n", "ZONE-DS-PLACEMENT", "apex"),
        (SOA + "@ NS ns\nx DS 1 13 2 " + "00" * 32 + "\n", "ZONE-DS-PLACEMENT", "not a delegation"),
    ],
)
def test_rule_refusals(tmp_path: Path, text: str, req: str, needle: str) -> None:
    z = _zone(tmp_path, text)
    with pytest.raises(ZoneRuleError) as ei:
        classify(z)
    assert ei.value.requirement == req
    assert str(ei.value).startswith(req + ":")
    assert needle in str(ei.value)
    assert ei.value.exit_code == 2


def test_classification_and_occlusion_warning(caplog: pytest.LogCaptureFixture) -> None:
    z = load_zone(DATA / "example.zone", "example.")
    with caplog.at_level(logging.WARNING):
        c = classify(z)
    k = z.kinds
    n = lambda s: name_from_text(s, None)  # noqa: E731
    assert k[z.origin] == KIND_APEX
    assert k[n("sec.example.")] == KIND_DELEGATION
    assert k[n("x.ent.example.")] == KIND_DELEGATION
    assert k[n("ns.sec.example.")] == KIND_OCCLUDED  # glue
    assert k[n("txt.insec.example.")] == KIND_OCCLUDED
    assert k[n("a.b.c.deep.example.")] == KIND_AUTH
    assert (c.delegations, c.secure_delegations, c.glue_names, c.occluded_names) == (3, 1, 2, 1)
    assert "ZONE-OCCLUDED: txt.insec.example." in caplog.text
    assert "ns.sec.example" not in caplog.text  # glue is not warned about


def test_data_beside_ns_at_a_cut_is_occluded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    z = _zone(tmp_path, SOA + "@ NS ns\nns A 192.0.2.1\nd NS ns.d\nd TXT x\nd A 192.0.2.9\n")
    with caplog.at_level(logging.WARNING):
        classify(z)
    assert "d.t. is a delegation: its TXT data is occluded" in caplog.text


def test_name_ending_in_cut_octets_is_not_below_it(tmp_path: Path) -> None:
    """x\\001b.t. ends in the octets of the cut b.t. but is not below it: authoritative."""
    z = _zone(tmp_path, SOA + "@ NS ns\nb NS ns.b\nns.b A 192.0.2.1\nx\\001b A 192.0.2.2\n")
    c = classify(z)
    n = lambda s: name_from_text(s, None)  # noqa: E731
    assert z.kinds[n("x\\001b.t.")] == KIND_AUTH
    assert z.kinds[n("ns.b.t.")] == KIND_OCCLUDED
    assert (c.delegations, c.glue_names, c.authoritative_names) == (1, 1, 1)
