"""AWS: a broker federation token → temporary credentials via STS ``AssumeRoleWithWebIdentity`` (boto3).

The call is unsigned (the web identity token is the credential), so no AWS credentials are needed to make it.
:func:`credential_process_output` renders the result in the ``credential_process`` format (AWS SDKs and CLI
"Sourcing credentials with an external process": ``Version`` 1, ``AccessKeyId``, ``SecretAccessKey``,
``SessionToken``, ISO 8601 ``Expiration``), so a profile with
``credential_process = attestation-broker federate aws --credential-process ...`` gets fresh credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from attestation_broker.federation.errors import FEDERATE_CLOUD_REFUSED, FEDERATE_RESPONSE_INVALID, FEDERATE_SDK_MISSING

DEFAULT_SESSION_NAME = "attestation-broker"


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    assumed_role_arn: str = ""


def sts_client(*, region: str | None = None, endpoint_url: str | None = None) -> Any:
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError:
        raise FEDERATE_SDK_MISSING("boto3 is not installed") from None
    config = Config(signature_version=UNSIGNED, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.session.Session().client(
        "sts", region_name=region or "us-east-1", endpoint_url=endpoint_url, config=config
    )


def assume_role(
    web_identity_token: str,
    role_arn: str,
    *,
    session_name: str = DEFAULT_SESSION_NAME,
    duration_seconds: int | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    client: Any = None,
) -> AwsCredentials:
    """``AssumeRoleWithWebIdentity`` with the broker token; session tags come from the token's tag claim."""
    from botocore.exceptions import BotoCoreError, ClientError

    sts = client or sts_client(region=region, endpoint_url=endpoint_url)
    params: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": web_identity_token,
    }
    if duration_seconds is not None:
        params["DurationSeconds"] = duration_seconds
    try:
        response = sts.assume_role_with_web_identity(**params)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise FEDERATE_CLOUD_REFUSED(f"AWS STS: {code}") from None
    except BotoCoreError as exc:
        raise FEDERATE_CLOUD_REFUSED(f"AWS STS: {type(exc).__name__}") from None
    try:
        creds = response["Credentials"]
        expiration = creds["Expiration"]
        if isinstance(expiration, str):
            expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        return AwsCredentials(
            creds["AccessKeyId"],
            creds["SecretAccessKey"],
            creds["SessionToken"],
            expiration.astimezone(UTC),
            str(response.get("AssumedRoleUser", {}).get("Arn", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise FEDERATE_RESPONSE_INVALID("AWS STS answered without credentials") from None


def credential_process_output(credentials: AwsCredentials) -> dict[str, Any]:
    return {
        "Version": 1,
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "SessionToken": credentials.session_token,
        "Expiration": credentials.expiration.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
