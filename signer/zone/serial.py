"""SOA serial of the signed zone (RFC 1982 arithmetic).

Modes (policy ``signer.serial``):

* ``keep``       -- the unsigned zone's serial;
* ``increment``  -- one more than the larger of the unsigned serial and the previous signed one;
* ``unixtime``   -- ``now`` (seconds), or base + 1 if that is not greater than the base (the
  larger of the unsigned and the previous signed serial);
* ``datecounter``-- ``YYYYMMDD00`` of ``now`` (UTC), or base + 1 likewise.

When the previous signed serial is known, the new one must not go backwards (RFC 1982):
:class:`SerialWentBackwards` (SIGNER-SERIAL) refuses; an equal serial is only warned about
(secondaries would not transfer the new signatures).
"""

from __future__ import annotations

import logging
import time

from signer.errors import CheckFailed, InputError
from signer.zone import _accel

_accel.use_compiled(__name__)  # the mypyc build of this module, if in use

log = logging.getLogger("dnssec_ceremony.zone")
MODES = ("keep", "increment", "unixtime", "datecounter")


@_accel.mypyc_attr(native_class=False)
class SerialWentBackwards(CheckFailed):
    requirement = "SIGNER-SERIAL"


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982: a > b on 32 bits."""
    a &= 0xFFFFFFFF
    b &= 0xFFFFFFFF
    return a != b and ((a > b and a - b < 2**31) or (a < b and b - a > 2**31))


def new_serial(mode: str, unsigned: int, now: int, previous: int | None = None) -> int:
    if mode not in MODES:
        raise InputError(f"unknown serial mode {mode!r} (use {', '.join(MODES)})")
    base = unsigned
    if previous is not None and serial_gt(previous, base):
        base = previous
    if mode == "keep":
        serial = unsigned
    elif mode == "increment":
        serial = (base + 1) & 0xFFFFFFFF
    else:
        if mode == "unixtime":
            candidate = now & 0xFFFFFFFF
        else:
            candidate = int(time.strftime("%Y%m%d", time.gmtime(now))) * 100
        serial = candidate if serial_gt(candidate, base) else (base + 1) & 0xFFFFFFFF
    if previous is not None:
        if serial_gt(previous, serial):
            raise SerialWentBackwards(
                f"the new SOA serial {serial} is lower than the previous signed zone's "
                f"{previous} (RFC 1982); secondaries would ignore it"
            )
        if serial == previous:
            log.warning(
                "SIGNER-SERIAL: the SOA serial %d equals the previous signed zone's; "
                "secondaries will not transfer the new signatures",
                serial,
            )
    return serial
