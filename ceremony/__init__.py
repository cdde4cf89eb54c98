"""dnssec-ceremony's ceremony station: scripts, runner, transcript, audit. Imports ``signer``."""

from signer import __version__

__all__ = ["__version__"]
