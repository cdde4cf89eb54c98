"""``ceremony``: the ceremony station's command line."""

from __future__ import annotations

from signer.cli.common import register_commands, root_group

cli = root_group(
    "ceremony",
    """ceremony - run, record and audit DNSSEC key ceremonies.

    \b
    Commands by job:
      sign-request     sign a key-bundle request (KSR) with the KSK: the response (SKR)
      render           the printable script (HTML, Markdown) of a ceremony plan
      run              run a ceremony plan, step by step, into a ceremony directory
      audit verify     verify a ceremony directory end to end
      audit report     render the audit report (one HTML page)
    """,
)

register_commands(
    cli,
    (
        ("sign-request", "ceremony.cli_sign", "sign_request"),
        ("render", "ceremony.cli_run", "render"),
        ("run", "ceremony.cli_run", "run"),
        ("audit", "ceremony.cli_run", "audit"),
    ),
)


def main() -> None:
    cli(prog_name="ceremony")
