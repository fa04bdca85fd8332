"""``attestation-broker errors``: the error-code table (Markdown), as the README shows it."""

from __future__ import annotations

import argparse

from attestation_broker.errors import CATALOGUE


def cmd_errors(args: argparse.Namespace) -> int:
    from attestation_broker.registry import default_verifiers

    default_verifiers()  # kind-specific codes are declared when their verifiers are imported
    # The guest client's and the workload federation client's codes.
    import attestation_broker.client.errors
    import attestation_broker.federation.errors  # noqa: F401

    # ``exit``: the CLI exit code (0 verified, 1 refused, 2 unusable input or configuration, 3 could not decide).
    print("| code | HTTP | exit | meaning |\n|---|---|---|---|")
    for name in sorted(CATALOGUE):
        code = CATALOGUE[name]
        print(f"| `{name}` | {code.status} | {code.exit_code} | {code.description} |")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    errors = sub.add_parser("errors", help="print the error-code table (Markdown)")
    errors.set_defaults(func=cmd_errors)
