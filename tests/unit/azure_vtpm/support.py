"""Azure vTPM test helpers: vectors, pinned clocks and a replayed AMD KDS (CRLs only: VCEKs ship in the evidence)."""

from __future__ import annotations

from datetime import UTC, datetime

from attestation_broker.verifier import VerifyContext
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.context import replay_context
from tests.support.replay import ReplayServer
from tests.support.vectors import vector

A = "azure/"
# Inside the VCEK windows (2023-…/2025-01-…) and the recorded AMD CRLs' windows
# (Milan 2025-05-06..2026-05-12, Genoa 2024-10-23..2025-11-03).
NOW_MILAN = datetime(2026, 1, 15, tzinfo=UTC)
NOW_GENOA = datetime(2025, 6, 1, tzinfo=UTC)

# name -> (evidence file, extras, now, vmUniqueId, tee)
SNP_CASES: dict[str, tuple[str, tuple[str, ...], datetime, str]] = {
    "v0-26F8BC30": ("az-snp-vtpm-evidence-v0-26F8BC30.json", (), NOW_MILAN, "26F8BC30-774E-4290-8E7A-535F3B672AEE"),
    "v1-26F8BC30": ("az-snp-vtpm-evidence-v1-26F8BC30.json", (), NOW_MILAN, "26F8BC30-774E-4290-8E7A-535F3B672AEE"),
    "genoa-390CBCF5": (
        "az-snp-vtpm-evidence-genoa-390CBCF5.json",
        (),
        NOW_GENOA,
        "390CBCF5-6C67-4D9B-98EF-C3F1699CC8FC",
    ),
    "911B0EF8-bincode": (
        "az-snp-hcl-report-911B0EF8.bin",
        ("az-snp-quote-911B0EF8.bincode", "az-snp-vcek-chain-911B0EF8.pem"),
        NOW_MILAN,
        "911B0EF8-9DBA-48B0-B275-4E4DF2D39252",
    ),
    "911B0EF8-json": (
        "az-snp-hcl-report-911B0EF8.bin",
        ("az-snp-tpm-quote-911B0EF8.json", "az-snp-vcek-chain-911B0EF8.pem"),
        NOW_MILAN,
        "911B0EF8-9DBA-48B0-B275-4E4DF2D39252",
    ),
    "D3A9B6BE-msg-sig": (
        "az-snp-hcl-report-D3A9B6BE.bin",
        ("az-snp-tpm-quote-D3A9B6BE.msg", "az-snp-tpm-quote-D3A9B6BE.sig", "az-snp-vcek-D3A9B6BE.pem"),
        NOW_MILAN,
        "D3A9B6BE-71BB-4C76-BD4F-53CF1F2F5BE2",
    ),
}


def az(name: str) -> bytes:
    return vector(A + name)


def crl_der(product: str) -> bytes:
    pem = vector(f"roots/amd/amd_{product.lower()}_vcek_crl.pem")
    return x509.load_pem_x509_crl(pem).public_bytes(Encoding.DER)


def serve_kds(replay: ReplayServer) -> None:
    for product in ("Milan", "Genoa"):
        replay.add(f"/vcek/v1/{product}/crl", crl_der(product))


def replay_ctx(replay: ReplayServer, now: datetime) -> VerifyContext:
    serve_kds(replay)
    return replay_context(replay.base_url, now)


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)
