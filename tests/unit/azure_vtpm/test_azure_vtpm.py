"""azure-vtpm: every real Azure vTPM vector (MANIFEST-vtpm-cloud.md, Azure) plus mutations of them."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator

import pytest
from attestation_broker.appraisal import EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.azure_vtpm import AzureVtpmVerifier
from attestation_broker.evidence.azure_vtpm.envelope import assemble, parse_bincode_quote
from attestation_broker.evidence.azure_vtpm.hcl import RUNTIME_OFFSET, check_runtime_binding, parse_hcl_report
from attestation_broker.evidence.azure_vtpm.pipeline import _compare_td_quote, check_user_data, verify_evidence
from attestation_broker.evidence.tdx import parse_quote
from attestation_broker.verifier import Submission

from tests.support.context import offline_context
from tests.support.errors import raised_code
from tests.support.policy import decide, failed
from tests.support.replay import ReplayServer
from tests.unit.azure_vtpm.support import NOW_MILAN, SNP_CASES, az, flip, replay_ctx

HCL_FACTS = {
    # file: (header version, tee, report_size, vmUniqueId)
    "az-snp-hcl-report-911B0EF8.bin": (1, "sev-snp", 2346, "911B0EF8-9DBA-48B0-B275-4E4DF2D39252"),
    "az-snp-hcl-report-D3A9B6BE.bin": (1, "sev-snp", 1819, "D3A9B6BE-71BB-4C76-BD4F-53CF1F2F5BE2"),
    "az-tdx-hcl-report-6332533D.bin": (2, "tdx", 2437, "6332533D-5649-4D02-8AA7-8F64B7C3EE21"),
    "az-tdx-hcl-report-2E7D4867.bin": (2, "tdx", 2438, "2E7D4867-9C36-4F62-92E7-F382BF5AF756"),
    "az-tdx-hcl-report-D270E56B.bin": (2, "tdx", 2438, "D270E56B-F668-4990-A5BC-9B624576841D"),
}
EXTRA_DATA = {"genoa-390CBCF5": None}  # 48-byte binary nonce; the others quote ASCII "challenge"


def run(replay: ReplayServer, name: str, *, binding: ExpectedBinding | None = None):  # type: ignore[no-untyped-def]
    evidence, extras, now, _ = SNP_CASES[name]
    submission = Submission(az(evidence), tuple(az(e) for e in extras), binding=binding)
    return AzureVtpmVerifier().verify(submission, replay_ctx(replay, now))


@pytest.mark.parametrize("name", sorted(SNP_CASES))
def test_snp_vectors_verify(replay: ReplayServer, name: str) -> None:
    appraisal = run(replay, name)
    claims = appraisal.attester_claims
    assert claims["tee"] == "sev-snp" and claims["platform"] == "azure"
    assert claims["instance"] == {"vm_id": SNP_CASES[name][3]}
    assert claims["azure"]["vm_unique_id"] == SNP_CASES[name][3]
    assert claims["azure"]["vm_configuration"]["secure_boot"] is True
    assert claims["snp"]["vmpl"] == 0
    # REPORT_DATA is the runtime-data hash followed by 32 zero bytes.
    assert claims["report_data"].endswith("00" * 32)
    if name != "genoa-390CBCF5":
        assert bytes.fromhex(claims["tpm"]["extra_data"]) == b"challenge"
    else:
        assert claims["tpm"]["extra_data"].startswith("0218488b")
    assert appraisal.verifier_claims["bindings"] == {"nonce": "not-requested", "runtime_data": "checked"}
    assert appraisal.status is EarStatus.WARNING  # no measurement appraised against reference values
    assert appraisal.trustworthiness_vector["hardware"] == 2
    assert appraisal.policy_ids == ()
    assert failed(decide(appraisal, None)) == []


def test_pcr_values_are_digest_checked(replay: ReplayServer) -> None:
    claims = run(replay, "v1-26F8BC30").attester_claims
    assert len(claims["tpm"]["pcrs"]["sha256"]) == 24
    # D3A9B6BE ships no PCR values: only the quoted digest is attested.
    assert "pcrs" not in run(replay, "D3A9B6BE-msg-sig").attester_claims["tpm"]


def test_measurement_values(replay: ReplayServer) -> None:
    assert run(replay, "v0-26F8BC30").attester_claims["measurement"].startswith("6a063be9dd79f637")
    assert run(replay, "911B0EF8-bincode").attester_claims["measurement"].startswith("9ac48fcac8a2d88a")


@pytest.mark.parametrize("name", sorted(HCL_FACTS))
def test_hcl_reports_parse_and_bind(name: str) -> None:
    version, tee, size, vm_id = HCL_FACTS[name]
    data = az(name)
    hcl = parse_hcl_report(data)
    assert (hcl.version, hcl.tee, hcl.report_size) == (version, tee, size)
    assert hcl.vm_configuration["vmUniqueId"] == vm_id
    assert hcl.ak_jwk()["kty"] == "RSA"
    assert check_runtime_binding(hcl) == hashlib.sha256(hcl.runtime).digest() + bytes(32)
    # Lengths come from the header: the zero padding after report_size is not part of the runtime data.
    assert len(data) > size and hcl.runtime == data[RUNTIME_OFFSET:size]


def test_runtime_byte_flip_breaks_binding(replay: ReplayServer) -> None:
    data = az("az-snp-hcl-report-911B0EF8.bin")
    hcl = parse_hcl_report(data)
    # Flip a byte inside a JSON string value (the "kid" text) so the JSON still parses.
    offset = RUNTIME_OFFSET + hcl.runtime.index(b"HCLAkPub") + 3
    mutated = flip(data, offset, 0x20)
    with pytest.raises(BrokerError) as exc:
        check_runtime_binding(parse_hcl_report(mutated))
    assert raised_code(exc) == "AZURE_VTPM_RUNTIME_BINDING_MISMATCH"
    extras = (az("az-snp-quote-911B0EF8.bincode"), az("az-snp-vcek-chain-911B0EF8.pem"))
    with pytest.raises(BrokerError) as exc:
        AzureVtpmVerifier().verify(Submission(mutated, extras), replay_ctx(replay, NOW_MILAN))
    assert raised_code(exc) in ("AZURE_VTPM_RUNTIME_BINDING_MISMATCH", "AZURE_VTPM_RUNTIME_MALFORMED")


@pytest.mark.parametrize(
    ("offset", "what"),
    [(32 + 0x2A0 + 5, "signature r"), (32 + 0x90, "measurement"), (32 + 0x1A0, "chip id")],
)
def test_snp_report_tamper_fails_signature(replay: ReplayServer, offset: int, what: str) -> None:
    data = flip(az("az-snp-hcl-report-911B0EF8.bin"), offset)
    extras = (az("az-snp-quote-911B0EF8.bincode"), az("az-snp-vcek-chain-911B0EF8.pem"))
    with pytest.raises(BrokerError) as exc:
        AzureVtpmVerifier().verify(Submission(data, extras), replay_ctx(replay, NOW_MILAN))
    assert raised_code(exc).startswith("SNP_"), what
    assert exc.value.status == 403


def test_quote_tamper_and_wrong_ak(replay: ReplayServer) -> None:
    hcl = az("az-snp-hcl-report-D3A9B6BE.bin")
    msg, sig, vcek = (
        az("az-snp-tpm-quote-D3A9B6BE.msg"),
        az("az-snp-tpm-quote-D3A9B6BE.sig"),
        az("az-snp-vcek-D3A9B6BE.pem"),
    )
    ctx = replay_ctx(replay, NOW_MILAN)
    with pytest.raises(BrokerError) as exc:
        AzureVtpmVerifier().verify(Submission(hcl, (flip(msg, len(msg) - 1), sig, vcek)), ctx)
    assert raised_code(exc) == "TPM_SIGNATURE_INVALID"
    with pytest.raises(BrokerError) as exc:
        AzureVtpmVerifier().verify(Submission(hcl, (msg, flip(sig, 100), vcek)), ctx)
    assert raised_code(exc) == "TPM_SIGNATURE_INVALID"
    # The 911B0EF8 quote is signed by another VM's HCLAkPub.
    other = az("az-snp-quote-911B0EF8.bincode")
    with pytest.raises(BrokerError) as exc:
        AzureVtpmVerifier().verify(Submission(hcl, (other, vcek)), ctx)
    assert raised_code(exc) == "TPM_SIGNATURE_INVALID"


def test_pcr_value_tamper(replay: ReplayServer) -> None:
    doc = json.loads(az("az-snp-vtpm-evidence-v1-26F8BC30.json"))
    doc["tpm_quote"]["pcrs"][4] = "00" * 32
    with pytest.raises(BrokerError) as exc:
        AzureVtpmVerifier().verify(Submission(json.dumps(doc).encode()), replay_ctx(replay, NOW_MILAN))
    assert raised_code(exc) == "TPM_PCR_DIGEST_MISMATCH"


def test_requested_nonce_is_not_in_the_recorded_vectors(replay: ReplayServer) -> None:
    # The recorded HCLs carry user-data of zeros (or none): a broker nonce can never match them.
    with pytest.raises(BrokerError) as exc:
        run(replay, "v1-26F8BC30", binding=ExpectedBinding(b"challenge"))
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"
    with pytest.raises(BrokerError) as exc:
        run(replay, "D3A9B6BE-msg-sig", binding=ExpectedBinding(b"challenge"))
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


def _with_user_data(data: bytes, value: str) -> bytes:
    """A copy of an HCL report whose runtime JSON user-data is ``value`` (breaks the signed binding)."""
    hcl = parse_hcl_report(data)
    doc = json.loads(hcl.runtime)
    doc["user-data"] = value
    runtime = json.dumps(doc).encode()
    header = bytearray(data[:RUNTIME_OFFSET])
    struct.pack_into("<I", header, 8, RUNTIME_OFFSET + len(runtime))
    struct.pack_into("<I", header, 1216, 20 + len(runtime))
    struct.pack_into("<I", header, 1232, len(runtime))
    return bytes(header) + runtime


@pytest.mark.parametrize("upper", [False, True])
def test_user_data_binding_rule(upper: bool) -> None:
    binding = ExpectedBinding(b"broker-nonce", b"user")
    value = binding.azure_user_data().hex()
    hcl = parse_hcl_report(_with_user_data(az("az-snp-hcl-report-911B0EF8.bin"), value.upper() if upper else value))
    check_user_data(hcl, binding)  # raises on mismatch
    with pytest.raises(BrokerError) as exc:
        check_user_data(hcl, ExpectedBinding(b"other-nonce", b"user"))
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"
    with pytest.raises(BrokerError) as exc:
        check_runtime_binding(hcl)  # the edit is visible to the hardware binding
    assert raised_code(exc) == "AZURE_VTPM_RUNTIME_BINDING_MISMATCH"


@pytest.mark.parametrize(
    ("hcl_name", "quote_name"),
    [
        ("az-tdx-hcl-report-6332533D.bin", "az-tdx-td-quote-6332533D.bin"),
        ("az-tdx-hcl-report-2E7D4867.bin", "az-tdx-td-quote-2E7D4867.bin"),
    ],
)
def test_td_quote_matches_tdreport(hcl_name: str, quote_name: str) -> None:
    hcl = parse_hcl_report(az(hcl_name))
    check_runtime_binding(hcl)
    quote = parse_quote(az(quote_name))
    _compare_td_quote(quote.body, hcl)
    # RTMR2 of the quote changed (offset 48 + 472 - 48... = quote RTMR2 at 472): mismatch.
    with pytest.raises(BrokerError) as exc:
        _compare_td_quote(parse_quote(flip(az(quote_name), 472)).body, hcl)
    assert raised_code(exc) == "AZURE_VTPM_TD_QUOTE_MISMATCH"
    other = parse_hcl_report(az("az-tdx-hcl-report-D270E56B.bin"))
    with pytest.raises(BrokerError) as exc:
        _compare_td_quote(quote.body, other)
    assert raised_code(exc) == "AZURE_VTPM_TD_QUOTE_MISMATCH"


def test_tdx_evidence_reaches_intel_collateral() -> None:
    # Runtime binding, envelope and TD report checks pass; TCB collateral for FMSPC 00806F050000 is not
    # recorded in the vectors, so offline the TDX verifier stops at Intel PCS (503, never a pass).
    ev = assemble(az("az-tdx-vtpm-evidence-v1-6332533D.json"), (), {})
    assert ev.td_quote is not None and ev.quote is not None and ev.container == "trustee-v1"
    with pytest.raises(BrokerError) as exc:
        verify_evidence(ev, offline_context(NOW_MILAN), None)
    assert raised_code(exc) == "COLLATERAL_UNAVAILABLE"
    ev = assemble(
        az("az-tdx-hcl-report-2E7D4867.bin"),
        (az("az-tdx-td-quote-2E7D4867.bin"), az("az-tdx-tpm-quote-2E7D4867.msg"), az("az-tdx-tpm-quote-2E7D4867.sig")),
        {},
    )
    assert ev.quote is not None and ev.quote.message.startswith(b"\xffTCG")
    with pytest.raises(BrokerError) as exc:
        verify_evidence(ev, offline_context(NOW_MILAN), None)
    assert raised_code(exc) == "COLLATERAL_UNAVAILABLE"


def test_tdx_without_td_quote() -> None:
    ev = assemble(
        az("az-tdx-hcl-report-D270E56B.bin"),
        (az("az-tdx-tpm-quote-2E7D4867.msg"), az("az-tdx-tpm-quote-2E7D4867.sig")),
        {},
    )
    with pytest.raises(BrokerError) as exc:
        verify_evidence(ev, offline_context(NOW_MILAN), None)
    assert raised_code(exc) == "AZURE_VTPM_TD_QUOTE_MISSING"


def test_bincode_variants_and_json_quote_agree() -> None:
    fixed = parse_bincode_quote(az("az-snp-quote-911B0EF8.bincode"))
    doc = json.loads(az("az-snp-tpm-quote-911B0EF8.json"))
    assert fixed.message.hex() == doc["message"] and fixed.signature.hex() == doc["signature"]
    assert [p.hex() for p in fixed.pcrs or ()] == doc["pcrs"]
    # The older 1362-byte layout stores each PCR with a u64 length prefix.
    long = bytearray(az("az-snp-quote-911B0EF8.bincode")[: 8 + 256 + 8 + len(fixed.message) + 8])
    for value in fixed.pcrs or ():
        long += struct.pack("<Q", 32) + value
    assert len(long) == 1362 and parse_bincode_quote(bytes(long)) == fixed
    with pytest.raises(BrokerError) as exc:
        parse_bincode_quote(bytes(long[:-1]))
    assert raised_code(exc) == "AZURE_VTPM_EVIDENCE_MALFORMED"


def _hcl_mutations() -> Iterator[tuple[str, bytes, str]]:
    data = az("az-snp-hcl-report-911B0EF8.bin")
    yield "magic", flip(data, 0), "AZURE_VTPM_HCL_MALFORMED"
    bad = bytearray(data)
    struct.pack_into("<I", bad, 8, 2000)
    yield "report_size", bytes(bad), "AZURE_VTPM_HCL_MALFORMED"
    bad = bytearray(data)
    struct.pack_into("<I", bad, 1224, 3)
    yield "report_type", bytes(bad), "AZURE_VTPM_HCL_UNSUPPORTED"
    bad = bytearray(data)
    struct.pack_into("<I", bad, 1228, 2)
    yield "hash_type", bytes(bad), "AZURE_VTPM_HCL_UNSUPPORTED"
    yield "truncated", data[:2000], "AZURE_VTPM_HCL_MALFORMED"


@pytest.mark.parametrize(
    ("what", "data", "expected"), list(_hcl_mutations()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_hcl_structure_mutations(what: str, data: bytes, expected: str) -> None:
    with pytest.raises(BrokerError) as exc:
        parse_hcl_report(data)
    assert raised_code(exc) == expected, what


def test_unrecognized_extra_and_missing_parts() -> None:
    with pytest.raises(BrokerError) as exc:
        assemble(az("az-snp-hcl-report-911B0EF8.bin"), (b"hello",), {})
    assert raised_code(exc) == "INPUT_EXTRA_UNRECOGNIZED"
    with pytest.raises(BrokerError) as exc:
        assemble(az("az-snp-tpm-quote-D3A9B6BE.msg"), (), {})
    assert raised_code(exc) == "AZURE_VTPM_EVIDENCE_MALFORMED"
    ev = assemble(az("az-snp-hcl-report-911B0EF8.bin"), (), {})
    with pytest.raises(BrokerError) as exc:
        verify_evidence(ev, offline_context(NOW_MILAN), None)
    assert raised_code(exc) == "AZURE_VTPM_EVIDENCE_MALFORMED"


def test_envelope_fields(replay: ReplayServer) -> None:
    doc = json.loads(az("az-snp-vtpm-evidence-v1-26F8BC30.json"))
    fields = {"hcl_report": doc["hcl_report"], "tpm_quote": doc["tpm_quote"], "vcek": doc["vcek"], "version": 1}
    appraisal = AzureVtpmVerifier().verify(Submission(b"", fields=fields), replay_ctx(replay, NOW_MILAN))
    assert appraisal.verifier_claims["container"] == "fields"
    assert appraisal.attester_claims["instance"]["vm_id"] == "26F8BC30-774E-4290-8E7A-535F3B672AEE"


def test_policy_rules(replay: ReplayServer) -> None:
    appraisal = run(replay, "v1-26F8BC30")
    vm = {"instance.vm_id": ["00000000-0000-0000-0000-000000000000"]}
    assert failed(decide(appraisal, {"claims": vm})) == ["claims.instance.vm_id"]
    console = {"claims": {"azure.vm_configuration.console_enabled": [False]}}
    assert failed(decide(appraisal, console)) == ["claims.azure.vm_configuration.console_enabled"]
    pcr7 = appraisal.attester_claims["tpm"]["pcrs"]["sha256"]["7"]
    rules = {
        "claims": {
            "azure.vm_configuration.secure_boot": [True],
            "instance.vm_id": ["26f8bc30-774e-4290-8e7a-535f3b672aee"],  # compared case-insensitively
        },
        "reference_values": [{"label": "azure-prod", "claims": {"tpm.pcrs.sha256.7": pcr7}}],
    }
    ok = decide(appraisal, rules)
    assert failed(ok) == [] and ok.appraisal.policy_ids[0].startswith("azure-vtpm-test@sha256:")
    bad = {"reference_values": [{"label": "x", "claims": {"tpm.pcrs.sha256.7": "00" * 32}}]}
    assert failed(decide(appraisal, bad)) == ["reference_values"]
