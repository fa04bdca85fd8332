"""nvidia-gpu on every real vector set: signature, chain, FWID, RIMs and the golden comparison."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.nvidia_gpu.abi import decode_opaque, parse_report

from tests.support.vectors import vector
from tests.unit.nvidia.support import E3, E6, E7, NV, SETS, GpuSet, at, sdk_list, verify


def _device(appraisal: Any, n: int = 0) -> dict[str, Any]:
    device: dict[str, Any] = appraisal.attester_claims["nvidia"]["devices"][n]
    return device


@pytest.mark.parametrize("case", SETS, ids=lambda s: s.name)
def test_vector_set_verifies(case: GpuSet) -> None:
    appraisal = verify(case.report_bytes(), (case.chain_bytes(), *case.rim_bytes()), case.now)
    device = _device(appraisal)
    assert appraisal.attester_claims["tee"] == "nvidia-cc"
    assert device["chip"] == case.chip
    assert device["driver_version"] == case.driver
    assert device["vbios_version"] == case.vbios
    assert device["nonce"] == case.nonce
    assert device["fwid"]["status"] == case.fwid
    measurements = device["measurements"]
    if case.mismatches:
        assert measurements["status"] == "mismatch"
        assert measurements["mismatches"] == list(case.mismatches)
        assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED
    elif case.complete:
        assert measurements["status"] == "match"
        assert measurements["mismatches"] == []
        assert measurements["active"] >= 12
        assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_RUNTIME
    else:
        assert measurements["status"] == "rims-unavailable"
        assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_UNRECOGNIZED
        assert any(r["source"] == "unavailable" for r in device["rims"])
    assert appraisal.verifier_claims["revocation"] == "skipped"


def test_complete_hopper_counts() -> None:
    from tests.unit.nvidia.support import E1, E2

    for case, active in ((E1, 32), (E2, 32)):
        device = _device(verify(case.report_bytes(), (case.chain_bytes(), *case.rim_bytes()), case.now))
        assert device["measurements"] == {"status": "match", "active": active, "mismatches": [], "nvdec0_exempt": True}
    switch = _device(verify(E7.report_bytes(), (E7.chain_bytes(), *E7.rim_bytes()), E7.now))
    assert switch["type"] == "switch"
    assert switch["measurements"]["active"] == 31
    assert switch["measurements"]["nvdec0_exempt"] is False


def test_blackwell_fwid_oid() -> None:
    device = _device(verify(E6.report_bytes(), (E6.chain_bytes(),), E6.now))
    assert device["fwid"] == {"status": "match", "oid": "2.23.133.5.4.1.1"}
    hopper = _device(verify(E3.report_bytes(), (E3.chain_bytes(),), E3.now))
    assert hopper["fwid"] == {"status": "match", "oid": "2.23.133.5.4.1"}


@pytest.mark.parametrize(
    ("name", "gpus", "switches"),
    [
        ("nvtrust/ppcie_hgx_8gpu_gh100_590.12/gpu_evidence.json", 8, 0),
        ("nvtrust/ppcie_hgx_8gpu_gh100_590.12/switch_evidence.json", 0, 4),
        ("attestation-sdk/serialized/multi_gpu_hopper.json", 4, 0),
        ("attestation-sdk/serialized/hopper_evidence_cert_hold.json", 1, 0),
    ],
)
def test_sdk_evidence_lists(name: str, gpus: int, switches: int) -> None:
    appraisal = verify(vector(NV + name), (), at("2026-11-29"))
    nvidia = appraisal.attester_claims["nvidia"]
    assert (nvidia["gpus"], nvidia["switches"]) == (gpus, switches)
    assert len({d["device_id"] for d in nvidia["devices"]}) == gpus + switches
    assert all(d["measurements"]["status"] == "rims-unavailable" for d in nvidia["devices"])
    assert all(d["fwid"]["status"] == "match" for d in nvidia["devices"] if d["type"] == "gpu")
    if "ppcie" in name and gpus:
        assert {d["feature_flag"] for d in nvidia["devices"]} == {"PPCIE"}


def test_object_form_with_several_devices() -> None:
    from tests.unit.nvidia.support import E1, E2

    body = sdk_list([(E1.report_bytes(), E1.chain_bytes()), (E2.report_bytes(), E2.chain_bytes())])
    # E1 is a hex text file; the SDK form carries binary reports.
    body = sdk_list(
        [
            (bytes.fromhex(E1.report_bytes().decode()), E1.chain_bytes()),
            (bytes.fromhex(E2.report_bytes().decode()), E2.chain_bytes()),
        ]
    )
    appraisal = verify(body, E1.rim_bytes(), E1.now)
    devices = appraisal.attester_claims["nvidia"]["devices"]
    assert [d["measurements"]["status"] for d in devices] == ["match", "rims-unavailable"]


def test_raw_binary_report_and_field_chain() -> None:
    raw = bytes.fromhex(E7.report_bytes().decode())
    appraisal = verify(raw, E7.rim_bytes(), E7.now, fields={"certificate_chain": E7.chain_bytes().decode()})
    assert _device(appraisal)["measurements"]["status"] == "match"


def test_duplicate_devices_refused() -> None:
    with pytest.raises(BrokerError) as err:
        verify(vector(NV + "attestation-sdk/serialized/multi_switch_ls10.json"), (), at("2026-11-29"))
    assert err.value.code.name == "NVIDIA_DEVICE_DUPLICATE"


# --- NVIDIA's parsed dumps as parser oracles ------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "oracle", "switch"),
    [
        (
            "attestation-sdk/h100pcie_580.159.03/hopperAttestationReport.txt",
            "attestation-sdk/h100pcie_580.159.03/spdm_parsed_output.json",
            False,
        ),
        (
            "attestation-sdk/ls10_switch_96.10.55.00.01/switchAttestationReport.txt",
            "attestation-sdk/ls10_switch_96.10.55.00.01/switch_spdm_parsed_output.json",
            True,
        ),
    ],
)
def test_parser_matches_nvidia_dump(report: str, oracle: str, switch: bool) -> None:
    parsed = parse_report(bytes.fromhex(vector(NV + report).decode()))
    expected = json.loads(vector(NV + oracle))
    assert expected["NumberOfBlocks"] == len(parsed.blocks)
    assert expected["MeasurementRecordLength"] == parsed.record_length
    assert expected["Nonce"] == "0x" + parsed.responder_nonce.hex()
    assert expected["OpaqueLength"] == parsed.opaque_length
    assert expected["Signature"] == "0x" + parsed.signature.hex()
    assert expected["Param1"] == f"0x{parsed.response_param1:02x}"
    blocks = expected["MeasurementRecord"]["MeasurementBlocks"]
    assert {int(k) for k in blocks} == {b.index for b in parsed.blocks}
    for block in parsed.blocks:
        entry = blocks[str(block.index)]
        assert entry["DMTFSpecMeasurementValueType"] == block.value_type
        assert entry["DMTFSpecMeasurementValue"] == "0x" + block.value.hex()
    ours = decode_opaque(parsed, switch=switch)
    theirs = expected["OpaqueData"]["OpaqueDataField"]
    assert {k: ours[k] for k in theirs} == theirs
    # The dump's SDK version did not name ids 34 and 36 (newer firmware fields); nothing else is extra.
    assert set(ours) - set(theirs) <= {"OPAQUE_FIELD_ID_OPAQUE_DATA_VERSION", "OPAQUE_FIELD_ID_FEATURE_FLAG"}


def test_request_matches_nvidia_dump() -> None:
    parsed = parse_report(bytes.fromhex(vector(NV + E3.report).decode()))
    expected = json.loads(vector(NV + "attestation-sdk/h100pcie_580.159.03/spdm_req_parsed_output.json"))
    assert expected["Nonce"] == "0x" + parsed.requester_nonce.hex()
    assert expected["Param1"] == f"0x{parsed.request_param1:02x}"
    assert expected["Param2"] == f"0x{parsed.request_param2:02x}"
    assert expected["SlotIDParam"] == f"0x{parsed.slot_id:02x}"


def test_trailing_byte_tolerated_and_reported() -> None:
    raw = bytes.fromhex(E7.report_bytes().decode()) + b"\x00"
    appraisal = verify(raw, (E7.chain_bytes(), *E7.rim_bytes()), E7.now)
    assert appraisal.verifier_claims["trailing_bytes"] == [1]
    assert _device(appraisal)["measurements"]["status"] == "match"


def test_sdk_list_base64_of_hex_is_not_a_report() -> None:
    body = json.dumps([{"certificate": base64.b64encode(E7.chain_bytes()).decode(), "evidence": "!!"}]).encode()
    with pytest.raises(BrokerError) as err:
        verify(body, (), E7.now)
    assert err.value.code.name == "NVIDIA_EVIDENCE_MALFORMED"
