"""The plain ``tpm`` kind end to end: envelope fields, extras by content, policy, claims and vector."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tpm import load_ak_public
from attestation_broker.evidence.tpm.kind import TpmVerifier
from attestation_broker.policy import Decision
from attestation_broker.registry import default_registry
from attestation_broker.verifier import Submission

from tests.support.context import offline_context
from tests.support.errors import raised_code
from tests.support.policy import decide, failed
from tests.support.vectors import vector
from tests.unit.tpm.helpers import NOW, azure_bincode, flip, gce_attestation, pin_rules

V = TpmVerifier()
AZ = azure_bincode(vector("tpm/azure-vtpm-quote-2024-02.bincode"))
AZ_AK = vector("tpm/azure-vtpm-quote-2024-02.akpub.pem")
AZ_PIN = load_ak_public(AZ_AK).spki_sha256
AZ_PCRS = {"sha256": {str(i): v.hex() for i, v in AZ.pcrs.items()}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _az_facts(**kw: Any) -> Any:
    fields = {"signature": b64(AZ.signature), "ak_public": AZ_AK.decode(), "pcrs": AZ_PCRS}
    fields.update(kw)
    return V.verify(Submission(AZ.message, fields=fields), offline_context(NOW))


def _az(rules: dict[str, Any] | None = None, **kw: Any) -> Decision:
    """The Azure quote's facts under ``rules`` (default: only its AK pinned)."""
    return decide(_az_facts(**kw), rules if rules is not None else pin_rules(AZ_PIN), now=NOW)


def test_registered() -> None:
    assert default_registry().require("tpm").kind == "tpm"


def test_azure_quote_pinned_ak() -> None:
    facts = _az_facts()
    assert facts.kind == "tpm" and facts.trustworthiness_vector["instance-identity"] == ar4si.IDENTITY_UNRECOGNIZED
    assert facts.verifier_claims["ak_spki_sha256"] == AZ_PIN and facts.policy_ids == ()
    d = _az()
    a = d.appraisal
    assert failed(d) == [] and d.status == EarStatus.WARNING  # no PCR reference value: executables unrecognized
    assert a.trustworthiness_vector["instance-identity"] == ar4si.IDENTITY_TRUSTED
    assert a.trustworthiness_vector["executables"] == ar4si.EXEC_UNRECOGNIZED
    c = a.attester_claims
    assert c["tee"] == "vtpm" and c["platform"] == "unknown"
    assert c["measurement"] == "04fabd988106412e438c1b93ad3b4b046c760f8f99ec557d87adf2ab02b7a4a0"
    assert c["tpm"]["pcrs"]["sha256"]["0"] == AZ.pcrs[0].hex() and c["tpm"]["extra_data"] == b"challenge".hex()
    assert a.verifier_claims["bindings"] == {"nonce": "not-requested"}
    assert a.policy_ids[0].startswith("tpm-test@sha256:")


def test_pcr_reference_values_affirm_and_refuse() -> None:
    golden = {"tpm.pcrs.sha256.0": AZ.pcrs[0].hex(), "tpm.pcrs.sha256.7": AZ.pcrs[7].hex()}
    rules = pin_rules(AZ_PIN, reference_values=[{"label": "zeroes", "claims": {"tpm.pcrs.sha256.0": "00" * 32}},
                                                {"label": "az-golden", "claims": golden}])  # fmt: skip
    d = _az(rules)
    assert failed(d) == [] and d.status == EarStatus.AFFIRMING
    rules["reference_values"] = [{"label": "other", "claims": {"tpm.pcrs.sha256.7": "11" * 32}}]
    d = _az(rules)
    assert failed(d) == ["reference_values"] and d.failed[0].actual == {"tpm.pcrs.sha256.7": AZ.pcrs[7].hex()}


@pytest.mark.parametrize(
    ("rules", "failing"),
    [
        ({}, ["trustworthiness"]),  # no AK pinned: instance-identity unrecognized (97)
        (pin_rules("00" * 32), ["ak_keys", "trustworthiness"]),
        (pin_rules(AZ_PIN, conditions=[{"name": "log", "expr": 'verifier.event_log == "replayed"'}]),
         ["conditions.log"]),
        (pin_rules(AZ_PIN, conditions=[{"name": "sb", "expr": "claims.tpm.secure_boot.enabled"}]), ["conditions.sb"]),
        (pin_rules(AZ_PIN, nonce="required"), ["nonce"]),
    ],
)  # fmt: skip
def test_policy_refusals(rules: dict[str, Any], failing: list[str]) -> None:
    d = _az(rules)
    assert failed(d) == failing
    assert all(r.detail for r in d.failed)


def test_nonce_binding() -> None:
    # the real quote's extraData is "challenge", not a broker binding → mismatch when a binding is expected
    with pytest.raises(BrokerError) as exc:
        V.verify(
            Submission(
                AZ.message,
                fields={"signature": b64(AZ.signature), "ak_public": AZ_AK.decode()},
                binding=ExpectedBinding(b"n"),
            ),
            offline_context(NOW),
        )
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


