"""Microsoft Entra: a broker federation token → an access token through a federated identity credential.

azure-identity's ``ClientAssertionCredential`` sends the broker token as the client assertion of an OAuth
client-credentials request (``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``).
Its callable is invoked whenever MSAL needs a new assertion, and fetches a fresh federation token each time —
unlike the file-based ``WorkloadIdentityCredential``, which re-reads its file only every 10 minutes, longer
than a broker token lives. Entra checks ``iss``, ``sub`` and ``aud`` (``api://AzureADTokenExchange``) against
the federated credential and accepts RS256 only (docs/federation.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attestation_broker.federation.errors import FEDERATE_CLOUD_REFUSED, FEDERATE_SDK_MISSING

AUDIENCE = "api://AzureADTokenExchange"
DEFAULT_SCOPE = "https://management.azure.com/.default"


def credential(tenant_id: str, client_id: str, token: Callable[[], str], **kwargs: Any) -> Any:
    """A ``ClientAssertionCredential`` whose assertion is a fresh broker federation token on every call.
    ``kwargs`` go to azure-identity (``authority``, ``disable_instance_discovery``, transport options)."""
    try:
        from azure.identity import ClientAssertionCredential
    except ImportError:
        raise FEDERATE_SDK_MISSING("azure-identity is not installed") from None
    return ClientAssertionCredential(tenant_id, client_id, token, **kwargs)


def access_token(cred: Any, scope: str = DEFAULT_SCOPE) -> tuple[str, int]:
    """(access token, expires_on epoch seconds) for ``scope``."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    try:
        result = cred.get_token(scope)
    except ClientAuthenticationError as exc:
        # The first line names the AADSTS code; the rest is troubleshooting text and trace ids.
        message = str(getattr(exc, "message", "") or "").splitlines()[0:1]
        raise FEDERATE_CLOUD_REFUSED(f"Microsoft Entra: {message[0] if message else 'authentication failed'}") from None
    except AzureError as exc:
        raise FEDERATE_CLOUD_REFUSED(f"Microsoft Entra: {type(exc).__name__}") from None
    return str(result.token), int(result.expires_on)
