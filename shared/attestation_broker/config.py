"""Broker settings: one frozen object built at cold start from the environment (or defaults).

Every setting has an embedded default so ``attestation-broker serve`` runs with no configuration.
Environment variables are ``BROKER_<FIELD>`` in upper case; tuples are comma-separated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
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


@dataclass(frozen=True)
class Settings:
    issuer: str = "http://127.0.0.1:8080"
    data_dir: Path = Path(".broker-data")
    token_ttl_seconds: int = 300
    token_audience: str = "attestation-broker"  # noqa: S105 - an audience, not a secret
    nonce_ttl_seconds: int = 300
    replay_ledger: bool = True
    max_body_bytes: int = 256 * 1024
    max_inflight_attestations: int = 64
    # Vendor endpoints (tests point these at a loopback replay server).
    amd_kds_url: str = "https://kdsintf.amd.com"
    intel_pcs_url: str = "https://api.trustedservices.intel.com"
    intel_root_crl_url: str = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
    nvidia_rim_url: str = "https://rim.attestation.nvidia.com"
    nvidia_ocsp_url: str = "https://ocsp.ndis.nvidia.com"
    fetch_timeout_seconds: float = 3.0
    offline: bool = False
    collateral_stale_grace_seconds: int = 0
    # "check": CRLs / OCSP are required (missing revocation data is COLLATERAL_UNAVAILABLE); "skip": an
    # operator verifies recorded evidence without them; recorded in verifier claims, result capped at warning.
    revocation: str = "check"
    # Upstream token issuers and the audiences the broker accepts in them.
    gcp_token_issuers: tuple[str, ...] = ("https://confidentialcomputing.googleapis.com",)
    maa_issuers: tuple[str, ...] = DEFAULT_MAA_ISSUERS
    upstream_audiences: tuple[str, ...] = ()
    clock_skew_seconds: int = 60
    require_nonce: bool = False
    # JSON policy document: {"<kind>": {...kind policy...}}; empty = every kind's default policy.
    policy_file: str = ""
    # Backends, as "<type>[:<argument>]": signer local | kms:<key-id>; ledger sqlite | dynamodb:<table> | off;
    # cache local | s3:<bucket> | memory; audit stdout | cloud-logging:<project>.
    signer: str = "local"
    # The RS256 key for federation audiences that need it (docs/federation.md): local | kms:<RSA_2048 key id> |
    # off. Empty: a local key when ``signer`` is local, none otherwise (instances must share one key).
    signer_rs256: str = ""
    ledger: str = "sqlite"
    cache: str = "local"
    audit: str = "stdout"
    # ISO 8601 instant to pin the broker clock to ("verify as of"), for reproducing a past decision
    # or testing with old vectors. Empty: the system clock. Never set this in production.
    fixed_time: str = ""
    # Token exchange (RFC 8693, POST /v1/token; docs/federation.md). Audiences a broker token may be exchanged
    # for; nothing is allowed by default. Per-audience algorithm, sub template, tags and TTL come from
    # ``federation_config``: inline JSON (starting with "{") or the path of a JSON file.
    federation_audiences: tuple[str, ...] = ()
    federation_config: str = ""
    # Hex or base64 secret for nonce MACs; locally generated under data_dir when empty.
    nonce_secret: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"BROKER_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls, f.name)
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
