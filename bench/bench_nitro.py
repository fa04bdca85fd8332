"""Nitro verification latency: the full verifier with a warm chain cache beside the bare ES384 check.

Run: ``.venv/bin/python -m bench.bench_nitro``. Rows (median over repeated calls, same document):

- floor: one ECDSA P-384/SHA-384 verification of the COSE Sig_structure with ``cryptography``, the
  leaf key already loaded — the least any verifier must do per document;
- chain cold: the AWS profile, then the shared path builder (four certificate signatures, CA policy) with its
  memos (verified chains, paths) emptied, + the document signature;
- full verifier, chain cached: parse (strict CBOR, DER of every certificate), the verified chain memoized by the
  bundle's bytes with every validity period re-checked at the document timestamp and at ``now``, COSE signature,
  appraisal and claims.

The floor and the cached verifier are timed in alternating slices (:func:`bench.harness.interleaved_us`).
"""

from __future__ import annotations

from datetime import timedelta

from attestation_broker.config import Settings
from attestation_broker.evidence.nitro.abi import parse_document
from attestation_broker.evidence.nitro.checks import _CHAINS, verify_chain
from attestation_broker.evidence.nitro.kind import NitroVerifier
from attestation_broker.evidence.nitro.trust import aws_nitro_root
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.chain import PATHS
from attestation_broker.trust.fetch import OfflineFetcher
from attestation_broker.verifier import Submission, VerifyContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.harness import interleaved_us, median_us, record, report
from tests.support.vectors import vector

VECTOR = "nitro/evervault-nondebug-2022-10-13.cose"


def main() -> None:
    raw = vector(VECTOR)
    parsed = parse_document(raw)
    document = parsed.document
    now = document.timestamp
    ctx = VerifyContext(now=now, collateral=CollateralCache(OfflineFetcher()), settings=Settings())
    submission = Submission(evidence=raw)

    verifier = NitroVerifier()
    verifier.verify(submission, ctx)  # warm: chain edges memoized

    key = x509.load_der_x509_certificate(document.certificate).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature = encode_dss_signature(
        int.from_bytes(parsed.cose.signature[:48], "big"), int.from_bytes(parsed.cose.signature[48:], "big")
    )
    message = parsed.cose.sig_structure()

    def floor() -> None:
        key.verify(signature, message, ec.ECDSA(hashes.SHA384()))

    anchor = aws_nitro_root()

    skew = timedelta(seconds=ctx.settings.clock_skew_seconds)

    def chain_cold() -> None:
        PATHS.clear()
        _CHAINS.clear()
        verify_chain(document, anchor, now=now, skew=skew)
        key.verify(signature, message, ec.ECDSA(hashes.SHA384()))

    def full_cached() -> None:
        verifier.verify(submission, ctx)

    timed = interleaved_us({"bare COSE ES384 verify (floor)": floor, "NitroVerifier.verify, chain cached": full_cached})
    rows = [
        ("bare COSE ES384 verify (floor)", timed["bare COSE ES384 verify (floor)"]),
        ("chain cold (4 cert sigs) + COSE verify", median_us(chain_cold, runs=100)),
        ("NitroVerifier.verify, chain cached", timed["NitroVerifier.verify, chain cached"]),
        ("parse only (strict CBOR + DER, certs memoized)", median_us(lambda: parse_document(raw))),
    ]
    report(f"nitro: {VECTOR}", rows, floor="bare COSE ES384 verify (floor)")
    ratio = rows[2][1] / rows[0][1]
    record("Nitro verify", f"{ratio:.2f}x floor (chain cached)", "keep: <= 1.4x", ratio <= 1.4)
    print(f"  verified-chain memo: {_CHAINS.hits} hits, {_CHAINS.misses} misses")


if __name__ == "__main__":
    main()
