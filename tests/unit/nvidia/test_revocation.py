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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests.support.nvidia_pki import Device, fake_nvidia, ocsp_target, resign, resigned_rims, rim_signer
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


def _rims() -> tuple[bytes, ...]:
    """E2's real RIMs re-signed under the test CoRIM hierarchy (NVIDIA's OCSP answers cannot be forged)."""
    return resigned_rims(*E2.rim_bytes())


def _serve_ocsp(server: ReplayServer, device: Device, signer: Device | None = None, **overrides: Any) -> None:
    """Answers for every device certificate (overrides by index "0".."3") and every certificate of the RIM
    signer chain (overrides by "rim0".."rim2")."""
    pki = fake_nvidia()
    for index in range(len(device.certs)):
        server.add(
            ocsp_target(device, index, pki.root), pki.ocsp_response(device, index, **overrides.get(str(index), {}))
        )
    signer = signer or rim_signer()
    for index in range(len(signer.certs)):
        answer = pki.ocsp_response(signer, index, **overrides.get(f"rim{index}", {}))
        server.add(ocsp_target(signer, index, pki.rim_root), answer)


def _verify(
    report: bytes,
    device: Device,
    fetcher: Fetcher,
    *,
    base: str = "http://127.0.0.1:9",
    rims: tuple[bytes, ...] | None = None,
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
    submission = Submission(report, (device.chain_pem, *(_rims() if rims is None else rims)), {}, binding)
    return NvidiaGpuVerifier(roots=fake_nvidia().roots).verify(submission, ctx)


def test_every_certificate_checked_and_cached() -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device)
        cache = CollateralCache(HttpFetcher())
        appraisal = _verify(report, device, HttpFetcher(), base=server.base_url, cache=cache)
        # 4 device certificates + the 3 certificates of the signer chain both RIMs share (asked once)
        assert len(server.requests) == 7
        _verify(report, device, HttpFetcher(), base=server.base_url, cache=cache)
        assert len(server.requests) == 7  # second verification answered from the cache
    assert appraisal.status.value == "affirming"
    assert appraisal.verifier_claims["revocation"] == "checked"
    assert appraisal.verifier_claims["bindings"] == {"nonce": "checked"}
    records = [c for c in appraisal.verifier_claims["collateral"] if c["type"] == "ocsp"]
    assert [r["status"] for r in records] == ["good"] * 10  # each RIM's chain is recorded for its RIM
    assert [r["role"] for r in records] == ["device"] * 4 + ["rim-signer"] * 6
    assert records[4]["subject"] == rim_signer().certs[0].subject.rfc4514_string()
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
        for rim_id, rim in zip(RIM_IDS, _rims(), strict=True):
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
        server.add(f"/v1/rim/{RIM_IDS[0]}", _rim_doc(_rims()[1], RIM_IDS[0]))  # the VBIOS RIM
        server.add(f"/v1/rim/{RIM_IDS[1]}", _rim_doc(_rims()[1], RIM_IDS[1]))
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url, rims=())
    assert err.value.code.name == "NVIDIA_RIM_MISMATCH"


def _recorded_ocsp(directory: Path, base: str, *chains: Device) -> dict[str, str]:
    """OCSP answers for every certificate of ``chains`` written as a collateral bundle; the index entries."""
    pki = fake_nvidia()
    index: dict[str, str] = {}
    for c, chain in enumerate(chains):
        root = pki.root if chain.root is None else chain.root
        for n in range(len(chain.certs)):
            (directory / f"ocsp{c}-{n}.der").write_bytes(pki.ocsp_response(chain, n))
            index[base + ocsp_target(chain, n, root)] = f"ocsp{c}-{n}.der"
    return index


def test_rims_and_ocsp_from_a_recorded_bundle(tmp_path: Path) -> None:
    device, report = _device_report()
    base = "https://nvidia.test"
    index = _recorded_ocsp(tmp_path, base, device, rim_signer())
    for rim_id, rim in zip(RIM_IDS, _rims(), strict=True):
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


# --- RIM signer certificates: OCSP through the same collateral path as device certificates ----------------


def _decoded(path: str) -> tuple[int, bytes, bytes, str]:
    """An OCSP GET path (RFC 6960 A.1) decoded: serial, issuer name hash, issuer key hash, hash algorithm."""
    request = ocsp.load_der_ocsp_request(base64.urlsafe_b64decode(path.rsplit("/", 1)[-1]))
    return request.serial_number, request.issuer_name_hash, request.issuer_key_hash, request.hash_algorithm.name


def _sha384(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA384())
    digest.update(data)
    return digest.finalize()


