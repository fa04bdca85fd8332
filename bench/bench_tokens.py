"""Benchmark: upstream-token verification (gcp-token OIDC and PKI, azure-token) with keys cached.

Each row pair is the broker's full ``verify`` (parse, header rules, pinned issuer, cached key lookup, signature,
claims, normalization, appraisal; for PKI tokens the x5c chain to the pinned root, whose signature
checks are memoized by chain bytes while validity dates are checked on every call) beside the floor: a
bare ``jwt.decode`` of the same token with the same key and no claim checks. Keys are served once from an
in-memory fetcher and then come from the memory tier of the collateral cache. Run:
``.venv/bin/python -m bench.bench_tokens``.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from attestation_broker.config import Settings
from attestation_broker.errors import COLLATERAL_NOT_FOUND
from attestation_broker.evidence.azure_token.kind import AzureTokenVerifier
from attestation_broker.evidence.gcp_token.kind import GcpTokenVerifier
from attestation_broker.evidence.jose.keys import parse_jwks
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import FetchResponse
from attestation_broker.verifier import Submission, VerifyContext
from cryptography import x509

from bench.harness import median_us, report

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"
GOOGLE_ISS = "https://confidentialcomputing.googleapis.com"
GOOGLE_JWKS = (
    "https://www.googleapis.com/service_accounts/v1/metadata/jwk/signer@confidentialspace-sign.iam.gserviceaccount.com"
)
EUS2 = "https://sharedeus2.eus2.attest.azure.net"


class MemoryFetcher:
    """Serves recorded bodies by URL; opens no socket."""

    def __init__(self, routes: dict[str, bytes]) -> None:
        self.routes = routes

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        body = self.routes.get(url)
        if body is None:
            raise COLLATERAL_NOT_FOUND(url)
        return FetchResponse(url=url, body=body)


def _read(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def _floor(token: str, key: Any) -> Any:
    return jwt.decode(
        token,
        key=key,
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
    )


def main() -> None:
    maa_keys = json.loads(_read("azure/maa-signing-keys-by-jku.json"))[EUS2 + "/certs"]
    routes = {
        GOOGLE_ISS + "/.well-known/openid-configuration": json.dumps(
            {"issuer": GOOGLE_ISS, "jwks_uri": GOOGLE_JWKS}
        ).encode(),
        GOOGLE_JWKS: _read("gcp/cs-oidc-jwks-kid-4676c490.json"),
        EUS2 + "/certs": json.dumps(maa_keys).encode(),
    }
    cache = CollateralCache(MemoryFetcher(routes))
    settings = Settings()

    def ctx(ts: int) -> VerifyContext:
        return VerifyContext(now=datetime.fromtimestamp(ts, tz=UTC), collateral=cache, settings=settings)

    gcp, azure = GcpTokenVerifier(), AzureTokenVerifier()
    oidc = _read("gcp/cs-oidc-token-flare-2024-11-03.jwt")
    pki = _read("gcp/cs-pki-token-oak-2025-06-23.jwt")
    maa = _read("azure/maa-cvm-sevsnp-sharedeus2-2024-12-20.jwt")
    oidc_ctx, pki_ctx, maa_ctx = ctx(1730678017), ctx(1750688556), ctx(1734719099)

    oidc_key = parse_jwks(routes[GOOGLE_JWKS])["4676c490dc43829636595442e93cdc5d27aaa279"].key
    maa_key = parse_jwks(routes[EUS2 + "/certs"])["J0pAPdfXXHqWWimgrH853wMIdh5/fLe1z6uSXYPXCa0="].key
    pki_text = pki.decode().strip()
    leaf = x509.load_der_x509_certificate(base64.b64decode(jwt.get_unverified_header(pki_text)["x5c"][0]))
    pki_key = leaf.public_key()

    rows = [
        ("gcp-token OIDC: verify (keys cached)", median_us(lambda: gcp.verify(Submission(oidc), oidc_ctx))),
        ("gcp-token OIDC: bare jwt.decode (floor)", median_us(lambda: _floor(oidc.decode().strip(), oidc_key))),
        ("gcp-token PKI: verify (chain memoized)", median_us(lambda: gcp.verify(Submission(pki), pki_ctx))),
        ("gcp-token PKI: bare jwt.decode (floor)", median_us(lambda: _floor(pki_text, pki_key))),
        ("azure-token: verify (keys cached)", median_us(lambda: azure.verify(Submission(maa), maa_ctx))),
        ("azure-token: bare jwt.decode (floor)", median_us(lambda: _floor(maa.decode().strip(), maa_key))),
    ]
    report("gcp-token OIDC", rows[0:2], floor="gcp-token OIDC: bare jwt.decode (floor)")
    report("gcp-token PKI", rows[2:4], floor="gcp-token PKI: bare jwt.decode (floor)")
    report("azure-token", rows[4:6], floor="azure-token: bare jwt.decode (floor)")
    print(f"  origin fetches: {cache.stats.origin_fetches}, memory hits: {cache.stats.memory_hits}")


if __name__ == "__main__":
    main()
