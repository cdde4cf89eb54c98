"""``zonesigner``: the DNSSEC engine's command line.

Sub-command groups live in their own modules and are attached here.
"""

from __future__ import annotations

from signer.cli.common import register_commands, root_group

cli = root_group(
    "zonesigner",
    """zonesigner - offline DNSSEC signing: keys, key bundles and zones.

    \b
    Commands by job:
      token probe      what a PKCS#11 token can do, and who made it
      key ...          generate, list, show keys on a token; print DS records
      bundles ...      plan key bundles, write the signing request, import the response
      sign             sign a zone with the ZSK and the pre-signed key bundles

    Keys live on PKCS#11 tokens, addressed by RFC 7512 URIs such as
    'pkcs11:token=zsk;object=zsk-2026q1'. PINs come from --pin-file, the environment
    variable named by --pin-env, or a prompt without echo; never from the command line.
    """,
)

register_commands(
    cli,
    (
        ("key", "signer.cli.keys", "key"),
        ("token", "signer.cli.keys", "token"),
        ("bundles", "signer.cli.bundles", "bundles"),
        ("sign", "signer.cli.sign", "sign"),
    ),
)


def main() -> None:
    cli(prog_name="zonesigner")
