"""OCSP for every device certificate (test-only NVIDIA-like PKI on a loopback responder), RIMs from the
RIM service (loopback) and from a recorded bundle, and the nonce binding of a re-signed report."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.nvidia_gpu.kind import NvidiaGpuVerifier
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.directory import DirectoryFetcher
from attestation_broker.trust.fetch import Fetcher, HttpFetcher
from attestation_broker.verifier import Submission, VerifyContext
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests.support.nvidia_pki import Device, fake_nvidia, ocsp_target, resign
from tests.support.replay import ReplayServer, replay_server
from tests.unit.nvidia.support import E2, settings

NONCE = bytes(range(32))
USER = b"workload key"
BINDING = ExpectedBinding(NONCE, USER)


def _template() -> bytes:
    return bytes.fromhex(E2.report_bytes().decode())


def _device_report(binding: ExpectedBinding = BINDING) -> tuple[Device, bytes]:
    device = fake_nvidia().device()
    return device, resign(_template(), device, binding.spdm_nonce())


def _serve_ocsp(server: ReplayServer, device: Device, **overrides: Any) -> None:
    pki = fake_nvidia()
    for index in range(len(device.certs)):
        server.add(
            ocsp_target(device, index, pki.root), pki.ocsp_response(device, index, **overrides.get(str(index), {}))
        )


def _verify(
    report: bytes,
    device: Device,
    fetcher: Fetcher,
    *,
    base: str = "http://127.0.0.1:9",
    rims: tuple[bytes, ...] = E2.rim_bytes(),
    binding: ExpectedBinding | None = BINDING,
    cache: CollateralCache | None = None,
    now: datetime = E2.now,
    **overrides: Any,
) -> Any:
    ctx = VerifyContext(
        now=now,
        collateral=cache or CollateralCache(fetcher),
        settings=settings(
            **{"revocation": "check", "offline": False, "nvidia_ocsp_url": base, "nvidia_rim_url": base, **overrides}
        ),
    )
    submission = Submission(report, (device.chain_pem, *rims), {}, binding)
    return NvidiaGpuVerifier(roots=fake_nvidia().roots).verify(submission, ctx)


def test_every_certificate_checked_and_cached() -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device)
        cache = CollateralCache(HttpFetcher())
        appraisal = _verify(report, device, HttpFetcher(), base=server.base_url, cache=cache)
        assert len(server.requests) == 4
        _verify(report, device, HttpFetcher(), base=server.base_url, cache=cache)
        assert len(server.requests) == 4  # second verification answered from the cache
    assert appraisal.status.value == "affirming"
    assert appraisal.verifier_claims["revocation"] == "checked"
    assert appraisal.verifier_claims["bindings"] == {"nonce": "checked"}
    records = [c for c in appraisal.verifier_claims["collateral"] if c["type"] == "ocsp"]
    assert [r["status"] for r in records] == ["good"] * 4
    device_claims = appraisal.attester_claims["nvidia"]["devices"][0]
    assert device_claims["measurements"]["status"] == "match"
    assert device_claims["nonce"] == BINDING.spdm_nonce().hex()


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_revoked_certificate_anywhere_in_the_chain(index: int) -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device, **{str(index): {"status": ocsp.OCSPCertStatus.REVOKED}})
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url)
    assert err.value.code.name == "CERT_REVOKED"


@pytest.mark.parametrize(
    ("name", "override", "code"),
    [
        ("unknown", {"status": ocsp.OCSPCertStatus.UNKNOWN}, "COLLATERAL_UNAVAILABLE"),
        ("signed by a stranger", {"signer_key": ec.generate_private_key(ec.SECP384R1())}, "COLLATERAL_INVALID"),
        ("past nextUpdate", {"next_update": datetime(2025, 6, 1, tzinfo=UTC)}, "COLLATERAL_INVALID"),
        ("issued in the future", {"this_update": datetime(2027, 1, 1, tzinfo=UTC)}, "COLLATERAL_INVALID"),
    ],
)
def test_unusable_answers(name: str, override: dict[str, Any], code: str) -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device, **{"0": override})
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url)
    assert err.value.code.name == code, name


@pytest.mark.parametrize(
    ("name", "options", "code"),
    [
        ("delegate of the issuer", {}, None),
        ("no id-kp-OCSPSigning", {"ocsp_signing": False}, "COLLATERAL_INVALID"),
        ("issued by the CA above the issuer", {"by_grandparent": True}, "COLLATERAL_INVALID"),
        ("delegate expired", {"not_after": datetime(2025, 6, 1, tzinfo=UTC)}, "COLLATERAL_INVALID"),
    ],
)
def test_delegated_responder(name: str, options: dict[str, Any], code: str | None) -> None:
    """RFC 6960 §4.2.2.2 delegates go through the shared walker and validity check (trust/chain.py): issued
    directly by the certificate's issuer, valid at ``now`` (with skew), id-kp-OCSPSigning."""
    pki = fake_nvidia()
    device, report = _device_report()
    key, cert = pki.delegated_responder(device, 0, **options)
    with replay_server() as server:
        _serve_ocsp(server, device)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=device.certs[0],
                issuer=device.certs[1],
                algorithm=hashes.SHA384(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=datetime(2025, 1, 1, tzinfo=UTC),
                next_update=datetime(2031, 1, 1, tzinfo=UTC),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
            .certificates([cert])
        )
        server.add(
            ocsp_target(device, 0, pki.root),
            builder.sign(key, hashes.SHA384()).public_bytes(serialization.Encoding.DER),
        )
        if code is None:
            appraisal = _verify(report, device, HttpFetcher(), base=server.base_url)
            assert appraisal.verifier_claims["revocation"] == "checked", name
            return
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url)
    assert err.value.code.name == code, name