def _expected(cert: x509.Certificate, issuer: x509.Certificate) -> tuple[int, bytes, bytes, str]:
    """RFC 6960 §4.1.1 CertID computed here: SHA-384 of the issuer's DER name and of its public key (for EC, the
    subjectPublicKey BIT STRING holds the uncompressed point)."""
    point = issuer.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return cert.serial_number, _sha384(issuer.subject.public_bytes()), _sha384(point), "sha384"


def test_rim_signer_chain_is_ocsp_checked() -> None:
    """Every certificate of the RIM signer chain (L4 signer, L3, Reference Value CA) is asked about, with an
    RFC 6960 GET request naming the certificate's serial and its issuer's key, as the device chain is."""
    pki = fake_nvidia()
    device, report = _device_report()
    signer = rim_signer()
    with replay_server() as server:
        _serve_ocsp(server, device)
        appraisal = _verify(report, device, HttpFetcher(), base=server.base_url)
        requests = list(server.requests)
    assert all(path.startswith("/") and path.count("/") == 1 for path in requests)  # GET {responder}/{base64url}
    issuers = [*signer.certs[1:], pki.rim_root]
    expected = [_expected(cert, issuer) for cert, issuer in zip(signer.certs, issuers, strict=True)]
    # after the four device certificates, the signer chain leaf first, each certificate asked about once
    assert [_decoded(path) for path in requests[4:]] == expected
    assert [_decoded(path) for path in requests[:4]] == [
        _expected(cert, issuer) for cert, issuer in zip(device.certs, [*device.certs[1:], pki.root], strict=True)
    ]
    rim_records = [c for c in appraisal.verifier_claims["collateral"] if c.get("role") == "rim-signer"]
    assert {r["subject"] for r in rim_records} == {c.subject.rfc4514_string() for c in signer.certs}
    assert all(r["status"] == "good" and r["url"].startswith(server.base_url) for r in rim_records)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_revoked_rim_signer_chain_certificate_refused(index: int) -> None:
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device, **{f"rim{index}": {"status": ocsp.OCSPCertStatus.REVOKED}})
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url)
    assert err.value.code.name == "CERT_REVOKED"


def test_revoked_rim_signer_refuses_a_fetched_rim_too() -> None:
    """A RIM from NVIDIA's RIM service is checked like a supplied one: its own (revoked) signer refuses it."""
    pki = fake_nvidia()
    revoked = pki.rim_signer()
    driver = pki.sign_rim(E2.rim_bytes()[0], revoked)
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device)
        for n in range(len(revoked.certs)):
            status = ocsp.OCSPCertStatus.REVOKED if n == 0 else ocsp.OCSPCertStatus.GOOD
            server.add(ocsp_target(revoked, n, pki.rim_root), pki.ocsp_response(revoked, n, status=status))
        server.add(f"/v1/rim/{RIM_IDS[0]}", _rim_doc(driver, RIM_IDS[0]))
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url, rims=(_rims()[1],))
        assert ocsp_target(revoked, 0, pki.rim_root) in server.requests
    assert err.value.code.name == "CERT_REVOKED"


def test_rim_signer_status_missing_is_collateral_unavailable(tmp_path: Path) -> None:
    """A recorded bundle with the device answers but none for the RIM signer chain: missing revocation data."""
    device, report = _device_report()
    base = "https://nvidia.test"
    (tmp_path / "index.json").write_text(json.dumps(_recorded_ocsp(tmp_path, base, device)))
    with pytest.raises(BrokerError) as err:
        _verify(report, device, DirectoryFetcher(tmp_path), base=base)
    assert err.value.code.name == "COLLATERAL_UNAVAILABLE"
    with replay_server() as server:  # the responder does not know the RIM signer
        _serve_ocsp(server, device, rim0={"status": ocsp.OCSPCertStatus.UNKNOWN})
        with pytest.raises(BrokerError) as err:
            _verify(report, device, HttpFetcher(), base=server.base_url)
    assert err.value.code.name == "COLLATERAL_UNAVAILABLE"


def test_revocation_skip_asks_nothing_about_rim_signers() -> None:
    """``--revocation skip``: no OCSP request at all (device or RIM signer), recorded in the verifier claims."""
    device, report = _device_report()
    with replay_server() as server:
        _serve_ocsp(server, device, rim0={"status": ocsp.OCSPCertStatus.REVOKED})
        appraisal = _verify(report, device, HttpFetcher(), base=server.base_url, revocation="skip")
        assert server.requests == []
    assert appraisal.verifier_claims["revocation"] == "skipped"
    assert not [c for c in appraisal.verifier_claims["collateral"] if c["type"] == "ocsp"]
    assert appraisal.attester_claims["nvidia"]["devices"][0]["measurements"]["status"] == "match"
