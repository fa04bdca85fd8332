"""azure-vtpm on TDX, end to end, on a synthetic evidence set signed by a TEST-ONLY Intel-like PKI.

See :mod:`tests.unit.azure_vtpm.synthetic_tdx` for how the set is built from the real Azure TDX vectors.
The test root and collateral reach the verifier only through ``verify_evidence``'s test-only keywords;
the same evidence under the product's pinned Intel roots must fail.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from attestation_broker.appraisal import Appraisal, EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.azure_vtpm.appraise import FACTS, appraise
from attestation_broker.evidence.azure_vtpm.claims import attester_claims, verifier_claims
from attestation_broker.evidence.azure_vtpm.envelope import assemble
from attestation_broker.evidence.azure_vtpm.hcl import RUNTIME_OFFSET, parse_hcl_report
from attestation_broker.evidence.azure_vtpm.pipeline import verify_evidence
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.context import offline_context
from tests.support.errors import code_of
from tests.unit.azure_vtpm.support import flip
from tests.unit.azure_vtpm.synthetic_tdx import BODY_MRTD, BODY_RTMR0, NOW, VM_ID, AzureTdxSet, build

BINDING = ExpectedBinding(b"broker-nonce-0123456789abcdef", b"user-data")


def verify(s: AzureTdxSet, binding: ExpectedBinding | None = None) -> Appraisal:
    """What :class:`AzureVtpmVerifier` does, with the test PKI injected through the test-only keywords."""
    ev = assemble(s.trustee_v1(), (), {})
    v = verify_evidence(ev, offline_context(NOW), binding, tdx_trust=s.pki.trust, tdx_collateral_override=s.collateral)
    vector, findings = appraise(v, FACTS)
    return Appraisal(
        kind="azure-vtpm",
        trustworthiness_vector=vector,
        attester_claims=attester_claims(v),
        verifier_claims=verifier_claims(v),
        findings=findings,
    )


@pytest.fixture(scope="module")
def bound() -> AzureTdxSet:
    """A set carrying the broker binding in runtime user-data and in the TPM quote extraData."""
    return build(user_data=BINDING.azure_user_data().hex(), extra_data=BINDING.tpm_extra_data())


def test_synthetic_tdx_set_verifies_end_to_end(bound: AzureTdxSet) -> None:
    appraisal = verify(bound)
    claims = appraisal.attester_claims
    assert claims["tee"] == "tdx" and claims["platform"] == "azure"
    assert claims["tcb"]["status"] == "UpToDate"
    assert claims["tdx"]["fmspc"] == "00806f050000"
    hcl = parse_hcl_report(bound.hcl)
    assert claims["measurement"] == hcl.td_report().mrtd.hex()
    assert claims["report_data"] == (hashlib.sha256(bound.runtime).digest() + bytes(32)).hex()
    assert claims["instance"] == {"vm_id": VM_ID}
    assert claims["azure"]["user_data"] == BINDING.azure_user_data().hex()
    assert claims["tpm"]["extra_data"] == BINDING.tpm_extra_data().hex()
    assert len(claims["tpm"]["pcrs"]["sha256"]) == 24
    assert appraisal.verifier_claims["bindings"] == {"nonce": "not-requested", "runtime_data": "checked"}
    assert appraisal.trustworthiness_vector["hardware"] == 2  # HW_GENUINE: UpToDate under the test collateral
    assert appraisal.policy_ids == ()
    # secure-boot is false in the recorded runtime JSON: a configuration warning, never a pass-through.
    assert "secure boot is disabled" in appraisal.findings
    assert appraisal.status is EarStatus.WARNING


def test_nonce_binding_passes_when_both_halves_carry_it(bound: AzureTdxSet) -> None:
    appraisal = verify(bound, BINDING)
    assert appraisal.verifier_claims["bindings"] == {"nonce": "checked", "runtime_data": "checked"}
    assert code_of(verify, bound, ExpectedBinding(b"another-nonce", b"user-data")) == "NONCE_BINDING_MISMATCH"


def test_nonce_binding_needs_the_quote_extra_data() -> None:
    # user-data carries the nonce but the TPM quote is stale (old extraData): the quote half fails.
    stale = build(user_data=BINDING.azure_user_data().hex(), extra_data=b"tdx challenge")
    assert verify(stale).attester_claims["tee"] == "tdx"  # fine while no nonce is requested
    assert code_of(verify, stale, BINDING) == "NONCE_BINDING_MISMATCH"
    # extraData carries it but the HCL user-data does not: the HCL half fails.
    assert code_of(verify, build(extra_data=BINDING.tpm_extra_data()), BINDING) == "NONCE_BINDING_MISMATCH"


@pytest.mark.parametrize("with_collateral", [True, False])
def test_test_root_is_not_trusted_by_default(bound: AzureTdxSet, with_collateral: bool) -> None:
    # Without tdx_trust the pinned Intel root applies: the test PCK chain is refused before any fetch.
    ev = assemble(bound.trustee_v1(), (), {})
    override = bound.collateral if with_collateral else None
    with pytest.raises(BrokerError) as exc:
        verify_evidence(ev, offline_context(NOW), None, tdx_collateral_override=override)
    assert exc.value.code.name == "CERT_CHAIN_INVALID"


def test_runtime_json_byte_flip_breaks_runtime_binding(bound: AzureTdxSet) -> None:
    # Flip the case of one letter of the vmUniqueId: still valid JSON, different SHA-256.
    offset = RUNTIME_OFFSET + bound.runtime.index(VM_ID.encode()) + 1
    tampered = replace(bound, hcl=flip(bound.hcl, offset, 0x20))
    assert code_of(verify, tampered) == "AZURE_VTPM_RUNTIME_BINDING_MISMATCH"


@pytest.mark.parametrize(
    ("field", "offset"), [("MRTD", BODY_MRTD), *((f"RTMR{i}", BODY_RTMR0 + 48 * i) for i in range(4))]
)
def test_td_quote_body_differs_from_hcl(field: str, offset: int) -> None:
    # A validly signed TD quote whose field differs from the HCL TDREPORT's (Azure's real RTMRs are zero).
    s = build(body_patch={offset: b"\xa5" * 48})
    with pytest.raises(BrokerError) as exc:
        verify(s)
    assert exc.value.code.name == "AZURE_VTPM_TD_QUOTE_MISMATCH"
    assert field in str(exc.value)


def test_td_quote_body_tamper_breaks_its_signature(bound: AzureTdxSet) -> None:
    tampered = replace(bound, td_quote=flip(bound.td_quote, 48 + BODY_RTMR0 + 2 * 48))
    assert code_of(verify, tampered) == "TDX_QUOTE_SIGNATURE_INVALID"


def test_tpm_quote_by_another_key() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    s = build(user_data=BINDING.azure_user_data().hex(), extra_data=BINDING.tpm_extra_data(), quote_key=other)
    assert code_of(verify, s, BINDING) == "TPM_SIGNATURE_INVALID"


def test_tpm_quote_message_tamper(bound: AzureTdxSet) -> None:
    tampered = replace(bound, message=flip(bound.message, len(bound.message) - 1))
    assert code_of(verify, tampered) == "TPM_SIGNATURE_INVALID"
    pcrs = (bytes(32), *bound.pcrs[1:])
    assert code_of(verify, replace(bound, pcrs=pcrs)) == "TPM_PCR_DIGEST_MISMATCH"
