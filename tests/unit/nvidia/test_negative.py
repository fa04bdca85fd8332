"""nvidia-gpu refusals: NVIDIA's labelled negative fixtures, mutations of every signed region, RIM
expiry and identity, nonce binding. Each case asserts the error code."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.nvidia_gpu.abi import parse_report
from attestation_broker.evidence.nvidia_gpu.kind import NvidiaGpuVerifier
from attestation_broker.verifier import Submission

from tests.support.vectors import vector
from tests.unit.nvidia.support import E1, E2, E4, E7, NV, at, context, verify

NEG = NV + "attestation-sdk/negative/"


def _code(fn: Callable[[], object]) -> str:
    with pytest.raises(BrokerError) as err:
        fn()
    return err.value.code.name


@pytest.mark.parametrize(
    ("report", "chain", "code"),
    [
        (NEG + "hopperAttestationReportInvalidSignature.txt", E4.chain, "NVIDIA_REPORT_SIGNATURE_INVALID"),
        (NEG + "switchAttestationReportInvalidSignature.txt", E7.chain, "NVIDIA_REPORT_SIGNATURE_INVALID"),
    ],
)
def test_sdk_bad_signature_reports(report: str, chain: str, code: str) -> None:
    assert _code(lambda: verify(vector(report), (vector(NV + chain),), at("2026-11-29"))) == code


@pytest.mark.parametrize(
    ("rim", "now", "code"),
    [
        ("incorrect_signature_driver_rim.xml", "2026-03-01", "NVIDIA_RIM_SIGNATURE_INVALID"),
        ("incorrect_cert_chain_driver_rim.xml", "2026-03-01", "CERT_CHAIN_INVALID"),
        ("NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml", "2026-03-01", "NVIDIA_RIM_SIGNATURE_INVALID"),
        ("NV_SWITCH_BIOS_5612_0002_890_9610550001_invalid_signature.xml", "2026-03-01", "NVIDIA_RIM_SIGNATURE_INVALID"),
        (
            "NV_SWITCH_BIOS_5612_0002_890_9610550001_measurement_mismatch.xml",
            "2025-01-15",
            "NVIDIA_RIM_SIGNATURE_INVALID",
        ),
    ],
)
def test_sdk_bad_rims(rim: str, now: str, code: str) -> None:
    assert _code(lambda: verify(E7.report_bytes(), (E7.chain_bytes(), vector(NEG + rim)), at(now))) == code


def test_genuine_rim_with_other_golden_value_is_a_mismatch() -> None:
    appraisal = verify(
        E4.report_bytes(),
        (E4.chain_bytes(), vector(NEG + "NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml")),
        at("2025-01-15"),
    )
    measurements = appraisal.attester_claims["nvidia"]["devices"][0]["measurements"]
    assert (measurements["status"], measurements["mismatches"]) == ("mismatch", [9])
    assert appraisal.status.value == "contraindicated"


def test_wrong_rim_root_is_not_ours() -> None:
    """The SDK's wrong RIM root: RIM chains are only ever checked against the pinned CoRIM root, so a RIM
    whose chain ends there (here: all genuine ones) cannot be confused with it; the pinned root differs."""
    from attestation_broker.evidence.nvidia_gpu.trust import fingerprint, rim_root
    from cryptography import x509

    wrong = vector(NEG + "incorrect_rim_root.crt")
    cert = x509.load_pem_x509_certificate(wrong) if b"BEGIN" in wrong else x509.load_der_x509_certificate(wrong)
    assert fingerprint(cert) != fingerprint(rim_root())
    from attestation_broker.evidence.nvidia_gpu.rim import verify_rim

    assert _code(lambda: verify_rim(E2.rim_bytes()[0], cert, now=E2.now)) == "CERT_CHAIN_INVALID"


def test_expired_rims() -> None:
    # The SDK's "expired" driver RIM: its signer was valid for one day in 2025-01, and its payload was edited
    # after signing; signatures are checked (once, memoized) before validity, so the edit is what is reported.
    expired = vector(NV + "attestation-sdk/h100pcie_570.124.03_expiredRIM/NV_GPU_DRIVER_GH100_570.124.03_expired.xml")
    report = vector(NV + "attestation-sdk/h100pcie_570.124.03_expiredRIM/hopperAttestationReportExpired.txt")
    chain = vector(NV + "attestation-sdk/h100pcie_570.124.03_expiredRIM/hopperCertChainExpired.txt")
    assert _code(lambda: verify(report, (chain, expired), at("2026-11-29"))) == "NVIDIA_RIM_SIGNATURE_INVALID"
    # E1's RIMs verify at capture time and are refused after their signer expired (2025-06-26).
    assert _code(lambda: verify(E1.report_bytes(), (E1.chain_bytes(), *E1.rim_bytes()), at("2025-07-01"))) == (
        "COLLATERAL_EXPIRED"
    )
    # The older issuance of the switch RIM (same id) expired 2026-05-20; the re-issued one verifies.
    old = vector(NV + "museop/switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml")
    assert _code(lambda: verify(E7.report_bytes(), (E7.chain_bytes(), old), at("2026-11-29"))) == "COLLATERAL_EXPIRED"


def test_rim_for_another_device_refused() -> None:
    # E2's RIMs supplied with E1's report: they belong to no device of the submission.
    assert _code(lambda: verify(E1.report_bytes(), (E1.chain_bytes(), *E2.rim_bytes()), at("2026-03-01"))) == (
        "NVIDIA_RIM_MISMATCH"
    )


def test_chain_faults() -> None:
    chain = E2.chain_bytes()
    pems = [b"-----BEGIN CERTIFICATE-----" + p for p in chain.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    assert len(pems) == 5
    cases = {
        "leaf only": pems[0],
        "intermediate missing": pems[0] + b"".join(pems[2:]),
        "other device's chain": E7.chain_bytes(),
        "trustee case 3": vector(NV + "trustee/misc/hopper_cert_chain_case3.txt"),
        "trustee case 4": vector(NV + "trustee/misc/hopper_cert_chain_case4.txt"),
    }
    for name, bad in cases.items():
        code = _code(lambda bad=bad: verify(E2.report_bytes(), (bad,), E2.now))  # type: ignore[misc]
        assert code in ("CERT_CHAIN_INVALID", "NVIDIA_REPORT_SIGNATURE_INVALID"), name
    assert _code(lambda: verify(E2.report_bytes(), (pems[0],), E2.now)) == "CERT_CHAIN_INVALID"
    assert _code(lambda: verify(E2.report_bytes(), (E7.chain_bytes(),), E2.now)) == "NVIDIA_REPORT_SIGNATURE_INVALID"


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _regions() -> list[tuple[str, int]]:
    raw = bytes.fromhex(E2.report_bytes().decode())
    report = parse_report(raw)
    record_start = 37 + 8
    nonce_at = record_start + report.record_length
    opaque_at = nonce_at + 32 + 2
    return [
        ("request param2", 3),
        ("requester nonce", 4),
        ("slot id", 36),
        ("response param1", 39),
        ("measurement block value", record_start + 10),
        ("last measurement byte", nonce_at - 1),
        ("responder nonce", nonce_at + 5),
        ("opaque data (driver version)", opaque_at + 60),
        ("opaque data (last byte)", len(report.signed) - 1),
        ("signature r", len(report.signed) + 3),
        ("signature s", len(report.signed) + 60),
    ]


@pytest.mark.parametrize(("region", "offset"), _regions(), ids=[r for r, _ in _regions()])
def test_mutation_of_every_signed_region_refused(region: str, offset: int) -> None:
    raw = bytes.fromhex(E2.report_bytes().decode())
    code = _code(lambda: verify(_flip(raw, offset), (E2.chain_bytes(), *E2.rim_bytes()), E2.now))
    assert code in ("NVIDIA_REPORT_SIGNATURE_INVALID", "NVIDIA_REPORT_MALFORMED"), region


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("truncated", lambda raw: raw[:-97]),
        ("wrong request code", lambda raw: b"\x11\xe1" + raw[2:]),
        ("record length too long", lambda raw: raw[:42] + b"\xff\xff\x00" + raw[45:]),
        ("opaque length too long", lambda raw: raw[: 45 + 3520 + 32] + b"\xff\xff" + raw[45 + 3520 + 34 :]),
        ("empty", lambda raw: b""),
    ],
)
def test_structural_faults_are_malformed(name: str, mutate: Callable[[bytes], bytes]) -> None:
    raw = bytes.fromhex(E2.report_bytes().decode())
    assert _code(lambda: verify(mutate(raw), (E2.chain_bytes(),), E2.now)) in (
        "NVIDIA_REPORT_MALFORMED",
        "NVIDIA_EVIDENCE_MALFORMED",
    )


def test_rim_mutation_refused() -> None:
    rim = E2.rim_bytes()[0]
    at_golden = rim.index(b'index="7" active="True"')
    value_at = rim.index(b'Hash0="', at_golden) + 8
    tampered = rim[:value_at] + (b"0" if rim[value_at : value_at + 1] != b"0" else b"1") + rim[value_at + 1 :]
    assert _code(lambda: verify(E2.report_bytes(), (E2.chain_bytes(), tampered, E2.rim_bytes()[1]), E2.now)) == (
        "NVIDIA_RIM_SIGNATURE_INVALID"
    )


def test_nonce_binding() -> None:
    # Real reports carry their capture's nonce; any broker binding is refused. The positive case needs a
    # report signed over a broker nonce: tests/unit/nvidia/test_pki.py builds one with a test-only PKI.
    verifier = NvidiaGpuVerifier()
    binding = ExpectedBinding(b"\x01" * 32)
    submission = Submission(E2.report_bytes(), (E2.chain_bytes(), *E2.rim_bytes()), {}, binding)
    with pytest.raises(BrokerError) as err:
        verifier.verify(submission, context(E2.now))
    assert err.value.code.name == "NONCE_BINDING_MISMATCH"


def test_clock_skew_on_rim_signer_and_device_chains() -> None:
    """The configured clock skew applies to both NVIDIA chains as to every kind's (trust/chain.py)."""
    from datetime import timedelta

    from attestation_broker.evidence.nvidia_gpu.rim import verify_rim
    from attestation_broker.evidence.nvidia_gpu.trust import rim_root

    skew = timedelta(seconds=60)
    rim = E1.rim_bytes()[0]
    end = verify_rim(rim, rim_root(), now=E1.now).signer_not_after
    assert verify_rim(rim, rim_root(), now=end + timedelta(seconds=30), skew=skew).signer_not_after == end
    late = end + timedelta(seconds=90)
    assert _code(lambda: verify_rim(rim, rim_root(), now=late, skew=skew)) == "COLLATERAL_EXPIRED"
    # The device chain's latest notBefore (its provisioner ICA, 2022-03-01): 30 s early passes with 60 s of skew.
    from attestation_broker.evidence.nvidia_gpu.checks import load_chain

    start = max(c.not_valid_before_utc for c in load_chain(E2.chain_bytes()))
    early = verify(E2.report_bytes(), (E2.chain_bytes(),), start - timedelta(seconds=30), clock_skew_seconds=60)
    assert early.attester_claims["nvidia"]["devices"][0]["chip"] == "GH100"
    too_early = start - timedelta(seconds=90)
    assert _code(lambda: verify(E2.report_bytes(), (E2.chain_bytes(),), too_early, clock_skew_seconds=60)) == (
        "CERT_EXPIRED"
    )
