"""Test-only platforms for the guest client: SEV-SNP and TDX configfs-tsm stand-ins signed by generated
AMD-like / Intel-like PKIs, and the broker-side verifiers + vendor stand-ins (KDS, PCS) that trust them.

Nothing here reaches the product's pinned roots: the generated roots are passed to the verifiers'
constructors (``SnpVerifier(trust=...)``, ``TdxVerifier(trust=...)``), which only tests do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attestation_broker.evidence.snp.kind import SnpVerifier
from attestation_broker.evidence.tdx.kind import TdxVerifier
from attestation_broker.trust.fetch import HttpFetcher
from attestation_broker.verifier import Verifier
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.loopback_broker import LoopbackBroker, loopback_broker
from tests.support.replay import replay_server
from tests.support.swtpm import Swtpm
from tests.unit.azure_vtpm import synthetic_tdx
from tests.unit.client.tsm_standin import ASK_GUID, VCEK_GUID, KernelTsm, cert_table
from tests.unit.snp.support import build_report, fake_amd
from tests.unit.tdx.support import FakeIntelPki, chain_header, pcs_body, serve

# Inside the test AMD CRL window (2025-01-01..2026-01-01) and the VCEK's validity.
SNP_NOW = datetime(2025, 6, 1, tzinfo=UTC)
TDX_NOW = synthetic_tdx.NOW
CHIP_ID = bytes(range(64))
TURIN_TCB = {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4, "microcode": 5}


@dataclass
class SnpPlatform:
    tsm: KernelTsm
    vcek_der: bytes


def snp_platform(*, with_certs: bool = True) -> SnpPlatform:
    amd = fake_amd("Turin")
    key, vcek = amd.vcek(CHIP_ID, TURIN_TCB)
    ask_der = amd.ask.public_bytes(Encoding.DER)

    def make(inblob: bytes, privlevel: int) -> tuple[bytes, bytes]:
        report = build_report(key, chip_id=CHIP_ID, tcb=TURIN_TCB, report_data=inblob, vmpl=privlevel)
        aux = cert_table([(VCEK_GUID, vcek), (ASK_GUID, ask_der)]) if with_certs else b""
        return report, aux

    return SnpPlatform(KernelTsm("sev_guest", make), vcek)


def tdx_platform(pki: FakeIntelPki) -> KernelTsm:
    def make(inblob: bytes, _privlevel: int) -> tuple[bytes, bytes]:
        return synthetic_tdx.td_quote(pki, inblob), b""

    return KernelTsm("tdx_guest", make)


@contextmanager
def snp_broker(tmp_path: Path, *, verifiers: Sequence[Verifier] = (), **settings: Any) -> Iterator[LoopbackBroker]:
    """A broker whose ``snp`` verifier (or the given ones) trusts the test AMD root; the CRL comes from a KDS
    stand-in."""
    amd = fake_amd("Turin")
    with replay_server({"/vcek/v1/Turin/crl": amd.crl()}) as kds:
        with loopback_broker(
            tmp_path,
            verifiers=verifiers or [SnpVerifier(trust=amd.trust)],
            fetcher=HttpFetcher(),
            amd_kds_url=kds.base_url,
            **settings,
        ) as broker:
            broker.harness.clock[0] = SNP_NOW
            yield broker


@contextmanager
def tdx_broker(
    tmp_path: Path, pki: FakeIntelPki, *, verifiers: Sequence[Verifier] = (), **settings: Any
) -> Iterator[LoopbackBroker]:
    """A broker whose ``tdx`` verifier (or the given ones) trusts the test Intel root; collateral from a PCS
    stand-in."""
    coll = synthetic_tdx.collateral(pki)
    # the PCS response bodies, rebuilt from the signed pairs exactly as Intel PCS serves them, with their
    # issuer-chain headers
    bodies = {
        "tcb_info": pcs_body("tcbInfo", coll.tcb_info.signed.decode(), coll.tcb_info.signature_hex()),
        "qe_identity": pcs_body("enclaveIdentity", coll.qe_identity.signed.decode(), coll.qe_identity.signature_hex()),
        "pck_crl": coll.pck_crl,
        "root_crl": coll.root_crl,
    }
    signing = chain_header(pki.signing, pki.root)
    chains = {"tcb_info": signing, "qe_identity": signing, "pck_crl": chain_header(pki.ca, pki.root)}
    with replay_server() as pcs:
        serve(pcs, synthetic_tdx.FMSPC, bodies, chains=chains)
        with loopback_broker(
            tmp_path,
            verifiers=verifiers or [TdxVerifier(trust=pki.trust)],
            fetcher=HttpFetcher(),
            intel_pcs_url=pcs.base_url,
            intel_root_crl_url=f"{pcs.base_url}/sgx/certification/v4/rootcacrl",
            **settings,
        ) as broker:
            broker.harness.clock[0] = TDX_NOW
            yield broker


EV_NO_ACTION = 0x03
_BANK_NAMES = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384"}


def replay_event_log(tpm: Swtpm, raw: bytes) -> None:
    """Extend ``tpm``'s PCRs as the firmware that wrote the TCG log ``raw`` did (EV_NO_ACTION not extended)."""
    from attestation_broker.evidence.tpm.eventlog import parse_event_log

    specs = [
        f"{e.pcr}:" + ",".join(f"{_BANK_NAMES[a]}={d.hex()}" for a, d in sorted(e.digests.items()) if a in _BANK_NAMES)
        for e in parse_event_log(raw).events
        if e.event_type != EV_NO_ACTION
    ]
    for i in range(0, len(specs), 16):  # in log order; one tpm2_pcrextend call takes several specs
        tpm.run("tpm2_pcrextend", *specs[i : i + 16])
