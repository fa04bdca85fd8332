"""TDX verification latency with cached collateral, beside the floor and dcap-qvl (same quote, same collateral).

Run: ``.venv/bin/python -m bench.bench_tdx``. The floor is the irreducible per-quote work: the QE
report and quote ECDSA P-256 verifications plus the QE report-data SHA-256, on the same bytes. The floor, the
broker and dcap-qvl are timed in alternating slices (:func:`bench.harness.interleaved_us`).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from attestation_broker.config import Settings
from attestation_broker.evidence.tdx import TdxCollateral, parse_quote, verify_tdx_evidence
from attestation_broker.evidence.tdx.pck import verify_pck_chain
from attestation_broker.evidence.tdx.pcs import SignedJson
from attestation_broker.evidence.tdx.trust import intel_trust
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import FetchResponse
from attestation_broker.verifier import VerifyContext
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.harness import interleaved_us, record, report

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "tdx" / "dcap-qvl-b0c06f-v4"
NOW = datetime(2025, 7, 1, tzinfo=UTC)


class _MemoryPcs:
    """An in-process 'origin' holding the recorded PCS bodies (primes the cache once; no sockets)."""

    def __init__(self, bodies: dict[str, tuple[bytes, dict[str, str]]]) -> None:
        self.bodies = bodies

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        for marker, (body, headers) in self.bodies.items():
            if marker in url:
                return FetchResponse(url, body, headers)
        raise KeyError(url)


def _pcs_body(key: str, pair: SignedJson) -> bytes:
    # What Intel PCS serves: the signed object and its signature side by side.
    return b'{"' + key.encode() + b'":' + pair.signed + b',"signature":"' + pair.signature.hex().encode() + b'"}'


def _chain(pem: bytes | None) -> dict[str, str]:
    return {"TCB-Info-Issuer-Chain": urllib.parse.quote((pem or b"").decode())}


def main() -> None:
    quote = (VECTORS / "tdx_quote").read_bytes()
    collateral_json = (VECTORS / "tdx_quote_collateral.json").read_text()
    col = TdxCollateral.from_dcap_qvl_json(collateral_json)
    pcs = _MemoryPcs(
        {
            "/tcb?": (_pcs_body("tcbInfo", col.tcb_info), _chain(col.tcb_info_issuer_chain)),
            "/qe/identity": (_pcs_body("enclaveIdentity", col.qe_identity), _chain(col.qe_identity_issuer_chain)),
            "/pckcrl": (col.pck_crl, {}),
            "/rootcacrl": (col.root_crl, {}),
        }
    )
    ctx = VerifyContext(
        now=NOW,
        collateral=CollateralCache(pcs),
        settings=Settings(
            intel_pcs_url="https://pccs.bench.invalid",
            intel_root_crl_url="https://pccs.bench.invalid/sgx/certification/v4/rootcacrl",
        ),
    )

    def broker_cache() -> object:
        return verify_tdx_evidence(quote, ctx, expected_report_data=None)

    def broker_override() -> object:
        return verify_tdx_evidence(quote, ctx, expected_report_data=None, collateral_override=col)

    q = parse_quote(quote)
    pck_key = verify_pck_chain(q.pck_chain_pem, intel_trust(), NOW).leaf_key
    ak = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + q.attestation_key)

    def der(sig: bytes) -> bytes:
        return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))

    def floor() -> object:
        pck_key.verify(der(q.qe_report_signature), q.qe_report.raw, ec.ECDSA(hashes.SHA256()))
        hashlib.sha256(q.attestation_key + q.qe_auth_data).digest()
        ak.verify(der(q.signature), q.signed, ec.ECDSA(hashes.SHA256()))
        return None

    assert json.loads(json.dumps(broker_cache().attester_claims))["tcb"]["status"] == "UpToDate"  # type: ignore[attr-defined]
    fns: dict[str, Callable[[], object]] = {
        "floor: 2x P-256 verify + SHA-256": floor,
        "broker: verify_tdx_evidence (cache, memory tier)": broker_cache,
        "broker: verify_tdx_evidence (collateral_override)": broker_override,
    }
    try:
        import dcap_qvl

        dq_col = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
        now_secs = int(NOW.timestamp())
        status = dcap_qvl.verify(quote, dq_col, now_secs).status
        assert status == "UpToDate", status
        fns["dcap-qvl 0.7: verify (Rust)"] = lambda: dcap_qvl.verify(quote, dq_col, now_secs)
    except ImportError:
        print("dcap-qvl not installed: peer row skipped")
    timings = interleaved_us(fns, runs=500)
    report(
        "TDX quote v4 (FMSPC B0C06F000000), cached collateral",
        list(timings.items()),
        floor="floor: 2x P-256 verify + SHA-256",
    )
    broker = timings["broker: verify_tdx_evidence (cache, memory tier)"]
    ratio = broker / timings["floor: 2x P-256 verify + SHA-256"]
    record("TDX verify, cached collateral", f"{ratio:.2f}x floor ({broker:.0f} µs)", "<= 2x floor", ratio <= 2)
    peer = timings.get("dcap-qvl 0.7: verify (Rust)")
    if peer:
        print(f"  broker (cache) is {peer / broker:.2f}x faster than dcap-qvl in this run (target >= 3x)")
        record("TDX beside dcap-qvl", f"broker {peer / broker:.2f}x faster", ">= 3x faster", peer / broker >= 3)


if __name__ == "__main__":
    main()
