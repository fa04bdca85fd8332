"""Google Cloud: a broker federation token → a Google access token through workload identity federation.

google-auth's external-account (identity pool) credentials run the exchange: they POST the broker token to
Google STS (``token_url``, RFC 8693: ``grant_type`` token-exchange, ``subject_token_type`` jwt, ``audience`` =
the provider's resource name ``//iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/
providers/<provider>``) and, when a service account is named, impersonate it through IAM Credentials
``generateAccessToken``. The broker token comes from a programmatic subject-token supplier (a fresh exchange per
refresh), not a file. The broker token's ``aud`` is the same provider as an ``https://iam.googleapis.com/...``
URL, Google's default allowed audience for OIDC providers (docs/federation.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from attestation_broker.federation.errors import FEDERATE_CLOUD_REFUSED, FEDERATE_SDK_MISSING

STS_TOKEN_URL = "https://sts.googleapis.com/v1/token"  # noqa: S105 - an endpoint, not a secret
IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - RFC 8693 URI
_PREFIXES = ("https://iam.googleapis.com/", "//iam.googleapis.com/")


def _resource(provider: str) -> str:
    for prefix in _PREFIXES:
        if provider.startswith(prefix):
            return provider[len(prefix) :]
    return provider.lstrip("/")


def sts_audience(provider: str) -> str:
    """The STS ``audience`` for a provider given as a resource name or either URL form."""
    return "//iam.googleapis.com/" + _resource(provider)


def token_audience(provider: str) -> str:
    """The ``aud`` the broker puts in the federation token: Google's default allowed audience."""
    return "https://iam.googleapis.com/" + _resource(provider)


def credentials(
    provider: str,
    token: Callable[[], str],
    *,
    service_account: str | None = None,
    scopes: Sequence[str] = (CLOUD_PLATFORM,),
    token_url: str = STS_TOKEN_URL,
    iam_credentials_url: str = IAM_CREDENTIALS_URL,
) -> Any:
    """google-auth identity-pool credentials that call ``token()`` for a fresh broker token on each refresh."""
    try:
        from google.auth import identity_pool
    except ImportError:
        raise FEDERATE_SDK_MISSING("google-auth is not installed") from None

    class _Supplier(identity_pool.SubjectTokenSupplier):
        def get_subject_token(self, context: Any, request: Any) -> str:
            return token()

    impersonation = None
    if service_account:
        base = iam_credentials_url.rstrip("/")
        impersonation = f"{base}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken"
    return identity_pool.Credentials(  # type: ignore[no-untyped-call]
        audience=sts_audience(provider),
        subject_token_type=SUBJECT_TOKEN_TYPE,
        token_url=token_url,
        subject_token_supplier=_Supplier(),
        service_account_impersonation_url=impersonation,
        scopes=list(scopes),
    )


def access_token(creds: Any, *, session: Any = None) -> tuple[str, Any]:
    """Refresh ``creds`` and return (access token, expiry datetime)."""
    try:
        import google.auth.exceptions
        from google.auth.transport.requests import Request
    except ImportError:
        raise FEDERATE_SDK_MISSING("google-auth[requests] is not installed") from None
    try:
        creds.refresh(Request(session) if session is not None else Request())
    except google.auth.exceptions.GoogleAuthError as exc:
        raise FEDERATE_CLOUD_REFUSED(f"Google STS: {type(exc).__name__}") from None
    return str(creds.token), creds.expiry
