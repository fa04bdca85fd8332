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

    print("| code | HTTP | meaning |\n|---|---|---|")
    for name in sorted(CATALOGUE):
        code = CATALOGUE[name]
        print(f"| `{name}` | {code.status} | {code.description} |")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    errors = sub.add_parser("errors", help="print the error-code table (Markdown)")
    errors.set_defaults(func=cmd_errors)
