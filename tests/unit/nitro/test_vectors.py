"""Every real Nitro vector verifies at its pinned time, with the claims the manifest documents."""

from __future__ import annotations

import base64
import hashlib

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus
from attestation_broker.evidence.nitro.abi import parse_document
from attestation_broker.evidence.nitro.trust import ROOT_G1_FINGERPRINT, aws_nitro_root
from attestation_broker.registry import default_registry

from tests.support.vectors import vector

from .support import DEBUG, VECTORS, NitroVector, run


def test_pinned_root_is_the_vector_root_and_aws_fingerprint() -> None:
    anchor = aws_nitro_root()
    assert (
        anchor.fingerprint
        == ROOT_G1_FINGERPRINT
        == ("641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b")
    )
    assert anchor.certificate.subject.rfc4514_string() == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"
    pem = vector("nitro/aws-nitro-enclaves-root-g1.pem")
    assert hashlib.sha256(pem).hexdigest() == "6eb9688305e4bbca67f44b59c29a0661ae930f09b5945b5d1d9ae01125c8d6c0"


def test_registered_in_default_registry() -> None:
    assert default_registry().require("nitro").kind == "nitro"


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_vector_verifies(vec: NitroVector) -> None:
    appraisal = run(vec.evidence(), vec.now)
    claims = appraisal.attester_claims
    nitro = claims["nitro"]
    document = parse_document(vec.raw()).document

    assert appraisal.kind == "nitro"
    assert claims["tee"] == "nitro" and claims["platform"] == "aws"
    assert nitro["module_id"] == vec.module_id == claims["instance"]["id"]
    assert claims["instance"]["vm_id"] == vec.module_id.split("-enc")[0]
    assert claims["instance"]["region"] == "us-east-1"
    assert nitro["timestamp"] == vec.timestamp_ms
    assert nitro["digest"] == "SHA384"
    assert sorted(nitro["pcrs"], key=int) == [str(i) for i in range(16)]
    assert all(len(value) == 96 for value in nitro["pcrs"].values())
    assert claims["measurement"] == nitro["pcrs"]["0"] == document.pcrs[0].hex()
    assert claims["dbgstat"] == ("enabled" if vec.debug else "disabled")
    assert (nitro["user_data"] is None) == (vec.user_data_len is None)
    if vec.user_data_len is not None:
        assert len(bytes.fromhex(nitro["user_data"])) == vec.user_data_len
    if vec.nonce_len is None:
        assert nitro["nonce"] is None
    else:
        assert len(bytes.fromhex(nitro["nonce"])) == vec.nonce_len
    assert nitro["certificate"]["subject"].startswith(f"CN={vec.module_id}.us-east-1.aws,")
    assert nitro["certificate"]["not_before"] <= vec.now.isoformat() <= nitro["certificate"]["not_after"]

    verifier = appraisal.verifier_claims
    assert verifier["evidence_kind"] == "nitro"
    assert verifier["bindings"] == {"nonce": "not-requested"}
    assert verifier["root"]["sha256"] == ROOT_G1_FINGERPRINT
    assert [c["source"] for c in verifier["collateral"]] == ["evidence"] * 4  # 3 intermediates + leaf
    assert appraisal.policy_ids == ()
    assert verifier["evidence_issued_at"].startswith(vec.now.strftime("%Y-%m-%dT%H:%M:%S"))
    assert appraisal.trustworthiness_vector["hardware"] == ar4si.HW_GENUINE
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_UNRECOGNIZED
    if vec.debug:
        assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_VISIBLE
        assert appraisal.status is EarStatus.CONTRAINDICATED
    else:
        assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_ENCRYPTED
        assert appraisal.status is EarStatus.WARNING  # verified; no PCR reference value appraised yet


def test_debug_vector_public_key_and_user_data_are_reported_without_cnf() -> None:
    appraisal = run(DEBUG.evidence(), DEBUG.now)
    nitro = appraisal.attester_claims["nitro"]
    assert bytes.fromhex(nitro["public_key"]) == b"my super secret key"
    assert nitro["public_key_sha256"] == hashlib.sha256(b"my super secret key").hexdigest()
    assert bytes.fromhex(nitro["user_data"]) == b"hello, world!"
    assert appraisal.cnf is None  # not a SubjectPublicKeyInfo
    assert appraisal.verifier_claims["public_key"] == "unparsable"
    assert nitro["pcrs"]["0"] == nitro["pcrs"]["1"] == nitro["pcrs"]["2"] == "00" * 48
    assert nitro["pcrs"]["3"] != "00" * 48


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_envelope_forms_all_verify(vec: NitroVector) -> None:
    raw = vec.raw()
    forms = {
        "raw": raw,
        "base64": base64.b64encode(raw),
        "base64-wrapped": base64.encodebytes(raw),  # 76-column lines
        "base64url": base64.urlsafe_b64encode(raw),
        "tagged": b"\xd2" + raw,  # COSE_Sign1_Tagged (tag 18)
    }
    for label, evidence in forms.items():
        claims = run(evidence, vec.now).attester_claims
        assert claims["nitro"]["module_id"] == vec.module_id, label


def test_b64_vector_is_base64_text_of_a_cose_document() -> None:
    text = vector("nitro/evervault-2023-09-07a.cose.b64")
    assert text[:1] != b"\x84" and base64.b64decode(text)[:1] == b"\x84"
