"""``attestation-broker``: serve, verify evidence files offline, verify broker tokens, rotate keys.

Exit codes of ``verify`` and ``token verify`` (:mod:`.output`): 0 verified (affirming or warning),
1 refused (verification failure or POLICY_REJECTED: no token), 2 unusable input or configuration (including a
broken policy document),
3 could not decide (collateral, signer or ledger unavailable). JSON goes to stdout, a one-line summary to stderr.

Each subcommand lives in its own module with a ``register(subparsers)`` function; :data:`COMMANDS`
lists them in the order ``--help`` shows them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from attestation_broker.cli import attest, collateral, errors, federate, keys, policy, serve, tokens, verify

COMMANDS = (serve, verify, collateral, policy, tokens, keys, errors, attest, federate)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="attestation-broker", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code
