"""Using a signed response (SKR) on the signer: which bundle is valid now, and for how long.

:func:`select_bundle` is what the zone signer calls at signing time.
"""

from __future__ import annotations

import logging

from signer.bundles.model import Bundle, BundleSet
from signer.bundles.policy import format_duration, time_text
from signer.errors import CheckFailed

log = logging.getLogger("dnssec_ceremony.checks")


class NoBundleValid(CheckFailed):
    requirement = "SIGNER-BUNDLE-NONE"


class BundleTooShort(CheckFailed):
    requirement = "SIGNER-BUNDLE-MARGIN"


def select_bundle(response: BundleSet, now: int, *, margin: int = 0, warning: int = 0) -> Bundle:
    """The bundle to publish at ``now``: among those covering ``now``, the latest expiration.

    Raises :class:`NoBundleValid` (SIGNER-BUNDLE-NONE) when no bundle covers ``now`` and
    :class:`BundleTooShort` (SIGNER-BUNDLE-MARGIN) when the chosen one expires within ``margin``.
    Logs a WARNING when the last bundle of the response expires within ``warning``.
    """
    candidates = response.valid_at(now)
    if not candidates:
        if not response.bundles:
            why = "the response has no bundles"
        elif now < response.start:
            why = f"the first bundle starts at {time_text(response.start)}"
        elif now >= response.end:
            why = f"the bundles ran out at {time_text(response.end)}; a new ceremony is needed"
        else:
            why = "there is a gap between bundles at this time"
        exc: CheckFailed = NoBundleValid(
            f"no key bundle of {response.zone} is valid at {time_text(now)}: {why}"
        )
        log.error("%s", exc)
        raise exc
    best = max(candidates, key=lambda b: (b.expiration, b.inception))
    left = best.expiration - now
    if left < margin:
        exc = BundleTooShort(
            f"bundle {best.id} expires {time_text(best.expiration)}, in {format_duration(left)}, "
            f"less than the margin {format_duration(margin)}; a new ceremony is needed"
        )
        log.error("%s", exc)
        raise exc
    remaining = response.end - now
    if warning and remaining < warning:
        log.warning(
            "SIGNER-BUNDLE-WARNING: the key bundles of %s run out at %s (in %s); plan a ceremony",
            response.zone,
            time_text(response.end),
            format_duration(remaining),
        )
    return best


def bundles_run_out(response: BundleSet) -> int:
    """When the last bundle of ``response`` expires (seconds since the epoch)."""
    return response.end
