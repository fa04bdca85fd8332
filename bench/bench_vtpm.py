"""Benchmark the vTPM composites (``gcp-vtpm``, ``azure-vtpm``) with cached collateral.

Run: ``.venv/bin/python -m bench.bench_vtpm``. Rows per kind:

- full verification (``Verifier.verify``) with collateral already cached in memory;
- the floor: only the signature checks on the same bytes with ``cryptography`` (GCE: three quote
  signatures + AK cert + intermediate; Azure: SNP report ECDSA-P384 + VCEK←ASK RSA-PSS + quote RSA);
- the same verification with the event-log memo emptied before each call (the first attestation after a boot: a
  log not seen before), and the event-log parse + replay alone, memo emptied (GCE);
- ``tpm2_checkquote`` (tpm2-tools) on one quote, when installed — a process per call, so it mostly
  measures process start-up; shown for scale, not as a like-for-like peer.

The gcp-vtpm rows are timed in alternating slices (:func:`bench.harness.interleaved_us`); the two verify rows, as
ratios to the floor, go to the target table (:func:`bench.harness.record`, issue 13: <= 3x floor, also for a boot
log not seen before). Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from attestation_broker.config import Settings
from attestation_broker.evidence.azure_vtpm import AzureVtpmVerifier
from attestation_broker.evidence.azure_vtpm.envelope import parse_trustee_json
from attestation_broker.evidence.azure_vtpm.hcl import parse_hcl_report
from attestation_broker.evidence.gcp_vtpm import GcpVtpmVerifier
from attestation_broker.evidence.gcp_vtpm.abi import parse_attestation
from attestation_broker.evidence.tpm import eventlog, load_ak_public, parse_signature, verify_event_log
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import FetchResponse
from attestation_broker.verifier import Submission, VerifyContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.harness import interleaved_us, median_us, record, report
from tests.support.vectors import vector


class _Fixed:
    def __init__(self, routes: dict[str, bytes]) -> None:
        self.routes = routes

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        return FetchResponse(url, self.routes[url])


def _checkquote_us(ak_pem: bytes, msg: bytes, sig: bytes, nonce: bytes, plain: bool) -> float | None:
    tool = shutil.which("tpm2_checkquote")
    if tool is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "ak.pem").write_bytes(ak_pem)
        (d / "msg").write_bytes(msg)
        (d / "sig").write_bytes(sig)
        cmd = [tool, "-u", str(d / "ak.pem"), "-m", str(d / "msg"), "-s", str(d / "sig"), "-g", "sha256"]
        cmd += ["-q", nonce.hex()] + (["-F", "plain"] if plain else [])

        def run() -> None:
            subprocess.run(cmd, check=True, capture_output=True)

        return median_us(run, runs=20, warmup=2)


def _pem(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def bench_gcp() -> None:
    evidence = vector("gcp/gce-cos-85-nonce9009.attestation.pb")
    intermediate = vector("gcp/gce-ca-tpm_ek_intermediate_2.crt")
    root = x509.load_der_x509_certificate(vector("gcp/gce-ca-tpm_ek_root_1.cer"))
    now = datetime(2026, 11, 22, tzinfo=UTC)
    ctx = VerifyContext(now=now, collateral=CollateralCache(_Fixed({})), settings=Settings(offline=True))
    verifier = GcpVtpmVerifier()
    submission = Submission(evidence, (intermediate,))

    att = parse_attestation(evidence)
    ak = load_ak_public(att.ak_pub)
    ak_key = ak.key
    assert isinstance(ak_key, rsa.RSAPublicKey)
    sigs = [(q.attest, parse_signature(q.signature)) for q in att.quotes]
    ak_cert = x509.load_der_x509_certificate(att.ak_cert)
    inter = x509.load_der_x509_certificate(intermediate)

    def floor() -> None:
        for msg, sig in sigs:
            ak_key.verify(sig.value, msg, padding.PKCS1v15(), hashes.SHA256())
        ak_cert.verify_directly_issued_by(inter)
        inter.verify_directly_issued_by(root)

    sha256 = next(q for q in att.quotes if q.bank == "sha256")

    def replay() -> None:
        eventlog._VERIFIED.clear()
        verify_event_log(att.event_log, sha256.pcrs, "sha256", ignore_pcrs=[10])

    def new_log() -> None:
        eventlog._VERIFIED.clear()
        verifier.verify(submission, ctx)

    timed = interleaved_us(
        {
            "gcp-vtpm verify (3 quotes, AK chain, log replay)": lambda: verifier.verify(submission, ctx),
            "floor: 3 quote sigs + 2 cert sigs (cryptography)": floor,
            "event-log parse + replay (sha256 bank), no memo": replay,
            "gcp-vtpm verify, event-log memo emptied": new_log,
        }
    )
    rows = list(timed.items())
    checkquote = _checkquote_us(_pem(ak_key), sha256.attest, sha256.signature, bytes.fromhex("9009"), False)
    if checkquote is not None:
        rows.append(("tpm2_checkquote, 1 quote (process per call)", checkquote))
    report("gcp-vtpm (GCE cos-85, cached intermediate)", rows, floor="floor: 3 quote sigs + 2 cert sigs (cryptography)")
    print(f"  event-log parse + replay share of a verify with the memo emptied: {100 * rows[2][1] / rows[3][1]:.0f}%")
    base = rows[1][1]
    targets = (("gcp-vtpm verify, boot log seen before", rows[0][1]), ("gcp-vtpm verify, new boot log", rows[3][1]))
    for row, us in targets:
        record(row, f"{us / base:.2f}x floor ({us:.0f} µs)", "<= 3x floor", us / base <= 3)


def bench_azure() -> None:
    doc = vector("azure/az-snp-vtpm-evidence-v1-26F8BC30.json")
    now = datetime(2026, 1, 15, tzinfo=UTC)
    crl_pem = vector("roots/amd/amd_milan_vcek_crl.pem")
    crl = x509.load_pem_x509_crl(crl_pem).public_bytes(serialization.Encoding.DER)
    settings = Settings(amd_kds_url="https://kds.invalid")
    cache = CollateralCache(_Fixed({"https://kds.invalid/vcek/v1/Milan/crl": crl}))
    ctx = VerifyContext(now=now, collateral=cache, settings=settings)
    verifier = AzureVtpmVerifier()
    submission = Submission(doc)
    verifier.verify(submission, ctx)  # warm the CRL into the memory cache

    import json

    ev = parse_trustee_json(json.loads(doc))
    hcl = parse_hcl_report(ev.hcl_report)
    vcek = x509.load_der_x509_certificate(ev.certs[0])
    ask = x509.load_pem_x509_certificates(vector("azure/amd-milan-ask-ark-asvk.pem"))[0]
    report_bytes = hcl.hw_report
    r = int.from_bytes(report_bytes[0x2A0:0x2E8], "little")
    s = int.from_bytes(report_bytes[0x2E8:0x330], "little")
    snp_sig = encode_dss_signature(r, s)
    vcek_key = vcek.public_key()
    assert isinstance(vcek_key, ec.EllipticCurvePublicKey)
    ak = load_ak_public(dict(hcl.ak_jwk()))
    ak_key = ak.key
    assert isinstance(ak_key, rsa.RSAPublicKey)
    assert ev.quote is not None
    quote = ev.quote

    def floor() -> None:
        vcek_key.verify(snp_sig, report_bytes[:0x2A0], ec.ECDSA(hashes.SHA384()))
        vcek.verify_directly_issued_by(ask)
        ak_key.verify(quote.signature, quote.message, padding.PKCS1v15(), hashes.SHA256())

    rows = [
        ("azure-vtpm verify (SNP + VCEK chain + CRL + quote)", median_us(lambda: verifier.verify(submission, ctx))),
        ("floor: SNP ECDSA + VCEK RSA-PSS + quote RSA", median_us(floor)),
    ]
    checkquote = _checkquote_us(_pem(ak_key), quote.message, quote.signature, b"challenge", True)
    if checkquote is not None:
        rows.append(("tpm2_checkquote, 1 quote (process per call)", checkquote))
    report("azure-vtpm (SEV-SNP Milan, trustee v1 JSON, cached CRL)", rows, floor=rows[1][0])


def main() -> None:
    bench_gcp()
    bench_azure()


if __name__ == "__main__":
    main()
