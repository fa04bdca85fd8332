"""The ``snp`` Verifier: registry, Submission extras and envelope fields, binding."""

from __future__ import annotations

import base64

import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.snp.kind import SnpVerifier
from attestation_broker.registry import default_registry
from attestation_broker.verifier import Submission

from tests.support.context import offline_context
from tests.support.vectors import vector
from tests.unit.snp.support import MILAN_CRL, at


def test_registered() -> None:
    assert isinstance(default_registry().require("snp"), SnpVerifier)


def test_extras_by_content() -> None:
    report = vector("snp/trustee-azure-milan-hcl/snp-report.derived.bin")
    vcek = vector("snp/trustee-azure-milan-hcl/vcek.pem")
    # an extra no role recognizes is refused, never silently dropped; so is a second CRL
    for extras, code in (
        ((b'{"unrelated": "json"}', vcek, vector(MILAN_CRL)), "INPUT_EXTRA_UNRECOGNIZED"),
        ((vcek, vector(MILAN_CRL), vector(MILAN_CRL)), "INPUT_ROLE_DUPLICATE"),
    ):
        with pytest.raises(BrokerError) as exc:
            SnpVerifier().verify(Submission(report, extras), offline_context(at("2025-06-01")))
        assert exc.value.code.name == code
    sub = Submission(evidence=report, extras=(vcek, vector(MILAN_CRL)))
    appraisal = SnpVerifier().verify(sub, offline_context(at("2025-06-01")))
    assert appraisal.kind == "snp"
    assert appraisal.verifier_claims["signing_key"] == "vcek"
    assert appraisal.status.value == "warning"
    assert appraisal.policy_ids == ()  # the kind names no policy: the Broker's engine does


def test_envelope_fields() -> None:
    der = vector("snp/trustee-milan-v2/test-vcek.der")
    fields = {
        "vcek": base64.b64encode(der).decode(),
        "crl": vector(MILAN_CRL).decode(),
        "product": "Milan",
    }
    sub = Submission(evidence=vector("snp/trustee-milan-v2/test-report.bin"), fields=fields)
    appraisal = SnpVerifier().verify(sub, offline_context(at("2025-06-01")))
    assert appraisal.attester_claims["snp"]["guest_svn"] == 4
    sub = Submission(
        evidence=sub.evidence, fields={"certificates": [base64.urlsafe_b64encode(der).decode()], "crl": fields["crl"]}
    )
    assert SnpVerifier().verify(sub, offline_context(at("2025-06-01"))).kind == "snp"


@pytest.mark.parametrize(
    "fields,code",
    [
        ({"nonsense": "x"}, "INPUT_FIELD_UNKNOWN"),
        ({"vcek": "!!!not base64!!!"}, "MALFORMED_EVIDENCE"),
        ({"vcek": 5}, "MALFORMED_EVIDENCE"),
        ({"certificates": "x"}, "MALFORMED_EVIDENCE"),
        ({"product": "Rome"}, "MALFORMED_EVIDENCE"),
    ],
)
def test_bad_fields(fields, code) -> None:
    sub = Submission(evidence=vector("snp/trustee-milan-v2/test-report.bin"), fields=fields)
    with pytest.raises(BrokerError) as exc:
        SnpVerifier().verify(sub, offline_context(at("2025-06-01")))
    assert exc.value.code.name == code


def test_binding() -> None:
    report = vector("snp/teekit-gcp-milan-v5/sev-gcp-x25519-bound.bin")
    extras = (vector("snp/teekit-gcp-milan-v5/sev-gcp-vcek.pem"), vector(MILAN_CRL))
    binding = ExpectedBinding(
        nonce=bytes.fromhex("df82306ff38a9da023854af947d02a878cfab1b40a793823ff41dc51213b96aa"),
        user_data=bytes.fromhex("03a8107030fabeac06b0df4ef865763918b5e2a9fa030e20025a4315dab4b2a6"),
    )
    ok = SnpVerifier().verify(Submission(report, extras, binding=binding), offline_context(at("2026-01-01")))
    assert ok.verifier_claims["bindings"] == {"nonce": "checked"}
    with pytest.raises(BrokerError) as exc:
        SnpVerifier().verify(
            Submission(report, extras, binding=ExpectedBinding(nonce=b"x")), offline_context(at("2026-01-01"))
        )
    assert exc.value.code.name == "NONCE_BINDING_MISMATCH"
