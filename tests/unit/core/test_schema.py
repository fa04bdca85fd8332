"""The published claim schema: a snapshot of its names, and real tokens of several kinds validate."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.api.http import HttpRequest
from attestation_broker.registry import default_registry

from tests.support.broker import make_harness
from tests.support.vectors import vector

SNAPSHOT = Path(__file__).with_name("schema_names.snapshot.json")


def _names(schema: dict[str, Any]) -> dict[str, list[str]]:
    defs = schema["$defs"]
    return {
        "token": sorted(schema["properties"]),
        "submod": sorted(defs["submod"]["properties"]),
        "trustworthiness_vector": sorted(defs["submod"]["properties"]["ear_trustworthiness_vector"]["properties"]),
        "attester_claims": sorted(defs["attester_claims"]["properties"]),
        "tee": sorted(defs["attester_claims"]["properties"]["tee"]["enum"]),
        "platform": sorted(defs["attester_claims"]["properties"]["platform"]["enum"]),
        "tcb_status": sorted(defs["attester_claims"]["properties"]["tcb"]["properties"]["status"]["enum"]),
        "verifier_claims": sorted(defs["verifier_claims"]["properties"]),
    }


def test_schema_names_match_snapshot(tmp_path: Path) -> None:
    schema = make_harness(tmp_path).broker.schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert _names(schema) == json.loads(SNAPSHOT.read_text()), "claim names changed: update the snapshot on purpose"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CASES = [
    pytest.param(
        "snp",
        {
            "evidence": b64(vector("snp/trustee-milan-v2/test-report.bin")),
            "extras": [
                b64(vector("snp/trustee-milan-v2/test-vcek.der")),
                b64(vector("roots/amd/amd_milan_vcek_crl.pem")),
            ],
        },
        "2025-06-01T00:00:00+00:00",
        {"snp": {"debug": "forbidden", "tcb_minimums": {"snp": 0}}},
        id="snp",
    ),
    pytest.param(
        "nitro",
        {"evidence": b64(vector("nitro/evervault-nondebug-2022-10-13.cose"))},
        None,
        {"nitro": {"max_evidence_age_seconds": 300}},
        id="nitro",
    ),
    pytest.param(
        "tpm",
        {
            "evidence": b64(vector("tpm/azure-vtpm-quote-nonce010203.msg")),
            "extras": [
                b64(vector("tpm/azure-vtpm-quote-nonce010203.sig")),
                b64(vector("tpm/azure-vtpm-quote-nonce010203.akpub.pem")),
            ],
        },
        "2024-03-01T00:00:00+00:00",
        {
            "tpm": {
                "ak_keys": [
                    {
                        "label": "azure-vtpm-ak",
                        "sha256": "02e54c432678997b9adf4e369097e990ccf576fb785fd4cc5fc2d185b1d4dc86",
                    }
                ]
            }
        },
        id="tpm",
    ),
]


@pytest.mark.parametrize(("kind", "body", "now", "policy"), CASES)
def test_real_tokens_validate_against_schema(
    tmp_path: Path, kind: str, body: dict[str, Any], now: str | None, policy: dict[str, Any]
) -> None:
    registry = default_registry()
    h = make_harness(tmp_path, verifiers=[registry[kind]], policy=policy)
    if now is None:  # Nitro: the document's own timestamp
        from tests.unit.nitro.support import NONDEBUG

        h.clock[0] = NONDEBUG.now
    else:
        h.clock[0] = datetime.fromisoformat(now)
    resp = h.api.handle(
        HttpRequest("POST", f"/v1/attest/{kind}", {"content-type": "application/json"}, json.dumps(body).encode())
    )
    assert resp.status == 200, resp.body
    claims = resp.json()["claims"]
    jsonschema.validate(claims, h.broker.schema)
    submod = claims["submods"][kind]
    assert submod["ear_verifier_claims"]["evidence_kind"] == kind
    # Only registered AR4SI code points, and the one matched policy by name@digest.
    for claim, value in submod["ear_trustworthiness_vector"].items():
        assert value in ar4si.REGISTERED[claim], (claim, value)
    (policy_id,) = submod["ear_appraisal_policy_ids"]
    assert policy_id.split("@")[0] == f"{kind}-test"
    assert h.sink.records[-1].verdict == claims["ear_status"]
