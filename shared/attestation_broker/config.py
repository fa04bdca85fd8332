"""Broker settings: one frozen object built at cold start from the environment (or defaults).

Every setting has an embedded default so ``attestation-broker serve`` runs with no configuration.
Environment variables are ``BROKER_<FIELD>`` in upper case; tuples are comma-separated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from attestation_broker.errors import CONFIG_INVALID

DEFAULT_MAA_ISSUERS = (
    # Microsoft's shared attestation providers (https://shared<region>.<region>.attest.azure.net).
    "https://sharedeus.eus.attest.azure.net",
    "https://sharedeus2.eus2.attest.azure.net",
    "https://sharedwus.wus.attest.azure.net",
    "https://sharedcus.cus.attest.azure.net",
    "https://sharedneu.neu.attest.azure.net",
    "https://sharedweu.weu.attest.azure.net",
    "https://shareduks.uks.attest.azure.net",
    "https://sharedjpe.jpe.attest.azure.net",
)


def user_data_dir() -> Path:
    """`$XDG_DATA_HOME/attestation-broker`, else `~/.local/share/attestation-broker`"""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "attestation-broker"


@dataclass(frozen=True)
class Settings:
    """Every setting; the string literal under each field is its documentation.

    ``docs/configuration.md`` is generated from these docstrings by ``tools/update_config_docs.py`` (a test fails
    when it is stale or a field has no docstring): after adding a field, document it here and run the tool.
    """

    issuer: str = "http://127.0.0.1:8080"
    """Token ``iss`` and the public base URL of ``/jwks`` and OIDC discovery; set it to the broker's real URL."""
    data_dir: Path = field(default_factory=user_data_dir)
    """Directory for local state: signing keys, nonce secret, SQLite replay ledger, local collateral cache. The
    CLI prints it when it creates it; nothing is written to the current directory unless asked."""
    token_ttl_seconds: int = 300
    """Lifetime of issued broker tokens (``exp`` - ``iat``)."""
    token_audience: str = "attestation-broker"  # noqa: S105 - an audience, not a secret
    """Token ``aud``; ``POST /v1/verify`` and ``token verify`` require it."""
    nonce_ttl_seconds: int = 300
    """How long a challenge nonce from ``POST /v1/challenge`` stays valid."""
    replay_ledger: bool = True
    """Make nonces single-use through the replay ledger (see ``ledger``); off accepts a nonce until it expires."""
    max_body_bytes: int = 256 * 1024
    """Largest accepted request body; larger bodies get 413 PAYLOAD_TOO_LARGE."""
    max_inflight_attestations: int = 64
    """Attestations verified concurrently per process; more get 429 RATE_LIMITED instead of queueing."""
    amd_kds_url: str = "https://kdsintf.amd.com"
    """AMD Key Distribution Service base URL (VCEKs, cert chains, CRLs); tests point it at a loopback replay."""
    intel_pcs_url: str = "https://api.trustedservices.intel.com"
    """Intel Provisioning Certification Service base URL (TCB info, QE identity, PCK CRLs)."""
    intel_root_crl_url: str = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
    """URL of the Intel SGX Root CA CRL."""
    nvidia_rim_url: str = "https://rim.attestation.nvidia.com"
    """NVIDIA RIM service base URL (driver and VBIOS reference integrity manifests for ``nvidia-gpu``)."""
    nvidia_ocsp_url: str = "https://ocsp.ndis.nvidia.com"
    """NVIDIA OCSP responder for GPU device and RIM certificate revocation."""
    nvidia_nras_issuer: str = "https://nras.attestation.nvidia.com"
    """The pinned NVIDIA Remote Attestation Service issuer (``iss``) accepted in ``nvidia-token`` evidence."""
    nvidia_nras_jwks_url: str = "https://nras.attestation.nvidia.com/.well-known/jwks.json"
    """Where the NRAS signing keys are fetched; ``nvidia-token`` trusts keys from this key set only."""
    fetch_timeout_seconds: float = 3.0
    """Timeout of one vendor collateral fetch; a miss is 503 COLLATERAL_UNAVAILABLE, never a pass."""
    offline: bool = False
    """Open no socket for collateral: only cached, bundled or supplied collateral is used."""
    collateral_stale_grace_seconds: int = 0
    """Stale-if-error maximum age: how long past its expiry a cached copy may still be used while every upstream
    fails (flagged ``stale`` in the token's verifier claims). Beyond it: 503 COLLATERAL_UNAVAILABLE, never a pass."""
    revocation: str = "check"
    """``check``: CRLs / OCSP are required (missing revocation data is COLLATERAL_UNAVAILABLE); ``skip``: an operator
    verifies recorded evidence without them; recorded in verifier claims, result capped at warning."""
    intel_upstreams: tuple[str, ...] = ()
    """More Intel collateral upstreams, tried in order after ``intel_pcs_url``: ``pcs:URL`` (PCS URL space) or
    ``pccs:URL`` (Intel's PCCS API: a local PCCS, dstack or a cloud PCCS mirror). docs/collateral.md "Mirrors"."""
    amd_upstreams: tuple[str, ...] = ()
    """More AMD collateral upstreams (KDS mirrors, caching proxies: same paths), tried after ``amd_kds_url``."""
    collateral_deadline_seconds: float = 10.0
    """One collateral fetch, over every upstream and retry round, never takes longer than this."""
    upstream_rounds: int = 3
    """Rounds over the upstream list before a fetch gives up (within ``collateral_deadline_seconds``)."""
    upstream_backoff_seconds: float = 0.25
    """Base of the jittered exponential back-off between rounds (full jitter, capped at 4 s)."""
    upstream_failure_threshold: int = 3
    """Consecutive failures that open an upstream's circuit (it is skipped until the cooldown ends)."""
    upstream_cooldown_seconds: float = 30.0
    """How long an open circuit stays open; a 429/503 ``Retry-After`` closes an upstream for as long as it says."""
    collateral_dir: str = ""
    """A read-only collateral bundle directory (docs/collateral.md "Bundles"), consulted before any upstream."""
    gcp_token_issuers: tuple[str, ...] = ("https://confidentialcomputing.googleapis.com",)
    """Pinned issuers accepted in ``gcp-token`` evidence."""
    maa_issuers: tuple[str, ...] = DEFAULT_MAA_ISSUERS
    """Pinned Microsoft Azure Attestation issuers accepted in ``azure-token`` evidence (default: shared providers)."""
    upstream_audiences: tuple[str, ...] = ()
    """Audiences accepted in upstream tokens; empty accepts any ``aud`` and grades instance-identity as warning."""
    clock_skew_seconds: int = 60
    """Clock skew tolerated when checking times in evidence and upstream tokens."""
    require_nonce: bool = False
    """Refuse attestations that name no broker nonce (403 NONCE_REQUIRED)."""
    policy_file: str = ""
    """Policy document (YAML or JSON, docs/policy.md): named policies per evidence kind, validated and compiled at
    start (a broken document stops the server and every Lambda handler); empty: every kind's built-in default."""
    issue_contraindicated: bool = False
    """EAR-style contraindicated tokens for EAR-aware consumers (docs/policy.md); off: every refusal is 403
    ``POLICY_REJECTED`` with no token. ``/v1/verify`` never calls a contraindicated token valid."""
    signer: str = "local"
    """Token signer: ``local`` (ES256 key under ``data_dir``) or ``kms:<key-id|ARN|alias>`` (AWS KMS)."""
    signer_rs256: str = ""
    """RS256 key for federation audiences that need it (docs/federation.md): ``local`` | ``kms:<RSA_2048 key id>`` |
    ``off``. Empty: a local key when ``signer`` is local, none otherwise (instances must share one key)."""
    retired_signers: tuple[str, ...] = ()
    """Retired ES256 KMS keys still published in ``/jwks`` (and accepted when verifying broker tokens) during their
    overlap window: ``kms:<key id|ARN|alias>@<ISO 8601 published_until>``, comma-separated. An entry past its
    ``published_until`` is ignored. The rotation procedure is in docs/deploy.md "Rotating the KMS signing keys"."""
    retired_signers_rs256: tuple[str, ...] = ()
    """Retired RS256 (``RSA_2048``) KMS keys with their overlap window, same form as ``retired_signers``."""
    ledger: str = "sqlite"
    """Replay ledger: ``sqlite[:<path>]`` (under ``data_dir``), ``dynamodb:<table>`` or ``off``."""
    cache: str = "local"
    """Shared collateral store: ``local[:<dir>]`` (under ``data_dir``), ``s3:<bucket>[/<prefix>]`` or ``memory``."""
    audit: str = "stdout"
    """Audit sink: ``stdout`` (Cloud Logging JSON lines) or ``cloud-logging:<project>`` (Cloud Logging API)."""
    fixed_time: str = ""
    """ISO 8601 instant to verify evidence as of (reproduce a past decision, test with old vectors); empty: the
    system clock. Tokens are still issued and checked on the system clock. Never set this in production."""
    federation_audiences: tuple[str, ...] = ()
    """Audiences a broker token may be exchanged for at ``POST /v1/token`` (RFC 8693; docs/federation.md); none
    by default."""
    federation_config: str = ""
    """Per-audience algorithm, ``sub`` template, tags and TTL for token exchange: inline JSON (starting with ``{``)
    or the path of a JSON file."""
    nonce_secret: str = ""
    """Hex or base64 secret (>= 32 bytes) for nonce MACs; empty: generated under ``data_dir``. Required with
    ``kms``/``dynamodb`` backends, where several instances must agree."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        defaults = cls()
        for f in fields(cls):
            raw = env.get(f"BROKER_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(defaults, f.name)
            try:
                if isinstance(default, bool):
                    if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError(raw)
                    values[f.name] = raw.lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                elif isinstance(default, tuple):
                    values[f.name] = tuple(x.strip() for x in raw.split(",") if x.strip())
                elif isinstance(default, Path):
                    values[f.name] = Path(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise CONFIG_INVALID(f"BROKER_{f.name.upper()} has an invalid value") from None
        values.update(overrides)
        return replace(cls(), **values)  # type: ignore[arg-type]
