"""Real-vector seeds for the mutation fuzzer: for every evidence kind, submissions that verify (or reach
the deepest checks) with a context whose vendor endpoints are served in-process from recorded bytes.

A seed is a verifier, a :class:`Submission` and a :class:`VerifyContext`; the fuzzer mutates the
submission's evidence, one extra or one envelope field and asserts that only typed errors come out.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from attestation_broker.config import Settings
from attestation_broker.errors import COLLATERAL_UNAVAILABLE
from attestation_broker.evidence.azure_token.kind import AzureTokenVerifier
from attestation_broker.evidence.azure_vtpm.kind import AzureVtpmVerifier
from attestation_broker.evidence.gcp_token.kind import GcpTokenVerifier
from attestation_broker.evidence.gcp_vtpm.kind import GcpVtpmVerifier
from attestation_broker.evidence.nitro.kind import NitroVerifier
from attestation_broker.evidence.snp.kind import SnpVerifier
from attestation_broker.evidence.tdx.kind import TdxVerifier
from attestation_broker.evidence.tpm.kind import TpmVerifier
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import FetchResponse
from attestation_broker.verifier import Submission, Verifier, VerifyContext
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.vectors import vector

BASE = "http://fuzz.invalid"


class MapFetcher:
    """An in-process Fetcher serving recorded bodies by exact URL (no socket: fuzzing needs speed)."""

    def __init__(self, routes: Mapping[str, bytes]) -> None:
        self.routes = dict(routes)

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        body = self.routes.get(url)
        if body is None:
            raise COLLATERAL_UNAVAILABLE("not recorded")
        return FetchResponse(url, body)


@dataclass(frozen=True)
class Seed:
    name: str
    kind: str
    verifier: Verifier
    submission: Submission
    make_ctx: Callable[[], VerifyContext]


def _ctx(now: datetime, routes: Mapping[str, bytes] | None = None, **settings: Any) -> Callable[[], VerifyContext]:
    def build() -> VerifyContext:
        return VerifyContext(
            now=now,
            collateral=CollateralCache(MapFetcher(routes or {}), timeout=2.0),
            settings=Settings(**settings),
        )

    return build


def _day(day: str) -> datetime:
    return datetime.fromisoformat(day + "T00:00:00+00:00")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _crl_der(product: str) -> bytes:
    pem = vector(f"roots/amd/amd_{product.lower()}_vcek_crl.pem")
    return x509.load_pem_x509_crl(pem).public_bytes(Encoding.DER)


def _snp() -> list[Seed]:
    v = SnpVerifier()
    crl = vector("roots/amd/amd_milan_vcek_crl.pem")
    cases = (
        ("snp/go-sev-guest-milan-v2/attestation.bin", "snp/go-sev-guest-milan-v2/vcek.testcer"),
        ("snp/trustee-milan-v2/test-report.bin", "snp/trustee-milan-v2/test-vcek.der"),
        ("snp/trustee-azure-milan-hcl/snp-report.derived.bin", "snp/trustee-azure-milan-hcl/vcek.pem"),
    )
    seeds = [
        Seed(report, "snp", v, Submission(vector(report), (vector(cert), crl)), _ctx(_day("2025-06-01"), offline=True))
        for report, cert in cases
    ]
    fields = {"vcek": _b64(vector(cases[1][1])), "crl": crl.decode(), "product": "Milan"}
    seeds.append(
        Seed(
            "snp-fields",
            "snp",
            v,
            Submission(vector(cases[1][0]), fields=fields),
            _ctx(_day("2025-06-01"), offline=True),
        )
    )
    return seeds


def _tdx() -> list[Seed]:
    v = TdxVerifier()
    quote = vector("tdx/dcap-qvl-b0c06f-v4/tdx_quote")
    collateral = json.loads(vector("tdx/dcap-qvl-b0c06f-v4/tdx_quote_collateral.json"))
    now = datetime(2025, 7, 1, tzinfo=UTC)
    return [Seed("tdx-D6", "tdx", v, Submission(quote, fields={"collateral": collateral}), _ctx(now, offline=True))]


def _nitro() -> list[Seed]:
    v = NitroVerifier()
    cases = (
        ("nitro/evervault-nondebug-2023-01-18.san.cose", "2023-01-18 13:07:20"),
        ("nitro/evervault-2023-09-06a.cose", "2023-09-06 13:30:20"),
    )
    seeds = []
    for name, when in cases:
        now = datetime.fromisoformat(when).replace(tzinfo=UTC)
        seeds.append(Seed(name, "nitro", v, Submission(vector(name)), _ctx(now, offline=True)))
    return seeds


def _tpm() -> list[Seed]:
    from tests.unit.tpm.helpers import azure_bincode, gce_attestation

    v = TpmVerifier()
    az = azure_bincode(vector("tpm/azure-vtpm-quote-2024-02.bincode"))
    ak = vector("tpm/azure-vtpm-quote-2024-02.akpub.pem")
    now = datetime(2024, 2, 1, tzinfo=UTC)
    fields = {
        "signature": _b64(az.signature),
        "ak_public": ak.decode(),
        "pcrs": {"sha256": {str(i): val.hex() for i, val in az.pcrs.items()}},
    }
    g = gce_attestation()
    q = g.quotes[1]
    gfields = {
        "signature": _b64(q.raw_sig),
        "ak_public": _b64(g.ak_pub),
        "pcrs": {"sha256": {str(i): val.hex() for i, val in q.pcrs.items()}},
        "event_log": _b64(g.event_log),
    }
    return [
        Seed(
            "tpm-azure",
            "tpm",
            v,
            Submission(az.message, fields=fields),
            _ctx(now, offline=True),
        ),
        Seed(
            "tpm-gce-extras",
            "tpm",
            v,
            Submission(q.quote, extras=(q.raw_sig, g.ak_pub)),
            _ctx(now, offline=True),
        ),
        Seed(
            "tpm-gce-eventlog",
            "tpm",
            v,
            Submission(q.quote, fields=gfields),
            _ctx(now, offline=True),
        ),
    ]


def _gcp_vtpm() -> list[Seed]:
    v = GcpVtpmVerifier()
    now = datetime(2026, 11, 22, tzinfo=UTC)
    pb = vector("gcp/gce-cos-85-nonce9009.attestation.pb")
    return [
        Seed(
            "gcp-vtpm-cos85",
            "gcp-vtpm",
            v,
            Submission(pb, (vector("gcp/gce-ca-tpm_ek_intermediate_2.crt"),)),
            _ctx(now, offline=True),
        )
    ]


def _azure_vtpm() -> list[Seed]:
    v = AzureVtpmVerifier()
    routes = {f"{BASE}/kds/vcek/v1/{p}/crl": _crl_der(p) for p in ("Milan", "Genoa")}
    milan = datetime(2026, 1, 15, tzinfo=UTC)
    a = "azure/"
    return [
        Seed(
            "azure-vtpm-v1",
            "azure-vtpm",
            v,
            Submission(vector(a + "az-snp-vtpm-evidence-v1-26F8BC30.json")),
            _ctx(milan, routes, amd_kds_url=f"{BASE}/kds"),
        ),
        Seed(
            "azure-vtpm-msg-sig",
            "azure-vtpm",
            v,
            Submission(
                vector(a + "az-snp-hcl-report-D3A9B6BE.bin"),
                tuple(
                    vector(a + n)
                    for n in (
                        "az-snp-tpm-quote-D3A9B6BE.msg",
                        "az-snp-tpm-quote-D3A9B6BE.sig",
                        "az-snp-vcek-D3A9B6BE.pem",
                    )
                ),
            ),
            _ctx(milan, routes, amd_kds_url=f"{BASE}/kds"),
        ),
        Seed(
            "azure-vtpm-tdx",
            "azure-vtpm",
            v,
            Submission(vector(a + "az-tdx-vtpm-evidence-v1-6332533D.json")),
            _ctx(milan, routes, offline=True),
        ),
    ]


def _gcp_token() -> list[Seed]:
    from tests.unit.tokens.helpers import (
        GOOGLE_DISCOVERY_PATH,
        GOOGLE_ISS,
        GOOGLE_JWKS_PATH,
        GOOGLE_JWKS_URI,
        OIDC_IAT,
        OIDC_JWKS,
        OIDC_TOKEN,
        PKI_IAT,
        PKI_TOKEN,
    )

    override = {GOOGLE_ISS: BASE + "/gca", "https://www.googleapis.com": BASE + "/gapi"}
    discovery = {"issuer": GOOGLE_ISS, "jwks_uri": GOOGLE_JWKS_URI, "id_token_signing_alg_values_supported": ["RS256"]}
    routes = {BASE + GOOGLE_DISCOVERY_PATH: json.dumps(discovery).encode(), BASE + GOOGLE_JWKS_PATH: vector(OIDC_JWKS)}
    v = GcpTokenVerifier(key_url_override=override)
    at = lambda ts: datetime.fromtimestamp(ts + 5, tz=UTC)  # noqa: E731
    return [
        Seed("gcp-token-oidc", "gcp-token", v, Submission(vector(OIDC_TOKEN).strip()), _ctx(at(OIDC_IAT), routes)),
        Seed("gcp-token-pki", "gcp-token", v, Submission(vector(PKI_TOKEN).strip()), _ctx(at(PKI_IAT), routes)),
    ]


def _azure_token() -> list[Seed]:
    from tests.unit.tokens.helpers import EUS2, MAA_EUS2, MAA_EUS2_IAT, MAA_WEU, MAA_WEU_IAT, WEU, maa_keys

    override = {WEU: BASE + "/weu", EUS2: BASE + "/eus2"}
    routes = {BASE + "/weu/certs": maa_keys(WEU), BASE + "/eus2/certs": maa_keys(EUS2)}
    v = AzureTokenVerifier(key_url_override=override)
    at = lambda ts: datetime.fromtimestamp(ts + 5, tz=UTC)  # noqa: E731
    return [
        Seed("maa-weu", "azure-token", v, Submission(vector(MAA_WEU).strip()), _ctx(at(MAA_WEU_IAT), routes)),
        Seed("maa-eus2", "azure-token", v, Submission(vector(MAA_EUS2).strip()), _ctx(at(MAA_EUS2_IAT), routes)),
    ]


def _nvidia_gpu() -> list[Seed]:
    from attestation_broker.evidence.nvidia_gpu.kind import NvidiaGpuVerifier

    v = NvidiaGpuVerifier()
    gpu = "nvidia/nvtrust/h100pcie_550.90.07_2025/"
    switch = "nvidia/attestation-sdk/ls10_switch_96.10.55.00.01/"
    extras = (
        vector(gpu + "hopperCertChain.txt"),
        vector("nvidia/museop/NV_GPU_DRIVER_GH100_550.90.07.swidtag"),
        vector("nvidia/museop/NV_GPU_VBIOS_1010_0200_882_96009F0001.swidtag"),
    )
    switch_extras = (
        vector(switch + "switchCertChain.txt"),
        vector(switch + "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml"),
    )
    skip = {"offline": True, "revocation": "skip"}
    return [
        Seed(
            "nvidia-E2",
            "nvidia-gpu",
            v,
            Submission(vector(gpu + "hopperAttestationReport.txt"), extras),
            _ctx(_day("2026-03-01"), **skip),
        ),
        Seed(
            "nvidia-E7",
            "nvidia-gpu",
            v,
            Submission(vector(switch + "switchAttestationReport.txt"), switch_extras),
            _ctx(_day("2026-11-29"), **skip),
        ),
        Seed(
            "nvidia-sdk-list",
            "nvidia-gpu",
            v,
            Submission(vector("nvidia/attestation-sdk/serialized/multi_gpu_hopper.json")),
            _ctx(_day("2026-11-29"), **skip),
        ),
    ]


def _nvidia_token() -> list[Seed]:
    import json

    from attestation_broker.evidence.nvidia_token.kind import NvidiaTokenVerifier

    jwks = BASE + "/nras/.well-known/jwks.json"
    eat = json.dumps(json.loads(vector("nvidia/voltagegpu/rtxpro6000_nras/nras_tokens_excerpt.json"))["nras"]).encode()
    routes = {jwks: vector("nvidia/voltagegpu/rtxpro6000_nras/nras_jwks_excerpt.json")}
    now = datetime(2026, 9, 17, 12, 30, tzinfo=UTC)
    return [
        Seed(
            "nras-gb20x",
            "nvidia-token",
            NvidiaTokenVerifier(),
            Submission(eat),
            _ctx(now, routes, nvidia_nras_jwks_url=jwks),
        )
    ]


# Every evidence kind: the fuzzer and the input collector's per-kind tests (tests/unit/hardening) iterate them all.
KINDS = (
    "snp",
    "tdx",
    "nitro",
    "tpm",
    "gcp-vtpm",
    "azure-vtpm",
    "gcp-token",
    "azure-token",
    "nvidia-gpu",
    "nvidia-token",
)


@cache
def seeds(kind: str) -> tuple[Seed, ...]:
    builders = {
        "snp": _snp,
        "tdx": _tdx,
        "nitro": _nitro,
        "tpm": _tpm,
        "gcp-vtpm": _gcp_vtpm,
        "azure-vtpm": _azure_vtpm,
        "gcp-token": _gcp_token,
        "azure-token": _azure_token,
        "nvidia-gpu": _nvidia_gpu,
        "nvidia-token": _nvidia_token,
    }
    return tuple(builders[kind]())


del timedelta
