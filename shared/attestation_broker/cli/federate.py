"""``attestation-broker federate aws|gcp|azure``: turn a broker token into cloud credentials (docs/federation.md).

The broker EAR token (``--subject-token FILE``, re-read on every exchange so ``attestation-broker attest
--watch`` can keep it renewed; ``-`` reads stdin once) is exchanged at the broker's ``/v1/token`` for the
cloud's audience, then handed to the cloud's own SDK: boto3 ``AssumeRoleWithWebIdentity`` (``--credential-process``
prints the AWS ``credential_process`` document), google-auth identity-pool credentials (optionally impersonating
a service account), azure-identity ``ClientAssertionCredential``. ``--token FILE`` skips the exchange and uses a
federation token already obtained (e.g. ``federation_token`` from the attest call).

Output is JSON on stdout; errors are JSON on stderr. Exit codes: 0 credentials obtained, 2 bad arguments,
3 the broker or the cloud refused or could not be reached (the error names which).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attestation_broker.cli.common import error_doc
from attestation_broker.errors import BrokerError
from attestation_broker.federation import TokenSource


def _reader(path: str) -> Callable[[], str]:
    if path == "-":
        text = sys.stdin.read().strip()
        return lambda: text
    return lambda: Path(path).read_text().strip()


def _token_callable(args: argparse.Namespace, audience: str) -> Callable[[], str]:
    if args.token:
        return _reader(args.token)
    if not args.broker or not args.subject_token:
        raise SystemExit("federate: give --token, or --broker with --subject-token")
    return TokenSource(args.broker, audience, _reader(args.subject_token))


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def cmd_aws(args: argparse.Namespace) -> int:
    from attestation_broker.federation import aws

    token = _token_callable(args, args.audience)()
    creds = aws.assume_role(
        token,
        args.role_arn,
        session_name=args.session_name,
        duration_seconds=args.duration,
        region=args.region,
        endpoint_url=args.sts_endpoint,
    )
    document = aws.credential_process_output(creds)
    if not args.credential_process:
        document = {**document, "AssumedRoleArn": creds.assumed_role_arn}
    _emit(document)
    return 0


def cmd_gcp(args: argparse.Namespace) -> int:
    from attestation_broker.federation import gcp

    creds = gcp.credentials(
        args.provider,
        _token_callable(args, args.audience or gcp.token_audience(args.provider)),
        service_account=args.service_account,
        scopes=args.scope or (gcp.CLOUD_PLATFORM,),
        token_url=args.token_url,
        iam_credentials_url=args.iam_credentials_url,
    )
    token, expiry = gcp.access_token(creds)
    _emit({"access_token": token, "expiry": expiry.isoformat() + "Z" if expiry else None, "token_type": "Bearer"})
    return 0


def cmd_azure(args: argparse.Namespace) -> int:
    from attestation_broker.federation import azure

    extra: dict[str, Any] = {}
    if args.authority:
        # A private or sovereign authority is not in Microsoft's instance-discovery list.
        extra = {"authority": args.authority, "disable_instance_discovery": True}
    cred = azure.credential(args.tenant_id, args.client_id, _token_callable(args, args.audience), **extra)
    token, expires_on = azure.access_token(cred, args.scope)
    _emit({"access_token": token, "expires_on": expires_on, "token_type": "Bearer"})
    return 0


def _run(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except BrokerError as exc:
            sys.stderr.write(json.dumps({"error": error_doc(exc)}, sort_keys=True) + "\n")
            return exc.exit_code

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    federate = sub.add_parser("federate", help="exchange a broker token for cloud credentials (AWS, Google, Azure)")
    clouds = federate.add_subparsers(dest="cloud", required=True)

    def common(p: argparse.ArgumentParser, audience: str | None) -> None:
        p.add_argument("--broker", help="broker URL (for the /v1/token exchange)")
        p.add_argument("--subject-token", help="file holding the broker EAR token (re-read each time), or -")
        p.add_argument("--token", help="file holding a federation token already obtained (no exchange)")
        p.add_argument("--audience", default=audience, help=f"federation audience (default {audience or 'derived'})")

    aws_p = clouds.add_parser("aws", help="STS AssumeRoleWithWebIdentity")
    common(aws_p, "sts.amazonaws.com")
    aws_p.add_argument("--role-arn", required=True)
    aws_p.add_argument("--session-name", default="attestation-broker")
    aws_p.add_argument("--duration", type=int, help="session seconds (900..role maximum)")
    aws_p.add_argument("--region")
    aws_p.add_argument("--sts-endpoint", help="STS endpoint URL (default: the regional endpoint)")
    aws_p.add_argument("--credential-process", action="store_true", help="print the credential_process document")
    aws_p.set_defaults(func=_run(cmd_aws))

    gcp_p = clouds.add_parser("gcp", help="workload identity federation (google-auth identity pool)")
    common(gcp_p, None)
    gcp_p.add_argument("--provider", required=True, help="projects/<n>/locations/global/workloadIdentityPools/...")
    gcp_p.add_argument("--service-account", help="impersonate this service account (email)")
    gcp_p.add_argument("--scope", action="append")
    gcp_p.add_argument("--token-url", default="https://sts.googleapis.com/v1/token")
    gcp_p.add_argument("--iam-credentials-url", default="https://iamcredentials.googleapis.com")
    gcp_p.set_defaults(func=_run(cmd_gcp))

    az_p = clouds.add_parser("azure", help="Microsoft Entra federated identity credential")
    common(az_p, "api://AzureADTokenExchange")
    az_p.add_argument("--tenant-id", required=True)
    az_p.add_argument("--client-id", required=True)
    az_p.add_argument("--scope", default="https://management.azure.com/.default")
    az_p.add_argument("--authority", help="Entra authority host (default login.microsoftonline.com)")
    az_p.set_defaults(func=_run(cmd_azure))
