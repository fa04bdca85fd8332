"""Error codes of the guest-side attestation client (``attestation-broker attest``), docs/client.md.

Each code names what is missing or wrong *on this machine* (no TPM, no configfs-tsm provider, an absent NV
index) or in the broker exchange, so an operator can act on it without reading a stack trace. The client
never serves HTTP: the status shown in the README table is the category's nominal status (503 for a missing
platform capability, 502 for a broker answer the client cannot use); the CLI exit code is 3 for both.
"""

from __future__ import annotations

from typing import ClassVar

from attestation_broker.errors import BrokerError, ErrorCode, define


class ClientEnvironmentError(BrokerError):
    """Something the chosen evidence kind needs is absent or unusable on this machine."""

    status: ClassVar[int] = 503
    exit_code: ClassVar[int] = 3
    title: ClassVar[str] = "Attestation client: platform capability missing"


class ClientExchangeError(BrokerError):
    """The broker could not be reached, refused the request, or answered with something unusable."""

    status: ClassVar[int] = 502
    exit_code: ClassVar[int] = 3
    title: ClassVar[str] = "Attestation client: broker exchange failed"


class BrokerRefused(ClientExchangeError):
    """The broker answered with a problem document; ``broker_code``/``broker_status`` are its own."""

    def __init__(self, code: ErrorCode, detail: str = "", *, broker_code: str = "", broker_status: int = 0) -> None:
        super().__init__(code, detail)
        self.broker_code = broker_code
        self.broker_status = broker_status


CLIENT_NO_PLATFORM = define(
    "CLIENT_NO_PLATFORM",
    ClientEnvironmentError,
    "(client) No attestation source found: no configfs-tsm provider and no TPM on this machine.",
)
CLIENT_TSM_UNAVAILABLE = define(
    "CLIENT_TSM_UNAVAILABLE",
    ClientEnvironmentError,
    "(client) configfs-tsm is absent (kernel < 6.7, configfs not mounted) or no sev_guest/tdx_guest provider.",
)
CLIENT_TSM_PROVIDER_MISMATCH = define(
    "CLIENT_TSM_PROVIDER_MISMATCH",
    ClientEnvironmentError,
    "(client) The configfs-tsm provider is not the one the kind needs (sev_guest: snp, tdx_guest: tdx).",
)
CLIENT_TSM_CONTENDED = define(
    "CLIENT_TSM_CONTENDED",
    ClientEnvironmentError,
    "(client) Another writer kept changing the configfs-tsm report entry (generation moved) over every retry.",
)
CLIENT_TSM_FAILED = define(
    "CLIENT_TSM_FAILED",
    ClientEnvironmentError,
    "(client) The configfs-tsm report entry could not be created, written or read.",
)
CLIENT_SNP_CERTS_MISSING = define(
    "CLIENT_SNP_CERTS_MISSING",
    ClientEnvironmentError,
    "(client) The SEV-SNP auxblob certificate table carries no VCEK or VLEK (the host did not install certificates).",
)
CLIENT_TPM_UNAVAILABLE = define(
    "CLIENT_TPM_UNAVAILABLE",
    ClientEnvironmentError,
    "(client) No TPM is reachable (no /dev/tpmrm0, no permission, --tcti not answering) or tpm2-tools is missing.",
)
CLIENT_TPM_COMMAND_FAILED = define(
    "CLIENT_TPM_COMMAND_FAILED",
    ClientEnvironmentError,
    "(client) A TPM command failed (see the detail for the tpm2-tools command and its error).",
)
CLIENT_NV_INDEX_ABSENT = define(
    "CLIENT_NV_INDEX_ABSENT",
    ClientEnvironmentError,
    "(client) A TPM NV index the kind needs is not defined (e.g. 0x01400001 outside an Azure CVM).",
)
CLIENT_AK_ABSENT = define(
    "CLIENT_AK_ABSENT",
    ClientEnvironmentError,
    "(client) No attestation key at the given persistent handle (create one with --print-ak --persist HANDLE).",
)
CLIENT_EVENT_LOG_UNREADABLE = define(
    "CLIENT_EVENT_LOG_UNREADABLE",
    ClientEnvironmentError,
    "(client) The TCG event log exists but cannot be read (securityfs permissions).",
)
CLIENT_IMDS_UNAVAILABLE = define(
    "CLIENT_IMDS_UNAVAILABLE",
    ClientEnvironmentError,
    "(client) The Azure instance metadata service did not return the TD quote for the HCL report.",
)
CLIENT_KIND_UNSUPPORTED = define(
    "CLIENT_KIND_UNSUPPORTED", ClientEnvironmentError, "(client) The client cannot collect this evidence kind."
)
CLIENT_BROKER_UNREACHABLE = define(
    "CLIENT_BROKER_UNREACHABLE", ClientExchangeError, "(client) The broker URL did not answer."
)
CLIENT_BROKER_REFUSED = define(
    "CLIENT_BROKER_REFUSED",
    BrokerRefused,
    "(client) The broker refused the request; the detail carries the broker's error code and detail.",
)
CLIENT_BROKER_RESPONSE_INVALID = define(
    "CLIENT_BROKER_RESPONSE_INVALID",
    ClientExchangeError,
    "(client) The broker's answer is not what the API defines (no nonce, no token, not JSON).",
)
CLIENT_TOKEN_UNVERIFIED = define(
    "CLIENT_TOKEN_UNVERIFIED",
    ClientExchangeError,
    "(client) The returned token does not verify against the broker's /jwks, or does not carry our nonce.",
)
CLIENT_OUTPUT_UNWRITABLE = define(
    "CLIENT_OUTPUT_UNWRITABLE", ClientEnvironmentError, "(client) The token file cannot be written."
)