def test_extras_by_content_and_envelope_forms() -> None:
    pcr_json = json.dumps(AZ_PCRS).encode()
    sub = Submission(AZ.message, extras=(AZ.signature, AZ_AK, pcr_json))
    a = V.verify(sub, offline_context(NOW))
    assert a.attester_claims["tpm"]["pcrs"]["sha256"]["23"] == AZ.pcrs[23].hex()
    # quote as a field, AK as base64 DER, PCRs as base64 JSON
    der = load_ak_public(AZ_AK).spki_der
    fields = {"quote": b64(AZ.message), "signature": b64(AZ.signature), "ak_public": b64(der), "pcrs": b64(pcr_json)}
    assert V.verify(Submission(b"", fields=fields), offline_context(NOW)).status
    # duplicates and gaps are refused
    for bad, code in (
        (Submission(AZ.message, extras=(AZ.signature, AZ.signature, AZ_AK)), "INPUT_ROLE_DUPLICATE"),
        (Submission(AZ.message, extras=(AZ_AK,), fields={"ak_public": AZ_AK.decode()}), "INPUT_ROLE_DUPLICATE"),
        (Submission(AZ.message, extras=(AZ.signature, AZ_AK), fields={"colour": 1}), "INPUT_FIELD_UNKNOWN"),
        (Submission(AZ.message, extras=(AZ_AK,)), "MALFORMED_EVIDENCE"),
        (Submission(AZ.message, extras=(AZ.signature,)), "MALFORMED_EVIDENCE"),
        (Submission(b"", extras=(AZ.signature, AZ_AK)), "MALFORMED_EVIDENCE"),
        (Submission(AZ.message, extras=(AZ.signature, AZ_AK, b"\x07" * 33)), "INPUT_EXTRA_UNRECOGNIZED"),
        (Submission(AZ.message, extras=(AZ.signature, AZ_AK, b'{"a": 1}')), "INPUT_EXTRA_UNRECOGNIZED"),
        # a bare signature whose first byte is "{" is still the signature (and this one no longer verifies)
        (Submission(AZ.message, extras=(b"{" + AZ.signature[1:], AZ_AK)), "TPM_SIGNATURE_INVALID"),
        (Submission(AZ.message, fields={"signature": "***", "ak_public": AZ_AK.decode()}), "MALFORMED_EVIDENCE"),
        (Submission(AZ.message, fields={"quote": b64(b"x"), "signature": b64(AZ.signature)}), "MALFORMED_EVIDENCE"),
    ):
        with pytest.raises(BrokerError) as exc:
            V.verify(bad, offline_context(NOW))
        assert raised_code(exc) == code


def test_tampered_inputs_through_the_kind() -> None:
    with pytest.raises(BrokerError) as exc:
        _az_facts(signature=b64(flip(AZ.signature, 10)))
    assert raised_code(exc) == "TPM_SIGNATURE_INVALID"
    pcrs = {"sha256": dict(AZ_PCRS["sha256"], **{"3": "ab" * 32})}
    with pytest.raises(BrokerError) as exc:
        _az_facts(pcrs=pcrs)
    assert raised_code(exc) == "TPM_PCR_DIGEST_MISMATCH"
    with pytest.raises(BrokerError) as exc:
        _az_facts(pcrs={"sha1": {"0": "00" * 20}})
    assert raised_code(exc) == "TPM_PCR_VALUES_MISSING"


def test_gce_quote_with_event_log_and_secure_boot() -> None:
    g = gce_attestation()
    q = g.quotes[1]
    pin = load_ak_public(g.ak_pub).spki_sha256
    fields = {
        "signature": b64(q.raw_sig),
        "ak_public": b64(g.ak_pub),
        "pcrs": {"sha256": {str(i): v.hex() for i, v in q.pcrs.items()}},
        "event_log": b64(g.event_log),
    }
    binding_free = Submission(q.quote, fields=fields)
    a = decide(
        V.verify(binding_free, offline_context(NOW)),
        pin_rules(pin, conditions=[{"name": "secure-boot", "expr": "claims.tpm.secure_boot.enabled"}]),
        now=NOW,
    ).appraisal
    t = a.attester_claims["tpm"]
    assert t["secure_boot"]["enabled"] is True and t["event_count"] == 44
    assert (
        t["gce_confidential_technology"] == "sev" and a.trustworthiness_vector["configuration"] == ar4si.CONFIG_APPROVED
    )
    assert a.attester_claims["measurement"] == hashlib.sha256(b"".join(q.pcrs[i] for i in range(24))).hexdigest()
    assert a.verifier_claims["event_log"] == "replayed"
    assert a.policy_ids[0].startswith("tpm-test@")
    # the event log as an extra file (recognized by its Spec ID header), no PCR values → refused
    with pytest.raises(BrokerError) as exc:
        V.verify(Submission(q.quote, extras=(q.raw_sig, g.ak_pub, g.event_log)), offline_context(NOW))
    assert raised_code(exc) == "TPM_PCR_VALUES_MISSING"