def test_device_ca_without_key_usage_is_refused() -> None:
    """The device chain is built by the shared path builder: a CA without keyUsage keyCertSign is refused, as
    in every kind (NVIDIA's real CAs all carry it)."""
    device = fake_nvidia().device(brom_key_usage=False)
    report = resign(_template(), device, BINDING.spdm_nonce())
    with pytest.raises(BrokerError) as err:
        _verify(report, device, HttpFetcher(), revocation="skip")
    assert err.value.code.name == "CERT_CHAIN_INVALID"


def test_responder_down_is_collateral_unavailable() -> None:
    device, report = _device_report()
    with pytest.raises(BrokerError) as err:
        _verify(report, device, HttpFetcher(), base="http://127.0.0.1:9")
    assert err.value.code.name == "COLLATERAL_UNAVAILABLE"


def test_report_bound_to_another_nonce_refused() -> None:
    device, report = _device_report(ExpectedBinding(b"\x07" * 32))
    with replay_server() as server:
        _serve_ocsp(server, device)
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url)
    assert err.value.code.name == "NONCE_BINDING_MISMATCH"


def _rim_doc(rim: bytes, rim_id: str) -> bytes:
    return json.dumps({"id": rim_id, "rim": base64.b64encode(rim).decode(), "rim_format": "SWID"}).encode()


RIM_IDS = ("NV_GPU_DRIVER_GH100_550.90.07", "NV_GPU_VBIOS_1010_0200_882_96009F0001")


def test_rims_from_the_rim_service() -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device)
        for rim_id, rim in zip(RIM_IDS, E2.rim_bytes(), strict=True):
            server.add(f"/v1/rim/{rim_id}", _rim_doc(rim, rim_id))
        appraisal = _verify(report, device, HttpFetcher(), base=server.base_url, rims=())
        assert {f"/v1/rim/{i}" for i in RIM_IDS} <= set(server.requests)
    rims = appraisal.attester_claims["nvidia"]["devices"][0]["rims"]
    assert [(r["id"], r["source"]) for r in rims] == [(RIM_IDS[0], "origin"), (RIM_IDS[1], "origin")]
    assert appraisal.attester_claims["nvidia"]["devices"][0]["measurements"]["status"] == "match"


def test_rim_service_answers_another_rim() -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device)
        server.add(f"/v1/rim/{RIM_IDS[0]}", _rim_doc(E2.rim_bytes()[1], RIM_IDS[0]))  # the VBIOS RIM
        server.add(f"/v1/rim/{RIM_IDS[1]}", _rim_doc(E2.rim_bytes()[1], RIM_IDS[1]))
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url, rims=())
    assert err.value.code.name == "NVIDIA_RIM_MISMATCH"


def test_rims_and_ocsp_from_a_recorded_bundle(tmp_path: Path) -> None:
    pki = fake_nvidia()
    device, report = _device_report()
    base = "https://nvidia.test"
    index: dict[str, str] = {}
    for n in range(len(device.certs)):
        (tmp_path / f"ocsp{n}.der").write_bytes(pki.ocsp_response(device, n))
        index[base + ocsp_target(device, n, pki.root)] = f"ocsp{n}.der"
    for rim_id, rim in zip(RIM_IDS, E2.rim_bytes(), strict=True):
        (tmp_path / f"{rim_id}.json").write_bytes(_rim_doc(rim, rim_id))
        index[f"{base}/v1/rim/{rim_id}"] = f"{rim_id}.json"
    (tmp_path / "index.json").write_text(json.dumps(index))
    appraisal = _verify(report, device, DirectoryFetcher(tmp_path), base=base, rims=())
    assert appraisal.status.value == "affirming"
    assert appraisal.attester_claims["nvidia"]["devices"][0]["measurements"]["status"] == "match"


def test_rim_service_unreachable_reports_rims_unavailable() -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device)
        appraisal = _verify(report, device, HttpFetcher(), base=server.base_url, rims=())
    device_claims = appraisal.attester_claims["nvidia"]["devices"][0]
    assert device_claims["measurements"]["status"] == "rims-unavailable"
    assert [r["reason"] for r in device_claims["rims"]] == ["COLLATERAL_NOT_FOUND", "COLLATERAL_NOT_FOUND"]
    assert appraisal.status.value == "warning"
