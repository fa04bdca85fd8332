"""Token exchange (RFC 8693, ``POST /v1/token``) latency beside its cryptographic floor.

Run: ``.venv/bin/python -m bench.bench_federation``. Rows (median over repeated calls, one subject token):

- floor ES256: verify the subject EAR token's ES256 signature + sign one ES256 federation token, with
  ``cryptography`` and loaded keys — the least any exchange must do;
- floor RS256: the same verify + one RSA-2048 PKCS#1 v1.5 signature (what Entra audiences need);
- the full exchange through the shared router: form parsing, subject token verification (PyJWT, JWKS lookup,
  claim checks), the flat profile, signing, the RFC 8693 answer and one audit record (memory sink).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.harness import median_us, report
from tests.support.federation import AWS_AUDIENCE, AZURE_AUDIENCE, attest, exchange, federation_harness


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h = federation_harness(Path(tmp))
        ear = attest(h)["token"]
        ring = h.broker.tokens.keyring
        es_signer, rs_signer = ring.active, ring.signer_for("RS256")
        public = jwt.PyJWK(es_signer.public_jwk()).key
        assert isinstance(public, ec.EllipticCurvePublicKey)
        head, body, sig = ear.split(".")
        raw = jwt.utils.base64url_decode(sig)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        signing_input = f"{head}.{body}".encode()
        claims = json.loads(
            jwt.utils.base64url_decode(exchange(h, ear, AWS_AUDIENCE).json()["access_token"].split(".")[1])
        )
        federation_input = json.dumps(claims, separators=(",", ":")).encode()
        rsa_public = jwt.PyJWK(rs_signer.public_jwk()).key

        def floor_es() -> None:
            public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            es_signer.sign(federation_input)

        def floor_rs() -> None:
            public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            rsa_public.verify(rs_signer.sign(federation_input), federation_input, padding.PKCS1v15(), hashes.SHA256())

        def rs_sign_only() -> None:
            public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            rs_signer.sign(federation_input)

        def aws() -> None:
            h.sink.records.clear()
            assert exchange(h, ear, AWS_AUDIENCE).status == 200

        def azure() -> None:
            h.sink.records.clear()
            assert exchange(h, ear, AZURE_AUDIENCE).status == 200

        rows = [
            ("floor ES256: verify EAR + sign", median_us(floor_es)),
            ("floor RS256: verify EAR + RSA-2048 sign", median_us(rs_sign_only)),
            ("  (RS256 floor + RSA verify, for reference)", median_us(floor_rs)),
            ("/v1/token, sts.amazonaws.com (ES256, tags)", median_us(aws)),
            ("/v1/token, api://AzureADTokenExchange (RS256)", median_us(azure)),
        ]
        report("federation token exchange (in-process router)", rows, floor="floor ES256: verify EAR + sign")
        measured = dict(rows)
        ratio = (
            measured["/v1/token, api://AzureADTokenExchange (RS256)"]
            / measured["floor RS256: verify EAR + RSA-2048 sign"]
        )
        print(f"  RS256 exchange / RS256 floor: {ratio:.2f}x")
        ear_len, fed_len = len(ear), len(exchange(h, ear, AZURE_AUDIENCE).json()["access_token"])
        print(f"  sizes: EAR token {ear_len} B, federation token {fed_len} B")


if __name__ == "__main__":
    main()
