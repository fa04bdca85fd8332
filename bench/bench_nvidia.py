"""nvidia-gpu verification latency beside its cryptographic floor.

Run: ``.venv/bin/python -m bench.bench_nvidia``. Rows (median over repeated calls; E2 H100 report, its 5-cert
chain and its two real RIMs; revocation skipped so no OCSP is involved):

- floor: one ECDSA P-384 verify of the SPDM transcript with the leaf key (``cryptography``, key loaded) — the
  least any verifier must do per device; RIM XML-DSig results are memoized by RIM bytes, so a warm verifier
  pays no RIM signature either;
- floor + chain: the transcript verify plus the four certificate signature checks of a cold device chain
  (chain signatures are memoized by the certificates, so a warm verifier pays them once per device);
- nvidia-gpu, warm: the whole kind (parse, chain, signature, FWID, RIM lookup with memoized signatures, golden
  comparison, claims);
- RIM XML-DSig, cold: what each new RIM costs once (signxml + lxml C14N 1.1 + P-384), for comparison.
"""

from __future__ import annotations

from attestation_broker.evidence.common import ecdsa_der_signature
from attestation_broker.evidence.nvidia_gpu import rim as rim_module
from attestation_broker.evidence.nvidia_gpu.abi import parse_report
from attestation_broker.evidence.nvidia_gpu.checks import load_chain
from attestation_broker.evidence.nvidia_gpu.trust import rim_root
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bench.harness import median_us, report
from tests.unit.nvidia.support import E2, verify


def main() -> None:
    raw = bytes.fromhex(E2.report_bytes().decode())
    parsed = parse_report(raw)
    chain = load_chain(E2.chain_bytes())
    leaf_key = chain[0].public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    signature = ecdsa_der_signature(parsed.signature, 48)
    extras = (E2.chain_bytes(), *E2.rim_bytes())
    driver_rim = E2.rim_bytes()[0]

    def floor() -> None:
        leaf_key.verify(signature, parsed.signed, ec.ECDSA(hashes.SHA384()))

    def floor_chain() -> None:
        floor()
        for index in range(len(chain) - 1):
            chain[index].verify_directly_issued_by(chain[index + 1])

    def kind() -> None:
        verify(raw, extras, E2.now)

    def rim_cold() -> None:
        rim_module._verify_signed(driver_rim, rim_root())

    rows = [
        ("floor: 1 P-384 verify (transcript)", median_us(floor)),
        ("floor + 4 chain signatures", median_us(floor_chain)),
        ("nvidia-gpu verify, warm (RIMs memoized)", median_us(kind, runs=100)),
        ("RIM XML-DSig verify, cold (once per RIM)", median_us(rim_cold, runs=30, warmup=3)),
    ]
    report("nvidia-gpu (H100, 64 measurements, driver + VBIOS RIMs)", rows, floor="floor: 1 P-384 verify (transcript)")


if __name__ == "__main__":
    main()
